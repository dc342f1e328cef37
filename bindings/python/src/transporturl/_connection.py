"""``Connection``: an open transport URL as an ``io.RawIOBase``."""

from __future__ import annotations

import ctypes
import decimal
import gc
import io
import math
import operator
import os
import threading
import time
import warnings
from typing import Any, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

from . import _lib
from ._errors import InvalidArgumentError, NotSupportedError, ProtocolError, URLError, WouldBlockError
from ._lib import LIB, TuError, TuUrlParts


# tu_enable_crypto methods: #defines of the header (no symbol to read them
# from); the test suite checks them against include/transporturl.h.
CRYPTO_NONE = 0
CRYPTO_ANY = 1
CRYPTO_TLSV1_2 = 2
CRYPTO_TLSV1_3 = 3
CRYPTO_SSLV2 = 10
CRYPTO_SSLV3 = 11
CRYPTO_TLSV1_0 = 12
CRYPTO_TLSV1_1 = 13

# tu_wants bits, tu_set_timeout selectors, tu_shutdown directions (the
# header's #defines; checked by the test suite). SHUT_* equal socket's.
WANT_READ = 1
WANT_WRITE = 2
TIMEOUT_READ = 1
TIMEOUT_WRITE = 2
TIMEOUT_CONNECT = 4
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2
#: The largest UDP payload one write may carry.
UDP_MAX_DATAGRAM = 65507

Text = Union[str, bytes]
Buffer = Any  # anything with the buffer protocol (bytes, bytearray, memoryview, array, mmap)


# -- turning Python values into C text --------------------------------------


def _c_text(value: Union[str, bytes, "os.PathLike[Any]"], what: str) -> bytes:
    """UTF-8 bytes for a C string. Only what C cannot carry is refused here
    (a NUL byte would silently cut the string); whether the text is valid is
    the library's call (it reports non-UTF-8 bytes with their offset)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        try:
            data = value.encode("utf-8", "surrogateescape")  # os.fsdecode()d names round-trip
        except UnicodeEncodeError as e:
            raise InvalidArgumentError(f"{what} is not valid UTF-8 (lone surrogate at character {e.start})") from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    nul = data.find(b"\0")
    if nul >= 0:
        raise InvalidArgumentError(f"{what} holds a NUL byte at offset {nul}; a C string cannot carry it")
    return data


def _option_text(value: Any, key: str) -> bytes:
    """An option value as the text ``tu_options_set`` takes: bools are
    "true"/"false", numbers their decimal form, paths their file name, and a
    list/tuple a comma-separated list (``ssl.alpn_protocols``). The library
    checks the result."""
    if isinstance(value, bool):
        text: Any = "true" if value else "false"
    elif isinstance(value, int):
        text = str(int(value))
    elif isinstance(value, float):
        text = repr(value)
        if math.isfinite(value) and ("e" in text or "E" in text):
            text = format(decimal.Decimal(text), "f")  # 1e-05 -> "0.00001": plain decimal notation
    elif isinstance(value, (list, tuple)):
        parts = [_option_text(v, key).decode("utf-8", "surrogateescape") for v in value]
        text = ",".join(parts)
    else:
        text = value
    return _c_text(text, f"the value of option {key!r}")


def _flatten(options: Mapping[str, Any], prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``{"ssl": {"cafile": f}}`` -> ``("ssl.cafile", f)``; None values are
    left out (the library's default stands)."""
    for key, value in options.items():
        if not isinstance(key, str):
            raise TypeError(f"option keys must be str, not {type(key).__name__}")
        name = prefix + key
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        elif value is not None:
            yield name, value


class _Options:
    """A ``tu_options`` for one connect call (freed right after it)."""

    def __init__(self, timeout: Any, options: Mapping[str, Any]) -> None:
        items = list(_flatten(options))
        if timeout is not None:
            items.insert(0, ("timeout", timeout))
        self.ptr: Optional[int] = None
        if not items:
            return
        # Convert first: a TypeError must not leak a tu_options.
        converted = [(_c_text(k, "option key"), _option_text(v, k)) for k, v in items]
        ptr = LIB.tu_options_new()
        if not ptr:
            raise MemoryError("tu_options_new() failed")
        self.ptr = ptr
        try:
            for key, value in converted:
                LIB.tu_options_set(ptr, key, value, TuError())
        except BaseException:
            self.free()
            raise

    def free(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr:
            LIB.tu_options_free(ptr)

    def __enter__(self) -> "_Options":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.free()


# -- URLs ---------------------------------------------------------------------


class URLParts(NamedTuple):
    """The parts of a transport URL, as ``tu_parse_url`` reports them."""

    transport: str
    #: None for unix:// and udg://
    host: Optional[str]
    #: None when the URL has no port
    port: Optional[int]
    #: False when "tcp://" was implied
    explicit_scheme: bool
    #: the socket path of unix:// and udg://, else None
    path: Optional[str]

    def __getitem__(self, key: Any) -> Any:
        """By position, as any tuple, or by field name (``parts["host"]``)."""
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(key)
            return getattr(self, key)
        return tuple.__getitem__(self, key)


def parse_url(url: Text, port: Optional[int] = None) -> URLParts:
    """Parse ``url`` without connecting (``tu_parse_url``). Raises the
    exception ``connect`` would raise for a malformed URL.

    ``port`` (fsockopen style: the host part in ``url``, the port apart;
    0 or None = none) needs ``tu_parse_host`` in the library."""
    parts = TuUrlParts()
    if port is None:
        LIB.tu_parse_url(_c_text(url, "url"), parts, TuError())
    else:
        _lib.require("tu_parse_host")(_c_text(url, "host"), _port(port), parts, TuError())

    def text(field: bytes) -> Optional[str]:
        return field.decode("utf-8", "surrogateescape") or None

    return URLParts(
        transport=parts.transport.decode("ascii"),
        host=text(parts.host),
        port=parts.port or None,
        explicit_scheme=bool(parts.explicit_scheme),
        path=text(parts.path),
    )


def _int32(value: Any, what: str) -> int:
    """An int for an ``int32_t`` parameter. ctypes would silently wrap a
    larger value (2**32 + 1 would become 1), so that is refused here; every
    other check is the library's."""
    if isinstance(value, bool):
        value = int(value)
    number: int = operator.index(value)  # TypeError for non-integers
    if not -(2**31) <= number < 2**31:
        raise InvalidArgumentError(f"{what} {number} does not fit a C int32_t")
    return number


_INT64_MAX = 2**63 - 1


def _milliseconds(seconds: Optional[float]) -> int:
    """Seconds (None or infinity = no limit) as the library's milliseconds
    (< 0 = no limit; 0 is refused by the library). Positive values round
    up, so a tiny limit stays a limit."""
    if seconds is None:
        return -1
    seconds = float(seconds)
    if math.isnan(seconds):
        raise ValueError("timeout is NaN")
    if math.isinf(seconds):
        return -1  # either infinity: no limit (the library reads any negative value so)
    ms = math.ceil(seconds * 1000) if seconds > 0 else math.floor(seconds * 1000)
    return max(-_INT64_MAX, min(ms, _INT64_MAX))


def _port(port: Any) -> int:
    if isinstance(port, bool):
        raise TypeError("port must be an int, not bool")
    try:
        return _int32(port, "port")
    except InvalidArgumentError as e:
        raise URLError(e.message) from None


# -- the connection -------------------------------------------------------------


class Connection(io.RawIOBase):
    """An open connection (``tu_handle``): a raw binary stream.

    ``readinto`` fills the caller's buffer without copies and returns 0 at
    EOF (``None`` on would-block, in non-blocking mode); ``write`` sends all
    of its argument, or raises ``TimeoutError`` (a ``transporturl.Timeout``)
    when the write limit passes, even part way (the message says how much
    went out). ``io.BufferedReader(conn)`` gives ``readline``. TLS is turned on
    in place with ``enable_crypto`` (STARTTLS). In non-blocking mode a TLS
    write may accept bytes whose encrypted records still wait inside the
    library: ``flush`` sends them (``sendall`` does it itself).

    One reader and one writer thread may use a connection at the same time
    (full duplex); every other call waits for them. ``close`` is idempotent
    and runs from ``__del__`` too (with a ResourceWarning, as for sockets).
    A buffered reader that is garbage-collected leaves the connection open
    (as the files of ``socket.makefile`` do); closing the reader closes it.
    """

    # Kept on the class so that close() from __del__ at interpreter exit
    # does not depend on module globals (they may already be gone).
    _tu_close = LIB.tu_close
    _tu_read = LIB.tu_read
    _tu_write = LIB.tu_write
    _tu_shutdown = LIB.tu_shutdown if LIB.has("tu_shutdown") else None
    _tu_flush = LIB.tu_flush if LIB.has("tu_flush") else None
    _get_ident = staticmethod(threading.get_ident)
    _monotonic = staticmethod(time.monotonic)

    _h: Optional[int] = None
    _fd = -1

    def __init__(self, url: Text, port: Optional[int] = None, *, timeout: Any = None, **options: Any) -> None:
        """Open ``url`` (``tcp://host:port``, ``tls://…``, ``unix:///path``).

        With ``port``, fsockopen style: ``url`` is the host part and the
        port comes apart (needs ``tu_connect_host``). ``timeout`` is the
        ``timeout`` option (seconds for connect + handshake); other options
        use the library's names (DESIGN §3): ``read_timeout=5``,
        ``ssl={"cafile": path}`` or ``**{"ssl.cafile": path}``.
        """
        super().__init__()
        self._ctl = threading.Lock()  # every call other than read/write
        self._rlock = threading.Lock()  # one reader ...
        self._wlock = threading.Lock()  # ... and one writer at a time
        self._nread = 0  # bytes returned by readinto: the stream position for tell()
        self._url = url if isinstance(url, str) else bytes(url).decode("utf-8", "replace")
        c_url = _c_text(url, "url" if port is None else "host")
        with _Options(timeout, options) as opts:
            if port is None:
                h = LIB.tu_connect_opts(c_url, opts.ptr, TuError())
            else:
                h = _lib.require("tu_connect_host")(c_url, _port(port), opts.ptr, TuError())
        self._h = h
        self._fd = LIB.tu_fileno(h)  # fixed for the handle's life

    # -- plumbing --------------------------------------------------------

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise ValueError("I/O operation on closed connection")
        return h

    def __repr__(self) -> str:  # takes no lock: safe while other threads use the connection
        if self._h is None:
            return f"<transporturl.Connection {self._url!r} closed>"
        return f"<transporturl.Connection {self._url!r} fd={self._fd}>"

    @property
    def url(self) -> str:
        """The URL (or host part) given to connect."""
        return self._url

    # -- io.RawIOBase ------------------------------------------------------

    def readable(self) -> bool:
        self._handle()
        return True

    def writable(self) -> bool:
        self._handle()
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        """Bytes read so far. (A buffered reader on top subtracts what it
        holds: that is how ``enable_crypto`` finds unread buffered bytes.)"""
        self._handle()
        return self._nread

    def fileno(self) -> int:
        """The socket's file descriptor, for select/poll. Borrowed: closing
        the connection closes it."""
        self._handle()
        return self._fd

    def readinto(self, b: Buffer) -> Optional[int]:
        """Read into ``b`` (no copy): the count, 0 at orderly EOF, None when
        a non-blocking connection has nothing yet. On udp:// one read is one
        datagram."""
        view = memoryview(b)
        if view.readonly:
            raise TypeError("readinto() needs a writable buffer")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size = view.nbytes
        if size == 0:
            self._handle()
            return 0
        cbuf = (ctypes.c_char * size).from_buffer(view)
        try:
            with self._rlock:
                n: Optional[int] = self._tu_read(self._handle(), cbuf, size)
                if n:
                    self._nread += n
                return n
        finally:
            # Release our hold on the caller's buffer now, even when an
            # exception (and its traceback) outlives this call.
            del cbuf
            view.release()

    def write(self, b: Buffer) -> Optional[int]:
        """Send ``b``: all of it, unless the write timeout passes part way
        (then the count that went out). None on would-block. On udp:// one
        write is one datagram.

        Non-blocking mode: the count accepted now (maybe less than
        ``len(b)``). Over TLS, accepted bytes may still sit inside the
        library as encrypted records the socket could not take yet
        (``wants`` shows WANT_WRITE): call ``flush`` until it returns."""
        if isinstance(b, bytes):
            size = len(b)
            ptr: Any = b  # ctypes passes a pointer to the bytes' own storage
        else:
            view = memoryview(b)
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            size = view.nbytes
            ptr = view.tobytes() if view.readonly else (ctypes.c_char * size).from_buffer(view) if size else b""
        if size == 0:
            self._handle()
            return 0
        with self._wlock:
            n: Optional[int] = self._tu_write(self._handle(), ptr, size)
            return n

    def flush(self) -> None:
        """Send the TLS records that writes left queued inside the library
        (``tu_flush``); nothing to do on a plaintext connection.

        Blocking mode: waits for room up to the write time limit
        (TimeoutError when it passes). A blocking ``write`` leaves records
        behind only when that limit passed part way, so this is rarely
        needed there.

        Non-blocking mode: a TLS ``write``/``send`` may accept bytes whose
        encrypted records the socket cannot take yet (``wants`` then shows
        WANT_WRITE). ``flush`` sends what the socket takes and raises
        WouldBlockError (a BlockingIOError) while some remain: poll
        ``fileno()`` for writing and call it again, until it returns. That
        is how ``io.BufferedWriter.flush`` reports a non-blocking raw stream
        that cannot take everything yet, rather than returning as if all
        had gone out.

        It is a writer's call: it waits for a write in another thread, and
        may run while another thread reads. (``io.BufferedWriter.flush``
        does not call it: it only writes its own buffer into this stream.)
        ``close`` does not flush first (it closes at once, sending what the
        socket takes within a short grace period); once closed, ValueError,
        as for every io stream."""
        if self._h is None:
            super().flush()  # ValueError once closed; nothing to do while close() runs
            return
        if self._tu_flush is None:
            # An older library build: blocking writes leave nothing behind
            # (but after a timeout); non-blocking mode needs tu_flush.
            if self._nonblocking:
                raise NotSupportedError(
                    f"flush() in non-blocking mode needs tu_flush, which this library build lacks ({LIB.path})"
                )
            return
        with self._wlock:
            self._tu_flush(self._handle())

    def close(self) -> None:
        """Close the connection (TLS: close_notify first). Idempotent; waits
        for a read or write in progress in another thread."""
        spared, self._spared = self._spared, None
        if spared is not None and spared[0] == self._get_ident() and self._monotonic() - spared[1] < 1.0:
            # A buffered wrapper being garbage-collected is closing us (see
            # _dealloc_warn): the connection outlives its wrappers, as a
            # socket outlives the files of socket.makefile().
            return
        if self._h is not None:
            with self._ctl, self._wlock:
                if not self._rlock.acquire(blocking=False):
                    # Another thread waits in a read: wake it (it gets a
                    # StateError) instead of waiting out its time limit.
                    h = self._h
                    if h is not None and self._tu_shutdown is not None:
                        try:
                            self._tu_shutdown(h, 0)  # SHUT_RD
                        except Exception:  # noqa: BLE001 - closing anyway
                            pass
                    self._rlock.acquire()
                try:
                    h, self._h = self._h, None
                    if h is not None:
                        self._tu_close(h)
                finally:
                    self._rlock.release()
        super().close()

    _spared: Optional[Tuple[int, float]] = None

    def _dealloc_warn(self, source: object) -> None:
        """io's hook: an ``io.BufferedReader``/``TextIOWrapper`` on top of us
        calls it from its finaliser right before it closes us. Dropping a
        reader (``io.BufferedReader(conn).readline()``) must not close the
        connection that the caller still holds; ``reader.close()`` does."""
        self._spared = (self._get_ident(), self._monotonic())

    def __del__(self) -> None:
        if self._h is not None:
            self._spared = None
            try:
                message = f"unclosed transporturl connection {self._url!r}"
                warnings.warn(message, ResourceWarning, stacklevel=1, source=self)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report to from a finaliser
            pass

    # -- socket-style helpers -------------------------------------------------

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; b"" at EOF. Raises WouldBlockError in
        non-blocking mode when nothing is there."""
        buf = bytearray(bufsize)
        n = self.readinto(buf)
        if n is None:
            raise WouldBlockError()
        del buf[n:]
        return bytes(buf)

    def recv_into(self, buffer: Buffer, nbytes: int = 0) -> int:
        """Like socket.recv_into."""
        view = memoryview(buffer)
        if nbytes:
            view = view.cast("B")[:nbytes]
        n = self.readinto(view)
        if n is None:
            raise WouldBlockError()
        return n

    def send(self, data: Buffer) -> int:
        """Like write; raises WouldBlockError instead of returning None.
        (Non-blocking TLS: accepted bytes may still need ``flush``.)"""
        n = self.write(data)
        if n is None:
            raise WouldBlockError()
        return n

    def sendall(self, data: Buffer) -> None:
        """Send every byte of ``data`` or raise: when it returns, nothing of
        ``data`` waits inside the library (over TLS it ends with ``flush``).

        Meant for blocking mode, as ``socket.sendall``. In non-blocking mode
        it raises WouldBlockError where it would wait, with
        ``characters_written`` = the bytes taken so far; all of them
        (``len(data)``) means that only the flush is left. Calling
        ``sendall`` again with the rest (``b""`` included) once the socket
        is writable goes on where it stopped."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        sent = 0
        total = len(view)
        while sent < total:
            n = self.write(view if sent == 0 else memoryview(view)[sent:])
            if n is None:
                e = WouldBlockError()
                e.characters_written = sent
                raise e
            sent += n
        if self._tu_flush is None:
            return  # an older library build: it cannot flush (see flush)
        try:
            self.flush()
        except WouldBlockError as e:
            e.characters_written = sent
            raise

    # -- TLS -------------------------------------------------------------------

    def enable_crypto(self, method: int = CRYPTO_ANY) -> None:
        """Turn TLS on in place (STARTTLS), verifying the URL's host (or
        ``ssl.peer_name``); ``CRYPTO_NONE`` turns it off again.

        Call it right after the server's go-ahead. Plaintext already waiting
        is refused as injection (ProtocolError): by the library for bytes in
        the socket, here for bytes a Python buffer (``io.BufferedReader``)
        read ahead and still holds.
        """
        if isinstance(method, bool):
            method = CRYPTO_ANY if method else CRYPTO_NONE
        method = _int32(method, "crypto method")
        with self._ctl, self._rlock, self._wlock:
            h = self._handle()
            if method != CRYPTO_NONE:
                held, sample = self._buffered_elsewhere()
                if held:
                    raise ProtocolError(
                        f"{held} plaintext byte(s) were already read ahead into a Python buffer "
                        f"(io.BufferedReader) when the TLS upgrade began ({sample!r}): a server must send "
                        "nothing after its STARTTLS go-ahead, so these may have been injected; refusing to "
                        "upgrade (read the go-ahead with an unbuffered readline, or check the reader is empty)"
                    )
            LIB.tu_enable_crypto(h, method)

    def _buffered_elsewhere(self) -> Tuple[int, bytes]:
        """Bytes read from this connection that buffered readers on top of
        it still hold, and a sample of them. A buffered reader keeps a
        reference to its raw stream (found through the garbage collector's
        referrer walk; enable_crypto is rare) and knows its position: what
        we returned minus what it handed out."""
        held, sample = 0, b""
        for obj in gc.get_referrers(self):
            if not isinstance(obj, io.BufferedIOBase) or getattr(obj, "raw", None) is not self:
                continue
            if obj.closed or not obj.readable():
                continue
            try:
                n = self._nread - obj.tell()
            except (OSError, ValueError):
                continue
            if n > 0:
                held += n
                if not sample and hasattr(obj, "peek"):
                    sample = obj.peek(0)[:n][:64]  # the buffer is not empty: no read happens
        return held, sample

    @property
    def tls_version(self) -> Optional[str]:
        """"TLSv1.3" or "TLSv1.2"; None while TLS is off."""
        with self._ctl:
            v = LIB.tu_tls_version(self._handle())
        return v.decode() if v is not None else None

    @property
    def tls_cipher_suite(self) -> Optional[str]:
        """IANA name of the cipher suite ("TLS_AES_256_GCM_SHA384"); None
        while TLS is off."""
        with self._ctl:
            v = LIB.tu_tls_cipher_suite(self._handle())
        return v.decode() if v is not None else None

    cipher_suite = tls_cipher_suite

    def version(self) -> Optional[str]:
        """Like ssl.SSLSocket.version()."""
        return self.tls_version

    # -- blocking, time limits, shutdown ------------------------------------------

    def setblocking(self, flag: bool) -> None:
        """Blocking (the default) or non-blocking mode. Non-blocking:
        ``readinto``/``write`` return None where they would wait,
        ``recv``/``send``/``sendall``/``flush``/``enable_crypto``/``shutdown``
        raise WouldBlockError; poll ``fileno()`` for what ``wants`` says,
        and read until would-block before polling (``pending`` bytes are
        invisible to poll). Over TLS, call ``flush`` after writing until it
        returns: a write may leave encrypted records queued inside."""
        with self._ctl, self._rlock, self._wlock:
            LIB.tu_set_nonblocking(self._handle(), 0 if flag else 1)
            self._nonblocking = not flag

    _nonblocking = False

    def getblocking(self) -> bool:
        self._handle()
        return not self._nonblocking

    def settimeout(self, value: Optional[float]) -> None:
        """As ``socket.settimeout``: seconds for each read, write and TLS
        handshake from now on; None = blocking without a limit; 0 =
        non-blocking."""
        if value is not None:
            value = float(value)
            if value < 0 or value != value:
                raise ValueError("timeout value out of range")
        if value == 0:
            self.setblocking(False)
            return
        ms = _milliseconds(value)
        with self._ctl:
            LIB.tu_set_timeout(self._handle(), TIMEOUT_READ | TIMEOUT_WRITE | TIMEOUT_CONNECT, ms)
        if self._nonblocking:
            self.setblocking(True)

    def set_timeout(self, which: int, seconds: Optional[float]) -> None:
        """``tu_set_timeout``: change the limit of ``which`` (TIMEOUT_READ,
        TIMEOUT_WRITE, TIMEOUT_CONNECT, or'ed); None = no limit. May be
        called while another thread reads or writes."""
        which = _int32(which, "timeout selector")
        with self._ctl:
            LIB.tu_set_timeout(self._handle(), which, _milliseconds(seconds))

    def shutdown(self, how: int = SHUT_RDWR) -> None:
        """Shut down reading (SHUT_RD), writing (SHUT_WR: TLS close_notify,
        then the peer sees EOF) or both; a read waiting in another thread
        returns (StateError). ``close`` is still needed."""
        how = _int32(how, "shutdown direction")
        with self._ctl, self._wlock:
            LIB.tu_shutdown(self._handle(), how)

    @property
    def pending(self) -> int:
        """Bytes a read returns without touching the socket (decrypted TLS
        data poll cannot see)."""
        with self._ctl:
            return int(LIB.tu_pending(self._handle()))

    @property
    def wants(self) -> int:
        """After a would-block: WANT_READ and/or WANT_WRITE, what to poll
        ``fileno()`` for."""
        with self._ctl:
            return int(LIB.tu_wants(self._handle()))

    # -- addresses -----------------------------------------------------------------

    def _address(self, func: Any) -> str:
        buf = ctypes.create_string_buffer(256)  # 64 fit any IP address, 110 any Unix path
        with self._ctl:
            func(self._handle(), buf, len(buf))
        return buf.value.decode("utf-8", "surrogateescape")

    @property
    def local_address(self) -> str:
        """"127.0.0.1:5555", "[::1]:5555", a Unix path, "@name" (abstract)
        or "" (unnamed)."""
        return self._address(LIB.tu_local_address)

    @property
    def peer_address(self) -> str:
        """The peer's address, in the form of ``local_address``."""
        return self._address(LIB.tu_peer_address)

    # -- more TLS information ------------------------------------------------------

    def _tls_text(self, func: Any) -> Optional[str]:
        buf = ctypes.create_string_buffer(256)  # "256 bytes always suffice"
        with self._ctl:
            if func(self._handle(), buf, len(buf)) is None:
                return None  # TLS is not on
        return buf.value.decode("utf-8", "replace") or None

    @staticmethod
    def _tristate(value: int) -> Optional[bool]:
        return None if value < 0 else bool(value)

    @property
    def tls_group(self) -> Optional[str]:
        """The key-exchange group ("X25519MLKEM768", "X25519", …); None when
        TLS is off or a resumed TLS 1.2 session had none."""
        with self._ctl:
            v = LIB.tu_tls_group(self._handle())
        return v.decode() if v is not None else None

    @property
    def tls_alpn(self) -> Optional[str]:
        """The protocol agreed by ALPN ("h2"); None when none was or TLS is
        off."""
        return self._tls_text(LIB.tu_tls_alpn)

    def selected_alpn_protocol(self) -> Optional[str]:
        """Like ssl.SSLSocket.selected_alpn_protocol()."""
        return self.tls_alpn

    @property
    def tls_sni(self) -> Optional[str]:
        """The name sent by SNI; None when none was sent or TLS is off."""
        return self._tls_text(LIB.tu_tls_sni)

    @property
    def tls_resumed(self) -> Optional[bool]:
        """Whether the TLS session was resumed; None when TLS is off."""
        with self._ctl:
            return self._tristate(LIB.tu_tls_resumed(self._handle()))

    session_reused = tls_resumed

    @property
    def tls_peer_verified(self) -> Optional[bool]:
        """True when the chain was verified and the name checked, False when
        verification was relaxed; None when TLS is off."""
        with self._ctl:
            return self._tristate(LIB.tu_tls_peer_verified(self._handle()))

    def peer_cert(self, index: int = 0) -> bytes:
        """DER of certificate ``index`` of the server's chain (0 = its own),
        captured with the option ``ssl.capture_peer_cert``. StateError when
        TLS is off or nothing was captured; InvalidArgumentError past the
        end of the chain."""
        if index < 0:
            raise InvalidArgumentError(f"certificate index {index} is negative")
        with self._ctl:
            h = self._handle()
            size = LIB.tu_tls_peer_cert(h, index, None, 0)
            buf = ctypes.create_string_buffer(size)
            n = LIB.tu_tls_peer_cert(h, index, buf, size)
        return buf.raw[:n]

    def peer_cert_chain(self) -> List[bytes]:
        """Every captured certificate of the server's chain, DER, leaf first."""
        chain = [self.peer_cert(0)]
        while True:
            try:
                chain.append(self.peer_cert(len(chain)))
            except InvalidArgumentError:
                return chain

    def getpeercert(self, binary_form: bool = True) -> Optional[bytes]:
        """Like ssl.SSLSocket.getpeercert(binary_form=True): the leaf's DER,
        or None when TLS is off. (Needs ``ssl.capture_peer_cert``; the
        decoded form is not offered.)"""
        if not binary_form:
            raise NotImplementedError("only binary_form=True: decode the DER with a certificate library")
        if self.tls_version is None:
            return None
        return self.peer_cert(0)


def connect(url: Text, *, timeout: Any = None, **options: Any) -> Connection:
    """Open the connection ``url`` names and return it (see Connection)."""
    return Connection(url, timeout=timeout, **options)


def connect_host(host: Text, port: int, *, timeout: Any = None, **options: Any) -> Connection:
    """fsockopen style: the host part (``"tls://example.com"``,
    ``"fe80::1"``) and the port apart; a port in both places is an error."""
    return Connection(host, port, timeout=timeout, **options)
