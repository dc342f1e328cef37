//! Connection options, keyed by PHP's stream-context names (`ssl.cafile`,
//! `timeout`, ...). Every value is checked when it is set, so a bad value is
//! reported by `tu_options_set`, not by a later connect.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// The default for `timeout`, `read_timeout` and `write_timeout`: PHP's
/// `default_socket_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A time limit: `None` means no limit (`-1`, as in PHP).
pub type Limit = Option<Duration>;

/// Every key this build accepts, in the order the README lists them.
pub const KEYS: &[&str] = &[
    "timeout",
    "read_timeout",
    "write_timeout",
    "ssl.verify_peer",
    "ssl.verify_peer_name",
    "ssl.peer_name",
    "ssl.cafile",
    "ssl.capath",
    "ssl.allow_self_signed",
    "ssl.local_cert",
    "ssl.local_pk",
    "ssl.passphrase",
    "ssl.peer_fingerprint",
    "ssl.capture_peer_cert",
    "ssl.alpn_protocols",
    "ssl.SNI_enabled",
    "ssl.ciphers",
    "ssl.min_version",
    "ssl.max_version",
    "ssl.keylog",
    "socket.bindto",
    "socket.tcp_nodelay",
    "socket.keepalive",
    "happy_eyeballs_delay",
];

/// TLS settings that shape a `rustls::ClientConfig`. Connections whose TLS
/// settings are equal share one config (and so one session cache).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    pub verify_peer: bool,
    pub verify_peer_name: bool,
    /// `ssl.verify_peer_name` was set explicitly: with `ssl.verify_peer`
    /// off, the name is then still checked (as PHP does); left at its
    /// default, `ssl.verify_peer=false` alone accepts any certificate.
    pub verify_peer_name_set: bool,
    pub cafile: Option<PathBuf>,
    /// `ssl.capath`: a directory of PEM files (or OpenSSL hash links).
    pub capath: Option<PathBuf>,
    /// `ssl.allow_self_signed`: accept a self-signed leaf (dates and name
    /// are still checked), never a chain to an unknown root.
    pub allow_self_signed: bool,
    /// `ssl.local_cert`: client certificate chain (PEM; may hold the key).
    pub local_cert: Option<PathBuf>,
    /// `ssl.local_pk`: the client key (PEM) when not in `local_cert`.
    pub local_pk: Option<PathBuf>,
    /// `ssl.passphrase`: for an encrypted PKCS#8 key.
    pub passphrase: Option<Secret>,
    /// `ssl.peer_fingerprint`: SHA-256 digests of acceptable leaves.
    pub peer_fingerprints: Vec<[u8; 32]>,
    /// `ssl.capture_peer_cert` (also `ssl.capture_peer_cert_chain`).
    pub capture_peer_cert: bool,
    /// `ssl.alpn_protocols`, in preference order.
    pub alpn_protocols: Vec<String>,
    /// `ssl.SNI_enabled`.
    pub sni_enabled: bool,
    /// `ssl.ciphers`: IANA suite names in preference order; `None` = all.
    pub ciphers: Option<Vec<&'static str>>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    /// `ssl.keylog`: NSS key-log file (else `SSLKEYLOGFILE`, if set).
    pub keylog: Option<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            verify_peer: true,
            verify_peer_name: true,
            verify_peer_name_set: false,
            cafile: None,
            capath: None,
            allow_self_signed: false,
            local_cert: None,
            local_pk: None,
            passphrase: None,
            peer_fingerprints: Vec::new(),
            capture_peer_cert: false,
            alpn_protocols: Vec::new(),
            sni_enabled: true,
            ciphers: None,
            min_version: None,
            max_version: None,
            keylog: None,
        }
    }
}

/// A TLS protocol version this library allows (`ssl.min_version`, `ssl.max_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// A secret string (`ssl.passphrase`): compared and hashed like a string,
/// never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A checked option set.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Connect + TLS handshake, one deadline.
    pub timeout: Limit,
    pub read_timeout: Limit,
    pub write_timeout: Limit,
    pub peer_name: Option<String>,
    pub tls: TlsOptions,
    /// `socket.*` and `happy_eyeballs_delay` (checked in `net`).
    pub socket: crate::net::SocketOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Some(DEFAULT_TIMEOUT),
            read_timeout: Some(DEFAULT_TIMEOUT),
            write_timeout: Some(DEFAULT_TIMEOUT),
            peer_name: None,
            tls: TlsOptions::default(),
            socket: crate::net::SocketOptions::default(),
        }
    }
}

impl Options {
    /// Checks `value` for `key` and stores it. Errors are
    /// `TU_E_INVALID_ARGUMENT` with a message that names the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "timeout" => self.timeout = parse_limit(key, value)?,
            "read_timeout" => self.read_timeout = parse_limit(key, value)?,
            "write_timeout" => self.write_timeout = parse_limit(key, value)?,
            "ssl.verify_peer" => self.tls.verify_peer = parse_bool(key, value)?,
            "ssl.verify_peer_name" => {
                self.tls.verify_peer_name = parse_bool(key, value)?;
                self.tls.verify_peer_name_set = true;
            }
            "ssl.peer_name" => self.peer_name = Some(parse_peer_name(key, value)?),
            "ssl.cafile" => self.tls.cafile = Some(parse_cafile(key, value)?),
            "ssl.capath" => self.tls.capath = Some(parse_capath(key, value)?),
            "ssl.allow_self_signed" => self.tls.allow_self_signed = parse_bool(key, value)?,
            "ssl.local_cert" => self.tls.local_cert = Some(parse_cafile(key, value)?),
            "ssl.local_pk" => self.tls.local_pk = Some(parse_key_file(key, value)?),
            "ssl.passphrase" => self.tls.passphrase = Some(Secret(value.to_string())),
            "ssl.peer_fingerprint" => self.tls.peer_fingerprints = parse_fingerprints(key, value)?,
            "ssl.capture_peer_cert" | "ssl.capture_peer_cert_chain" => {
                self.tls.capture_peer_cert = parse_bool(key, value)?
            }
            "ssl.alpn_protocols" => self.tls.alpn_protocols = parse_alpn(key, value)?,
            "ssl.SNI_enabled" => self.tls.sni_enabled = parse_bool(key, value)?,
            "ssl.ciphers" => self.tls.ciphers = crate::tls::parse_ciphers(key, value)?,
            "ssl.min_version" => self.tls.min_version = Some(parse_tls_version(key, value)?),
            "ssl.max_version" => self.tls.max_version = Some(parse_tls_version(key, value)?),
            "ssl.keylog" => self.tls.keylog = Some(parse_keylog(key, value)?),
            "ssl.disable_compression" => {
                // TLS compression (CRIME) is never used: true is what happens anyway.
                if !parse_bool(key, value)? {
                    return Err(Error::invalid(format!(
                        "option {key}: TLS compression is never supported (it enables the CRIME attack); only true is accepted"
                    )));
                }
            }
            _ if refused_php_key(key).is_some() => {
                let why = refused_php_key(key).unwrap_or_default();
                return Err(Error::invalid(format!("option {key} (PHP) is not supported: {why}")));
            }
            "socket.bindto" | "socket.tcp_nodelay" | "socket.keepalive" | "happy_eyeballs_delay" => {
                self.socket.set(key, value)?
            }
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

/// PHP `ssl.` context options that this library knows but refuses, and why.
pub const REFUSED_PHP_KEYS: &[(&str, &str)] = &[
    ("ssl.verify_depth", "rustls/webpki bound the chain length themselves and cannot be told a depth"),
    ("ssl.security_level", "it is OpenSSL's; the policy here is fixed and stricter (TLS 1.2+, AEAD suites, RSA >= 2048, no SHA-1)"),
    ("ssl.crypto_method", "PHP's bit flags; use tlsv1.2:// or tlsv1.3://, or ssl.min_version / ssl.max_version"),
    ("ssl.CN_match", "removed from PHP; use ssl.peer_name"),
    ("ssl.SNI_server_name", "removed from PHP; use ssl.peer_name"),
    ("ssl.SNI_server_certs", "a server-side option; this library is a client"),
    ("ssl.honor_cipher_order", "a server-side option; this library is a client"),
    ("ssl.single_dh_use", "a server-side option; this library is a client"),
    ("ssl.single_ecdh_use", "a server-side option; this library is a client"),
    ("ssl.dh_param", "a server-side option; this library is a client (and DHE suites are not offered)"),
    ("ssl.ecdh_curve", "a server-side option; this library is a client"),
    ("ssl.rsa_key_size", "a server-side option; this library is a client"),
    ("ssl.reneg_limit", "a server-side option; renegotiation is never allowed here"),
    ("ssl.reneg_window", "a server-side option; renegotiation is never allowed here"),
    ("ssl.no_ticket", "session resumption is always on (sessions are cached per option set)"),
    ("ssl.session_meta", "an output in PHP; use tu_tls_version, tu_tls_cipher_suite and the other tu_tls_* calls"),
];

fn refused_php_key(key: &str) -> Option<&'static str> {
    REFUSED_PHP_KEYS.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

fn unknown_key(key: &str) -> Error {
    let hint = if key.is_empty() {
        String::from("empty option key")
    } else {
        format!("unknown option key '{}'", printable(key))
    };
    Error::invalid(format!("{hint}; supported keys: {}", KEYS.join(", ")))
}

/// Decimal seconds (`5`, `0.25`), or `-1` for no limit.
pub fn parse_limit(key: &str, value: &str) -> Result<Limit> {
    let bad = || {
        Error::invalid(format!(
            "option {key}: '{}' is not a number of seconds (a decimal > 0, or -1 for no limit)",
            printable(value)
        ))
    };
    if value == "-1" {
        return Ok(None);
    }
    let digits_ok = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    if !digits_ok {
        return Err(bad());
    }
    let secs: f64 = value.parse().map_err(|_| bad())?;
    if secs <= 0.0 {
        return Err(Error::invalid(format!(
            "option {key}: {} seconds is not allowed (use a value > 0, or -1 for no limit)",
            printable(value)
        )));
    }
    if secs > 1e9 {
        return Err(Error::invalid(format!(
            "option {key}: {} seconds is too large (at most 1e9, or -1 for no limit)",
            printable(value)
        )));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off` (any case).
pub fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(format!(
            "option {key}: '{}' is not a boolean (use true/false, 1/0, yes/no, on/off)",
            printable(value)
        ))),
    }
}

fn parse_peer_name(key: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(format!("option {key}: empty name")));
    }
    if rustls_pki_types::ServerName::try_from(value).is_err() {
        return Err(Error::invalid(format!(
            "option {key}: '{}' is not a valid DNS name or IP address",
            printable(value)
        )));
    }
    Ok(value.to_string())
}

/// A PEM file with at least one certificate (`ssl.cafile`, `ssl.local_cert`).
fn parse_cafile(key: &str, value: &str) -> Result<PathBuf> {
    let path = parse_existing_file(key, value)?;
    crate::tls::load_pem_certs(key, &path)?;
    Ok(path)
}

/// A directory with at least one PEM certificate (`ssl.capath`).
fn parse_capath(key: &str, value: &str) -> Result<PathBuf> {
    if value.is_empty() {
        return Err(Error::invalid(format!("option {key}: empty path")));
    }
    let path = PathBuf::from(value);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::invalid(format!("option {key}: '{}' is not a directory", printable(value)))),
        Err(e) => return Err(Error::invalid(format!("option {key}: cannot use '{}': {e}", printable(value)))),
    }
    crate::tls::load_capath(key, &path)?;
    Ok(path)
}

/// A PEM file that holds a private key (`ssl.local_pk`).
fn parse_key_file(key: &str, value: &str) -> Result<PathBuf> {
    let path = parse_existing_file(key, value)?;
    crate::tls::check_key_file(key, &path)?;
    Ok(path)
}

/// `ssl.peer_fingerprint`: SHA-256 hex digests (`:` between bytes allowed,
/// an optional `sha256=` / `SHA256 Fingerprint=` prefix), comma-separated.
pub fn parse_fingerprints(key: &str, value: &str) -> Result<Vec<[u8; 32]>> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        let lower = item.to_ascii_lowercase();
        let hex_part = ["sha256 fingerprint=", "sha256=", "sha256:"]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let hex: String = hex_part.chars().filter(|&c| c != ':').collect();
        if hex.is_empty() {
            return Err(Error::invalid(format!("option {key}: empty fingerprint (give the SHA-256 of the certificate in hex)")));
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "option {key}: '{}' is not hexadecimal (expected a SHA-256 fingerprint: 64 hex digits, ':' allowed)",
                printable(item)
            )));
        }
        let weak = match hex.len() {
            32 => Some("MD5"),
            40 => Some("SHA-1"),
            64 => None,
            n => {
                return Err(Error::invalid(format!(
                    "option {key}: '{}' has {n} hex digits; a SHA-256 fingerprint has 64",
                    printable(item)
                )))
            }
        };
        if let Some(alg) = weak {
            return Err(Error::invalid(format!(
                "option {key}: '{}' looks like an {alg} fingerprint, which is too weak and refused; use SHA-256 \
                 (openssl x509 -noout -fingerprint -sha256)",
                printable(item)
            )));
        }
        let mut digest = [0u8; 32];
        for (i, d) in digest.iter_mut().enumerate() {
            *d = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| Error::invalid(format!("option {key}: bad hex")))?;
        }
        if !out.contains(&digest) {
            out.push(digest);
        }
    }
    Ok(out)
}

/// `ssl.alpn_protocols`: a comma list (`h2,http/1.1`); empty for none.
fn parse_alpn(key: &str, value: &str) -> Result<Vec<String>> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = Vec::new();
    for item in value.split(',') {
        let p = item.trim();
        if p.is_empty() {
            return Err(Error::invalid(format!("option {key}: empty protocol name in '{}'", printable(value))));
        }
        if p.len() > 255 {
            return Err(Error::invalid(format!("option {key}: protocol name '{}' is longer than 255 bytes", printable(p))));
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    Ok(out)
}

/// `1.2` / `1.3` (also `TLSv1.2`, `tls1.3`); legacy versions are
/// `TU_E_INSECURE_PROTOCOL`.
pub fn parse_tls_version(key: &str, value: &str) -> Result<TlsVersion> {
    let v = value.trim().to_ascii_lowercase();
    let bare = v.strip_prefix("tlsv").or_else(|| v.strip_prefix("tls")).unwrap_or(&v);
    match bare {
        "1.2" | "1_2" => Ok(TlsVersion::Tls12),
        "1.3" | "1_3" => Ok(TlsVersion::Tls13),
        "1" | "1.0" | "1_0" | "1.1" | "1_1" | "sslv2" | "sslv3" | "ssl2" | "ssl3" | "2" | "3" | "2.0" | "3.0" => {
            Err(Error::new(
                crate::error::TU_E_INSECURE_PROTOCOL,
                format!(
                    "option {key}: {} is insecure and refused; use 1.2 or 1.3",
                    printable(value)
                ),
            ))
        }
        _ => Err(Error::invalid(format!("option {key}: '{}' is not a TLS version (use 1.2 or 1.3)", printable(value)))),
    }
}

/// `ssl.keylog`: a file that can be appended to (created with mode 0600).
fn parse_keylog(key: &str, value: &str) -> Result<PathBuf> {
    if value.is_empty() {
        return Err(Error::invalid(format!("option {key}: empty path")));
    }
    let path = PathBuf::from(value);
    crate::tls::open_keylog(&path).map_err(|e| Error::invalid(format!("option {key}: cannot write '{}': {e}", printable(value))))?;
    Ok(path)
}

/// A path that must name a readable regular file now.
pub fn parse_existing_file(key: &str, value: &str) -> Result<PathBuf> {
    if value.is_empty() {
        return Err(Error::invalid(format!("option {key}: empty path")));
    }
    let path = PathBuf::from(value);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(Error::invalid(format!("option {key}: '{}' is not a regular file", printable(value)))),
        Err(e) => Err(Error::invalid(format!("option {key}: cannot use '{}': {e}", printable(value)))),
    }
}

/// The printable part of a user string, shortened, for messages.
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(80).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TU_E_INVALID_ARGUMENT;

    #[test]
    fn limits() {
        assert_eq!(parse_limit("timeout", "5").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(parse_limit("timeout", "0.25").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(parse_limit("timeout", "-1").unwrap(), None);
        for bad in ["", "0", "0.0", "-2", "1e3", "abc", " 5", "5s", ".", "1.2.3", "nan", "inf"] {
            let e = parse_limit("timeout", bad).unwrap_err();
            assert_eq!(e.code, TU_E_INVALID_ARGUMENT, "{bad}");
            assert!(e.message.contains("timeout"), "{}", e.message);
        }
    }

    #[test]
    fn unknown_key_lists_supported() {
        let e = Options::default().set("ssl.nope", "1").unwrap_err();
        assert_eq!(e.code, TU_E_INVALID_ARGUMENT);
        assert!(e.message.contains("ssl.nope") && e.message.contains("ssl.cafile"));
    }

    #[test]
    fn missing_cafile_is_refused_when_set() {
        let e = Options::default().set("ssl.cafile", "/nonexistent/ca.pem").unwrap_err();
        assert!(e.message.contains("ssl.cafile") && e.message.contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn fingerprints_are_sha256_only() {
        let hex = "0123456789abcdef".repeat(4);
        let upper_colons: Vec<String> = hex.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
        let want = parse_fingerprints("k", &hex).unwrap();
        assert_eq!(want[0][0], 0x01);
        assert_eq!(parse_fingerprints("k", &upper_colons.join(":")).unwrap(), want);
        assert_eq!(parse_fingerprints("k", &format!("SHA256 Fingerprint={}", upper_colons.join(":"))).unwrap(), want);
        assert_eq!(parse_fingerprints("k", &format!("sha256={hex}, {hex}")).unwrap(), want, "duplicates collapse");
        for (bad, word) in [("ab".repeat(16), "MD5"), ("ab".repeat(20), "SHA-1"), ("ab".repeat(33), "66 hex digits"), ("xy".into(), "hexadecimal")] {
            let e = parse_fingerprints("ssl.peer_fingerprint", &bad).unwrap_err();
            assert!(e.message.contains(word) && e.message.contains("ssl.peer_fingerprint"), "{}", e.message);
        }
    }

    #[test]
    fn versions_and_legacy_versions() {
        assert_eq!(parse_tls_version("k", "1.2").unwrap(), TlsVersion::Tls12);
        assert_eq!(parse_tls_version("k", "TLSv1.3").unwrap(), TlsVersion::Tls13);
        for legacy in ["1.0", "1.1", "tlsv1", "SSLv3", "sslv2"] {
            assert_eq!(parse_tls_version("k", legacy).unwrap_err().code, crate::error::TU_E_INSECURE_PROTOCOL, "{legacy}");
        }
        assert_eq!(parse_tls_version("k", "1.4").unwrap_err().code, TU_E_INVALID_ARGUMENT);
    }

    #[test]
    fn refused_php_keys_say_why() {
        let e = Options::default().set("ssl.verify_depth", "5").unwrap_err();
        assert!(e.message.contains("ssl.verify_depth") && e.message.contains("not supported"), "{}", e.message);
        assert!(format!("{:?}", Secret("hunter2".into())).contains("***"));
    }
}
