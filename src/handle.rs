//! A connection: the socket, its TLS session if any, and the rules for
//! reading, writing, switching TLS on and off, timeouts, non-blocking use
//! and shutdown.
//!
//! Full duplex: one reader and one writer may use a handle at once. The
//! socket is non-blocking; waiting happens in `poll` with no lock held, and
//! the lock guards only the TLS state while rustls is fed or drained.
//! Settings that change on an open handle (time limits, non-blocking mode,
//! shutdown) are atomics, read at the start of each call.

use crate::error::{Error, Result, TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT, TU_E_REFUSED, TU_E_TIMEOUT, TU_E_TRUNCATED, TU_E_WOULD_BLOCK};
use crate::net::{self, Deadline, Want};
use crate::options::{Limit, Options};
use crate::tls::{self, Session, Versions};
use crate::url::{Host, Transport, Url};
use socket2::Socket;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// `tu_enable_crypto`: turn TLS off again (close_notify, then plaintext).
pub const TU_CRYPTO_NONE: i32 = 0;
/// `tu_enable_crypto`: TLS 1.2 or 1.3.
pub const TU_CRYPTO_ANY: i32 = 1;
/// `tu_enable_crypto`: exactly TLS 1.2.
pub const TU_CRYPTO_TLSV1_2: i32 = 2;
/// `tu_enable_crypto`: exactly TLS 1.3.
pub const TU_CRYPTO_TLSV1_3: i32 = 3;
/// Refused with TU_E_INSECURE_PROTOCOL (exists so that ported code compiles).
pub const TU_CRYPTO_SSLV2: i32 = 10;
/// Refused with TU_E_INSECURE_PROTOCOL.
pub const TU_CRYPTO_SSLV3: i32 = 11;
/// Refused with TU_E_INSECURE_PROTOCOL.
pub const TU_CRYPTO_TLSV1_0: i32 = 12;
/// Refused with TU_E_INSECURE_PROTOCOL.
pub const TU_CRYPTO_TLSV1_1: i32 = 13;

/// The largest UDP payload (65,535 − 8 − 20): a longer `tu_write` on udp://
/// is TU_E_INVALID_ARGUMENT.
pub const TU_UDP_MAX_DATAGRAM: usize = 65_507;

/// `tu_wants` bit: call again when the socket is readable (poll `POLLIN`).
pub const TU_WANT_READ: i32 = 1;
/// `tu_wants` bit: call again when the socket is writable (poll `POLLOUT`).
pub const TU_WANT_WRITE: i32 = 2;

/// `tu_set_timeout` bit: the limit on each `tu_read` (option `read_timeout`).
pub const TU_TIMEOUT_READ: i32 = 1;
/// `tu_set_timeout` bit: the limit on each `tu_write` (option `write_timeout`).
pub const TU_TIMEOUT_WRITE: i32 = 2;
/// `tu_set_timeout` bit: the limit on a TLS handshake started by
/// `tu_enable_crypto` (option `timeout`, which also bounded the connect).
pub const TU_TIMEOUT_CONNECT: i32 = 4;

/// `tu_shutdown`: no more reading.
pub const TU_SHUT_RD: i32 = 0;
/// `tu_shutdown`: no more writing (TLS: close_notify first); the peer sees EOF.
pub const TU_SHUT_WR: i32 = 1;
/// `tu_shutdown`: both.
pub const TU_SHUT_RDWR: i32 = 2;

/// How long `close` waits for a queued close_notify to leave.
const CLOSE_GRACE: Duration = Duration::from_millis(250);
/// The longest limit `tu_set_timeout` takes (as the options: 1e9 s).
const MAX_TIMEOUT_MS: i64 = 1_000_000_000_000;
/// A time limit in an atomic: nanoseconds, `NO_LIMIT` for none.
const NO_LIMIT: u64 = u64::MAX;

enum State {
    /// Plaintext; `pending` holds bytes that came after the peer's
    /// close_notify when TLS was turned off, returned before the socket's.
    Plain { pending: Vec<u8> },
    /// TLS on, being started (`session.is_handshaking()`), or being turned
    /// off (`off` holds the plaintext gathered so far).
    Tls { session: Box<Session>, starttls: bool, versions: Versions, off: Option<Vec<u8>> },
    /// Unusable after a failure that leaves the stream in an unknown state.
    Failed(Error),
}

/// A time limit that can change while the handle is in use.
struct AtomicLimit(AtomicU64);

impl AtomicLimit {
    fn new(limit: Limit) -> Self {
        let a = AtomicLimit(AtomicU64::new(NO_LIMIT));
        a.set(limit);
        a
    }
    fn set(&self, limit: Limit) {
        let n = limit.map_or(NO_LIMIT, |d| u64::try_from(d.as_nanos()).unwrap_or(NO_LIMIT - 1).min(NO_LIMIT - 1));
        self.0.store(n, Ordering::Relaxed);
    }
    fn get(&self) -> Limit {
        match self.0.load(Ordering::Relaxed) {
            NO_LIMIT => None,
            n => Some(Duration::from_nanos(n)),
        }
    }
}

pub struct Handle {
    sock: Socket,
    transport: Transport,
    /// The name TLS verifies and sends: `ssl.peer_name` or the URL's host,
    /// without a trailing dot.
    tls_name: Option<String>,
    opts: Options,
    state: Mutex<State>,
    last_error: Mutex<Option<Error>>,
    read_timeout: AtomicLimit,
    write_timeout: AtomicLimit,
    connect_timeout: AtomicLimit,
    nonblocking: AtomicBool,
    /// TU_WANT_* bits of the last call that said TU_E_WOULD_BLOCK, one slot
    /// per direction so that a reader and a writer never clear each other's
    /// (`Slot::Read`: tu_read; `Slot::Write`: tu_write, tu_flush and the
    /// exclusive calls). A call that touches the socket clears its slot.
    wants: [AtomicU8; 2],
    shut_rd: AtomicBool,
    shut_wr: AtomicBool,
}

/// The two `wants` slots: what tu_read waits for, and what every other call
/// (tu_write, tu_flush, and the exclusive ones) waits for.
#[derive(Clone, Copy)]
enum Slot {
    Read = 0,
    Write = 1,
}

/// Reads and writes need a finished handshake and TLS not half turned off.
fn ready_for_data(session: &Session, off: &Option<Vec<u8>>, versions: Versions) -> Result<()> {
    if off.is_some() {
        return Err(Error::state(
            "TLS is being turned off; call tu_enable_crypto(TU_CRYPTO_NONE) again to finish first",
        ));
    }
    if session.is_handshaking() {
        return Err(Error::state(format!(
            "the TLS handshake is not finished; call tu_enable_crypto({}) again until it returns TU_OK",
            versions_name(versions)
        )));
    }
    Ok(())
}

/// Which TLS versions a method asks for, or why it is refused.
fn versions_for(method: i32) -> Result<Option<Versions>> {
    match method {
        TU_CRYPTO_NONE => Ok(None),
        TU_CRYPTO_ANY => Ok(Some(Versions::Any)),
        TU_CRYPTO_TLSV1_2 => Ok(Some(Versions::Tls12)),
        TU_CRYPTO_TLSV1_3 => Ok(Some(Versions::Tls13)),
        TU_CRYPTO_SSLV2 | TU_CRYPTO_SSLV3 | TU_CRYPTO_TLSV1_0 | TU_CRYPTO_TLSV1_1 => {
            let name = match method {
                TU_CRYPTO_SSLV2 => "SSLv2",
                TU_CRYPTO_SSLV3 => "SSLv3",
                TU_CRYPTO_TLSV1_0 => "TLS 1.0",
                _ => "TLS 1.1",
            };
            Err(Error::new(
                TU_E_INSECURE_PROTOCOL,
                format!("{name} is insecure and refused; use TU_CRYPTO_ANY (TLS 1.2 or 1.3) or tls://"),
            ))
        }
        other => Err(Error::new(
            TU_E_INVALID_ARGUMENT,
            format!("unknown crypto method {other}; use TU_CRYPTO_ANY, TU_CRYPTO_TLSV1_2, TU_CRYPTO_TLSV1_3 or TU_CRYPTO_NONE"),
        )),
    }
}

fn versions_name(v: Versions) -> &'static str {
    match v {
        Versions::Any => "TU_CRYPTO_ANY",
        Versions::Tls12 => "TU_CRYPTO_TLSV1_2",
        Versions::Tls13 => "TU_CRYPTO_TLSV1_3",
    }
}

fn transport_versions(t: Transport) -> Versions {
    match t {
        Transport::TlsV1_2 => Versions::Tls12,
        Transport::TlsV1_3 => Versions::Tls13,
        _ => Versions::Any,
    }
}

fn want_bits(read: bool, write: bool) -> u8 {
    (if read { TU_WANT_READ as u8 } else { 0 }) | (if write { TU_WANT_WRITE as u8 } else { 0 })
}

fn would_block(what: &str, bits: u8) -> Error {
    let dir = match (bits & TU_WANT_READ as u8 != 0, bits & TU_WANT_WRITE as u8 != 0) {
        (true, true) => "readable or writable",
        (false, true) => "writable",
        _ => "readable",
    };
    Error::new(TU_E_WOULD_BLOCK, format!("{what} would block (non-blocking handle): call again when the socket is {dir} (tu_wants)"))
}

impl Handle {
    /// Parses `url`, connects, and for TLS transports completes the
    /// handshake, all within `opts.timeout`.
    pub fn connect(url: &str, opts: &Options) -> Result<Handle> {
        Handle::connect_url(&crate::url::parse(url)?, opts)
    }

    /// fsockopen style: `host` may carry a scheme and a bare IPv6 literal;
    /// `port` 0 means the port is in `host`. A port in both places is TU_E_URL.
    pub fn connect_host(host: &str, port: i32, opts: &Options) -> Result<Handle> {
        Handle::connect_url(&crate::url::parse_host_port(host, port)?, opts)
    }

    pub fn connect_url(url: &Url, opts: &Options) -> Result<Handle> {
        let deadline = Deadline::after(opts.timeout);
        let sock = net::connect(url, opts, &deadline)?;
        let tls_name = opts
            .peer_name
            .clone()
            .or_else(|| {
                url.host.as_ref().map(|h| match h {
                    Host::V6 { addr, .. } => addr.to_string(),
                    other => other.to_string_for_display(),
                })
            })
            // `example.com.` is `example.com` for SNI and certificate checks.
            .map(|n| if n.len() > 1 { n.strip_suffix('.').unwrap_or(&n).to_string() } else { n });
        let handle = Handle {
            sock,
            transport: url.transport,
            tls_name,
            opts: opts.clone(),
            state: Mutex::new(State::Plain { pending: Vec::new() }),
            last_error: Mutex::new(None),
            read_timeout: AtomicLimit::new(opts.read_timeout),
            write_timeout: AtomicLimit::new(opts.write_timeout),
            connect_timeout: AtomicLimit::new(opts.timeout),
            nonblocking: AtomicBool::new(false),
            wants: [AtomicU8::new(0), AtomicU8::new(0)],
            shut_rd: AtomicBool::new(false),
            shut_wr: AtomicBool::new(false),
        };
        if url.transport.is_tls() {
            handle.start_tls(transport_versions(url.transport), false, &deadline, false)?;
        }
        Ok(handle)
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::internal("the connection is unusable after an internal error"))
    }

    /// Records a failure for `tu_last_error` and hands it back.
    pub fn record(&self, e: Error) -> Error {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(e.clone());
        e
    }

    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a panic: the stream is in an unknown state, refuse further use.
    pub fn mark_failed(&self, e: &Error) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = State::Failed(e.clone());
    }

    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    fn failed_error(e: &Error) -> Error {
        Error::state(format!("the connection is unusable after an earlier failure ({}: {})", e.name(), e.message))
    }

    fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Marks the handle failed (the stream is in an unknown state) and
    /// returns the error.
    fn fail(&self, e: Error) -> Error {
        if let Ok(mut state) = self.lock() {
            *state = State::Failed(e.clone());
        }
        e
    }

    // -- settings on an open handle --------------------------------------------

    /// `tu_set_nonblocking`: with it on, read, write, enable_crypto and
    /// shutdown return TU_E_WOULD_BLOCK instead of waiting.
    pub fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
        if !on {
            self.clear_wants(Slot::Read);
            self.clear_wants(Slot::Write);
        }
    }

    /// `tu_set_timeout`: `which` is TU_TIMEOUT_* bits; `ms` < 0 is no limit,
    /// 0 is refused. Takes effect from the next call.
    pub fn set_timeout(&self, which: i32, ms: i64) -> Result<()> {
        let all = TU_TIMEOUT_READ | TU_TIMEOUT_WRITE | TU_TIMEOUT_CONNECT;
        if which == 0 || which & !all != 0 {
            return Err(Error::invalid(format!(
                "tu_set_timeout: which = {which} is not a combination of TU_TIMEOUT_READ (1), TU_TIMEOUT_WRITE (2) and TU_TIMEOUT_CONNECT (4)"
            )));
        }
        let limit = match ms {
            0 => {
                return Err(Error::invalid(
                    "tu_set_timeout: 0 ms is not a time limit; use a value > 0, or -1 for no limit (non-blocking mode is tu_set_nonblocking)",
                ))
            }
            ms if ms < 0 => None,
            ms if ms > MAX_TIMEOUT_MS => {
                return Err(Error::invalid(format!("tu_set_timeout: {ms} ms is too large (at most {MAX_TIMEOUT_MS}, or -1 for no limit)")))
            }
            ms => Some(Duration::from_millis(ms as u64)),
        };
        if which & TU_TIMEOUT_READ != 0 {
            self.read_timeout.set(limit);
        }
        if which & TU_TIMEOUT_WRITE != 0 {
            self.write_timeout.set(limit);
        }
        if which & TU_TIMEOUT_CONNECT != 0 {
            self.connect_timeout.set(limit);
        }
        Ok(())
    }

    /// (read, write) limits in force now.
    pub fn timeouts(&self) -> (Limit, Limit) {
        (self.read_timeout.get(), self.write_timeout.get())
    }

    /// `tu_wants`: the TU_WANT_* bits of the last call that returned
    /// TU_E_WOULD_BLOCK (a TLS read may want the socket writable, a TLS
    /// handshake either), 0 once a later call got further.
    pub fn wants(&self) -> i32 {
        i32::from(self.wants[0].load(Ordering::Relaxed) | self.wants[1].load(Ordering::Relaxed))
    }

    fn clear_all_wants(&self) {
        self.clear_wants(Slot::Read);
        self.clear_wants(Slot::Write);
    }

    fn clear_wants(&self, slot: Slot) {
        self.wants[slot as usize].store(0, Ordering::Relaxed);
    }

    /// Records what a call waits for and makes its TU_E_WOULD_BLOCK.
    fn would_block(&self, slot: Slot, what: &str, read: bool, write: bool) -> Error {
        let bits = want_bits(read, write);
        self.wants[slot as usize].store(bits, Ordering::Relaxed);
        would_block(what, bits)
    }

    /// `tu_flush`: sends the TLS records still queued inside (after a
    /// non-blocking `tu_write` that returned with `tu_wants` showing
    /// TU_WANT_WRITE). Blocking mode waits up to the write time limit;
    /// non-blocking mode says TU_E_WOULD_BLOCK while some remain. Plaintext
    /// connections queue nothing: TU_OK at once.
    pub fn flush(&self) -> Result<()> {
        let nonblocking = self.is_nonblocking();
        let deadline = Deadline::after(self.write_timeout.get());
        loop {
            {
                let mut state = self.lock()?;
                self.clear_wants(Slot::Write);
                match &mut *state {
                    State::Failed(e) => return Err(Self::failed_error(e)),
                    State::Tls { session, .. } => {
                        if session.flush(&self.sock)? {
                            return Ok(());
                        }
                    }
                    State::Plain { .. } => return Ok(()),
                }
            }
            if nonblocking {
                return Err(self.would_block(Slot::Write, "flush", false, true));
            }
            net::wait(&self.sock, Want::Write, &deadline, "flush")?;
        }
    }

    /// `tu_pending`: bytes a `tu_read` returns without touching the socket
    /// (decrypted TLS data, or plaintext kept when TLS was turned off).
    pub fn pending(&self) -> usize {
        let Ok(mut state) = self.state.lock() else { return 0 };
        match &mut *state {
            State::Plain { pending } => pending.len(),
            State::Tls { session, off, .. } => session.buffered_plaintext() + off.as_ref().map_or(0, Vec::len),
            State::Failed(_) => 0,
        }
    }

    pub fn local_address(&self) -> Result<String> {
        net::local_address(&self.sock)
    }

    pub fn peer_address(&self) -> Result<String> {
        net::peer_address(&self.sock)
    }

    // -- shutdown -------------------------------------------------------------

    /// `tu_shutdown`. Reading first, so that a reader blocked in another
    /// thread wakes at once even if close_notify has to wait for room.
    pub fn shutdown(&self, how: i32) -> Result<()> {
        let (rd, wr) = match how {
            TU_SHUT_RD => (true, false),
            TU_SHUT_WR => (false, true),
            TU_SHUT_RDWR => (true, true),
            other => {
                return Err(Error::invalid(format!(
                    "tu_shutdown: how = {other}; use TU_SHUT_RD (0), TU_SHUT_WR (1) or TU_SHUT_RDWR (2)"
                )))
            }
        };
        self.clear_all_wants();
        if rd {
            // The flag first: a reader that wakes must see it.
            self.shut_rd.store(true, Ordering::SeqCst);
            net::shutdown(&self.sock, Shutdown::Read)?;
        }
        if wr && !self.shut_wr.load(Ordering::SeqCst) {
            self.send_close_notify()?;
            self.shut_wr.store(true, Ordering::SeqCst);
            net::shutdown(&self.sock, Shutdown::Write)?;
        }
        Ok(())
    }

    /// Queues close_notify on a TLS connection and sends it, waiting for
    /// room up to the write time limit (non-blocking: TU_E_WOULD_BLOCK,
    /// and the next tu_shutdown goes on).
    fn send_close_notify(&self) -> Result<()> {
        let deadline = Deadline::after(self.write_timeout.get());
        loop {
            {
                let mut state = self.lock()?;
                match &mut *state {
                    State::Tls { session, .. } if !session.is_handshaking() => match session.close_notify(&self.sock) {
                        Ok(true) | Err(_) => return Ok(()), // a failed session has nothing to close
                        Ok(false) => {}
                    },
                    _ => return Ok(()),
                }
            }
            if self.is_nonblocking() {
                return Err(self.would_block(Slot::Write, "tu_shutdown (sending close_notify)", false, true));
            }
            net::wait(&self.sock, Want::Write, &deadline, "tu_shutdown (sending close_notify)")?;
        }
    }

    // -- TLS on and off ---------------------------------------------------

    /// `tu_enable_crypto`. In non-blocking mode a handshake (or turning TLS
    /// off) that has to wait returns TU_E_WOULD_BLOCK and goes on where it
    /// stopped when called again with the same method.
    pub fn enable_crypto(&self, method: i32) -> Result<()> {
        let versions = versions_for(method)?;
        if self.transport.is_datagram() {
            return Err(Error::state(format!(
                "TLS cannot be enabled on a {}:// (datagram) connection; DTLS is not supported",
                self.transport.name()
            )));
        }
        if self.shut_rd.load(Ordering::SeqCst) || self.shut_wr.load(Ordering::SeqCst) {
            return Err(Error::state("TLS cannot be switched on or off after tu_shutdown"));
        }
        let nonblocking = self.is_nonblocking();
        let deadline = Deadline::after(self.connect_timeout.get());
        match versions {
            Some(v) => self.start_tls(v, true, &deadline, nonblocking),
            None => self.stop_tls(&deadline, nonblocking),
        }
    }

    fn start_tls(&self, versions: Versions, starttls: bool, deadline: &Deadline, nonblocking: bool) -> Result<()> {
        {
            let mut state = self.lock()?;
            match &*state {
                State::Tls { session, versions: started, off: None, .. } if session.is_handshaking() => {
                    if *started != versions {
                        return Err(Error::state(format!(
                            "a TLS handshake begun with {} is in progress; call tu_enable_crypto with that method to finish it",
                            versions_name(*started)
                        )));
                    }
                    // Resume below.
                }
                State::Tls { off: Some(_), .. } => {
                    return Err(Error::state(
                        "TLS is being turned off; call tu_enable_crypto(TU_CRYPTO_NONE) again to finish first",
                    ))
                }
                State::Tls { .. } => return Err(Error::state("TLS is already enabled on this connection")),
                State::Failed(e) => return Err(Self::failed_error(e)),
                State::Plain { pending } => {
                    // The STARTTLS injection check: nothing may wait to be
                    // read. (With implicit TLS, a server that speaks first is
                    // a plaintext peer, which the handshake diagnoses.)
                    let queued = if starttls { net::pending(&self.sock).unwrap_or(0) } else { 0 };
                    if starttls && (!pending.is_empty() || queued > 0) {
                        let mut peek = pending.clone();
                        let mut tmp = [0u8; 96];
                        let n = net::peek(&self.sock, &mut tmp);
                        peek.extend_from_slice(&tmp[..n]);
                        let e = tls::injected_error(&peek, pending.len() as u64 + queued);
                        *state = State::Failed(e.clone());
                        return Err(e);
                    }
                    let name = self.tls_name.as_deref().ok_or_else(|| {
                        Error::invalid(format!(
                            "TLS on a {}:// socket needs a server name: set ssl.peer_name",
                            self.transport.name()
                        ))
                    })?;
                    let config = tls::client_config(&self.opts.tls, versions)?;
                    let session = Session::new(config, name, starttls)?;
                    *state = State::Tls { session: Box::new(session), starttls, versions, off: None };
                }
            }
        }
        self.clear_all_wants();
        let what = format!("TLS handshake with {}", self.tls_name.as_deref().unwrap_or("the peer"));
        loop {
            let step = {
                let mut state = self.lock()?;
                let State::Tls { session, .. } = &mut *state else {
                    return Err(Error::state("the connection changed state during the TLS handshake"));
                };
                match session.handshake_step(&self.sock) {
                    Ok(step) => step,
                    Err(e) => {
                        *state = State::Failed(e.clone());
                        return Err(e);
                    }
                }
            };
            match step {
                None => return Ok(()),
                Some(want) if nonblocking => {
                    return Err(self.would_block(Slot::Write, &what, want == Want::Read, want == Want::Write));
                }
                Some(want) => {
                    if let Err(e) = net::wait(&self.sock, want, deadline, &what) {
                        return Err(self.fail(e));
                    }
                }
            }
        }
    }

    fn stop_tls(&self, deadline: &Deadline, nonblocking: bool) -> Result<()> {
        let what = "turning TLS off (waiting for the peer's close_notify)";
        loop {
            let step = {
                let mut state = self.lock()?;
                match &mut *state {
                    State::Plain { .. } => return Err(Error::state("TLS is not enabled on this connection")),
                    State::Failed(e) => return Err(Self::failed_error(e)),
                    State::Tls { starttls: false, .. } => {
                        return Err(Error::state(format!(
                            "TLS cannot be turned off on a {}:// connection (implicit TLS); only a connection upgraded with tu_enable_crypto can go back to plaintext",
                            self.transport.name()
                        )))
                    }
                    State::Tls { session, off: None, versions, .. } if session.is_handshaking() => {
                        return Err(Error::state(format!(
                            "a TLS handshake begun with {} is in progress; finish it (tu_enable_crypto with that method) before turning TLS off",
                            versions_name(*versions)
                        )))
                    }
                    State::Tls { session, off, .. } => {
                        self.clear_all_wants();
                        let plain = off.get_or_insert_with(Vec::new);
                        match session.off_step(&self.sock, plain) {
                            Ok(None) => {
                                let pending = std::mem::take(plain);
                                *state = State::Plain { pending };
                                return Ok(());
                            }
                            Ok(Some(want)) => want,
                            Err(e) => {
                                *state = State::Failed(e.clone());
                                return Err(e);
                            }
                        }
                    }
                }
            };
            if nonblocking {
                return Err(self.would_block(Slot::Write, "turning TLS off", step == Want::Read, step == Want::Write));
            }
            if let Err(e) = net::wait(&self.sock, step, deadline, what) {
                return Err(self.fail(e));
            }
        }
    }

    // -- reading and writing ------------------------------------------------

    /// Read: >0 bytes, 0 at orderly EOF. Blocking mode waits up to the read
    /// time limit; non-blocking mode says TU_E_WOULD_BLOCK instead.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        let nonblocking = self.is_nonblocking();
        // The clock is read only once the call has to wait: a read that finds
        // data at once (the hot path) costs no Instant::now.
        let limit = self.read_timeout.get();
        let mut deadline = None;
        loop {
            if self.shut_rd.load(Ordering::SeqCst) {
                return Err(Error::state("the connection was shut down for reading (tu_shutdown)"));
            }
            let (tls, out_queued) = {
                let mut state = self.lock()?;
                match &mut *state {
                    State::Failed(e) => return Err(Self::failed_error(e)),
                    State::Plain { pending } => {
                        self.clear_wants(Slot::Read);
                        if !pending.is_empty() {
                            let n = pending.len().min(buf.len());
                            buf[..n].copy_from_slice(&pending[..n]);
                            pending.drain(..n);
                            return Ok(n);
                        }
                        (false, false)
                    }
                    State::Tls { session, off, versions, .. } => {
                        ready_for_data(session, off, *versions)?;
                        self.clear_wants(Slot::Read);
                        // Records queued by an earlier partial write or an
                        // alert go out first, as far as the socket takes them.
                        session.flush(&self.sock)?;
                        match session.read_step(&self.sock, buf)? {
                            Some(n) => return Ok(n),
                            None => (true, session.has_pending_output()),
                        }
                    }
                }
            };
            if !tls {
                if let Some(n) = self.read_plain(buf)? {
                    return Ok(n);
                }
            }
            if nonblocking {
                return Err(self.would_block(Slot::Read, "read", true, out_queued));
            }
            let deadline = deadline.get_or_insert_with(|| Deadline::after(limit));
            net::wait_for(&self.sock, true, out_queued, deadline, "read")?;
        }
    }

    /// One non-blocking receive on a plaintext socket; `Ok(None)` if empty.
    fn read_plain(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let datagram = self.transport.is_datagram();
        match net::recv(&self.sock, buf, datagram) {
            Ok((n, real)) if datagram && real > n => Err(Error::new(
                TU_E_TRUNCATED,
                format!(
                    "a datagram of {real} bytes did not fit the {}-byte buffer; its first {n} bytes were stored and the rest is lost (use a buffer of at least {real} bytes)",
                    buf.len()
                ),
            )),
            Ok((n, _)) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if datagram && e.kind() == io::ErrorKind::ConnectionRefused => Err(self.refused_datagram("read")),
            Err(e) => Err(net::os_error("read", e)),
        }
    }

    /// ECONNREFUSED on a connected datagram socket: an earlier datagram was
    /// answered with ICMP port unreachable (or the Unix peer is gone).
    fn refused_datagram(&self, what: &str) -> Error {
        let peer = net::peer_address(&self.sock).unwrap_or_else(|_| "the peer".into());
        let why = if self.transport == Transport::Udp {
            "an ICMP port unreachable came back for an earlier datagram"
        } else {
            "the receiving socket is gone"
        };
        Error::new(
            TU_E_REFUSED,
            format!("{what}: connection refused: nothing receives on {}://{peer} ({why})", self.transport.name()),
        )
    }

    /// Write. Blocking mode: all of `data`, or an error (TU_E_TIMEOUT when
    /// the write limit passes, even after part of `data` went out; the
    /// message says how much).
    /// Non-blocking mode: the bytes the socket (or TLS) accepted now, or
    /// TU_E_WOULD_BLOCK when none were — then nothing of `data` was taken,
    /// so repeating the call with the same bytes is safe.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        if self.transport == Transport::Udp && data.len() > TU_UDP_MAX_DATAGRAM {
            return Err(Error::invalid(format!(
                "a datagram of {} bytes is over the UDP maximum of {TU_UDP_MAX_DATAGRAM} bytes",
                data.len()
            )));
        }
        let nonblocking = self.is_nonblocking();
        let limit = self.write_timeout.get();
        let mut deadline = None; // read from the clock only when the call has to wait
        let mut done = 0;
        loop {
            if self.shut_wr.load(Ordering::SeqCst) {
                if done > 0 {
                    return Ok(done);
                }
                return Err(Error::state("the connection was shut down for writing (tu_shutdown)"));
            }
            let tls = {
                let mut state = self.lock()?;
                match &mut *state {
                    State::Failed(e) => return Err(Self::failed_error(e)),
                    State::Plain { .. } => {
                        self.clear_wants(Slot::Write);
                        false
                    }
                    State::Tls { session, off, versions, .. } => {
                        ready_for_data(session, off, *versions)?;
                        self.clear_wants(Slot::Write);
                        let (n, blocked) = session.write_step(&self.sock, &data[done..])?;
                        done += n;
                        if blocked.is_none() {
                            if done == data.len() {
                                return Ok(done);
                            }
                            continue; // rustls took a part (its buffer limit); go on
                        }
                        true
                    }
                }
            };
            if !tls {
                match net::send(&self.sock, &data[done..]) {
                    Ok(n) => {
                        done += n;
                        if done == data.len() || nonblocking {
                            return Ok(done);
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if self.transport.is_datagram() && e.raw_os_error() == Some(libc::EMSGSIZE) => {
                        return Err(Error::invalid(format!(
                            "write: a datagram of {} bytes is too large for this {}:// socket (EMSGSIZE)",
                            data.len(),
                            self.transport.name()
                        )))
                    }
                    Err(e) if self.transport.is_datagram() && e.kind() == io::ErrorKind::ConnectionRefused => {
                        return Err(self.refused_datagram("write"))
                    }
                    Err(e) => return Err(net::os_error("write", e)),
                }
            }
            if nonblocking {
                if done > 0 {
                    if tls {
                        // Accepted, but records are still queued: say so,
                        // so that the caller polls POLLOUT and calls tu_flush.
                        self.wants[Slot::Write as usize].store(want_bits(false, true), Ordering::Relaxed);
                    }
                    return Ok(done);
                }
                return Err(self.would_block(Slot::Write, "write", false, true));
            }
            let deadline = deadline.get_or_insert_with(|| Deadline::after(limit));
            if let Err(e) = net::wait(&self.sock, Want::Write, deadline, "write") {
                if done > 0 && e.code == TU_E_TIMEOUT {
                    // Still TU_E_TIMEOUT (the caller asked for all of it), but
                    // say how far it got.
                    return Err(Error::new(
                        TU_E_TIMEOUT,
                        format!("{} ({done} of {} bytes were sent before the limit)", e.message, data.len()),
                    ));
                }
                return Err(e);
            }
        }
    }

    // -- information ---------------------------------------------------------

    pub fn tls_version(&self) -> Option<&'static str> {
        match &*self.state.lock().ok()? {
            State::Tls { session, .. } if !session.is_handshaking() => session.version_name(),
            _ => None,
        }
    }

    pub fn cipher_suite(&self) -> Option<&'static str> {
        match &*self.state.lock().ok()? {
            State::Tls { session, .. } if !session.is_handshaking() => session.cipher_suite_name(),
            _ => None,
        }
    }

    /// Runs `f` on the TLS session once its handshake is done (connection
    /// info: group, ALPN, resumption, peer chain…); `None` when TLS is not on.
    pub fn with_tls<R>(&self, f: impl FnOnce(&tls::Session) -> R) -> Option<R> {
        match &*self.state.lock().ok()? {
            State::Tls { session, .. } if !session.is_handshaking() => Some(f(session)),
            _ => None,
        }
    }
}

impl Drop for Handle {
    /// Sends close_notify where it can without blocking long.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let State::Tls { session, .. } = state {
            if session.is_handshaking() {
                return;
            }
            let deadline = Deadline::after(Some(CLOSE_GRACE));
            while let Ok(false) = session.close_notify(&self.sock) {
                if net::wait(&self.sock, Want::Write, &deadline, "close").is_err() {
                    break;
                }
            }
        }
    }
}
