//! The core, end to end through the C ABI: plain TCP, UDP, TLS and STARTTLS
//! against real servers on loopback, and every error code the core can
//! produce, each with its message.

mod common;

use common::*;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};
use transporturl::error::{code_name, CODES, TU_E_CERTIFICATE, TU_E_INSECURE_PROTOCOL, TU_E_INTERNAL, TU_E_INVALID_ARGUMENT, TU_E_IO, TU_E_PLAINTEXT_PEER, TU_E_PROTOCOL, TU_E_REFUSED, TU_E_RESOLVE, TU_E_STATE, TU_E_TIMEOUT, TU_E_TLS, TU_E_TRUNCATED, TU_E_UNSUPPORTED_TRANSPORT, TU_E_URL, TU_OK};
use transporturl::ffi::*;
use transporturl::handle::*;

struct Conn(*mut tu_handle);
// SAFETY (test): the handle supports one reader and one writer thread.
unsafe impl Send for Conn {}
unsafe impl Sync for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        tu_close(self.0);
    }
}

impl Conn {
    fn write(&self, data: &[u8]) -> isize {
        tu_write(self.0, data.as_ptr().cast(), data.len())
    }
    fn read(&self, buf: &mut [u8]) -> isize {
        tu_read(self.0, buf.as_mut_ptr().cast(), buf.len())
    }
    fn read_exact(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while out.len() < n {
            let r = self.read(&mut buf[..(n - out.len()).min(65536)]);
            assert!(r > 0, "read returned {r}: {}", self.last_error().1);
            out.extend_from_slice(&buf[..r as usize]);
        }
        out
    }
    fn last_error(&self) -> (i32, String) {
        let mut e = new_error();
        let code = tu_last_error(self.0, &mut e);
        assert_eq!(code, e.code);
        (code, message(&e))
    }
    fn enable(&self, method: i32) -> (i32, String) {
        let rc = tu_enable_crypto(self.0, method);
        if rc == TU_OK {
            (rc, String::new())
        } else {
            let (code, msg) = self.last_error();
            assert_eq!(code, rc);
            (rc, msg)
        }
    }
    fn text(p: *const std::ffi::c_char) -> Option<String> {
        if p.is_null() {
            None
        } else {
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        }
    }
}

fn new_error() -> tu_error {
    tu_error { code: -99, message: [b'x' as std::ffi::c_char; 512] }
}

fn message(e: &tu_error) -> String {
    let bytes: Vec<u8> = e.message.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8(bytes).expect("messages are UTF-8")
}

fn connect(url: &str, opts: &[(&str, &str)]) -> Result<Conn, (i32, String)> {
    let o = tu_options_new();
    for (k, v) in opts {
        let (k, v) = (CString::new(*k).unwrap(), CString::new(*v).unwrap());
        let mut e = new_error();
        assert_eq!(tu_options_set(o, k.as_ptr(), v.as_ptr(), &mut e), TU_OK, "{}", message(&e));
    }
    let url = CString::new(url).unwrap();
    let mut e = new_error();
    let h = tu_connect_opts(url.as_ptr(), o, &mut e);
    tu_options_free(o);
    if h.is_null() {
        assert_ne!(e.code, TU_OK);
        Err((e.code, message(&e)))
    } else {
        assert_eq!(e.code, TU_OK);
        assert_eq!(e.message[0], 0, "message reset on success");
        Ok(Conn(h))
    }
}

fn expect_err(url: &str, opts: &[(&str, &str)], code: i32, word: &str) -> String {
    match connect(url, opts) {
        Ok(_) => panic!("{url}: connected, expected {}", code_name(code).unwrap()),
        Err((c, m)) => {
            assert_eq!(c, code, "{url}: got {} ({m}), expected {}", code_name(c).unwrap_or("?"), code_name(code).unwrap());
            assert!(m.to_lowercase().contains(&word.to_lowercase()), "{url}: message {m:?} lacks {word:?}");
            m
        }
    }
}

fn tls_echo_server(count: usize, notify: bool) -> (Ca, Server) {
    let ca = ca();
    let cfg = server_config(leaf(&ca, Leaf::Good));
    let server = Server::start(count, echo_tls(cfg, notify));
    (ca, server)
}

#[test]
fn tcp_round_trip() {
    let server = Server::start(1, echo_plain);
    let c = connect(&format!("tcp://127.0.0.1:{}", server.port), &[]).unwrap();
    assert_eq!(c.write(b"hello"), 5);
    assert_eq!(c.read_exact(5), b"hello");
    assert!(Conn::text(tu_tls_version(c.0)).is_none());
    assert!(tu_fileno(c.0) >= 0);
    drop(c);
    server.join();
}

#[test]
fn no_scheme_means_tcp_and_ipv6_works() {
    let server = Server::start(1, echo_plain);
    let c = connect(&format!("127.0.0.1:{}", server.port), &[]).unwrap();
    assert_eq!(c.write(b"x"), 1);
    assert_eq!(c.read_exact(1), b"x");
    drop(c);
    server.join();
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let server = Server::start_on("[::1]:0", 1, echo_plain);
        let c = connect(&format!("tcp://[::1]:{}", server.port), &[]).unwrap();
        assert_eq!(c.write(b"six"), 3);
        assert_eq!(c.read_exact(3), b"six");
        drop(c);
        server.join();
    }
}

#[test]
fn tls_round_trip_verified_by_name_and_by_ip() {
    let (ca, server) = tls_echo_server(2, true);
    let cafile = ca.pem_path.to_str().unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let c = connect(&format!("tls://{host}:{}", server.port), &[("ssl.cafile", cafile)]).unwrap();
        assert_eq!(Conn::text(tu_tls_version(c.0)).as_deref(), Some("TLSv1.3"));
        let suite = Conn::text(tu_tls_cipher_suite(c.0)).unwrap();
        assert!(suite.starts_with("TLS_AES_") || suite.starts_with("TLS_CHACHA20"), "{suite}");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(c.write(&data), data.len() as isize);
        assert_eq!(c.read_exact(data.len()), data);
    }
    server.join();
}

#[test]
fn pinned_versions() {
    let ca = ca();
    let cfg12 = server_config_versions(leaf(&ca, Leaf::Good), &[&rustls::version::TLS12]);
    let server = Server::start(2, echo_tls(cfg12, true));
    let cafile = ca.pem_path.to_str().unwrap();
    let c = connect(&format!("tlsv1.2://localhost:{}", server.port), &[("ssl.cafile", cafile)]).unwrap();
    assert_eq!(Conn::text(tu_tls_version(c.0)).as_deref(), Some("TLSv1.2"));
    let suite = Conn::text(tu_tls_cipher_suite(c.0)).unwrap();
    assert!(suite.starts_with("TLS_ECDHE_"), "{suite}");
    drop(c);
    // A TLS 1.2-only server cannot talk to tlsv1.3://.
    expect_err(&format!("tlsv1.3://localhost:{}", server.port), &[("ssl.cafile", cafile)], TU_E_TLS, "refused");
    server.join();
}

#[test]
fn close_notify_is_eof_and_its_absence_is_truncation() {
    for notify in [true, false] {
        let (ca, server) = tls_echo_server(1, notify);
        let c = connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", ca.pem_path.to_str().unwrap())])
            .unwrap();
        assert_eq!(c.write(b"last words"), 10);
        assert_eq!(c.read_exact(10), b"last words", "data is delivered before the end is reported");
        // Our half-close: the server sees EOF only when we close, so ask it
        // to finish by shutting the socket's write side.
        unsafe { libc::shutdown(tu_fileno(c.0), libc::SHUT_WR) };
        let mut buf = [0u8; 16];
        let r = c.read(&mut buf);
        if notify {
            assert_eq!(r, 0, "close_notify reads as EOF");
            assert_eq!(c.read(&mut buf), 0, "and stays EOF");
        } else {
            assert_eq!(r, -(TU_E_TRUNCATED as isize));
            let (code, msg) = c.last_error();
            assert_eq!(code, TU_E_TRUNCATED);
            assert!(msg.contains("close_notify"), "{msg}");
        }
        drop(c);
        server.join();
    }
}

#[test]
fn certificate_failures_say_which() {
    let ca = ca();
    let cafile = ca.pem_path.to_str().unwrap().to_string();
    let cases = [
        (Leaf::Expired, "expired"),
        (Leaf::NotYetValid, "not yet valid"),
        (Leaf::WrongName, "name mismatch"),
    ];
    for (kind, word) in cases {
        let server = Server::start(1, echo_tls(server_config(leaf(&ca, kind)), true));
        let m = expect_err(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile)], TU_E_CERTIFICATE, word);
        if matches!(kind, Leaf::WrongName) {
            assert!(m.contains("localhost") && m.contains("wrong.example"), "{m}");
        }
        server.join();
    }
    // Unknown issuer: the test CA is not in the system roots.
    let other = common::ca_named("some other CA");
    let server = Server::start(1, echo_tls(server_config(leaf(&other, Leaf::Good)), true));
    expect_err(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile)], TU_E_CERTIFICATE, "unknown issuer");
    server.join();
}

#[test]
fn verification_can_be_relaxed_and_peer_name_set() {
    let ca = ca();
    let cafile = ca.pem_path.to_str().unwrap().to_string();
    let wrong = server_config(leaf(&ca, Leaf::WrongName));
    let server = Server::start(3, echo_tls(wrong, true));
    let url = format!("tls://127.0.0.1:{}", server.port);
    let c = connect(&url, &[("ssl.cafile", &cafile), ("ssl.verify_peer_name", "false")]).unwrap();
    assert_eq!(c.write(b"a"), 1);
    drop(c);
    let c = connect(&url, &[("ssl.cafile", &cafile), ("ssl.peer_name", "wrong.example")]).unwrap();
    assert_eq!(c.write(b"b"), 1);
    drop(c);
    let c = connect(&url, &[("ssl.verify_peer", "0")]).unwrap();
    assert_eq!(c.write(b"c"), 1);
    drop(c);
    server.join();
}

/// A minimal SMTP server with STARTTLS on a real rustls session. With
/// `inject`, it queues a plaintext line right behind its 220 go-ahead.
fn smtp_server(cfg: std::sync::Arc<rustls::ServerConfig>, inject: bool, off_then_plain: bool) -> Server {
    Server::start(1, move |mut s| {
        s.write_all(b"220 mail.test ESMTP ready\r\n").unwrap();
        let ehlo = read_line(&mut s);
        assert!(ehlo.starts_with("EHLO"), "{ehlo}");
        s.write_all(b"250-mail.test\r\n250 STARTTLS\r\n").unwrap();
        let cmd = read_line(&mut s);
        assert_eq!(cmd, "STARTTLS\r\n");
        if inject {
            s.write_all(b"220 go ahead\r\n250 injected\r\n").unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            return;
        }
        s.write_all(b"220 go ahead\r\n").unwrap();
        let Some(mut tls) = accept_tls(&cfg, s) else { return };
        let line = read_line(&mut tls);
        assert_eq!(line, "EHLO again\r\n");
        tls.write_all(b"250 secure hello\r\n").unwrap();
        tls.flush().unwrap();
        if off_then_plain {
            // Wait for the client's close_notify, then answer with ours and
            // plaintext in the same write, so both arrive together.
            let mut b = [0u8; 64];
            while !matches!(tls.read(&mut b), Ok(0) | Err(_)) {}
            tls.conn.send_close_notify();
            let mut out = Vec::new();
            tls.conn.write_tls(&mut out).unwrap();
            out.extend_from_slice(b"200 plaintext again\r\n");
            tls.sock.write_all(&out).unwrap();
            let line = read_line(&mut tls.sock);
            assert_eq!(line, "QUIT\r\n");
            tls.sock.write_all(b"221 bye\r\n").unwrap();
        } else {
            let line = read_line(&mut tls);
            assert_eq!(line, "QUIT\r\n");
            tls.write_all(b"221 bye\r\n").unwrap();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    })
}

fn read_reply(c: &Conn) -> String {
    // Byte by byte, as a line protocol must before STARTTLS.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        assert_eq!(c.read(&mut b), 1, "{:?}", c.last_error());
        line.push(b[0]);
        if line.ends_with(b"\r\n") {
            let s = String::from_utf8(line.clone()).unwrap();
            if s.lines().last().map(|l| l.as_bytes().get(3) == Some(&b' ')).unwrap_or(false) {
                return s;
            }
        }
    }
}

#[test]
fn starttls_upgrade_in_place() {
    let ca = ca();
    let server = smtp_server(server_config(leaf(&ca, Leaf::Good)), false, false);
    let c = connect(&format!("tcp://localhost:{}", server.port), &[("ssl.cafile", ca.pem_path.to_str().unwrap())])
        .unwrap();
    assert!(read_reply(&c).starts_with("220"));
    c.write(b"EHLO me\r\n");
    assert!(read_reply(&c).contains("STARTTLS"));
    c.write(b"STARTTLS\r\n");
    assert!(read_reply(&c).starts_with("220"));
    assert_eq!(c.enable(TU_CRYPTO_ANY), (TU_OK, String::new()));
    assert!(Conn::text(tu_tls_version(c.0)).is_some());
    let (rc, msg) = c.enable(TU_CRYPTO_ANY);
    assert_eq!(rc, TU_E_STATE);
    assert!(msg.contains("already"), "{msg}");
    c.write(b"EHLO again\r\n");
    assert_eq!(read_reply(&c), "250 secure hello\r\n");
    c.write(b"QUIT\r\n");
    assert_eq!(read_reply(&c), "221 bye\r\n");
    let mut b = [0u8; 8];
    assert_eq!(c.read(&mut b), 0);
    drop(c);
    server.join();
}

#[test]
fn starttls_refuses_injected_plaintext() {
    let ca = ca();
    let server = smtp_server(server_config(leaf(&ca, Leaf::Good)), true, false);
    let c = connect(&format!("tcp://localhost:{}", server.port), &[("ssl.cafile", ca.pem_path.to_str().unwrap())])
        .unwrap();
    read_reply(&c);
    c.write(b"EHLO me\r\n");
    read_reply(&c);
    c.write(b"STARTTLS\r\n");
    assert_eq!(read_reply(&c), "220 go ahead\r\n");
    std::thread::sleep(Duration::from_millis(100)); // let the injected line arrive
    let (rc, msg) = c.enable(TU_CRYPTO_ANY);
    assert_eq!(rc, TU_E_PROTOCOL, "{msg}");
    assert!(msg.contains("injected") && msg.contains("250 injected"), "{msg}");
    // The handle is unusable, and the injected bytes are never returned.
    let mut b = [0u8; 64];
    let r = c.read(&mut b);
    assert!(r < 0, "read after a refused upgrade returned {r}");
    assert_eq!(c.last_error().0, TU_E_STATE);
    drop(c);
    server.join();
}

#[test]
fn crypto_none_keeps_plaintext_sent_right_after_close_notify() {
    let ca = ca();
    let server = smtp_server(server_config(leaf(&ca, Leaf::Good)), false, true);
    let c = connect(&format!("tcp://localhost:{}", server.port), &[("ssl.cafile", ca.pem_path.to_str().unwrap())])
        .unwrap();
    read_reply(&c);
    c.write(b"EHLO me\r\n");
    read_reply(&c);
    c.write(b"STARTTLS\r\n");
    read_reply(&c);
    assert_eq!(c.enable(TU_CRYPTO_ANY).0, TU_OK);
    c.write(b"EHLO again\r\n");
    assert_eq!(read_reply(&c), "250 secure hello\r\n");
    assert_eq!(c.enable(TU_CRYPTO_NONE), (TU_OK, String::new()));
    assert!(Conn::text(tu_tls_version(c.0)).is_none());
    assert_eq!(read_reply(&c), "200 plaintext again\r\n");
    c.write(b"QUIT\r\n");
    assert_eq!(read_reply(&c), "221 bye\r\n");
    drop(c);
    server.join();
}

#[test]
fn plaintext_peer_is_explained() {
    for greeting in ["220 smtp.test ESMTP Postfix\r\n", "+OK POP3 ready\r\n", "* OK IMAP4rev1\r\n"] {
        let server = Server::start(1, move |mut s| {
            let _ = s.write_all(greeting.as_bytes());
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
        });
        let m = expect_err(&format!("tls://127.0.0.1:{}", server.port), &[], TU_E_PLAINTEXT_PEER, "tcp://");
        assert!(m.contains(greeting.trim_end()), "{m}");
        assert!(m.contains("tu_enable_crypto") && m.contains("465"), "{m}");
        server.join();
    }
}

#[test]
fn crypto_method_checks() {
    let server = Server::start(1, echo_plain);
    let c = connect(&format!("tcp://127.0.0.1:{}", server.port), &[]).unwrap();
    for m in [TU_CRYPTO_SSLV2, TU_CRYPTO_SSLV3, TU_CRYPTO_TLSV1_0, TU_CRYPTO_TLSV1_1] {
        let (rc, msg) = c.enable(m);
        assert_eq!(rc, TU_E_INSECURE_PROTOCOL);
        assert!(msg.contains("insecure"), "{msg}");
    }
    for m in [-1, 4, 9, 14, i32::MAX, i32::MIN] {
        let (rc, msg) = c.enable(m);
        assert_eq!(rc, TU_E_INVALID_ARGUMENT);
        assert!(msg.contains("unknown crypto method"), "{msg}");
    }
    let (rc, msg) = c.enable(TU_CRYPTO_NONE);
    assert_eq!(rc, TU_E_STATE);
    assert!(msg.contains("not enabled"), "{msg}");
    // The connection still works after refused calls.
    assert_eq!(c.write(b"ok"), 2);
    assert_eq!(c.read_exact(2), b"ok");
    drop(c);
    server.join();

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = connect(&format!("udp://127.0.0.1:{}", udp.local_addr().unwrap().port()), &[]).unwrap();
    let (rc, msg) = c.enable(TU_CRYPTO_ANY);
    assert_eq!(rc, TU_E_STATE);
    assert!(msg.contains("datagram"), "{msg}");
}

#[test]
fn tls_implicit_cannot_be_turned_off() {
    let (ca, server) = tls_echo_server(1, true);
    let c = connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", ca.pem_path.to_str().unwrap())])
        .unwrap();
    let (rc, msg) = c.enable(TU_CRYPTO_NONE);
    assert_eq!(rc, TU_E_STATE);
    assert!(msg.contains("implicit"), "{msg}");
    drop(c);
    server.join();
}

#[test]
fn udp_datagrams() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let c = connect(&format!("udp://127.0.0.1:{}", peer.local_addr().unwrap().port()), &[]).unwrap();
    assert_eq!(c.write(b"one"), 3);
    assert_eq!(c.write(b"two!"), 4);
    let mut b = [0u8; 100];
    let (n, from) = peer.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"one");
    let (n, _) = peer.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"two!", "one write is one datagram");
    peer.send_to(b"reply-1", from).unwrap();
    peer.send_to(&[7u8; 1000], from).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(c.read(&mut small), 7);
    assert_eq!(c.read(&mut small), -(TU_E_TRUNCATED as isize));
    let (_, msg) = c.last_error();
    assert!(msg.contains("1000 bytes"), "the real size is named: {msg}");
    let big = vec![0u8; TU_UDP_MAX_DATAGRAM + 1];
    assert_eq!(c.write(&big), -(TU_E_INVALID_ARGUMENT as isize));
    assert!(c.last_error().1.contains("65507"));
}

#[test]
fn udp_port_unreachable_is_refused() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let c = connect(&format!("udp://127.0.0.1:{port}"), &[("read_timeout", "2")]).unwrap();
    assert_eq!(c.write(b"ping"), 4);
    let mut b = [0u8; 16];
    assert_eq!(c.read(&mut b), -(TU_E_REFUSED as isize));
}

#[test]
fn refused_resolve_and_url_errors() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    expect_err(&format!("tcp://127.0.0.1:{port}"), &[], TU_E_REFUSED, "refused");
    expect_err(&format!("tls://127.0.0.1:{port}"), &[], TU_E_REFUSED, "refused");
    expect_err("tcp://nonexistent.invalid:80", &[("timeout", "10")], TU_E_RESOLVE, "nonexistent.invalid");
    expect_err("tcp://127.0.0.1", &[], TU_E_URL, "missing port");
    expect_err("tcp://fe80::1:80", &[], TU_E_URL, "[fe80::1]:80");
    expect_err("tcp://127.0.0.1:65536", &[], TU_E_URL, "offset 15");
    expect_err("gopher://h:70", &[], TU_E_UNSUPPORTED_TRANSPORT, "tcp");
    expect_err("sslv3://127.0.0.1:443", &[], TU_E_INSECURE_PROTOCOL, "tls://");
    expect_err("tlsv1.1://127.0.0.1:443", &[], TU_E_INSECURE_PROTOCOL, "tls://");
}

#[test]
fn timeouts_hold_against_silent_and_drip_feeding_peers() {
    // Accepts and never speaks: the handshake deadline holds.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    let server = Server::start(2, move |_s| {
        let _ = rx.lock().unwrap().recv_timeout(IO_LIMIT);
    });
    let t0 = Instant::now();
    expect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "0.5")], TU_E_TIMEOUT, "handshake");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(3), "{took:?}");
    tx.send(()).unwrap();
    // A plain read with read_timeout.
    let c = connect(&format!("tcp://127.0.0.1:{}", server.port), &[("read_timeout", "0.3")]).unwrap();
    let mut b = [0u8; 8];
    let t0 = Instant::now();
    assert_eq!(c.read(&mut b), -(TU_E_TIMEOUT as isize));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(c.last_error().1.contains("timed out"));
    drop(c);
    tx.send(()).unwrap();
    server.join();

    // Drip-feeds a TLS record one byte every 100 ms: one deadline for it all.
    let server = Server::start(1, |mut s| {
        let record = [22u8, 3, 3, 0x10, 0x00];
        for i in 0..50 {
            if s.write_all(&[*record.get(i).unwrap_or(&0)]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let t0 = Instant::now();
    expect_err(&format!("tls://127.0.0.1:{}", server.port), &[("timeout", "0.6")], TU_E_TIMEOUT, "timed out");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    server.join();
}

#[test]
fn write_to_a_closed_peer_is_io_not_sigpipe() {
    let server = Server::start(1, |s| {
        // Reset: linger 0 then close.
        let sock = socket2::SockRef::from(&s);
        sock.set_linger(Some(Duration::ZERO)).unwrap();
    });
    let c = connect(&format!("tcp://127.0.0.1:{}", server.port), &[]).unwrap();
    server.join();
    std::thread::sleep(Duration::from_millis(50));
    let chunk = vec![0u8; 65536];
    let mut last = 0;
    for _ in 0..50 {
        last = c.write(&chunk);
        if last < 0 {
            break;
        }
    }
    assert_eq!(last, -(TU_E_IO as isize));
    let (_, msg) = c.last_error();
    assert!(msg.contains("reset") || msg.contains("pipe"), "{msg}");
}

#[test]
fn full_duplex_reader_does_not_block_writer() {
    let (ca, server) = tls_echo_server(1, true);
    let c = std::sync::Arc::new(
        connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", ca.pem_path.to_str().unwrap())]).unwrap(),
    );
    const TOTAL: usize = 4 << 20;
    let reader = {
        let c = c.clone();
        std::thread::spawn(move || c.read_exact(TOTAL))
    };
    // The reader is blocked in poll before anything is sent.
    std::thread::sleep(Duration::from_millis(100));
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 % 256) as u8).collect();
    for chunk in data.chunks(16384) {
        assert_eq!(c.write(chunk), chunk.len() as isize);
    }
    let got = reader.join().unwrap();
    assert!(got == data, "echoed bytes differ");
    drop(c);
    server.join();
}

#[test]
fn unix_stream_socket() {
    let dir = temp_dir("unix");
    let path = dir.join("echo.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(IO_LIMIT)).unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        s.write_all(&b).unwrap();
    });
    let c = connect(&format!("unix://{}", path.display()), &[]).unwrap();
    assert_eq!(c.write(b"unix!"), 5);
    assert_eq!(c.read_exact(5), b"unix!");
    t.join().unwrap();
}

// ---------------------------------------------------------------------------
// The boundary itself

#[test]
fn null_and_bad_arguments_get_codes_and_messages() {
    let mut e = new_error();
    assert!(tu_connect(std::ptr::null(), &mut e).is_null());
    assert_eq!(e.code, TU_E_INVALID_ARGUMENT);
    assert!(message(&e).contains("NULL"));
    assert!(tu_connect(std::ptr::null(), std::ptr::null_mut()).is_null(), "err may be NULL");
    let bad = [0xffu8, 0xfe, 0];
    let mut e = new_error();
    assert!(tu_connect(bad.as_ptr().cast(), &mut e).is_null());
    assert_eq!(e.code, TU_E_INVALID_ARGUMENT);
    assert!(message(&e).contains("UTF-8"));

    let mut buf = [0u8; 4];
    assert_eq!(tu_read(std::ptr::null_mut(), buf.as_mut_ptr().cast(), 4), -(TU_E_INVALID_ARGUMENT as isize));
    assert_eq!(tu_write(std::ptr::null_mut(), buf.as_ptr().cast(), 4), -(TU_E_INVALID_ARGUMENT as isize));
    assert_eq!(tu_enable_crypto(std::ptr::null_mut(), TU_CRYPTO_ANY), TU_E_INVALID_ARGUMENT);
    let mut e = new_error();
    assert_eq!(tu_last_error(std::ptr::null(), &mut e), TU_E_INVALID_ARGUMENT);
    assert!(message(&e).contains("NULL"));
    assert_eq!(tu_fileno(std::ptr::null()), -1);
    assert!(tu_tls_version(std::ptr::null()).is_null());
    tu_close(std::ptr::null_mut());
    tu_options_free(std::ptr::null_mut());

    let server = Server::start(1, echo_plain);
    let c = connect(&format!("tcp://127.0.0.1:{}", server.port), &[]).unwrap();
    let mut e = new_error();
    assert_eq!(tu_last_error(c.0, &mut e), TU_OK);
    assert_eq!(e.code, TU_OK);
    assert_eq!(e.message[0], 0);
    assert_eq!(tu_read(c.0, buf.as_mut_ptr().cast(), 0), -(TU_E_INVALID_ARGUMENT as isize));
    assert!(c.last_error().1.contains("length 0"));
    assert_eq!(tu_read(c.0, std::ptr::null_mut(), 4), -(TU_E_INVALID_ARGUMENT as isize));
    assert_eq!(tu_write(c.0, std::ptr::null(), 4), -(TU_E_INVALID_ARGUMENT as isize));
    assert_eq!(tu_read(c.0, buf.as_mut_ptr().cast(), usize::MAX), -(TU_E_INVALID_ARGUMENT as isize));
    assert_eq!(tu_write(c.0, buf.as_ptr().cast(), 0), -(TU_E_INVALID_ARGUMENT as isize));
    // Still usable.
    assert_eq!(c.write(b"ok"), 2);
    assert_eq!(c.read_exact(2), b"ok");
    drop(c);
    server.join();
}

#[test]
fn options_are_checked_when_set() {
    let o = tu_options_new();
    let set = |k: &str, v: &str| {
        let (k, v) = (CString::new(k).unwrap(), CString::new(v).unwrap());
        let mut e = new_error();
        let rc = tu_options_set(o, k.as_ptr(), v.as_ptr(), &mut e);
        assert_eq!(rc, e.code);
        (rc, message(&e))
    };
    assert_eq!(set("timeout", "2.5").0, TU_OK);
    assert_eq!(set("ssl.verify_peer", "false").0, TU_OK);
    for (k, v, word) in [
        ("no.such.key", "1", "no.such.key"),
        ("timeout", "soon", "timeout"),
        ("timeout", "0", "timeout"),
        ("read_timeout", "-5", "read_timeout"),
        ("ssl.verify_peer", "maybe", "ssl.verify_peer"),
        ("ssl.cafile", "/nonexistent/ca.pem", "ssl.cafile"),
        ("ssl.peer_name", "", "ssl.peer_name"),
    ] {
        let (rc, msg) = set(k, v);
        assert_eq!(rc, TU_E_INVALID_ARGUMENT, "{k}={v}");
        assert!(msg.contains(word), "{msg}");
    }
    let mut e = new_error();
    assert_eq!(tu_options_set(std::ptr::null_mut(), c"timeout".as_ptr(), c"1".as_ptr(), &mut e), TU_E_INVALID_ARGUMENT);
    assert_eq!(tu_options_set(o, std::ptr::null(), c"1".as_ptr(), &mut e), TU_E_INVALID_ARGUMENT);
    assert_eq!(tu_options_set(o, c"timeout".as_ptr(), std::ptr::null(), &mut e), TU_E_INVALID_ARGUMENT);
    assert!(message(&e).contains("timeout"));
    tu_options_free(o);
}

#[test]
fn long_messages_are_cut_at_a_character_boundary() {
    // A URL error quotes input: make it long and multi-byte.
    let url = format!("tcp://{}:80", "é".repeat(400));
    let c = CString::new(url).unwrap();
    let mut e = new_error();
    assert!(tu_connect(c.as_ptr(), &mut e).is_null());
    let m = message(&e); // from_utf8 would fail on a cut character
    assert!(m.len() <= 511);
}

#[test]
fn strerror_names_and_version() {
    for &(code, name, _) in CODES {
        let n = unsafe { CStr::from_ptr(tu_code_name(code)) }.to_str().unwrap();
        assert_eq!(n, name);
        assert!(!unsafe { CStr::from_ptr(tu_strerror(code)) }.to_bytes().is_empty());
    }
    assert!(tu_code_name(999).is_null());
    assert_eq!(unsafe { CStr::from_ptr(tu_strerror(999)) }.to_str().unwrap(), "unknown error code");
    assert_eq!(unsafe { CStr::from_ptr(tu_version()) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_panic_becomes_internal_and_fails_the_handle() {
    let mut e = new_error();
    transporturl::ffi::test_hooks::panic_in_next_call();
    assert!(tu_connect(c"tcp://127.0.0.1:1".as_ptr(), &mut e).is_null());
    assert_eq!(e.code, TU_E_INTERNAL);
    assert!(message(&e).contains("panic"));

    let server = Server::start(1, echo_plain);
    let c = connect(&format!("tcp://127.0.0.1:{}", server.port), &[]).unwrap();
    transporturl::ffi::test_hooks::panic_in_next_call();
    assert_eq!(c.write(b"x"), -(TU_E_INTERNAL as isize));
    assert_eq!(c.last_error().0, TU_E_INTERNAL);
    assert_eq!(c.write(b"x"), -(TU_E_STATE as isize), "the handle is failed after a panic");
    transporturl::ffi::test_hooks::panic_in_next_call();
    assert_eq!(tu_enable_crypto(c.0, TU_CRYPTO_ANY), TU_E_INTERNAL);
    drop(c);
    server.join();
}
