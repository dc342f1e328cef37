"""Non-blocking mode, time limits, shutdown, addresses, fsockopen style, and
the TLS information functions, against loopback peers."""

from __future__ import annotations

import select
import socket
import ssl
import time
from pathlib import Path

import pytest
import servers

import transporturl


def wait_for(conn: transporturl.Connection, deadline: float) -> None:
    """poll for what the connection wants (bounded)."""
    wants = conn.wants or transporturl.WANT_READ
    r = [conn.fileno()] if wants & transporturl.WANT_READ else []
    w = [conn.fileno()] if wants & transporturl.WANT_WRITE else []
    select.select(r, w, [], max(0.0, deadline - time.monotonic()))


def read_nonblocking(conn: transporturl.Connection, size: int, timeout: float = 10) -> bytes:
    out = bytearray()
    buf = bytearray(size)
    deadline = time.monotonic() + timeout
    while len(out) < size:
        assert time.monotonic() < deadline, "timed out waiting for data"
        n = conn.readinto(buf)
        if n is None:
            wait_for(conn, deadline)
        elif n == 0:
            break
        else:
            out.extend(buf[:n])
    return bytes(out)


def test_nonblocking_plain(echo_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}") as conn:
        assert conn.getblocking()
        conn.setblocking(False)
        assert not conn.getblocking()
        assert conn.readinto(bytearray(10)) is None  # nothing yet
        assert conn.read(10) is None
        assert conn.wants & transporturl.WANT_READ
        with pytest.raises(BlockingIOError):
            conn.recv(10)
        assert conn.write(b"ping") == 4
        assert read_nonblocking(conn, 4) == b"ping"
        conn.setblocking(True)
        assert conn.getblocking()


def test_nonblocking_tls_and_pending(tls_echo_server: servers.Server, certs: dict) -> None:
    with transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", ssl={"cafile": certs["ca"]}) as conn:
        conn.settimeout(0)
        assert not conn.getblocking()
        assert conn.readinto(bytearray(10)) is None
        payload = b"x" * 10_000
        sent = 0
        deadline = time.monotonic() + 10
        while sent < len(payload):
            n = conn.write(payload[sent:])
            if n is None:
                wait_for(conn, deadline)
            else:
                sent += n
        # read 10 bytes: the rest of the decrypted record waits inside
        first = read_nonblocking(conn, 10)
        assert first == b"x" * 10
        assert conn.pending >= 0
        rest = read_nonblocking(conn, len(payload) - 10)
        assert first + rest == payload


def test_settimeout(silent_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{silent_server.port}") as conn:
        conn.settimeout(0.3)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.read(1)
        assert 0.2 < time.monotonic() - t0 < 5
        conn.set_timeout(transporturl.TIMEOUT_READ, 0.2)
        with pytest.raises(TimeoutError):
            conn.read(1)
        with pytest.raises(transporturl.InvalidArgumentError):
            conn.set_timeout(transporturl.TIMEOUT_READ, 0)  # the library refuses 0 (non-blocking is setblocking)
        with pytest.raises(ValueError):
            conn.settimeout(-1)
        conn.settimeout(None)  # blocking, no limit
        assert conn.getblocking()


def test_shutdown_write_gives_peer_eof(echo_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=5) as conn:
        conn.sendall(b"last words")
        conn.shutdown(transporturl.SHUT_WR)
        assert conn.read() == b"last words"  # the echo server saw EOF and closed
        with pytest.raises(transporturl.StateError):
            conn.write(b"more")


def test_addresses(echo_server: servers.Server, tmp_path: Path) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}") as conn:
        assert conn.peer_address == f"127.0.0.1:{echo_server.port}"
        host, _, port = conn.local_address.rpartition(":")
        assert host == "127.0.0.1" and 0 < int(port) < 65536
    path = str(tmp_path / "s.sock")
    s = servers.Server(servers.echo, family=socket.AF_UNIX, path=path)
    try:
        with transporturl.connect(f"unix://{path}") as conn:
            assert conn.peer_address == path
            assert conn.local_address == ""
    finally:
        s.stop()


def test_connect_host(echo_server: servers.Server) -> None:
    for host in ("127.0.0.1", "tcp://127.0.0.1", "localhost"):
        try:
            conn = transporturl.connect_host(host, echo_server.port, timeout=5, read_timeout=5)
        except transporturl.RefusedError:
            assert host == "localhost"  # localhost may be ::1 first... every address is tried
            continue
        with conn:
            conn.sendall(b"fsock")
            assert conn.read(5) == b"fsock"
    with pytest.raises(transporturl.URLError, match="port given twice"):
        transporturl.connect_host(f"127.0.0.1:{echo_server.port}", echo_server.port)
    with pytest.raises(transporturl.URLError):
        transporturl.connect_host("127.0.0.1", 70000)
    with pytest.raises(TypeError):
        transporturl.connect_host("127.0.0.1", "80")  # type: ignore[arg-type]


# -- TLS information -------------------------------------------------------------------------


@pytest.fixture
def alpn_tls_server(certs: dict):
    ctx = servers.server_context(certs)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    s = servers.Server(servers.tls_echo(ctx))
    yield s
    s.stop()


def test_tls_information(alpn_tls_server: servers.Server, certs: dict) -> None:
    port = alpn_tls_server.port
    opts = {"ssl": {"cafile": certs["ca"], "alpn_protocols": ["http/1.1"], "capture_peer_cert": True}}
    with transporturl.connect(f"tls://localhost:{port}", timeout=5, **opts) as conn:
        assert conn.tls_version == "TLSv1.3"
        assert conn.tls_group  # e.g. X25519 (X25519MLKEM768 needs it on both sides)
        assert conn.tls_alpn == "http/1.1" == conn.selected_alpn_protocol()
        assert conn.tls_sni == "localhost"
        assert conn.tls_peer_verified is True
        assert conn.tls_resumed in (False, True)
        leaf = conn.peer_cert(0)
        want = ssl.PEM_cert_to_DER_cert(Path(certs["dir"], "server-leaf.pem").read_text())
        assert leaf == want == conn.getpeercert()
        chain = conn.peer_cert_chain()
        assert chain[0] == leaf and len(chain) == 2  # leaf + CA, as the server sent them
        with pytest.raises(transporturl.InvalidArgumentError):
            conn.peer_cert(5)
    with transporturl.connect(f"tls://127.0.0.1:{port}", timeout=5, ssl={"verify_peer": False}) as conn:
        assert conn.tls_sni is None  # no SNI for IP literals
        assert conn.tls_alpn is None
        assert conn.tls_peer_verified is False
        with pytest.raises(transporturl.StateError, match="capture_peer_cert"):
            conn.peer_cert()


def test_tls_information_when_tls_is_off(echo_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}") as conn:
        assert conn.tls_version is None
        assert conn.tls_cipher_suite is None
        assert conn.tls_group is None
        assert conn.tls_alpn is None
        assert conn.tls_sni is None
        assert conn.tls_resumed is None
        assert conn.tls_peer_verified is None
        assert conn.getpeercert() is None
        assert conn.pending == 0


def test_session_resumption(tls_echo_server: servers.Server, certs: dict) -> None:
    url = f"tls://localhost:{tls_echo_server.port}"
    opts = {"ssl": {"cafile": certs["ca"]}, "read_timeout": 5}
    results = []
    for _ in range(2):
        with transporturl.connect(url, **opts) as conn:
            conn.sendall(b"x")  # TLS 1.3 tickets arrive after the handshake
            assert conn.read(1) == b"x"
            results.append(conn.tls_resumed)
    assert results == [False, True]
