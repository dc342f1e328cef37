//! A connection: the socket, its TLS session if any, and the rules for
//! reading, writing and switching TLS on and off.
//!
//! Full duplex: one reader and one writer may use a handle at once. The
//! socket is non-blocking; waiting happens in `poll` with no lock held, and
//! the lock guards only the TLS state while rustls is fed or drained.

use crate::error::{Error, Result, TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT, TU_E_TRUNCATED};
use crate::net::{self, Deadline, Want};
use crate::options::{Limit, Options};
use crate::tls::{self, Session, Versions};
use crate::url::{Host, Transport, Url};
use socket2::Socket;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
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

/// How long `close` waits for a queued close_notify to leave.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

enum State {
    /// Plaintext; `pending` holds bytes that came after the peer's
    /// close_notify when TLS was turned off, returned before the socket's.
    Plain { pending: Vec<u8> },
    Tls { session: Box<Session>, starttls: bool },
    /// Unusable after a failure that leaves the stream in an unknown state.
    Failed(Error),
}

pub struct Handle {
    sock: Socket,
    transport: Transport,
    /// The name TLS verifies and sends: `ssl.peer_name` or the URL's host.
    tls_name: Option<String>,
    opts: Options,
    state: Mutex<State>,
    last_error: Mutex<Option<Error>>,
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

fn transport_versions(t: Transport) -> Versions {
    match t {
        Transport::TlsV1_2 => Versions::Tls12,
        Transport::TlsV1_3 => Versions::Tls13,
        _ => Versions::Any,
    }
}

impl Handle {
    /// Parses `url`, connects, and for TLS transports completes the
    /// handshake, all within `opts.timeout`.
    pub fn connect(url: &str, opts: &Options) -> Result<Handle> {
        Handle::connect_url(&crate::url::parse(url)?, opts)
    }

    pub fn connect_url(url: &Url, opts: &Options) -> Result<Handle> {
        let deadline = Deadline::after(opts.timeout);
        let sock = net::connect(url, opts, &deadline)?;
        let tls_name = opts.peer_name.clone().or_else(|| {
            url.host.as_ref().map(|h| match h {
                Host::V6 { addr, .. } => addr.to_string(),
                other => other.to_string_for_display(),
            })
        });
        let handle = Handle {
            sock,
            transport: url.transport,
            tls_name,
            opts: opts.clone(),
            state: Mutex::new(State::Plain { pending: Vec::new() }),
            last_error: Mutex::new(None),
        };
        if url.transport.is_tls() {
            handle.start_tls(transport_versions(url.transport), false, &deadline)?;
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

    // -- TLS on and off ---------------------------------------------------

    /// `tu_enable_crypto`.
    pub fn enable_crypto(&self, method: i32) -> Result<()> {
        let versions = versions_for(method)?;
        if self.transport.is_datagram() {
            return Err(Error::state(format!(
                "TLS cannot be enabled on a {}:// (datagram) connection; DTLS is not supported",
                self.transport.name()
            )));
        }
        let deadline = Deadline::after(self.opts.timeout);
        match versions {
            Some(v) => self.start_tls(v, true, &deadline),
            None => self.stop_tls(&deadline),
        }
    }

    fn start_tls(&self, versions: Versions, starttls: bool, deadline: &Deadline) -> Result<()> {
        {
            let mut state = self.lock()?;
            match &*state {
                State::Tls { .. } => return Err(Error::state("TLS is already enabled on this connection")),
                State::Failed(e) => return Err(Self::failed_error(e)),
                State::Plain { pending } if starttls => {
                    // The STARTTLS injection check: nothing may wait to be read.
                    // (For implicit TLS, early bytes are the handshake's to
                    // diagnose: a plaintext greeting is TU_E_PLAINTEXT_PEER.)
                    let queued = net::pending(&self.sock).unwrap_or(0);
                    if !pending.is_empty() || queued > 0 {
                        let mut peek = pending.clone();
                        let mut tmp = [0u8; 96];
                        let n = net::peek(&self.sock, &mut tmp);
                        peek.extend_from_slice(&tmp[..n]);
                        let e = tls::injected_error(&peek, pending.len() as u64 + queued);
                        *state = State::Failed(e.clone());
                        return Err(e);
                    }
                }
                State::Plain { .. } => {}
            }
            let name = self.tls_name.as_deref().ok_or_else(|| {
                Error::invalid(format!(
                    "TLS on a {}:// socket needs a server name: set ssl.peer_name",
                    self.transport.name()
                ))
            })?;
            let config = tls::client_config(&self.opts.tls, versions)?;
            let session = Session::new(config, name, starttls)?;
            *state = State::Tls { session: Box::new(session), starttls };
        }
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
                Some(want) => {
                    let what = format!("TLS handshake with {}", self.tls_name.as_deref().unwrap_or("the peer"));
                    if let Err(e) = net::wait(&self.sock, want, deadline, &what) {
                        if let Ok(mut state) = self.lock() {
                            *state = State::Failed(e.clone());
                        }
                        return Err(e);
                    }
                }
            }
        }
    }

    fn stop_tls(&self, deadline: &Deadline) -> Result<()> {
        let mut plain = Vec::new();
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
                    State::Tls { session, .. } => match session.off_step(&self.sock, &mut plain) {
                        Ok(None) => {
                            *state = State::Plain { pending: std::mem::take(&mut plain) };
                            return Ok(());
                        }
                        Ok(Some(want)) => want,
                        Err(e) => {
                            *state = State::Failed(e.clone());
                            return Err(e);
                        }
                    },
                }
            };
            if let Err(e) = net::wait(&self.sock, step, deadline, "turning TLS off (waiting for the peer's close_notify)") {
                if let Ok(mut state) = self.lock() {
                    *state = State::Failed(e.clone());
                }
                return Err(e);
            }
        }
    }

    // -- reading and writing ------------------------------------------------

    /// Blocking read: >0 bytes, 0 at orderly EOF.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        let deadline = Deadline::after(self.opts.read_timeout);
        loop {
            let tls = {
                let mut state = self.lock()?;
                match &mut *state {
                    State::Failed(e) => return Err(Self::failed_error(e)),
                    State::Plain { pending } => {
                        if !pending.is_empty() {
                            let n = pending.len().min(buf.len());
                            buf[..n].copy_from_slice(&pending[..n]);
                            pending.drain(..n);
                            return Ok(n);
                        }
                        false
                    }
                    State::Tls { session, .. } => match session.read_step(&self.sock, buf)? {
                        Some(n) => return Ok(n),
                        None => true,
                    },
                }
            };
            if !tls {
                match self.read_plain(buf) {
                    Ok(Some(n)) => return Ok(n),
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            net::wait(&self.sock, Want::Read, &deadline, "read")?;
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
            Err(e) => Err(net::os_error("read", e)),
        }
    }

    /// Blocking write: all of `data`, or an error. If the write time limit
    /// passes after part of `data` went out, the part's length is returned.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        if self.transport == Transport::Udp && data.len() > TU_UDP_MAX_DATAGRAM {
            return Err(Error::invalid(format!(
                "a datagram of {} bytes is over the UDP maximum of {TU_UDP_MAX_DATAGRAM} bytes",
                data.len()
            )));
        }
        let deadline = Deadline::after(self.opts.write_timeout);
        let mut done = 0;
        loop {
            let (is_tls, blocked) = {
                let mut state = self.lock()?;
                match &mut *state {
                    State::Failed(e) => return Err(Self::failed_error(e)),
                    State::Plain { .. } => (false, false),
                    State::Tls { session, .. } => {
                        let (n, blocked) = session.write_step(&self.sock, &data[done..])?;
                        done += n;
                        (true, blocked.is_some())
                    }
                }
            };
            if !is_tls {
                match net::send(&self.sock, &data[done..]) {
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(net::os_error("write", e)),
                }
                if done == data.len() {
                    return Ok(done);
                }
            } else if done == data.len() && !blocked {
                return Ok(done);
            } else if !blocked {
                continue;
            }
            if let Err(e) = net::wait(&self.sock, Want::Write, &deadline, "write") {
                return if done > 0 { Ok(done) } else { Err(e) };
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

    pub fn timeouts(&self) -> (Limit, Limit) {
        (self.opts.read_timeout, self.opts.write_timeout)
    }
}

impl Drop for Handle {
    /// Sends close_notify where it can without blocking long.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let State::Tls { session, .. } = state {
            let deadline = Deadline::after(Some(CLOSE_GRACE));
            loop {
                match session.close_notify(&self.sock) {
                    Ok(false) => {
                        if net::wait(&self.sock, Want::Write, &deadline, "close").is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        }
    }
}

