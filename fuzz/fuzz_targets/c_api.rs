//! The C entry points on arbitrary bytes, as C would pass them (NUL-terminated:
//! the input is cut at its first NUL; non-UTF-8 and huge inputs included):
//! `tu_parse_url`, `tu_parse_host`, `tu_options_set`, `tu_connect`/
//! `tu_connect_opts` and `tu_connect_host`. Every call returns a code with a well-formed message,
//! outputs are untouched on failure, and the C answers agree with the Rust ones.
//!
//! Nothing reaches the network: `tu_connect` gets the fuzzed URL only when it
//! fails before any connect (a malformed URL, or no port); a valid URL is
//! rewritten to 127.0.0.1 and a port that nothing listens on (Unix sockets to a
//! path that does not exist), keeping its transport. `tu_connect_host` is only
//! called when it must fail before connecting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use std::sync::OnceLock;
use transporturl::error::{TU_E_INVALID_ARGUMENT, TU_E_URL, TU_OK};
use transporturl::ffi::*;
use transporturl::options::Options;
use transporturl::url;

mod shared;
use shared::*;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let input = maybe_huge(rest);
    match sel % 5 {
        0 => parse_url(&input),
        1 => options_set(&input),
        2 => connect(&input),
        3 => connect_host(sel, &input),
        _ => parse_host(sel, &input),
    }
});

fn parse_url(input: &[u8]) {
    let c = c_string(input);
    let mut parts: tu_url_parts = unsafe { std::mem::zeroed() };
    parts.port = 0x5A5A;
    parts.transport.fill(0x5A);
    let before = bytes_of(&parts);
    let mut err = new_error();
    let rc = tu_parse_url(c.as_ptr(), &mut parts, &mut err);
    let msg = check_error(&err, rc);
    match url::parse_bytes(c.to_bytes()) {
        Ok(u) => {
            assert_eq!(rc, TU_OK, "C refused what Rust accepts: {msg}");
            assert_eq!(field(&parts.transport), u.transport.name());
            let host = u.host.as_ref().map(|h| h.to_string_for_display()).unwrap_or_default();
            assert_eq!(field(&parts.host), host, "host cut short in tu_url_parts");
            assert_eq!(field(&parts.path), u.path.clone().unwrap_or_default(), "path cut short in tu_url_parts");
            assert_eq!(parts.port, u.port.map(i32::from).unwrap_or(0));
            assert_eq!(parts.explicit_scheme, i32::from(u.explicit_scheme));
        }
        Err(e) => {
            assert_eq!(rc, e.code, "C and Rust disagree: {msg} / {e}");
            assert_eq!(msg, truncated(&e.message));
            assert_eq!(bytes_of(&parts), before, "tu_url_parts written on failure");
        }
    }
}

/// A NUL-terminated char array as a String (it must be terminated).
fn field(f: &[std::ffi::c_char]) -> String {
    let end = f.iter().position(|&c| c == 0).expect("field not NUL-terminated");
    String::from_utf8(f[..end].iter().map(|&c| c as u8).collect()).expect("field not UTF-8")
}

/// What fits in tu_error.message: 511 bytes, cut at a character boundary.
fn truncated(m: &str) -> String {
    let mut n = m.len().min(511);
    while !m.is_char_boundary(n) {
        n -= 1;
    }
    m[..n].to_string()
}

fn options_set(input: &[u8]) {
    let (k, v) = match input.iter().position(|&b| b == b'=') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &b""[..]),
    };
    if !option_is_safe(k, v) {
        return;
    }
    let (key, value) = (c_string(k), c_string(v));
    let o = tu_options_new();
    assert!(!o.is_null());
    let mut err = new_error();
    let rc = tu_options_set(o, key.as_ptr(), value.as_ptr(), &mut err);
    let msg = check_error(&err, rc);
    match (std::str::from_utf8(key.to_bytes()), std::str::from_utf8(value.to_bytes())) {
        (Ok(ks), Ok(vs)) => {
            let want = Options::default().set(ks, vs);
            assert_eq!(rc, want.as_ref().err().map(|e| e.code).unwrap_or(TU_OK), "C and Rust disagree on {ks}={vs:?}: {msg}");
        }
        _ => assert_eq!(rc, TU_E_INVALID_ARGUMENT, "non-UTF-8 text must be refused: {msg}"),
    }
    tu_options_free(o);
}

fn closed_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().unwrap().port()
    })
}

fn connect(input: &[u8]) {
    let c = c_string(input);
    let parsed = url::parse_bytes(c.to_bytes());
    let (target, expect) = match &parsed {
        Err(e) => (c.clone(), Some(e.code)),
        // No port: refused before any lookup.
        Ok(u) if u.port.is_none() && !u.transport.is_unix() => (c.clone(), Some(TU_E_URL)),
        Ok(u) if u.transport.is_unix() => {
            (CString::new(format!("{}:///nonexistent-transporturl-fuzz/s.sock", u.transport.name())).unwrap(), None)
        }
        Ok(u) => (CString::new(format!("{}://127.0.0.1:{}", u.transport.name(), closed_port())).unwrap(), None),
    };
    let o = tu_options_new();
    let mut e0 = new_error();
    assert_eq!(tu_options_set(o, c"timeout".as_ptr(), c"2".as_ptr(), &mut e0), TU_OK);
    let mut err = new_error();
    let h = if input.len() % 2 == 0 { tu_connect_opts(target.as_ptr(), o, &mut err) } else { tu_connect(target.as_ptr(), &mut err) };
    tu_options_free(o);
    if h.is_null() {
        let msg = check_error(&err, err.code);
        assert_ne!(err.code, TU_OK, "NULL without a code");
        if let Some(want) = expect {
            assert_eq!(err.code, want, "{msg}");
        }
    } else {
        assert!(expect.is_none(), "connected where the URL must fail: {:?}", target);
        check_error(&err, TU_OK);
        tu_close(h);
    }
}

/// A port (sometimes out of range) and a host from the input.
fn port_and_host(sel: u8, input: &[u8]) -> (i32, &[u8]) {
    match input.len() {
        0..=3 => (i32::from(sel), input),
        _ => (i32::from_le_bytes(input[..4].try_into().unwrap()) % (if sel & 0x10 != 0 { 70_000 } else { i32::MAX }), &input[4..]),
    }
}

/// `tu_parse_host` agrees with `url::parse_with_port` (it never connects).
fn parse_host(sel: u8, input: &[u8]) {
    let (port, host) = port_and_host(sel, input);
    let c = c_string(host);
    let mut parts: tu_url_parts = unsafe { std::mem::zeroed() };
    parts.port = 0x5A5A;
    let before = bytes_of(&parts);
    let mut err = new_error();
    let rc = tu_parse_host(c.as_ptr(), port, &mut parts, &mut err);
    let msg = check_error(&err, rc);
    if rc != TU_OK {
        assert_eq!(bytes_of(&parts), before, "tu_url_parts written on failure: {msg}");
    }
    if let (Ok(p), Ok(s)) = (u16::try_from(port), std::str::from_utf8(c.to_bytes())) {
        match url::parse_with_port(s, p) {
            Ok(u) => {
                assert_eq!(rc, TU_OK, "C refused what Rust accepts: {msg}");
                assert_eq!(parts.port, u.port.map(i32::from).unwrap_or(0));
                let host = u.host.as_ref().map(|h| h.to_string_for_display()).unwrap_or_default();
                assert_eq!(field(&parts.host), host);
            }
            Err(e) => assert_eq!(rc, e.code, "C and Rust disagree: {msg} / {e}"),
        }
    } else {
        assert_ne!(rc, TU_OK, "accepted port {port} or non-UTF-8 text");
    }
}

fn connect_host(sel: u8, input: &[u8]) {
    let (port, host) = port_and_host(sel, input);
    let c = c_string(host);
    // Would it connect? Then it is not for the fuzzer (it could reach the network).
    if let (Ok(p), Ok(s)) = (u16::try_from(port), std::str::from_utf8(c.to_bytes())) {
        if let Ok(u) = url::parse_with_port(s, p) {
            if u.port.is_some() || u.transport.is_unix() {
                return;
            }
        }
    }
    let mut err = new_error();
    let h = tu_connect_host(c.as_ptr(), port, std::ptr::null(), &mut err);
    assert!(h.is_null(), "tu_connect_host connected to {:?} port {port}", c);
    let msg = check_error(&err, err.code);
    assert_ne!(err.code, TU_OK, "{msg}");
}
