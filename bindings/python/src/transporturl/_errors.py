"""The exceptions: one root, ``Error(OSError)``, and one subclass per code
that also inherits the matching built-in (as ``ssl.SSLCertVerificationError``
also is a ``ValueError``), so ``except ConnectionRefusedError:`` or
``except TimeoutError:`` catch them."""

from __future__ import annotations

import socket
import ssl
from typing import Any, Dict, Optional, Tuple, Type

from ._lib import CODE_NAMES, CODES, strerror

__all__ = [
    "Error",
    "InvalidArgumentError",
    "URLError",
    "UnsupportedTransportError",
    "InsecureProtocolError",
    "ResolveError",
    "RefusedError",
    "TimeoutError",
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
    "CLASS_FOR_CODE_NAME",
    "error_from_code",
]

_builtin_TimeoutError = TimeoutError


class Error(OSError):
    """Any failure reported by transporturl.

    ``code`` is the ``TU_E_*`` value, ``code_name`` its name
    (``"TU_E_REFUSED"``) and ``message`` the library's text, which says what
    went wrong and where. ``str(e)`` is ``"[TU_E_REFUSED] message"``.
    """

    #: The code a subclass stands for (used when raised without one).
    default_code_name = "TU_E_INTERNAL"

    code: int
    code_name: str
    message: str

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        if code is None:
            code = CODES.get(self.default_code_name, 0)
        self.code = code
        self.code_name = CODE_NAMES.get(code, f"TU_E_UNKNOWN({code})")
        self.message = message or strerror(code)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code_name}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code_name})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.code))


def _rebuild(cls: Type[Error], message: str, code: int) -> Error:
    return cls(message, code)


class InvalidArgumentError(Error, ValueError):
    """TU_E_INVALID_ARGUMENT: a bad option key or value, non-UTF-8 text, a NUL
    byte, a zero length, a datagram over the UDP maximum."""

    default_code_name = "TU_E_INVALID_ARGUMENT"


class URLError(Error, ValueError):
    """TU_E_URL: the URL is malformed (the message gives the byte offset)."""

    default_code_name = "TU_E_URL"


class UnsupportedTransportError(Error, ValueError):
    """TU_E_UNSUPPORTED_TRANSPORT: an unknown scheme, or TLS over UDP."""

    default_code_name = "TU_E_UNSUPPORTED_TRANSPORT"


class InsecureProtocolError(Error, ValueError):
    """TU_E_INSECURE_PROTOCOL: SSLv2/SSLv3/TLS 1.0/TLS 1.1 asked for."""

    default_code_name = "TU_E_INSECURE_PROTOCOL"


class ResolveError(Error, socket.gaierror):
    """TU_E_RESOLVE: the host name does not resolve (also a
    ``socket.gaierror``)."""

    default_code_name = "TU_E_RESOLVE"


class RefusedError(Error, ConnectionRefusedError):
    """TU_E_REFUSED: connection refused (TCP RST, ICMP port unreachable)."""

    default_code_name = "TU_E_REFUSED"


class TimeoutError(Error, _builtin_TimeoutError):  # noqa: A001 - deliberate, as socket.timeout
    """TU_E_TIMEOUT: connect, handshake, read or write took too long (also the
    built-in ``TimeoutError``, i.e. ``socket.timeout``)."""

    default_code_name = "TU_E_TIMEOUT"


class ConnectionIOError(Error, ConnectionError):
    """TU_E_IO: any other OS-level failure (reset, unreachable, broken pipe)."""

    default_code_name = "TU_E_IO"


class TLSError(Error, ssl.SSLError):
    """TU_E_TLS: a TLS handshake or protocol failure (also an
    ``ssl.SSLError``)."""

    default_code_name = "TU_E_TLS"


class CertificateError(TLSError, ssl.SSLCertVerificationError):
    """TU_E_CERTIFICATE: the peer's certificate failed verification (also an
    ``ssl.SSLCertVerificationError``, hence a ``ValueError``)."""

    default_code_name = "TU_E_CERTIFICATE"


class PlaintextPeerError(TLSError):
    """TU_E_PLAINTEXT_PEER: a TLS handshake met a plaintext reply (e.g. an
    SMTP ``220`` greeting on a port that expects STARTTLS)."""

    default_code_name = "TU_E_PLAINTEXT_PEER"


class ProtocolError(Error, ConnectionError):
    """TU_E_PROTOCOL: the peer broke the rules, e.g. plaintext queued behind a
    STARTTLS reply (also raised by ``enable_crypto`` when a Python-side
    buffer holds such bytes)."""

    default_code_name = "TU_E_PROTOCOL"


class TruncatedError(Error, ConnectionError):
    """TU_E_TRUNCATED: a TLS stream ended without close_notify, or a UDP
    datagram did not fit the buffer (the message gives its size)."""

    default_code_name = "TU_E_TRUNCATED"


class WouldBlockError(Error, BlockingIOError):
    """TU_E_WOULD_BLOCK: non-blocking connection, nothing to do yet."""

    default_code_name = "TU_E_WOULD_BLOCK"


class StateError(Error):
    """TU_E_STATE: the call is not valid now (crypto on UDP, enabling TLS
    twice, use after shutdown)."""

    default_code_name = "TU_E_STATE"


class InternalError(Error):
    """TU_E_INTERNAL: a bug caught at the library's boundary."""

    default_code_name = "TU_E_INTERNAL"


class NotSupportedError(StateError, NotImplementedError):
    """The loaded library build lacks the C function this call needs (it is
    older than this binding). Code TU_E_STATE."""

    default_code_name = "TU_E_STATE"


#: Every code name of the header, with its class. The test suite fails if
#: this drifts from the header or from the library's ``tu_code_name``.
CLASS_FOR_CODE_NAME: Dict[str, Optional[Type[Error]]] = {
    "TU_OK": None,
    "TU_E_INVALID_ARGUMENT": InvalidArgumentError,
    "TU_E_URL": URLError,
    "TU_E_UNSUPPORTED_TRANSPORT": UnsupportedTransportError,
    "TU_E_INSECURE_PROTOCOL": InsecureProtocolError,
    "TU_E_RESOLVE": ResolveError,
    "TU_E_REFUSED": RefusedError,
    "TU_E_TIMEOUT": TimeoutError,
    "TU_E_IO": ConnectionIOError,
    "TU_E_TLS": TLSError,
    "TU_E_CERTIFICATE": CertificateError,
    "TU_E_PLAINTEXT_PEER": PlaintextPeerError,
    "TU_E_PROTOCOL": ProtocolError,
    "TU_E_TRUNCATED": TruncatedError,
    "TU_E_WOULD_BLOCK": WouldBlockError,
    "TU_E_STATE": StateError,
    "TU_E_INTERNAL": InternalError,
}


def error_from_code(code: int, message: str = "") -> Error:
    """The exception for a ``TU_E_*`` code (the root class for a code this
    binding does not know yet)."""
    cls = CLASS_FOR_CODE_NAME.get(CODE_NAMES.get(code, ""))
    return (cls or Error)(message, code)
