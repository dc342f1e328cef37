//! Shared by the `tests/hardening_*.rs` suites (issue 8): a connection wrapper over
//! the C ABI, descriptor and memory counters, a deterministic PRNG, CRC-32 and
//! SHA-256 (aws-lc-rs, already a dependency), a concurrent server, and the
//! figures log that HARDENING.md quotes.
//!
//! Sizes: the suites run a short form by default (`make test`, debug build) and
//! the long form with `TU_HARDENING=full` (`make hardening`, release build).
//! With `TU_HARDENING_REPORT=FILE` every figure is appended to FILE too.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;
use transporturl::error::{code_name, TU_OK};
use transporturl::ffi::*;

/// The long forms (`make hardening`)?
pub fn full() -> bool {
    std::env::var("TU_HARDENING").map(|v| v == "full").unwrap_or(false)
}

/// `short` in `make test`, `long` in `make hardening`.
pub fn pick<T>(short: T, long: T) -> T {
    if full() {
        long
    } else {
        short
    }
}

/// Records one figure (`suite: what = value`) on stderr and in the report file.
pub fn figure(suite: &str, what: &str, value: impl std::fmt::Display) {
    let line = format!("{suite}: {what} = {value}");
    eprintln!("FIGURE {line}");
    if let Ok(path) = std::env::var("TU_HARDENING_REPORT") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

// ---------------------------------------------------------------------------
// The C ABI, wrapped

pub struct Conn(pub *mut tu_handle);
// SAFETY (test): a handle may move between threads, and one reader plus one
// writer may use it at once (DESIGN §2).
unsafe impl Send for Conn {}
unsafe impl Sync for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        tu_close(self.0);
    }
}

impl Conn {
    pub fn write(&self, data: &[u8]) -> isize {
        tu_write(self.0, data.as_ptr().cast(), data.len())
    }
    /// Writes all of `data`; `Err(code)` on the first failure.
    pub fn write_all(&self, mut data: &[u8]) -> Result<(), i32> {
        while !data.is_empty() {
            let n = self.write(data);
            if n <= 0 {
                return Err(-n as i32);
            }
            data = &data[n as usize..];
        }
        Ok(())
    }
    pub fn read(&self, buf: &mut [u8]) -> isize {
        tu_read(self.0, buf.as_mut_ptr().cast(), buf.len())
    }
    pub fn read_exact(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        let mut buf = vec![0u8; 65536];
        while out.len() < n {
            let want = (n - out.len()).min(buf.len());
            let r = self.read(&mut buf[..want]);
            assert!(r > 0, "read returned {r}: {:?}", self.last_error());
            out.extend_from_slice(&buf[..r as usize]);
        }
        out
    }
    /// Reads until EOF or an error: (bytes, final result: 0 or -code).
    pub fn read_to_end(&self) -> (Vec<u8>, isize) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let r = self.read(&mut buf);
            if r <= 0 {
                return (out, r);
            }
            out.extend_from_slice(&buf[..r as usize]);
        }
    }
    pub fn last_error(&self) -> (i32, String) {
        let mut e = new_error();
        let code = tu_last_error(self.0, &mut e);
        assert_eq!(code, e.code);
        (code, message(&e))
    }
    pub fn fd(&self) -> i32 {
        tu_fileno(self.0)
    }
}

pub fn new_error() -> tu_error {
    tu_error { code: -99, message: [b'x' as c_char; 512] }
}

/// The message of `e`, checked: NUL-terminated inside the array, valid UTF-8.
pub fn message(e: &tu_error) -> String {
    let end = e.message.iter().position(|&c| c == 0).expect("message is NUL-terminated");
    let bytes: Vec<u8> = e.message[..end].iter().map(|&c| c as u8).collect();
    String::from_utf8(bytes).expect("messages are UTF-8")
}

pub fn name(code: i32) -> &'static str {
    code_name(code).unwrap_or("TU_E_?")
}

/// An option set with `opts` applied (each must be accepted).
pub fn options(opts: &[(&str, &str)]) -> *mut tu_options {
    let o = tu_options_new();
    assert!(!o.is_null());
    for (k, v) in opts {
        let (k, v) = (CString::new(*k).unwrap(), CString::new(*v).unwrap());
        let mut e = new_error();
        assert_eq!(tu_options_set(o, k.as_ptr(), v.as_ptr(), &mut e), TU_OK, "{}", message(&e));
    }
    o
}

pub fn connect(url: &str, opts: &[(&str, &str)]) -> Result<Conn, (i32, String)> {
    let o = options(opts);
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

/// Connects or panics with the code and message.
pub fn must_connect(url: &str, opts: &[(&str, &str)]) -> Conn {
    connect(url, opts).unwrap_or_else(|(c, m)| panic!("{url}: {} {m}", name(c)))
}

/// Asserts that connecting fails with `code` and a message containing `word`.
pub fn expect_connect_err(url: &str, opts: &[(&str, &str)], code: i32, word: &str) -> String {
    match connect(url, opts) {
        Ok(_) => panic!("{url}: connected, expected {}", name(code)),
        Err((c, m)) => {
            assert_eq!(c, code, "{url}: got {} ({m}), expected {}", name(c), name(code));
            assert!(m.to_lowercase().contains(&word.to_lowercase()), "{url}: message {m:?} lacks {word:?}");
            m
        }
    }
}

pub fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY (test): the library returns static NUL-terminated strings.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

// ---------------------------------------------------------------------------
// Process counters

/// Open file descriptors of this process (the directory listing's own fd excluded).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count().saturating_sub(1)).unwrap_or(0)
}

/// The highest open descriptor number.
pub fn max_fd() -> i32 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .max()
        .unwrap_or(2)
}

/// Resident set size in KiB (VmRSS).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The descriptor count once it has stopped falling (peer threads of an
/// earlier test may still be closing theirs): a baseline to compare with.
pub fn quiet_fds() -> usize {
    let mut n = open_fds();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        let m = open_fds();
        if m >= n {
            return m.min(n);
        }
        n = m;
    }
    n
}

/// Waits (up to 2 s) for the descriptor count to come back to `want`, as
/// peer threads close their ends; returns the last count seen.
pub fn settle_fds(want: usize) -> usize {
    let mut n = open_fds();
    for _ in 0..200 {
        if n <= want {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        n = open_fds();
    }
    n
}

// ---------------------------------------------------------------------------
// Data: a deterministic PRNG, CRC-32, SHA-256

/// SplitMix64: fast, deterministic, good enough for test data and sizes.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// lo..=hi
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().to_vec()
}

/// Incremental SHA-256.
pub struct Sha256(aws_lc_rs::digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Sha256(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    pub fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Servers

/// A server on 127.0.0.1 that serves each of the next `count` connections
/// in a thread of its own (common::Server serves one at a time).
pub struct Concurrent {
    pub port: u16,
    thread: Option<JoinHandle<usize>>,
}

impl Concurrent {
    pub fn start<F>(count: usize, serve: F) -> Concurrent
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve = std::sync::Arc::new(serve);
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for _ in 0..count {
                let Ok((stream, _)) = listener.accept() else { break };
                stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
                let serve = serve.clone();
                workers.push(std::thread::spawn(move || serve(stream)));
            }
            let n = workers.len();
            for w in workers {
                w.join().expect("server worker panicked");
            }
            n
        });
        Concurrent { port, thread: Some(thread) }
    }

    /// Waits for every connection to be served; returns how many were.
    pub fn join(mut self) -> usize {
        self.thread.take().map(|t| t.join().expect("server panicked")).unwrap_or(0)
    }
}

/// A 127.0.0.1 port that nothing listens on (bound, then closed).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A listener whose accept queue is full and never drained: a connect to it
/// hangs (the SYN is dropped) until its deadline. Returns the listener, the
/// connections that fill it, and the port.
pub fn full_backlog() -> (socket2::Socket, Vec<socket2::Socket>, u16) {
    use socket2::{Domain, SockAddr, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())).unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap();
    let port = addr.as_socket().unwrap().port();
    let mut fill = Vec::new();
    for _ in 0..16 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        match s.connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(()) => fill.push(s),
            Err(_) => return (l, fill, port), // the queue is full: SYNs are dropped now
        }
    }
    panic!("could not fill the accept queue of a listen(0) socket");
}
