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
];

/// TLS settings that shape a `rustls::ClientConfig`. Connections whose TLS
/// settings are equal share one config (and so one session cache).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    pub verify_peer: bool,
    pub verify_peer_name: bool,
    pub cafile: Option<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions { verify_peer: true, verify_peer_name: true, cafile: None }
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Some(DEFAULT_TIMEOUT),
            read_timeout: Some(DEFAULT_TIMEOUT),
            write_timeout: Some(DEFAULT_TIMEOUT),
            peer_name: None,
            tls: TlsOptions::default(),
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
            "ssl.verify_peer_name" => self.tls.verify_peer_name = parse_bool(key, value)?,
            "ssl.peer_name" => self.peer_name = Some(parse_peer_name(key, value)?),
            "ssl.cafile" => self.tls.cafile = Some(parse_existing_file(key, value)?),
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
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
            "option {key}: {value} seconds is not allowed (use a value > 0, or -1 for no limit)"
        )));
    }
    if secs > 1e9 {
        return Err(Error::invalid(format!("option {key}: {value} seconds is too large (at most 1e9, or -1 for no limit)")));
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

/// A path that must name a readable regular file now.
pub fn parse_existing_file(key: &str, value: &str) -> Result<PathBuf> {
    if value.is_empty() {
        return Err(Error::invalid(format!("option {key}: empty path")));
    }
    let path = PathBuf::from(value);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(Error::invalid(format!("option {key}: '{value}' is not a regular file"))),
        Err(e) => Err(Error::invalid(format!("option {key}: cannot use '{value}': {e}"))),
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
}
