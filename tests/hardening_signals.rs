//! Signals (issue 8, item 7): blocking calls pestered by a signal whose handler
//! was installed without SA_RESTART (so every wait in the kernel returns
//! EINTR) neither fail nor outlive their time limit, and succeed when the
//! peer answers within it. (SIGPIPE: tests/c/test_sigpipe.c.)

mod common;
mod hardening_support;

use common::*;
use hardening_support::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use transporturl::error::*;
use transporturl::ffi::*;
use transporturl::handle::TU_CRYPTO_ANY;

const SUITE: &str = "signals";

static DELIVERED: AtomicUsize = AtomicUsize::new(0);
/// The tests of this file run one at a time: the counter and the handler
/// are process-wide, and time limits are measured.
static ONE: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

extern "C" fn on_signal(_sig: libc::c_int) {
    DELIVERED.fetch_add(1, Ordering::Relaxed);
}

/// SIGUSR1 handler without SA_RESTART.
fn install() {
    // SAFETY (test): a valid sigaction whose handler only touches an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0; // no SA_RESTART: interrupted system calls return EINTR
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Runs `f` on this thread while another thread sends it SIGUSR1 every
/// `every`; returns f's result and the number of signals delivered.
fn pestered<T>(every: Duration, f: impl FnOnce() -> T) -> (T, usize) {
    install();
    // SAFETY (test): pthread_self of this thread, which outlives the pesterer.
    let me = unsafe { libc::pthread_self() };
    let stop = Arc::new(AtomicBool::new(false));
    let before = DELIVERED.load(Ordering::Relaxed);
    let pest = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY (test): `me` is alive until we are joined below.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                std::thread::sleep(every);
            }
        })
    };
    let r = f();
    stop.store(true, Ordering::Relaxed);
    pest.join().unwrap();
    (r, DELIVERED.load(Ordering::Relaxed) - before)
}

fn within(what: &str, t: Duration, lo: f64, hi: f64) {
    let s = t.as_secs_f64();
    assert!(s >= lo && s < hi, "{what}: took {s:.3} s, expected {lo}..{hi} s");
}

const EVERY: Duration = Duration::from_millis(2);

#[test]
fn blocking_read_survives_signals_and_keeps_its_deadline() {
    let _g = alone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let server = Server::start(2, move |mut s| {
        // First connection: silent. Second: answers after 300 ms.
        let _ = rx.lock().unwrap().recv_timeout(IO_LIMIT);
        let _ = s.write_all(b"late");
        let _ = rx.lock().unwrap().recv_timeout(IO_LIMIT);
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "1")]);
    let mut b = [0u8; 16];
    let t0 = Instant::now();
    let (r, sigs) = pestered(EVERY, || c.read(&mut b));
    assert_eq!(r, -(TU_E_TIMEOUT as isize), "{:?}", c.last_error());
    within("read with read_timeout=1 under signals", t0.elapsed(), 0.95, 1.6);
    assert!(sigs > 50, "only {sigs} signals were delivered");
    figure(SUITE, "plain read, silent peer, read_timeout 1 s", format!("TU_E_TIMEOUT after {:.3} s, {sigs} signals (EINTR) survived", t0.elapsed().as_secs_f64()));
    tx.send(()).unwrap();
    drop(c);
    tx.send(()).unwrap();

    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "5")]);
    let t1 = Instant::now();
    let sender = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tx.send(()).unwrap();
        })
    };
    let (r, sigs) = pestered(EVERY, || c.read(&mut b));
    assert_eq!(r, 4, "{:?}", c.last_error());
    assert_eq!(&b[..4], b"late");
    within("read of late data under signals", t1.elapsed(), 0.25, 3.0);
    assert!(sigs > 10, "{sigs}");
    sender.join().unwrap();
    tx.send(()).unwrap();
    drop(c);
    server.join();
}

#[test]
fn tls_handshake_and_read_survive_signals() {
    let _g = alone();
    let ca = ca();
    let cfg = server_config(leaf(&ca, Leaf::Good));
    let server = Server::start(1, move |s| {
        // A slow handshake: 100 ms before the server starts.
        std::thread::sleep(Duration::from_millis(100));
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        std::thread::sleep(Duration::from_millis(300));
        let _ = tls.write_all(b"secret");
        let _ = tls.flush();
        let mut b = [0u8; 8];
        let _ = std::io::Read::read(&mut tls, &mut b);
    });
    let cafile = ca.pem_path.to_str().unwrap().to_string();
    let (c, sigs1) = pestered(EVERY, || {
        must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile), ("read_timeout", "5")])
    });
    let mut b = [0u8; 16];
    let (r, sigs2) = pestered(EVERY, || c.read(&mut b));
    assert_eq!(r, 6, "{:?}", c.last_error());
    assert_eq!(&b[..6], b"secret");
    drop(c);
    server.join();
    figure(SUITE, "TLS handshake + read with a slow peer", format!("succeeded through {} signals", sigs1 + sigs2));
}

#[test]
fn connect_and_starttls_deadlines_hold_under_signals() {
    let _g = alone();
    // connect: SYN unanswered.
    let (l, fill, port) = full_backlog();
    let t0 = Instant::now();
    let (r, sigs) = pestered(EVERY, || connect(&format!("tcp://127.0.0.1:{port}"), &[("timeout", "0.6")]).err());
    let (code, msg) = r.expect("connect must fail");
    assert_eq!(code, TU_E_TIMEOUT, "{msg}");
    within("connect timeout under signals", t0.elapsed(), 0.55, 1.6);
    assert!(sigs > 30, "{sigs}");
    drop(fill);
    drop(l);

    // STARTTLS handshake with a silent peer.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = Server::start(1, move |_s| {
        let _ = rx.recv_timeout(IO_LIMIT);
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("timeout", "0.6")]);
    let t0 = Instant::now();
    let (rc, _) = pestered(EVERY, || tu_enable_crypto(c.0, TU_CRYPTO_ANY));
    assert_eq!(rc, TU_E_TIMEOUT, "{:?}", c.last_error());
    within("STARTTLS handshake timeout under signals", t0.elapsed(), 0.55, 1.6);
    drop(c);
    tx.send(()).unwrap();
    server.join();
}

#[test]
fn blocked_write_survives_signals_and_keeps_its_deadline() {
    let _g = alone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = Server::start(1, move |s| {
        let _ = rx.recv_timeout(IO_LIMIT); // never reads
        drop(s);
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("write_timeout", "0.6")]);
    let big = vec![1u8; 64 << 20];
    let t0 = Instant::now();
    let (n, sigs) = pestered(EVERY, || c.write(&big));
    within("write under signals", t0.elapsed(), 0.55, 1.6);
    let (code, msg) = c.last_error();
    assert_eq!(n, -(TU_E_TIMEOUT as isize), "TU_E_TIMEOUT at the deadline, never EINTR: {n} {msg}");
    assert_eq!(code, TU_E_TIMEOUT);
    assert!(msg.contains("bytes were sent before the limit"), "{msg}");
    assert!(sigs > 30, "{sigs}");
    let t0 = Instant::now();
    drop(c);
    within("close", t0.elapsed(), 0.0, 0.5);
    tx.send(()).unwrap();
    server.join();

    // UDP: a read waits through signals for the datagram.
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = must_connect(&format!("udp://127.0.0.1:{}", peer.local_addr().unwrap().port()), &[("read_timeout", "5")]);
    assert_eq!(c.write(b"hello"), 5);
    let mut b = [0u8; 64];
    let (n, from) = peer.recv_from(&mut b).unwrap();
    let replier = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        peer.send_to(&b[..n], from).unwrap();
    });
    let mut rb = [0u8; 64];
    let (r, _) = pestered(EVERY, || c.read(&mut rb));
    assert_eq!(r, 5, "{:?}", c.last_error());
    replier.join().unwrap();
}
