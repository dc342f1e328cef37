"""Fixtures: certificates made at test time and loopback peers on port 0."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # servers.py

import servers  # noqa: E402

try:  # an installed package, or the source tree
    import transporturl  # noqa: F401
except ImportError as e:  # pragma: no cover - only without `pip install`
    if "cannot load the shared library" in str(e):
        raise
    sys.path.insert(0, str(HERE.parent / "src"))
    import transporturl  # noqa: F401

REPO = servers.REPO
VECTORS = REPO / "tests" / "vectors"
HEADER = REPO / "include" / "transporturl.h"


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fds_settle(limit: int, timeout: float = 5.0) -> int:
    """The fd count once it is <= limit (test servers in this process close
    their side asynchronously), or the count after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        n = fd_count()
        if n <= limit or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return servers.make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def echo_server() -> Iterator[servers.Server]:
    s = servers.Server(servers.echo)
    yield s
    s.stop()


@pytest.fixture
def tls_echo_server(certs: dict) -> Iterator[servers.Server]:
    s = servers.Server(servers.tls_echo(servers.server_context(certs)))
    yield s
    s.stop()


@pytest.fixture
def silent_server() -> Iterator[servers.Server]:
    stop = threading.Event()
    s = servers.Server(servers.silent(stop))
    yield s
    stop.set()
    s.stop()


@pytest.fixture
def refused_port() -> int:
    """A loopback port nobody listens on (bound, never listening)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def openssl_server(certs: dict, request: pytest.FixtureRequest) -> Iterator[servers.Subprocess]:
    """``openssl s_server -rev`` (answers each line reversed); extra flags
    through ``@pytest.mark.openssl_flags(...)``."""
    marker = request.node.get_closest_marker("openssl_flags")
    flags = list(marker.args) if marker else []
    p = servers.Subprocess(
        ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", certs["cert"], "-key", certs["key"],
         "-rev", *flags],
        lifetime=60,
    )
    yield p
    p.stop()


@pytest.fixture
def smtp_server(certs: dict) -> Iterator[int]:
    """A real SMTP server with STARTTLS (aiosmtpd); yields its port."""
    pytest.importorskip("aiosmtpd")
    argv = servers.smtp_server_argv(certs)
    if argv is not None:
        p = servers.Subprocess(argv)
        yield p.port
        p.stop()
        return
    # Fallback: aiosmtpd's Controller in this process.
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
            return "250 OK"

    ctx = servers.server_context(certs)
    # aiosmtpd 1.4's Controller checks readiness by connecting to its port,
    # so port 0 cannot be used: take a free one.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx,
                   server_hostname="localhost", ready_timeout=10)
    c.start()
    try:
        yield port
    finally:
        c.stop()


@pytest.fixture
def injecting_smtp_server(certs: dict) -> Iterator[int]:
    """An SMTP server that queues ``250 injected`` behind its STARTTLS
    go-ahead (CVE-2021-22947 style)."""
    argv = servers.smtp_server_argv(certs, "--inject")
    if argv is not None:
        p = servers.Subprocess(argv)
        yield p.port
        p.stop()
        return
    s = servers.Server(servers.injecting_smtp)
    yield s.port
    s.stop()
