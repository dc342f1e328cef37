//! Connections in full (issue 4), against real peers on 127.0.0.1, ::1 and
//! Unix sockets started here: Happy Eyeballs, deadlines, shutdown,
//! non-blocking use, UDP, zones and names, socket options, Unix transports,
//! fsockopen style. Every wait is bounded; every failure checks the code and
//! a word of the message.

mod conn_support;

use conn_support::*;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};
use transporturl::error::*;
use transporturl::ffi;
use transporturl::handle::*;
use transporturl::net::{self, Deadline, Kind, SocketOptions};
use transporturl::{Error, Handle, Options};

fn options(pairs: &[(&str, &str)]) -> Options {
    let mut o = Options::default();
    o.set("ssl.cafile", pki().ca_path.to_str().unwrap()).unwrap();
    o.set("timeout", "10").unwrap();
    o.set("read_timeout", "10").unwrap();
    o.set("write_timeout", "10").unwrap();
    for (k, v) in pairs {
        o.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
    }
    o
}

fn connect(url: &str, pairs: &[(&str, &str)]) -> Handle {
    Handle::connect(url, &options(pairs)).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn connect_err(url: &str, pairs: &[(&str, &str)]) -> Error {
    match Handle::connect(url, &options(pairs)) {
        Ok(_) => panic!("{url}: connected, expected an error"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_err(e: &Error, code: i32, word: &str) {
    assert_eq!(e.code, code, "expected {}, got {e}", code_name(code).unwrap());
    assert!(e.message.contains(word), "message lacks '{word}': {}", e.message);
}

fn write_all(h: &Handle, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        done += h.write(&data[done..]).unwrap();
    }
}

fn read_exact(h: &Handle, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = h.read(&mut out[got..]).unwrap();
        assert!(k > 0, "EOF after {got} of {n} bytes");
        got += k;
    }
    out
}

/// Polls the handle's descriptor for what `tu_wants` says, at most `ms`.
fn poll_wants(h: &Handle, ms: i32) -> bool {
    let bits = h.wants();
    let mut flags = rustix::event::PollFlags::empty();
    if bits & TU_WANT_READ != 0 {
        flags |= rustix::event::PollFlags::IN;
    }
    if bits & TU_WANT_WRITE != 0 {
        flags |= rustix::event::PollFlags::OUT;
    }
    assert!(!flags.is_empty(), "TU_E_WOULD_BLOCK without a direction in tu_wants");
    // SAFETY (test): the handle outlives this call and owns the descriptor.
    let fd = unsafe { BorrowedFd::borrow_raw(h.fd()) };
    let mut fds = [rustix::event::PollFd::new(&fd, flags)];
    let ts = rustix::event::Timespec { tv_sec: (ms / 1000) as _, tv_nsec: ((ms % 1000) * 1_000_000) as _ };
    rustix::event::poll(&mut fds, Some(&ts)).unwrap_or(0) > 0
}

fn fd_readable(h: &Handle, ms: i32) -> bool {
    // SAFETY (test): the handle outlives this call and owns the descriptor.
    let fd = unsafe { BorrowedFd::borrow_raw(h.fd()) };
    let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
    let ts = rustix::event::Timespec { tv_sec: 0, tv_nsec: (ms as i64 * 1_000_000) as _ };
    rustix::event::poll(&mut fds, Some(&ts)).unwrap_or(0) > 0
}

// ---------------------------------------------------------------------------
// fsockopen style (tu_connect_host)

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn ffi_error() -> ffi::tu_error {
    ffi::tu_error { code: -1, message: [0; ffi::TU_ERROR_MESSAGE_SIZE] }
}

fn message(e: &ffi::tu_error) -> String {
    // SAFETY (test): the library NUL-terminates the message.
    unsafe { CStr::from_ptr(e.message.as_ptr()) }.to_string_lossy().into_owned()
}

#[test]
fn fsockopen_style_host_and_port() {
    let (port, server) = tcp_server("127.0.0.1:0", 2, |mut s| echo(&mut s));
    let mut err = ffi_error();
    let h = ffi::tu_connect_host(c("127.0.0.1").as_ptr(), i32::from(port), std::ptr::null(), &mut err);
    assert!(!h.is_null(), "{}", message(&err));
    assert_eq!(err.code, TU_OK);
    assert_eq!(ffi::tu_write(h, b"ping".as_ptr().cast(), 4), 4);
    let mut buf = [0u8; 8];
    assert_eq!(ffi::tu_read(h, buf.as_mut_ptr().cast(), buf.len()), 4);
    ffi::tu_close(h);
    // The port in the address and 0 as the argument.
    let h = ffi::tu_connect_host(c(&format!("tcp://127.0.0.1:{port}")).as_ptr(), 0, std::ptr::null(), &mut err);
    assert!(!h.is_null(), "{}", message(&err));
    ffi::tu_close(h);
    server.join().unwrap();

    // A bare IPv6 literal is fine here.
    let (port6, server6) = tcp_server("[::1]:0", 1, |mut s| echo(&mut s));
    let h = ffi::tu_connect_host(c("::1").as_ptr(), i32::from(port6), std::ptr::null(), &mut err);
    assert!(!h.is_null(), "{}", message(&err));
    ffi::tu_close(h);
    server6.join().unwrap();

    let cases: [(&str, i32, i32, &str); 5] = [
        ("127.0.0.1:80", 80, TU_E_URL, "port given twice"),
        ("[::1]:80", 443, TU_E_URL, "port given twice"),
        ("127.0.0.1", 65536, TU_E_URL, "out of range"),
        ("127.0.0.1", -1, TU_E_URL, "out of range"),
        ("localhost", 0, TU_E_URL, "missing port"),
    ];
    for (host, port, code, word) in cases {
        let h = ffi::tu_connect_host(c(host).as_ptr(), port, std::ptr::null(), &mut err);
        assert!(h.is_null(), "{host} {port}");
        assert_eq!(err.code, code, "{host} {port}: {}", message(&err));
        assert!(message(&err).contains(word), "{host} {port}: {}", message(&err));
    }
    let h = ffi::tu_connect_host(std::ptr::null(), 80, std::ptr::null(), &mut err);
    assert!(h.is_null());
    assert_eq!(err.code, TU_E_INVALID_ARGUMENT);
    assert!(message(&err).contains("host"));
}

// ---------------------------------------------------------------------------
// Happy Eyeballs

fn sopts(delay: &str) -> SocketOptions {
    let mut s = SocketOptions::default();
    s.set("happy_eyeballs_delay", delay).unwrap();
    s
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn peer_of(sock: &socket2::Socket) -> SocketAddr {
    sock.peer_addr().unwrap().as_socket().unwrap()
}

#[test]
fn happy_eyeballs_refused_family_falls_back_at_once() {
    // ::1 refuses (nothing listens), 127.0.0.1 answers. With a 2 s delay,
    // only the immediate start after a failure explains a fast connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dead6 = closed_port("::1");
    let addrs = [addr(&format!("[::1]:{dead6}")), addr(&format!("127.0.0.1:{port}"))];
    let t = Instant::now();
    let sock = net::connect_addrs(&addrs, Kind::Stream, &sopts("2"), &Deadline::after(Some(Duration::from_secs(5))), "dual")
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(1500), "took {:?}", t.elapsed());
    assert_eq!(peer_of(&sock), addrs[1]);
}

#[test]
fn happy_eyeballs_blackholed_family_loses_after_the_delay() {
    // 127.0.0.1 never answers (full backlog), ::1 does: connected within
    // about the 250 ms attempt delay, not after the connect timeout.
    let hole = blackhole();
    let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port6 = listener.local_addr().unwrap().port();
    let addrs = [addr(&format!("127.0.0.1:{}", hole.port)), addr(&format!("[::1]:{port6}"))];
    let t = Instant::now();
    let sock = net::connect_addrs(
        &addrs,
        Kind::Stream,
        &SocketOptions::default(),
        &Deadline::after(Some(Duration::from_secs(10))),
        "dual",
    )
    .unwrap();
    let took = t.elapsed();
    assert_eq!(peer_of(&sock), addrs[1]);
    assert!(took >= Duration::from_millis(200), "the second attempt started early: {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[test]
fn happy_eyeballs_sequential_and_deadline() {
    // Delay -1: each attempt runs until it fails; the blackhole eats the
    // whole deadline and the result is a timeout naming the address.
    let hole = blackhole();
    let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port6 = listener.local_addr().unwrap().port();
    let addrs = [addr(&format!("127.0.0.1:{}", hole.port)), addr(&format!("[::1]:{port6}"))];
    let t = Instant::now();
    let e = net::connect_addrs(&addrs, Kind::Stream, &sopts("-1"), &Deadline::after(Some(Duration::from_millis(400))), "dual")
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(1500), "took {:?}", t.elapsed());
    assert_err(&e, TU_E_TIMEOUT, "timed out");
    assert!(e.message.contains(&format!("127.0.0.1:{}", hole.port)), "{}", e.message);
}

#[test]
fn happy_eyeballs_every_address_fails() {
    let p4 = closed_port("127.0.0.1");
    let p6 = closed_port("::1");
    let addrs = [addr(&format!("[::1]:{p6}")), addr(&format!("127.0.0.1:{p4}"))];
    let e = net::connect_addrs(&addrs, Kind::Stream, &SocketOptions::default(), &Deadline::after(Some(Duration::from_secs(5))), "both")
        .unwrap_err();
    assert_err(&e, TU_E_REFUSED, "2 of 2 addresses");
    assert!(e.message.contains("ECONNREFUSED") && e.message.contains("[::1]") && e.message.contains("127.0.0.1"), "{}", e.message);
}

#[cfg(feature = "test-hooks")]
#[test]
fn happy_eyeballs_through_a_name_with_both_families() {
    use transporturl::net::test_hooks::fake_dns;
    // The name answers ::1 first; only 127.0.0.1 listens.
    fake_dns("dual.test", &["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()], Duration::ZERO);
    let (port, server) = tcp_server("127.0.0.1:0", 1, |mut s| echo(&mut s));
    let h = connect(&format!("tcp://dual.test:{port}"), &[]);
    assert_eq!(h.peer_address().unwrap(), format!("127.0.0.1:{port}"));
    write_all(&h, b"x");
    assert_eq!(read_exact(&h, 1), b"x");
    drop(h);
    server.join().unwrap();
}

#[cfg(feature = "test-hooks")]
#[test]
fn name_resolution_ends_at_the_deadline() {
    use transporturl::net::test_hooks::fake_dns;
    fake_dns("slow.test", &["127.0.0.1".parse().unwrap()], Duration::from_secs(3));
    let t = Instant::now();
    let e = connect_err("tcp://slow.test:80", &[("timeout", "0.3")]);
    assert!(t.elapsed() < Duration::from_millis(1500), "took {:?}", t.elapsed());
    assert_err(&e, TU_E_TIMEOUT, "resolving host 'slow.test'");
}

#[cfg(feature = "test-hooks")]
#[test]
fn international_names_are_looked_up_in_ascii() {
    use transporturl::net::test_hooks::fake_dns;
    fake_dns("xn--bcher-kva.test", &["127.0.0.1".parse().unwrap()], Duration::ZERO);
    let (port, server) = tcp_server("127.0.0.1:0", 1, |mut s| echo(&mut s));
    let h = connect(&format!("tcp://bücher.test:{port}"), &[]);
    drop(h);
    server.join().unwrap();
}

#[test]
fn unknown_names_do_not_resolve() {
    let e = connect_err("tcp://no-such-host.invalid:80", &[("timeout", "5")]);
    assert_err(&e, TU_E_RESOLVE, "no-such-host.invalid");
}

// ---------------------------------------------------------------------------
// Time limits, EINTR, shutdown

#[test]
fn read_timeout_changes_on_an_open_handle() {
    let (port, server) = tcp_server("127.0.0.1:0", 1, |mut s| {
        let mut b = [0u8; 1];
        let _ = s.read(&mut b); // until the client closes
    });
    let h = connect(&format!("tcp://127.0.0.1:{port}"), &[]);
    h.set_timeout(TU_TIMEOUT_READ, 200).unwrap();
    let t = Instant::now();
    let e = h.read(&mut [0u8; 4]).unwrap_err();
    let took = t.elapsed();
    assert_err(&e, TU_E_TIMEOUT, "read timed out after 0.2 s");
    assert!(took >= Duration::from_millis(190) && took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(h.timeouts().0, Some(Duration::from_millis(200)));
    h.set_timeout(TU_TIMEOUT_READ | TU_TIMEOUT_WRITE, -1).unwrap();
    assert_eq!(h.timeouts(), (None, None));
    assert_err(&h.set_timeout(TU_TIMEOUT_READ, 0).unwrap_err(), TU_E_INVALID_ARGUMENT, "0 ms");
    assert_err(&h.set_timeout(8, 100).unwrap_err(), TU_E_INVALID_ARGUMENT, "TU_TIMEOUT_READ");
    assert_err(&h.set_timeout(0, 100).unwrap_err(), TU_E_INVALID_ARGUMENT, "which");
    drop(h);
    server.join().unwrap();
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

#[test]
fn signals_neither_surface_nor_stretch_a_timeout() {
    // A handler without SA_RESTART: every signal interrupts poll (EINTR).
    // SAFETY (test): installs a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let (port, server) = tcp_server("127.0.0.1:0", 1, |mut s| {
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let h = std::sync::Arc::new(connect(&format!("tcp://127.0.0.1:{port}"), &[]));
    h.set_timeout(TU_TIMEOUT_READ, 500).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let h = h.clone();
        std::thread::spawn(move || {
            // SAFETY (test): pthread_self has no preconditions.
            tx.send(unsafe { libc::pthread_self() }).unwrap();
            let t = Instant::now();
            let r = h.read(&mut [0u8; 4]);
            (r, t.elapsed())
        })
    };
    let tid = rx.recv().unwrap();
    let mut sent = 0;
    while !reader.is_finished() && sent < 100 {
        // SAFETY (test): the thread is alive until it is joined below.
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        sent += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let (r, took) = reader.join().unwrap();
    assert!(sent > 10, "only {sent} signals");
    assert_err(&r.unwrap_err(), TU_E_TIMEOUT, "timed out");
    assert!(took >= Duration::from_millis(490) && took < Duration::from_millis(1200), "{took:?}");
    drop(h);
    server.join().unwrap();
}

fn assert_shutdown_wakes_reader(h: Handle, label: &str) {
    let h = std::sync::Arc::new(h);
    let reader = {
        let h = h.clone();
        std::thread::spawn(move || h.read(&mut [0u8; 4]))
    };
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    h.shutdown(TU_SHUT_RDWR).unwrap();
    let r = reader.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{label}: the reader stayed blocked {:?}", t.elapsed());
    assert_err(&r.unwrap_err(), TU_E_STATE, "shut down for reading");
    assert_err(&h.write(b"x").unwrap_err(), TU_E_STATE, "shut down for writing");
    let word = if label.starts_with('u') && label != "unix" { "datagram" } else { "tu_shutdown" };
    assert_err(&h.enable_crypto(TU_CRYPTO_ANY).unwrap_err(), TU_E_STATE, word);
    assert_err(&h.shutdown(7).unwrap_err(), TU_E_INVALID_ARGUMENT, "TU_SHUT_RD");
}

#[test]
fn shutdown_wakes_a_blocked_reader() {
    let (port, server) = tcp_server("127.0.0.1:0", 1, |mut s| {
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    assert_shutdown_wakes_reader(connect(&format!("tcp://127.0.0.1:{port}"), &[]), "tcp");
    server.join().unwrap();
    let (port, server) = tcp_server("127.0.0.1:0", 1, |s| {
        if let Some(mut tls) = accept_tls(s) {
            let mut b = [0u8; 1];
            let _ = tls.read(&mut b);
        }
    });
    assert_shutdown_wakes_reader(connect(&format!("tls://localhost:{port}"), &[]), "tls");
    server.join().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port();
    assert_shutdown_wakes_reader(connect(&format!("udp://127.0.0.1:{uport}"), &[]), "udp");
    let dir = temp_dir("shut");
    let path = dir.join("s.sock");
    let unix = unix_server(&path, 1, |mut s| {
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    assert_shutdown_wakes_reader(connect(&format!("unix://{}", path.display()), &[]), "unix");
    unix.join().unwrap();
    let dpath = dir.join("d.sock");
    let _dgram = std::os::unix::net::UnixDatagram::bind(&dpath).unwrap();
    assert_shutdown_wakes_reader(connect(&format!("udg://{}", dpath.display()), &[]), "udg");
}

#[test]
fn tls_half_close_sends_close_notify_and_keeps_reading() {
    // The server reads to the client's close_notify, then answers.
    let (port, server) = tcp_server("127.0.0.1:0", 1, |s| {
        let Some(mut tls) = accept_tls(s) else { return };
        let mut got = Vec::new();
        let r = tls.read_to_end(&mut got); // Ok only with close_notify
        let reply = format!("got {} bytes, {}", got.len(), if r.is_ok() { "close_notify" } else { "no close_notify" });
        let _ = tls.write_all(reply.as_bytes());
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    let h = connect(&format!("tls://localhost:{port}"), &[]);
    write_all(&h, b"hello");
    h.shutdown(TU_SHUT_WR).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    for _ in 0..100 {
        match h.read(&mut buf).unwrap() {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(String::from_utf8_lossy(&reply), "got 5 bytes, close_notify");
    drop(h);
    server.join().unwrap();
}

#[test]
fn tls_full_duplex_reader_and_writer_threads() {
    let (port, server) = tcp_server("127.0.0.1:0", 1, |s| echo_tls(s));
    let h = std::sync::Arc::new(connect(&format!("tls://127.0.0.1:{port}"), &[]));
    let total = 256 * 1024;
    let reader = {
        let h = h.clone();
        std::thread::spawn(move || read_exact(&h, total))
    };
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    std::thread::sleep(Duration::from_millis(50)); // the reader waits first
    write_all(&h, &data);
    assert_eq!(reader.join().unwrap(), data);
    drop(h);
    server.join().unwrap();
}

// ---------------------------------------------------------------------------
// Non-blocking use

#[test]
fn nonblocking_plain_read_and_partial_writes() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, server) = tcp_server("127.0.0.1:0", 1, move |mut s| {
        s.write_all(b"hi").unwrap();
        rx.recv_timeout(IO_LIMIT).unwrap(); // until the client filled the socket
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        // Every byte once and in order: a prefix of the pattern.
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "bytes duplicated or lost");
        s.write_all(&(got.len() as u64).to_be_bytes()).unwrap();
    });
    let h = connect(&format!("tcp://127.0.0.1:{port}"), &[]);
    h.set_nonblocking(true);
    assert_eq!(h.wants(), 0);
    // Read: "hi" (maybe after WOULD_BLOCK), then WOULD_BLOCK wanting READ.
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    for _ in 0..50 {
        match h.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_err(&e, TU_E_WOULD_BLOCK, "readable");
                assert_eq!(h.wants(), TU_WANT_READ);
                if got.len() == 2 {
                    break;
                }
                poll_wants(&h, 1000);
            }
        }
    }
    assert_eq!(got, b"hi");
    // Write until the socket is full; retry the same bytes after WOULD_BLOCK.
    let data: Vec<u8> = (0..32 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut sent = 0usize;
    let mut blocked = 0;
    for _ in 0..100_000 {
        match h.write(&data[sent..sent + 65536]) {
            Ok(n) => sent += n,
            Err(e) => {
                assert_err(&e, TU_E_WOULD_BLOCK, "writable");
                // The read slot may still hold TU_WANT_READ: wants are per direction.
                assert_eq!(h.wants() & TU_WANT_WRITE, TU_WANT_WRITE);
                blocked += 1;
                if blocked == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(blocked, 3, "the socket never filled ({sent} bytes)");
    tx.send(()).unwrap();
    h.set_nonblocking(false);
    h.shutdown(TU_SHUT_WR).unwrap();
    let n = u64::from_be_bytes(read_exact(&h, 8).try_into().unwrap());
    assert_eq!(n as usize, sent);
    drop(h);
    server.join().unwrap();
}

#[test]
fn nonblocking_tls_writes_lose_and_repeat_nothing() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, server) = tcp_server("127.0.0.1:0", 1, move |s| {
        let Some(mut tls) = accept_tls(s) else { return };
        rx.recv_timeout(IO_LIMIT).unwrap();
        let mut got = Vec::new();
        let _ = tls.read_to_end(&mut got);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "bytes duplicated or lost");
        tls.write_all(&(got.len() as u64).to_be_bytes()).unwrap();
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    let h = connect(&format!("tls://localhost:{port}"), &[]);
    h.set_nonblocking(true);
    let data: Vec<u8> = (0..32 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut sent = 0usize;
    let mut blocked = 0;
    for _ in 0..100_000 {
        match h.write(&data[sent..sent + 50_000]) {
            Ok(n) => sent += n,
            Err(e) => {
                assert_err(&e, TU_E_WOULD_BLOCK, "write");
                assert_ne!(h.wants() & TU_WANT_WRITE, 0);
                blocked += 1;
                if blocked == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(blocked, 3, "the socket never filled ({sent} bytes)");
    tx.send(()).unwrap();
    h.set_nonblocking(false);
    h.shutdown(TU_SHUT_WR).unwrap();
    let n = u64::from_be_bytes(read_exact(&h, 8).try_into().unwrap());
    assert_eq!(n as usize, sent);
    drop(h);
    server.join().unwrap();
}

#[test]
fn nonblocking_starttls_resumes_where_it_stopped() {
    let (port, server) = tcp_server("127.0.0.1:0", 1, |s| starttls_echo_after(s, Duration::from_millis(100)));
    let h = connect(&format!("tcp://localhost:{port}"), &[]);
    write_all(&h, b"STARTTLS\r\n");
    assert_eq!(read_exact(&h, 14), b"220 go ahead\r\n");
    h.set_nonblocking(true);
    let mut would_block = 0;
    let mut done = false;
    for _ in 0..200 {
        match h.enable_crypto(TU_CRYPTO_ANY) {
            Ok(()) => {
                done = true;
                break;
            }
            Err(e) => {
                assert_err(&e, TU_E_WOULD_BLOCK, "TLS handshake");
                would_block += 1;
                if would_block == 1 {
                    // Mid-handshake: other methods and data are refused.
                    assert_err(&h.enable_crypto(TU_CRYPTO_TLSV1_2).unwrap_err(), TU_E_STATE, "TU_CRYPTO_ANY");
                    assert_err(&h.read(&mut [0u8; 4]).unwrap_err(), TU_E_STATE, "handshake is not finished");
                    assert_err(&h.write(b"x").unwrap_err(), TU_E_STATE, "handshake is not finished");
                }
                assert!(poll_wants(&h, 2000), "no readiness for {}", h.wants());
            }
        }
    }
    assert!(done, "the handshake never finished");
    assert!(would_block > 0, "a non-blocking handshake cannot finish without waiting");
    assert!(h.tls_version().is_some());
    assert_err(&h.enable_crypto(TU_CRYPTO_ANY).unwrap_err(), TU_E_STATE, "already enabled");
    // Echo a message, non-blocking.
    assert_eq!(h.write(b"over tls").unwrap(), 8);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..100 {
        match h.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_err(&e, TU_E_WOULD_BLOCK, "read");
                if got.len() >= 8 {
                    break;
                }
                poll_wants(&h, 1000);
            }
        }
    }
    assert_eq!(got, b"over tls");
    drop(h);
    server.join().unwrap();
}

#[test]
fn nonblocking_tls_off_resumes_and_keeps_the_plaintext() {
    let (port, server) = tcp_server("127.0.0.1:0", 1, |mut s| {
        if read_line(&mut s) != "STARTTLS\r\n" || s.write_all(b"220 go ahead\r\n").is_err() {
            return;
        }
        let Some(mut tls) = accept_tls(s) else { return };
        let mut got = Vec::new();
        let _ = tls.read_to_end(&mut got); // to the client's close_notify
        std::thread::sleep(Duration::from_millis(100));
        tls.write_all(b"last words").unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        tls.sock.write_all(b"plain again\r\n").unwrap();
    });
    let h = connect(&format!("tcp://localhost:{port}"), &[]);
    write_all(&h, b"STARTTLS\r\n");
    assert_eq!(read_exact(&h, 14), b"220 go ahead\r\n");
    h.enable_crypto(TU_CRYPTO_ANY).unwrap();
    h.set_nonblocking(true);
    let mut would_block = 0;
    let mut done = false;
    for _ in 0..100 {
        match h.enable_crypto(TU_CRYPTO_NONE) {
            Ok(()) => {
                done = true;
                break;
            }
            Err(e) => {
                assert_err(&e, TU_E_WOULD_BLOCK, "turning TLS off");
                would_block += 1;
                assert_err(&h.read(&mut [0u8; 4]).unwrap_err(), TU_E_STATE, "being turned off");
                assert_err(&h.enable_crypto(TU_CRYPTO_ANY).unwrap_err(), TU_E_STATE, "being turned off");
                assert!(poll_wants(&h, 2000), "no readiness for {}", h.wants());
            }
        }
    }
    assert!(done && would_block > 0, "done {done}, {would_block} would-blocks");
    assert!(h.tls_version().is_none());
    // "last words" came before the close_notify; what follows it may still
    // be in the socket, or already in the library's buffer.
    assert!(h.pending() >= 10, "{}", h.pending());
    h.set_nonblocking(false);
    assert_eq!(read_exact(&h, 23), b"last wordsplain again\r\n");
    drop(h);
    server.join().unwrap();
}

#[test]
fn pending_counts_decrypted_bytes_poll_cannot_see() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, server) = tcp_server("127.0.0.1:0", 1, move |s| {
        let Some(mut tls) = accept_tls(s) else { return };
        tls.write_all(&[7u8; 100]).unwrap(); // one record
        tls.flush().unwrap();
        let _ = rx.recv_timeout(IO_LIMIT);
    });
    let h = connect(&format!("tls://localhost:{port}"), &[]);
    assert_eq!(h.pending(), 0);
    assert_eq!(read_exact(&h, 10), [7u8; 10]);
    assert_eq!(h.pending(), 90);
    assert!(!fd_readable(&h, 50), "the socket shows the buffered bytes");
    h.set_nonblocking(true);
    let mut buf = [0u8; 200];
    assert_eq!(h.read(&mut buf).unwrap(), 90);
    assert_eq!(h.pending(), 0);
    assert_err(&h.read(&mut buf).unwrap_err(), TU_E_WOULD_BLOCK, "read");
    tx.send(()).unwrap();
    drop(h);
    server.join().unwrap();
}

// ---------------------------------------------------------------------------
// Socket options

#[test]
fn socket_options_bindto_nodelay_keepalive() {
    let (port, server) = tcp_server("127.0.0.1:0", 3, |mut s| echo(&mut s));
    let h = connect(&format!("tcp://127.0.0.1:{port}"), &[("socket.bindto", "127.0.0.1:0")]);
    assert!(h.local_address().unwrap().starts_with("127.0.0.1:"));
    // SAFETY (test): the handle owns the descriptor and outlives the borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(h.fd()) };
    let sock = socket2::SockRef::from(&fd);
    assert!(sock.nodelay().unwrap(), "TCP_NODELAY is on by default");
    assert!(!sock.keepalive().unwrap());
    drop(h);

    let free = closed_port("127.0.0.1");
    let h = connect(
        &format!("tcp://127.0.0.1:{port}"),
        &[("socket.bindto", &format!("0:{free}")), ("socket.tcp_nodelay", "off"), ("socket.keepalive", "30")],
    );
    assert_eq!(h.local_address().unwrap(), format!("127.0.0.1:{free}"));
    // SAFETY (test): as above.
    let fd = unsafe { BorrowedFd::borrow_raw(h.fd()) };
    let sock = socket2::SockRef::from(&fd);
    assert!(!sock.nodelay().unwrap());
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(30));
    drop(h);

    let e = connect_err(&format!("tcp://127.0.0.1:{port}"), &[("socket.bindto", "[::1]:0")]);
    assert_err(&e, TU_E_INVALID_ARGUMENT, "socket.bindto");
    let e = connect_err("unix:///nonexistent.sock", &[("socket.bindto", "127.0.0.1:0")]);
    assert_err(&e, TU_E_INVALID_ARGUMENT, "socket.bindto");
    // One more connection so that the server thread ends.
    drop(connect(&format!("tcp://127.0.0.1:{port}"), &[]));
    server.join().unwrap();

    let mut o = Options::default();
    for (k, v, word) in [
        ("socket.bindto", "127.0.0.1", "no port"),
        ("socket.bindto", "::1:80", "brackets"),
        ("socket.tcp_nodelay", "maybe", "boolean"),
        ("socket.keepalive", "1.5", "whole number"),
        ("happy_eyeballs_delay", "0", "not allowed"),
    ] {
        let e = o.set(k, v).unwrap_err();
        assert_err(&e, TU_E_INVALID_ARGUMENT, k);
        assert!(e.message.contains(word), "{k}={v}: {}", e.message);
    }
    o.set("happy_eyeballs_delay", "0.1").unwrap();
    assert_eq!(o.socket.happy_eyeballs_delay, Some(Duration::from_millis(100)));
}

#[test]
fn bindto_ipv6_and_addresses() {
    let (port, server) = tcp_server("[::1]:0", 1, |mut s| echo(&mut s));
    let h = connect(&format!("tcp://[::1]:{port}"), &[("socket.bindto", "[::1]:0")]);
    assert!(h.local_address().unwrap().starts_with("[::1]:"), "{}", h.local_address().unwrap());
    assert_eq!(h.peer_address().unwrap(), format!("[::1]:{port}"));
    // Through the C ABI: a buffer too small is refused and left alone.
    let ch = &h as *const Handle as *const ffi::tu_handle;
    let mut small = [b'#' as libc::c_char; 4];
    assert_eq!(ffi::tu_peer_address(ch, small.as_mut_ptr(), small.len()), TU_E_INVALID_ARGUMENT);
    assert_eq!(small[0], b'#' as libc::c_char);
    let mut big = [0 as libc::c_char; 64];
    assert_eq!(ffi::tu_peer_address(ch, big.as_mut_ptr(), big.len()), TU_OK);
    // SAFETY (test): NUL-terminated by the call.
    assert_eq!(unsafe { CStr::from_ptr(big.as_ptr()) }.to_str().unwrap(), format!("[::1]:{port}"));
    drop(h);
    server.join().unwrap();
}

// ---------------------------------------------------------------------------
// UDP

#[test]
fn udp_boundaries_truncation_and_size_limit() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let port = server.local_addr().unwrap().port();
    let h = connect(&format!("udp://127.0.0.1:{port}"), &[]);
    assert_eq!(h.write(b"hello").unwrap(), 5);
    let mut buf = [0u8; 70_000];
    let (n, client) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    // Two datagrams stay two reads.
    server.send_to(b"one", client).unwrap();
    server.send_to(b"two!", client).unwrap();
    let mut small = [0u8; 64];
    assert_eq!(h.read(&mut small).unwrap(), 3);
    assert_eq!(h.read(&mut small).unwrap(), 4);
    // Too big for the buffer: the real size in the message.
    server.send_to(&[1u8; 100], client).unwrap();
    let e = h.read(&mut [0u8; 10]).unwrap_err();
    assert_err(&e, TU_E_TRUNCATED, "100 bytes");
    // The largest datagram goes; one more byte is refused before sending.
    assert_eq!(h.write(&[2u8; TU_UDP_MAX_DATAGRAM]).unwrap(), TU_UDP_MAX_DATAGRAM);
    assert_eq!(server.recv_from(&mut buf).unwrap().0, TU_UDP_MAX_DATAGRAM);
    let e = h.write(&[2u8; TU_UDP_MAX_DATAGRAM + 1]).unwrap_err();
    assert_err(&e, TU_E_INVALID_ARGUMENT, "65507");
    // Non-blocking: nothing there.
    h.set_nonblocking(true);
    assert_err(&h.read(&mut small).unwrap_err(), TU_E_WOULD_BLOCK, "read");
    assert_eq!(h.wants(), TU_WANT_READ);
    // TLS over UDP does not exist.
    assert_err(&h.enable_crypto(TU_CRYPTO_ANY).unwrap_err(), TU_E_STATE, "datagram");
}

#[test]
fn udp_port_unreachable_is_refused_on_the_next_read() {
    let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    let h = connect(&format!("udp://127.0.0.1:{port}"), &[]);
    h.set_timeout(TU_TIMEOUT_READ, 2000).unwrap();
    assert_eq!(h.write(b"anyone?").unwrap(), 7);
    let e = h.read(&mut [0u8; 16]).unwrap_err();
    assert_err(&e, TU_E_REFUSED, "ICMP port unreachable");
}

// ---------------------------------------------------------------------------
// Zones and names

#[test]
fn ipv6_zones_become_the_scope_id() {
    let (port, server) = tcp_server("[::1]:0", 2, |mut s| echo(&mut s));
    drop(connect(&format!("tcp://[::1%lo]:{port}"), &[]));
    drop(connect(&format!("tcp://[::1%25lo]:{port}"), &[]));
    server.join().unwrap();
    let e = connect_err("tcp://[::1%nosuchif0]:80", &[]);
    assert_err(&e, TU_E_URL, "unknown network interface 'nosuchif0'");
}

#[test]
fn trailing_dot_is_stripped_for_sni_and_verification() {
    let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
    let tx = std::sync::Mutex::new(tx);
    let (port, server) = tcp_server("127.0.0.1:0", 2, move |s| {
        let Some(mut tls) = accept_tls(s) else { return };
        tx.lock().unwrap().send(tls.conn.server_name().map(str::to_string)).unwrap();
        echo(&mut tls);
    });
    let h = connect(&format!("tls://localhost.:{port}"), &[]);
    write_all(&h, b"x");
    assert_eq!(read_exact(&h, 1), b"x");
    assert_eq!(rx.recv_timeout(IO_LIMIT).unwrap().as_deref(), Some("localhost"));
    drop(h);
    let h = connect(&format!("tls://127.0.0.1:{port}"), &[("ssl.peer_name", "localhost.")]);
    write_all(&h, b"y");
    assert_eq!(read_exact(&h, 1), b"y");
    assert_eq!(rx.recv_timeout(IO_LIMIT).unwrap().as_deref(), Some("localhost"));
    drop(h);
    server.join().unwrap();
}

// ---------------------------------------------------------------------------
// Unix-domain transports

#[test]
fn unix_stream_and_starttls_with_peer_name() {
    let dir = temp_dir("unix");
    let path = dir.join("echo.sock");
    let server = unix_server(&path, 1, |mut s| echo(&mut s));
    let h = connect(&format!("unix://{}", path.display()), &[]);
    assert_eq!(h.peer_address().unwrap(), path.display().to_string());
    assert_eq!(h.local_address().unwrap(), "");
    write_all(&h, b"over unix");
    assert_eq!(read_exact(&h, 9), b"over unix");
    drop(h);
    server.join().unwrap();

    let path = dir.join("starttls.sock");
    let server = unix_server(&path, 2, |s| starttls_echo(s));
    let url = format!("unix://{}", path.display());
    // Without a name, TLS cannot start.
    let h = connect(&url, &[]);
    write_all(&h, b"STARTTLS\r\n");
    assert_eq!(read_exact(&h, 14), b"220 go ahead\r\n");
    assert_err(&h.enable_crypto(TU_CRYPTO_ANY).unwrap_err(), TU_E_INVALID_ARGUMENT, "ssl.peer_name");
    drop(h);
    let h = connect(&url, &[("ssl.peer_name", "localhost")]);
    write_all(&h, b"STARTTLS\r\n");
    assert_eq!(read_exact(&h, 14), b"220 go ahead\r\n");
    h.enable_crypto(TU_CRYPTO_ANY).unwrap();
    write_all(&h, b"secret");
    assert_eq!(read_exact(&h, 6), b"secret");
    drop(h);
    server.join().unwrap();

    let e = connect_err(&format!("unix://{}", dir.join("missing.sock").display()), &[]);
    assert_err(&e, TU_E_IO, "ENOENT");
    // A socket file nobody listens on any more.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let e = connect_err(&format!("unix://{}", stale.display()), &[]);
    assert_err(&e, TU_E_REFUSED, "ECONNREFUSED");
}

#[test]
fn udg_autobinds_so_that_the_server_can_reply() {
    let dir = temp_dir("udg");
    let path = dir.join("dgram.sock");
    let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    server.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..2 {
            let mut buf = [0u8; 256];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let mut reply = b"re: ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            server.send_to_addr(&reply, &from).unwrap();
        }
    });
    let h = connect(&format!("udg://{}", path.display()), &[]);
    assert!(h.local_address().unwrap().starts_with('@'), "{}", h.local_address().unwrap());
    assert_eq!(h.write(b"first").unwrap(), 5);
    assert_eq!(h.write(b"second").unwrap(), 6);
    let mut buf = [0u8; 64];
    let n = h.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"re: first");
    let n = h.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"re: second");
    t.join().unwrap();
    assert_err(&h.enable_crypto(TU_CRYPTO_ANY).unwrap_err(), TU_E_STATE, "datagram");
}

/// A non-blocking TLS write that leaves records queued says TU_WANT_WRITE,
/// and tu_flush pushes them out; the reader's wants are never cleared by
/// the writer.
#[test]
fn nonblocking_tls_write_then_flush_delivers_everything() {
    use transporturl::ffi::{tu_flush, tu_set_nonblocking, tu_wants};
    use transporturl::handle::{TU_WANT_READ, TU_WANT_WRITE};
    let ca = common_ca_for_flush::make();
    let total = 4usize << 20;
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = ca.1.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let conn = rustls::ServerConnection::new(cfg).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        // Let the client fill the socket before reading anything.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut got = 0usize;
        let mut buf = vec![0u8; 65536];
        while got < total {
            match std::io::Read::read(&mut tls, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        tx.send(got).unwrap();
    });
    let url = std::ffi::CString::new(format!("tls://localhost:{port}")).unwrap();
    let o = transporturl::ffi::tu_options_new();
    let (k, v) = (c"ssl.cafile", std::ffi::CString::new(ca.0.to_str().unwrap()).unwrap());
    assert_eq!(transporturl::ffi::tu_options_set(o, k.as_ptr(), v.as_ptr(), std::ptr::null_mut()), 0);
    let h = transporturl::ffi::tu_connect_opts(url.as_ptr(), o, std::ptr::null_mut());
    transporturl::ffi::tu_options_free(o);
    assert!(!h.is_null());
    assert_eq!(tu_set_nonblocking(h, 1), 0);
    // A read that would block records TU_WANT_READ ...
    let mut b = [0u8; 16];
    assert!(transporturl::ffi::tu_read(h, b.as_mut_ptr().cast(), 16) < 0);
    assert_eq!(tu_wants(h) & TU_WANT_READ, TU_WANT_READ);
    let data = vec![0x5au8; total];
    let mut sent = 0usize;
    let t0 = std::time::Instant::now();
    while sent < total && t0.elapsed() < std::time::Duration::from_secs(20) {
        let r = transporturl::ffi::tu_write(h, data[sent..].as_ptr().cast(), total - sent);
        if r > 0 {
            sent += r as usize;
        } else {
            assert_eq!(r, -(transporturl::error::TU_E_WOULD_BLOCK as isize));
            // ... which the writer does not clear.
            assert_eq!(tu_wants(h) & TU_WANT_READ, TU_WANT_READ);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    assert_eq!(sent, total);
    // Everything accepted; records may still be queued inside.
    while tu_wants(h) & TU_WANT_WRITE != 0 || tu_flush(h) != 0 {
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "flush never finished");
        let rc = tu_flush(h);
        if rc == 0 {
            break;
        }
        assert_eq!(rc, transporturl::error::TU_E_WOULD_BLOCK);
        assert_eq!(tu_wants(h) & TU_WANT_WRITE, TU_WANT_WRITE);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap(), total, "the server got every byte");
    transporturl::ffi::tu_close(h);
    server.join().unwrap();
}

mod common_ca_for_flush {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::sync::Arc;
    pub fn make() -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        let dir = std::env::temp_dir().join(format!("tu-flush-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca_cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        (path, Arc::new(cfg))
    }
}
