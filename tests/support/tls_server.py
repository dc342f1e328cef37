#!/usr/bin/env python3
"""An implicit-TLS echo server on loopback, for tests and the demo (CPython ssl).

    tls_server.py --cert server.pem --key server.key [--host 127.0.0.1|::1]
                  [--close-notify | --no-close-notify] [--end-on QUIT]
                  [--tls-version any|1.2|1.3] [--lifetime 600]

Prints ``PORT <n>`` as its first stdout line (flushed), then accepts
connections (one thread each) until it is killed, its stdin closes (when stdin
is a pipe or a tty), or --lifetime seconds have passed.

Each connection: TLS handshake, then every chunk read is echoed back. The
connection ends when the client ends its side (EOF or close_notify), or when a
chunk contains the --end-on token (default ``QUIT``; echoed first). The server
then ends its side:
  --close-notify     (default) with a TLS close_notify alert, then FIN;
  --no-close-notify  with a bare TCP FIN and no close_notify, which a client
                     must report as truncation (TU_E_TRUNCATED).
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

IO_TIMEOUT = 30.0  # per connection inactivity limit
MAX_CONNECTIONS = 1000  # accept loop bound


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--cert", required=True, help="PEM certificate chain")
    p.add_argument("--key", required=True, help="PEM private key")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--close-notify", dest="close_notify", action="store_true", default=True,
                   help="end connections with close_notify (default)")
    g.add_argument("--no-close-notify", dest="close_notify", action="store_false",
                   help="end connections with a bare TCP FIN (truncation)")
    p.add_argument("--end-on", default="QUIT",
                   help="token that makes the server end the connection after echoing it")
    p.add_argument("--tls-version", choices=("any", "1.2", "1.3"), default="any")
    p.add_argument("--lifetime", type=float, default=600.0,
                   help="exit after this many seconds (default 600)")
    args = p.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        p.error("--host must be a loopback address")
    return args


def make_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls_version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif args.tls_version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    return ctx


def serve_one(ctx, raw, args):
    token = args.end_on.encode() if args.end_on else None
    raw.settimeout(IO_TIMEOUT)
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    peer_closed = False
    try:
        while True:
            try:
                data = tls.recv(65536)
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                peer_closed = True
                break
            tls.sendall(data)
            if token and token in data:
                break
    except (ssl.SSLError, OSError):
        try:
            tls.close()
        except OSError:
            pass
        return
    try:
        if args.close_notify:
            # close_notify, then FIN; unwrap() may fail if the peer already went away
            try:
                if peer_closed:
                    tls.unwrap()
                else:
                    tls.settimeout(2.0)
                    try:
                        tls.unwrap()  # sends ours, waits (bounded) for theirs
                    except (ssl.SSLError, OSError, socket.timeout):
                        pass
            except (ssl.SSLError, OSError):
                pass
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            # SSLSocket.shutdown() drops the TLS layer and sends a bare TCP FIN.
            tls.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        tls.close()


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
    args = parse_args(argv)
    ctx = make_context(args)
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
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            accepted += 1
            conn.settimeout(IO_TIMEOUT)
            threading.Thread(target=serve_one, args=(ctx, conn, args), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        lsock.close()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main(sys.argv[1:])
