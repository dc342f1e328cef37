//! TLS through rustls: configs (cached per option set, so sessions resume),
//! roots (loaded once, lazily), certificate verifiers, error messages, and
//! the record-exact receive path.
//!
//! Received bytes go into a buffer of our own and rustls is handed whole
//! records only. That lets us (a) look at the first bytes before rustls does
//! and recognise a plaintext peer, and (b) stop right after the peer's
//! close_notify, leaving whatever follows it untouched.

use crate::error::{Error, Result, TU_E_CERTIFICATE, TU_E_INVALID_ARGUMENT, TU_E_PLAINTEXT_PEER, TU_E_PROTOCOL, TU_E_TLS};
use crate::net::{self, NoSigPipe, Want};
use crate::options::TlsOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use socket2::Socket;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Which TLS versions a connection may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Versions {
    /// TLS 1.2 or 1.3.
    Any,
    Tls12,
    Tls13,
}

impl Versions {
    fn list(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static ANY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
        static V12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        static V13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        match self {
            Versions::Any => ANY,
            Versions::Tls12 => V12,
            Versions::Tls13 => V13,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

/// The operating system's roots, loaded on first use (so that a program may
/// set `SSL_CERT_FILE` after loading the library) and then kept.
fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: Mutex<Option<Arc<RootCertStore>>> = Mutex::new(None);
    let mut cached = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(roots) = cached.as_ref() {
        return Ok(roots.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let why: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        return Err(Error::new(
            TU_E_CERTIFICATE,
            format!(
                "no trusted root certificates found in the system store{}; set ssl.cafile, or SSL_CERT_FILE / SSL_CERT_DIR",
                if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) }
            ),
        ));
    }
    let roots = Arc::new(store);
    *cached = Some(roots.clone());
    Ok(roots)
}

/// Reads every PEM certificate in `path`; at least one must be there.
pub fn load_pem_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| Error::new(TU_E_INVALID_ARGUMENT, format!("option {key}: '{}': {why}", path.display()));
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = iter.collect::<std::result::Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into()));
    }
    Ok(certs)
}

fn roots_for(opts: &TlsOptions) -> Result<Arc<RootCertStore>> {
    match &opts.cafile {
        None => system_roots(),
        Some(path) => {
            let mut store = RootCertStore::empty();
            for cert in load_pem_certs("ssl.cafile", path)? {
                store.add(cert).map_err(|e| {
                    Error::new(TU_E_INVALID_ARGUMENT, format!("option ssl.cafile: '{}': {e}", path.display()))
                })?;
            }
            Ok(Arc::new(store))
        }
    }
}

/// The shared client config for these settings. Configs are cached, so
/// roots are not rebuilt per connection and sessions resume.
pub fn client_config(opts: &TlsOptions, versions: Versions) -> Result<Arc<ClientConfig>> {
    type Cache = HashMap<(TlsOptions, Versions), Arc<ClientConfig>>;
    static CONFIGS: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CONFIGS.get_or_init(Default::default);
    let key = (opts.clone(), versions);
    if let Some(cfg) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(cfg.clone());
    }
    let cfg = Arc::new(build_config(opts, versions)?);
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, cfg.clone());
    Ok(cfg)
}

fn build_config(opts: &TlsOptions, versions: Versions) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions.list())
        .map_err(|e| Error::new(TU_E_TLS, format!("TLS configuration: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if !opts.verify_peer {
        Arc::new(AcceptAnyCertificate(provider))
    } else {
        let roots = roots_for(opts)?;
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::new(TU_E_TLS, format!("TLS configuration: {e}")))?;
        if opts.verify_peer_name {
            webpki
        } else {
            Arc::new(IgnoreName(webpki))
        }
    };
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

/// `ssl.verify_peer_name=false`: the chain is verified, the name is not.
#[derive(Debug)]
struct IgnoreName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `ssl.verify_peer=false`: any certificate is accepted (the handshake
/// signatures are still checked, so the peer holds the key it shows).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server name to verify and send as SNI (IP literals send no SNI).
pub fn server_name(name: &str) -> Result<ServerName<'static>> {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    // A zone is meaningless in a certificate: verify the address alone.
    let bare = bare.split('%').next().unwrap_or(bare);
    ServerName::try_from(bare.to_string())
        .map_err(|_| Error::invalid(format!("'{name}' cannot be used as a TLS server name")))
}

// ---------------------------------------------------------------------------
// Error messages

fn human_time(t: &UnixTime) -> String {
    let secs = t.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn name_text(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => format!("{n:?}"),
    }
}

/// A message for a certificate failure that says which one.
fn certificate_message(e: &CertificateError, expected: &str) -> String {
    match e {
        CertificateError::Expired => "the server's certificate has expired".into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server's certificate has expired (valid until {}, now {})",
            human_time(not_after),
            human_time(time)
        ),
        CertificateError::NotValidYet => "the server's certificate is not yet valid".into(),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the server's certificate is not yet valid (valid from {}, now {})",
            human_time(not_before),
            human_time(time)
        ),
        CertificateError::NotValidForName => {
            format!("certificate name mismatch: the server's certificate is not valid for '{expected}'")
        }
        CertificateError::NotValidForNameContext { expected, presented } => format!(
            "certificate name mismatch: expected '{}', but the server's certificate is valid for {}; \
             set ssl.peer_name if the server is known under another name",
            name_text(expected),
            if presented.is_empty() { "no names".to_string() } else { presented.join(", ") }
        ),
        CertificateError::UnknownIssuer => format!(
            "the server's certificate for '{expected}' was issued by an unknown issuer (not trusted by {}); \
             a self-signed certificate or a missing intermediate certificate also looks like this",
            "the configured roots: ssl.cafile or the system store"
        ),
        CertificateError::BadSignature => "the server's certificate has a bad signature".into(),
        CertificateError::BadEncoding => "the server's certificate could not be parsed (bad encoding)".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not valid for TLS server authentication (extended key usage)".into()
        }
        CertificateError::UnhandledCriticalExtension => {
            "the server's certificate has an unsupported critical extension".into()
        }
        CertificateError::Revoked => "the server's certificate has been revoked".into(),
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "the server's certificate uses an unsupported or insecure signature algorithm (e.g. SHA-1, RSA < 2048 bits)"
                .into()
        }
        other => format!("the server's certificate was rejected: {other:?}"),
    }
}

/// Maps a rustls error to a code and a message a person can act on.
pub fn map_error(e: &rustls::Error, expected_name: &str) -> Error {
    use rustls::{AlertDescription as A, Error as E};
    match e {
        E::InvalidCertificate(ce) => Error::new(TU_E_CERTIFICATE, certificate_message(ce, expected_name)),
        E::AlertReceived(a @ (A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity)) => Error::new(
            TU_E_TLS,
            format!(
                "the server refused the TLS handshake (alert {a:?}): it likely offers only insecure protocols or \
                 ciphers (SSL 3, TLS 1.0/1.1, CBC or DHE-only suites), which this library refuses; TLS 1.2 or 1.3 \
                 with an ECDHE AEAD suite is required"
            ),
        ),
        E::AlertReceived(a) => Error::new(TU_E_TLS, format!("the server sent a fatal TLS alert: {a:?}")),
        E::PeerIncompatible(p) => Error::new(
            TU_E_TLS,
            format!(
                "the server is incompatible ({p:?}): it likely offers only insecure protocols or ciphers, which \
                 this library refuses; TLS 1.2 or 1.3 is required"
            ),
        ),
        E::PeerMisbehaved(p) => Error::new(TU_E_TLS, format!("the server broke the TLS protocol: {p:?}")),
        E::InvalidMessage(m) => Error::new(TU_E_TLS, format!("the server sent an invalid TLS message: {m:?}")),
        other => Error::new(TU_E_TLS, format!("TLS failure: {other}")),
    }
}

/// The printable start of `bytes` (one line, at most 80 characters).
fn quote(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let mut s: String = line
        .iter()
        .take(80)
        .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
        .collect();
    while s.ends_with('.') && line.last() == Some(&b'\r') {
        s.pop();
    }
    if line.len() > 80 {
        s.push('…');
    }
    s
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(16)];
    !head.is_empty() && head.iter().all(|&b| b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The error for bytes that are not TLS where TLS was expected.
fn plaintext_error(bytes: &[u8], starttls: bool) -> Error {
    let q = quote(bytes);
    if starttls {
        return Error::new(
            TU_E_PROTOCOL,
            format!(
                "plaintext arrived during the STARTTLS handshake (\"{q}\"): bytes sent after the server's \
                 go-ahead may have been injected; the connection is not usable"
            ),
        );
    }
    if !looks_like_text(bytes) {
        return Error::new(TU_E_TLS, format!("the server did not answer with TLS (first bytes: \"{q}\")"));
    }
    Error::new(
        TU_E_PLAINTEXT_PEER,
        format!(
            "the server answered in plaintext, not TLS: \"{q}\". This port expects a plaintext protocol first: \
             connect with tcp:// and call tu_enable_crypto after the protocol's STARTTLS command (SMTP port 587 \
             or 25), or use the implicit-TLS port instead (465 for SMTP, 993 IMAP, 995 POP3, 443 HTTPS)"
        ),
    )
}

/// The error for plaintext already waiting when a STARTTLS upgrade begins.
pub fn injected_error(bytes: &[u8], count: u64) -> Error {
    Error::new(
        TU_E_PROTOCOL,
        format!(
            "{count} plaintext byte(s) were already waiting when the TLS upgrade began (\"{}\"): a server must \
             send nothing after its STARTTLS go-ahead, so these may have been injected; refusing to upgrade, the \
             connection is not usable",
            quote(bytes)
        ),
    )
}

// ---------------------------------------------------------------------------
// The session

const HEADER: usize = 5;
/// The largest record a peer may send: 2^14 plus the TLS 1.2 expansion.
const MAX_RECORD: usize = HEADER + 16_384 + 2_048;

/// The length of the record at the start of `b`: `Ok(Some(n))` when whole,
/// `Ok(None)` when more bytes are needed, `Err(())` when `b` is no record.
fn record_len(b: &[u8]) -> std::result::Result<Option<usize>, ()> {
    if b.is_empty() {
        return Ok(None);
    }
    if !(20..=23).contains(&b[0]) || (b.len() > 1 && b[1] != 3) {
        return Err(());
    }
    if b.len() < HEADER {
        return Ok(None);
    }
    let len = HEADER + u16::from_be_bytes([b[3], b[4]]) as usize;
    if len > MAX_RECORD {
        return Err(());
    }
    Ok(if b.len() >= len { Some(len) } else { None })
}

/// Raw bytes from the socket that rustls has not seen yet.
struct RecvBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    fn new() -> Self {
        RecvBuf { data: vec![0; 2 * MAX_RECORD], start: 0, end: 0 }
    }
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
    /// One `recv` into the free space: Ok(0) at EOF.
    fn fill(&mut self, sock: &Socket) -> io::Result<usize> {
        if self.data.len() - self.end < MAX_RECORD {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let (n, _) = net::recv(sock, &mut self.data[self.end..], false)?;
        self.end += n;
        Ok(n)
    }
}

/// What a non-blocking step needs before it can go on.
pub type Blocked = Want;

/// One TLS session on a socket: the rustls state plus our receive buffer.
pub struct Session {
    conn: ClientConnection,
    buf: RecvBuf,
    eof: bool,
    starttls: bool,
    name: String,
    seen_first: bool,
    closed: bool,
    sent_close: bool,
    failed: Option<Error>,
}

impl Session {
    pub fn new(config: Arc<ClientConfig>, name: &str, starttls: bool) -> Result<Self> {
        let server = server_name(name)?;
        let conn = ClientConnection::new(config, server).map_err(|e| map_error(&e, name))?;
        Ok(Session { conn, buf: RecvBuf::new(), eof: false, starttls, name: name.to_string(), seen_first: false, closed: false, sent_close: false, failed: None })
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e.clone());
        e
    }

    /// Sends what rustls has queued. `Ok(false)`: the socket is full.
    pub fn flush(&mut self, sock: &Socket) -> Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut NoSigPipe(sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(self.fail(net::os_error("TLS send", e))),
            }
        }
        Ok(true)
    }

    /// Hands rustls the whole records in our buffer, stopping after the
    /// peer's close_notify (what follows it is not TLS) and while decrypted
    /// data waits to be read.
    fn feed(&mut self, sock: &Socket) -> Result<bool> {
        let mut progressed = false;
        loop {
            if self.conn.wants_write() {
                // Alerts or key-update answers: send what fits, never block here.
                self.flush(sock)?;
            }
            if self.peer_closed() || !self.conn.wants_read() {
                return Ok(progressed);
            }
            let avail = self.buf.bytes();
            let len = match record_len(avail) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(progressed),
                Err(()) => {
                    if !self.seen_first {
                        let e = plaintext_error(avail, self.starttls);
                        return Err(self.fail(e));
                    }
                    let e = Error::new(TU_E_TLS, format!("the peer sent bytes that are not TLS (\"{}\")", quote(avail)));
                    return Err(self.fail(e));
                }
            };
            self.seen_first = true;
            let mut record = &self.buf.data[self.buf.start..self.buf.start + len];
            while !record.is_empty() {
                match self.conn.read_tls(&mut record) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let e = Error::new(TU_E_TLS, format!("TLS receive: {e}"));
                        return Err(self.fail(e));
                    }
                }
            }
            let used = len - record.len();
            self.buf.consume(used);
            progressed = true;
            match self.conn.process_new_packets() {
                Ok(state) => self.closed = state.peer_has_closed(),
                Err(e) => {
                    let _ = self.flush(sock); // the alert, best effort
                    let e = map_error(&e, &self.name);
                    return Err(self.fail(e));
                }
            }
        }
    }

    /// The peer's close_notify has been processed.
    pub fn peer_closed(&self) -> bool {
        self.closed
    }

    /// Receives once and processes what came. `Ok(false)`: nothing to read now.
    fn receive(&mut self, sock: &Socket) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        match self.buf.fill(sock) {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(_) => {
                self.feed(sock)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(self.fail(net::os_error("TLS receive", e))),
        }
    }

    /// Drives the handshake without blocking: `Ok(None)` when it is done,
    /// `Ok(Some(want))` when the socket must become ready first.
    pub fn handshake_step(&mut self, sock: &Socket) -> Result<Option<Blocked>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            if !self.flush(sock)? {
                return Ok(Some(Want::Write));
            }
            if !self.conn.is_handshaking() {
                return Ok(None);
            }
            self.feed(sock)?;
            if !self.conn.is_handshaking() {
                continue;
            }
            if self.eof {
                let e = if !self.seen_first && !self.buf.bytes().is_empty() {
                    plaintext_error(self.buf.bytes(), self.starttls)
                } else {
                    Error::new(TU_E_TLS, "the server closed the connection during the TLS handshake")
                };
                return Err(self.fail(e));
            }
            if !self.receive(sock)? {
                return Ok(Some(Want::Read));
            }
        }
    }

    /// Reads decrypted bytes without blocking: `Ok(Some(n))` (0 = close_notify
    /// received), `Ok(None)` when nothing can be read yet.
    pub fn read_step(&mut self, sock: &Socket, out: &mut [u8]) -> Result<Option<usize>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            match self.conn.reader().read(out) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Error::new(
                        crate::error::TU_E_TRUNCATED,
                        "the peer closed the TLS connection without close_notify: the data may be truncated",
                    ))
                }
                Err(e) => return Err(self.fail(Error::new(TU_E_TLS, format!("TLS read: {e}")))),
            }
            if self.feed(sock)? {
                continue;
            }
            if self.eof {
                if !self.buf.bytes().is_empty() && !self.peer_closed() {
                    return Err(Error::new(
                        crate::error::TU_E_TRUNCATED,
                        "the peer closed the connection in the middle of a TLS record: the data is truncated",
                    ));
                }
                // Tell rustls about the end of the stream; the reader then
                // reports close_notify (0) or its absence (truncation).
                let _ = self.conn.read_tls(&mut io::empty());
                let _ = self.conn.process_new_packets();
                match self.conn.reader().read(out) {
                    Ok(n) => return Ok(Some(n)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(Error::new(
                            crate::error::TU_E_TRUNCATED,
                            "the peer closed the TLS connection without close_notify: the data may be truncated",
                        ))
                    }
                    Err(e) => return Err(self.fail(Error::new(TU_E_TLS, format!("TLS read: {e}")))),
                }
            }
            if !self.receive(sock)? {
                return Ok(None);
            }
        }
    }

    /// Encrypts as much of `data` as rustls takes and sends what it can.
    /// Returns the bytes taken; `Ok((n, Some(Want::Write)))` when the
    /// socket is full.
    pub fn write_step(&mut self, sock: &Socket, data: &[u8]) -> Result<(usize, Option<Blocked>)> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.flush(sock)? {
            return Ok((0, Some(Want::Write)));
        }
        let n = self.conn.writer().write(data).map_err(|e| Error::new(TU_E_TLS, format!("TLS write: {e}")))?;
        if !self.flush(sock)? {
            return Ok((n, Some(Want::Write)));
        }
        Ok((n, None))
    }

    /// Queues close_notify (once) and sends what the socket takes now.
    /// `Ok(false)`: some of it is still queued.
    pub fn close_notify(&mut self, sock: &Socket) -> Result<bool> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.sent_close {
            self.conn.send_close_notify();
            self.sent_close = true;
        }
        self.flush(sock)
    }

    /// One non-blocking step of turning TLS off (`TU_CRYPTO_NONE`): send our
    /// close_notify, then read until the peer's. Decrypted data that comes
    /// before it, and the raw bytes after it (plaintext again), are appended
    /// to `plain`, in order, so nothing is lost. `Ok(None)` when done.
    pub fn off_step(&mut self, sock: &Socket, plain: &mut Vec<u8>) -> Result<Option<Blocked>> {
        if !self.close_notify(sock)? {
            return Ok(Some(Want::Write));
        }
        let mut chunk = [0u8; 4096];
        loop {
            loop {
                match self.conn.reader().read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
            if self.closed {
                plain.extend_from_slice(self.buf.bytes());
                let n = self.buf.bytes().len();
                self.buf.consume(n);
                return Ok(None);
            }
            if self.feed(sock)? {
                continue;
            }
            if self.eof {
                let e = Error::new(
                    crate::error::TU_E_TRUNCATED,
                    "the peer closed the connection without close_notify while TLS was being turned off",
                );
                return Err(self.fail(e));
            }
            if !self.receive(sock)? {
                return Ok(Some(Want::Read));
            }
        }
    }

    pub fn has_pending_output(&self) -> bool {
        self.conn.wants_write()
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// "TLSv1.3" or "TLSv1.2".
    pub fn version_name(&self) -> Option<&'static str> {
        match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            _ => None,
        }
    }

    /// The IANA name of the negotiated cipher suite.
    pub fn cipher_suite_name(&self) -> Option<&'static str> {
        let name = self.conn.negotiated_cipher_suite()?.suite().as_str()?;
        Some(match name.strip_prefix("TLS13_") {
            Some(rest) => iana_tls13(rest),
            None => name,
        })
    }
}

/// rustls names TLS 1.3 suites `TLS13_X`; IANA names them `TLS_X`.
fn iana_tls13(rest: &str) -> &'static str {
    match rest {
        "AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "AES_128_CCM_SHA256" => "TLS_AES_128_CCM_SHA256",
        "AES_128_CCM_8_SHA256" => "TLS_AES_128_CCM_8_SHA256",
        _ => "TLS_UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(record_len(b""), Ok(None));
        assert_eq!(record_len(&[22, 3]), Ok(None));
        assert_eq!(record_len(&[22, 3, 1, 0, 2, 9, 9]), Ok(Some(7)));
        assert_eq!(record_len(b"220 smtp ready"), Err(()));
        assert_eq!(record_len(&[23, 3, 3, 0xff, 0xff]), Err(()));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"220 mail.example ESMTP\r\nmore"), "220 mail.example ESMTP");
        assert!(looks_like_text(b"+OK POP3"));
        assert!(!looks_like_text(&[0x15, 0x03, 0x01]));
    }

    #[test]
    fn times() {
        assert_eq!(human_time(&UnixTime::since_unix_epoch(std::time::Duration::from_secs(0))), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            human_time(&UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000))),
            "2023-11-14 22:13:20 UTC"
        );
    }
}
