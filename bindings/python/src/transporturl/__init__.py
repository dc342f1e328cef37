"""transporturl: open PHP-style transport URLs (``tcp://``, ``udp://``,
``tls://``, ``unix://`` …) and upgrade them to TLS in place (STARTTLS).

A thin ctypes binding over libtransporturl's C ABI: every rule (URL syntax,
option checks, error codes and messages) lives in the library.

    import io, transporturl

    with transporturl.connect("tcp://mail.example.com:25", timeout=10) as conn:
        lines = io.BufferedReader(conn)
        lines.readline()                       # 220 greeting
        conn.sendall(b"STARTTLS\\r\\n")
        lines.readline()                       # 220 go ahead
        conn.enable_crypto()                   # TLS, certificate verified

Errors are ``transporturl.Error`` (an ``OSError``) subclasses that also
inherit the matching built-in: ``ConnectionRefusedError``,
``TimeoutError``, ``ValueError`` for bad URLs and options, …
"""

from __future__ import annotations

from . import _lib
from ._connection import (
    CRYPTO_ANY,
    CRYPTO_NONE,
    CRYPTO_SSLV2,
    CRYPTO_SSLV3,
    CRYPTO_TLSV1_0,
    CRYPTO_TLSV1_1,
    CRYPTO_TLSV1_2,
    CRYPTO_TLSV1_3,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    TIMEOUT_CONNECT,
    TIMEOUT_READ,
    TIMEOUT_WRITE,
    UDP_MAX_DATAGRAM,
    WANT_READ,
    WANT_WRITE,
    Connection,
    URLParts,
    connect,
    connect_host,
    parse_url,
)
from ._errors import (
    CertificateError,
    ConnectionIOError,
    Error,
    InsecureProtocolError,
    InternalError,
    InvalidArgumentError,
    NotSupportedError,
    PlaintextPeerError,
    ProtocolError,
    RefusedError,
    ResolveError,
    StateError,
    TimeoutError,  # noqa: F401 - public, but kept out of __all__ (see below)
    TLSError,
    TruncatedError,
    UnsupportedTransportError,
    URLError,
    WouldBlockError,
)

__version__ = "0.1.0"

#: Version of the loaded library ("0.1.0").
library_version: str = _lib.LIB_VERSION
#: Path of the loaded library.
library_path: str = _lib.LIB.path

#: Every code of the library: name ("TU_E_URL") -> value, read from the
#: library itself (tu_code_name) at import.
CODES = dict(_lib.CODES)
globals().update(CODES)  # TU_OK, TU_E_URL, ... as module constants


def strerror(code: int) -> str:
    """A short description of a code ("malformed URL"), from the library."""
    return _lib.strerror(code)


def supports(function: str) -> bool:
    """Whether the loaded library exports the C function ``function``
    (newer functions may be missing from an older build)."""
    return _lib.LIB.has(function)


__all__ = [
    "connect",
    "connect_host",
    "parse_url",
    "Connection",
    "URLParts",
    "CRYPTO_NONE",
    "CRYPTO_ANY",
    "CRYPTO_TLSV1_2",
    "CRYPTO_TLSV1_3",
    "CRYPTO_SSLV2",
    "CRYPTO_SSLV3",
    "CRYPTO_TLSV1_0",
    "CRYPTO_TLSV1_1",
    "WANT_READ",
    "WANT_WRITE",
    "TIMEOUT_READ",
    "TIMEOUT_WRITE",
    "TIMEOUT_CONNECT",
    "SHUT_RD",
    "SHUT_WR",
    "SHUT_RDWR",
    "UDP_MAX_DATAGRAM",
    "CODES",
    "strerror",
    "supports",
    "library_version",
    "library_path",
    "Error",
    "InvalidArgumentError",
    "URLError",
    "UnsupportedTransportError",
    "InsecureProtocolError",
    "ResolveError",
    "RefusedError",
    # "TimeoutError" is left out of __all__ so that a star import does not
    # shadow the built-in (it subclasses it: `except TimeoutError` catches it).
    "ConnectionIOError",
    "TLSError",
    "CertificateError",
    "PlaintextPeerError",
    "ProtocolError",
    "TruncatedError",
    "WouldBlockError",
    "StateError",
    "InternalError",
    "NotSupportedError",
]
