#!/usr/bin/env python3
"""A loopback line-protocol server that turns TLS on and off, for tests.

    line_server.py --cert server.pem --key server.key [--host 127.0.0.1|::1] [--lifetime 600]

Prints ``PORT <n>`` as its first stdout line (flushed); serves connections
(one thread each) until killed, its stdin closes (a pipe or tty), or
--lifetime seconds pass.

The protocol (lines end in "\\n"; the server answers every line):
  greeting            "OK plain"
  "STARTTLS"          "OK starttls" in plaintext, then a server-side TLS handshake
  "STOPTLS" (in TLS)  "OK stoptls" over TLS, then -- in ONE send -- its
                      close_notify immediately followed by the plaintext line
                      "OK plain again" (the back-to-back case a client must
                      not swallow), then it waits for the client's close_notify
  "ECHO <text>"       "<text>"
  "QUIT"              "OK bye", then the server closes (close_notify first in TLS)
  anything else       "ERR unknown command"
"""

import argparse
import ipaddress
import os
import socket
import ssl
import stat
import sys
import threading
import time

IO_TIMEOUT = 30.0
MAX_CONNECTIONS = 1000
MAX_LINES = 10000


class Conn:
    """A socket that is plaintext or TLS (through memory BIOs, so that the
    bytes on the wire are under our control)."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.ctx = ctx
        self.tls = None
        self.inc = None
        self.out = None
        self.raw = b""  # plaintext bytes received but not yet consumed

    # -- plumbing --
    def _flush(self, extra=b""):
        data = (self.out.read() if self.out is not None else b"") + extra
        if data:
            self.sock.sendall(data)

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        return data

    def start_tls(self):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        if self.raw:
            self.inc.write(self.raw)  # a client that pipelined its ClientHello
            self.raw = b""
        self.tls = self.ctx.wrap_bio(self.inc, self.out, server_side=True)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self.inc.write(self._recv())
        self._flush()

    def stop_tls(self, plaintext_after):
        """Send close_notify and `plaintext_after` in one send, then wait for
        the peer's close_notify; bytes after it are plaintext again."""
        try:
            self.tls.unwrap()
            done = True
        except ssl.SSLWantReadError:
            done = False
        self._flush(plaintext_after)
        while not done:
            self.inc.write(self._recv())
            try:
                self.tls.unwrap()
                done = True
            except ssl.SSLWantReadError:
                continue
        self.raw = self.inc.read()  # whatever followed the peer's close_notify
        self.tls = self.inc = self.out = None

    def send_line(self, text):
        data = text.encode() + b"\n"
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.write(data)
            self._flush()

    def read_line(self):
        if self.tls is None:
            while b"\n" not in self.raw:
                self.raw += self._recv()
            line, self.raw = self.raw.split(b"\n", 1)
            return line.rstrip(b"\r").decode(errors="replace")
        buf = b""
        while not buf.endswith(b"\n"):
            try:
                chunk = self.tls.read(1)
            except ssl.SSLWantReadError:
                self._flush()
                self.inc.write(self._recv())
                continue
            except ssl.SSLZeroReturnError:
                raise EOFError
            if not chunk:
                raise EOFError
            buf += chunk
        return buf[:-1].rstrip(b"\r").decode(errors="replace")

    def close(self):
        try:
            if self.tls is not None:
                try:
                    self.tls.unwrap()
                except ssl.SSLError:
                    pass
                self._flush()
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def serve_one(ctx, sock):
    sock.settimeout(IO_TIMEOUT)
    c = Conn(sock, ctx)
    try:
        c.send_line("OK plain")
        for _ in range(MAX_LINES):
            line = c.read_line()
            cmd, _, arg = line.partition(" ")
            cmd = cmd.upper()
            if cmd == "STARTTLS" and c.tls is None:
                c.send_line("OK starttls")
                c.start_tls()
            elif cmd == "STOPTLS" and c.tls is not None:
                c.send_line("OK stoptls")
                c.stop_tls(b"OK plain again\n")
            elif cmd == "ECHO":
                c.send_line(arg)
            elif cmd == "QUIT":
                c.send_line("OK bye")
                break
            else:
                c.send_line("ERR unknown command")
    except (EOFError, OSError, ssl.SSLError, socket.timeout):
        pass
    finally:
        c.close()


def watch_stdin(stop):
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)):
        return

    def run():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=run, daemon=True).start()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--lifetime", type=float, default=600.0)
    args = p.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        p.error("--host must be a loopback address")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, 0))
    lsock.listen(64)
    lsock.settimeout(0.2)
    sys.stdout.write("PORT %d\n" % lsock.getsockname()[1])
    sys.stdout.flush()

    stop = threading.Event()
    watch_stdin(stop)
    deadline = time.monotonic() + args.lifetime
    accepted = 0
    try:
        while not stop.is_set() and time.monotonic() < deadline and accepted < MAX_CONNECTIONS:
            try:
                sock, _ = lsock.accept()
            except socket.timeout:
                continue
            accepted += 1
            threading.Thread(target=serve_one, args=(ctx, sock), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        lsock.close()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main(sys.argv[1:])
