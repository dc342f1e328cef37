"""Loopback test peers for the transporturl Python tests.

Everything is bounded: servers listen on 127.0.0.1 port 0, run on daemon
threads, every accepted socket has a timeout, accept loops stop on
``stop()``, and subprocess servers are started under a lifetime and killed
by the fixture that started them (by pid).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

IO_TIMEOUT = 10.0  # every server-side socket
REPO = Path(__file__).resolve().parents[3]


# -- certificates ----------------------------------------------------------------


def make_certs(out: Path) -> dict:
    """A test CA and a leaf for localhost / 127.0.0.1 / ::1, made with
    ``openssl req`` and ``openssl x509`` (ECDSA P-256)."""
    out.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        r = subprocess.run(["openssl", *args], cwd=out, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")

    (out / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
    )
    (out / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-new", *ec, "-keyout", "ca.key", "-out", "ca.csr", "-subj", "/CN=transporturl python test CA")
    run("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-out", "ca.pem", "-days", "2",
        "-extfile", "ca.ext", "-sha256")
    run("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server-leaf.pem", "-days", "2", "-extfile", "leaf.ext", "-sha256")
    chain = (out / "server-leaf.pem").read_text() + (out / "ca.pem").read_text()
    (out / "server.pem").write_text(chain)
    return {
        "dir": out,
        "ca": str(out / "ca.pem"),
        "cert": str(out / "server.pem"),
        "key": str(out / "server.key"),
    }


def server_context(certs: dict, version: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx


# -- threaded servers ------------------------------------------------------------------


class Server:
    """A TCP (or Unix-domain) listener whose connections are handled by
    ``handler(sock)`` on daemon threads."""

    def __init__(self, handler: Callable[[socket.socket], None], *, family: int = socket.AF_INET,
                 path: Optional[str] = None, backlog: int = 128, linger0: bool = False,
                 inline: bool = False) -> None:
        self.handler = handler
        self.linger0 = linger0
        self.inline = inline  # run the handler in the accept loop (no thread per connection)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.sock.bind(path)
            self.address = path
        else:
            self.sock.bind(("127.0.0.1", 0))
            self.address = self.sock.getsockname()
        self.port = self.sock.getsockname()[1] if family != socket.AF_UNIX else None
        self.sock.listen(backlog)
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self.clients: List[socket.socket] = []
        self.accepted = 0
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.accepted += 1
            c.settimeout(IO_TIMEOUT)
            if self.linger0:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            if self.inline:
                self._serve(c)
                continue
            self.clients.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        try:
            self.handler(c)
        except (OSError, ssl.SSLError, ValueError):
            pass
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.errors.append(e)
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(5)
        for c in list(self.clients):
            try:
                c.close()
            except OSError:
                pass


def echo(c: socket.socket) -> None:
    while True:
        data = c.recv(65536)
        if not data:
            return
        c.sendall(data)


def close_at_once(c: socket.socket) -> None:
    """For the connect/close cycles: nothing to say."""


def silent(stop: threading.Event) -> Callable[[socket.socket], None]:
    """Accepts and never answers (until the server stops)."""

    def handler(c: socket.socket) -> None:
        stop.wait(IO_TIMEOUT)

    return handler


def greeting(text: bytes) -> Callable[[socket.socket], None]:
    """Sends ``text`` (an SMTP-like greeting), then waits for the client."""

    def handler(c: socket.socket) -> None:
        c.sendall(text)
        try:
            c.recv(1024)
        except OSError:
            pass

    return handler


def say_and_close(text: bytes) -> Callable[[socket.socket], None]:
    """Sends ``text``, then closes (FIN)."""

    def handler(c: socket.socket) -> None:
        c.sendall(text)
        c.shutdown(socket.SHUT_WR)

    return handler


def tls_echo(ctx: ssl.SSLContext) -> Callable[[socket.socket], None]:
    def handler(c: socket.socket) -> None:
        with ctx.wrap_socket(c, server_side=True) as t:
            while True:
                try:
                    data = t.recv(65536)
                except ssl.SSLEOFError:
                    return
                if not data:
                    return
                t.sendall(data)

    return handler


class UDPEcho:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.sock.sendto(data, peer)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


# -- subprocess servers ------------------------------------------------------------


class Subprocess:
    """A server process that reports its port on stdout (``PORT n`` or
    openssl's ``ACCEPT host:n``). Killed by ``stop()``, by pid."""

    def __init__(self, argv: List[str], *, lifetime: float = 120.0, cwd: Optional[str] = None) -> None:
        self.proc = subprocess.Popen(
            ["timeout", str(int(lifetime)), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self.port = self._read_port()

    def _read_port(self) -> int:
        deadline = time.monotonic() + 15
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
                for line in seen.split(b"\n")[:-1] if b"\n" in seen else []:
                    line = line.strip()
                    port = None
                    if line.startswith(b"PORT "):
                        port = int(line.split()[1])
                    elif line.startswith(b"ACCEPT "):
                        port = int(line.rsplit(b":", 1)[1])
                    if port is not None:
                        self._drain()
                        return port
            elif self.proc.poll() is not None:
                break
        self.proc.kill()
        try:
            _, err_bytes = self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            err_bytes = b""
        self.stop()
        err = err_bytes.decode(errors="replace") if err_bytes else ""
        raise RuntimeError(f"server {self.proc.args!r} did not report a port; stdout {seen!r}; stderr {err}")

    def _drain(self) -> None:
        """Keep reading the server's output so that it never blocks on a full pipe."""

        def drain(f) -> None:  # noqa: ANN001
            try:
                while f.read(4096):
                    pass
            except (OSError, ValueError):
                pass

        for f in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=drain, args=(f,), daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


def smtp_server_argv(certs: dict, *extra: str) -> Optional[List[str]]:
    """The repository's SMTP test server, if it is there."""
    script = REPO / "tests" / "support" / "smtp_server.py"
    if not script.is_file():
        return None
    return [sys.executable, str(script), "--cert", certs["cert"], "--key", certs["key"],
            "--lifetime", "120", *extra]


def injecting_smtp(c: socket.socket) -> None:
    """An SMTP server that answers STARTTLS with ``220`` and a queued
    ``250 injected`` line in the same write (fallback for --inject)."""
    c.sendall(b"220 localhost ESMTP inject\r\n")
    f = c.makefile("rb")
    for _ in range(20):
        line = f.readline()
        if not line:
            return
        verb = line.strip().split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            c.sendall(b"250-localhost\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            c.sendall(b"220 Ready to start TLS\r\n250 injected\r\n")
            c.recv(1024)
            return
        elif verb == b"QUIT":
            c.sendall(b"221 Bye\r\n")
            return
        else:
            c.sendall(b"502 Command not implemented\r\n")
