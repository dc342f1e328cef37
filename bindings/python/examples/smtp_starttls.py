#!/usr/bin/env python3
"""Upgrade an SMTP session to TLS with STARTTLS, using transporturl.

    smtp_starttls.py HOST PORT [--cafile CA.pem] [--peer-name NAME] [--timeout SECONDS]

Connects in plaintext (fsockopen style: HOST may be a name, an IPv4 address
or a bare IPv6 address), reads the greeting, says EHLO, asks for STARTTLS,
upgrades the same connection (certificate and host name verified), says EHLO
again over TLS and quits. Prints the dialogue and the TLS parameters.
Exit status: 0 on success, 1 on failure (with transporturl's message).
"""

from __future__ import annotations

import argparse
import io
import sys
from typing import List

import transporturl


def reply(reader: io.BufferedReader) -> List[bytes]:
    """One SMTP reply (its lines), printed as it arrives."""
    lines: List[bytes] = []
    for _ in range(100):  # bounded: a reply is a few lines
        line = reader.readline(4096)
        if not line:
            raise SystemExit("server closed the connection")
        print("S: " + line.decode("utf-8", "replace").rstrip())
        lines.append(line)
        if line[3:4] != b"-":
            return lines
    raise SystemExit("reply too long")


def command(conn: transporturl.Connection, reader: io.BufferedReader, text: str) -> List[bytes]:
    print("C: " + text)
    conn.sendall(text.encode() + b"\r\n")
    return reply(reader)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description="SMTP STARTTLS with transporturl")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--cafile", help="PEM file of trusted CAs (default: the system's roots)")
    p.add_argument("--peer-name", help="name to verify instead of HOST")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for connect, handshake, each read/write")
    args = p.parse_args(argv)

    options = {"read_timeout": args.timeout, "write_timeout": args.timeout,
               "ssl": {"cafile": args.cafile, "peer_name": args.peer_name}}  # None = library default
    try:
        with transporturl.connect_host(args.host, args.port, timeout=args.timeout, **options) as conn:
            reader = io.BufferedReader(conn)
            if not reply(reader)[0].startswith(b"220"):
                raise SystemExit("no 220 greeting")
            ehlo = command(conn, reader, "EHLO transporturl.example")
            if not any(line[4:].upper().startswith(b"STARTTLS") for line in ehlo):
                raise SystemExit("the server does not offer STARTTLS")
            if not command(conn, reader, "STARTTLS")[-1].startswith(b"220"):
                raise SystemExit("STARTTLS refused")
            # Refused (ProtocolError) if the server sent anything after its 220.
            conn.enable_crypto()
            print(f"-- TLS on: {conn.tls_version}, {conn.tls_cipher_suite}"
                  + (f", group {conn.tls_group}" if transporturl.supports("tu_tls_group") else ""))
            command(conn, reader, "EHLO transporturl.example")
            command(conn, reader, "QUIT")
    except transporturl.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
