"""Threads: one reader and one writer on one connection at the same time
(full duplex), the GIL released during blocking calls, and waking a blocked
reader with close() or shutdown() from another thread."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from typing import List

import pytest
import servers

import transporturl

TOTAL = 4 * 1024 * 1024
CHUNK = 64 * 1024


def duplex(conn: transporturl.Connection, total: int) -> None:
    """Write ``total`` bytes from one thread while another reads the echo.
    A half-duplex connection deadlocks here once the socket buffers fill
    (the writer blocks, the reader waits for the writer's lock)."""
    data = os.urandom(total)
    received = bytearray()
    errors: List[BaseException] = []

    def writer() -> None:
        try:
            view = memoryview(data)
            for i in range(0, total, CHUNK):
                conn.sendall(view[i:i + CHUNK])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def reader() -> None:
        try:
            buf = bytearray(CHUNK)
            while len(received) < total:
                n = conn.readinto(buf)
                if not n:
                    break
                received.extend(buf[:n])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=reader, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "reader/writer still running after 60 s"
    assert not errors, errors
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


def test_full_duplex_plain(echo_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=20, write_timeout=20) as conn:
        duplex(conn, TOTAL)


def test_full_duplex_tls(tls_echo_server: servers.Server, certs: dict) -> None:
    with transporturl.connect(f"tls://127.0.0.1:{tls_echo_server.port}", read_timeout=20, write_timeout=20,
                              ssl={"cafile": certs["ca"]}) as conn:
        duplex(conn, TOTAL // 2)


def test_blocking_read_releases_the_gil(silent_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{silent_server.port}", read_timeout=1.0) as conn:
        done = threading.Event()

        def blocked() -> None:
            try:
                conn.read(1)
            except TimeoutError:
                pass
            done.set()

        t = threading.Thread(target=blocked, daemon=True)
        t.start()
        time.sleep(0.05)
        spins = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.4:
            spins += 1
        assert not done.is_set()
        assert spins > 10_000, "the main thread was starved: is the GIL held during tu_read?"
        assert done.wait(5)
        t.join(5)


def test_writes_from_two_threads_do_not_interleave(echo_server: servers.Server) -> None:
    """Each write is one call under the connection's write lock: lines
    written whole by two threads come back whole."""
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=20) as conn:
        lines = {b"A": b"A" * 999 + b"\n", b"B": b"B" * 999 + b"\n"}

        def writer(line: bytes) -> None:
            for _ in range(500):
                conn.sendall(line)

        reader = io.BufferedReader(conn)
        threads = [threading.Thread(target=writer, args=(line,), daemon=True) for line in lines.values()]
        for t in threads:
            t.start()
        got = {b"A": 0, b"B": 0}
        for _ in range(1000):
            line = reader.readline()
            assert line in lines.values(), line[:20]
            got[line[:1]] += 1
        for t in threads:
            t.join(20)
        assert got == {b"A": 500, b"B": 500}


@pytest.mark.parametrize("how", ["close", "shutdown"])
def test_blocked_reader_is_woken(silent_server: servers.Server, how: str) -> None:
    conn = transporturl.connect(f"tcp://127.0.0.1:{silent_server.port}", read_timeout=30)
    outcome: List[BaseException] = []

    def blocked() -> None:
        try:
            conn.read(1)
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    t = threading.Thread(target=blocked, daemon=True)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    if how == "close":
        conn.close()
    else:
        conn.shutdown(transporturl.SHUT_RD)
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 5, "the reader waited out its time limit"
    assert outcome and isinstance(outcome[0], (transporturl.StateError, ValueError)), outcome
    conn.close()
    assert conn.closed
