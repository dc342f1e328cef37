//! Sockets: resolving (under the connect deadline), connecting with Happy
//! Eyeballs (RFC 8305), the `socket.*` options, and the few system calls the
//! rest of the crate needs (poll, send without SIGPIPE, recv), all safe
//! wrappers.
//!
//! Every socket is non-blocking inside the library; blocking behaviour is
//! built from `poll` with a deadline, so one thread can read while another
//! writes, and a peer that drip-feeds bytes cannot stretch a time limit.
//! EINTR is retried everywhere with the time that is left: a signal never
//! surfaces as an error and never stretches a limit.

use crate::error::{Error, Result, TU_E_INVALID_ARGUMENT, TU_E_IO, TU_E_REFUSED, TU_E_RESOLVE, TU_E_TIMEOUT, TU_E_URL};
use crate::options::{parse_bool, parse_limit, printable, Limit, Options};
use crate::url::{Host, Transport, Url};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{RecvFlags, SendFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// RFC 8305's recommended "Connection Attempt Delay".
const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// How long to sleep between tries when a Unix listener's backlog is full
/// (a non-blocking `connect` there says EAGAIN and cannot be polled).
const UNIX_BACKLOG_RETRY: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------
// Deadlines and waiting

/// A point in time after which an operation fails with `TU_E_TIMEOUT`;
/// `None` means no limit.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Option<Instant>,
    limit: Limit,
}

impl Deadline {
    pub fn after(limit: Limit) -> Self {
        Deadline { at: limit.and_then(|d| Instant::now().checked_add(d)), limit }
    }

    /// No limit.
    pub fn never() -> Self {
        Deadline { at: None, limit: None }
    }

    pub fn expired(&self) -> bool {
        matches!(self.at, Some(at) if Instant::now() >= at)
    }

    /// Time left (zero once passed); `None` without a limit.
    pub fn remaining(&self) -> Option<Duration> {
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

/// `poll` on `fds` until one is ready or `timeout` passes. Returns the
/// number ready (0 on timeout). EINTR is retried with the time left.
fn poll_until(fds: &mut [PollFd<'_>], until: Option<Instant>) -> io::Result<usize> {
    loop {
        let ts = until.map(|at| {
            let d = at.saturating_duration_since(Instant::now());
            Timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ }
        });
        match rustix::event::poll(fds, ts.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Waits until `sock` is ready for `want` or the deadline passes. EINTR is
/// retried with the time that is left, so signals never stretch a limit.
pub fn wait(sock: &Socket, want: Want, deadline: &Deadline, what: &str) -> Result<()> {
    wait_for(sock, want == Want::Read, want == Want::Write, deadline, what)
}

/// [`wait`] for readable and/or writable.
pub fn wait_for(sock: &Socket, read: bool, write: bool, deadline: &Deadline, what: &str) -> Result<()> {
    let mut flags = PollFlags::empty();
    if read {
        flags |= PollFlags::IN;
    }
    if write {
        flags |= PollFlags::OUT;
    }
    loop {
        if deadline.expired() {
            return Err(deadline.timeout_error(what));
        }
        let mut fds = [PollFd::new(sock, flags)];
        match poll_until(&mut fds, deadline.at) {
            Ok(0) => continue, // re-check the clock; the next round returns the timeout
            Ok(_) => return Ok(()), // ready, or an error/hang-up that the next call reports
            Err(e) => return Err(os_error(what, e)),
        }
    }
}

// ---------------------------------------------------------------------------
// Sending and receiving

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

/// `recv` into the spare capacity of `buf` (no zeroing), growing its
/// length by what came. Ok(0) at EOF.
pub fn recv_spare(sock: &Socket, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        match rustix::net::recv(sock.as_fd(), rustix::buffer::spare_capacity(buf), RecvFlags::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok((n, _)) => return Ok(n),
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

/// `shutdown(2)`. A socket the peer already dropped (ENOTCONN) is fine:
/// the point is that nothing more goes that way. Also wakes a thread that
/// waits in `poll` on this socket.
pub fn shutdown(sock: &Socket, how: Shutdown) -> Result<()> {
    match sock.shutdown(how) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
        Err(e) => Err(os_error("shutdown", e)),
    }
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

/// The symbolic name of the errno values worth naming in messages, so that
/// `EMFILE` can be searched for (the OS text alone is locale-dependent).
fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETDOWN => "ENETDOWN",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ENOTDIR => "ENOTDIR",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EINVAL => "EINVAL",
        libc::ENODEV => "ENODEV",
        _ => return None,
    })
}

/// Maps an OS error to a code: refused is `TU_E_REFUSED`, a timeout is
/// `TU_E_TIMEOUT`, the rest `TU_E_IO`. The message has the OS text and the
/// errno's name: `connect to 127.0.0.1:80: EMFILE: Too many open files (os error 24)`.
pub fn os_error(what: &str, e: io::Error) -> Error {
    let code = match e.kind() {
        io::ErrorKind::ConnectionRefused => TU_E_REFUSED,
        io::ErrorKind::TimedOut => TU_E_TIMEOUT,
        _ => TU_E_IO,
    };
    match e.raw_os_error().and_then(errno_name) {
        Some(name) => Error::new(code, format!("{what}: {name}: {e}")),
        None => Error::new(code, format!("{what}: {e}")),
    }
}

// ---------------------------------------------------------------------------
// Socket options (`socket.*`, `happy_eyeballs_delay`)

/// `socket.bindto`: the local address to connect from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindTo {
    /// `0:PORT`: any local address (of the family being tried), this port.
    AnyAddress(u16),
    /// `IP:PORT` or `[IPv6]:PORT`; port 0 lets the system choose.
    Address(SocketAddr),
}

impl BindTo {
    /// Parses `ip:port`, `[v6]:port`, `[v6%zone]:port` or `0:port`.
    pub fn parse(key: &str, value: &str) -> Result<BindTo> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "option {key}: '{}' {why}; use IP:PORT, [IPv6]:PORT or 0:PORT (port 0 lets the system choose)",
                printable(value)
            ))
        };
        let colon = value.rfind(':').ok_or_else(|| bad("has no port"))?;
        let (ip, port) = (&value[..colon], &value[colon + 1..]);
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("has no valid port"));
        }
        let port: u16 = port.parse().map_err(|_| bad("has a port out of range (0..65535)"))?;
        if ip == "0" {
            return Ok(BindTo::AnyAddress(port));
        }
        if let Some(inner) = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let (addr, zone) = match inner.split_once('%') {
                Some((a, z)) => (a, Some(z.strip_prefix("25").filter(|z| !z.is_empty()).unwrap_or(z))),
                None => (inner, None),
            };
            let addr: Ipv6Addr = addr.parse().map_err(|_| bad("is not a valid IPv6 address"))?;
            let scope = match zone {
                None => 0,
                Some(z) => scope_id(z).map_err(|e| Error::invalid(format!("option {key}: {}", e.message)))?,
            };
            return Ok(BindTo::Address(SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope))));
        }
        if ip.contains(':') {
            return Err(bad("has an IPv6 address without brackets"));
        }
        let v4: Ipv4Addr = ip.parse().map_err(|_| bad("is not a dotted-quad IPv4 address"))?;
        Ok(BindTo::Address(SocketAddr::new(IpAddr::V4(v4), port)))
    }

    /// The address to bind for a connection to `peer`, or why none fits.
    fn for_peer(&self, peer: &SocketAddr) -> Result<SocketAddr> {
        match self {
            BindTo::AnyAddress(port) => Ok(match peer {
                SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port),
                SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), *port),
            }),
            BindTo::Address(a) if a.is_ipv4() == peer.is_ipv4() => Ok(*a),
            BindTo::Address(a) => Err(Error::new(
                TU_E_INVALID_ARGUMENT,
                format!(
                    "connect to {peer}: socket.bindto {a} is {} and cannot reach an {} address",
                    if a.is_ipv4() { "IPv4" } else { "IPv6" },
                    if peer.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
            )),
        }
    }
}

/// The `socket.*` options and the Happy Eyeballs delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    pub bindto: Option<BindTo>,
    /// `TCP_NODELAY`; on by default, as curl does.
    pub tcp_nodelay: bool,
    /// `SO_KEEPALIVE` with this idle time and probe interval (whole seconds);
    /// `None` (the default) leaves keep-alive off.
    pub keepalive: Option<u32>,
    /// Happy Eyeballs: how long an attempt runs before the next address is
    /// tried too. `None` (`-1`): one address after another, each until it fails.
    pub happy_eyeballs_delay: Limit,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions { bindto: None, tcp_nodelay: true, keepalive: None, happy_eyeballs_delay: Some(DEFAULT_ATTEMPT_DELAY) }
    }
}

/// The keys [`SocketOptions::set`] takes.
pub const SOCKET_KEYS: &[&str] = &["socket.bindto", "socket.tcp_nodelay", "socket.keepalive", "happy_eyeballs_delay"];

impl SocketOptions {
    /// Checks and stores one of [`SOCKET_KEYS`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "socket.bindto" => self.bindto = Some(BindTo::parse(key, value)?),
            "socket.tcp_nodelay" => self.tcp_nodelay = parse_bool(key, value)?,
            "socket.keepalive" => self.keepalive = parse_keepalive(key, value)?,
            "happy_eyeballs_delay" => self.happy_eyeballs_delay = parse_limit(key, value)?,
            _ => return Err(Error::invalid(format!("unknown socket option key '{}'", printable(key)))),
        }
        Ok(())
    }
}

/// Idle time before keep-alive probes when `socket.keepalive=true`.
pub const DEFAULT_KEEPALIVE_SECS: u32 = 60;

/// Whole seconds 1..32767 (Linux's limit for `TCP_KEEPIDLE`), or `0` for off;
/// a boolean also works (`true`: 60 s, `false`: off).
fn parse_keepalive(key: &str, value: &str) -> Result<Option<u32>> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(on) = parse_bool(key, value) {
            return Ok(on.then_some(DEFAULT_KEEPALIVE_SECS));
        }
    }
    let ok = !value.is_empty() && value.len() <= 6 && value.bytes().all(|b| b.is_ascii_digit());
    let secs: u32 = if ok { value.parse().unwrap_or(u32::MAX) } else { u32::MAX };
    match secs {
        0 => Ok(None),
        1..=32_767 => Ok(Some(secs)),
        _ => Err(Error::invalid(format!(
            "option {key}: '{}' is not a whole number of seconds in 1..32767, true (60 s) or false (0 and false turn keep-alive off)",
            printable(value)
        ))),
    }
}

// ---------------------------------------------------------------------------
// Connecting

/// Stream (TCP) or datagram (UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Datagram,
}

/// Opens the socket a URL names and connects it, all within `deadline`:
/// name resolution, every attempt, and the waits between them.
pub fn connect(url: &Url, opts: &Options, deadline: &Deadline) -> Result<Socket> {
    if url.transport.is_unix() {
        return connect_unix(url, opts, deadline);
    }
    let host = url.host.as_ref().ok_or_else(|| Error::url("the URL has no host"))?;
    let port = match url.port {
        Some(p) => p,
        None => return Err(missing_port(url, host)),
    };
    let addrs = resolve(host, port, deadline)?;
    let kind = if url.transport.is_datagram() { Kind::Datagram } else { Kind::Stream };
    connect_addrs(&addrs, kind, &opts.socket, deadline, &format!("{}:{port}", host_label(host)))
}

fn host_label(host: &Host) -> String {
    match host {
        Host::V6 { .. } => format!("[{}]", host.to_string_for_display()),
        other => other.to_string_for_display(),
    }
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

/// Every address the host stands for, in the resolver's order. A name is
/// looked up in a helper thread, so that the lookup ends at the deadline
/// (getaddrinfo has no time limit of its own); a lookup that outlives the
/// deadline finishes in the background and its answer is dropped.
fn resolve(host: &Host, port: u16, deadline: &Deadline) -> Result<Vec<SocketAddr>> {
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
            let found = lookup_with_deadline(name, port, deadline)?;
            let addrs = found.map_err(|e| match e.raw_os_error() {
                // getaddrinfo's EAI_SYSTEM: the lookup could not run (no
                // descriptor or memory left); the name is not at fault.
                Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS) => {
                    os_error(&format!("resolving host '{name}'"), e)
                }
                _ => Error::new(TU_E_RESOLVE, format!("cannot resolve host '{name}': {e}")),
            })?;
            if addrs.is_empty() {
                return Err(Error::new(TU_E_RESOLVE, format!("host '{name}' has no addresses")));
            }
            Ok(addrs)
        }
    }
}

type Lookup = io::Result<Vec<SocketAddr>>;

fn lookup_with_deadline(name: &str, port: u16, deadline: &Deadline) -> Result<Lookup> {
    let what = format!("resolving host '{name}'");
    if deadline.expired() {
        return Err(deadline.timeout_error(&what));
    }
    let owned = name.to_string();
    let (tx, rx) = std::sync::mpsc::channel::<Lookup>();
    let spawned = std::thread::Builder::new().name("tu-resolve".into()).spawn(move || {
        let _ = tx.send(system_lookup(&owned, port));
    });
    if spawned.is_err() {
        // No thread to spare: look up here, without the time limit.
        return Ok(system_lookup(name, port));
    }
    let got = match deadline.remaining() {
        None => rx.recv().map_err(|_| ()),
        Some(left) => rx.recv_timeout(left).map_err(|_| ()),
    };
    match got {
        Ok(found) => Ok(found),
        Err(()) if deadline.expired() => Err(deadline.timeout_error(&what)),
        Err(()) => Err(Error::new(TU_E_RESOLVE, format!("{what}: the resolver thread ended without an answer"))),
    }
}

fn system_lookup(name: &str, port: u16) -> Lookup {
    #[cfg(feature = "test-hooks")]
    if let Some((addrs, delay)) = test_hooks::fake(name) {
        std::thread::sleep(delay);
        return Ok(addrs.into_iter().map(|ip| SocketAddr::new(ip, port)).collect());
    }
    Ok((name, port).to_socket_addrs()?.collect())
}

#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    //! Test-only name resolution: a name answers with chosen addresses after
    //! a chosen delay, so that Happy Eyeballs and the resolution deadline
    //! can be tested on loopback.
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Mutex;
    use std::time::Duration;

    type Table = HashMap<String, (Vec<IpAddr>, Duration)>;
    static FAKE: Mutex<Option<Table>> = Mutex::new(None);

    /// From now on `name` resolves to `addrs` (in this order) after `delay`.
    pub fn fake_dns(name: &str, addrs: &[IpAddr], delay: Duration) {
        let mut t = FAKE.lock().unwrap_or_else(|p| p.into_inner());
        t.get_or_insert_with(HashMap::new).insert(name.to_string(), (addrs.to_vec(), delay));
    }

    pub(super) fn fake(name: &str) -> Option<(Vec<IpAddr>, Duration)> {
        FAKE.lock().unwrap_or_else(|p| p.into_inner()).as_ref()?.get(name).cloned()
    }
}

/// The scope id of an IPv6 zone: an interface name or a number. An unknown
/// interface is an error (TU_E_URL), never a silent scope 0.
pub fn scope_id(zone: &str) -> Result<u32> {
    if !zone.is_empty() && zone.bytes().all(|b| b.is_ascii_digit()) {
        return zone.parse::<u32>().map_err(|_| Error::url(format!("IPv6 zone '{zone}' is out of range")));
    }
    let safe = !zone.is_empty() && !zone.contains('/') && !zone.starts_with('.');
    let index = if safe {
        std::fs::read_to_string(format!("/sys/class/net/{zone}/ifindex")).ok().and_then(|s| s.trim().parse::<u32>().ok())
    } else {
        None
    };
    index.ok_or_else(|| Error::url(format!("unknown network interface '{}' in IPv6 zone", printable(zone))))
}

/// RFC 8305 §4: alternate the address families, starting with the family
/// of the resolver's first (preferred) answer; each family keeps its order.
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return Vec::new() };
    let (mut a, mut b): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|x| x.is_ipv4() == first.is_ipv4());
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !a.is_empty() || !b.is_empty() {
        out.extend(a.pop());
        out.extend(b.pop());
    }
    out
}

/// A socket for `peer` with the `socket.*` options applied and, if asked,
/// bound; non-blocking and close-on-exec.
fn open_socket(peer: &SocketAddr, kind: Kind, sopts: &SocketOptions) -> Result<Socket> {
    let what = format!("connect to {peer}");
    let bind = sopts.bindto.as_ref().map(|b| b.for_peer(peer)).transpose()?;
    let (ty, proto) = match kind {
        Kind::Stream => (Type::STREAM, Protocol::TCP),
        Kind::Datagram => (Type::DGRAM, Protocol::UDP),
    };
    let sock = Socket::new(Domain::for_address(*peer), ty, Some(proto)).map_err(|e| os_error(&what, e))?;
    sock.set_nonblocking(true).map_err(|e| os_error(&what, e))?;
    if kind == Kind::Stream {
        sock.set_nodelay(sopts.tcp_nodelay).map_err(|e| os_error(&what, e))?;
        if let Some(secs) = sopts.keepalive {
            let d = Duration::from_secs(u64::from(secs));
            let ka = TcpKeepalive::new().with_time(d).with_interval(d);
            sock.set_tcp_keepalive(&ka).map_err(|e| os_error(&format!("{what}: socket.keepalive"), e))?;
        }
    }
    if let Some(local) = bind {
        sock.bind(&SockAddr::from(local))
            .map_err(|e| os_error(&format!("{what}: bind to {local} (socket.bindto)"), e))?;
    }
    Ok(sock)
}

/// Starts a connect: `Ok(true)` when connected at once, `Ok(false)` when
/// in progress (poll for writable).
fn start_connect(sock: &Socket, peer: &SocketAddr) -> Result<bool> {
    match sock.connect(&SockAddr::from(*peer)) {
        Ok(()) => Ok(true),
        // After EINTR a non-blocking connect goes on in the background.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS) | Some(libc::EINTR)) => Ok(false),
        Err(e) => Err(os_error(&format!("connect to {peer}"), e)),
    }
}

struct Attempt {
    sock: Socket,
    peer: SocketAddr,
}

/// Connects to the first of `addrs` that answers (Happy Eyeballs v2, RFC
/// 8305 §5): the families are interleaved, a new attempt starts every
/// `happy_eyeballs_delay` (or at once when one fails) while the earlier
/// ones go on, the first to connect wins and the others are closed.
/// Everything ends at `deadline`. `label` (`host:port`) names the target in
/// errors. Datagram sockets connect without a handshake, so for them the
/// first address that can be connected is used.
pub fn connect_addrs(
    addrs: &[SocketAddr],
    kind: Kind,
    sopts: &SocketOptions,
    deadline: &Deadline,
    label: &str,
) -> Result<Socket> {
    let order = interleave(addrs);
    let mut queue = order.iter();
    let mut failures: Vec<Error> = Vec::new();
    if kind == Kind::Datagram {
        for peer in queue {
            let r = open_socket(peer, kind, sopts).and_then(|s| start_connect(&s, peer).map(|_| s));
            match r {
                Ok(sock) => return Ok(sock),
                Err(e) => failures.push(e),
            }
        }
        return Err(combine(failures, label, order.len()));
    }
    let mut inflight: Vec<Attempt> = Vec::new();
    let mut exhausted = false;
    // When the next attempt may start; `None` while waiting for a failure.
    let mut next_start: Option<Instant> = Some(Instant::now());
    loop {
        let now = Instant::now();
        if !exhausted && (inflight.is_empty() || next_start.is_some_and(|t| now >= t)) {
            match queue.next() {
                None => exhausted = true,
                Some(peer) => {
                    let started = open_socket(peer, kind, sopts)
                        .and_then(|sock| start_connect(&sock, peer).map(|done| (sock, done)));
                    match started {
                        Ok((sock, true)) => return Ok(sock),
                        Ok((sock, false)) => {
                            inflight.push(Attempt { sock, peer: *peer });
                            next_start = sopts.happy_eyeballs_delay.map(|d| now + d);
                        }
                        Err(e) => {
                            // A failure starts the next attempt at once (RFC 8305 §5).
                            failures.push(e);
                            next_start = Some(now);
                        }
                    }
                    continue;
                }
            }
        }
        if inflight.is_empty() {
            return Err(combine(failures, label, order.len()));
        }
        if deadline.expired() {
            for a in &inflight {
                failures.push(deadline.timeout_error(&format!("connect to {}", a.peer)));
            }
            return Err(combine(failures, label, order.len()));
        }
        let wake = match (deadline.at, if exhausted { None } else { next_start }) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd<'_>> = inflight.iter().map(|a| PollFd::new(&a.sock, PollFlags::OUT)).collect();
            match poll_until(&mut fds, wake) {
                Ok(0) => continue,
                Ok(_) => (0..fds.len()).filter(|&i| !fds[i].revents().is_empty()).collect(),
                Err(e) => return Err(os_error(&format!("connect to {label}"), e)),
            }
        };
        let mut done: Vec<Attempt> = ready.into_iter().rev().map(|i| inflight.remove(i)).collect();
        done.reverse();
        for a in done {
            match a.sock.take_error() {
                Ok(None) => return Ok(a.sock), // the others close as they drop
                Ok(Some(e)) | Err(e) => failures.push(os_error(&format!("connect to {}", a.peer), e)),
            }
            // A failure starts the next attempt at once (RFC 8305 §5).
            next_start = Some(Instant::now());
        }
    }
}

fn combine(mut failures: Vec<Error>, label: &str, total: usize) -> Error {
    if failures.len() == 1 && total <= 1 {
        return failures.pop().expect("one failure");
    }
    if failures.is_empty() {
        return Error::new(TU_E_IO, format!("could not connect to {label}: no address to try"));
    }
    // The most telling code wins: a timeout, then refused, then the last.
    let code = [TU_E_TIMEOUT, TU_E_REFUSED]
        .into_iter()
        .find(|c| failures.iter().any(|f| f.code == *c))
        .unwrap_or_else(|| failures.last().map(|f| f.code).unwrap_or(TU_E_IO));
    let list: Vec<String> = failures.iter().map(|f| f.message.clone()).collect();
    Error::new(
        code,
        format!("could not connect to {label} ({} of {total} addresses tried): {}", list.len(), list.join("; ")),
    )
}

fn connect_unix(url: &Url, opts: &Options, deadline: &Deadline) -> Result<Socket> {
    let path = url.path.as_deref().ok_or_else(|| Error::url("unix URL without a path"))?;
    let what = format!("connect to {}://{path}", url.transport.name());
    if opts.socket.bindto.is_some() {
        return Err(Error::invalid(format!(
            "{what}: socket.bindto applies to tcp, udp and TLS connections, not to {}://",
            url.transport.name()
        )));
    }
    let datagram = url.transport == Transport::Udg;
    let ty = if datagram { Type::DGRAM } else { Type::STREAM };
    let sock = Socket::new(Domain::UNIX, ty, None).map_err(|e| os_error(&what, e))?;
    sock.set_nonblocking(true).map_err(|e| os_error(&what, e))?;
    if datagram {
        // Binding an address of only the family makes Linux choose an
        // automatic (abstract) name, so that the peer can answer.
        let auto = SockAddr::unix("").map_err(|e| os_error(&what, e))?;
        sock.bind(&auto).map_err(|e| os_error(&format!("{what}: automatic bind"), e))?;
    }
    let addr = SockAddr::unix(path).map_err(|e| os_error(&what, e))?;
    loop {
        match sock.connect(&addr) {
            Ok(()) => return Ok(sock),
            // The listener's backlog is full: poll cannot tell when it has
            // room, so try again shortly, within the deadline.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if deadline.expired() {
                    return Err(deadline.timeout_error(&what));
                }
                let nap = deadline.remaining().map_or(UNIX_BACKLOG_RETRY, |r| r.min(UNIX_BACKLOG_RETRY));
                std::thread::sleep(nap);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS) | Some(libc::EINTR)) => {
                wait(&sock, Want::Write, deadline, &what)?;
                return match sock.take_error() {
                    Ok(None) => Ok(sock),
                    Ok(Some(e)) | Err(e) => Err(os_error(&what, e)),
                };
            }
            Err(e) => return Err(os_error(&what, e)),
        }
    }
}

// ---------------------------------------------------------------------------
// Addresses as text

/// `127.0.0.1:5555`, `[::1]:5555`, `[fe80::1%2]:80`, a Unix path, `@name`
/// for an abstract Unix address, or the empty string for an unnamed one.
pub fn format_addr(addr: &SockAddr) -> String {
    if let Some(sa) = addr.as_socket() {
        return sa.to_string();
    }
    if let Some(p) = addr.as_pathname() {
        return p.to_string_lossy().into_owned();
    }
    if let Some(name) = addr.as_abstract_namespace() {
        return format!("@{}", String::from_utf8_lossy(name));
    }
    String::new()
}

pub fn local_address(sock: &Socket) -> Result<String> {
    sock.local_addr().map(|a| format_addr(&a)).map_err(|e| os_error("local address", e))
}

pub fn peer_address(sock: &Socket) -> Result<String> {
    sock.peer_addr().map(|a| format_addr(&a)).map_err(|e| os_error("peer address", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn interleaving() {
        let got = interleave(&[sa("[::1]:1"), sa("[::2]:1"), sa("[::3]:1"), sa("1.1.1.1:1"), sa("2.2.2.2:1")]);
        let want = [sa("[::1]:1"), sa("1.1.1.1:1"), sa("[::2]:1"), sa("2.2.2.2:1"), sa("[::3]:1")];
        assert_eq!(got, want);
        let got = interleave(&[sa("1.1.1.1:1"), sa("[::1]:1"), sa("[::2]:1")]);
        assert_eq!(got, [sa("1.1.1.1:1"), sa("[::1]:1"), sa("[::2]:1")]);
        assert!(interleave(&[]).is_empty());
    }

    #[test]
    fn bindto_forms() {
        let p = |v| BindTo::parse("socket.bindto", v);
        assert_eq!(p("127.0.0.1:0").unwrap(), BindTo::Address(sa("127.0.0.1:0")));
        assert_eq!(p("[::1]:8080").unwrap(), BindTo::Address(sa("[::1]:8080")));
        assert_eq!(p("0:7000").unwrap(), BindTo::AnyAddress(7000));
        assert_eq!(p("[::1%lo]:0").unwrap(), BindTo::Address(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 1))));
        for bad in ["", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.1:0", "::1:80", "[::1]", "[x]:1", "1.2.3.4:+1", "[::1%nosuchif0]:0"] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.code, TU_E_INVALID_ARGUMENT, "{bad}");
            assert!(e.message.contains("socket.bindto"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn keepalive_values() {
        assert_eq!(parse_keepalive("socket.keepalive", "0").unwrap(), None);
        assert_eq!(parse_keepalive("socket.keepalive", "30").unwrap(), Some(30));
        for bad in ["", "-1", "1.5", "32768", "abc", " 1"] {
            let e = parse_keepalive("socket.keepalive", bad).unwrap_err();
            assert!(e.message.contains("socket.keepalive"), "{bad}");
        }
    }

    #[test]
    fn zones() {
        assert_eq!(scope_id("lo").unwrap(), 1);
        assert_eq!(scope_id("7").unwrap(), 7);
        for bad in ["nosuchif0", "../lo", ".", ""] {
            let e = scope_id(bad).unwrap_err();
            assert_eq!(e.code, TU_E_URL);
            assert!(e.message.contains("unknown network interface"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn errno_names_in_messages() {
        let e = os_error("connect to x", io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(e.code, TU_E_IO);
        assert!(e.message.contains("EMFILE"), "{}", e.message);
        assert_eq!(os_error("x", io::Error::from_raw_os_error(libc::ECONNREFUSED)).code, TU_E_REFUSED);
    }
}
