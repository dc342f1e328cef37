"""The binding against the header: code table, structures, constants, the
declaration table; the exception classes; option translation; the loader."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import re
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HEADER

import transporturl
from transporturl import _connection, _errors, _lib


def header_defines() -> dict:
    text = HEADER.read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^#define (TU_\w+) (-?\d+)\s*$", text, re.M)}


def header_functions() -> set:
    text = HEADER.read_text()
    return set(re.findall(r"\b(tu_\w+)\(", text))


# -- drift against the header and the library ------------------------------------------


def test_code_table_matches_header_and_library() -> None:
    defines = header_defines()
    header_codes = {k: v for k, v in defines.items() if k == "TU_OK" or k.startswith("TU_E_")}
    assert header_codes, "no TU_E_* defines found in the header"
    # the library's own table (read at import through tu_code_name)
    assert transporturl.CODES == header_codes
    # every code has its Python class, and Python knows no code the header lacks
    assert set(_errors.CLASS_FOR_CODE_NAME) == set(header_codes)
    for name, value in header_codes.items():
        assert getattr(transporturl, name) == value
        cls = _errors.CLASS_FOR_CODE_NAME[name]
        if cls is not None:
            assert cls.default_code_name == name
            e = _errors.error_from_code(value, "m")
            assert type(e) is cls and e.code == value and e.code_name == name


def test_structure_sizes_match_header() -> None:
    defines = header_defines()
    assert defines["TU_ERROR_MESSAGE_SIZE"] == _lib.ERROR_MESSAGE_SIZE
    assert ctypes.sizeof(_lib.TuError) == 4 + defines["TU_ERROR_MESSAGE_SIZE"]
    text = HEADER.read_text()
    body = re.search(r"typedef struct tu_url_parts \{(.*?)\} tu_url_parts;", text, re.S)
    assert body, "tu_url_parts not found in the header"
    fields = re.findall(r"^\s*(char|int32_t) (\w+)(?:\[(\d+)\])?;", body.group(1), re.M)
    want = [(name, int(n) if n else None) for _, name, n in fields]
    got = []
    for name, ctype in _lib.TuUrlParts._fields_:
        got.append((name, ctype._length_ if hasattr(ctype, "_length_") else None))
    assert got == want


def test_constants_match_header() -> None:
    """Every other numeric #define (crypto methods, want bits, timeout
    selectors, shutdown directions, limits) exists in Python without the
    TU_ prefix, with the header's value."""
    defines = header_defines()
    skip = ("TU_OK", "TU_E_", "TU_VERSION", "TU_ERROR_MESSAGE_SIZE")
    others = {k: v for k, v in defines.items() if not k.startswith(skip)}
    assert any(k.startswith("TU_CRYPTO_") for k in others)
    for name, value in others.items():
        py = name[len("TU_"):]
        assert getattr(transporturl, py, None) == value, f"{name} = {value}: transporturl.{py} missing or different"
    # shutdown directions are socket's
    assert (transporturl.SHUT_RD, transporturl.SHUT_WR, transporturl.SHUT_RDWR) == (
        socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR)


def test_declaration_table_covers_header() -> None:
    declared = {f.name for f in _lib.FUNCTIONS}
    missing = header_functions() - declared
    assert not missing, f"C functions in the header without a Python declaration: {sorted(missing)}"
    # core functions are never optional, and all of them are in this build
    for f in _lib.FUNCTIONS:
        if not f.optional:
            assert transporturl.supports(f.name), f.name


C_TYPES = {
    "void": None,
    "const char *": ctypes.c_char_p,
    "char *": ctypes.c_char_p,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "size_t": ctypes.c_size_t,
    "intptr_t": ctypes.c_ssize_t,
    "void *": ctypes.c_void_p,
    "const void *": ctypes.c_void_p,
    "struct tu_handle *": ctypes.c_void_p,
    "const struct tu_handle *": ctypes.c_void_p,
    "struct tu_options *": ctypes.c_void_p,
    "const struct tu_options *": ctypes.c_void_p,
    "struct tu_error *": ctypes.POINTER(_lib.TuError),
    "struct tu_url_parts *": ctypes.POINTER(_lib.TuUrlParts),
}


def c_type(decl: str) -> object:
    decl = " ".join(re.sub(r"\s*\*\s*", " * ", decl).split()).replace("* *", "**")
    assert decl in C_TYPES, f"unmapped C type {decl!r}"
    return C_TYPES[decl]


def test_declarations_match_header_prototypes() -> None:
    """Return and parameter types of every declared function, as ctypes
    types, against the header's prototypes."""
    text = HEADER.read_text()
    protos = {}
    for m in re.finditer(r"^([\w ]+?\**)\s*\b(tu_\w+)\(([^)]*)\);", text, re.M):
        ret, name, params = m.groups()
        args = [] if params.strip() in ("", "void") else [
            c_type(re.sub(r"\b\w+$", "", p.strip())) for p in params.split(",")]
        protos[name] = (c_type(ret), args)
    assert "tu_connect" in protos and "tu_read" in protos
    assert set(protos) == header_functions()
    for f in _lib.FUNCTIONS:
        if f.name not in protos:
            assert f.optional, f"core function {f.name} is not in the header"
            continue
        ret, args = protos[f.name]
        assert f.restype is ret, f"{f.name}: returns {ret}, declared {f.restype}"
        assert list(f.argtypes) == args, f"{f.name}: takes {args}, declared {list(f.argtypes)}"


def test_version() -> None:
    defines = HEADER.read_text()
    m = re.search(r'#define TU_VERSION "([^"]+)"', defines)
    assert m and transporturl.library_version == m.group(1)
    assert os.path.exists(transporturl.library_path)


def test_strerror() -> None:
    assert transporturl.strerror(transporturl.TU_E_URL) == "malformed URL"
    assert transporturl.strerror(12345) == "unknown error code"


# -- exceptions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (transporturl.InvalidArgumentError, ValueError),
        (transporturl.URLError, ValueError),
        (transporturl.UnsupportedTransportError, ValueError),
        (transporturl.InsecureProtocolError, ValueError),
        (transporturl.ResolveError, socket.gaierror),
        (transporturl.RefusedError, ConnectionRefusedError),
        (transporturl.TimeoutError, TimeoutError),
        (transporturl.TimeoutError, socket.timeout),
        (transporturl.ConnectionIOError, ConnectionError),
        (transporturl.TLSError, ssl.SSLError),
        (transporturl.CertificateError, ssl.SSLCertVerificationError),
        (transporturl.CertificateError, ValueError),
        (transporturl.PlaintextPeerError, transporturl.TLSError),
        (transporturl.ProtocolError, ConnectionError),
        (transporturl.TruncatedError, ConnectionError),
        (transporturl.WouldBlockError, BlockingIOError),
        (transporturl.NotSupportedError, NotImplementedError),
    ],
)
def test_exception_classes(cls: type, builtin: type) -> None:
    assert issubclass(cls, transporturl.Error)
    assert issubclass(cls, OSError)
    assert issubclass(cls, builtin)
    e = cls("what went wrong")
    assert e.code == transporturl.CODES[cls.default_code_name]
    assert e.code_name == cls.default_code_name
    assert e.message == "what went wrong"
    assert str(e) == f"[{e.code_name}] what went wrong"
    with pytest.raises(builtin):
        raise e


@pytest.mark.parametrize("cls", [c for c in _errors.CLASS_FOR_CODE_NAME.values() if c is not None])
def test_exception_pickles(cls: type) -> None:
    e = cls("bad port at offset 7")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls
    assert (back.code, back.message, str(back)) == (e.code, e.message, str(e))


def test_unknown_code_gets_root_class() -> None:
    e = _errors.error_from_code(999, "new")
    assert type(e) is transporturl.Error
    assert e.code == 999 and "999" in e.code_name


def test_missing_optional_function_is_not_supported() -> None:
    stub = _lib.require("tu_function_from_the_future")
    with pytest.raises(transporturl.NotSupportedError) as info:
        stub()
    assert "not supported by this library build" in str(info.value)
    assert isinstance(info.value, NotImplementedError)


# -- text and options -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["tcp://127.0.0.1:80\0", "\0", b"tcp://h\0:1"])
def test_nul_in_url_refused_before_c(bad: object) -> None:
    with pytest.raises(transporturl.InvalidArgumentError, match="NUL byte"):
        transporturl.connect(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL byte"):
        transporturl.parse_url(bad)  # type: ignore[arg-type]


def test_nul_in_option_refused_before_c(refused_port: int) -> None:
    url = f"tcp://127.0.0.1:{refused_port}"
    with pytest.raises(transporturl.InvalidArgumentError, match="NUL byte"):
        transporturl.connect(url, ssl={"peer_name": "a\0b"})
    with pytest.raises(transporturl.InvalidArgumentError, match="NUL byte"):
        transporturl.connect(url, **{"read_\0timeout": 1})


def test_url_type_errors() -> None:
    with pytest.raises(TypeError):
        transporturl.parse_url(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        transporturl.connect("tcp://127.0.0.1:1", timeout=object())


@pytest.mark.parametrize(
    "value, text",
    [
        (True, b"true"),
        (False, b"false"),
        (5, b"5"),
        (0.25, b"0.25"),
        (1e-05, b"0.00001"),
        ("x", b"x"),
        (Path("/etc/hosts"), b"/etc/hosts"),
        (["h2", "http/1.1"], b"h2,http/1.1"),
    ],
)
def test_option_values(value: object, text: bytes) -> None:
    assert _connection._option_text(value, "k") == text


def test_option_grouping() -> None:
    flat = dict(_connection._flatten({"ssl": {"cafile": "f", "verify_peer": False}, "read_timeout": 1,
                                      "socket.tcp_nodelay": True, "skipped": None}))
    assert flat == {"ssl.cafile": "f", "ssl.verify_peer": False, "read_timeout": 1, "socket.tcp_nodelay": True}


def test_bad_option_key_is_value_error(refused_port: int) -> None:
    with pytest.raises(ValueError) as info:
        transporturl.connect(f"tcp://127.0.0.1:{refused_port}", no_such_option=1)
    e = info.value
    assert isinstance(e, transporturl.InvalidArgumentError)
    assert e.code_name == "TU_E_INVALID_ARGUMENT"
    assert "no_such_option" in e.message


def test_bad_option_value_is_value_error(refused_port: int) -> None:
    with pytest.raises(transporturl.InvalidArgumentError, match="read_timeout"):
        transporturl.connect(f"tcp://127.0.0.1:{refused_port}", read_timeout="soon")
    with pytest.raises(transporturl.InvalidArgumentError, match="ssl.verify_peer"):
        transporturl.connect(f"tcp://127.0.0.1:{refused_port}", ssl={"verify_peer": "perhaps"})
    with pytest.raises(transporturl.InvalidArgumentError, match="ssl.cafile"):
        transporturl.connect(f"tcp://127.0.0.1:{refused_port}", ssl={"cafile": "/nonexistent/ca.pem"})


# -- the loader -----------------------------------------------------------------------------------


def test_loader_lists_every_attempt(tmp_path: Path) -> None:
    """Outside the repository, with a broken $TRANSPORTURL_LIB: one
    ImportError naming every place tried."""
    pkg = Path(transporturl.__file__).parent
    shutil.copytree(pkg, tmp_path / "transporturl", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = dict(os.environ, TRANSPORTURL_LIB=str(tmp_path / "missing" / "libtransporturl.so"),
               PYTHONPATH=str(tmp_path))
    env.pop("LD_LIBRARY_PATH", None)
    r = subprocess.run([sys.executable, "-c", "import transporturl"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    for where in ("$TRANSPORTURL_LIB", "bundled copy", "find_library", "repository build"):
        assert where in r.stderr, r.stderr


def test_loader_prefers_env(tmp_path: Path) -> None:
    lib = tmp_path / "libtransporturl.so"
    shutil.copy(transporturl.library_path, lib)
    env = dict(os.environ, TRANSPORTURL_LIB=str(lib))
    r = subprocess.run([sys.executable, "-c", "import transporturl; print(transporturl.library_path)"],
                       cwd=Path(transporturl.__file__).parent.parent, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(lib)


def test_loader_refuses_a_library_without_core_functions(tmp_path: Path) -> None:
    """A shared object that is not libtransporturl (libc here) is skipped
    with a reason, and the next place is tried."""
    libc = ctypes.util.find_library("c")
    if not libc:
        pytest.skip("no libc to stand in for a wrong library")
    env = dict(os.environ, TRANSPORTURL_LIB=libc)
    r = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import transporturl; print(transporturl.library_path)"],
        cwd=Path(transporturl.__file__).parent.parent, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "missing tu_" in r.stderr  # the warning says why $TRANSPORTURL_LIB was not used
    assert r.stdout.strip() != libc


def test_int32_parameters_are_not_wrapped(refused_port: int) -> None:
    """ctypes would wrap 2**32 + 1 to 1 (TU_CRYPTO_ANY): refused instead."""
    with pytest.raises(transporturl.URLError, match="int32"):
        transporturl.connect_host("127.0.0.1", 2**32 + refused_port)
    with pytest.raises(transporturl.URLError, match="out of range"):
        transporturl.connect_host("127.0.0.1", -1)  # the library's own message
    with pytest.raises(TypeError):
        transporturl.connect_host("127.0.0.1", True)  # type: ignore[arg-type]


def test_milliseconds() -> None:
    ms = _connection._milliseconds
    assert ms(None) == -1 and ms(float("inf")) == -1
    assert ms(0.3) == 300 and ms(1e-6) == 1 and ms(-1) == -1000 and ms(0) == 0
    assert ms(1e300) == 2**63 - 1
    with pytest.raises(ValueError):
        ms(float("nan"))


def test_url_parts_access() -> None:
    p = transporturl.parse_url("tls://Example.COM:443")
    assert p == ("tls", "example.com", 443, True, None)
    assert p.host == p["host"] == p[1] == "example.com"
    assert p._asdict() == {"transport": "tls", "host": "example.com", "port": 443,
                           "explicit_scheme": True, "path": None}
    with pytest.raises(KeyError):
        p["nope"]
