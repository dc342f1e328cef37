#!/usr/bin/env python3
"""A CPython `ssl` server for tests/tls_full.rs, driven through memory BIOs so
that it controls exactly what goes out in one write.

    py_server.py '{"cert": "...", "key": "...", "alpn": ["h2"], "max": "1.2",
                   "starttls": false, "lifetime": 60}'

Prints ``PORT <n>`` when listening on 127.0.0.1. Serves connections one at a
time until killed, stdin closes, or the lifetime passes. Per connection
(after "220 ready" / "STARTTLS" / "220 go" first when starttls is set), it
answers lines:

  SNI       -> the server name the client sent, or "-" for none
  ALPN      -> the protocol agreed, or "-"
  CCC       -> "200 CCC" over TLS, waits for the client's close_notify, then
               sends its own close_notify and the plaintext line
               "PLAIN AFTER CCC" in ONE write; then echoes one plaintext line
               prefixed with "plain:" and closes
  QUIT      -> close_notify and close
  other     -> echoed
"""

import json
import socket
import ssl
import sys
import threading
import time

cfg = json.loads(sys.argv[1])
IO_TIMEOUT = 10.0


def make_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.get("max") == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    if cfg.get("alpn"):
        ctx.set_alpn_protocols(cfg["alpn"])
    ctx.sni_callback = on_sni
    return ctx


SNI = {"name": None}


def on_sni(sslobj, name, ctx):
    SNI["name"] = name


class Tls:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self.pump():
                    raise EOFError("EOF during handshake")

    def read_line(self):
        line = b""
        while not line.endswith(b"\n"):
            try:
                chunk = self.obj.read(1)
            except ssl.SSLWantReadError:
                self.flush()
                if not self.pump():
                    return None
                continue
            except ssl.SSLZeroReturnError:
                return None
            if not chunk:
                return None
            line += chunk
        return line

    def write(self, data):
        self.obj.write(data)
        self.flush()


def raw_line(sock):
    line = b""
    while not line.endswith(b"\n"):
        b = sock.recv(1)
        if not b:
            break
        line += b
    return line


def serve(ctx, sock):
    sock.settimeout(IO_TIMEOUT)
    if cfg.get("starttls"):
        sock.sendall(b"220 ready\r\n")
        if raw_line(sock).strip() != b"STARTTLS":
            return
        sock.sendall(b"220 go\r\n")
    SNI["name"] = None
    tls = Tls(sock, ctx)
    tls.handshake()
    while True:
        line = tls.read_line()
        if line is None:
            return
        cmd = line.strip()
        if cmd == b"SNI":
            tls.write((SNI["name"] or "-").encode() + b"\n")
        elif cmd == b"ALPN":
            tls.write((tls.obj.selected_alpn_protocol() or "-").encode() + b"\n")
        elif cmd == b"CCC":
            tls.write(b"200 CCC\n")
            # Wait for the client's close_notify.
            while tls.read_line() is not None:
                pass
            try:
                tls.obj.unwrap()
            except ssl.SSLError:
                pass
            # Our close_notify and plaintext, back to back, in one write.
            sock.sendall(tls.out.read() + b"PLAIN AFTER CCC\r\n")
            # Anything the client sent after its close_notify is plaintext.
            rest = tls.inc.read()
            while not rest.endswith(b"\n"):
                b = sock.recv(1)
                if not b:
                    break
                rest += b
            sock.sendall(b"plain:" + rest)
            return
        elif cmd == b"QUIT":
            try:
                tls.obj.unwrap()
            except ssl.SSLError:
                pass
            tls.flush()
            return
        else:
            tls.write(line)


def main():
    ctx = make_context()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.5)
    print("PORT %d" % lsock.getsockname()[1], flush=True)

    stop = threading.Event()

    def watch_stdin():
        try:
            sys.stdin.read()
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    end = time.time() + float(cfg.get("lifetime", 120))
    while not stop.is_set() and time.time() < end:
        try:
            sock, _ = lsock.accept()
        except socket.timeout:
            continue
        try:
            serve(ctx, sock)
        except (OSError, EOFError, ssl.SSLError) as e:
            print("connection ended: %r" % (e,), flush=True)
        finally:
            sock.close()


if __name__ == "__main__":
    main()
