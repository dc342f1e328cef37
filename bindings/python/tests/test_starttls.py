"""STARTTLS against a real SMTP server (aiosmtpd), and the injection rule:
plaintext queued behind the go-ahead is refused, whether it is still in the
socket (the library's check) or already in a Python buffer (the binding's)."""

from __future__ import annotations

import io
from typing import Callable, List

import pytest

import transporturl


def read_reply(readline: Callable[[], bytes]) -> List[bytes]:
    """One SMTP reply: lines until "NNN " (bounded)."""
    lines = []
    for _ in range(50):
        line = readline()
        assert line, "connection closed during an SMTP reply"
        lines.append(line)
        if line[3:4] != b"-":
            return lines
    raise AssertionError("SMTP reply too long")


def test_smtp_starttls_with_buffered_reader(smtp_server: int, certs: dict) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{smtp_server}", timeout=10, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        reader = io.BufferedReader(conn)
        assert read_reply(reader.readline)[0].startswith(b"220")
        conn.sendall(b"EHLO client.example\r\n")
        ehlo = read_reply(reader.readline)
        assert any(b"STARTTLS" in line for line in ehlo)
        conn.sendall(b"STARTTLS\r\n")
        assert read_reply(reader.readline)[-1].startswith(b"220")
        assert conn.tls_version is None
        conn.enable_crypto()  # nothing is left in the reader: allowed
        assert conn.tls_version in ("TLSv1.3", "TLSv1.2")
        conn.sendall(b"EHLO client.example\r\n")
        ehlo = read_reply(reader.readline)  # the same reader, now over TLS
        assert ehlo[-1].startswith(b"250")
        assert not any(b"STARTTLS" in line for line in ehlo)
        conn.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        assert read_reply(reader.readline)[0].startswith(b"250")
        assert read_reply(reader.readline)[0].startswith(b"250")
        assert read_reply(reader.readline)[0].startswith(b"354")
        conn.sendall(b"Subject: hi\r\n\r\nover TLS\r\n.\r\n")
        assert read_reply(reader.readline)[0].startswith(b"250")
        with pytest.raises(transporturl.StateError, match="already"):
            conn.enable_crypto()
        conn.sendall(b"QUIT\r\n")
        assert read_reply(reader.readline)[0].startswith(b"221")


def test_smtp_starttls_certificate_failure(smtp_server: int) -> None:
    """Without our CA the upgrade fails verification (system roots only)."""
    with transporturl.connect(f"tcp://127.0.0.1:{smtp_server}", timeout=10, read_timeout=10) as conn:
        read_reply(conn.readline)
        conn.sendall(b"STARTTLS\r\n")
        assert read_reply(conn.readline)[-1].startswith(b"220")
        with pytest.raises(transporturl.CertificateError):
            conn.enable_crypto()


def test_smtp_plaintext_peer(smtp_server: int, certs: dict) -> None:
    """tls:// to a port that expects STARTTLS: the 220 greeting is named."""
    with pytest.raises(transporturl.PlaintextPeerError) as info:
        transporturl.connect(f"tls://127.0.0.1:{smtp_server}", timeout=10, ssl={"cafile": certs["ca"]})
    assert "220" in info.value.message


def _to_go_ahead(conn: transporturl.Connection, readline: Callable[[], bytes]) -> None:
    assert read_reply(readline)[0].startswith(b"220")
    conn.sendall(b"EHLO client.example\r\n")
    read_reply(readline)
    conn.sendall(b"STARTTLS\r\n")
    assert readline().startswith(b"220")


def test_injection_in_socket_is_refused_by_the_library(injecting_smtp_server: int, certs: dict) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{injecting_smtp_server}", timeout=10, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        _to_go_ahead(conn, conn.readline)  # unbuffered: "250 injected" stays in the socket
        with pytest.raises(transporturl.ProtocolError) as info:
            conn.enable_crypto()
        e = info.value
        assert e.code_name == "TU_E_PROTOCOL" and isinstance(e, ConnectionError)
        assert "injected" in e.message
        assert conn.tls_version is None
        with pytest.raises(transporturl.StateError):  # the library refuses further use
            conn.write(b"QUIT\r\n")


def test_injection_in_python_buffer_is_refused_by_the_binding(injecting_smtp_server: int, certs: dict) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{injecting_smtp_server}", timeout=10, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        reader = io.BufferedReader(conn)
        _to_go_ahead(conn, reader.readline)  # the reader read "250 injected" ahead
        with pytest.raises(transporturl.ProtocolError) as info:
            conn.enable_crypto()
        e = info.value
        assert e.code_name == "TU_E_PROTOCOL"
        assert "Python buffer" in e.message and "250 injected" in e.message
        assert conn.tls_version is None
        # the refusal happened before C: the bytes are still the reader's
        assert reader.readline() == b"250 injected\r\n"


def test_buffered_reader_of_another_connection_does_not_count(echo_server, injecting_smtp_server: int) -> None:
    """Only readers on *this* connection hold its bytes."""
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=10) as other:
        other_reader = io.BufferedReader(other)
        other.sendall(b"a\nb\n")
        assert other_reader.readline() == b"a\n"  # "b\n" stays buffered in other_reader
        with transporturl.connect(f"tcp://127.0.0.1:{injecting_smtp_server}", timeout=10,
                                  read_timeout=10, ssl={"verify_peer": False}) as conn:
            assert conn._buffered_elsewhere() == (0, b"")
        assert other._buffered_elsewhere()[0] == 2


def test_tls_on_and_off_again(certs: dict) -> None:
    """STARTTLS, then CRYPTO_NONE (FTP's CCC): close_notify both ways, and
    the plaintext the server sends right after its close_notify is kept."""
    import servers

    ctx = servers.server_context(certs)

    def handler(c) -> None:  # noqa: ANN001
        f = c.makefile("rb")
        assert f.readline() == b"STARTTLS\n"
        c.sendall(b"GO\n")
        t = ctx.wrap_socket(c, server_side=True)
        tf = t.makefile("rb")
        line = tf.readline()
        t.sendall(b"tls:" + line)
        assert tf.readline() == b"OFF\n"
        plain = t.unwrap()  # close_notify both ways
        with plain:
            plain.sendall(b"plain again\n")
            plain.recv(1)

    s = servers.Server(handler)
    try:
        with transporturl.connect(f"tcp://127.0.0.1:{s.port}", timeout=10, read_timeout=10,
                                  ssl={"cafile": certs["ca"]}) as conn:
            conn.sendall(b"STARTTLS\n")
            assert conn.readline() == b"GO\n"
            conn.enable_crypto(transporturl.CRYPTO_TLSV1_3)
            assert conn.tls_version == "TLSv1.3"
            reader = io.BufferedReader(conn)
            conn.sendall(b"secret\n")
            assert reader.readline() == b"tls:secret\n"
            conn.sendall(b"OFF\n")
            conn.enable_crypto(transporturl.CRYPTO_NONE)
            assert conn.tls_version is None
            assert reader.readline() == b"plain again\n"
    finally:
        s.stop()
    assert not s.errors, s.errors


def _upgrade_nonblocking(conn: transporturl.Connection) -> int:
    """enable_crypto() on a non-blocking connection, polling for what it
    wants between calls; returns how many calls would have blocked."""
    import select
    import time

    conn.setblocking(False)
    deadline = time.monotonic() + 10
    rounds = 0
    while True:
        try:
            conn.enable_crypto()
            break
        except transporturl.WouldBlockError:
            rounds += 1
            assert time.monotonic() < deadline, "non-blocking handshake did not finish"
            wants = conn.wants
            assert wants, "would-block without a direction"
            fd = conn.fileno()
            select.select([fd] if wants & transporturl.WANT_READ else [],
                          [fd] if wants & transporturl.WANT_WRITE else [], [], 1)
    conn.setblocking(True)
    return rounds


def test_nonblocking_starttls(certs: dict) -> None:
    """A non-blocking upgrade: enable_crypto raises WouldBlockError until the
    handshake is done; each call resumes it (as PHP's returning 0)."""
    import time

    import servers

    ctx = servers.server_context(certs)

    def handler(c) -> None:  # noqa: ANN001
        c.sendall(b"GO\n")
        with ctx.wrap_socket(c, server_side=True, do_handshake_on_connect=False) as t:
            time.sleep(0.3)  # the client's first call cannot finish the handshake
            t.do_handshake()
            t.sendall(b"tls:" + t.recv(100))
            t.recv(1)

    s = servers.Server(handler)
    try:
        with transporturl.connect(f"tcp://127.0.0.1:{s.port}", timeout=10, read_timeout=10,
                                  ssl={"cafile": certs["ca"]}) as conn:
            assert conn.readline() == b"GO\n"
            assert _upgrade_nonblocking(conn) >= 1
            assert conn.tls_version
            conn.sendall(b"hi")
            assert conn.read(6) == b"tls:hi"
    finally:
        s.stop()
    assert not s.errors, s.errors


def test_nonblocking_starttls_smtp(smtp_server: int, certs: dict) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{smtp_server}", timeout=10, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        read_reply(conn.readline)
        conn.sendall(b"STARTTLS\r\n")
        assert read_reply(conn.readline)[-1].startswith(b"220")
        _upgrade_nonblocking(conn)
        assert conn.tls_version
        conn.sendall(b"NOOP\r\n")
        assert read_reply(conn.readline)[0].startswith(b"250")
