"""Build hook for an optional bundled library (everything else is in
pyproject.toml).

By default the package is pure Python and finds libtransporturl at import
time ($TRANSPORTURL_LIB, find_library, the repository's target/release).
With TRANSPORTURL_BUNDLE_LIB=/path/to/libtransporturl.so set while building,
that file is copied into the package and the wheel is tagged for this
platform (it then carries native code)."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

BUNDLE = os.environ.get("TRANSPORTURL_BUNDLE_LIB")


class BuildPy(build_py):
    def run(self):
        super().run()
        if BUNDLE:
            if not os.path.isfile(BUNDLE):
                raise SystemExit(f"TRANSPORTURL_BUNDLE_LIB={BUNDLE}: no such file")
            target = os.path.join(self.build_lib, "transporturl", os.path.basename(BUNDLE))
            shutil.copyfile(BUNDLE, target)


class MaybeBinaryDistribution(Distribution):
    def has_ext_modules(self):
        return bool(BUNDLE)


setup(cmdclass={"build_py": BuildPy}, distclass=MaybeBinaryDistribution)
