//! Real peers for the Rust integration tests: certificates made with rcgen
//! at test time, and TLS / plaintext servers on 127.0.0.1 port 0 running in
//! threads. Every server socket has timeouts, so no test can hang.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const IO_LIMIT: Duration = Duration::from_secs(10);

/// A fresh directory under the system temp dir for this test process.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tu-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CA and the PEM file that trusts it.
pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    pub pem_path: PathBuf,
}

pub fn ca() -> Ca {
    ca_named("transporturl test CA")
}

/// A CA with its own name (CAs that share a name confuse issuer lookup).
pub fn ca_named(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    let dir = temp_dir("ca");
    let pem_path = dir.join("ca.pem");
    std::fs::write(&pem_path, &pem).unwrap();
    Ca { issuer: Issuer::new(params, key), pem, pem_path }
}

/// Which leaf to make.
#[derive(Clone, Copy, Debug)]
pub enum Leaf {
    /// localhost, 127.0.0.1, ::1; valid now.
    Good,
    Expired,
    NotYetValid,
    /// Only for wrong.example.
    WrongName,
}

pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

pub fn leaf(ca: &Ca, kind: Leaf) -> ServerCert {
    let names: Vec<String> = match kind {
        Leaf::WrongName => vec!["wrong.example".into()],
        _ => vec!["localhost".into()],
    };
    let mut params = CertificateParams::new(names).unwrap();
    if !matches!(kind, Leaf::WrongName) {
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.subject_alt_names.push(SanType::IpAddress("::1".parse().unwrap()));
    }
    params.distinguished_name.push(DnType::CommonName, "transporturl test server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time_now();
    match kind {
        Leaf::Expired => {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        Leaf::NotYetValid => {
            params.not_before = rcgen::date_time_ymd(now + 5, 1, 1);
            params.not_after = rcgen::date_time_ymd(now + 6, 1, 1);
        }
        _ => {}
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    ServerCert {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn time_now() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    1970 + (secs / 31_556_952) as i32
}

pub fn server_config(cert: ServerCert) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(cert.chain, cert.key)
            .unwrap(),
    )
}

pub fn server_config_versions(
    cert: ServerCert,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(cert.chain, cert.key)
            .unwrap(),
    )
}

/// A server on 127.0.0.1 (or ::1) that runs `serve` for each of the next
/// `count` connections, one at a time, in a thread.
pub struct Server {
    pub port: u16,
    pub thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start<F>(count: usize, serve: F) -> Server
    where
        F: Fn(TcpStream) + Send + 'static,
    {
        Server::start_on("127.0.0.1:0", count, serve)
    }

    pub fn start_on<F>(addr: &str, count: usize, serve: F) -> Server
    where
        F: Fn(TcpStream) + Send + 'static,
    {
        let listener = TcpListener::bind(addr).unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            for _ in 0..count {
                let Ok((stream, _)) = listener.accept() else { return };
                stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
                stream.set_write_timeout(Some(IO_LIMIT)).unwrap();
                serve(stream);
            }
        });
        Server { port, thread: Some(thread) }
    }

    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread panicked");
        }
    }
}

/// Runs a TLS server handshake on `stream` and returns the stream, or None
/// if the handshake failed (as many tests intend).
pub fn accept_tls(
    config: &Arc<rustls::ServerConfig>,
    stream: TcpStream,
) -> Option<rustls::StreamOwned<rustls::ServerConnection, TcpStream>> {
    let conn = rustls::ServerConnection::new(config.clone()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return None;
        }
    }
    Some(tls)
}

/// Echoes until EOF, then answers with close_notify (if `notify`).
pub fn echo_tls(config: Arc<rustls::ServerConfig>, notify: bool) -> impl Fn(TcpStream) + Send + 'static {
    move |stream| {
        let Some(mut tls) = accept_tls(&config, stream) else { return };
        let mut buf = [0u8; 16384];
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tls.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        if notify {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

/// Plain TCP echo until EOF.
pub fn echo_plain(mut stream: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads one CRLF-terminated line, byte by byte (never past it).
pub fn read_line(stream: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") && line.len() < 4096 {
        match stream.read(&mut b) {
            Ok(1) => line.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}
