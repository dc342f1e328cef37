#!/usr/bin/env python3
"""A loopback SMTP server with STARTTLS, for tests and the demo.

    smtp_server.py --cert server.pem --key server.key [--host 127.0.0.1|::1]
    smtp_server.py --inject [--cert ... --key ...]

Prints ``PORT <n>`` as its first stdout line (flushed) once it listens on an
ephemeral port of --host (127.0.0.1 by default; loopback addresses only), then
serves until it is killed, its stdin closes (when stdin is a pipe or a tty), or
--lifetime seconds have passed.

Default mode: a real SMTP server (aiosmtpd) that offers STARTTLS with the given
certificate and accepts any mail.

--inject: a tiny hand-written server that answers ``STARTTLS`` with
``220 Ready to start TLS\\r\\n`` and ``250 injected\\r\\n`` in the same write
(plaintext queued behind the STARTTLS reply, as in CVE-2021-22947 / CVE-2011-0411).
A correct client refuses to start TLS (TU_E_PROTOCOL). The server then starts
TLS anyway, so that a client that ignores the injection fails visibly
differently (or completes a handshake) instead of timing out.
"""

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import ssl
import stat
import sys

HOSTNAME = "tu-test.localhost"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--cert", help="PEM certificate chain for STARTTLS")
    p.add_argument("--key", help="PEM private key for STARTTLS")
    p.add_argument("--inject", action="store_true",
                   help="answer STARTTLS with 220 and a queued '250 injected' line")
    p.add_argument("--require-starttls", action="store_true",
                   help="refuse mail commands before STARTTLS")
    p.add_argument("--lifetime", type=float, default=600.0,
                   help="exit after this many seconds (default 600)")
    args = p.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        p.error("--host must be a loopback address")
    if not args.inject and not (args.cert and args.key):
        p.error("--cert and --key are required (except with --inject)")
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    return args


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def watch_stdin(loop, stop):
    """Stop when stdin closes, if stdin is something that can close (a pipe,
    socket or tty). /dev/null or a file (a background job) is ignored."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)):
        return

    def readable():
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            stop()

    loop.add_reader(0, readable)


class Handler:
    """Accepts every message; keeps a count for the log."""

    def __init__(self):
        self.messages = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        return "250 OK message accepted"


async def inject_client(reader, writer, ctx):
    """One connection of the --inject server."""

    async def send(data):
        writer.write(data)
        await writer.drain()

    try:
        await send(b"220 %s ESMTP tu-inject\r\n" % HOSTNAME.encode())
        for _ in range(100):  # bounded dialogue
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                break
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                await send(b"250-%s\r\n250-PIPELINING\r\n250 STARTTLS\r\n" % HOSTNAME.encode())
            elif verb == b"STARTTLS":
                # The injection: one write, two replies.
                await send(b"220 Ready to start TLS\r\n250 injected\r\n")
                if ctx is not None:
                    try:
                        await asyncio.wait_for(writer.start_tls(ctx), 10)
                    except Exception:  # noqa: BLE001 - a refusing client is the expected case
                        break
                    # over TLS: answer like a server would, until QUIT/EOF
                    continue
                break
            elif verb == b"QUIT":
                await send(b"221 Bye\r\n")
                break
            elif verb == b"NOOP":
                await send(b"250 OK\r\n")
            else:
                await send(b"502 Command not implemented\r\n")
    except (asyncio.TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


async def main(argv):
    args = parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)

    ctx = server_context(args.cert, args.key) if args.cert else None

    if args.inject:
        server = await asyncio.start_server(
            lambda r, w: inject_client(r, w, ctx), args.host, 0)
    else:
        from aiosmtpd.smtp import SMTP  # imported here: --inject needs no aiosmtpd

        handler = Handler()

        def factory():
            return SMTP(handler, hostname=HOSTNAME, ident="tu-test",
                        tls_context=ctx, require_starttls=args.require_starttls,
                        timeout=60, loop=loop)

        server = await loop.create_server(factory, args.host, 0)

    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()

    watch_stdin(loop, done.set)
    try:
        await asyncio.wait_for(done.wait(), args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
