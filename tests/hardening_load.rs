//! Load without loss and resource exhaustion (issue 8, items 5 and 6).
//!
//! - 8 threads x 25 sequential TLS connections, each echoing 256 KiB written and
//!   read at once in random-sized chunks: SHA-256 equal and byte-exact;
//! - one TLS connection moving N bytes each way at once (reader and writer
//!   threads): 16 MiB in `make test`, 256 MiB in `make hardening` (release);
//! - 1,000 connect/handshake/close cycles: descriptors back to the baseline,
//!   resident memory flat;
//! - 1,000 UDP datagrams each way with sequence numbers and CRC-32s;
//! - RLIMIT_NOFILE lowered in a child process: EMFILE is TU_E_IO naming it,
//!   nothing leaks, and connecting works again once handles are closed.
//!
//! The tests of this file run one at a time (they count descriptors).

mod common;
mod hardening_support;

use common::*;
use hardening_support::*;
use std::io::Read;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use transporturl::error::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const SUITE: &str = "load";

fn tls_setup() -> (Ca, Arc<rustls::ServerConfig>, String) {
    let ca = ca();
    let cfg = server_config(leaf(&ca, Leaf::Good));
    let path = ca.pem_path.to_str().unwrap().to_string();
    (ca, cfg, path)
}

/// Writes `data` in random-sized chunks while another thread reads the echo
/// in random-sized reads; returns what was read.
fn echo_duplex(c: Arc<Conn>, data: Arc<Vec<u8>>, seed: u64, max_chunk: usize) -> Vec<u8> {
    let reader = {
        let c = c.clone();
        let n = data.len();
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0xABCD);
            let mut out = Vec::with_capacity(n);
            let mut buf = vec![0u8; max_chunk];
            while out.len() < n {
                let want = rng.range(1, max_chunk).min(n - out.len());
                let r = c.read(&mut buf[..want]);
                assert!(r > 0, "read after {} of {n} bytes: {r} {:?}", out.len(), c.last_error());
                out.extend_from_slice(&buf[..r as usize]);
            }
            out
        })
    };
    let mut rng = Rng(seed);
    let mut off = 0;
    while off < data.len() {
        let len = rng.range(1, max_chunk).min(data.len() - off);
        assert_eq!(c.write_all(&data[off..off + len]), Ok(()), "{:?}", c.last_error());
        off += len;
    }
    reader.join().expect("reader thread")
}

#[test]
fn echo_8_threads_x_25_tls_connections() {
    let _g = serial();
    const THREADS: usize = 8;
    let per_thread = 25;
    const BYTES: usize = 256 << 10;
    let (_ca, cfg, cafile) = tls_setup();
    let server = Concurrent::start(THREADS * per_thread, echo_tls(cfg, true));
    let port = server.port;
    let t0 = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let cafile = cafile.clone();
            std::thread::spawn(move || {
                let mut moved = 0usize;
                for i in 0..per_thread {
                    let seed = (t * 1000 + i) as u64;
                    let data = Arc::new(Rng(seed).bytes(BYTES));
                    let c = Arc::new(must_connect(
                        &format!("tls://localhost:{port}"),
                        &[("ssl.cafile", &cafile), ("read_timeout", "30"), ("write_timeout", "30")],
                    ));
                    let got = echo_duplex(c.clone(), data.clone(), seed, 32 << 10);
                    assert_eq!(sha256(&got), sha256(&data), "thread {t} connection {i}: SHA-256 differs");
                    assert!(got == *data, "thread {t} connection {i}: bytes differ");
                    moved += got.len();
                    // Our close_notify; the echo server answers with its own.
                    // SAFETY (test): the descriptor belongs to the open handle.
                    unsafe { libc::shutdown(c.fd(), libc::SHUT_WR) };
                    let mut b = [0u8; 16];
                    let end = c.read(&mut b);
                    assert_eq!(end, 0, "orderly close_notify at the end: {end} {:?}", c.last_error());
                }
                moved
            })
        })
        .collect();
    let moved: usize = workers.into_iter().map(|w| w.join().expect("client thread")).sum();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(server.join(), THREADS * per_thread);
    assert_eq!(moved, THREADS * per_thread * BYTES);
    figure(
        SUITE,
        &format!("TLS echo {THREADS} threads x {per_thread} connections x 256 KiB"),
        format!("{moved} bytes each way, 0 lost, SHA-256 equal, {secs:.1} s"),
    );
}

#[test]
fn one_tls_connection_both_ways_at_once() {
    let _g = serial();
    let total: usize = pick(16 << 20, 256 << 20);
    let (_ca, cfg, cafile) = tls_setup();
    let server = Server::start(1, echo_tls(cfg, true));
    let c = Arc::new(must_connect(
        &format!("tls://localhost:{}", server.port),
        &[("ssl.cafile", &cafile), ("read_timeout", "60"), ("write_timeout", "60")],
    ));
    const SEED: u64 = 0x00C0_FFEE;
    let t0 = Instant::now();
    // The reader regenerates the stream and compares as it goes: nothing is stored.
    let reader = {
        let c = c.clone();
        std::thread::spawn(move || {
            let mut expect = Rng(SEED);
            let mut sizes = Rng(SEED ^ 1);
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut want = vec![0u8; 1 << 20];
            let mut got = 0usize;
            let mut pending: Vec<u8> = Vec::new(); // expected bytes generated but not yet matched
            while got < total {
                let n = sizes.range(1, buf.len()).min(total - got);
                let r = c.read(&mut buf[..n]);
                assert!(r > 0, "read at {got}: {r} {:?}", c.last_error());
                let r = r as usize;
                while pending.len() < r {
                    expect.fill(&mut want[..8]);
                    pending.extend_from_slice(&want[..8]);
                }
                assert!(buf[..r] == pending[..r], "byte mismatch near offset {got}");
                pending.drain(..r);
                hash.update(&buf[..r]);
                got += r;
            }
            (got, hash.finish())
        })
    };
    let mut gen = Rng(SEED);
    let mut sizes = Rng(SEED ^ 2);
    let mut hash = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut sent = 0usize;
    let mut carry: Vec<u8> = Vec::new();
    while sent < total {
        let n = sizes.range(1, chunk.len()).min(total - sent);
        // The same 8-byte-granular stream the reader regenerates.
        while carry.len() < n {
            let mut w = [0u8; 8];
            gen.fill(&mut w);
            carry.extend_from_slice(&w);
        }
        chunk[..n].copy_from_slice(&carry[..n]);
        carry.drain(..n);
        hash.update(&chunk[..n]);
        assert_eq!(c.write_all(&chunk[..n]), Ok(()), "{:?}", c.last_error());
        sent += n;
    }
    let (got, their) = reader.join().expect("reader");
    let secs = t0.elapsed().as_secs_f64();
    let ours = hash.finish();
    assert_eq!(got, total);
    assert_eq!(hex(&ours), hex(&their), "SHA-256 of what went out and what came back");
    drop(c);
    server.join();
    figure(
        SUITE,
        &format!("one TLS connection, {} MiB each way at once", total >> 20),
        format!("{} bytes each way, 0 lost, SHA-256 {} equal, {:.1} s ({:.0} MiB/s each way)", total, &hex(&ours)[..16], secs, (total >> 20) as f64 / secs),
    );
}

#[test]
fn thousand_connect_handshake_close_cycles() {
    let _g = serial();
    const CYCLES: usize = 1000;
    let (_ca, cfg, cafile) = tls_setup();
    let serve = move |s: std::net::TcpStream| {
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        let mut b = [0u8; 64];
        let _ = tls.read(&mut b); // until our close
    };
    // Warm-up: roots, configs and the allocator reach their working size.
    let warm = 100;
    let server = Server::start(warm, serve.clone());
    let url = format!("tls://localhost:{}", server.port);
    let opts = [("ssl.cafile", cafile.as_str()), ("timeout", "10")];
    for _ in 0..warm {
        drop(must_connect(&url, &opts));
    }
    server.join();
    let fds0 = quiet_fds();
    let rss0 = rss_kib();

    let server = Server::start(CYCLES, serve);
    let url = format!("tls://localhost:{}", server.port);
    let t0 = Instant::now();
    let mut rss_mid = 0;
    for i in 0..CYCLES {
        let c = must_connect(&url, &opts);
        assert!(text(transporturl::ffi::tu_tls_version(c.0)).is_some());
        drop(c);
        if i == CYCLES / 2 {
            rss_mid = rss_kib();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    server.join();
    let fds1 = settle_fds(fds0);
    let rss1 = rss_kib();
    assert!(fds1 <= fds0, "descriptors: {fds0} before {CYCLES} cycles, {fds1} after");
    let growth = rss1 as i64 - rss0 as i64;
    assert!(growth < 8 * 1024, "RSS grew {growth} KiB over {CYCLES} TLS cycles ({rss0} -> {rss_mid} -> {rss1} KiB)");

    // And plain TCP, for the same counts without TLS.
    let server = Server::start(CYCLES, |s| {
        let mut s = s;
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let url = format!("tcp://127.0.0.1:{}", server.port);
    for _ in 0..CYCLES {
        drop(must_connect(&url, &[]));
    }
    server.join();
    let fds2 = settle_fds(fds0);
    assert!(fds2 <= fds0, "descriptors: {fds0} before {CYCLES} TCP cycles, {fds2} after");
    figure(
        SUITE,
        &format!("{CYCLES} TLS connect/handshake/close cycles (+{CYCLES} TCP)"),
        format!("fds {fds0} -> {fds1} -> {fds2}, RSS {rss0} -> {rss_mid} -> {rss1} KiB ({growth:+} KiB), {:.1} ms per TLS cycle", secs * 1000.0 / CYCLES as f64),
    );
}

/// `[seq u32][len u32][crc32 of payload u32][payload]`
fn datagram(seq: u32, rng: &mut Rng) -> Vec<u8> {
    // Mostly small, some large, a few at the UDP maximum.
    let len = match rng.below(20) {
        0 => transporturl::handle::TU_UDP_MAX_DATAGRAM - 12,
        1..=3 => rng.range(8192, 60_000),
        _ => rng.range(0, 1400),
    };
    let payload = rng.bytes(len);
    let mut d = Vec::with_capacity(12 + len);
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&(len as u32).to_be_bytes());
    d.extend_from_slice(&crc32(&payload).to_be_bytes());
    d.extend_from_slice(&payload);
    d
}

fn check_datagram(d: &[u8], want_seq: u32) {
    assert!(d.len() >= 12, "datagram {want_seq}: only {} bytes", d.len());
    let seq = u32::from_be_bytes(d[0..4].try_into().unwrap());
    let len = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    let crc = u32::from_be_bytes(d[8..12].try_into().unwrap());
    assert_eq!(seq, want_seq, "sequence");
    assert_eq!(d.len(), 12 + len, "datagram {seq}: length");
    assert_eq!(crc32(&d[12..]), crc, "datagram {seq}: CRC");
}

#[test]
fn thousand_udp_datagrams_each_way() {
    let _g = serial();
    const N: u32 = 1000;
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let port = peer.local_addr().unwrap().port();
    // The peer echoes N datagrams, then sends N of its own (one at a time,
    // each after our acknowledgement, so a full receive queue cannot drop one).
    let echo = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut from = None;
        for _ in 0..N {
            let (n, addr) = peer.recv_from(&mut buf).expect("peer recv");
            peer.send_to(&buf[..n], addr).unwrap();
            from = Some(addr);
        }
        let to = from.unwrap();
        let mut rng = Rng(99);
        for seq in 0..N {
            peer.send_to(&datagram(seq, &mut rng), to).unwrap();
            let (n, _) = peer.recv_from(&mut buf).expect("ack");
            assert_eq!(&buf[..n], &seq.to_be_bytes());
        }
    });
    let c = must_connect(&format!("udp://127.0.0.1:{port}"), &[("read_timeout", "10")]);
    let mut rng = Rng(42);
    let mut buf = vec![0u8; 65536];
    let mut bytes = 0usize;
    for seq in 0..N {
        let d = datagram(seq, &mut rng);
        assert_eq!(c.write(&d), d.len() as isize, "one write is one datagram");
        let r = c.read(&mut buf);
        assert_eq!(r, d.len() as isize, "echo of {seq}: {:?}", c.last_error());
        assert!(buf[..d.len()] == d[..]);
        check_datagram(&buf[..r as usize], seq);
        bytes += d.len();
    }
    for seq in 0..N {
        let r = c.read(&mut buf);
        assert!(r > 0, "datagram {seq}: {r} {:?}", c.last_error());
        check_datagram(&buf[..r as usize], seq);
        bytes += r as usize;
        assert_eq!(c.write(&seq.to_be_bytes()), 4);
    }
    echo.join().expect("peer");
    figure(SUITE, "UDP datagrams with sequence numbers and CRC-32", format!("{} each way ({bytes} bytes), 0 lost, 0 corrupt, 0 reordered", N));
}

// ---------------------------------------------------------------------------
// RLIMIT_NOFILE: in a child process, so that no other test sees the limit

const CHILD_ENV: &str = "TU_HARDENING_CHILD";

#[test]
fn emfile_is_io_naming_it_and_recovers() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("emfile") {
        return emfile_child();
    }
    let _g = serial();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "emfile_is_io_naming_it_and_recovers", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "emfile")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed:\n{text}");
    let line = text
        .lines()
        .find_map(|l| l.split_once("EMFILE-CHILD-OK ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("no result line:\n{text}"));
    figure(SUITE, "RLIMIT_NOFILE lowered (child process)", line);
}

fn emfile_child() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
    let port = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port();
    let dir = temp_dir("emfile");
    let path = dir.join("s.sock");
    let _unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
    // Warm up once: lazily made things (resolver, caches) are made now.
    drop(must_connect(&format!("tcp://127.0.0.1:{port}"), &[]));
    let base = open_fds();
    // The lowest limit that leaves 6 free descriptor numbers (inherited
    // descriptors may sit at high numbers; new ones only go below the limit).
    let used: std::collections::HashSet<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut free = 0;
    let mut limit = 0;
    while free < 6 {
        if !used.contains(&limit) {
            free += 1;
        }
        limit += 1;
    }
    let limit = limit as libc::rlim_t;
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY (test): plain libc calls on valid structs, in a child process.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let new = libc::rlimit { rlim_cur: limit, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &new), 0);
    }
    let mut summary = Vec::new();
    let urls = [
        format!("tcp://127.0.0.1:{port}"),
        format!("udp://127.0.0.1:{uport}"),
        format!("unix://{}", path.display()),
        // A name: the resolver needs descriptors too (it once said TU_E_RESOLVE).
        format!("tcp://localhost:{port}"),
    ];
    for url in &urls {
        let mut open = Vec::new();
        let failure = loop {
            match connect(url, &[("timeout", "2")]) {
                Ok(c) => open.push(c),
                Err(e) => break e,
            }
            assert!(open.len() < 100, "{url}: the limit of {limit} descriptors never hit");
        };
        let (code, msg) = failure;
        assert_eq!(code, TU_E_IO, "{url}: {} {msg}", name(code));
        assert!(msg.contains("EMFILE"), "{url}: the message names EMFILE: {msg}");
        let held = open.len();
        drop(open);
        assert_eq!(open_fds(), base, "{url}: descriptors after closing");
        // Works again.
        drop(must_connect(url, &[("timeout", "2")]));
        summary.push(format!("{url}: {held} open then TU_E_IO ({})", msg.split(": ").nth(1).unwrap_or("?")));
    }
    // SAFETY (test): restores the limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    assert_eq!(open_fds(), base);
    println!("EMFILE-CHILD-OK limit {limit}, fds {base} before and after; {}", summary.join("; "));
}
