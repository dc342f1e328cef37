//! Hostile and broken peers on loopback (issue 8, item 4): each one must end in
//! a precise code within its time limit, never a hang, a crash, fabricated data
//! or a leaked descriptor.
//!
//! Peers: silent (connect, handshake and read deadlines), drip-feeding the
//! handshake (fast enough: it completes; too slow: one deadline for it all),
//! closing or resetting right after the ClientHello, resetting mid-transfer,
//! oversized records, certificate messages past 64 KiB, plaintext junk,
//! half-closing, and never reading while we write.

mod common;
mod hardening_support;

use common::*;
use hardening_support::*;
use rustls::ServerConnection;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use transporturl::error::*;
use transporturl::ffi::*;

/// Tests that count descriptors run alone (write lock); the others share.
static FDS: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|p| p.into_inner())
}
fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|p| p.into_inner())
}

const SUITE: &str = "peers";

fn good_tls() -> (Ca, Arc<rustls::ServerConfig>) {
    let ca = ca();
    let cfg = server_config(leaf(&ca, Leaf::Good));
    (ca, cfg)
}

fn cafile(ca: &Ca) -> String {
    ca.pem_path.to_str().unwrap().to_string()
}

/// Asserts that `t` lies in `lo..hi` seconds.
fn within(what: &str, t: Duration, lo: f64, hi: f64) {
    let s = t.as_secs_f64();
    assert!(s >= lo && s < hi, "{what}: took {s:.3} s, expected {lo}..{hi} s");
}

/// Reads the first TLS record (the ClientHello) off a raw stream.
fn read_client_hello(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 5];
    if s.read_exact(&mut head).is_err() {
        return Vec::new();
    }
    let len = u16::from_be_bytes([head[3], head[4]]) as usize;
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    let mut all = head.to_vec();
    all.extend(body);
    all
}

fn reset(s: TcpStream) {
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
}

/// A rustls server handshake on a raw stream whose output is sent `chunk`
/// bytes at a time with `pause` between; then echoes. Returns on any error.
fn drip_handshake(cfg: Arc<rustls::ServerConfig>, chunk: usize, pause: Duration) -> impl Fn(TcpStream) + Send + 'static {
    move |mut s: TcpStream| {
        s.set_nodelay(true).unwrap();
        let mut conn = ServerConnection::new(cfg.clone()).unwrap();
        while conn.is_handshaking() {
            if conn.wants_write() {
                let mut out = Vec::new();
                while conn.wants_write() {
                    conn.write_tls(&mut out).unwrap();
                }
                for c in out.chunks(chunk) {
                    if s.write_all(c).is_err() {
                        return;
                    }
                    std::thread::sleep(pause);
                }
            } else {
                match conn.read_tls(&mut s) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if conn.process_new_packets().is_err() {
                            let _ = conn.write_tls(&mut s);
                            return;
                        }
                    }
                }
            }
        }
        let mut tls = rustls::StreamOwned::new(conn, s);
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tls.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Silent peers: every deadline holds, and the descriptor is released

#[test]
fn silent_peer_connect_handshake_and_read_deadlines_hold() {
    let _g = alone();
    let base = quiet_fds();

    // connect: the listener's queue is full, so the SYN goes unanswered.
    let (listener, fill, port) = full_backlog();
    for url in [format!("tcp://127.0.0.1:{port}"), format!("tls://127.0.0.1:{port}")] {
        let t0 = Instant::now();
        expect_connect_err(&url, &[("timeout", "0.5")], TU_E_TIMEOUT, "timed out");
        within(&format!("{url} connect deadline"), t0.elapsed(), 0.45, 2.0);
    }
    drop(fill);
    drop(listener);

    // handshake: accepts, never speaks.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    let server = Server::start(3, move |_s| {
        let _ = rx.lock().unwrap().recv_timeout(IO_LIMIT);
    });
    let t0 = Instant::now();
    expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "0.5")], TU_E_TIMEOUT, "handshake");
    within("handshake deadline", t0.elapsed(), 0.45, 2.0);
    tx.send(()).unwrap();

    // read, plain and (after a real handshake elsewhere) TLS.
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "0.4")]);
    let mut b = [0u8; 64];
    let t0 = Instant::now();
    assert_eq!(c.read(&mut b), -(TU_E_TIMEOUT as isize));
    within("read deadline", t0.elapsed(), 0.35, 2.0);
    assert!(c.last_error().1.contains("timed out"));
    // A timeout is not a failure of the handle: it can read again.
    assert_eq!(c.read(&mut b), -(TU_E_TIMEOUT as isize));
    drop(c);
    tx.send(()).unwrap();
    // udp: nothing ever comes back.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = must_connect(&format!("udp://127.0.0.1:{}", udp.local_addr().unwrap().port()), &[("read_timeout", "0.3")]);
    let t0 = Instant::now();
    assert_eq!(c.read(&mut b), -(TU_E_TIMEOUT as isize));
    within("udp read deadline", t0.elapsed(), 0.25, 2.0);
    drop(c);
    drop(udp);
    // The third connection: a TCP connect that the server holds open.
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[]);
    drop(c);
    tx.send(()).unwrap();
    server.join();

    let (ca, cfg) = good_tls();
    let server = Server::start(1, move |s| {
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        let mut b = [0u8; 16];
        let _ = tls.read(&mut b); // waits for our close
    });
    let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca)), ("read_timeout", "0.4")]);
    let t0 = Instant::now();
    assert_eq!(c.read(&mut b), -(TU_E_TIMEOUT as isize));
    within("TLS read deadline", t0.elapsed(), 0.35, 2.0);
    drop(c);
    server.join();

    let after = settle_fds(base);
    assert!(after <= base, "descriptors leaked: {base} before, {after} after");
    figure(SUITE, "silent peer: connect/handshake/read deadlines held, fds", format!("{base} -> {after}"));
}

// ---------------------------------------------------------------------------
// Drip-feeding the handshake

#[test]
fn drip_fed_handshake_completes_when_in_time() {
    let _g = shared();
    let (ca, cfg) = good_tls();
    // 7 bytes every 1 ms: the server's flight arrives in ~hundreds of pieces.
    let server = Server::start(1, drip_handshake(cfg, 7, Duration::from_millis(1)));
    let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca)), ("timeout", "20")]);
    assert_eq!(c.write(b"drip ok"), 7);
    assert_eq!(c.read_exact(7), b"drip ok");
    drop(c);
    server.join();
}

#[test]
fn drip_fed_handshake_is_bounded_by_one_deadline() {
    let _g = shared();
    let (ca, cfg) = good_tls();
    // One byte every 30 ms: each read makes progress, but the handshake
    // deadline is one deadline, so it ends at 0.8 s.
    let server = Server::start(1, drip_handshake(cfg, 1, Duration::from_millis(30)));
    let t0 = Instant::now();
    expect_connect_err(
        &format!("tls://localhost:{}", server.port),
        &[("ssl.cafile", &cafile(&ca)), ("timeout", "0.8")],
        TU_E_TIMEOUT,
        "handshake",
    );
    within("drip-fed handshake", t0.elapsed(), 0.75, 2.5);
    server.join();
}

// ---------------------------------------------------------------------------
// Closing right after the ClientHello

#[test]
fn close_or_reset_after_client_hello() {
    let _g = shared();
    let server = Server::start(1, |mut s| {
        let hello = read_client_hello(&mut s);
        assert_eq!(hello.first(), Some(&22), "a ClientHello record");
    });
    let m = expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "5")], TU_E_TLS, "closed");
    assert!(m.contains("handshake"), "{m}");
    server.join();

    let server = Server::start(1, |mut s| {
        read_client_hello(&mut s);
        reset(s);
    });
    let m = expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "5")], TU_E_IO, "reset");
    assert!(m.contains("ECONNRESET"), "{m}");
    server.join();

    // STARTTLS: the same on an upgraded plain connection.
    let server = Server::start(1, |mut s| {
        read_client_hello(&mut s);
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("timeout", "5")]);
    let rc = tu_enable_crypto(c.0, transporturl::handle::TU_CRYPTO_ANY);
    assert_eq!(rc, TU_E_TLS, "{:?}", c.last_error());
    let mut b = [0u8; 8];
    assert_eq!(c.read(&mut b), -(TU_E_STATE as isize), "the handle is failed after a broken handshake");
    drop(c);
    server.join();
}

// ---------------------------------------------------------------------------
// Reset mid-transfer: TU_E_IO, and only bytes that were sent

fn pattern(n: usize) -> Vec<u8> {
    Rng(0x5EED).bytes(n)
}

#[test]
fn reset_mid_transfer_is_io_and_fabricates_nothing() {
    let _g = shared();
    const N: usize = 1 << 20;
    // plain TCP: 1 MiB, then RST while it is still in flight.
    let server = Server::start(1, |mut s| {
        let data = pattern(N);
        let _ = s.write_all(&data[..N / 2]);
        std::thread::sleep(Duration::from_millis(50));
        reset(s);
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "5")]);
    server.join();
    let (got, last) = c.read_to_end();
    assert_eq!(last, -(TU_E_IO as isize), "after {} bytes: {:?}", got.len(), c.last_error());
    assert!(c.last_error().1.contains("ECONNRESET"), "{:?}", c.last_error());
    let data = pattern(N);
    assert!(got.len() <= N / 2 && got[..] == data[..got.len()], "received bytes are not a prefix of what was sent");
    drop(c);

    // TLS: records, then RST in the middle of one.
    let (ca, cfg) = good_tls();
    let server = Server::start(1, move |s| {
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        let data = pattern(N);
        let _ = tls.write_all(&data[..300_000]);
        let _ = tls.flush();
        // Half a record more, raw, then the reset.
        let mut rec = Vec::new();
        tls.conn.writer().write_all(&data[300_000..310_000]).unwrap();
        tls.conn.write_tls(&mut rec).unwrap();
        let _ = tls.sock.write_all(&rec[..rec.len() / 2]);
        std::thread::sleep(Duration::from_millis(50));
        let s = tls.sock;
        reset(s);
    });
    let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca)), ("read_timeout", "5")]);
    server.join();
    let (got, last) = c.read_to_end();
    assert_eq!(last, -(TU_E_IO as isize), "after {} bytes: {:?}", got.len(), c.last_error());
    let data = pattern(N);
    assert!(got.len() <= 300_000 && got[..] == data[..got.len()], "TLS: received bytes are not a prefix of what was sent");
    figure(SUITE, "reset mid-transfer: TLS bytes delivered before TU_E_IO (of 300000 sent whole)", got.len());
}

// ---------------------------------------------------------------------------
// Oversized records and certificate messages

#[test]
fn oversized_records_are_refused_quickly() {
    let _g = shared();
    // In the handshake: a record header announcing 65535 bytes.
    let server = Server::start(1, |mut s| {
        read_client_hello(&mut s);
        let _ = s.write_all(&[22, 3, 3, 0xff, 0xff]);
        let _ = s.write_all(&[0u8; 100]);
        let mut b = [0u8; 64];
        let _ = s.read(&mut b);
    });
    let t0 = Instant::now();
    expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "5")], TU_E_TLS, "TLS");
    within("oversized handshake record", t0.elapsed(), 0.0, 2.0);
    server.join();

    // After the handshake: an application-data record of 65535 bytes and one
    // of 17000 (legal size for TLS 1.2 framing, too long for TLS 1.3), both
    // sent in full.
    for len in [0xffffusize, 17_000] {
        let (ca, cfg) = good_tls();
        let server = Server::start(1, move |s| {
            let Some(mut tls) = accept_tls(&cfg, s) else { return };
            tls.write_all(b"before").unwrap();
            tls.flush().unwrap();
            let mut rec = vec![23u8, 3, 3, (len >> 8) as u8, len as u8];
            rec.extend(Rng(len as u64).bytes(len));
            let _ = tls.sock.write_all(&rec);
            let mut b = [0u8; 64];
            let _ = tls.sock.read(&mut b);
        });
        let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca)), ("read_timeout", "5")]);
        assert_eq!(c.read_exact(6), b"before");
        let mut b = [0u8; 64];
        let t0 = Instant::now();
        let r = c.read(&mut b);
        assert_eq!(r, -(TU_E_TLS as isize), "record of {len}: {r} {:?}", c.last_error());
        within("oversized record", t0.elapsed(), 0.0, 2.0);
        let again = c.read(&mut b);
        assert!(again == -(TU_E_TLS as isize) || again == -(TU_E_STATE as isize), "a broken TLS stream stays failed: {again}");
        drop(c);
        server.join();
    }
}

/// A server whose certificate chain is the leaf plus `pad` copies of a filler
/// certificate, so its Certificate message is as large as we like.
fn padded_chain_server(pad: usize) -> (Ca, Server, usize) {
    let ca = ca();
    let mut cert = leaf(&ca, Leaf::Good);
    let filler = cert.chain[0].clone();
    for _ in 0..pad {
        cert.chain.push(filler.clone());
    }
    let size: usize = cert.chain.iter().map(|c| c.len() + 5).sum();
    let cfg = server_config(cert);
    let server = Server::start(1, echo_tls(cfg, true));
    (ca, server, size)
}

#[test]
fn certificate_messages_past_64_kib() {
    let _g = shared();
    let leaf_len = leaf(&ca(), Leaf::Good).chain[0].len();
    // Just under the 64 KiB handshake message limit: spans several records, works.
    let under = (60_000 / (leaf_len + 5)).max(1);
    let (ca1, server, size) = padded_chain_server(under);
    let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca1)), ("timeout", "10")]);
    assert_eq!(c.write(b"big chain"), 9);
    assert_eq!(c.read_exact(9), b"big chain");
    drop(c);
    server.join();
    figure(SUITE, "certificate message accepted (bytes)", size);

    // Over 64 KiB (and far over): refused cleanly, quickly.
    for target in [70_000usize, 300_000] {
        let (ca2, server, size) = padded_chain_server(target / (leaf_len + 5) + 1);
        let t0 = Instant::now();
        let m = expect_connect_err(
            &format!("tls://localhost:{}", server.port),
            &[("ssl.cafile", &cafile(&ca2)), ("timeout", "10")],
            TU_E_TLS,
            "",
        );
        within("oversized certificate message", t0.elapsed(), 0.0, 5.0);
        server.join();
        figure(SUITE, &format!("certificate message of {size} bytes refused"), m);
    }
}

// ---------------------------------------------------------------------------
// Plaintext junk

#[test]
fn plaintext_junk_is_never_data() {
    let _g = shared();
    // Binary junk instead of a ServerHello.
    let server = Server::start(1, |mut s| {
        read_client_hello(&mut s);
        let _ = s.write_all(&Rng(7).bytes(100_000));
    });
    expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "5")], TU_E_TLS, "not answer with TLS");
    server.join();
    // Text junk: explained as a plaintext peer.
    let server = Server::start(1, |mut s| {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        let mut b = [0u8; 1024];
        let _ = s.read(&mut b);
    });
    let m = expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "5")], TU_E_PLAINTEXT_PEER, "HTTP/1.1 400");
    assert!(m.contains("plaintext"), "{m}");
    server.join();
    // A plausible handshake record with a garbage body.
    let server = Server::start(1, |mut s| {
        read_client_hello(&mut s);
        let mut rec = vec![22u8, 3, 3, 0, 200];
        rec.extend(Rng(8).bytes(200));
        let _ = s.write_all(&rec);
        let mut b = [0u8; 64];
        let _ = s.read(&mut b);
    });
    expect_connect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "5")], TU_E_TLS, "");
    server.join();
    // Junk after a good handshake: an error, never bytes for the caller.
    let (ca, cfg) = good_tls();
    let server = Server::start(1, move |s| {
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        tls.write_all(b"real").unwrap();
        tls.flush().unwrap();
        let _ = tls.sock.write_all(b"250 injected plaintext\r\n");
        let mut b = [0u8; 64];
        let _ = tls.sock.read(&mut b);
    });
    let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca)), ("read_timeout", "5")]);
    assert_eq!(c.read_exact(4), b"real");
    let mut b = [0u8; 64];
    let r = c.read(&mut b);
    assert_eq!(r, -(TU_E_TLS as isize), "{r} {:?}", c.last_error());
    assert!(c.last_error().1.contains("250 injected"), "{:?}", c.last_error());
    drop(c);
    server.join();
}

// ---------------------------------------------------------------------------
// Half-close

#[test]
fn half_close_both_ways() {
    let _g = shared();
    const N: usize = 1 << 20;
    // The peer says goodbye (FIN) but keeps reading: we read EOF and can still write.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Server::start(1, move |mut s| {
        s.write_all(b"bye").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        tx.send(sha256(&all)).unwrap();
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "5")]);
    assert_eq!(c.read_exact(3), b"bye");
    let mut b = [0u8; 8];
    assert_eq!(c.read(&mut b), 0, "FIN is EOF");
    assert_eq!(c.read(&mut b), 0, "and stays EOF");
    let data = Rng(1).bytes(N);
    assert_eq!(c.write_all(&data), Ok(()));
    drop(c);
    assert_eq!(rx.recv_timeout(IO_LIMIT).unwrap(), sha256(&data));
    server.join();

    // TLS: close_notify + FIN from the peer; our writes still arrive.
    let (ca, cfg) = good_tls();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Server::start(1, move |s| {
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        tls.write_all(b"bye").unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        tls.sock.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        tx.send(sha256(&all)).unwrap();
    });
    let c = must_connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile(&ca)), ("read_timeout", "5")]);
    assert_eq!(c.read_exact(3), b"bye");
    assert_eq!(c.read(&mut b), 0, "close_notify is EOF");
    let data = Rng(2).bytes(N);
    assert_eq!(c.write_all(&data), Ok(()), "{:?}", c.last_error());
    drop(c); // sends our close_notify
    assert_eq!(rx.recv_timeout(IO_LIMIT).unwrap(), sha256(&data));
    server.join();

    // We half-close: the peer reads to EOF, then answers; we read the answer.
    let server = Server::start(1, |mut s| {
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        s.write_all(&sha256(&all)).unwrap();
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "5")]);
    let data = Rng(3).bytes(N);
    assert_eq!(c.write_all(&data), Ok(()));
    // SAFETY (test): the descriptor is the handle's and stays open.
    assert_eq!(unsafe { libc::shutdown(c.fd(), libc::SHUT_WR) }, 0);
    assert_eq!(c.read_exact(32), sha256(&data));
    assert_eq!(c.read(&mut b), 0);
    drop(c);
    server.join();
}

// ---------------------------------------------------------------------------
// A peer that never reads while we write

/// Writes `big` until the result is -TU_E_TIMEOUT; each call ends within its
/// `limit`, and there are few of them.
/// A blocking write that ran out of time is TU_E_TIMEOUT even after part of
/// it went out; the message says how much did. Returns that count.
fn timed_out_count(c: &Conn, r: isize, len: usize) -> usize {
    assert_eq!(r, -(TU_E_TIMEOUT as isize), "a blocking write that ran out of time is TU_E_TIMEOUT");
    let msg = c.last_error().1;
    assert!(msg.contains("bytes were sent before the limit"), "the message says how far it got: {msg}");
    let n: usize = msg.rsplit(" (").next().and_then(|t| t.split(' ').next()).and_then(|t| t.parse().ok()).unwrap_or(0);
    assert!(n > 0 && n < len, "{msg}");
    n
}

fn writes_until_timeout(c: &Conn, big: &[u8], limit: f64) {
    for i in 0..20 {
        let t0 = Instant::now();
        let r = c.write(big);
        within(&format!("write {i} against a full socket"), t0.elapsed(), 0.0, limit + 1.0);
        if r < 0 {
            assert_eq!(r, -(TU_E_TIMEOUT as isize), "{:?}", c.last_error());
            assert!(c.last_error().1.contains("timed out"));
            return;
        }
    }
    panic!("20 writes to a peer that never reads all made progress");
}

#[test]
fn never_reading_peer_write_deadline_and_bounded_close() {
    let _g = alone();
    let base = quiet_fds();
    let (ca, cfg) = good_tls();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    // Completes the TLS handshake, then never reads (until told to go).
    let server = Server::start(2, move |s| {
        let tls = accept_tls(&cfg, s);
        let _ = rx.lock().unwrap().recv_timeout(Duration::from_secs(20));
        drop(tls);
    });
    let big = vec![0x42u8; 64 << 20];
    let c = must_connect(
        &format!("tls://localhost:{}", server.port),
        &[("ssl.cafile", &cafile(&ca)), ("write_timeout", "0.5")],
    );
    let t0 = Instant::now();
    let n = c.write(&big);
    within("TLS write deadline (partial)", t0.elapsed(), 0.45, 3.0);
    let n = timed_out_count(&c, n, big.len());
    // Later writes each end within their own limit (the kernel may find a
    // little more room meanwhile), and soon nothing more goes: TU_E_TIMEOUT.
    writes_until_timeout(&c, &big, 0.5);
    let t0 = Instant::now();
    drop(c);
    within("TLS close against a full socket", t0.elapsed(), 0.0, 1.0);
    figure(SUITE, "never-reading peer: TLS bytes accepted before the write deadline", n);
    tx.send(()).unwrap();
    // Many smaller writes: each waits at most its own limit, and they stop.
    let c = must_connect(
        &format!("tls://localhost:{}", server.port),
        &[("ssl.cafile", &cafile(&ca)), ("write_timeout", "0.3")],
    );
    let t0 = Instant::now();
    let mut total = 0usize;
    loop {
        let r = c.write(&big[..1 << 20]);
        if r < 0 {
            assert_eq!(r, -(TU_E_TIMEOUT as isize));
            break;
        }
        total += r as usize;
        assert!(t0.elapsed() < Duration::from_secs(10), "writes never stop");
    }
    drop(c);
    assert!(total > 0);
    tx.send(()).unwrap();
    server.join();

    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = Server::start(1, move |s| {
        let _ = rx.recv_timeout(Duration::from_secs(20));
        drop(s);
    });
    let c = must_connect(&format!("tcp://127.0.0.1:{}", server.port), &[("write_timeout", "0.5")]);
    let t0 = Instant::now();
    let n = c.write(&big);
    within("TCP write deadline (partial)", t0.elapsed(), 0.45, 3.0);
    let n = timed_out_count(&c, n, big.len());
    writes_until_timeout(&c, &big, 0.5);
    let t0 = Instant::now();
    drop(c);
    within("TCP close", t0.elapsed(), 0.0, 0.5);
    tx.send(()).unwrap();
    server.join();
    let after = settle_fds(base);
    assert!(after <= base, "descriptors leaked: {base} before, {after} after");
    figure(SUITE, "never-reading peer: TCP bytes accepted before the write deadline", n);
}
