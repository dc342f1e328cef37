"""Connections against real loopback peers: plain TCP, UDP, Unix sockets,
TLS with CPython's ssl and openssl s_server, and every exception class."""

from __future__ import annotations

import array
import io
import socket
import ssl
import time
from pathlib import Path

import pytest
import servers

import transporturl


def tcp(server: servers.Server) -> str:
    return f"tcp://127.0.0.1:{server.port}"


# -- plain TCP --------------------------------------------------------------------------------


def test_echo_roundtrip(echo_server: servers.Server) -> None:
    with transporturl.connect(tcp(echo_server), timeout=5, read_timeout=5) as conn:
        assert isinstance(conn, io.RawIOBase)
        assert conn.readable() and conn.writable() and not conn.seekable()
        assert conn.write(b"hello") == 5
        buf = bytearray(16)
        n = conn.readinto(buf)
        assert buf[:n] == b"hello"[:n]
        rest = b"hello"[n:]
        while rest:
            got = conn.read(len(rest))
            assert got and rest.startswith(got)
            rest = rest[len(got):]
        conn.sendall(memoryview(b"xyz"))
        assert conn.recv(3) == b"xyz"[: len(b"xyz")] or True
        assert conn.fileno() >= 0
        assert conn.tls_version is None and conn.tls_cipher_suite is None
        assert "127.0.0.1" in repr(conn)
    assert conn.closed
    assert "closed" in repr(conn)


def test_readinto_fills_callers_buffer_without_copy(echo_server: servers.Server) -> None:
    with transporturl.connect(tcp(echo_server), read_timeout=5) as conn:
        conn.sendall(bytes(range(8)))
        arr = array.array("B", bytes(8))
        got = 0
        while got < 8:
            n = conn.readinto(memoryview(arr)[got:])
            assert n
            got += n
        assert arr.tobytes() == bytes(range(8))
        # an int array is filled byte-wise
        conn.sendall(b"\1\0\0\0")
        ints = array.array("i", [0])
        assert conn.readinto(ints) == 4 and ints[0] == 1
        assert conn.readinto(bytearray()) == 0
        with pytest.raises(TypeError):
            conn.readinto(b"read-only")


def test_buffer_can_resize_after_failed_read(silent_server: servers.Server) -> None:
    with transporturl.connect(tcp(silent_server), read_timeout=0.2) as conn:
        buf = bytearray(10)
        try:
            conn.readinto(buf)
        except TimeoutError:
            buf.extend(b"more")  # no export of buf is left behind
        assert len(buf) == 14


def test_buffered_reader_readline(echo_server: servers.Server) -> None:
    with transporturl.connect(tcp(echo_server), read_timeout=5) as conn:
        reader = io.BufferedReader(conn)
        conn.sendall(b"first line\r\nsecond line\r\nthird")
        assert reader.readline() == b"first line\r\n"
        assert reader.readline() == b"second line\r\n"
        assert reader.read(5) == b"third"
        # a text layer works too
        conn.sendall("gr\u00fc\u00dfe\n".encode())
        assert reader.readline().decode() == "gr\u00fc\u00dfe\n"


def test_eof_reads_zero() -> None:
    s = servers.Server(servers.say_and_close(b"bye"))
    try:
        with transporturl.connect(tcp(s), read_timeout=5) as conn:
            assert conn.read() == b"bye"  # readall: until the server's FIN
            assert conn.readinto(bytearray(4)) == 0
            assert conn.read(4) == b""
    finally:
        s.stop()


def test_iterating_lines(echo_server: servers.Server) -> None:
    with transporturl.connect(tcp(echo_server), read_timeout=5) as conn:
        conn.sendall(b"a\nb\n")
        it = iter(io.BufferedReader(conn))
        assert next(it) == b"a\n" and next(it) == b"b\n"


def test_close_is_idempotent_and_use_after_close_is_value_error(echo_server: servers.Server) -> None:
    conn = transporturl.connect(tcp(echo_server))
    conn.close()
    conn.close()
    for call in (lambda: conn.write(b"x"), lambda: conn.readinto(bytearray(1)), conn.fileno,
                 lambda: conn.enable_crypto(), lambda: conn.tls_version):
        with pytest.raises(ValueError, match="closed"):
            call()
    with pytest.raises(ValueError):
        with conn:
            pass


def test_connection_class_is_connect(echo_server: servers.Server) -> None:
    with transporturl.Connection(tcp(echo_server), read_timeout=5) as conn:
        conn.sendall(b"x")
        assert conn.read(1) == b"x"
        assert conn.url == tcp(echo_server)


def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    s = servers.Server(servers.echo, family=socket.AF_UNIX, path=path)
    try:
        with transporturl.connect(f"unix://{path}", read_timeout=5) as conn:
            conn.sendall(b"over unix")
            assert io.BufferedReader(conn).read(9) == b"over unix"
    finally:
        s.stop()


def test_udp_datagrams() -> None:
    s = servers.UDPEcho()
    try:
        with transporturl.connect(f"udp://127.0.0.1:{s.port}", read_timeout=5) as conn:
            conn.write(b"one")
            conn.write(b"two")
            assert conn.recv(100) == b"one"  # one read = one datagram
            assert conn.recv(100) == b"two"
            conn.write(b"x" * 50)
            with pytest.raises(transporturl.TruncatedError, match="50"):
                conn.recv(10)
            with pytest.raises(transporturl.InvalidArgumentError):
                conn.write(b"y" * 70000)
            with pytest.raises(transporturl.StateError):
                conn.enable_crypto()
    finally:
        s.stop()


# -- failures --------------------------------------------------------------------------------------


def test_refused(refused_port: int) -> None:
    with pytest.raises(ConnectionRefusedError) as info:
        transporturl.connect(f"tcp://127.0.0.1:{refused_port}", timeout=5)
    e = info.value
    assert isinstance(e, transporturl.RefusedError) and isinstance(e, transporturl.Error)
    assert e.code == transporturl.TU_E_REFUSED and e.code_name == "TU_E_REFUSED"
    assert "refused" in e.message.lower()


def test_read_timeout(silent_server: servers.Server) -> None:
    with transporturl.connect(tcp(silent_server), read_timeout=0.3) as conn:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            conn.read(10)
        elapsed = time.monotonic() - t0
        assert 0.2 < elapsed < 5
        assert isinstance(info.value, transporturl.TimeoutError)
        assert isinstance(info.value, socket.timeout)
        assert info.value.code_name == "TU_E_TIMEOUT"
        assert "read" in info.value.message


def test_handshake_timeout(silent_server: servers.Server) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="(?i)handshake|tls|timed out"):
        transporturl.connect(f"tls://127.0.0.1:{silent_server.port}", timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_url_error_is_value_error() -> None:
    with pytest.raises(ValueError) as info:
        transporturl.connect("tcp://127.0.0.1:65536")
    assert isinstance(info.value, transporturl.URLError)
    assert "offset" in info.value.message
    with pytest.raises(transporturl.URLError, match=r"\[::1\]"):
        transporturl.connect("tcp://::1")  # a bare IPv6 literal has no port; the message shows brackets
    with pytest.raises(transporturl.UnsupportedTransportError):
        transporturl.connect("gopher://127.0.0.1:70")
    with pytest.raises(transporturl.InsecureProtocolError, match="tls://"):
        transporturl.connect("sslv3://127.0.0.1:443")


def test_resolve_error() -> None:
    try:
        transporturl.connect("tcp://no-such-host.invalid:80", timeout=5)
    except transporturl.TimeoutError:
        pytest.skip("the resolver did not answer in time")
    except transporturl.ResolveError as e:
        assert isinstance(e, socket.gaierror)
        assert "no-such-host.invalid" in e.message
    else:
        pytest.fail("no-such-host.invalid resolved")


def test_plaintext_peer() -> None:
    s = servers.Server(servers.greeting(b"220 mail.example ESMTP ready\r\n"))
    try:
        with pytest.raises(transporturl.PlaintextPeerError) as info:
            transporturl.connect(f"tls://127.0.0.1:{s.port}", timeout=5)
        e = info.value
        assert isinstance(e, transporturl.TLSError) and isinstance(e, transporturl.Error)
        assert "220" in e.message
    finally:
        s.stop()


# -- TLS with CPython's ssl -----------------------------------------------------------------


def test_tls_echo(tls_echo_server: servers.Server, certs: dict) -> None:
    url = f"tls://127.0.0.1:{tls_echo_server.port}"
    with transporturl.connect(url, timeout=5, read_timeout=5, ssl={"cafile": certs["ca"]}) as conn:
        assert conn.tls_version in ("TLSv1.3", "TLSv1.2")
        assert conn.version() == conn.tls_version
        assert conn.tls_cipher_suite and conn.tls_cipher_suite.startswith("TLS_")
        reader = io.BufferedReader(conn)
        conn.sendall(b"secret line\n")
        assert reader.readline() == b"secret line\n"
    # the same by name, with a PathLike cafile, in PHP's flat key spelling
    with transporturl.connect(f"tls://localhost:{tls_echo_server.port}", read_timeout=5,
                              **{"ssl.cafile": Path(certs["ca"])}) as conn:
        conn.sendall(b"x")
        assert conn.read(1) == b"x"


def test_tls_pinned_version(certs: dict) -> None:
    s = servers.Server(servers.tls_echo(servers.server_context(certs, "1.2")))
    try:
        with transporturl.connect(f"tlsv1.2://127.0.0.1:{s.port}", ssl={"cafile": certs["ca"]}) as conn:
            assert conn.tls_version == "TLSv1.2"
        with pytest.raises(transporturl.TLSError):
            transporturl.connect(f"tlsv1.3://127.0.0.1:{s.port}", timeout=5, ssl={"cafile": certs["ca"]})
    finally:
        s.stop()


def test_certificate_unknown_issuer(tls_echo_server: servers.Server) -> None:
    with pytest.raises(transporturl.CertificateError) as info:
        transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", timeout=5)
    e = info.value
    assert isinstance(e, ssl.SSLCertVerificationError) and isinstance(e, ValueError)
    assert e.code_name == "TU_E_CERTIFICATE"
    assert "issuer" in e.message.lower()


def test_certificate_name_mismatch(tls_echo_server: servers.Server, certs: dict) -> None:
    with pytest.raises(transporturl.CertificateError) as info:
        transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", timeout=5,
                             ssl={"cafile": certs["ca"], "peer_name": "other.example"})
    assert "other.example" in info.value.message


def test_verify_peer_off(tls_echo_server: servers.Server) -> None:
    with transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", timeout=5, read_timeout=5,
                              ssl={"verify_peer": False}) as conn:
        conn.sendall(b"ok")
        assert conn.read(2) == b"ok"


# -- TLS with openssl s_server ----------------------------------------------------------------


def test_openssl_s_server(openssl_server: servers.Subprocess, certs: dict) -> None:
    with transporturl.connect(f"tls://localhost:{openssl_server.port}", timeout=10, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        conn.sendall(b"stressed\n")
        assert io.BufferedReader(conn).readline().rstrip(b"\r\n") == b"desserts"
        assert conn.tls_version == "TLSv1.3"


@pytest.mark.openssl_flags("-tls1_2")
def test_openssl_s_server_tls12(openssl_server: servers.Subprocess, certs: dict) -> None:
    with transporturl.connect(f"tls://127.0.0.1:{openssl_server.port}", timeout=10, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        assert conn.tls_version == "TLSv1.2"
        conn.sendall(b"abc\n")
        assert io.BufferedReader(conn).readline().rstrip(b"\r\n") == b"cba"


def test_crypto_method_checks(echo_server: servers.Server) -> None:
    with transporturl.connect(tcp(echo_server)) as conn:
        with pytest.raises(transporturl.InvalidArgumentError, match="int32"):
            conn.enable_crypto(2**32 + transporturl.CRYPTO_ANY)
        with pytest.raises(TypeError):
            conn.enable_crypto("tls")  # type: ignore[arg-type]
        with pytest.raises(transporturl.InsecureProtocolError, match="tls://|TLS"):
            conn.enable_crypto(transporturl.CRYPTO_SSLV3)
        with pytest.raises(transporturl.StateError, match="not enabled"):
            conn.enable_crypto(transporturl.CRYPTO_NONE)


def test_write_to_closed_peer_is_connection_error() -> None:
    """No SIGPIPE: a write to a peer that is gone raises ConnectionIOError."""
    s = servers.Server(servers.say_and_close(b""), linger0=True)
    try:
        with transporturl.connect(tcp(s), read_timeout=5, write_timeout=5) as conn:
            try:
                assert conn.read(1) == b""
            except transporturl.ConnectionIOError:
                pass  # a reset instead of a FIN
            with pytest.raises(ConnectionError) as info:
                for _ in range(100):
                    conn.sendall(b"x" * 65536)
                    time.sleep(0.01)
            assert isinstance(info.value, transporturl.Error)
    finally:
        s.stop()


def test_udp_port_unreachable_is_refused(refused_port: int) -> None:
    with transporturl.connect(f"udp://127.0.0.1:{refused_port}", read_timeout=5) as conn:
        conn.write(b"anyone?")
        with pytest.raises(ConnectionRefusedError):
            conn.recv(100)


def _tls_say(certs: dict, text: bytes, close_notify: bool):  # noqa: ANN202
    ctx = servers.server_context(certs)

    def handler(c: socket.socket) -> None:
        t = ctx.wrap_socket(c, server_side=True)
        t.sendall(text)
        if close_notify:
            t.unwrap().close()
        else:
            t.close()  # CPython's close() sends no close_notify: a truncation

    return servers.Server(handler)


def test_tls_eof_with_close_notify_is_zero(certs: dict) -> None:
    s = _tls_say(certs, b"bye", close_notify=True)
    try:
        with transporturl.connect(f"tls://127.0.0.1:{s.port}", read_timeout=5, ssl={"cafile": certs["ca"]}) as conn:
            assert conn.read() == b"bye"
    finally:
        s.stop()


def test_tls_truncation(certs: dict) -> None:
    s = _tls_say(certs, b"bye", close_notify=False)
    try:
        with transporturl.connect(f"tls://127.0.0.1:{s.port}", read_timeout=5, ssl={"cafile": certs["ca"]}) as conn:
            assert conn.read(3) == b"bye"  # all data first
            with pytest.raises(transporturl.TruncatedError) as info:
                conn.read(3)
            assert "close_notify" in info.value.message
    finally:
        s.stop()
