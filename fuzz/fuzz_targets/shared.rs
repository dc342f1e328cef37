//! Helpers shared by the fuzz targets (included with `mod shared;`).
#![allow(dead_code)]

use std::borrow::Cow;
use std::ffi::{c_char, CString};
use transporturl::ffi::tu_error;

/// Inputs starting with 0xFF are grown to 64..256 KiB by repeating the rest:
/// huge inputs without slowing every run down.
pub fn maybe_huge(data: &[u8]) -> Cow<'_, [u8]> {
    match data.split_first() {
        Some((0xFF, rest)) if !rest.is_empty() => {
            let target = 64 * 1024 + (rest.len() * 997) % (192 * 1024);
            Cow::Owned(rest.iter().copied().cycle().take(target).collect())
        }
        _ => Cow::Borrowed(data),
    }
}

/// What C sees of `bytes`: everything up to the first NUL.
pub fn c_string(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("no NUL inside")
}

pub fn new_error() -> tu_error {
    tu_error { code: -99, message: [0x55 as c_char; 512] }
}

/// The checks every `tu_error` must pass after a call that returned `rc`:
/// the code matches, the message is NUL-terminated UTF-8, empty on success
/// and not on failure. Returns the message.
pub fn check_error(e: &tu_error, rc: i32) -> String {
    assert_eq!(e.code, rc, "err.code and the return value differ");
    let end = e.message.iter().position(|&c| c == 0).expect("message not NUL-terminated");
    let bytes: Vec<u8> = e.message[..end].iter().map(|&c| c as u8).collect();
    let msg = String::from_utf8(bytes).expect("message is not UTF-8");
    if rc == 0 {
        assert!(msg.is_empty(), "message on success: {msg}");
    } else {
        assert!(!msg.is_empty(), "failure {rc} without a message");
    }
    msg
}

/// Option values that the fuzzer must not use: `ssl.keylog` creates files,
/// and kernel pseudo-files can be endless or block.
pub fn option_is_safe(key: &[u8], value: &[u8]) -> bool {
    if key.eq_ignore_ascii_case(b"ssl.keylog") {
        return false;
    }
    let v = value.strip_prefix(b"file://").unwrap_or(value);
    let trimmed: Vec<u8> = v.iter().copied().skip_while(|b| b.is_ascii_whitespace()).collect();
    !(trimmed.starts_with(b"/proc") || trimmed.starts_with(b"/sys") || trimmed.starts_with(b"/dev") || trimmed.starts_with(b"/run"))
}

/// The raw bytes of a plain C struct, to prove that an output was not touched.
pub fn bytes_of<T>(t: &T) -> Vec<u8> {
    // SAFETY: T is a plain #[repr(C)] struct of integers and char arrays.
    unsafe { std::slice::from_raw_parts(t as *const T as *const u8, std::mem::size_of::<T>()) }.to_vec()
}
