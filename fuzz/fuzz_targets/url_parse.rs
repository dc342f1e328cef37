//! The URL parser on arbitrary bytes (non-UTF-8 and huge inputs included):
//! it never panics; an error has a URL-family code and says where; an accepted
//! URL has its transport's invariants and format() round-trips through parse().
#![no_main]

use libfuzzer_sys::fuzz_target;
use transporturl::error::{TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT, TU_E_UNSUPPORTED_TRANSPORT, TU_E_URL};
use transporturl::url::{self, Host, Url};

mod shared;

fuzz_target!(|data: &[u8]| {
    let input = shared::maybe_huge(data);
    match url::parse_bytes(&input) {
        Ok(u) => accepted(&u),
        Err(e) => {
            assert!(
                [TU_E_URL, TU_E_UNSUPPORTED_TRANSPORT, TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT].contains(&e.code),
                "unexpected code: {e}"
            );
            assert!(e.message.contains("offset"), "the message says where: {e}");
            assert!(e.message.len() < 2048, "the message grows with the input: {} bytes", e.message.len());
        }
    }
    // fsockopen style, with a port argument of 0 (none), 443 or 886.
    if let Ok(s) = std::str::from_utf8(&input) {
        let port = (input.len() % 3) as u16 * 443;
        if let Ok(u) = url::parse_with_port(s, port) {
            accepted(&u);
            if port != 0 && !u.transport.is_unix() {
                assert_eq!(u.port, Some(port));
            }
        }
    }
});

fn accepted(u: &Url) {
    let text = u.format();
    let again = url::parse(&text).unwrap_or_else(|e| panic!("format() gave {text:?}, which does not parse: {e}"));
    assert_eq!(&again, u, "round trip via {text:?}");
    assert_eq!(again.format(), text, "format() is canonical");
    assert_eq!(u.transport.is_unix(), u.host.is_none());
    assert_eq!(u.transport.is_unix(), u.path.is_some());
    if let Some(p) = u.port {
        assert!(p >= 1);
    }
    if let Some(p) = &u.path {
        assert!(!p.is_empty() && p.len() <= url::MAX_UNIX_PATH && !p.contains('\0'));
    }
    match &u.host {
        Some(Host::Name(n)) => {
            assert!(!n.is_empty() && n.len() <= url::MAX_HOST_NAME, "{n:?}");
            assert!(!n.ends_with('.') && *n == n.to_ascii_lowercase(), "{n:?}");
            assert!(n.split('.').all(|l| !l.is_empty() && l.len() <= url::MAX_LABEL), "{n:?}");
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')), "{n:?}");
            assert!(n.parse::<std::net::IpAddr>().is_err(), "an address parsed as a name: {n:?}");
        }
        Some(Host::V6 { zone: Some(z), .. }) => assert!(!z.is_empty()),
        _ => {}
    }
}
