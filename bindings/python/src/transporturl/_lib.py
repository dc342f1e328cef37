"""Loading libtransporturl and declaring its C functions.

Everything ctypes knows about the library is in this module: the structures
(``tu_error``, ``tu_url_parts``), the one declaration table ``FUNCTIONS``,
the loader, and the error-code table read from the library at import time.
No rule of the library (URL syntax, option checks, messages) is repeated here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings
from ctypes import (
    POINTER,
    c_char,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_ssize_t,
    c_void_p,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from typing import NoReturn

ENV_VAR = "TRANSPORTURL_LIB"

#: ``TU_ERROR_MESSAGE_SIZE`` of the header (checked by the test suite).
ERROR_MESSAGE_SIZE = 512

#: ``TU_OK`` is 0 by contract ("so that ``if (rc)`` works").
TU_OK = 0


class TuError(ctypes.Structure):
    """``struct tu_error``: caller-owned, reset by the library on entry."""

    _fields_ = [("code", c_int32), ("message", c_char * ERROR_MESSAGE_SIZE)]

    def text(self) -> str:
        # ``.message`` of a c_char array stops at the first NUL.
        raw: bytes = self.message
        return raw.decode("utf-8", "replace")


class TuUrlParts(ctypes.Structure):
    """``struct tu_url_parts``, filled by ``tu_parse_url``."""

    _fields_ = [
        ("transport", c_char * 16),
        ("host", c_char * 320),
        ("port", c_int32),
        ("explicit_scheme", c_int32),
        ("path", c_char * 128),
    ]


# The header's layouts (int32 + char arrays: no padding anywhere). The test
# suite also checks these numbers against the header's text.
if ctypes.sizeof(TuError) != 4 + ERROR_MESSAGE_SIZE or ctypes.sizeof(TuUrlParts) != 472:
    raise ImportError("transporturl: ctypes structure sizes do not match the C header")

_ERR = POINTER(TuError)
_H = c_void_p  # tu_handle * (opaque)
_O = c_void_p  # tu_options * (opaque)


class Fn(NamedTuple):
    """One row of the declaration table."""

    name: str
    argtypes: Sequence[Any]
    restype: Any
    #: ctypes ``errcheck``: turns a failure result into an exception.
    errcheck: Optional[Callable[..., Any]]
    #: Newer functions may be missing from an older library build: calling
    #: them raises NotSupportedError instead of failing the import.
    optional: bool = False


def _fn(
    name: str,
    argtypes: Sequence[Any],
    restype: Any,
    errcheck: Optional[Callable[..., Any]] = None,
    *,
    optional: bool = False,
) -> Fn:
    return Fn(name, tuple(argtypes), restype, errcheck, optional)


# -- error checks (ctypes calls them as errcheck(result, func, args)) --------


def _raise(code: int, message: str) -> "NoReturn":
    from ._errors import error_from_code  # late: _errors needs this module loaded

    raise error_from_code(code, message)


def _handle_error(h: Any, code: int) -> "NoReturn":
    """The failure ``code`` of a call on handle ``h``, with the message the
    handle recorded. With full duplex, the other direction may have recorded
    a failure since: its message is used only if its code matches."""
    err = TuError()
    LIB.tu_last_error(h, err)
    message = err.text() if err.code == code and err.message else strerror(code)
    _raise(code, message)


def check_null(result: Optional[int], func: Any, args: Tuple[Any, ...]) -> int:
    """A pointer result; NULL means failure, described by the ``tu_error``
    passed last."""
    if result is None:
        _struct_error(args[-1], 0)
    return result


def check_code(result: int, func: Any, args: Tuple[Any, ...]) -> int:
    """A TU_OK / TU_E_* result, described by the ``tu_error`` passed last."""
    if result != TU_OK:
        _struct_error(args[-1], result)
    return result


def _struct_error(err: Any, code: int) -> "NoReturn":
    if isinstance(err, TuError) and err.code != TU_OK:
        code = err.code
        message = err.text()
    else:
        message = ""
    if code == TU_OK:  # NULL without a code: only if memory ran out
        code = CODES.get("TU_E_INTERNAL", 16)
    _raise(code, message or strerror(code))


def check_handle_code(result: int, func: Any, args: Tuple[Any, ...]) -> int:
    """A TU_OK / TU_E_* result of a call on the handle ``args[0]``."""
    if result != TU_OK:
        h = args[0]
        del args  # keep the caller's buffers out of the traceback
        _handle_error(h, result)
    return result


def check_count(result: int, func: Any, args: Tuple[Any, ...]) -> Optional[int]:
    """tu_read/tu_write: a count, 0 (EOF), or -(TU_E_* code). Would-block
    becomes None, the io.RawIOBase convention."""
    if result >= 0:
        return result
    code = -result
    if code == WOULD_BLOCK:
        return None
    h = args[0]
    del args  # the traceback must not pin the caller's buffer (a bytearray could not resize)
    _handle_error(h, code)


def check_size(result: int, func: Any, args: Tuple[Any, ...]) -> int:
    """A size (>= 0) or -(TU_E_* code), for a call on the handle ``args[0]``."""
    if result < 0:
        h = args[0]
        del args
        _handle_error(h, -result)
    return result


def check_text_out(result: int, func: Any, args: Tuple[Any, ...]) -> Optional[int]:
    """Calls that copy text into a caller's buffer: TU_OK, None for
    TU_E_STATE ("TLS is not on": no value), else raise."""
    if result == TU_OK:
        return result
    if result == STATE:
        return None
    h = args[0]
    del args
    _handle_error(h, result)


#: Every C function the binding uses: C signature and error check. Core
#: functions (DESIGN §2 and the first header) must be present; optional ones
#: arrived later and may be missing from an older build.
FUNCTIONS: Tuple[Fn, ...] = (
    # core
    _fn("tu_connect", [c_char_p, _ERR], _H, check_null),
    _fn("tu_connect_opts", [c_char_p, _O, _ERR], _H, check_null),
    _fn("tu_enable_crypto", [_H, c_int32], c_int32, check_handle_code),
    _fn("tu_read", [_H, c_void_p, c_size_t], c_ssize_t, check_count),
    _fn("tu_write", [_H, c_void_p, c_size_t], c_ssize_t, check_count),
    _fn("tu_last_error", [_H, _ERR], c_int32),
    _fn("tu_close", [_H], None),
    _fn("tu_options_new", [], _O),
    _fn("tu_options_set", [_O, c_char_p, c_char_p, _ERR], c_int32, check_code),
    _fn("tu_options_free", [_O], None),
    _fn("tu_parse_url", [c_char_p, POINTER(TuUrlParts), _ERR], c_int32, check_code),
    _fn("tu_version", [], c_char_p),
    _fn("tu_strerror", [c_int32], c_char_p),
    _fn("tu_code_name", [c_int32], c_char_p),
    _fn("tu_fileno", [_H], c_int32),
    _fn("tu_tls_version", [_H], c_char_p),
    _fn("tu_tls_cipher_suite", [_H], c_char_p),
    # added later (issues 3 and 4): an older build may lack them
    _fn("tu_connect_host", [c_char_p, c_int32, _O, _ERR], _H, check_null, optional=True),
    _fn("tu_parse_host", [c_char_p, c_int32, POINTER(TuUrlParts), _ERR], c_int32, check_code, optional=True),
    _fn("tu_set_nonblocking", [_H, c_int32], c_int32, check_handle_code, optional=True),
    _fn("tu_wants", [_H], c_int32, optional=True),
    _fn("tu_pending", [_H], c_size_t, optional=True),
    _fn("tu_set_timeout", [_H, c_int32, c_int64], c_int32, check_handle_code, optional=True),
    _fn("tu_shutdown", [_H, c_int32], c_int32, check_handle_code, optional=True),
    _fn("tu_local_address", [_H, c_char_p, c_size_t], c_int32, check_handle_code, optional=True),
    _fn("tu_peer_address", [_H, c_char_p, c_size_t], c_int32, check_handle_code, optional=True),
    _fn("tu_tls_group", [_H], c_char_p, optional=True),
    _fn("tu_tls_alpn", [_H, c_char_p, c_size_t], c_int32, check_text_out, optional=True),
    _fn("tu_tls_resumed", [_H], c_int32, optional=True),
    _fn("tu_tls_peer_verified", [_H], c_int32, optional=True),
    _fn("tu_tls_sni", [_H, c_char_p, c_size_t], c_int32, check_text_out, optional=True),
    _fn("tu_tls_peer_cert", [_H, c_size_t, c_void_p, c_size_t], c_ssize_t, check_size, optional=True),
    # added with the Go binding (issue 6)
    _fn("tu_flush", [_H], c_int32, check_handle_code, optional=True),
)

CORE = frozenset(f.name for f in FUNCTIONS if not f.optional)


def _library_file_name() -> str:
    if sys.platform == "darwin":
        return "libtransporturl.dylib"
    if sys.platform == "win32":
        return "transporturl.dll"
    return "libtransporturl.so"


def _repository_candidates() -> Iterator[Path]:
    """``target/release`` of a transporturl checkout above this package (an
    editable install or a venv inside the repository) or above the current
    directory."""
    name = _library_file_name()
    seen = set()
    here = Path(__file__).resolve().parent
    for start in (here, Path.cwd()):
        for d in (start, *start.parents):
            if d in seen:
                continue
            seen.add(d)
            cargo = d / "Cargo.toml"
            if not cargo.is_file():
                continue
            try:
                is_ours = 'name = "transporturl"' in cargo.read_text(errors="replace")
            except OSError:
                is_ours = False
            if is_ours:
                yield d / "target" / "release" / name


def _candidates() -> Iterator[Tuple[str, Optional[str]]]:
    """(where, path) in the documented order; path None = nothing there."""
    env = os.environ.get(ENV_VAR)
    if env:
        yield ("$" + ENV_VAR, env)
    bundled = Path(__file__).resolve().parent / _library_file_name()
    yield ("bundled copy", str(bundled))
    yield ("ctypes.util.find_library('transporturl')", ctypes.util.find_library("transporturl"))
    repo = False
    for p in _repository_candidates():
        repo = True
        yield ("repository build", str(p))
    if not repo:
        yield ("repository build", None)


class Library:
    """The loaded shared library with every declared function set up.

    A missing optional function is replaced by a stub that raises
    NotSupportedError when called; a missing core function makes the file
    unusable (OSError, reported by the loader)."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.cdll = cdll
        self.path = path
        self.missing: List[str] = []
        for f in FUNCTIONS:
            try:
                func = getattr(cdll, f.name)
            except AttributeError:
                self.missing.append(f.name)
                setattr(self, f.name, _unsupported(f.name, path))
                continue
            func.argtypes = list(f.argtypes)
            func.restype = f.restype
            if f.errcheck is not None:
                func.errcheck = f.errcheck
            setattr(self, f.name, func)
        missing_core = sorted(CORE.intersection(self.missing))
        if missing_core:
            raise OSError("not a usable transporturl library: missing " + ", ".join(missing_core))

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not declared (typing: the declared
        # functions are set as attributes in __init__).
        raise AttributeError(f"{name} is not in transporturl's declaration table")

    def has(self, name: str) -> bool:
        """Whether this build exports ``name``."""
        return name not in self.missing and hasattr(self, name)


def _unsupported(name: str, path: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        from ._errors import NotSupportedError

        raise NotSupportedError(f"{name}() is not supported by this library build ({path})")

    call.__name__ = name
    return call


def load() -> Library:
    """Load the library from the first place that works; one ImportError
    listing every attempt when none does."""
    attempts: List[str] = []
    env_failed = False
    for where, path in _candidates():
        if not path:
            attempts.append(f"{where}: not found")
            continue
        if (os.sep in path or "/" in path) and not os.path.exists(path):
            attempts.append(f"{where}: {path}: no such file")
            if where.startswith("$"):
                env_failed = True
            continue
        try:
            cdll = ctypes.CDLL(path)
            lib = Library(cdll, path)
        except OSError as e:
            attempts.append(f"{where}: {path}: {e}")
            if where.startswith("$"):
                env_failed = True
            continue
        if env_failed:
            warnings.warn(
                f"{ENV_VAR} could not be loaded ({attempts[0]}); using {path} instead",
                RuntimeWarning,
                stacklevel=3,
            )
        return lib
    raise ImportError(
        "transporturl: cannot load the shared library (build it with `cargo build --release`, "
        f"or set {ENV_VAR} to its path). Tried, in order:\n  " + "\n  ".join(attempts)
    )


LIB = load()

#: The library version ("0.1.0").
LIB_VERSION: str = LIB.tu_version().decode()


def _read_codes() -> Dict[int, str]:
    """The code table, from the library itself (tu_code_name); codes are
    small and only ever appended, so scanning a generous range is enough."""
    codes: Dict[int, str] = {}
    for value in range(0, 256):
        name = LIB.tu_code_name(value)
        if name is not None:
            codes[value] = name.decode()
    return codes


#: value -> name ("TU_E_URL"), as the library reports them.
CODE_NAMES: Dict[int, str] = _read_codes()
#: name -> value.
CODES: Dict[str, int] = {v: k for k, v in CODE_NAMES.items()}


def strerror(code: int) -> str:
    s = LIB.tu_strerror(code)
    return s.decode("utf-8", "replace") if s is not None else "unknown error code"


WOULD_BLOCK: int = CODES.get("TU_E_WOULD_BLOCK", 14)
STATE: int = CODES.get("TU_E_STATE", 15)


def require(name: str) -> Callable[..., Any]:
    """The declared function ``name``; NotSupportedError if this library
    build (or this binding's table) does not have it."""
    func: Optional[Callable[..., Any]] = getattr(LIB, name, None)
    return func if func is not None else _unsupported(name, LIB.path)
