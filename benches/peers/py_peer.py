"""The Python peers of `make bench`.

    python py_peer.py ssl     WORKLOAD port=P ca=FILE n=N bytes=B   # the standard library's ssl
    python py_peer.py tu      WORKLOAD ...                          # the transporturl binding
    python py_peer.py ctypes  ffi|version ...                       # a bare ctypes call of tu_write (W7 baseline)

The binding is imported from PYTHONPATH (bindings/python/src) and loads the
library named by TRANSPORTURL_LIB. Prints one JSON line on stdout.
"""

import gc
import json
import os
import resource
import socket
import sys
import time

CHUNK = 16384


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return float(line[len(field):].split()[0])
    return 0.0


def out(**kw):
    print(json.dumps(kw))


class SslPeer:
    def __init__(self, port, ca):
        import ssl

        self.ssl = ssl
        self.port = port
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca)
        self.ctx = ctx
        self.session = None
        self.resume = False

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ctx.wrap_socket(s, server_hostname="localhost", session=self.session if self.resume else None)

    @staticmethod
    def write(c, b):
        c.sendall(b)

    @staticmethod
    def readinto(c, b):
        return c.recv_into(b)

    def close(self, c):
        if self.resume:
            self.session = c.session
        # close() sends no close_notify (only unwrap() does, and it then waits
        # for the server's): the cheaper way out, in Python's favour.
        c.close()

    @staticmethod
    def resumed(c):
        return c.session_reused


class TuPeer:
    def __init__(self, port, ca):
        import transporturl

        self.tu = transporturl
        self.port = port
        self.opts = {"ssl": {"cafile": ca, "peer_name": "localhost"}}

    def connect(self, url=None):
        return self.tu.connect(url or "tlsv1.3://127.0.0.1:%d" % self.port, **self.opts)

    @staticmethod
    def write(c, b):
        n = c.write(b)
        if n != len(b):
            raise RuntimeError("short write %r" % (n,))

    @staticmethod
    def readinto(c, b):
        return c.readinto(b)

    @staticmethod
    def close(c):
        c.close()

    @staticmethod
    def resumed(c):
        return None


def w_send(p, nbytes):
    buf = b"\x5a" * CHUNK
    c = p.connect()
    t0, c0 = time.perf_counter(), cpu_seconds()
    left = nbytes
    mv = memoryview(buf)
    write = p.write
    while left > 0:
        n = min(left, CHUNK)
        write(c, buf if n == CHUNK else mv[:n])
        left -= n
    ack = bytearray(1)
    if p.readinto(c, ack) != 1:
        raise RuntimeError("no ack")
    p.close(c)
    bulk(t0, c0, nbytes)


def w_recv(p, nbytes):
    buf = bytearray(CHUNK)
    c = p.connect()
    t0, c0 = time.perf_counter(), cpu_seconds()
    p.write(c, b"g")
    got = 0
    readinto = p.readinto
    while True:
        n = readinto(c, buf)
        if not n:
            break
        got += n
    p.close(c)
    if got != nbytes:
        raise RuntimeError("received %d of %d" % (got, nbytes))
    bulk(t0, c0, nbytes)


def bulk(t0, c0, nbytes):
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    out(value=nbytes / wall / 1e6, unit="MB/s", wall_s=wall, cpu_s=cpu, cpu_per=cpu / (nbytes / 2**30), cpu_unit="s/GiB")


def pingpong(p, c, n):
    msg = b"a" * 64
    buf = bytearray(64)
    mv = memoryview(buf)
    warm = max(10, n // 50)
    rtts = []
    clock = time.perf_counter_ns
    write, readinto = p.write, p.readinto
    t0, c0 = time.perf_counter(), cpu_seconds()
    for i in range(warm + n):
        if i == warm:
            t0, c0 = time.perf_counter(), cpu_seconds()
        s = clock()
        write(c, msg)
        got = 0
        while got < 64:
            k = readinto(c, mv[got:])
            if not k:
                raise RuntimeError("EOF in ping-pong")
            got += k
        if i >= warm:
            rtts.append(clock() - s)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    rtts.sort()
    out(value=rtts[len(rtts) // 2] / 1000.0, unit="us", wall_s=wall, cpu_s=cpu, cpu_per=cpu / n * 1e6, cpu_unit="us/RTT")


def w_hs(p, n, resume):
    one = bytearray(1)
    if resume:
        p.resume = True
        c = p.connect()
        p.readinto(c, one)
        p.close(c)
    resumed, known = 0, False
    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        c = p.connect()
        if p.readinto(c, one) != 1:
            raise RuntimeError("no byte")
        r = p.resumed(c)
        if r is not None:
            known = True
            resumed += bool(r)
        p.close(c)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    extra = {"client_resumed": resumed} if known else {}
    out(value=n / wall, unit="hs/s", wall_s=wall, cpu_s=cpu, cpu_per=cpu / n * 1e6, cpu_unit="us/hs", **extra)


def w_idle(p, n):
    one = bytearray(1)
    c = p.connect()
    p.readinto(c, one)
    p.close(c)
    gc.collect()
    before = status_kib("VmRSS:")
    held = []
    for _ in range(n):
        c = p.connect()
        p.readinto(c, one)
        held.append(c)
    gc.collect()
    after = status_kib("VmRSS:")
    peak = status_kib("VmHWM:")
    out(value=(after - before) / n, unit="KiB/conn", rss_before_kib=before, rss_after_kib=after, peak_kib=peak)
    for c in held:
        p.close(c)


def w_ffi_binding(port, n):
    import transporturl

    c = transporturl.connect("udp://127.0.0.1:%d" % port)
    msg = b"a" * 64
    write = c.write
    for _ in range(1000):
        write(msg)
    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        write(msg)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    c.close()
    out(value=cpu / n * 1e9, wall_ns=wall / n * 1e9, unit="ns/call", wall_s=wall, cpu_s=cpu)


def bare_lib():
    import ctypes

    lib = ctypes.CDLL(os.environ["TRANSPORTURL_LIB"])
    lib.tu_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    lib.tu_connect.restype = ctypes.c_void_p
    lib.tu_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.tu_write.restype = ctypes.c_ssize_t
    lib.tu_close.argtypes = [ctypes.c_void_p]
    lib.tu_close.restype = None
    lib.tu_version.argtypes = []
    lib.tu_version.restype = ctypes.c_char_p
    return lib


def w_ffi_bare(port, n):
    """The baseline: tu_write through ctypes with its prototype declared, nothing else."""
    lib = bare_lib()
    h = lib.tu_connect(b"udp://127.0.0.1:%d" % port, None)
    if not h:
        raise RuntimeError("tu_connect failed")
    msg = b"a" * 64
    write = lib.tu_write
    for _ in range(1000):
        write(h, msg, 64)
    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        if write(h, msg, 64) != 64:
            raise RuntimeError("write")
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    lib.tu_close(h)
    out(value=cpu / n * 1e9, wall_ns=wall / n * 1e9, unit="ns/call", wall_s=wall, cpu_s=cpu)


def w_starttls(p, n):
    import transporturl

    one = bytearray(1)

    buf = bytearray(512)

    def line(c):
        # One reply line, read as a client reads one (the server sends each line in one write).
        got = 0
        mv = memoryview(buf)
        while got < 512:
            k = p.readinto(c, mv[got:])
            if not k:
                raise RuntimeError("greeting")
            got += k
            if buf[got - 1] == 10:
                return
        raise RuntimeError("greeting too long")

    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        c = p.connect("tcp://127.0.0.1:%d" % p.port)
        line(c)
        p.write(c, b"STARTTLS\r\n")
        line(c)
        c.enable_crypto(transporturl.CRYPTO_TLSV1_3)
        p.readinto(c, one)
        c.close()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    out(value=n / wall, unit="upgrades/s", wall_s=wall, cpu_s=cpu, cpu_per=cpu / n * 1e6, cpu_unit="us/hs")


def main():
    backend, workload = sys.argv[1], sys.argv[2]
    kv = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
    port = int(kv.get("port", "0"))
    n = int(kv.get("n", "0"))
    nbytes = int(kv.get("bytes", "0"))
    if workload == "version":
        import ssl

        pyv = "Python %d.%d.%d" % sys.version_info[:3]
        if backend == "ssl":
            out(version="%s ssl (%s)" % (pyv, ssl.OPENSSL_VERSION))
        elif backend == "ctypes":
            out(version="%s ctypes, libtransporturl %s" % (pyv, bare_lib().tu_version().decode()))
        else:
            import transporturl

            out(version="transporturl Python binding %s on %s (ctypes)" % (transporturl.__version__, pyv))
        return
    if workload == "ffi":
        return w_ffi_bare(port, n) if backend == "ctypes" else w_ffi_binding(port, n)
    p = SslPeer(port, kv["ca"]) if backend == "ssl" else TuPeer(port, kv["ca"])
    if workload == "send":
        w_send(p, nbytes)
    elif workload == "recv":
        w_recv(p, nbytes)
    elif workload == "pingpong":
        c = p.connect()
        pingpong(p, c, n)
        p.close(c)
    elif workload == "hs":
        w_hs(p, n, False)
    elif workload == "resume":
        w_hs(p, n, True)
    elif workload == "idle":
        w_idle(p, n)
    elif workload == "starttls" and backend == "tu":
        w_starttls(p, n)
    else:
        sys.exit("workload %s not supported by %s" % (workload, backend))


if __name__ == "__main__":
    main()
