#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/seeds/TARGET/) from the shared URL
vectors (tests/vectors/*.json) and the option keys. Run again after the vectors
change: python3 fuzz/make_seeds.py. File names are the SHA-1 of the content,
as libFuzzer names its own, so reruns are idempotent."""
import hashlib
import json
import os
import re

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)


def write(target, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


urls = [v["url"].encode("utf-8", "surrogatepass") if "url" in v else bytes.fromhex(v["url_hex"])
        for v in json.load(open(os.path.join(root, "tests/vectors/urls.json")))]
hosts = [(v["host"], v["port"]) for v in json.load(open(os.path.join(root, "tests/vectors/fsockopen.json")))]
src = open(os.path.join(root, "src/options.rs"), encoding="utf-8").read()
keys_block = src[src.index("pub const KEYS"):]
keys = re.findall(r'"([^"]+)"', keys_block[: keys_block.index("];")])
values = ["1", "0", "true", "off", "-1", "0.25", "60", "1e9", "localhost", "127.0.0.1", "1.2", "1.3", "TLSv1.1",
          "h2,http/1.1", "127.0.0.1:0", "[::1%lo]:0", "0:7000", "30",
          "sha256=" + "ab" * 32, "AB:" * 31 + "AB", "/nonexistent/ca.pem", "tests", "ECDHE-ECDSA-AES128-GCM-SHA256"]

for b in urls:
    write("url_parse", b)
    write("c_api", b"\x00" + b)   # tu_parse_url
    write("c_api", b"\x02" + b)   # tu_connect (rewritten to a closed loopback port)
for h, p in hosts:
    write("c_api", b"\x03" + int(p).to_bytes(4, "little", signed=True) + h.encode())  # tu_connect_host
    write("c_api", b"\x04" + int(p).to_bytes(4, "little", signed=True) + h.encode())  # tu_parse_host
    write("url_parse", h.encode())
for i, k in enumerate(keys):
    for v in values:
        write("options_set", bytes([i]) + v.encode())
        write("c_api", b"\x01" + k.encode() + b"=" + v.encode())
write("options_set", b"\xf0no.such.key=1")
write("url_parse", b"\xfftcp://" + b"a" * 70)  # grown to a huge input
print("seeds written under", os.path.join(here, "seeds"))
