//! TLS in full (issue 3), through the C ABI against real peers:
//! `openssl s_server`, CPython `ssl` servers and rustls servers in this
//! process. Every option of DESIGN §3's `ssl.` group, the connection-info
//! calls, turning TLS off, resumption, key logging, and certificate failures
//! in detail. Certificates are made at test time; ports are free loopback
//! ports; every failure asserts its code and a word of its message.

mod tls_support;

use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use tls_support::*;
use transporturl::error::*;
use transporturl::ffi::*;
use transporturl::handle::{TU_CRYPTO_ANY, TU_CRYPTO_NONE};

// ---------------------------------------------------------------------------
// rustls servers in this process

fn key_of(pem: &str) -> PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

struct ServerSetup<'a> {
    chain: Vec<Vec<u8>>,
    key_pem: &'a str,
    versions: &'a [&'static rustls::SupportedProtocolVersion],
    alpn: &'a [&'a str],
    /// Require a client certificate issued by this CA.
    client_ca: Option<&'a [u8]>,
}

fn rustls_config(s: ServerSetup<'_>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(s.versions).unwrap();
    let builder = match s.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.to_vec())).unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(v)
        }
    };
    let chain = s.chain.into_iter().map(CertificateDer::from).collect();
    let mut cfg = builder.with_single_cert(chain, key_of(s.key_pem)).unwrap();
    cfg.alpn_protocols = s.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(cfg)
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const V12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A rustls server thread serving `count` connections one at a time.
struct Local {
    port: u16,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl Local {
    /// `serve` gets each connection after its handshake and returns a note
    /// (what it saw) that `join` collects.
    fn start<F>(count: usize, cfg: Arc<rustls::ServerConfig>, serve: F) -> Local
    where
        F: Fn(&mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> String + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let mut notes = Vec::new();
            for _ in 0..count {
                let Ok((stream, _)) = listener.accept() else { break };
                stream.set_read_timeout(Some(LIMIT)).unwrap();
                stream.set_write_timeout(Some(LIMIT)).unwrap();
                let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut ok = true;
                while tls.conn.is_handshaking() {
                    if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                        notes.push(format!("handshake failed: {e}"));
                        ok = false;
                        break;
                    }
                }
                if ok {
                    notes.push(serve(&mut tls));
                }
            }
            notes
        });
        Local { port, thread: Some(thread) }
    }

    fn join(mut self) -> Vec<String> {
        self.thread.take().unwrap().join().expect("server thread")
    }
}

/// Echo lines until EOF; the note is the SNI name the server saw.
fn echo(tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> String {
    let sni = tls.conn.server_name().unwrap_or("-").to_string();
    let mut buf = [0u8; 16384];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tls.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    sni
}

struct Pki {
    dir: TempDir,
    ca: Ca,
    cafile: String,
    leaf: Leaf,
}

fn pki() -> Pki {
    let dir = temp_dir("pki");
    let ca = root_ca("transporturl tls_full CA");
    let cafile = write(&dir, "ca.pem", &ca.pem);
    let leaf = leaf(&ca, Spec::default());
    Pki { dir, ca, cafile, leaf }
}

fn round_trip(c: &Conn) {
    c.write_all(b"ping\n");
    assert_eq!(c.read_line(), "ping\n");
}

// ---------------------------------------------------------------------------
// Options are checked when set

#[test]
fn options_are_checked_when_set() {
    let dir = temp_dir("opts");
    let p = pki();
    let nokey = write(&dir, "nokey.pem", &p.ca.pem);
    let empty_dir = dir.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let fp = "ab".repeat(32);
    let fp_colons: String = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");

    for (k, v) in [
        ("ssl.allow_self_signed", "true"),
        ("ssl.capture_peer_cert", "1"),
        ("ssl.capture_peer_cert_chain", "yes"),
        ("ssl.SNI_enabled", "off"),
        ("ssl.alpn_protocols", "h2,http/1.1"),
        ("ssl.alpn_protocols", ""),
        ("ssl.ciphers", "TLS_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        ("ssl.ciphers", "ECDHE-RSA-AES128-GCM-SHA256,TLS_CHACHA20_POLY1305_SHA256"),
        ("ssl.ciphers", "DEFAULT"),
        ("ssl.min_version", "1.2"),
        ("ssl.max_version", "TLSv1.3"),
        ("ssl.peer_fingerprint", fp.as_str()),
        ("ssl.peer_fingerprint", fp_colons.as_str()),
        ("ssl.peer_fingerprint", &format!("{fp}, {}", "cd".repeat(32))),
        ("ssl.passphrase", "secret"),
        ("ssl.cafile", p.cafile.as_str()),
        ("ssl.capath", p.dir.to_str().unwrap()),
        ("ssl.local_cert", p.cafile.as_str()),
        ("ssl.disable_compression", "true"),
    ] {
        let (rc, m) = set_option(k, v);
        assert_eq!(rc, TU_OK, "{k}={v}: {m}");
    }
    let keylog = dir.join("keys.log");
    assert_eq!(set_option("ssl.keylog", keylog.to_str().unwrap()).0, TU_OK);
    assert!(keylog.exists(), "the key-log file is created when set (to prove it can be written)");

    let bad_dir = format!("{}/no-such-dir/keys.log", empty_dir.display());
    for (k, v, word) in [
        ("ssl.allow_self_signed", "perhaps", "ssl.allow_self_signed"),
        ("ssl.capath", "/nonexistent/dir", "ssl.capath"),
        ("ssl.capath", p.cafile.as_str(), "not a directory"),
        ("ssl.capath", empty_dir.to_str().unwrap(), "no PEM certificate"),
        ("ssl.cafile", nokey.as_str(), ""), // a CA file is fine...
        ("ssl.local_pk", nokey.as_str(), "no PEM private key"),
        ("ssl.local_cert", "/nonexistent/cert.pem", "ssl.local_cert"),
        ("ssl.peer_fingerprint", "zz", "not hexadecimal"),
        ("ssl.peer_fingerprint", "abcd", "64"),
        ("ssl.peer_fingerprint", &"ab".repeat(16), "MD5"),
        ("ssl.peer_fingerprint", &"ab".repeat(20), "SHA-1"),
        ("ssl.peer_fingerprint", "", "empty"),
        ("ssl.alpn_protocols", "h2,,http/1.1", "empty protocol"),
        ("ssl.alpn_protocols", &"x".repeat(300), "255"),
        ("ssl.ciphers", "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_AES_128_GCM_SHA256"),
        ("ssl.ciphers", "HIGH:!aNULL", "OpenSSL cipher-string"),
        ("ssl.ciphers", "", "empty"),
        ("ssl.min_version", "1.4", "ssl.min_version"),
        ("ssl.keylog", bad_dir.as_str(), "ssl.keylog"),
        ("ssl.keylog", "", "ssl.keylog"),
        ("ssl.disable_compression", "false", "CRIME"),
        ("ssl.verify_depth", "3", "not supported"),
        ("ssl.security_level", "2", "ssl.security_level"),
        ("ssl.crypto_method", "9", "ssl.min_version"),
        ("ssl.SNI_server_name", "x", "ssl.peer_name"),
        ("ssl.sni_enabled", "1", "unknown option key"),
    ] {
        let (rc, m) = set_option(k, v);
        if word.is_empty() {
            assert_eq!(rc, TU_OK, "{k}: {m}");
            continue;
        }
        assert_eq!(rc, TU_E_INVALID_ARGUMENT, "{k}={v}: {m}");
        assert!(m.contains(k) || k == "ssl.sni_enabled", "{k}: message names the key: {m}");
        assert!(m.contains(word), "{k}={v}: {m:?} lacks {word:?}");
    }
    // Legacy versions: insecure, not merely invalid.
    for v in ["1.0", "1.1", "TLSv1", "tlsv1.1", "SSLv3"] {
        for k in ["ssl.min_version", "ssl.max_version"] {
            let (rc, m) = set_option(k, v);
            assert_eq!(rc, TU_E_INSECURE_PROTOCOL, "{k}={v}: {m}");
            assert!(m.contains(k) && m.contains("insecure"), "{m}");
        }
    }
    // The list of supported suites fits in the message.
    let (_, m) = set_option("ssl.ciphers", "NOPE_SUITE");
    for s in ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"] {
        assert!(m.contains(s), "{m}");
    }
}

#[test]
fn key_and_version_conflicts_are_reported_at_connect() {
    let p = pki();
    // A listener that never answers: the TCP connect works, the TLS config fails.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = &format!("tlsv1.2://127.0.0.1:{port}");
    let any = &format!("tls://127.0.0.1:{port}");
    expect_err(url, &[("ssl.cafile", &p.cafile), ("ssl.min_version", "1.3")], TU_E_INVALID_ARGUMENT, "ssl.min_version");
    expect_err(
        any,
        &[("ssl.cafile", &p.cafile), ("ssl.min_version", "1.3"), ("ssl.max_version", "1.2")],
        TU_E_INVALID_ARGUMENT,
        "above ssl.max_version",
    );
    expect_err(url, &[("ssl.cafile", &p.cafile), ("ssl.ciphers", "TLS_AES_128_GCM_SHA256")], TU_E_INVALID_ARGUMENT, "ssl.ciphers");
    let key = write(&p.dir, "leaf.key", &p.leaf.key_pem);
    expect_err(any, &[("ssl.local_pk", &key)], TU_E_INVALID_ARGUMENT, "ssl.local_cert");
    let leaf_pem = write(&p.dir, "leaf-only.pem", &p.leaf.pem);
    expect_err(any, &[("ssl.local_cert", &leaf_pem)], TU_E_INVALID_ARGUMENT, "no private key");
}

// ---------------------------------------------------------------------------
// Connection info

#[test]
fn connection_info_against_rustls() {
    let p = pki();
    let cfg = rustls_config(ServerSetup {
        chain: vec![p.leaf.der.clone()],
        key_pem: &p.leaf.key_pem,
        versions: BOTH,
        alpn: &["h2", "http/1.1"],
        client_ca: None,
    });
    let server = Local::start(6, cfg, echo);
    let url = format!("tls://localhost:{}", server.port);
    let ip_url = format!("tls://127.0.0.1:{}", server.port);

    // 1: by name, ALPN agreed, post-quantum group, verified.
    let c = connect(&url, &[("ssl.cafile", &p.cafile), ("ssl.alpn_protocols", "http/1.1,h2")]).unwrap();
    round_trip(&c);
    assert_eq!(c.version().as_deref(), Some("TLSv1.3"));
    assert_eq!(c.group().as_deref(), Some("X25519MLKEM768"), "post-quantum by default");
    assert_eq!(c.alpn().unwrap(), "h2", "a rustls server picks by its own preference among ours");
    assert_eq!(c.sni().unwrap(), "localhost");
    assert_eq!(c.verified(), 1);
    assert_eq!(c.resumed(), 0);
    // Buffers too small, NULL buffers.
    let mut small = [0 as std::ffi::c_char; 2];
    assert_eq!(tu_tls_alpn(c.0, small.as_mut_ptr(), small.len()), TU_E_INVALID_ARGUMENT);
    assert!(c.last_error().1.contains("too small"), "{}", c.last_error().1);
    assert_eq!(tu_tls_sni(c.0, small.as_mut_ptr(), small.len()), TU_E_INVALID_ARGUMENT);
    assert_eq!(tu_tls_sni(c.0, std::ptr::null_mut(), 10), TU_E_INVALID_ARGUMENT);
    let mut exact = [0 as std::ffi::c_char; 10]; // "localhost" + NUL
    assert_eq!(tu_tls_sni(c.0, exact.as_mut_ptr(), exact.len()), TU_OK);
    // Not captured.
    assert_eq!(tu_tls_peer_cert(c.0, 0, std::ptr::null_mut(), 0), -(TU_E_STATE as isize));
    assert!(c.last_error().1.contains("ssl.capture_peer_cert"));
    drop(c);

    // 2: by IP: no SNI; no ALPN offered: "".
    let c = connect(&ip_url, &[("ssl.cafile", &p.cafile)]).unwrap();
    round_trip(&c);
    assert_eq!(c.sni().unwrap(), "");
    assert_eq!(c.alpn().unwrap(), "");
    drop(c);

    // 3: SNI off.
    let c = connect(&url, &[("ssl.cafile", &p.cafile), ("ssl.SNI_enabled", "false")]).unwrap();
    round_trip(&c);
    assert_eq!(c.sni().unwrap(), "");
    drop(c);

    // 4 and 5: verification relaxed.
    let c = connect(&url, &[("ssl.verify_peer", "false")]).unwrap();
    round_trip(&c);
    assert_eq!(c.verified(), 0);
    drop(c);
    let c = connect(&url, &[("ssl.cafile", &p.cafile), ("ssl.verify_peer_name", "false")]).unwrap();
    round_trip(&c);
    assert_eq!(c.verified(), 0);
    drop(c);

    // 6: ALPN with nothing in common: rustls servers refuse.
    let e = expect_err(&url, &[("ssl.cafile", &p.cafile), ("ssl.alpn_protocols", "smtp")], TU_E_TLS, "ssl.alpn_protocols");
    assert!(e.contains("NoApplicationProtocol"), "{e}");

    let notes = server.join();
    assert_eq!(&notes[..3], &["localhost", "-", "-"], "the server saw SNI only when it was sent: {notes:?}");

    // Not TLS: NULL, -1, TU_E_STATE.
    let plain = Local::start(0, rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: None }), echo);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let c = connect(&format!("tcp://127.0.0.1:{port}"), &[]).unwrap();
    assert_eq!(c.group(), None);
    assert_eq!(c.resumed(), -1);
    assert_eq!(c.verified(), -1);
    assert_eq!(c.alpn(), Err(TU_E_STATE));
    assert_eq!(c.sni(), Err(TU_E_STATE));
    assert_eq!(tu_tls_peer_cert(c.0, 0, std::ptr::null_mut(), 0), -(TU_E_STATE as isize));
    drop(c);
    drop(plain);
    // NULL handles.
    assert!(tu_tls_group(std::ptr::null()).is_null());
    assert_eq!(tu_tls_resumed(std::ptr::null()), -1);
    assert_eq!(tu_tls_peer_verified(std::ptr::null()), -1);
    let mut buf = [0 as std::ffi::c_char; 8];
    assert_eq!(tu_tls_alpn(std::ptr::null(), buf.as_mut_ptr(), 8), TU_E_INVALID_ARGUMENT);
    assert_eq!(tu_tls_sni(std::ptr::null(), buf.as_mut_ptr(), 8), TU_E_INVALID_ARGUMENT);
    assert_eq!(tu_tls_peer_cert(std::ptr::null(), 0, std::ptr::null_mut(), 0), -(TU_E_INVALID_ARGUMENT as isize));
}

#[test]
fn capture_peer_cert_returns_the_chain_as_sent() {
    let dir = temp_dir("capture");
    let root = root_ca("capture root");
    let mid = intermediate_ca("capture intermediate", &root);
    let leaf = leaf(&mid, Spec::default());
    let cafile = write(&dir, "root.pem", &root.pem);
    let cfg = rustls_config(ServerSetup {
        chain: vec![leaf.der.clone(), mid.der.clone()],
        key_pem: &leaf.key_pem,
        versions: BOTH,
        alpn: &[],
        client_ca: None,
    });
    let server = Local::start(1, cfg, echo);
    let c = connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile), ("ssl.capture_peer_cert", "true")]).unwrap();
    round_trip(&c);
    assert_eq!(c.peer_cert(0).unwrap(), leaf.der);
    assert_eq!(c.peer_cert(1).unwrap(), mid.der);
    assert_eq!(c.peer_cert(2), Err(-(TU_E_INVALID_ARGUMENT as isize)));
    assert!(c.last_error().1.contains("past the end"), "{}", c.last_error().1);
    let mut small = vec![0u8; 10];
    assert_eq!(tu_tls_peer_cert(c.0, 0, small.as_mut_ptr().cast(), small.len()), -(TU_E_INVALID_ARGUMENT as isize));
    assert!(c.last_error().1.contains("too small"));
    // The size is given with a NULL buffer, or with len 0.
    assert_eq!(tu_tls_peer_cert(c.0, 0, small.as_mut_ptr().cast(), 0), leaf.der.len() as isize);
    drop(c);
    server.join();
}

// ---------------------------------------------------------------------------
// Resumption, observed from the client

#[test]
fn resumption_against_rustls_tls13_and_tls12() {
    let p = pki();
    for (versions, url_scheme, group_on_resume) in [(BOTH, "tls", true), (V12, "tlsv1.2", false)] {
        let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions, alpn: &[], client_ca: None });
        let server = Local::start(3, cfg, echo);
        let url = format!("{url_scheme}://localhost:{}", server.port);
        // A distinct option set per run, so that no earlier test's session is used.
        let alpn = format!("resume-{url_scheme}");
        let opts = [("ssl.cafile", p.cafile.as_str()), ("ssl.alpn_protocols", alpn.as_str())];
        let first = connect(&url, &opts).unwrap();
        round_trip(&first);
        assert_eq!(first.resumed(), 0, "{url_scheme}: a first connection is a full handshake");
        drop(first);
        let second = connect(&url, &opts).unwrap();
        round_trip(&second);
        assert_eq!(second.resumed(), 1, "{url_scheme}: the second connection with the same options resumes");
        assert_eq!(second.verified(), 1, "a resumed session was verified when it was made");
        assert_eq!(second.group().is_some(), group_on_resume, "TLS 1.3 resumption has a key exchange, TLS 1.2's has none");
        drop(second);
        // Other options: another config, so no resumption.
        let third = connect(&url, &[("ssl.cafile", p.cafile.as_str())]).unwrap();
        round_trip(&third);
        assert_eq!(third.resumed(), 0, "{url_scheme}: a different option set does not share sessions");
        drop(third);
        server.join();
    }
}

fn openssl_ec_server_files(p: &Pki) -> (String, String) {
    (write(&p.dir, "server.pem", &p.leaf.pem), write(&p.dir, "server.key", &p.leaf.key_pem))
}

#[test]
fn resumption_against_openssl_s_server() {
    let p = pki();
    let (cert, key) = openssl_ec_server_files(&p);
    for (extra, scheme) in [(&[][..], "tls"), (&["-tls1_2", "-no_ticket"][..], "tlsv1.2"), (&["-tls1_2"][..], "tlsv1.2")] {
        let mut args = vec!["-cert", cert.as_str(), "-key", key.as_str()];
        args.extend_from_slice(extra);
        let server = s_server(&p.dir, &args);
        let url = format!("{scheme}://localhost:{}", server.port);
        let tag = format!("openssl-{}", extra.join(""));
        let opts = [("ssl.cafile", p.cafile.as_str()), ("ssl.alpn_protocols", tag.as_str())];
        for round in 0..3 {
            let c = connect(&url, &opts).unwrap();
            c.write_all(b"hello\n");
            assert_eq!(c.read_line(), "olleh\n");
            assert_eq!(c.resumed(), i32::from(round > 0), "{extra:?} round {round}");
        }
    }
}

#[test]
fn resumption_alpn_and_sni_against_cpython() {
    let p = pki();
    let (cert, key) = openssl_ec_server_files(&p);
    for max in ["1.3", "1.2"] {
        let server = py_server(&format!(
            r#"{{"cert": "{cert}", "key": "{key}", "alpn": ["h2", "http/1.1"], "max": "{max}"}}"#
        ));
        let url = format!("tls://localhost:{}", server.port);
        let alpn = format!("http/1.1,cpython-{max}");
        let opts = [("ssl.cafile", p.cafile.as_str()), ("ssl.alpn_protocols", alpn.as_str())];
        for round in 0..2 {
            let c = connect(&url, &opts).unwrap();
            c.write_all(b"SNI\n");
            assert_eq!(c.read_line(), "localhost\n");
            c.write_all(b"ALPN\n");
            assert_eq!(c.read_line(), "http/1.1\n");
            assert_eq!(c.alpn().unwrap(), "http/1.1");
            assert_eq!(c.version().as_deref(), Some(if max == "1.2" { "TLSv1.2" } else { "TLSv1.3" }));
            assert_eq!(c.group().as_deref(), if max == "1.2" && round == 1 { None } else { Some("X25519") }, "OpenSSL 3.0 has no ML-KEM");
            assert_eq!(c.resumed(), round, "max {max} round {round}");
            c.write_all(b"QUIT\n");
        }
        // By IP: no SNI reaches the server.
        let c = connect(&format!("tls://127.0.0.1:{}", server.port), &[("ssl.cafile", p.cafile.as_str())]).unwrap();
        c.write_all(b"SNI\n");
        assert_eq!(c.read_line(), "-\n");
        assert_eq!(c.sni().unwrap(), "");
    }
}

#[test]
fn a_thousand_connections_share_one_config() {
    let p = pki();
    let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: None });
    const N: usize = 200;
    let server = Local::start(N, cfg, echo);
    let url = format!("tls://localhost:{}", server.port);
    let started = std::time::Instant::now();
    let mut resumed = 0;
    for _ in 0..N {
        let c = connect(&url, &[("ssl.cafile", p.cafile.as_str()), ("ssl.alpn_protocols", "many")]).unwrap();
        round_trip(&c);
        resumed += c.resumed();
    }
    server.join();
    assert!(resumed as usize >= N - 1, "all but the first resume: {resumed}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Trust: cafile with several certificates, capath, self-signed, fingerprints

#[test]
fn cafile_with_several_certificates_and_capath() {
    let dir = temp_dir("trust");
    let a = root_ca("trust CA a");
    let b = root_ca("trust CA b");
    let leaf_b = leaf(&b, Spec::default());
    let both = write(&dir, "both.pem", format!("{}{}", a.pem, b.pem));
    let only_a = write(&dir, "a.pem", &a.pem);
    let cfg = rustls_config(ServerSetup { chain: vec![leaf_b.der.clone()], key_pem: &leaf_b.key_pem, versions: BOTH, alpn: &[], client_ca: None });
    let server = Local::start(4, cfg, echo);
    let url = format!("tls://localhost:{}", server.port);
    let c = connect(&url, &[("ssl.cafile", &both)]).unwrap();
    round_trip(&c);
    drop(c);
    expect_err(&url, &[("ssl.cafile", &only_a)], TU_E_CERTIFICATE, "unknown issuer");

    // capath: OpenSSL hash links made by `openssl rehash`, next to other files.
    let capath = dir.join("capath");
    std::fs::create_dir_all(&capath).unwrap();
    write(&capath, "b.crt", &b.pem);
    write(&capath, "README", "not a certificate");
    openssl(&capath, &["rehash", "."]);
    assert!(std::fs::read_dir(&capath).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".0")));
    let c = connect(&url, &[("ssl.capath", capath.to_str().unwrap())]).unwrap();
    round_trip(&c);
    assert_eq!(c.verified(), 1);
    drop(c);
    let capath_a = dir.join("capath-a");
    std::fs::create_dir_all(&capath_a).unwrap();
    write(&capath_a, "a.pem", &a.pem);
    let m = expect_err(&url, &[("ssl.capath", capath_a.to_str().unwrap())], TU_E_CERTIFICATE, "unknown issuer");
    assert!(m.contains("ssl.capath"), "{m}");
    server.join();
}

#[test]
fn self_signed_certificates_allow_self_signed_and_fingerprints() {
    let dir = temp_dir("selfsigned");
    // As `openssl req -x509` makes them: marked as a CA.
    let ss = self_signed(Spec { is_ca: true, cn: "self-signed localhost", ..Spec::default() });
    let cert = write(&dir, "ss.pem", &ss.pem);
    let key = write(&dir, "ss.key", &ss.key_pem);
    let server = s_server(&dir, &["-cert", &cert, "-key", &key]);
    let url = format!("tls://localhost:{}", server.port);
    let ip_url = format!("tls://127.0.0.1:{}", server.port);

    let m = expect_err(&url, &[], TU_E_CERTIFICATE, "self-signed");
    assert!(m.contains("ssl.allow_self_signed"), "the message names the way out: {m}");

    let c = connect(&url, &[("ssl.allow_self_signed", "true")]).unwrap();
    c.write_all(b"abc\n");
    assert_eq!(c.read_line(), "cba\n");
    assert_eq!(c.verified(), 0, "let through by allow_self_signed only");
    drop(c);
    // The name is still checked.
    expect_err(&url, &[("ssl.allow_self_signed", "true"), ("ssl.peer_name", "other.example")], TU_E_CERTIFICATE, "name mismatch");
    // Trusted explicitly through ssl.cafile: verified.
    let c = connect(&ip_url, &[("ssl.cafile", &cert)]).unwrap();
    assert_eq!(c.verified(), 1);
    drop(c);

    // Fingerprints: SHA-256, any case, ':' allowed, several.
    let digest = sha256_hex(&ss.der);
    let colons: String = digest.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap().to_uppercase()).collect::<Vec<_>>().join(":");
    let c = connect(&url, &[("ssl.verify_peer", "false"), ("ssl.peer_fingerprint", &colons)]).unwrap();
    assert_eq!(c.verified(), 0, "a pin alone is not verification");
    drop(c);
    let several = format!("{},{digest}", "00".repeat(32));
    connect(&url, &[("ssl.cafile", &cert), ("ssl.peer_fingerprint", &several)]).unwrap();
    let wrong = "11".repeat(32);
    let m = expect_err(&url, &[("ssl.verify_peer", "false"), ("ssl.peer_fingerprint", &wrong)], TU_E_CERTIFICATE, "fingerprint mismatch");
    assert!(m.contains(&wrong) && m.contains(&digest), "both values are named: {m}");
    // With verification on, a pin does not replace the chain check.
    expect_err(&url, &[("ssl.peer_fingerprint", &digest)], TU_E_CERTIFICATE, "self-signed");
    drop(server);

    // Expired and self-signed: allow_self_signed does not excuse the date.
    let old = self_signed(Spec { years: Some((-5, -4)), ..Spec::default() });
    let server = s_server(&dir, &["-cert", &write(&dir, "old.pem", &old.pem), "-key", &write(&dir, "old.key", &old.key_pem)]);
    expect_err(&format!("tls://localhost:{}", server.port), &[("ssl.allow_self_signed", "1")], TU_E_CERTIFICATE, "expired");
    drop(server);

    // A chain to an unknown root is not "self-signed".
    let other = root_ca("untrusted root");
    let l = leaf(&other, Spec::default());
    let chain = write(&dir, "other-root.pem", &other.pem);
    let server = s_server(&dir, &["-cert", &write(&dir, "l.pem", &l.pem), "-key", &write(&dir, "l.key", &l.key_pem), "-cert_chain", &chain]);
    let m = expect_err(&format!("tls://localhost:{}", server.port), &[("ssl.allow_self_signed", "1")], TU_E_CERTIFICATE, "unknown issuer");
    assert!(m.contains("untrusted root"), "{m}");
}

fn sha256_hex(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Certificate failures in detail, against openssl s_server

struct Failing {
    name: &'static str,
    code: i32,
    words: &'static [&'static str],
}

fn serve_and_expect(dir: &Path, cafile: &str, args: &[&str], f: Failing) {
    let server = s_server(dir, args);
    let url = format!("tls://localhost:{}", server.port);
    let started = std::time::Instant::now();
    let m = expect_err(&url, &[("ssl.cafile", cafile), ("timeout", "10")], f.code, f.words[0]);
    for w in f.words {
        assert!(m.to_lowercase().contains(&w.to_lowercase()), "{}: {m:?} lacks {w:?}", f.name);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{}: {:?}", f.name, started.elapsed());
    eprintln!("{}: {m}", f.name);
}

#[test]
fn certificate_failures_in_detail() {
    let dir = temp_dir("certfail");
    let root = root_ca("detail root");
    let cafile = write(&dir, "root.pem", &root.pem);
    let files = |name: &str, l: &Leaf| (write(&dir, &format!("{name}.pem"), &l.pem), write(&dir, &format!("{name}.key"), &l.key_pem));

    let (c, k) = files("expired", &leaf(&root, Spec { years: Some((-5, -4)), ..Spec::default() }));
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "expired", code: TU_E_CERTIFICATE, words: &["expired", "valid until"] });
    let (c, k) = files("notyet", &leaf(&root, Spec { years: Some((5, 6)), ..Spec::default() }));
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "not yet valid", code: TU_E_CERTIFICATE, words: &["not yet valid", "valid from"] });
    let (c, k) = files("wrongname", &leaf(&root, Spec { names: vec!["wrong.example"], ..Spec::default() }));
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "wrong name", code: TU_E_CERTIFICATE, words: &["name mismatch", "localhost", "wrong.example"] });
    let ss = self_signed(Spec::default());
    let (c, k) = files("selfsigned", &ss);
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "self-signed", code: TU_E_CERTIFICATE, words: &["unknown issuer", "self-signed"] });
    let other = root_ca("some unknown root");
    let (c, k) = files("unknown", &leaf(&other, Spec::default()));
    let other_pem = write(&dir, "other.pem", &other.pem);
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k, "-cert_chain", &other_pem], Failing { name: "unknown issuer", code: TU_E_CERTIFICATE, words: &["unknown issuer", "some unknown root", "not trusted"] });

    // Incomplete chain vs complete chain.
    let mid = intermediate_ca("detail intermediate", &root);
    let (c, k) = files("midleaf", &leaf(&mid, Spec::default()));
    let mid_pem = write(&dir, "mid.pem", &mid.pem);
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "incomplete chain", code: TU_E_CERTIFICATE, words: &["unknown issuer", "detail intermediate", "incomplete"] });
    let server = s_server(&dir, &["-cert", &c, "-key", &k, "-cert_chain", &mid_pem]);
    let conn = connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile)]).unwrap();
    conn.write_all(b"chain\n");
    assert_eq!(conn.read_line(), "niahc\n", "with the intermediate sent, the chain verifies");
    assert_eq!(conn.verified(), 1);
    drop(conn);
    drop(server);

    let (c, k) = files("clientonly", &leaf(&root, Spec { eku: vec![ExtendedKeyUsagePurpose::ClientAuth], ..Spec::default() }));
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "clientAuth EKU", code: TU_E_CERTIFICATE, words: &["server authentication", "clientAuth"] });
    let (c, k) = files("caleaf", &leaf(&root, Spec { is_ca: true, ..Spec::default() }));
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k], Failing { name: "CA as leaf", code: TU_E_CERTIFICATE, words: &["CA certificate", "must not be a CA"] });

    // RSA pieces the openssl command makes: SHA-1 signature, a 1024-bit key.
    openssl_ca(&dir);
    openssl_leaf(&dir, "sha1", 2048, "sha1");
    openssl_leaf(&dir, "rsa1024", 1024, "sha256");
    let rsa_ca = dir.join("ca.pem").to_str().unwrap().to_string();
    serve_and_expect(&dir, &rsa_ca, &["-cert", "sha1.pem", "-key", "sha1.key", "-cipher", "DEFAULT@SECLEVEL=0"], Failing { name: "SHA-1", code: TU_E_CERTIFICATE, words: &["SHA-1", "insecure"] });
    serve_and_expect(&dir, &rsa_ca, &["-cert", "rsa1024.pem", "-key", "rsa1024.key", "-cipher", "DEFAULT@SECLEVEL=0"], Failing { name: "RSA-1024", code: TU_E_CERTIFICATE, words: &["1024-bit RSA", "too weak"] });

    // A certificate message over 64 KiB: many copies of the intermediate.
    let big: String = std::iter::repeat(mid.pem.as_str()).take(220).collect();
    let big_chain = write(&dir, "big-chain.pem", big);
    let (c, k) = files("bigleaf", &leaf(&mid, Spec::default()));
    serve_and_expect(&dir, &cafile, &["-cert", &c, "-key", &k, "-cert_chain", &big_chain], Failing { name: "over 64 KiB", code: TU_E_TLS, words: &["64 KiB"] });
}

// ---------------------------------------------------------------------------
// Servers that cannot talk to us

#[test]
fn insecure_only_servers_are_explained() {
    let dir = temp_dir("insecure");
    openssl_ca(&dir);
    openssl_leaf(&dir, "rsa", 2048, "sha256");
    let cafile = dir.join("ca.pem").to_str().unwrap().to_string();
    let base = ["-cert", "rsa.pem", "-key", "rsa.key"];
    for (name, extra) in [
        ("TLS 1.0 only", &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"][..]),
        ("TLS 1.1 only", &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"][..]),
        ("DHE only", &["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"][..]),
        ("CBC only", &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:AES128-SHA"][..]),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        serve_and_expect(&dir, &cafile, &args, Failing { name, code: TU_E_TLS, words: &["only insecure protocols or ciphers"] });
    }
    // The same server with TLS 1.2 and a modern suite works: the certificates are fine.
    let server = s_server(&dir, &["-cert", "rsa.pem", "-key", "rsa.key", "-tls1_2"]);
    let c = connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &cafile)]).unwrap();
    c.write_all(b"ok\n");
    assert_eq!(c.read_line(), "ko\n");
    assert!(c.suite().unwrap().starts_with("TLS_ECDHE_RSA_WITH_"), "{:?}", c.suite());
}

// ---------------------------------------------------------------------------
// Ciphers and versions

#[test]
fn ciphers_and_version_limits() {
    let p = pki();
    let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: None });
    let server = Local::start(5, cfg, echo);
    let url = format!("tls://localhost:{}", server.port);
    let ca = ("ssl.cafile", p.cafile.as_str());

    let c = connect(&url, &[ca, ("ssl.ciphers", "TLS_CHACHA20_POLY1305_SHA256")]).unwrap();
    round_trip(&c);
    assert_eq!(c.suite().as_deref(), Some("TLS_CHACHA20_POLY1305_SHA256"));
    drop(c);
    // Only a TLS 1.2 suite listed: TLS 1.2 is used.
    let c = connect(&url, &[ca, ("ssl.ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305")]).unwrap();
    round_trip(&c);
    assert_eq!(c.version().as_deref(), Some("TLSv1.2"));
    assert_eq!(c.suite().as_deref(), Some("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"));
    drop(c);
    let c = connect(&url, &[ca, ("ssl.max_version", "1.2")]).unwrap();
    round_trip(&c);
    assert_eq!(c.version().as_deref(), Some("TLSv1.2"));
    drop(c);
    let c = connect(&url, &[ca, ("ssl.min_version", "1.3")]).unwrap();
    round_trip(&c);
    assert_eq!(c.version().as_deref(), Some("TLSv1.3"));
    drop(c);
    // A suite the server's certificate cannot use (RSA suite, ECDSA certificate).
    let m = expect_err(&url, &[ca, ("ssl.ciphers", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")], TU_E_TLS, "ssl.ciphers");
    assert!(m.contains("only insecure protocols or ciphers"), "{m}");
    server.join();

    // TLS 1.2-only server, ssl.min_version 1.3.
    let cfg12 = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: V12, alpn: &[], client_ca: None });
    let server = Local::start(1, cfg12, echo);
    expect_err(&format!("tls://localhost:{}", server.port), &[ca, ("ssl.min_version", "1.3")], TU_E_TLS, "TLS 1.3");
    server.join();
}

// ---------------------------------------------------------------------------
// Client certificates against openssl s_server -Verify

#[test]
fn client_certificates_against_s_server_verify() {
    let dir = temp_dir("clientauth");
    let p = pki();
    let (cert, key) = openssl_ec_server_files(&p);
    let client_ca = root_ca("client CA");
    let client = leaf(&client_ca, Spec { names: vec![], eku: vec![ExtendedKeyUsagePurpose::ClientAuth], cn: "tu client", ..Spec::default() });
    let client_ca_file = write(&dir, "client-ca.pem", &client_ca.pem);
    let client_cert = write(&dir, "client.pem", &client.pem);
    let client_key = write(&dir, "client.key", &client.key_pem);
    let combined = write(&dir, "combined.pem", format!("{}{}{}", client.key_pem, client.pem, client_ca.pem));
    // Encrypted PKCS#8 and the legacy encrypted form, made by openssl.
    openssl(&dir, &["pkcs8", "-topk8", "-in", "client.key", "-v2", "aes-256-cbc", "-passout", "pass:s3cret", "-out", "client-enc.key"]);
    openssl(&dir, &["ec", "-in", "client.key", "-aes256", "-passout", "pass:s3cret", "-out", "client-legacy.key"]);
    let enc = dir.join("client-enc.key").to_str().unwrap().to_string();
    let legacy = dir.join("client-legacy.key").to_str().unwrap().to_string();
    let other = leaf(&client_ca, Spec { names: vec![], eku: vec![ExtendedKeyUsagePurpose::ClientAuth], ..Spec::default() });
    let other_key = write(&dir, "other.key", &other.key_pem);

    let server = s_server(&dir, &["-cert", &cert, "-key", &key, "-Verify", "1", "-CAfile", &client_ca_file]);
    let url13 = format!("tls://localhost:{}", server.port);
    let url12 = format!("tlsv1.2://localhost:{}", server.port);
    let ca = ("ssl.cafile", p.cafile.as_str());

    for opts in [
        vec![ca, ("ssl.local_cert", client_cert.as_str()), ("ssl.local_pk", client_key.as_str())],
        vec![ca, ("ssl.local_cert", combined.as_str())],
        vec![ca, ("ssl.local_cert", client_cert.as_str()), ("ssl.local_pk", enc.as_str()), ("ssl.passphrase", "s3cret")],
    ] {
        for url in [&url13, &url12] {
            let c = connect(url, &opts).unwrap();
            c.write_all(b"client cert\n");
            assert_eq!(c.read_line(), "trec tneilc\n", "{url} {opts:?}");
        }
    }
    // No certificate: TLS 1.2 fails in the handshake; TLS 1.3 on the first read
    // (the server judges the client's certificate after the client finished).
    expect_err(&url12, &[ca], TU_E_TLS, "requires a client certificate");
    let c = connect(&url13, &[ca]).unwrap();
    c.write_all(b"x\n");
    let (code, m) = c.try_read().unwrap_err();
    assert_eq!(code, TU_E_TLS);
    assert!(m.contains("client certificate"), "{m}");
    drop(c);
    // Key problems are reported at connect, naming the option.
    expect_err(&url13, &[ca, ("ssl.local_cert", &client_cert), ("ssl.local_pk", &enc)], TU_E_INVALID_ARGUMENT, "ssl.passphrase");
    expect_err(&url13, &[ca, ("ssl.local_cert", &client_cert), ("ssl.local_pk", &enc), ("ssl.passphrase", "wrong")], TU_E_INVALID_ARGUMENT, "wrong passphrase");
    expect_err(&url13, &[ca, ("ssl.local_cert", &client_cert), ("ssl.local_pk", &legacy), ("ssl.passphrase", "s3cret")], TU_E_INVALID_ARGUMENT, "pkcs8");
    expect_err(&url13, &[ca, ("ssl.local_cert", &client_cert), ("ssl.local_pk", &other_key)], TU_E_INVALID_ARGUMENT, "do not match");
    drop(server);

    // A client certificate from a CA the server does not trust.
    let stranger_ca = root_ca("stranger CA");
    let stranger = leaf(&stranger_ca, Spec { names: vec![], eku: vec![ExtendedKeyUsagePurpose::ClientAuth], ..Spec::default() });
    let sc = write(&dir, "stranger.pem", &stranger.pem);
    let sk = write(&dir, "stranger.key", &stranger.key_pem);
    let server = s_server(&dir, &["-cert", &cert, "-key", &key, "-Verify", "1", "-CAfile", &client_ca_file, "-verify_return_error", "-tls1_2"]);
    expect_err(&format!("tls://localhost:{}", server.port), &[ca, ("ssl.local_cert", &sc), ("ssl.local_pk", &sk)], TU_E_TLS, "rejected our client certificate");
}

#[test]
fn client_certificate_seen_by_a_rustls_server() {
    let p = pki();
    let dir = temp_dir("clientauth-rustls");
    let client_ca = root_ca("rustls client CA");
    let client = leaf(&client_ca, Spec { names: vec![], eku: vec![ExtendedKeyUsagePurpose::ClientAuth], cn: "tu rustls client", ..Spec::default() });
    let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: Some(&client_ca.der) });
    let expected = client.der.clone();
    let server = Local::start(1, cfg, move |tls| {
        let seen = tls.conn.peer_certificates().map(|c| c[0].as_ref() == expected.as_slice()).unwrap_or(false);
        echo(tls);
        format!("client cert seen: {seen}")
    });
    let c = connect(
        &format!("tls://localhost:{}", server.port),
        &[("ssl.cafile", &p.cafile), ("ssl.local_cert", &write(&dir, "c.pem", &client.pem)), ("ssl.local_pk", &write(&dir, "c.key", &client.key_pem))],
    )
    .unwrap();
    round_trip(&c);
    drop(c);
    assert_eq!(server.join(), vec!["client cert seen: true"]);
}

// ---------------------------------------------------------------------------
// Key logging

fn check_keylog(path: &Path, tls12: bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let labels: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "NSS format is LABEL CLIENT_RANDOM SECRET: {line}");
        assert_eq!(parts[1].len(), 64, "32-byte client random in hex: {line}");
        assert!(parts[1].bytes().chain(parts[2].bytes()).all(|b| b.is_ascii_hexdigit()));
    }
    if tls12 {
        assert!(labels.contains(&"CLIENT_RANDOM"), "{text}");
    } else {
        for l in ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"] {
            assert!(labels.contains(&l), "{l} missing in {text}");
        }
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o077, 0, "secrets are not readable by others");
}

#[test]
fn keylog_option_writes_nss_lines() {
    let p = pki();
    let dir = temp_dir("keylog");
    let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: None });
    let server = Local::start(2, cfg, echo);
    for (scheme, tls12) in [("tls", false), ("tlsv1.2", true)] {
        let log = dir.join(format!("{scheme}.log"));
        let c = connect(&format!("{scheme}://localhost:{}", server.port), &[("ssl.cafile", &p.cafile), ("ssl.keylog", log.to_str().unwrap())]).unwrap();
        round_trip(&c);
        drop(c);
        check_keylog(&log, tls12);
    }
    server.join();
}

/// SSLKEYLOGFILE is read by a child process of this test binary, so that
/// the variable never changes under the other tests' feet.
#[test]
fn sslkeylogfile_environment_is_honoured() {
    let dir = temp_dir("keylog-env");
    let log = dir.join("env.log");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "keylog_env_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("SSLKEYLOGFILE", &log)
        .env("TU_KEYLOG_CHILD", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    check_keylog(&log, false);
}

#[test]
#[ignore = "run by sslkeylogfile_environment_is_honoured with SSLKEYLOGFILE set"]
fn keylog_env_child() {
    if std::env::var_os("TU_KEYLOG_CHILD").is_none() {
        return;
    }
    let p = pki();
    let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: None });
    let server = Local::start(1, cfg, echo);
    let c = connect(&format!("tls://localhost:{}", server.port), &[("ssl.cafile", &p.cafile)]).unwrap();
    round_trip(&c);
    drop(c);
    server.join();
}

// ---------------------------------------------------------------------------
// Turning TLS off (TU_CRYPTO_NONE)

/// STARTTLS, then CCC: the server answers "200 CCC", waits for our
/// close_notify, then sends `late` bytes over TLS, its close_notify and a
/// plaintext line, all in ONE write. With `peer_first`, it sends "200 CCC",
/// its close_notify and the plaintext in one write at once, before ours.
fn ccc_server(p: &Pki, late: usize, peer_first: bool) -> (u16, JoinHandle<String>) {
    let cfg = rustls_config(ServerSetup { chain: vec![p.leaf.der.clone()], key_pem: &p.leaf.key_pem, versions: BOTH, alpn: &[], client_ca: None });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(LIMIT)).unwrap();
        sock.write_all(b"220 ready\r\n").unwrap();
        let mut line = [0u8; 10];
        sock.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"STARTTLS\r\n");
        sock.write_all(b"220 go\r\n").unwrap();
        let mut conn = rustls::ServerConnection::new(cfg).unwrap();
        conn.set_buffer_limit(None);
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).unwrap();
        }
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut cmd = [0u8; 4];
        tls.read_exact(&mut cmd).unwrap();
        assert_eq!(&cmd, b"CCC\n");
        let mut out = Vec::new();
        if peer_first {
            conn.writer().write_all(b"200 CCC\n").unwrap();
        } else {
            tls.write_all(b"200 CCC\n").unwrap();
            // Wait for the client's close_notify.
            let mut buf = [0u8; 64];
            loop {
                match tls.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => panic!("server: {e}"),
                }
            }
            let payload: Vec<u8> = (0..late).map(|i| b'a' + (i % 26) as u8).collect();
            conn.writer().write_all(&payload).unwrap();
        }
        conn.send_close_notify();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        out.extend_from_slice(b"PLAIN AFTER CCC\r\n");
        sock.write_all(&out).unwrap(); // one write: [data] close_notify plaintext
        if peer_first {
            // The client's close_notify comes now, and its plaintext may
            // follow at once: hand rustls exactly one record at a time.
            loop {
                let mut header = [0u8; 5];
                sock.read_exact(&mut header).unwrap();
                let mut record = header.to_vec();
                record.resize(5 + u16::from_be_bytes([header[3], header[4]]) as usize, 0);
                sock.read_exact(&mut record[5..]).unwrap();
                conn.read_tls(&mut record.as_slice()).unwrap();
                if conn.process_new_packets().unwrap().peer_has_closed() {
                    break;
                }
            }
        }
        // Plaintext from the client after its close_notify.
        let mut rest = Vec::new();
        let mut b = [0u8; 1];
        while !rest.ends_with(b"\n") {
            if sock.read(&mut b).unwrap() == 0 {
                break;
            }
            rest.push(b[0]);
        }
        sock.write_all(b"plain:").unwrap();
        sock.write_all(&rest).unwrap();
        String::from_utf8_lossy(&rest).into_owned()
    });
    (port, t)
}

fn starttls(c: &Conn) {
    assert_eq!(c.read_line(), "220 ready\r\n");
    c.write_all(b"STARTTLS\r\n");
    assert_eq!(c.read_line(), "220 go\r\n");
    let (rc, m) = c.enable(TU_CRYPTO_ANY);
    assert_eq!(rc, TU_OK, "{m}");
}

#[test]
fn crypto_none_keeps_every_byte_against_rustls() {
    let p = pki();
    for (late, peer_first) in [(0, false), (100_000, false), (0, true)] {
        let (port, server) = ccc_server(&p, late, peer_first);
        let c = connect(&format!("tcp://localhost:{port}"), &[("ssl.cafile", &p.cafile)]).unwrap();
        starttls(&c);
        assert_eq!(c.version().as_deref(), Some("TLSv1.3"));
        c.write_all(b"CCC\n");
        assert_eq!(c.read_line(), "200 CCC\n");
        let (rc, m) = c.enable(TU_CRYPTO_NONE);
        assert_eq!(rc, TU_OK, "{m}");
        assert_eq!(c.version(), None, "TLS is off");
        assert_eq!(c.resumed(), -1);
        let data = c.read_exact(late);
        assert!(data.iter().enumerate().all(|(i, &b)| b == b'a' + (i % 26) as u8), "TLS data sent before close_notify arrives in order");
        assert_eq!(c.read_line(), "PLAIN AFTER CCC\r\n", "late {late} peer_first {peer_first}");
        c.write_all(b"hello in the clear\n");
        assert_eq!(c.read_line(), "plain:hello in the clear\n");
        assert_eq!(server.join().unwrap(), "hello in the clear\n");
        // Off twice: not on.
        assert_eq!(c.enable(TU_CRYPTO_NONE).0, TU_E_STATE);
    }
}

#[test]
fn crypto_none_against_cpython_memory_bio_server() {
    let p = pki();
    let (cert, key) = openssl_ec_server_files(&p);
    let server = py_server(&format!(r#"{{"cert": "{cert}", "key": "{key}", "starttls": true}}"#));
    for round in 0..2 {
        let c = connect(&format!("tcp://localhost:{}", server.port), &[("ssl.cafile", &p.cafile)]).unwrap();
        starttls(&c);
        assert_eq!(c.resumed(), round, "the STARTTLS session resumes too");
        c.write_all(b"CCC\n");
        assert_eq!(c.read_line(), "200 CCC\n");
        let (rc, m) = c.enable(TU_CRYPTO_NONE);
        assert_eq!(rc, TU_OK, "{m}");
        assert_eq!(c.read_line(), "PLAIN AFTER CCC\r\n");
        c.write_all(b"clear text\n");
        assert_eq!(c.read_line(), "plain:clear text\n");
    }
}
