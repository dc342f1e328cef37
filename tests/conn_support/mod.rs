//! Peers for tests/connections.rs: a test CA and a leaf for localhost /
//! 127.0.0.1 / ::1 made with rcgen now, rustls servers over any stream
//! (TCP or Unix), and small helpers. Every server socket has time limits,
//! so no test can hang.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The longest any server-side read or write may wait.
pub const IO_LIMIT: Duration = Duration::from_secs(10);

/// A fresh directory for this test process.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("tu-conn-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test PKI, made once per process: the CA's PEM file and a server
/// config whose certificate is valid for localhost, 127.0.0.1 and ::1.
pub struct Pki {
    pub ca_path: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "transporturl connections test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_path = temp_dir("ca").join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.subject_alt_names.push(SanType::IpAddress("::1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, "transporturl test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let _: &CertificateDer<'_> = cert.der();
        Pki { ca_path, server: Arc::new(server) }
    })
}

/// A server-side TLS stream over any transport.
pub type TlsStream<S> = rustls::StreamOwned<rustls::ServerConnection, S>;

/// Runs the server handshake; None if it failed.
pub fn accept_tls<S: Read + Write>(stream: S) -> Option<TlsStream<S>> {
    let conn = rustls::ServerConnection::new(pki().server.clone()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return None;
        }
    }
    Some(tls)
}

/// Echoes until EOF or error; answers the client's close_notify with one.
pub fn echo<S: Read + Write>(s: &mut S) {
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
                let _ = s.flush();
            }
        }
    }
}

/// Echo over TLS, then close_notify.
pub fn echo_tls<S: Read + Write>(stream: S) {
    if let Some(mut tls) = accept_tls(stream) {
        echo(&mut tls);
        tls.conn.send_close_notify();
        let _ = tls.flush();
    }
}

/// The STARTTLS dance of a line protocol: reads `STARTTLS\r\n`, answers
/// `220 go ahead\r\n`, then echoes over TLS.
pub fn starttls_echo<S: Read + Write>(stream: S) {
    starttls_echo_after(stream, Duration::ZERO)
}

/// [`starttls_echo`], with the server's handshake starting `delay` after
/// its go-ahead (so that a non-blocking client surely has to wait).
pub fn starttls_echo_after<S: Read + Write>(mut stream: S, delay: Duration) {
    let line = read_line(&mut stream);
    if line != "STARTTLS\r\n" {
        return;
    }
    if stream.write_all(b"220 go ahead\r\n").is_err() {
        return;
    }
    std::thread::sleep(delay);
    echo_tls(stream);
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

/// Runs `serve` on each of the next `count` connections to a new
/// listener on `addr` ("127.0.0.1:0", "[::1]:0"), in a thread.
pub fn tcp_server<F>(addr: &str, count: usize, serve: F) -> (u16, std::thread::JoinHandle<()>)
where
    F: Fn(std::net::TcpStream) + Send + 'static,
{
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((s, _)) = listener.accept() else { return };
            s.set_read_timeout(Some(IO_LIMIT)).unwrap();
            s.set_write_timeout(Some(IO_LIMIT)).unwrap();
            serve(s);
        }
    });
    (port, t)
}

/// The same for a Unix stream listener at `path`.
pub fn unix_server<F>(path: &std::path::Path, count: usize, serve: F) -> std::thread::JoinHandle<()>
where
    F: Fn(std::os::unix::net::UnixStream) + Send + 'static,
{
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((s, _)) = listener.accept() else { return };
            s.set_read_timeout(Some(IO_LIMIT)).unwrap();
            s.set_write_timeout(Some(IO_LIMIT)).unwrap();
            serve(s);
        }
    })
}

/// A TCP listener on 127.0.0.1 that never accepts and whose backlog is
/// full: a further connect gets no answer (its SYN is dropped). The
/// fillers must be kept alive as long as the listener is used.
pub struct Blackhole {
    pub port: u16,
    _listener: socket2::Socket,
    _fillers: Vec<socket2::Socket>,
}

pub fn blackhole() -> Blackhole {
    use socket2::{Domain, SockAddr, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let port = addr.as_socket().unwrap().port();
    // Fill the queue until a connect stays pending (bounded).
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr);
        let mut fds = [rustix::event::PollFd::new(&s, rustix::event::PollFlags::OUT)];
        let ts = rustix::event::Timespec { tv_sec: 0, tv_nsec: 200_000_000 };
        let ready = rustix::event::poll(&mut fds, Some(&ts)).unwrap_or(0);
        fillers.push(s);
        if ready == 0 {
            return Blackhole { port, _listener: listener, _fillers: fillers };
        }
    }
    panic!("could not fill the backlog of a listener on 127.0.0.1");
}

/// A port on `ip` where nothing listens (bound and released).
pub fn closed_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}
