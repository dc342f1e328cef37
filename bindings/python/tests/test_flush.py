"""Connection.flush (tu_flush): in non-blocking mode a TLS write may accept
bytes whose encrypted records the socket cannot take yet; flush sends them,
raising WouldBlockError while some remain. Loopback peers only, every wait
bounded."""

from __future__ import annotations

import hashlib
import queue
import select
import socket
import ssl
import threading
import time
from typing import Iterator, List

import pytest
import servers

import transporturl

ANSWER = 8 + 32  # byte count (big-endian) + SHA-256


class HashPeer:
    """A TLS peer that reads nothing until the test puts a byte count in
    ``size``, then reads exactly that many bytes and answers with their
    count and SHA-256. Its receive buffer is small, so that what the client
    writes soon fills the socket; ``pace`` seconds of sleep after each read
    keep it full."""

    def __init__(self, certs: dict, pace: float = 0.0) -> None:
        self.ctx = servers.server_context(certs)
        self.pace = pace
        self.size: "queue.Queue[int]" = queue.Queue()

    def handler(self, c: socket.socket) -> None:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        with self.ctx.wrap_socket(c, server_side=True) as t:
            size = self.size.get(timeout=servers.IO_TIMEOUT)
            h = hashlib.sha256()
            got = 0
            while got < size:
                data = t.recv(min(64 * 1024, size - got))
                if not data:
                    break
                h.update(data)
                got += len(data)
                if self.pace:
                    time.sleep(self.pace)
            t.sendall(got.to_bytes(8, "big") + h.digest())
            try:
                t.recv(1)  # until the client closes
            except (OSError, ssl.SSLError):
                pass


@pytest.fixture
def make_peer(certs: dict) -> Iterator:
    started: List[servers.Server] = []

    def make(pace: float = 0.0):  # noqa: ANN202
        peer = HashPeer(certs, pace)
        srv = servers.Server(peer.handler)
        started.append(srv)
        return peer, srv

    yield make
    for srv in started:
        srv.stop()
        assert not srv.errors, srv.errors


def connect(srv: servers.Server, certs: dict) -> transporturl.Connection:
    conn = transporturl.connect(f"tls://127.0.0.1:{srv.port}", timeout=10, ssl={"cafile": certs["ca"]})
    conn.setblocking(False)
    return conn


def left(deadline: float) -> float:
    now = time.monotonic()
    assert now < deadline, "timed out"
    return deadline - now


def wait_writable(conn: transporturl.Connection, deadline: float) -> None:
    """After a write-side would-block (write, flush): poll for room. (Not
    for what a read wants: no read runs in these tests until the answer.)"""
    assert conn.wants & transporturl.WANT_WRITE
    select.select([], [conn.fileno()], [], left(deadline))


def flush_until_done(conn: transporturl.Connection, deadline: float) -> int:
    """Call flush until it returns; how many times it said would-block."""
    blocked = 0
    while True:
        try:
            conn.flush()
            return blocked
        except transporturl.WouldBlockError as e:
            assert isinstance(e, BlockingIOError)
            blocked += 1
            wait_writable(conn, deadline)


def read_answer(conn: transporturl.Connection, deadline: float) -> bytes:
    out = bytearray()
    while len(out) < ANSWER:
        n = conn.read(ANSWER - len(out))
        if n is None:
            wants = conn.wants or transporturl.WANT_READ
            r = [conn.fileno()] if wants & transporturl.WANT_READ else []
            w = [conn.fileno()] if wants & transporturl.WANT_WRITE else []
            select.select(r, w, [], left(deadline))
            continue
        assert n, f"EOF after {len(out)} bytes of the answer"
        out += n
    return bytes(out)


def check_answer(answer: bytes, data: bytes) -> None:
    count = int.from_bytes(answer[:8], "big")
    assert count == len(data), f"the peer received {count} of {len(data)} bytes"
    assert answer[8:] == hashlib.sha256(data).digest(), "the peer received other bytes"


def test_nonblocking_tls_writes_then_flush(make_peer, certs: dict) -> None:  # noqa: ANN001
    """Several MiB written with non-blocking writes (polling when a write
    says None), then flush until it returns: the peer gets every byte."""
    peer, srv = make_peer(pace=0.001)
    size = 6 * 1024 * 1024
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    peer.size.put(size)
    deadline = time.monotonic() + 30
    with connect(srv, certs) as conn:
        view = memoryview(data)
        sent = 0
        while sent < size:
            n = conn.write(view[sent:sent + 256 * 1024])
            if n is None:
                wait_writable(conn, deadline)
            else:
                sent += n
        flush_until_done(conn, deadline)
        # Everything is out: nothing queued for writing any more.
        assert not conn.wants & transporturl.WANT_WRITE
        check_answer(read_answer(conn, deadline), data)


def test_nonblocking_flush_waits_for_room(make_peer, certs: dict) -> None:  # noqa: ANN001
    """16 KiB writes to a peer that reads nothing yet, until a write's
    records no longer fit the socket and flush says would-block. The peer
    is then told to read exactly the bytes the writes accepted: only flush
    (no other write) can have sent the last of them."""
    peer, srv = make_peer()
    deadline = time.monotonic() + 30
    accepted = bytearray()
    with connect(srv, certs) as conn:
        i = 0
        while True:
            assert len(accepted) < 256 * 1024 * 1024, "the socket never filled up"
            piece = i.to_bytes(4, "big") * 4096
            i += 1
            n = conn.write(piece)
            # The previous write left nothing queued (else we stopped):
            # some of this one is always taken.
            assert n, "a write after a complete flush took nothing"
            accepted += piece[:n]
            if not conn.wants & transporturl.WANT_WRITE:
                continue  # all of it went out
            try:
                conn.flush()  # the socket took the rest after all
            except transporturl.WouldBlockError:
                break  # records queued, socket full: what this test needs
        assert conn.wants & transporturl.WANT_WRITE
        peer.size.put(len(accepted))
        flush_until_done(conn, deadline)
        assert not conn.wants & transporturl.WANT_WRITE
        check_answer(read_answer(conn, deadline), bytes(accepted))


def test_nonblocking_sendall_resumes(make_peer, certs: dict) -> None:  # noqa: ANN001
    """Non-blocking sendall raises WouldBlockError with characters_written
    (the bytes taken); calling it again with the rest goes on, and when it
    returns the peer gets everything (its final flush included)."""
    peer, srv = make_peer()
    size = 8 * 1024 * 1024
    data = (bytes(range(253)) * (size // 253 + 1))[:size]
    deadline = time.monotonic() + 30
    with connect(srv, certs) as conn:
        rest = memoryview(data)
        raised = 0
        while True:
            try:
                conn.sendall(rest)
                break
            except transporturl.WouldBlockError as e:
                assert 0 <= e.characters_written <= len(rest)
                raised += 1
                if raised == 1:
                    peer.size.put(size)  # the peer starts reading now
                rest = rest[e.characters_written:]
                wait_writable(conn, deadline)
        assert raised, "8 MiB to a peer that was not reading went out without a would-block"
        assert not conn.wants & transporturl.WANT_WRITE
        check_answer(read_answer(conn, deadline), data)


def test_flush_blocking_and_plaintext(tls_echo_server: servers.Server, echo_server: servers.Server,
                                      certs: dict) -> None:
    """Blocking mode: flush returns at once (a blocking write leaves nothing
    behind); plaintext: nothing to flush, in either mode; closed: ValueError
    (as any io stream), and close itself does not trip over flush."""
    with transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", timeout=5, read_timeout=5,
                              ssl={"cafile": certs["ca"]}) as conn:
        conn.write(b"abc")
        conn.flush()
        assert conn.read(3) == b"abc"
    with pytest.raises(ValueError):
        conn.flush()
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=5) as conn:
        conn.flush()
        conn.setblocking(False)
        assert conn.write(b"xyz") == 3
        conn.flush()  # plaintext never queues
    with pytest.raises(ValueError):
        conn.flush()


def test_flush_while_another_thread_reads(tls_echo_server: servers.Server, certs: dict) -> None:
    """flush is a writer's call: it does not wait for a read blocked in
    another thread (full duplex)."""
    with transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", timeout=5, read_timeout=10,
                              ssl={"cafile": certs["ca"]}) as conn:
        got: List[bytes] = []
        reader = threading.Thread(target=lambda: got.append(conn.read(5)), daemon=True)
        reader.start()
        time.sleep(0.1)  # the reader waits inside tu_read by now
        t0 = time.monotonic()
        conn.write(b"hello")
        conn.flush()
        assert time.monotonic() - t0 < 2, "write + flush waited for the reader"
        reader.join(10)
        assert not reader.is_alive()
        assert got == [b"hello"]


def test_flush_without_tu_flush(echo_server: servers.Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older library without tu_flush: blocking mode has nothing to
    flush; non-blocking mode cannot, and says so (but sendall works as it
    did before tu_flush)."""
    monkeypatch.setattr(transporturl.Connection, "_tu_flush", None)
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=5) as conn:
        conn.flush()
        conn.sendall(b"ok")
        conn.setblocking(False)
        with pytest.raises(transporturl.NotSupportedError, match="tu_flush"):
            conn.flush()
        conn.sendall(b"!")  # as before tu_flush: sendall does not flush then
        conn.setblocking(True)
        got = b""
        while len(got) < 3:
            chunk = conn.read(3 - len(got))
            assert chunk, f"EOF after {got!r}"
            got += chunk
        assert got == b"ok!"
