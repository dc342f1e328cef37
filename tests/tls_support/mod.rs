//! Helpers for tests/tls_full.rs: the C ABI behind a small safe wrapper,
//! certificates made at test time (rcgen, or the `openssl` command for what
//! rcgen cannot make: RSA-1024, SHA-1 signatures, encrypted keys), and real
//! peers run as child processes: `openssl s_server` and CPython `ssl`
//! servers. Everything listens on loopback, on a free port, and is killed
//! when dropped; every wait is bounded.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
use std::ffi::{c_char, CStr, CString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use transporturl::error::{code_name, TU_OK};
use transporturl::ffi::*;

pub const LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The C ABI

pub struct Conn(pub *mut tu_handle);
// SAFETY (test): a handle may move between threads.
unsafe impl Send for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        tu_close(self.0);
    }
}

pub fn new_error() -> tu_error {
    tu_error { code: -99, message: [b'x' as c_char; 512] }
}

pub fn message(e: &tu_error) -> String {
    let bytes: Vec<u8> = e.message.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8(bytes).expect("messages are UTF-8")
}

pub fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY (test): the library returns NUL-terminated static strings.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

impl Conn {
    pub fn write(&self, data: &[u8]) -> isize {
        tu_write(self.0, data.as_ptr().cast(), data.len())
    }
    pub fn read(&self, buf: &mut [u8]) -> isize {
        tu_read(self.0, buf.as_mut_ptr().cast(), buf.len())
    }
    pub fn write_all(&self, data: &[u8]) {
        let n = self.write(data);
        assert_eq!(n, data.len() as isize, "write: {}", self.last_error().1);
    }
    /// Reads until `n` bytes came (or EOF, which fails the test).
    pub fn read_exact(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while out.len() < n {
            let r = self.read(&mut buf[..(n - out.len()).min(65536)]);
            assert!(r > 0, "read returned {r}: {}", self.last_error().1);
            out.extend_from_slice(&buf[..r as usize]);
        }
        out
    }
    /// Reads up to and including the first `\n`.
    pub fn read_line(&self) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\n") {
            let r = self.read(&mut b);
            assert!(r > 0, "read returned {r} after {:?}: {}", String::from_utf8_lossy(&out), self.last_error().1);
            out.push(b[0]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    /// Reads one chunk: Ok(bytes) or Err((code, message)).
    pub fn try_read(&self) -> Result<Vec<u8>, (i32, String)> {
        let mut buf = vec![0u8; 65536];
        let r = self.read(&mut buf);
        if r >= 0 {
            Ok(buf[..r as usize].to_vec())
        } else {
            let (code, msg) = self.last_error();
            assert_eq!(-(code as isize), r);
            Err((code, msg))
        }
    }
    pub fn last_error(&self) -> (i32, String) {
        let mut e = new_error();
        let code = tu_last_error(self.0, &mut e);
        (code, message(&e))
    }
    pub fn enable(&self, method: i32) -> (i32, String) {
        let rc = tu_enable_crypto(self.0, method);
        if rc == TU_OK {
            (rc, String::new())
        } else {
            let (code, msg) = self.last_error();
            assert_eq!(code, rc);
            (rc, msg)
        }
    }
    pub fn version(&self) -> Option<String> {
        text(tu_tls_version(self.0))
    }
    pub fn suite(&self) -> Option<String> {
        text(tu_tls_cipher_suite(self.0))
    }
    pub fn group(&self) -> Option<String> {
        text(tu_tls_group(self.0))
    }
    pub fn resumed(&self) -> i32 {
        tu_tls_resumed(self.0)
    }
    pub fn verified(&self) -> i32 {
        tu_tls_peer_verified(self.0)
    }
    pub fn alpn(&self) -> Result<String, i32> {
        let mut buf = [0 as c_char; 256];
        let rc = tu_tls_alpn(self.0, buf.as_mut_ptr(), buf.len());
        if rc != TU_OK {
            return Err(rc);
        }
        Ok(text(buf.as_ptr()).unwrap())
    }
    pub fn sni(&self) -> Result<String, i32> {
        let mut buf = [0 as c_char; 256];
        let rc = tu_tls_sni(self.0, buf.as_mut_ptr(), buf.len());
        if rc != TU_OK {
            return Err(rc);
        }
        Ok(text(buf.as_ptr()).unwrap())
    }
    /// The captured DER of chain[index], or the negative code.
    pub fn peer_cert(&self, index: usize) -> Result<Vec<u8>, isize> {
        let size = tu_tls_peer_cert(self.0, index, std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(size);
        }
        let mut buf = vec![0u8; size as usize];
        let n = tu_tls_peer_cert(self.0, index, buf.as_mut_ptr().cast(), buf.len());
        assert_eq!(n, size);
        Ok(buf)
    }
}

/// Connects with options; Err((code, message)) on failure.
pub fn connect(url: &str, opts: &[(&str, &str)]) -> Result<Conn, (i32, String)> {
    let o = tu_options_new();
    for (k, v) in opts {
        let (ck, cv) = (CString::new(*k).unwrap(), CString::new(*v).unwrap());
        let mut e = new_error();
        assert_eq!(tu_options_set(o, ck.as_ptr(), cv.as_ptr(), &mut e), TU_OK, "{k}={v}: {}", message(&e));
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
        Ok(Conn(h))
    }
}

/// Connects and expects the code, with `word` in the message (any case).
pub fn expect_err(url: &str, opts: &[(&str, &str)], code: i32, word: &str) -> String {
    let started = std::time::Instant::now();
    match connect(url, opts) {
        Ok(_) => panic!("{url}: connected, expected {}", code_name(code).unwrap()),
        Err((c, m)) => {
            assert!(started.elapsed() < Duration::from_secs(20), "{url}: took {:?}", started.elapsed());
            assert_eq!(c, code, "{url}: got {} ({m}), expected {}", code_name(c).unwrap_or("?"), code_name(code).unwrap());
            assert!(m.to_lowercase().contains(&word.to_lowercase()), "{url}: message {m:?} lacks {word:?}");
            m
        }
    }
}

/// Sets one option on a fresh set: (code, message).
pub fn set_option(key: &str, value: &str) -> (i32, String) {
    let o = tu_options_new();
    let (k, v) = (CString::new(key).unwrap(), CString::new(value).unwrap());
    let mut e = new_error();
    let rc = tu_options_set(o, k.as_ptr(), v.as_ptr(), &mut e);
    tu_options_free(o);
    assert_eq!(rc, e.code);
    (rc, message(&e))
}

// ---------------------------------------------------------------------------
// Files and certificates

/// A fresh directory, removed with its files when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("tu-tls-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_string()
}

/// A CA (root, or intermediate when made with a parent).
pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    pub der: Vec<u8>,
}

pub fn root_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), der: cert.der().to_vec(), issuer: Issuer::new(params, key) }
}

pub fn intermediate_ca(name: &str, parent: &Ca) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &parent.issuer).unwrap();
    Ca { pem: cert.pem(), der: cert.der().to_vec(), issuer: Issuer::new(params, key) }
}

/// How to make a leaf.
pub struct Spec {
    pub names: Vec<&'static str>,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    pub is_ca: bool,
    /// (from, until) as years relative to now, e.g. (-5, -4) for expired.
    pub years: Option<(i32, i32)>,
    pub cn: &'static str,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            names: vec!["localhost", "127.0.0.1"],
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            is_ca: false,
            years: None,
            cn: "transporturl test server",
        }
    }
}

pub struct Leaf {
    pub pem: String,
    pub der: Vec<u8>,
    pub key_pem: String,
}

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    1970 + (secs / 31_556_952) as i32
}

fn params_for(spec: &Spec) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    for n in &spec.names {
        match n.parse::<std::net::IpAddr>() {
            Ok(ip) => params.subject_alt_names.push(SanType::IpAddress(ip)),
            Err(_) => params.subject_alt_names.push(SanType::DnsName((*n).try_into().unwrap())),
        }
    }
    params.distinguished_name.push(DnType::CommonName, spec.cn);
    params.extended_key_usages = spec.eku.clone();
    if spec.is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    if let Some((from, until)) = spec.years {
        let y = this_year();
        params.not_before = rcgen::date_time_ymd(y + from, 1, 1);
        params.not_after = rcgen::date_time_ymd(y + until, 1, 1);
    }
    params
}

pub fn leaf(ca: &Ca, spec: Spec) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params_for(&spec).signed_by(&key, &ca.issuer).unwrap();
    Leaf { pem: cert.pem(), der: cert.der().to_vec(), key_pem: key.serialize_pem() }
}

pub fn self_signed(spec: Spec) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params_for(&spec).self_signed(&key).unwrap();
    Leaf { pem: cert.pem(), der: cert.der().to_vec(), key_pem: key.serialize_pem() }
}

/// Runs the `openssl` command in `dir`; panics with its output on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An RSA CA made by `openssl` in `dir`: ca.pem, ca.key.
pub fn openssl_ca(dir: &Path) {
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=openssl test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
}

/// A leaf `name`.pem/`name`.key for localhost signed by ca.pem in `dir`,
/// with an RSA key of `bits` and the digest `md` (sha256, sha1).
pub fn openssl_leaf(dir: &Path, name: &str, bits: u32, md: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let pem = format!("{name}.pem");
    openssl(dir, &["req", "-new", "-newkey", &format!("rsa:{bits}"), "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]);
    openssl(dir, &["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &pem, "-days", "30", &format!("-{md}"), "-extfile", &ext]);
}

// ---------------------------------------------------------------------------
// Peers

/// A free loopback port (bound, then released: a child process then binds it;
/// callers retry on a collision).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process serving on a port, killed on drop.
pub struct Peer {
    pub child: Child,
    pub port: u16,
    /// Lines the child printed after it was ready (s_server's, for a look).
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a child and waits (bounded) for `ready` in its stdout. `None`
/// when it exited first (a port collision, say).
fn start_child(mut cmd: Command, ready: impl Fn(&str) -> Option<u16>) -> Option<Peer> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn peer");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx2.send(format!("stderr: {line}"));
        }
    });
    let deadline = std::time::Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(port) = ready(&line) {
                    return Some(Peer { child, port, lines: rx });
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("peer did not start: {}", seen.join("\n"));
                return None;
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Exited: drain what it said, for the log.
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.push(l);
            }
            eprintln!("peer exited: {}", seen.join("\n"));
            return None;
        }
    }
}

/// `openssl s_server -rev` (answers each line reversed) on a free port,
/// with `args` (certificate, versions, ciphers, -Verify …).
pub fn s_server(dir: &Path, args: &[&str]) -> Peer {
    for _ in 0..10 {
        let port = free_port();
        let mut cmd = Command::new("openssl");
        cmd.current_dir(dir).arg("s_server").args(["-accept", &format!("127.0.0.1:{port}"), "-rev"]).args(args);
        if let Some(p) = start_child(cmd, |l| (l.trim() == "ACCEPT").then_some(port)) {
            return p;
        }
    }
    panic!("openssl s_server would not start with {args:?}");
}

/// The CPython server of tls_support/py_server.py with a JSON config.
pub fn py_server(config: &str) -> Peer {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tls_support/py_server.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(config);
    start_child(cmd, |l| l.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok())).expect("python server starts")
}
