//! The reference server every client of `make bench` talks to: a small
//! rustls server (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 pinned) or plain
//! TCP/UDP, one mode per process.
//!
//!   tu-bench server --mode MODE [--plain] [--tickets N] [--bytes N]
//!                   [--cert F --key F] [--cpu N] [--kx x25519|default]
//!
//! Prints `PORT <n>` on stdout once listening (127.0.0.1, port 0), answers
//! `stats` on stdin with one JSON line (handshakes, full, resumed since the
//! last `stats`), and exits when stdin closes: it never outlives the driver.
//!
//! Modes (TCP; connections are served one after the other, except `hold`):
//!   sink      read `--bytes` bytes (or to EOF), send a 1-byte ack, read to EOF
//!   source    read 1 byte, send `--bytes` bytes in 16 KiB writes, close_notify
//!   echo      send back whatever arrives, until EOF
//!   hs1       send 1 byte after the handshake, read to EOF
//!   hold      as hs1, one thread per connection (idle-connection memory)
//!   starttls  plaintext `220` greeting, `STARTTLS` → `220`, then as hs1 over TLS
//!   udp-echo  (UDP) send every datagram back
//!   udp-sink  (UDP) bind and never read (the W7 write target)

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

static HANDSHAKES: AtomicU64 = AtomicU64::new(0);
static RESUMED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static CONNS: AtomicU64 = AtomicU64::new(0);

/// No connection may hang the server: every read and write is bounded.
const IO_LIMIT: Duration = Duration::from_secs(30);
const CHUNK: usize = 16 * 1024;

pub struct Args {
    pub mode: String,
    pub plain: bool,
    pub tickets: usize,
    pub bytes: u64,
    pub cert: String,
    pub key: String,
    pub cpu: Option<usize>,
    pub kx: String,
}

pub fn pin_cpu(cpu: usize) {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// TLS 1.3 + AES-128-GCM + X25519 (or the provider's default groups).
pub fn pinned_provider(kx_default: bool) -> CryptoProvider {
    let base = rustls::crypto::aws_lc_rs::default_provider();
    CryptoProvider {
        cipher_suites: vec![rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: if kx_default { base.kx_groups.clone() } else { vec![rustls::crypto::aws_lc_rs::kx_group::X25519] },
        ..base
    }
}

fn server_config(a: &Args) -> Arc<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&a.cert).expect("cert file").map(|c| c.expect("cert")).collect();
    let key = PrivateKeyDer::from_pem_file(&a.key).expect("key file");
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(pinned_provider(a.kx == "default")))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server cert");
    cfg.send_tls13_tickets = a.tickets;
    if a.tickets > 0 {
        cfg.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().expect("ticketer");
        cfg.session_storage = ServerSessionMemoryCache::new(4096);
    } else {
        // Full handshakes only, whatever the client caches.
        cfg.session_storage = Arc::new(NoServerSessionStorage {});
    }
    Arc::new(cfg)
}

fn tune(s: &TcpStream) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(IO_LIMIT));
    let _ = s.set_write_timeout(Some(IO_LIMIT));
}

/// Reads and discards until EOF, close_notify or an error.
fn drain<S: Read>(s: &mut S) {
    let mut buf = vec![0u8; CHUNK];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn serve<S: Read + Write>(mode: &str, s: &mut S, bytes: u64) -> std::io::Result<()> {
    match mode {
        "sink" => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0u64;
            while got < bytes {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            s.write_all(b"A")?;
            s.flush()?;
            drain(s);
        }
        "source" => {
            let mut one = [0u8; 1];
            s.read_exact(&mut one)?;
            let buf = vec![0x5au8; CHUNK];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                s.write_all(&buf[..n])?;
                left -= n as u64;
            }
            s.flush()?;
        }
        "echo" => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n])?;
                s.flush()?;
            }
        }
        "hs1" | "hold" | "starttls" => {
            s.write_all(b"A")?;
            s.flush()?;
            drain(s);
        }
        other => panic!("unknown mode {other}"),
    }
    Ok(())
}

fn count(conn: &ServerConnection) {
    HANDSHAKES.fetch_add(1, Ordering::Relaxed);
    if conn.handshake_kind() == Some(HandshakeKind::Resumed) {
        RESUMED.fetch_add(1, Ordering::Relaxed);
    }
}

fn handle(a: &Args, cfg: &Option<Arc<ServerConfig>>, mut tcp: TcpStream) {
    CONNS.fetch_add(1, Ordering::Relaxed);
    tune(&tcp);
    if a.mode == "starttls" {
        if tcp.write_all(b"220 bench ESMTP ready\r\n").is_err() {
            return;
        }
        // Read one line (STARTTLS), byte by byte: nothing after it may be consumed.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\n") {
            match tcp.read(&mut b) {
                Ok(1) => line.push(b[0]),
                _ => return,
            }
            if line.len() > 512 {
                return;
            }
        }
        if tcp.write_all(b"220 2.0.0 go ahead\r\n").is_err() {
            return;
        }
    }
    match cfg {
        None => {
            let _ = serve(&a.mode, &mut tcp, a.bytes);
            if a.mode == "source" {
                let _ = tcp.shutdown(std::net::Shutdown::Write);
                drain(&mut tcp);
            }
        }
        Some(cfg) => {
            let conn = match ServerConnection::new(cfg.clone()) {
                Ok(c) => c,
                Err(_) => return,
            };
            let mut tls = StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                if tls.conn.complete_io(&mut tls.sock).is_err() {
                    FAILED.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            count(&tls.conn);
            let _ = serve(&a.mode, &mut tls, a.bytes);
            if a.mode == "source" {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                drain(&mut tls);
            }
        }
    }
}

fn stdin_control() {
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                let h = HANDSHAKES.swap(0, Ordering::Relaxed);
                let r = RESUMED.swap(0, Ordering::Relaxed);
                let f = FAILED.swap(0, Ordering::Relaxed);
                let c = CONNS.swap(0, Ordering::Relaxed);
                println!("{{\"connections\":{c},\"handshakes\":{h},\"resumed\":{r},\"full\":{},\"failed\":{f}}}", h - r);
                let _ = std::io::stdout().flush();
            }
        }
        // The driver went away: so do we.
        std::process::exit(0);
    });
}

pub fn run(a: Args) {
    if let Some(cpu) = a.cpu {
        pin_cpu(cpu);
    }
    if a.mode == "udp-echo" || a.mode == "udp-sink" {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        println!("PORT {}", sock.local_addr().unwrap().port());
        let _ = std::io::stdout().flush();
        stdin_control();
        if a.mode == "udp-sink" {
            loop {
                std::thread::park();
            }
        }
        let mut buf = vec![0u8; 65536];
        loop {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        }
    }
    let cfg = if a.plain { None } else { Some(server_config(&a)) };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("PORT {}", listener.local_addr().unwrap().port());
    let _ = std::io::stdout().flush();
    stdin_control();
    let a = Arc::new(a);
    for s in listener.incoming() {
        let Ok(s) = s else { continue };
        if a.mode == "hold" {
            let (a, cfg) = (a.clone(), cfg.clone());
            let _ = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || handle(&a, &cfg, s));
        } else {
            handle(&a, &cfg, s);
        }
    }
}
