//! Transport URLs (DESIGN §1): `[transport "://"] host [":" port]` and
//! `unix://PATH` / `udg://PATH`.
//!
//! Pure parsing: no I/O, no name resolution, no `unsafe`. Every error is a
//! `TU_E_URL` (or `TU_E_UNSUPPORTED_TRANSPORT` / `TU_E_INSECURE_PROTOCOL` for the
//! scheme, `TU_E_INVALID_ARGUMENT` for non-UTF-8 bytes) whose message says what is
//! wrong and where: "... at offset N", N being a byte offset into the input.
//!
//! Offsets point at the offending piece: the character for a bad character, the
//! start of the host or label for host errors, and the `:` that introduces the
//! port for port errors (`tcp://127.0.0.1:65536` → "port 65536 out of range
//! (1..65535) at offset 15").

use crate::error::{
    Error, Result, TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT, TU_E_UNSUPPORTED_TRANSPORT,
    TU_E_URL,
};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest Unix-domain socket path in bytes (`sun_path` is 108 bytes with its NUL).
pub const MAX_UNIX_PATH: usize = 107;
/// Longest host name in bytes, without the optional trailing dot.
pub const MAX_HOST_NAME: usize = 253;
/// Longest label of a host name in bytes.
pub const MAX_LABEL: usize = 63;
/// Longest IPv6 zone in bytes: an interface name (IFNAMSIZ 16 with its NUL) or
/// an index. Longer zones cannot name anything, and would not fit `tu_url_parts`.
pub const MAX_ZONE: usize = 15;
/// The transports this library opens, in the order error messages list them.
pub const SUPPORTED_TRANSPORTS: &str = "tcp, udp, ssl, tls, tlsv1.2, tlsv1.3, unix, udg";

/// Longest piece of input quoted in an error message (the C side has 512 bytes).
const QUOTE_MAX: usize = 60;

/// A transport: the part before `://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    Ssl,
    Tls,
    TlsV1_2,
    TlsV1_3,
    Unix,
    Udg,
}

impl Transport {
    /// Every transport, in the order of [`SUPPORTED_TRANSPORTS`].
    pub const ALL: [Transport; 8] = [
        Transport::Tcp,
        Transport::Udp,
        Transport::Ssl,
        Transport::Tls,
        Transport::TlsV1_2,
        Transport::TlsV1_3,
        Transport::Unix,
        Transport::Udg,
    ];

    /// The canonical (lowercase) scheme name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Ssl => "ssl",
            Transport::Tls => "tls",
            Transport::TlsV1_2 => "tlsv1.2",
            Transport::TlsV1_3 => "tlsv1.3",
            Transport::Unix => "unix",
            Transport::Udg => "udg",
        }
    }

    /// The transport of a scheme name, case-insensitively; `None` for unknown
    /// names and for the refused insecure ones.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// TCP + TLS.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Transport::Ssl | Transport::Tls | Transport::TlsV1_2 | Transport::TlsV1_3
        )
    }

    /// One write = one datagram.
    pub fn is_datagram(self) -> bool {
        matches!(self, Transport::Udp | Transport::Udg)
    }

    /// Unix-domain socket: a path, no host, no port.
    pub fn is_unix(self) -> bool {
        matches!(self, Transport::Unix | Transport::Udg)
    }
}

/// The recognised but refused schemes, with the protocol they name.
const INSECURE: &[(&str, &str)] = &[
    ("sslv2", "SSL 2.0"),
    ("sslv3", "SSL 3.0"),
    ("tlsv1.0", "TLS 1.0"),
    ("tlsv1.1", "TLS 1.1"),
];

/// A checked host: nothing here needs a lookup to be known valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    V4(Ipv4Addr),
    /// `zone` is the text after `%` (or after `%25`), never empty.
    V6 {
        addr: Ipv6Addr,
        zone: Option<String>,
    },
    /// ASCII (IDNA-converted), lowercase, without the trailing dot.
    Name(String),
}

impl Host {
    /// `127.0.0.1`, `fe80::1%eth0` (no brackets), `example.com`.
    pub fn to_string_for_display(&self) -> String {
        match self {
            Host::V4(a) => a.to_string(),
            Host::V6 { addr, zone: None } => addr.to_string(),
            Host::V6 {
                addr,
                zone: Some(z),
            } => format!("{addr}%{z}"),
            Host::Name(n) => n.clone(),
        }
    }
}

/// A parsed transport URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub transport: Transport,
    /// False when the input had no `name://` (the transport is then tcp).
    pub explicit_scheme: bool,
    /// `None` for unix/udg.
    pub host: Option<Host>,
    /// `None` when the input had none.
    pub port: Option<u16>,
    /// `Some` for unix/udg only.
    pub path: Option<String>,
}

impl Url {
    /// Canonical text: lowercase scheme (omitted when the input had none and the
    /// transport is tcp), IPv6 bracketed when a port follows and bare otherwise.
    /// `parse(&u.format()) == Ok(u)` for every `u` that `parse` returns.
    pub fn format(&self) -> String {
        let mut s = String::new();
        if self.transport.is_unix() {
            s.push_str(self.transport.name());
            s.push_str("://");
            s.push_str(self.path.as_deref().unwrap_or(""));
            return s;
        }
        if self.explicit_scheme || self.transport != Transport::Tcp {
            s.push_str(self.transport.name());
            s.push_str("://");
        }
        match &self.host {
            Some(Host::V4(a)) => s.push_str(&a.to_string()),
            Some(Host::V6 { addr, zone }) => {
                let bracket = self.port.is_some();
                if bracket {
                    s.push('[');
                }
                s.push_str(&addr.to_string());
                if let Some(z) = zone {
                    // A zone that itself starts with "25" must be written after an
                    // explicit "%25", or parsing would take that "%25" as the escape.
                    s.push_str(if z.starts_with("25") { "%25" } else { "%" });
                    s.push_str(z);
                }
                if bracket {
                    s.push(']');
                }
            }
            Some(Host::Name(n)) => s.push_str(n),
            None => {}
        }
        if let Some(p) = self.port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        s
    }
}

// ---------------------------------------------------------------------------
// Entry points

/// Parse a transport URL (DESIGN §1). A missing port is not an error here
/// (`port: None`); the connect step requires one.
pub fn parse(input: &str) -> Result<Url> {
    if input.is_empty() {
        return Err(url_err("empty URL at offset 0".to_string()));
    }
    let (transport, explicit, start) = match split_scheme(input)? {
        Some((t, end)) => (t, true, end),
        None => (Transport::Tcp, false, 0),
    };
    if transport.is_unix() {
        let path = parse_unix_path(input, start, transport)?;
        return Ok(Url {
            transport,
            explicit_scheme: true,
            host: None,
            port: None,
            path: Some(path),
        });
    }
    if !explicit {
        check_scheme_typo(input)?;
    }
    let (host, port) = parse_authority(input, start)?;
    Ok(Url {
        transport,
        explicit_scheme: explicit,
        host: Some(host),
        port,
        path: None,
    })
}

/// [`parse`] for raw bytes: non-UTF-8 input is `TU_E_INVALID_ARGUMENT` naming the
/// offset of the first bad byte.
pub fn parse_bytes(input: &[u8]) -> Result<Url> {
    match std::str::from_utf8(input) {
        Ok(s) => parse(s),
        Err(e) => {
            let at = e.valid_up_to();
            Err(Error::new(
                TU_E_INVALID_ARGUMENT,
                format!(
                    "URL is not valid UTF-8: byte 0x{:02x} at offset {at}",
                    input[at]
                ),
            ))
        }
    }
}

/// fsockopen style with the port as C passes it (`int32_t`): 1..65535, or 0
/// when `input` carries the port. Anything else is `TU_E_URL`.
pub fn parse_host_port(input: &str, port: i32) -> Result<Url> {
    let port = u16::try_from(port).map_err(|_| {
        Error::new(TU_E_URL, format!("port {port} out of range (1..65535, or 0 when the address carries the port)"))
    })?;
    parse_with_port(input, port)
}

/// fsockopen style: `input` is the address (a scheme is allowed, so is a bare IPv6
/// literal such as `fe80::1`), `port` the separate port argument, 0 meaning none.
/// A port in both places is `TU_E_URL`; a port for unix://udg:// likewise. With no
/// port in either place the result has `port: None` (the caller decides).
pub fn parse_with_port(input: &str, port: u16) -> Result<Url> {
    let mut url = parse(input)?;
    if port == 0 {
        return Ok(url);
    }
    if url.transport.is_unix() {
        return Err(url_err(format!(
            "port {port} given for {}:// at offset 0; Unix-domain sockets have no port (pass port 0)",
            url.transport.name()
        )));
    }
    if let Some(p) = url.port {
        // The port, when present, is always what follows the last ':'.
        let colon = input.rfind(':').unwrap_or(0);
        return Err(url_err(format!(
            "port given twice: ':{p}' in the address at offset {colon} and {port} as the port argument; give it once"
        )));
    }
    url.port = Some(port);
    Ok(url)
}

// ---------------------------------------------------------------------------
// Scheme

fn url_err(message: String) -> Error {
    Error::new(TU_E_URL, message)
}

fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_')
}

/// `Some((transport, offset after "://"))` when the input starts with `name://`.
/// A prefix before the first `://` that is not name-shaped is no scheme at all
/// (the host parser then reports the bad characters).
fn split_scheme(input: &str) -> Result<Option<(Transport, usize)>> {
    let Some(i) = input.find("://") else {
        return Ok(None);
    };
    let name = &input[..i];
    if name.is_empty() {
        return Err(url_err(
            "missing transport name before '://' at offset 0 (e.g. tcp://host:port)".to_string(),
        ));
    }
    if !name.bytes().all(is_scheme_char) {
        return Ok(None);
    }
    if let Some(t) = Transport::from_name(name) {
        return Ok(Some((t, i + 3)));
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, proto)) = INSECURE.iter().find(|(n, _)| *n == lower) {
        return Err(Error::new(
            TU_E_INSECURE_PROTOCOL,
            format!(
                "{lower}:// is an insecure protocol and is refused; use tls:// (TLS 1.2 or 1.3); \
                 scheme '{}' ({proto}) at offset 0",
                quote(name)
            ),
        ));
    }
    Err(Error::new(
        TU_E_UNSUPPORTED_TRANSPORT,
        format!(
            "unsupported transport '{}://' at offset 0; supported transports: {SUPPORTED_TRANSPORTS}",
            quote(name)
        ),
    ))
}

/// Without a scheme, a host that is a transport name (`udp:53`, `tcp`) is a
/// botched `name://`: it would silently be a TCP connection to a host named
/// "udp". Checked on the normalized name, so `TCP．` counts too.
fn reject_transport_host(host: &Host, a: usize, auth: &str, port: Option<u16>) -> Result<()> {
    let Host::Name(n) = host else { return Ok(()) };
    if a != 0 || !is_transport_word(n) {
        return Ok(());
    }
    let what = match port {
        Some(_) => format!("missing '//' after transport '{n}:' at offset {}", n.len()),
        None => format!("'{n}' at offset 0 is a transport name, not a host"),
    };
    Err(url_err(format!(
        "{what}; a transport is written as {n}://HOST:PORT ('{}' would be a TCP connection to a host named '{n}')",
        quote(auth)
    )))
}

/// Is `name` a transport name (supported or refused), case-insensitively?
fn is_transport_word(name: &str) -> bool {
    Transport::from_name(name).is_some()
        || INSECURE.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// `tcp:/h:80` (no scheme found): a name-shaped word, ':' and '/' is a botched
/// `name://`, never host "tcp" with a path.
fn check_scheme_typo(input: &str) -> Result<()> {
    let Some(colon) = input.find(':') else {
        return Ok(());
    };
    let name = &input[..colon];
    let name_shaped = name
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(is_scheme_char);
    if name_shaped && input[colon + 1..].starts_with('/') {
        let rest = input[colon + 1..].trim_start_matches('/');
        return Err(url_err(format!(
            "malformed transport prefix '{}' at offset 0: a transport is written as name:// (e.g. {}://{})",
            quote(&input[..input.len() - rest.len()]),
            quote(&name.to_ascii_lowercase()),
            quote(rest)
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// unix:// and udg://

fn parse_unix_path(input: &str, start: usize, t: Transport) -> Result<String> {
    let path = &input[start..];
    if path.is_empty() {
        return Err(url_err(format!(
            "empty path after {}:// at offset {start} (e.g. {}:///run/app.sock)",
            t.name(),
            t.name()
        )));
    }
    if let Some((i, c)) = path.char_indices().find(|(_, c)| c.is_control()) {
        let what = if c == '\0' {
            "NUL byte".to_string()
        } else {
            format!("control character {}", char_name(c))
        };
        return Err(url_err(format!(
            "{what} in socket path at offset {}",
            start + i
        )));
    }
    if path.len() > MAX_UNIX_PATH {
        return Err(url_err(format!(
            "socket path is {} bytes, longer than the {MAX_UNIX_PATH} that fit in sun_path, at offset {start}",
            path.len()
        )));
    }
    Ok(path.to_string())
}

// ---------------------------------------------------------------------------
// host [":" port]

fn parse_authority(input: &str, a: usize) -> Result<(Host, Option<u16>)> {
    let auth = &input[a..];
    if auth.is_empty() {
        return Err(url_err(format!(
            "empty host at offset {a} (expected host[:port])"
        )));
    }
    prescan(auth, a)?;

    if let Some(inner_and_rest) = auth.strip_prefix('[') {
        let Some(close) = inner_and_rest.find(']') else {
            return Err(url_err(format!(
                "unclosed '[' at offset {a}: an IPv6 literal is written [addr] or [addr]:port"
            )));
        };
        let host = parse_bracketed(&inner_and_rest[..close], a + 1)?;
        let rest = &inner_and_rest[close + 1..];
        let rest_off = a + 1 + close + 1;
        let port = match rest.chars().next() {
            None => None,
            Some(':') => Some(parse_port(&rest[1..], rest_off, None)?),
            Some(c) => {
                return Err(url_err(format!(
                    "unexpected {} after ']' at offset {rest_off}; expected ':' and a port",
                    char_name(c)
                )))
            }
        };
        return Ok((host, port));
    }

    if let Some(i) = auth.find(['[', ']']) {
        return Err(url_err(format!(
            "unexpected '{}' in host at offset {} (brackets enclose a whole IPv6 address: [addr]:port)",
            &auth[i..=i],
            a + i
        )));
    }
    let colons = auth.matches(':').count();
    match colons {
        0 => {
            let host = parse_host(auth, a)?;
            reject_transport_host(&host, a, auth, None)?;
            Ok((host, None))
        }
        1 => {
            let colon = auth.find(':').unwrap_or(0);
            let (h, p) = (&auth[..colon], &auth[colon + 1..]);
            if h.is_empty() {
                return Err(url_err(format!("empty host at offset {a} (expected host[:port])")));
            }
            let host = parse_host(h, a)?;
            let hint = if is_transport_word(h) { Some(h) } else { None };
            let port = parse_port(p, a + colon, hint)?;
            reject_transport_host(&host, a, auth, Some(port))?;
            Ok((host, Some(port)))
        }
        _ => parse_bare_v6(auth, a).map(|h| (h, None)).map_err(|e| {
            let first = auth.find(':').unwrap_or(0);
            let word = &auth[..first];
            if !word.is_empty() && is_transport_word(word) {
                return url_err(format!(
                    "missing '//' after transport '{}:' at offset {}; write {}://{}",
                    quote(word),
                    a + first,
                    quote(&word.to_ascii_lowercase()),
                    quote(&auth[first + 1..])
                ));
            }
            let addr_part = auth.split('%').next().unwrap_or("");
            let v6ish = addr_part.contains("::")
                || addr_part.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if v6ish {
                return if e.message.starts_with("invalid IPv6 address") {
                    url_err(format!("{} (an IPv6 address with a port is written [addr]:port)", e.message))
                } else {
                    e
                };
            }
            let second = first + 1 + auth[first + 1..].find(':').unwrap_or(0);
            url_err(format!(
                "unexpected second ':' at offset {} in '{}': a host has no ':' unless it is an IPv6 address, \
                 and an IPv6 address with a port is written [addr]:port",
                a + second,
                quote(auth)
            ))
        }),
    }
}

/// Characters that are wrong wherever they appear outside unix paths, reported
/// left to right: whitespace, controls, user-info, paths, queries, fragments.
fn prescan(auth: &str, a: usize) -> Result<()> {
    // Where the port starts, only to name the part ("host"/"port") in messages.
    let port_colon = if auth.starts_with('[') {
        auth.find("]:").map(|i| i + 1)
    } else if auth.matches(':').count() == 1 {
        auth.find(':')
    } else {
        None
    };
    for (i, c) in auth.char_indices() {
        let off = a + i;
        let part = if port_colon.is_some_and(|p| i > p) {
            "port"
        } else {
            "host"
        };
        if c.is_whitespace() {
            return Err(url_err(format!(
                "invalid character {} in {part} at offset {off} (whitespace is not allowed; input is not trimmed)",
                char_name(c)
            )));
        }
        if c.is_control() {
            return Err(url_err(format!(
                "invalid control character {} in {part} at offset {off}",
                char_name(c)
            )));
        }
        match c {
            '@' => {
                return Err(url_err(format!(
                    "user-info '{}' is not supported at offset {a} (found '@' at offset {off})",
                    quote(&auth[..=i])
                )))
            }
            '/' => {
                return Err(url_err(format!(
                "path '{}' at offset {off} is not allowed (only unix:// and udg:// take a path)",
                quote(&auth[i..])
            )))
            }
            '?' => {
                return Err(url_err(format!(
                    "query '{}' at offset {off} is not allowed in a transport URL",
                    quote(&auth[i..])
                )))
            }
            '#' => {
                return Err(url_err(format!(
                    "fragment '{}' at offset {off} is not allowed in a transport URL",
                    quote(&auth[i..])
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// `port` after its ':' (at `colon`); `hint` is a host that is a transport word
/// (`tcp:h` meant `tcp://h`).
fn parse_port(p: &str, colon: usize, hint: Option<&str>) -> Result<u16> {
    let suffix = hint
        .map(|h| {
            format!(
                " (if '{}' is a transport, write {}://...)",
                quote(h),
                quote(&h.to_ascii_lowercase())
            )
        })
        .unwrap_or_default();
    if p.is_empty() {
        return Err(url_err(format!(
            "empty port at offset {colon} (expected 1..65535 after ':'){suffix}"
        )));
    }
    if let Some(c) = p.chars().find(|c| !c.is_ascii_digit()) {
        return Err(url_err(format!(
            "invalid port '{}' at offset {colon}: only decimal digits are allowed (found {}){suffix}",
            quote(p),
            char_name(c)
        )));
    }
    let value = p.bytes().fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    });
    if value == 0 || value > 65535 {
        return Err(url_err(format!(
            "port {} out of range (1..65535) at offset {colon}",
            quote(p)
        )));
    }
    Ok(value as u16)
}

// ---------------------------------------------------------------------------
// IPv6

/// The text between `[` and `]`, starting at offset `off`.
fn parse_bracketed(inner: &str, off: usize) -> Result<Host> {
    if inner.is_empty() {
        return Err(url_err(format!(
            "empty IPv6 literal '[]' at offset {}",
            off - 1
        )));
    }
    let addr_text = inner.split('%').next().unwrap_or("");
    if addr_text.parse::<Ipv6Addr>().is_err() && !addr_text.contains(':') {
        return Err(url_err(format!(
            "brackets are only for IPv6 addresses: '[{}]' at offset {}; write {} without them",
            quote(inner),
            off - 1,
            quote(inner)
        )));
    }
    parse_v6(inner, off)
}

/// A bare IPv6 literal (no brackets, hence no port).
fn parse_bare_v6(s: &str, off: usize) -> Result<Host> {
    parse_v6(s, off)
}

/// `addr [ "%" zone ]` at offset `off`.
fn parse_v6(s: &str, off: usize) -> Result<Host> {
    let (addr_text, zone_raw) = match s.find('%') {
        Some(i) => (&s[..i], Some((&s[i + 1..], off + i))),
        None => (s, None),
    };
    let addr: Ipv6Addr = addr_text.parse().map_err(|_| {
        url_err(format!(
            "invalid IPv6 address '{}' at offset {off}",
            quote(addr_text)
        ))
    })?;
    let zone = match zone_raw {
        None => None,
        Some((z, pct)) => Some(parse_zone(z, pct)?),
    };
    Ok(Host::V6 { addr, zone })
}

/// The zone after the `%` at offset `pct`; `%25` is the URL escape of `%`.
fn parse_zone(z: &str, pct: usize) -> Result<String> {
    let (zone, zoff) = match z.strip_prefix("25") {
        Some(rest) => (rest, pct + 3),
        None => (z, pct + 1),
    };
    if zone.is_empty() {
        return Err(url_err(format!(
            "empty IPv6 zone after '%' at offset {pct}"
        )));
    }
    if let Some((i, c)) = zone
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(url_err(format!(
            "invalid character {} in IPv6 zone at offset {} (allowed: letters, digits, '_', '.', '-')",
            char_name(c),
            zoff + i
        )));
    }
    if zone.len() > MAX_ZONE {
        return Err(url_err(format!(
            "IPv6 zone '{}' is {} bytes, longer than the {MAX_ZONE} of an interface name, at offset {zoff}",
            quote(zone),
            zone.len()
        )));
    }
    Ok(zone.to_string())
}

// ---------------------------------------------------------------------------
// IPv4 and host names

/// A host without brackets and without ':' (IPv4, name or IDN) at offset `off`.
fn parse_host(h: &str, off: usize) -> Result<Host> {
    if h.is_empty() {
        return Err(url_err(format!("empty host at offset {off}")));
    }
    for (i, c) in h.char_indices() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || !c.is_ascii() {
            continue;
        }
        let why = match c {
            '%' => " (percent-encoding is not supported; a zone needs an IPv6 address)",
            _ => "",
        };
        return Err(url_err(format!(
            "invalid character {} in host at offset {}{why}",
            char_name(c),
            off + i
        )));
    }
    if looks_numeric(h) {
        return parse_ipv4(h, off).map(Host::V4);
    }
    if h.is_ascii() {
        check_name(h, off, true)?;
        let name = h.strip_suffix('.').unwrap_or(h);
        return Ok(Host::Name(name.to_ascii_lowercase()));
    }
    // International name: structure first (exact offsets), then IDNA, then the
    // same rules on the ASCII result.
    check_labels_nonempty(h, off)?;
    let ascii = idna::domain_to_ascii(h).map_err(|_| {
        url_err(format!(
            "invalid international domain name '{}' at offset {off}",
            quote(h)
        ))
    })?;
    if looks_numeric(&ascii) {
        return Err(url_err(format!(
            "non-canonical IPv4 address '{}' (IDNA form '{}') at offset {off}: write IPv4 as four decimal octets a.b.c.d",
            quote(h),
            quote(&ascii)
        )));
    }
    if let Some(c) = ascii
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(url_err(format!(
            "invalid international domain name '{}' at offset {off}: its ASCII form contains {}",
            quote(h),
            char_name(c)
        )));
    }
    check_name(&ascii, off, false)?;
    let name = ascii.strip_suffix('.').unwrap_or(&ascii);
    Ok(Host::Name(name.to_ascii_lowercase()))
}

/// Would libc (or a WHATWG URL parser) read this as an IPv4 address? True for
/// strings of only digits and dots, and for names whose last label (after one
/// optional trailing dot) is a decimal or 0x-hex number.
fn looks_numeric(h: &str) -> bool {
    if h.bytes().any(|b| b.is_ascii_digit()) && h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return true;
    }
    let stripped = h.strip_suffix('.').unwrap_or(h);
    let last = stripped.rsplit('.').next().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Exactly four decimal octets 0..255, no leading zeros, nothing else.
fn parse_ipv4(h: &str, off: usize) -> Result<Ipv4Addr> {
    let fail = |why: String| {
        url_err(format!(
            "non-canonical IPv4 address '{}' at offset {off}: {why}; write IPv4 as four decimal octets a.b.c.d",
            quote(h)
        ))
    };
    if h.bytes().any(|b| !(b.is_ascii_digit() || b == b'.')) {
        let stripped = h.strip_suffix('.').unwrap_or(h);
        let last = stripped.rsplit('.').next().unwrap_or("");
        return Err(fail(format!(
            "a host ending in the number '{}' would be read as an IPv4 address",
            quote(last)
        )));
    }
    if let Some(body) = h.strip_suffix('.') {
        if parse_ipv4_parts(body).is_ok() {
            return Err(fail("trailing '.' after the address".to_string()));
        }
    }
    parse_ipv4_parts(h).map_err(fail)
}

fn parse_ipv4_parts(h: &str) -> std::result::Result<Ipv4Addr, String> {
    let parts: Vec<&str> = h.split('.').collect();
    if parts.len() != 4 {
        return Err(format!("{} part(s) instead of four", parts.len()));
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() {
            return Err("empty octet".to_string());
        }
        if p.len() > 1 && p.starts_with('0') {
            return Err(format!(
                "leading zero in '{p}' (libc would read it as octal)"
            ));
        }
        if p.len() > 3 {
            return Err(format!("octet '{}' out of range 0..255", quote(p)));
        }
        let v: u32 = p
            .parse()
            .map_err(|_| format!("octet '{}' is not decimal", quote(p)))?;
        if v > 255 {
            return Err(format!("octet {v} out of range 0..255"));
        }
        *o = v as u8;
    }
    Ok(Ipv4Addr::from(octets))
}

/// Empty labels (`a..b`, `.a`, a lone `.`, two trailing dots) at their offsets.
fn check_labels_nonempty(h: &str, off: usize) -> Result<()> {
    let stripped = h.strip_suffix('.').unwrap_or(h);
    let mut pos = 0;
    for label in stripped.split('.') {
        if label.is_empty() {
            return Err(url_err(format!(
                "empty label in host '{}' at offset {}",
                quote(h),
                off + pos
            )));
        }
        pos += label.len() + 1;
    }
    Ok(())
}

/// Label and length rules on an ASCII name (optional single trailing dot).
/// `exact` = the name is the input itself, so label offsets are exact;
/// otherwise (IDNA output) errors point at the host.
fn check_name(name: &str, off: usize, exact: bool) -> Result<()> {
    let stripped = name.strip_suffix('.').unwrap_or(name);
    let mut pos = 0;
    for label in stripped.split('.') {
        let at = if exact { off + pos } else { off };
        if label.is_empty() {
            return Err(url_err(format!(
                "empty label in host '{}' at offset {at}",
                quote(name)
            )));
        }
        if label.len() > MAX_LABEL {
            return Err(url_err(format!(
                "label '{}' is {} bytes, longer than {MAX_LABEL}, at offset {at}",
                quote(label),
                label.len()
            )));
        }
        pos += label.len() + 1;
    }
    if stripped.len() > MAX_HOST_NAME {
        return Err(url_err(format!(
            "host name is {} bytes, longer than {MAX_HOST_NAME}, at offset {off}",
            stripped.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Message helpers

/// A character as messages show it: `' '`, `'\t'`, `'a'`, `U+0007`.
fn char_name(c: char) -> String {
    if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\0') {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{}'", c.escape_debug())
    }
}

/// A piece of input as messages quote it: escaped and cut to a readable length.
fn quote(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == QUOTE_MAX {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> i32 {
        parse(s).unwrap_err().code
    }
    fn msg(s: &str) -> String {
        parse(s).unwrap_err().message
    }

    #[test]
    fn design_example_offset() {
        assert_eq!(
            msg("tcp://127.0.0.1:65536"),
            "port 65536 out of range (1..65535) at offset 15"
        );
    }

    #[test]
    fn basic_forms() {
        let u = parse("tcp://127.0.0.1:80").unwrap();
        assert_eq!(u.host, Some(Host::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert_eq!(u.port, Some(80));
        assert!(u.explicit_scheme);
        let u = parse("www.Example.COM.").unwrap();
        assert_eq!(u.transport, Transport::Tcp);
        assert!(!u.explicit_scheme);
        assert_eq!(u.host, Some(Host::Name("www.example.com".into())));
        let u = parse("TLSv1.3://[fe80::1%25eth0]:443").unwrap();
        assert_eq!(u.transport, Transport::TlsV1_3);
        assert_eq!(
            u.host.as_ref().unwrap().to_string_for_display(),
            "fe80::1%eth0"
        );
        assert_eq!(u.format(), "tlsv1.3://[fe80::1%eth0]:443");
        let u = parse("fe80::1:80").unwrap();
        assert_eq!(u.port, None);
        assert_eq!(u.host.unwrap().to_string_for_display(), "fe80::1:80");
    }

    #[test]
    fn nul_and_controls() {
        assert_eq!(code("tcp://h\0:80"), TU_E_URL);
        assert!(msg("tcp://h\0:80").contains("offset 7"));
        assert_eq!(code("unix:///tmp/a\0b"), TU_E_URL);
        assert!(msg("unix:///tmp/a\0b").contains("NUL byte in socket path at offset 13"));
        assert!(msg("tcp://h:80\n").contains("'\\n' in port at offset 10"));
        assert!(msg("tcp://h\x07:80").contains("U+0007"));
    }

    #[test]
    fn zone_25_round_trip() {
        for s in [
            "[fe80::1%2525x]:1",
            "fe80::1%2525",
            "[fe80::1%25]:1",
            "fe80::1%2",
            "[fe80::1%25.a-_]:9",
        ] {
            if let Ok(u) = parse(s) {
                assert_eq!(parse(&u.format()), Ok(u.clone()), "{s} -> {}", u.format());
            }
        }
        assert_eq!(
            parse("[fe80::1%2525x]:1").unwrap().host,
            Some(Host::V6 {
                addr: "fe80::1".parse().unwrap(),
                zone: Some("25x".into())
            })
        );
        assert!(msg("[fe80::1%25]:1").contains("empty IPv6 zone"));
    }

    #[test]
    fn fsockopen_style() {
        assert_eq!(
            parse_with_port("fe80::1", 80).unwrap().format(),
            "[fe80::1]:80"
        );
        assert!(parse_with_port("h:80", 81)
            .unwrap_err()
            .message
            .contains("port given twice"));
        assert_eq!(parse_with_port("h:80", 0).unwrap().port, Some(80));
        assert_eq!(parse_with_port("h", 0).unwrap().port, None);
        assert_eq!(parse_with_port("unix:///x", 1).unwrap_err().code, TU_E_URL);
    }

    #[test]
    fn long_input_messages_stay_short() {
        let long = format!("tcp://{}:80", "a".repeat(5000));
        let e = parse(&long).unwrap_err();
        assert!(e.message.len() < 300, "{}", e.message);
        let bad = format!("{}://x", "z".repeat(5000));
        assert!(parse(&bad).unwrap_err().message.len() < 300);
    }

    #[test]
    fn non_utf8() {
        let e = parse_bytes(b"tcp://h\xff:80").unwrap_err();
        assert_eq!(e.code, TU_E_INVALID_ARGUMENT);
        assert!(e.message.contains("offset 7"), "{}", e.message);
    }

    /// Small deterministic fuzz: never panics, every accepted URL round-trips and
    /// has the invariants of its transport.
    #[test]
    fn property_no_panic_and_round_trip() {
        const CHARS: &[&str] = &[
            "t",
            "c",
            "p",
            "u",
            "d",
            "s",
            "l",
            "v",
            "1",
            "2",
            "3",
            "0",
            "9",
            "5",
            "6",
            "x",
            "a",
            "f",
            "e",
            "8",
            ":",
            "/",
            ".",
            "[",
            "]",
            "%",
            "@",
            "-",
            "_",
            " ",
            "?",
            "#",
            "tcp://",
            "udp://",
            "unix://",
            "udg://",
            "tls://",
            "tlsv1.2://",
            "SSLv3://",
            "::",
            "fe80",
            "25",
            "127.0.0.1",
            "ü",
            "。",
            "\t",
            "\u{0}",
            "65535",
            "65536",
            "xn--",
            "Ａ",
            "é",
            "\u{200b}",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let n = next() % 12;
            let mut s = String::new();
            for _ in 0..n {
                s.push_str(CHARS[next() % CHARS.len()]);
            }
            let r = std::panic::catch_unwind(|| parse(&s));
            let r = r.unwrap_or_else(|_| panic!("parse panicked on {s:?}"));
            match r {
                Ok(u) => {
                    accepted += 1;
                    assert_eq!(
                        parse(&u.format()).as_ref(),
                        Ok(&u),
                        "round trip of {s:?} via {:?}",
                        u.format()
                    );
                    assert_eq!(u.transport.is_unix(), u.host.is_none());
                    assert_eq!(u.transport.is_unix(), u.path.is_some());
                    if let Some(Host::Name(n)) = &u.host {
                        assert!(
                            n.is_ascii() && !n.ends_with('.') && *n == n.to_ascii_lowercase(),
                            "{n:?}"
                        );
                    }
                }
                Err(e) => {
                    assert!(
                        [TU_E_URL, TU_E_UNSUPPORTED_TRANSPORT, TU_E_INSECURE_PROTOCOL]
                            .contains(&e.code),
                        "{s:?}: {e}"
                    );
                    assert!(e.message.contains("offset "), "{s:?}: {}", e.message);
                }
            }
            let _ = parse_with_port(&s, (next() % 3) as u16 * 80);
            let _ = parse_bytes(s.as_bytes());
        }
        assert!(
            accepted > 100,
            "only {accepted} accepted: fuzz alphabet too hostile"
        );
    }
}
