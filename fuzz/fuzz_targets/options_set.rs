//! `Options::set` on arbitrary keys and values: it never panics; a refusal is
//! TU_E_INVALID_ARGUMENT (or TU_E_INSECURE_PROTOCOL for legacy TLS versions),
//! names a known key, and leaves the options exactly as they were.
#![no_main]

use libfuzzer_sys::fuzz_target;
use transporturl::error::{TU_E_INSECURE_PROTOCOL, TU_E_INVALID_ARGUMENT};
use transporturl::options::{Options, KEYS};

mod shared;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let rest = shared::maybe_huge(rest);
    // Mostly a known key with a fuzzed value; sometimes a fuzzed "key=value".
    let (key, value): (&[u8], &[u8]) = if (sel as usize) < 0xF0 {
        (KEYS[sel as usize % KEYS.len()].as_bytes(), &rest)
    } else {
        match rest.iter().position(|&b| b == b'=') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&rest[..], &b""[..]),
        }
    };
    if !shared::option_is_safe(key, value) {
        return;
    }
    let (Ok(key), Ok(value)) = (std::str::from_utf8(key), std::str::from_utf8(value)) else { return };
    let mut o = Options::default();
    o.set("timeout", "7").unwrap();
    let before = o.clone();
    match o.set(key, value) {
        Ok(()) => {
            // Setting the same value again is accepted and changes nothing more.
            let mut again = o.clone();
            again.set(key, value).expect("the same value a second time");
            assert_eq!(again, o);
        }
        Err(e) => {
            assert!([TU_E_INVALID_ARGUMENT, TU_E_INSECURE_PROTOCOL].contains(&e.code), "{key}={value:?}: {e}");
            assert_eq!(o, before, "a refused value changed the options");
            if KEYS.contains(&key) {
                assert!(e.message.contains(key), "the message names the key: {e}");
            }
            assert!(e.message.len() < 4096, "the message grows with the input: {} bytes", e.message.len());
        }
    }
});
