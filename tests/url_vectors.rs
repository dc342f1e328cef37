//! Runs the shared URL vectors (tests/vectors/urls.json, tests/vectors/fsockopen.json)
//! through `transporturl::url`. The C, Python and Go suites run the same files.
//!
//! Case format (urls.json):
//!   {"url": "...", "ok": {"transport": "tcp", "host": "127.0.0.1", "port": 80,
//!                         "explicit_scheme": true, "path": "..."(unix/udg only)}}
//!   {"url": "...", "error": "TU_E_URL", "message_contains": "offset 15"}
//!   "url_hex": "..." instead of "url" for raw (non-UTF-8) bytes.
//! fsockopen.json: the same with "host" (the address) and "port" (0 = none).

use serde_json::Value;
use std::path::PathBuf;
use transporturl::error::code_name;
use transporturl::url::{parse, parse_bytes, parse_with_port, Url};

fn load(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Array(cases)) => cases,
        other => panic!("{}: not a JSON array: {other:?}", path.display()),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex: {s}")))
        .collect()
}

/// Compare one result with a case's "ok" or "error"; returns a failure text.
fn check(label: &str, case: &Value, got: &transporturl::error::Result<Url>) -> Option<String> {
    if let Some(ok) = case.get("ok") {
        let u = match got {
            Ok(u) => u,
            Err(e) => return Some(format!("{label}: expected ok, got {e}")),
        };
        let mut diffs = Vec::new();
        let want_t = ok["transport"].as_str().unwrap_or("?");
        if u.transport.name() != want_t {
            diffs.push(format!("transport {} != {want_t}", u.transport.name()));
        }
        let got_host = u.host.as_ref().map(|h| h.to_string_for_display());
        let want_host = ok["host"].as_str().map(str::to_string);
        if got_host != want_host {
            diffs.push(format!("host {got_host:?} != {want_host:?}"));
        }
        let want_port = ok["port"]
            .as_u64()
            .map(|p| u16::try_from(p).expect("port fits u16"));
        if u.port != want_port {
            diffs.push(format!("port {:?} != {want_port:?}", u.port));
        }
        let want_explicit = ok["explicit_scheme"]
            .as_bool()
            .expect("explicit_scheme is a bool");
        if u.explicit_scheme != want_explicit {
            diffs.push(format!(
                "explicit_scheme {} != {want_explicit}",
                u.explicit_scheme
            ));
        }
        let want_path = ok.get("path").and_then(Value::as_str).map(str::to_string);
        if u.path != want_path {
            diffs.push(format!("path {:?} != {want_path:?}", u.path));
        }
        // Canonical text parses back to the same value.
        let text = u.format();
        if parse(&text).as_ref() != Ok(u) {
            diffs.push(format!(
                "round trip: format() = {text:?} parses to {:?}",
                parse(&text)
            ));
        }
        if diffs.is_empty() {
            None
        } else {
            Some(format!("{label}: {}", diffs.join("; ")))
        }
    } else {
        let want_code = case["error"]
            .as_str()
            .expect("case has \"ok\" or \"error\"");
        let want_msg = case["message_contains"]
            .as_str()
            .expect("error case has message_contains");
        match got {
            Ok(u) => Some(format!("{label}: expected {want_code}, got ok {u:?}")),
            Err(e) => {
                let name = code_name(e.code).unwrap_or("?");
                if name != want_code {
                    Some(format!("{label}: expected {want_code}, got {e}"))
                } else if !e.message.contains(want_msg) {
                    Some(format!(
                        "{label}: message {:?} lacks {want_msg:?}",
                        e.message
                    ))
                } else {
                    None
                }
            }
        }
    }
}

#[test]
fn url_vectors() {
    let cases = load("urls.json");
    assert!(cases.len() >= 100, "only {} URL vectors", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (label, got) = if let Some(hex) = case.get("url_hex").and_then(Value::as_str) {
            (format!("url_hex {hex}"), parse_bytes(&unhex(hex)))
        } else {
            let url = case["url"].as_str().expect("case has url or url_hex");
            let got = parse(url);
            // parse_bytes agrees with parse on UTF-8 input.
            assert_eq!(
                parse_bytes(url.as_bytes()),
                got,
                "parse_bytes vs parse for {url:?}"
            );
            (format!("{url:?}"), got)
        };
        failures.extend(check(&label, case, &got));
    }
    println!(
        "url vectors: {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} URL vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn fsockopen_vectors() {
    let cases = load("fsockopen.json");
    assert!(cases.len() >= 12, "only {} fsockopen vectors", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let host = case["host"].as_str().expect("case has host");
        let port = case["port"].as_u64().expect("case has port");
        let port = u16::try_from(port).expect("port fits u16");
        let label = format!("({host:?}, {port})");
        failures.extend(check(&label, case, &parse_with_port(host, port)));
    }
    println!(
        "fsockopen vectors: {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fsockopen vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
