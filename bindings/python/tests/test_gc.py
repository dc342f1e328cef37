"""Finalizers and leaks: 10 000 connect/close cycles, reference cycles,
dropped buffered readers, and interpreter exit with connections open."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
import textwrap
import time

import pytest
import servers
from conftest import fd_count, fds_settle

import transporturl


@pytest.fixture
def closing_server():
    """Accepts and closes at once, in the accept loop (no thread each)."""
    s = servers.Server(servers.close_at_once, backlog=1024, inline=True)
    yield s
    s.stop()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_ten_thousand_connect_close_cycles(closing_server: servers.Server) -> None:
    url = f"tcp://127.0.0.1:{closing_server.port}"
    gc.collect()
    before = fd_count()
    t0 = time.monotonic()
    for i in range(10_000):
        mode = i % 4
        if mode == 0:
            conn = transporturl.connect(url, timeout=5)
            conn.close()
        elif mode == 1:
            with transporturl.connect(url, timeout=5):
                pass
        elif mode == 2:
            transporturl.connect(url, timeout=5)  # dropped: __del__ closes it
        else:
            conn = transporturl.Connection(url, timeout=5)
            conn.close()
            conn.close()
            del conn
        if i % 2000 == 1999:
            assert fds_settle(before + 2) <= before + 2, f"fd leak after {i + 1} cycles"
    elapsed = time.monotonic() - t0
    gc.collect()
    assert fds_settle(before) <= before
    deadline = time.monotonic() + 10  # the server may still be draining its backlog
    while closing_server.accepted < 10_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert closing_server.accepted == 10_000
    assert elapsed < 60, f"10 000 cycles took {elapsed:.1f} s"


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_reference_cycles_are_collected(echo_server: servers.Server) -> None:
    gc.collect()
    before = fd_count()
    for _ in range(200):
        conn = transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}")
        conn.me = conn  # a cycle: only the collector frees it
        reader = io.BufferedReader(conn)
        conn.reader = reader
    del conn, reader
    gc.collect()
    assert fds_settle(before) <= before


def test_dropped_connection_warns(echo_server: servers.Server) -> None:
    with pytest.warns(ResourceWarning, match="unclosed transporturl connection"):
        transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}")
        gc.collect()


def test_dropped_buffered_reader_leaves_connection_open(echo_server: servers.Server) -> None:
    with transporturl.connect(f"tcp://127.0.0.1:{echo_server.port}", read_timeout=5) as conn:
        conn.sendall(b"one\n")
        assert io.BufferedReader(conn).readline() == b"one\n"  # the reader is dropped at once
        gc.collect()
        assert not conn.closed
        conn.sendall(b"two\n")
        assert io.TextIOWrapper(io.BufferedReader(conn), encoding="utf-8").readline() == "two\n"
        gc.collect()
        assert not conn.closed
        # an explicit close of a reader closes the connection (io's rule)
        io.BufferedReader(conn).close()
        assert conn.closed


def test_interpreter_exit_with_open_connections(echo_server: servers.Server, silent_server: servers.Server) -> None:
    """Globals, cycles, readers, a TLS-less daemon reader blocked in C, and
    a connection made during atexit: the process exits promptly and quietly."""
    script = textwrap.dedent(
        f"""
        import atexit, io, threading, transporturl
        echo = "tcp://127.0.0.1:{echo_server.port}"
        silent = "tcp://127.0.0.1:{silent_server.port}"
        kept = transporturl.connect(echo)
        reader = io.BufferedReader(transporturl.connect(echo))
        cyc = transporturl.connect(echo); cyc.me = cyc
        blocked = transporturl.connect(silent, read_timeout=30)
        threading.Thread(target=blocked.read, args=(10,), daemon=True).start()
        atexit.register(lambda: transporturl.connect(echo))
        class Late:
            def __del__(self):
                transporturl.connect(echo).close()
        late = Late()
        print("ok", flush=True)
        """
    )
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-X", "dev", "-W", "ignore::ResourceWarning", "-c", script],
                       capture_output=True, text=True, timeout=30,
                       env={**__import__("os").environ, "PYTHONPATH": str(servers.REPO / "bindings/python/src")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert "Exception ignored" not in r.stderr and "Fatal" not in r.stderr, r.stderr
    assert time.monotonic() - t0 < 20
