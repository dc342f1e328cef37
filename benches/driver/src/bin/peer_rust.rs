//! The Rust peers of `make bench`:
//!   peer-rust tu             transporturl through its Rust API (Handle::connect, read, write)
//!   peer-rust rustls         raw rustls 0.23 (StreamOwned), TLS 1.3 + AES-128-GCM + X25519 pinned
//!   peer-rust rustls-default raw rustls with the provider's default groups (X25519MLKEM768 offered first)
//!
//!   peer-rust BACKEND WORKLOAD port=P ca=FILE n=N bytes=B
//!
//! Prints one JSON line: {"value":..,"unit":..,"wall_s":..,"cpu_s":..,...}.
//! The workloads and their protocol are the same in every peer (benches/peers/README.md).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;
use transporturl::{Handle, Options};

const CHUNK: usize = 16 * 1024;

fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn status_kib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            return rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(0.0);
        }
    }
    0.0
}

fn die(msg: String) -> ! {
    eprintln!("peer-rust: {msg}");
    std::process::exit(2)
}

trait Conn {
    fn read(&mut self, buf: &mut [u8]) -> usize;
    fn write_all(&mut self, buf: &[u8]);
    fn resumed(&self) -> Option<bool> {
        None
    }
}

struct Tu(Handle);

impl Conn for Tu {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.0.read(buf).unwrap_or_else(|e| die(format!("read: {e:?}")))
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) {
        let n = self.0.write(buf).unwrap_or_else(|e| die(format!("write: {e:?}")));
        if n != buf.len() {
            die(format!("short write {n}"));
        }
    }
}

struct Raw(StreamOwned<ClientConnection, TcpStream>);

impl Conn for Raw {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.0.read(buf).unwrap_or_else(|e| die(format!("read: {e}")))
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) {
        Write::write_all(&mut self.0, buf).unwrap_or_else(|e| die(format!("write: {e}")));
    }
    fn resumed(&self) -> Option<bool> {
        Some(self.0.conn.handshake_kind() == Some(HandshakeKind::Resumed))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.0.conn.send_close_notify();
        let _ = self.0.conn.complete_io(&mut self.0.sock);
    }
}

struct Peer {
    backend: String,
    port: u16,
    tu_opts: Option<Options>,
    rustls_cfg: Option<Arc<ClientConfig>>,
}

fn pinned_provider(default_kx: bool) -> rustls::crypto::CryptoProvider {
    let base = rustls::crypto::aws_lc_rs::default_provider();
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: if default_kx { base.kx_groups.clone() } else { vec![rustls::crypto::aws_lc_rs::kx_group::X25519] },
        ..base
    }
}

impl Peer {
    fn new(backend: &str, port: u16, ca: &str) -> Peer {
        let mut p = Peer { backend: backend.to_string(), port, tu_opts: None, rustls_cfg: None };
        match backend {
            "tu" => {
                let mut o = Options::default();
                o.set("ssl.cafile", ca).unwrap_or_else(|e| die(format!("ssl.cafile: {e:?}")));
                o.set("ssl.peer_name", "localhost").unwrap_or_else(|e| die(format!("ssl.peer_name: {e:?}")));
                // Pinned where the library can; the server pins the suite and the group anyway.
                let _ = o.set("ssl.ciphers", "TLS_AES_128_GCM_SHA256");
                let _ = o.set("socket.tcp_nodelay", "true");
                p.tu_opts = Some(o);
            }
            "rustls" | "rustls-default" => {
                let mut roots = RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| die(format!("ca: {e}"))) {
                    roots.add(c.unwrap_or_else(|e| die(format!("ca: {e}")))).unwrap_or_else(|e| die(format!("ca: {e}")));
                }
                let cfg = ClientConfig::builder_with_provider(Arc::new(pinned_provider(backend == "rustls-default")))
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                p.rustls_cfg = Some(Arc::new(cfg));
            }
            other => die(format!("unknown backend {other}")),
        }
        p
    }

    fn connect(&self) -> Box<dyn ConnDyn> {
        match self.backend.as_str() {
            "tu" => Box::new(self.connect_tu()),
            _ => Box::new(self.connect_raw()),
        }
    }

    fn connect_tu(&self) -> Tu {
        let url = format!("tlsv1.3://127.0.0.1:{}", self.port);
        Tu(Handle::connect(&url, self.tu_opts.as_ref().unwrap()).unwrap_or_else(|e| die(format!("connect: {e:?}"))))
    }

    fn connect_raw(&self) -> Raw {
        let sock = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| die(format!("connect: {e}")));
        sock.set_nodelay(true).unwrap();
        let conn = ClientConnection::new(self.rustls_cfg.clone().unwrap(), ServerName::try_from("localhost").unwrap())
            .unwrap();
        let mut s = StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).unwrap_or_else(|e| die(format!("handshake: {e}")));
        }
        Raw(s)
    }
}

/// Object-safe wrapper for the handshake loops (where a virtual call is noise).
trait ConnDyn {
    fn read1(&mut self) -> usize;
    fn resumed(&self) -> Option<bool>;
}
impl<C: Conn> ConnDyn for C {
    fn read1(&mut self) -> usize {
        let mut b = [0u8; 1];
        Conn::read(self, &mut b)
    }
    fn resumed(&self) -> Option<bool> {
        Conn::resumed(self)
    }
}

fn out(fields: &[(&str, serde_json::Value)]) {
    let mut m = serde_json::Map::new();
    for (k, v) in fields {
        m.insert(k.to_string(), v.clone());
    }
    println!("{}", serde_json::Value::Object(m));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn send<C: Conn>(mut c: C, bytes: u64) {
    let buf = vec![0x5au8; CHUNK];
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        c.write_all(&buf[..n]);
        left -= n as u64;
    }
    let mut ack = [0u8; 1];
    if c.read(&mut ack) != 1 {
        die("no ack".into());
    }
    drop(c);
    report_bulk(t0, c0, bytes);
}

fn recv<C: Conn>(mut c: C, bytes: u64) {
    let mut buf = vec![0u8; CHUNK];
    let (t0, c0) = (Instant::now(), cpu_seconds());
    c.write_all(b"g");
    let mut got = 0u64;
    loop {
        let n = c.read(&mut buf);
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    drop(c);
    if got != bytes {
        die(format!("received {got} of {bytes} bytes"));
    }
    report_bulk(t0, c0, bytes);
}

fn report_bulk(t0: Instant, c0: f64, bytes: u64) {
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let gib = bytes as f64 / (1u64 << 30) as f64;
    out(&[
        ("value", (bytes as f64 / wall / 1e6).into()),
        ("unit", "MB/s".into()),
        ("wall_s", wall.into()),
        ("cpu_s", cpu.into()),
        ("cpu_per", (cpu / gib).into()),
        ("cpu_unit", "s/GiB".into()),
    ]);
}

fn pingpong<C: Conn>(mut c: C, n: usize) {
    let msg = [0x61u8; 64];
    let mut buf = [0u8; 64];
    let warm = (n / 50).max(10);
    let mut rtts = Vec::with_capacity(n);
    let (mut t0, mut c0) = (Instant::now(), cpu_seconds());
    for i in 0..warm + n {
        if i == warm {
            t0 = Instant::now();
            c0 = cpu_seconds();
        }
        let s = Instant::now();
        c.write_all(&msg);
        let mut got = 0;
        while got < 64 {
            let k = c.read(&mut buf[got..]);
            if k == 0 {
                die("EOF in ping-pong".into());
            }
            got += k;
        }
        if i >= warm {
            rtts.push(s.elapsed().as_secs_f64() * 1e6);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    drop(c);
    out(&[
        ("value", median(&mut rtts).into()),
        ("unit", "us".into()),
        ("wall_s", wall.into()),
        ("cpu_s", cpu.into()),
        ("cpu_per", (cpu / n as f64 * 1e6).into()),
        ("cpu_unit", "us/RTT".into()),
    ]);
}

fn handshakes(p: &Peer, n: usize, resume: bool) {
    if resume {
        // Prime the cache: tickets come after the handshake, with the first byte.
        let mut c = p.connect();
        c.read1();
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut resumed = 0u64;
    let mut known = false;
    for _ in 0..n {
        let mut c = p.connect();
        if c.read1() != 1 {
            die("no byte".into());
        }
        if let Some(r) = c.resumed() {
            known = true;
            resumed += r as u64;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let mut f = vec![
        ("value", (n as f64 / wall).into()),
        ("unit", "hs/s".into()),
        ("wall_s", wall.into()),
        ("cpu_s", cpu.into()),
        ("cpu_per", (cpu / n as f64 * 1e6).into()),
        ("cpu_unit", "us/hs".into()),
    ];
    if known {
        f.push(("client_resumed", resumed.into()));
    }
    out(&f);
}

fn idle(p: &Peer, n: usize) {
    {
        let mut c = p.connect();
        c.read1();
    }
    let before = status_kib("VmRSS:");
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = p.connect();
        c.read1();
        held.push(c);
    }
    let after = status_kib("VmRSS:");
    let peak = status_kib("VmHWM:");
    out(&[
        ("value", ((after - before) / n as f64).into()),
        ("unit", "KiB/conn".into()),
        ("rss_before_kib", before.into()),
        ("rss_after_kib", after.into()),
        ("peak_kib", peak.into()),
    ]);
    drop(held);
}

/// W7: `write` of 64 B on udp:// (a sink that never reads), n times.
fn ffi(port: u16, n: usize) {
    let h = Handle::connect(&format!("udp://127.0.0.1:{port}"), &Options::default())
        .unwrap_or_else(|e| die(format!("connect: {e:?}")));
    let msg = [0x61u8; 64];
    for _ in 0..1000 {
        let _ = h.write(&msg);
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        if h.write(std::hint::black_box(&msg)).is_err() {
            die("write".into());
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    // CPU time per call (the loop never sleeps); wall time is kept too.
    out(&[
        ("value", (cpu / n as f64 * 1e9).into()),
        ("wall_ns", (wall / n as f64 * 1e9).into()),
        ("unit", "ns/call".into()),
        ("wall_s", wall.into()),
        ("cpu_s", cpu.into()),
    ]);
}

/// W8 for raw rustls: plaintext greeting, STARTTLS, then the handshake on the same socket.
fn starttls_raw(p: &Peer, n: usize) {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        let mut sock = TcpStream::connect(("127.0.0.1", p.port)).unwrap_or_else(|e| die(format!("connect: {e}")));
        sock.set_nodelay(true).unwrap();
        read_line(&mut sock);
        sock.write_all(b"STARTTLS\r\n").unwrap();
        read_line(&mut sock);
        let conn = ClientConnection::new(p.rustls_cfg.clone().unwrap(), ServerName::try_from("localhost").unwrap())
            .unwrap();
        let mut s = StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).unwrap_or_else(|e| die(format!("handshake: {e}")));
        }
        let mut c = Raw(s);
        c.read1();
    }
    report_hs(t0, c0, n, "upgrades/s");
}

fn starttls_tu(p: &Peer, n: usize) {
    let url = format!("tcp://127.0.0.1:{}", p.port);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        let h = Handle::connect(&url, p.tu_opts.as_ref().unwrap()).unwrap_or_else(|e| die(format!("connect: {e:?}")));
        let mut c = Tu(h);
        read_line_conn(&mut c);
        c.write_all(b"STARTTLS\r\n");
        read_line_conn(&mut c);
        c.0.enable_crypto(transporturl::handle::TU_CRYPTO_TLSV1_3).unwrap_or_else(|e| die(format!("enable: {e:?}")));
        c.read1();
    }
    report_hs(t0, c0, n, "upgrades/s");
}

fn report_hs(t0: Instant, c0: f64, n: usize, unit: &str) {
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    out(&[
        ("value", (n as f64 / wall).into()),
        ("unit", unit.into()),
        ("wall_s", wall.into()),
        ("cpu_s", cpu.into()),
        ("cpu_per", (cpu / n as f64 * 1e6).into()),
        ("cpu_unit", "us/hs".into()),
    ]);
}

/// One reply line, read as a client reads one (the server sends each line in one write).
fn read_line(s: &mut TcpStream) {
    let mut b = [0u8; 512];
    let mut got = 0;
    while got < b.len() {
        let k = s.read(&mut b[got..]).unwrap_or(0);
        if k == 0 {
            die("greeting".into());
        }
        got += k;
        if b[got - 1] == b'\n' {
            return;
        }
    }
    die("greeting too long".into());
}

fn read_line_conn<C: Conn>(c: &mut C) {
    let mut b = [0u8; 512];
    let mut got = 0;
    while got < b.len() {
        let k = c.read(&mut b[got..]);
        if k == 0 {
            die("greeting".into());
        }
        got += k;
        if b[got - 1] == b'\n' {
            return;
        }
    }
    die("greeting too long".into());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        die("usage: peer-rust tu|rustls|rustls-default WORKLOAD key=value...".into());
    }
    let (backend, workload) = (args[1].as_str(), args[2].as_str());
    let kv: HashMap<&str, &str> = args[3..].iter().filter_map(|a| a.split_once('=')).collect();
    let get = |k: &str| kv.get(k).copied().unwrap_or_else(|| die(format!("missing {k}=")));
    if workload == "version" {
        let v = if backend == "tu" {
            format!("transporturl {} (Rust API, rustls 0.23)", unsafe {
                std::ffi::CStr::from_ptr(transporturl::ffi::tu_version()).to_string_lossy()
            })
        } else {
            match backend {
                "rustls-default" => "rustls 0.23 (aws-lc-rs), default key-exchange groups (X25519MLKEM768 first; server allows it)".to_string(),
                _ => "rustls 0.23 (aws-lc-rs), TLS13_AES_128_GCM_SHA256 + X25519 pinned".to_string(),
            }
        };
        out(&[("version", v.into())]);
        return;
    }
    let port: u16 = get("port").parse().unwrap();
    let n: usize = kv.get("n").map(|v| v.parse().unwrap()).unwrap_or(0);
    let bytes: u64 = kv.get("bytes").map(|v| v.parse().unwrap()).unwrap_or(0);
    if workload == "ffi" {
        return ffi(port, n);
    }
    let p = Peer::new(backend, port, get("ca"));
    let tu = backend == "tu";
    match workload {
        "send" if tu => send(p.connect_tu(), bytes),
        "send" => send(p.connect_raw(), bytes),
        "recv" if tu => recv(p.connect_tu(), bytes),
        "recv" => recv(p.connect_raw(), bytes),
        "pingpong" if tu => pingpong(p.connect_tu(), n),
        "pingpong" => pingpong(p.connect_raw(), n),
        "hs" => handshakes(&p, n, false),
        "resume" => handshakes(&p, n, true),
        "idle" => idle(&p, n),
        "starttls" if tu => starttls_tu(&p, n),
        "starttls" => starttls_raw(&p, n),
        other => die(format!("workload {other} not supported by {backend}")),
    }
}
