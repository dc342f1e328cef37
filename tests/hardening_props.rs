//! Property tests on the stable toolchain (issue 8, item 1), with a hand-rolled
//! generator (no new dependency):
//!
//! - valid URLs built from their parts (every transport in random case, IPv4,
//!   IPv6 with and without zones, names up to the length limits, ports with
//!   leading zeros, Unix paths) parse to exactly those parts, and
//!   format(parse(x)) parses back to the same URL;
//! - mutated URLs (bytes inserted, deleted, replaced, tokens spliced, non-UTF-8
//!   bytes) never panic, fail with a URL-family code that says where, and
//!   round-trip when they are accepted;
//! - `tu_parse_url` agrees with the Rust parser on the same bytes, and leaves
//!   its output untouched on failure;
//! - `Options::set` never panics, and a refused value changes nothing;
//! - a 1 MiB URL is handled in linear time.

mod hardening_support;

use hardening_support::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;
use transporturl::error::*;
use transporturl::ffi::*;
use transporturl::options::{Options, KEYS};
use transporturl::url::{self, Host, Transport, Url};

const SUITE: &str = "props";

fn random_case(rng: &mut Rng, s: &str) -> String {
    s.chars().map(|c| if rng.below(2) == 0 { c.to_ascii_uppercase() } else { c }).collect()
}

fn label(rng: &mut Rng, max: usize) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    let n = rng.range(1, max);
    (0..n).map(|_| FIRST[rng.below(FIRST.len())] as char).collect()
}

/// A host name that is not mistaken for an IPv4 address: its last label has a letter.
fn name(rng: &mut Rng) -> String {
    loop {
        let labels = rng.range(1, 6);
        let long = rng.below(10) == 0;
        let mut parts: Vec<String> = (0..labels).map(|_| label(rng, if long { 63 } else { 12 })).collect();
        let last = parts.last_mut().unwrap();
        if !last.bytes().any(|b| b.is_ascii_alphabetic()) || last.starts_with("0x") || last.starts_with("0X") {
            last.push('z');
        }
        let n = parts.join(".");
        if n.len() <= url::MAX_HOST_NAME && parts.iter().all(|l| l.len() <= url::MAX_LABEL) {
            return n;
        }
    }
}

fn v6(rng: &mut Rng) -> Ipv6Addr {
    let mut seg = [0u16; 8];
    for s in seg.iter_mut() {
        // Runs of zeros so that "::" compression shows up.
        *s = if rng.below(3) == 0 { 0 } else { rng.next_u64() as u16 };
    }
    if rng.below(5) == 0 {
        return Ipv6Addr::from(Ipv4Addr::from(rng.next_u64() as u32).to_ipv6_mapped());
    }
    Ipv6Addr::from(seg)
}

fn v6_text(rng: &mut Rng, a: Ipv6Addr) -> String {
    let s = a.to_string();
    match rng.below(3) {
        0 => s.to_uppercase(),
        1 => {
            // The full, uncompressed form.
            a.segments().iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":")
        }
        _ => s,
    }
}

fn zone(rng: &mut Rng) -> String {
    const Z: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_.-";
    let n = rng.range(1, 10);
    (0..n).map(|_| Z[rng.below(Z.len())] as char).collect()
}

/// A valid URL as text, and the URL it must parse to.
fn valid(rng: &mut Rng) -> (String, Url) {
    let t = Transport::ALL[rng.below(Transport::ALL.len())];
    if t.is_unix() {
        let n = rng.range(1, url::MAX_UNIX_PATH);
        let path: String = (0..n)
            .map(|_| {
                let c = rng.range(0x20, 0x7e) as u8 as char;
                c
            })
            .collect();
        let text = format!("{}://{path}", random_case(rng, t.name()));
        return (text, Url { transport: t, explicit_scheme: true, host: None, port: None, path: Some(path) });
    }
    let explicit = t != Transport::Tcp || rng.below(2) == 0;
    let port: Option<u16> = if rng.below(4) == 0 { None } else { Some(rng.range(1, 65535) as u16) };
    let port_text = port.map(|p| {
        let zeros = if rng.below(6) == 0 { "0".repeat(rng.range(1, 3)) } else { String::new() };
        format!(":{zeros}{p}")
    });
    let (host_text, host) = match rng.below(3) {
        0 => {
            let a = Ipv4Addr::from(rng.next_u64() as u32);
            (a.to_string(), Host::V4(a))
        }
        1 => {
            let a = v6(rng);
            let z = if rng.below(3) == 0 { Some(zone(rng)) } else { None };
            let mut text = v6_text(rng, a);
            if let Some(z) = &z {
                text.push_str(if z.starts_with("25") || rng.below(2) == 0 { "%25" } else { "%" });
                text.push_str(z);
            }
            // With a port the brackets are required; without, they are optional.
            if port.is_some() || rng.below(2) == 0 {
                text = format!("[{text}]");
            }
            (text, Host::V6 { addr: a, zone: z })
        }
        _ => {
            let n = name(rng);
            let mut text = random_case(rng, &n);
            if rng.below(4) == 0 {
                text.push('.');
            }
            (text, Host::Name(n.to_ascii_lowercase()))
        }
    };
    let mut text = String::new();
    if explicit {
        text.push_str(&random_case(rng, t.name()));
        text.push_str("://");
    }
    text.push_str(&host_text);
    if let Some(p) = &port_text {
        text.push_str(p);
    }
    (text, Url { transport: t, explicit_scheme: explicit, host: Some(host), port, path: None })
}

fn round_trips(u: &Url, from: &[u8]) {
    let f = u.format();
    let again = url::parse(&f).unwrap_or_else(|e| panic!("format of {:?} = {f:?} does not parse: {e}", String::from_utf8_lossy(from)));
    assert_eq!(&again, u, "round trip of {:?} via {f:?}", String::from_utf8_lossy(from));
    assert_eq!(again.format(), f);
}

#[test]
fn valid_urls_parse_to_their_parts_and_round_trip() {
    let mut rng = Rng(0x7E57_0001);
    let n = pick(20_000, 200_000);
    for _ in 0..n {
        let (text, want) = valid(&mut rng);
        let got = url::parse(&text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
        assert_eq!(got, want, "{text:?}");
        round_trips(&got, text.as_bytes());
    }
    figure(SUITE, "valid URLs generated, parsed to their parts, round-tripped", n);
}

const TOKENS: &[&str] = &[
    "tcp://", "udp://", "tls://", "unix://", "udg://", "sslv3://", "TLSv1.3://", "://", ":", "::", "[", "]", "%", "%25",
    ".", "..", "-", "_", "0", "00", "255", "256", "65535", "65536", "0x", "xn--", "ü", "。", "．", "\u{200b}", " ", "\t",
    "\u{0}", "@", "/", "?", "#", "127.0.0.1", "fe80::1", "::ffff:1.2.3.4", "localhost",
];

/// One random edit of `s`.
fn mutate(rng: &mut Rng, s: &mut Vec<u8>) {
    let at = if s.is_empty() { 0 } else { rng.below(s.len() + 1) };
    match rng.below(6) {
        0 if !s.is_empty() => {
            let end = (at + rng.range(1, 4)).min(s.len());
            s.drain(at.min(s.len())..end);
        }
        1 => s.insert(at, rng.next_u64() as u8), // any byte: non-UTF-8 too
        2 if at < s.len() => s[at] = rng.next_u64() as u8,
        3 => {
            let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
            s.splice(at..at, t.iter().copied());
        }
        4 if !s.is_empty() => {
            // Duplicate a piece.
            let end = (at + rng.range(1, 16)).min(s.len());
            let piece = s[at.min(s.len())..end].to_vec();
            s.splice(at..at, piece);
        }
        _ => s.insert(at, (rng.range(0x20, 0x7e)) as u8),
    }
}

fn check_any(input: &[u8]) -> bool {
    let r = std::panic::catch_unwind(|| url::parse_bytes(input));
    let r = r.unwrap_or_else(|_| panic!("parse panicked on {:?}", String::from_utf8_lossy(input)));
    match r {
        Ok(u) => {
            round_trips(&u, input);
            true
        }
        Err(e) => {
            assert!(
                [TU_E_URL, TU_E_UNSUPPORTED_TRANSPORT, TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT].contains(&e.code),
                "{:?}: {e}",
                String::from_utf8_lossy(input)
            );
            assert!(e.message.contains("offset"), "{:?}: {}", String::from_utf8_lossy(input), e.message);
            false
        }
    }
}

#[test]
fn mutated_urls_never_panic_and_round_trip_when_accepted() {
    let mut rng = Rng(0x7E57_0002);
    let n = pick(30_000, 300_000);
    let mut accepted = 0;
    let vectors: Vec<Vec<u8>> = serde_json::from_str::<Vec<serde_json::Value>>(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/urls.json")).unwrap(),
    )
    .unwrap()
    .iter()
    .filter_map(|v| v["url"].as_str().map(|s| s.as_bytes().to_vec()))
    .collect();
    for i in 0..n {
        let mut s = if i % 2 == 0 { valid(&mut rng).0.into_bytes() } else { vectors[rng.below(vectors.len())].clone() };
        for _ in 0..rng.range(1, 4) {
            mutate(&mut rng, &mut s);
        }
        if check_any(&s) {
            accepted += 1;
        }
        if let Ok(text) = std::str::from_utf8(&s) {
            let port = rng.below(3) as u16 * 443;
            if let Ok(u) = url::parse_with_port(text, port) {
                round_trips(&u, &s);
            }
        }
    }
    assert!(accepted > n / 20, "only {accepted} of {n} mutants accepted: the mutations are too hostile to test round trips");
    figure(SUITE, "mutated URLs parsed without a panic", format!("{n} ({accepted} accepted and round-tripped)"));
}

#[test]
fn c_parse_agrees_with_rust_and_leaves_output_alone_on_failure() {
    let mut rng = Rng(0x7E57_0003);
    let n = pick(5_000, 50_000);
    for _ in 0..n {
        let mut s = valid(&mut rng).0.into_bytes();
        if rng.below(2) == 0 {
            mutate(&mut rng, &mut s);
        }
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        s.truncate(end); // what C sees
        let c = std::ffi::CString::new(s.clone()).unwrap();
        // SAFETY (test): a plain C struct of integers and arrays.
        let mut parts: tu_url_parts = unsafe { std::mem::zeroed() };
        parts.port = 12345;
        let mut e = new_error();
        let rc = tu_parse_url(c.as_ptr(), &mut parts, &mut e);
        assert_eq!(rc, e.code);
        let msg = message(&e);
        match url::parse_bytes(&s) {
            Ok(u) => {
                assert_eq!(rc, TU_OK, "{msg}");
                let host = text(parts.host.as_ptr()).unwrap();
                assert_eq!(host, u.host.map(|h| h.to_string_for_display()).unwrap_or_default());
                assert_eq!(parts.port, u.port.map(i32::from).unwrap_or(0));
            }
            Err(err) => {
                assert_eq!(rc, err.code, "{msg}");
                assert_eq!(parts.port, 12345, "output written on failure");
                assert!(parts.host.iter().all(|&c| c == 0), "output written on failure");
            }
        }
    }
    figure(SUITE, "tu_parse_url calls compared with the Rust parser", n);
}

#[test]
fn options_never_panic_and_refusals_change_nothing() {
    let mut rng = Rng(0x7E57_0004);
    let n = pick(20_000, 200_000);
    let samples = [
        "1", "0", "-1", "0.5", "1e3", "nan", "true", "maybe", "", " ", "1.2", "1.3", "tlsv1.1", "h2,http/1.1", ",,",
        "127.0.0.1:0", "[::1]:0", "0:0", "[::1%lo]:1", "99999", "sha256=", "localhost", "a..b", "ü", "\u{1}",
        "/nonexistent", "TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "1000000000.5",
    ];
    let mut refused = 0;
    for _ in 0..n {
        let key: String = if rng.below(10) == 0 {
            let mut k = KEYS[rng.below(KEYS.len())].as_bytes().to_vec();
            mutate(&mut rng, &mut k);
            String::from_utf8_lossy(&k).into_owned()
        } else {
            KEYS[rng.below(KEYS.len())].to_string()
        };
        if key.eq_ignore_ascii_case("ssl.keylog") {
            continue; // creates files
        }
        let mut v = samples[rng.below(samples.len())].as_bytes().to_vec();
        for _ in 0..rng.below(3) {
            mutate(&mut rng, &mut v);
        }
        let value = String::from_utf8_lossy(&v).into_owned();
        if value.starts_with("/proc") || value.starts_with("/sys") || value.starts_with("/dev") {
            continue;
        }
        let mut o = Options::default();
        let before = o.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| o.set(&key, &value)))
            .unwrap_or_else(|_| panic!("Options::set panicked on {key:?} = {value:?}"));
        if let Err(e) = r {
            refused += 1;
            assert!([TU_E_INVALID_ARGUMENT, TU_E_INSECURE_PROTOCOL].contains(&e.code), "{key}={value:?}: {e}");
            assert_eq!(o, before, "{key}={value:?}: refused, yet the options changed");
            if KEYS.contains(&key.as_str()) {
                assert!(e.message.contains(&key), "{e}");
            }
        }
    }
    figure(SUITE, "Options::set calls without a panic", format!("{n} ({refused} refused, options unchanged)"));
}

#[test]
fn huge_inputs_are_linear() {
    for (what, input) in [
        ("host", format!("tcp://{}:80", "a".repeat(1 << 20))),
        ("labels", format!("tcp://{}z:80", "a.".repeat(1 << 19))),
        ("colons", format!("tcp://{}", ":".repeat(1 << 20))),
        ("brackets", format!("tcp://[{}]:1", "1:".repeat(1 << 19))),
        ("zone", format!("[fe80::1%{}]:1", "z".repeat(1 << 20))),
        ("scheme", format!("{}://h:1", "t".repeat(1 << 20))),
        ("path", format!("unix://{}", "/".repeat(1 << 20))),
        ("port", format!("h:{}", "9".repeat(1 << 20))),
        ("unicode", format!("tcp://{}:1", "ü".repeat(1 << 19))),
    ] {
        let t0 = Instant::now();
        let r = url::parse(&input);
        let took = t0.elapsed();
        assert!(took.as_secs_f64() < 2.0, "{what}: 1 MiB took {took:?}");
        if let Err(e) = &r {
            assert!(e.message.len() < 1024, "{what}: message of {} bytes", e.message.len());
        }
        let c = std::ffi::CString::new(input).unwrap();
        let mut e = new_error();
        // SAFETY (test): a plain C struct.
        let mut parts: tu_url_parts = unsafe { std::mem::zeroed() };
        let rc = tu_parse_url(c.as_ptr(), &mut parts, &mut e);
        assert_eq!(rc, r.as_ref().err().map(|e| e.code).unwrap_or(TU_OK), "{what}");
        if rc == TU_OK {
            let host = text(parts.host.as_ptr()).unwrap();
            let want = r.unwrap().host.map(|h| h.to_string_for_display()).unwrap_or_default();
            assert!(host == want, "{what}: tu_url_parts cuts the host ({} of {} bytes)", host.len(), want.len());
        }
    }
}

/// Regression: a zone of any length used to be accepted, and `tu_parse_url`
/// then said TU_OK with the host cut to fit `tu_url_parts.host` (found by
/// `huge_inputs_are_linear`). Zones are interface names (at most 15 bytes).
#[test]
fn zone_length_is_bounded() {
    let z15 = "a".repeat(url::MAX_ZONE);
    for input in [format!("[fe80::1%{z15}]:1"), format!("fe80::1%25{z15}")] {
        let u = url::parse(&input).unwrap();
        let c = std::ffi::CString::new(input.clone()).unwrap();
        // SAFETY (test): a plain C struct.
        let mut parts: tu_url_parts = unsafe { std::mem::zeroed() };
        assert_eq!(tu_parse_url(c.as_ptr(), &mut parts, std::ptr::null_mut()), TU_OK);
        assert_eq!(text(parts.host.as_ptr()).unwrap(), u.host.unwrap().to_string_for_display());
    }
    let long = format!("[fe80::1%{}]:1", "a".repeat(url::MAX_ZONE + 1));
    let e = url::parse(&long).unwrap_err();
    assert_eq!(e.code, TU_E_URL);
    assert!(e.message.contains("zone") && e.message.contains("offset 9"), "{}", e.message);
}

/// Regression (found by the options_set fuzz target): file options quoted the
/// raw value, so a 64 KiB path made a 64 KiB message with its control
/// characters. Every message now quotes at most a printable excerpt.
#[test]
fn option_messages_stay_short_and_printable() {
    // (Digits alone: the time limits quoted "999…9 seconds is too large" whole.)
    let values = [format!("\n\x1b[31m{}", "a".repeat(100_000)), "9".repeat(100_000), "0".repeat(100_000)];
    for long in &values {
        for key in KEYS.iter().filter(|k| **k != "ssl.keylog") {
            if let Err(e) = Options::default().set(key, long) {
                assert!(e.message.len() < 1024, "{key}: a message of {} bytes", e.message.len());
                assert!(
                    !e.message.contains('\n') && !e.message.contains('\x1b'),
                    "{key}: control characters in {:?}",
                    &e.message[..e.message.len().min(200)]
                );
            }
        }
    }
}
