//! Sockets: resolving, connecting under one deadline, and the few system
//! calls the rest of the crate needs (poll, send without SIGPIPE, recv),
//! all safe wrappers.
//!
//! Every socket is non-blocking inside the library; blocking behaviour is
//! built from `poll` with a deadline, so one thread can read while another
//! writes, and a peer that drip-feeds bytes cannot stretch a time limit.

use crate::error::{Error, Result, TU_E_IO, TU_E_REFUSED, TU_E_RESOLVE, TU_E_TIMEOUT, TU_E_URL};
use crate::options::{Limit, Options};
use crate::url::{Host, Transport, Url};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{RecvFlags, SendFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// A point in time after which an operation fails with `TU_E_TIMEOUT`;
/// `None` means no limit.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Option<Instant>,
    limit: Limit,
}

impl Deadline {
    pub fn after(limit: Limit) -> Self {
        Deadline { at: limit.map(|d| Instant::now() + d), limit }
    }

    pub fn expired(&self) -> bool {
        matches!(self.at, Some(at) if Instant::now() >= at)
    }

    fn remaining(&self) -> Option<Duration> {
        self.at.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The error for an operation (`"read"`, `"connect to 127.0.0.1:80"`)
    /// that ran out of time.
    pub fn timeout_error(&self, what: &str) -> Error {
        let secs = self.limit.map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Error::new(TU_E_TIMEOUT, format!("{what} timed out after {secs} s"))
    }
}

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Read,
    Write,
}

/// Waits until `sock` is ready for `want` or the deadline passes. EINTR is
/// retried with the time that is left, so signals never stretch a limit.
pub fn wait(sock: &Socket, want: Want, deadline: &Deadline, what: &str) -> Result<()> {
    let flags = match want {
        Want::Read => PollFlags::IN,
        Want::Write => PollFlags::OUT,
    };
    loop {
        let remaining = deadline.remaining();
        if remaining == Some(Duration::ZERO) {
            return Err(deadline.timeout_error(what));
        }
        let ts = remaining.map(|d| Timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        });
        let mut fds = [PollFd::new(sock, flags)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) => continue, // re-check the clock; the next round returns the timeout
            Ok(_) => return Ok(()), // readable, writable, or an error/hang-up the next call reports
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(os_error(what, e.into())),
        }
    }
}

/// `send` with `MSG_NOSIGNAL`: a closed peer is `EPIPE`, never SIGPIPE.
pub fn send(sock: &Socket, buf: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::net::send(sock.as_fd(), buf, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// `recv` into `buf`. Returns (bytes stored, real length): with `trunc` the
/// real length of a datagram may exceed the buffer (Linux `MSG_TRUNC`).
pub fn recv(sock: &Socket, buf: &mut [u8], trunc: bool) -> io::Result<(usize, usize)> {
    let flags = if trunc { RecvFlags::TRUNC } else { RecvFlags::empty() };
    loop {
        match rustix::net::recv(sock.as_fd(), &mut *buf, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok((stored, real)) => return Ok((stored, real)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copies the first waiting bytes into `buf` without consuming them.
pub fn peek(sock: &Socket, buf: &mut [u8]) -> usize {
    rustix::net::recv(sock.as_fd(), buf, RecvFlags::PEEK | RecvFlags::DONTWAIT).map(|(n, _)| n).unwrap_or(0)
}

/// Bytes waiting in the socket's receive queue (`FIONREAD`).
pub fn pending(sock: &Socket) -> io::Result<u64> {
    rustix::io::ioctl_fionread(sock.as_fd()).map_err(io::Error::from)
}

/// A `std::io::Write` over a non-blocking socket that never raises SIGPIPE;
/// rustls writes its records through it.
pub struct NoSigPipe<'a>(pub &'a Socket);

impl io::Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send(self.0, buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Maps an OS error to a code: refused is `TU_E_REFUSED`, a timeout is
/// `TU_E_TIMEOUT`, the rest `TU_E_IO` with the OS text.
pub fn os_error(what: &str, e: io::Error) -> Error {
    let code = match e.kind() {
        io::ErrorKind::ConnectionRefused => TU_E_REFUSED,
        io::ErrorKind::TimedOut => TU_E_TIMEOUT,
        _ => TU_E_IO,
    };
    Error::new(code, format!("{what}: {e}"))
}

/// Opens the socket a URL names and connects it, all within `deadline`.
pub fn connect(url: &Url, opts: &Options, deadline: &Deadline) -> Result<Socket> {
    if url.transport.is_unix() {
        return connect_unix(url);
    }
    let host = url.host.as_ref().ok_or_else(|| Error::url("the URL has no host"))?;
    let port = match url.port {
        Some(p) => p,
        None => return Err(missing_port(url, host)),
    };
    let addrs = resolve(host, port)?;
    let ty = if url.transport.is_datagram() { Type::DGRAM } else { Type::STREAM };
    let proto = if url.transport.is_datagram() { Protocol::UDP } else { Protocol::TCP };
    let _ = opts;
    let mut failures: Vec<Error> = Vec::new();
    for addr in &addrs {
        if deadline.expired() {
            failures.push(deadline.timeout_error(&format!("connect to {addr}")));
            break;
        }
        match connect_one(addr, ty, proto, deadline) {
            Ok(sock) => return Ok(sock),
            Err(e) => failures.push(e),
        }
    }
    Err(combine(failures, host, port))
}

fn missing_port(url: &Url, host: &Host) -> Error {
    let scheme = url.transport.name();
    let hint = match host {
        Host::V6 { addr, zone } => {
            let z = zone.as_ref().map(|z| format!("%{z}")).unwrap_or_default();
            let text = format!("{addr}{z}");
            // `fe80::1:80` may have meant port 80 of fe80::1.
            let seg: Vec<&str> = text.rsplitn(2, ':').collect();
            let head_is_v6 = seg.len() == 2 && seg[1].parse::<std::net::Ipv6Addr>().is_ok();
            if head_is_v6 && !seg[0].is_empty() && seg[0].chars().all(|c| c.is_ascii_digit()) {
                format!(
                    "; an IPv6 address with a port must be in brackets: {scheme}://[{}]:{} (or {scheme}://[{text}]:PORT)",
                    seg[1], seg[0]
                )
            } else {
                format!("; an IPv6 address with a port must be in brackets: {scheme}://[{text}]:PORT")
            }
        }
        _ => format!("; write {scheme}://{}:PORT", host.to_string_for_display()),
    };
    Error::new(TU_E_URL, format!("missing port: a port is required to connect{hint}"))
}

/// Every address the host stands for, in the resolver's order.
fn resolve(host: &Host, port: u16) -> Result<Vec<SocketAddr>> {
    match host {
        Host::V4(ip) => Ok(vec![SocketAddr::new(IpAddr::V4(*ip), port)]),
        Host::V6 { addr, zone } => {
            let scope = match zone {
                None => 0,
                Some(z) => scope_id(z)?,
            };
            Ok(vec![SocketAddr::V6(SocketAddrV6::new(*addr, port, 0, scope))])
        }
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::new(TU_E_RESOLVE, format!("cannot resolve host '{name}': {e}")))?
                .collect();
            if addrs.is_empty() {
                return Err(Error::new(TU_E_RESOLVE, format!("host '{name}' has no addresses")));
            }
            Ok(addrs)
        }
    }
}

/// The scope id of an IPv6 zone: an interface name or a number.
fn scope_id(zone: &str) -> Result<u32> {
    if let Ok(n) = zone.parse::<u32>() {
        return Ok(n);
    }
    let index = std::fs::read_to_string(format!("/sys/class/net/{zone}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match index {
        Some(i) if !zone.contains('/') && !zone.starts_with('.') => Ok(i),
        _ => Err(Error::url(format!("unknown network interface '{zone}' in IPv6 zone"))),
    }
}

fn connect_one(addr: &SocketAddr, ty: Type, proto: Protocol, deadline: &Deadline) -> Result<Socket> {
    let what = format!("connect to {addr}");
    let sock = Socket::new(Domain::for_address(*addr), ty, Some(proto)).map_err(|e| os_error(&what, e))?;
    sock.set_nonblocking(true).map_err(|e| os_error(&what, e))?;
    if ty == Type::STREAM {
        // As curl does: small writes go out at once.
        sock.set_nodelay(true).map_err(|e| os_error(&what, e))?;
    }
    match sock.connect(&SockAddr::from(*addr)) {
        Ok(()) => return Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(os_error(&what, e)),
    }
    wait(&sock, Want::Write, deadline, &what)?;
    match sock.take_error() {
        Ok(None) => Ok(sock),
        Ok(Some(e)) | Err(e) => Err(os_error(&what, e)),
    }
}

fn combine(mut failures: Vec<Error>, host: &Host, port: u16) -> Error {
    if failures.len() == 1 {
        return failures.pop().expect("one failure");
    }
    // The most telling code wins: a timeout, then refused, then the last.
    let code = [TU_E_TIMEOUT, TU_E_REFUSED]
        .into_iter()
        .find(|c| failures.iter().any(|f| f.code == *c))
        .unwrap_or_else(|| failures.last().map(|f| f.code).unwrap_or(TU_E_IO));
    let list: Vec<String> = failures.iter().map(|f| f.message.clone()).collect();
    Error::new(
        code,
        format!("could not connect to {}:{port} ({} addresses tried): {}", host.to_string_for_display(), list.len(), list.join("; ")),
    )
}

fn connect_unix(url: &Url) -> Result<Socket> {
    let path = url.path.as_deref().ok_or_else(|| Error::url("unix URL without a path"))?;
    let what = format!("connect to {}://{path}", url.transport.name());
    let ty = if url.transport == Transport::Udg { Type::DGRAM } else { Type::STREAM };
    let sock = Socket::new(Domain::UNIX, ty, None).map_err(|e| os_error(&what, e))?;
    if url.transport == Transport::Udg {
        // An automatic (abstract) address, so that the peer can answer.
        let auto = SockAddr::unix("").map_err(|e| os_error(&what, e))?;
        autobind(&sock, &auto).map_err(|e| os_error(&what, e))?;
    }
    let addr = SockAddr::unix(path).map_err(|e| os_error(&what, e))?;
    sock.connect(&addr).map_err(|e| os_error(&what, e))?;
    sock.set_nonblocking(true).map_err(|e| os_error(&what, e))?;
    Ok(sock)
}

/// Linux autobinds a Unix socket bound to an address of only the family.
fn autobind(sock: &Socket, empty: &SockAddr) -> io::Result<()> {
    sock.bind(empty)
}
