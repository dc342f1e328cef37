//! The C ABI. This is the only module with `unsafe`: raw pointers become
//! references in a few helpers, and every export runs inside [`boundary`],
//! so no panic crosses into C.
#![allow(non_camel_case_types)]

use crate::error::{self, Error, Result, TU_E_INTERNAL, TU_OK};
use crate::handle::Handle;
use crate::options::Options;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::OnceLock;

// Codes (src/error.rs) and methods (src/handle.rs) are `pub const`s, which
// cbindgen writes as `#define`s.

/// An open connection. Opaque: made by `tu_connect`/`tu_connect_opts`,
/// released by `tu_close`.
pub struct tu_handle {
    _private: [u8; 0],
}

/// A set of options for `tu_connect_opts`. Opaque: made by
/// `tu_options_new`, released by `tu_options_free`.
pub struct tu_options {
    _private: [u8; 0],
}

/// The size of `tu_error.message`, NUL included.
pub const TU_ERROR_MESSAGE_SIZE: usize = 512;

/// A failure, owned by the caller (on the stack is fine; nothing to free).
/// Functions that take one reset it on entry (`code` = TU_OK, empty
/// `message`) and fill it on failure. `message` is always NUL-terminated
/// UTF-8, cut at a character boundary if long.
#[repr(C)]
pub struct tu_error {
    /// TU_OK (0) or a TU_E_* value.
    pub code: i32,
    /// Human-readable, NUL-terminated.
    pub message: [c_char; TU_ERROR_MESSAGE_SIZE],
}

/// The parts of a transport URL, filled by `tu_parse_url`. Caller-owned.
#[repr(C)]
pub struct tu_url_parts {
    /// "tcp", "udp", "ssl", "tls", "tlsv1.2", "tlsv1.3", "unix" or "udg".
    pub transport: [c_char; 16],
    /// The host as text: "127.0.0.1", "fe80::1%eth0" (no brackets),
    /// "example.com" (ASCII, lower case); empty for unix/udg.
    pub host: [c_char; 320],
    /// 1..65535, or 0 when the URL has no port.
    pub port: i32,
    /// 1 when the URL had a "name://" prefix, 0 when tcp was implied.
    pub explicit_scheme: i32,
    /// The socket path for unix:// and udg://; empty otherwise.
    pub path: [c_char; 128],
}

// ---------------------------------------------------------------------------
// The boundary

#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    //! Test-only: make the next export called on this thread panic inside
    //! the boundary, to prove that the panic becomes `TU_E_INTERNAL`.
    use std::cell::Cell;
    thread_local!(static ARMED: Cell<bool> = const { Cell::new(false) });

    pub fn panic_in_next_call() {
        ARMED.with(|a| a.set(true));
    }

    pub(super) fn fire() {
        if ARMED.with(|a| a.replace(false)) {
            panic!("panic forced by the test hook");
        }
    }
}

/// Runs `f`, turning a panic into `TU_E_INTERNAL`. Every export goes
/// through here.
fn boundary<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let run = || {
        #[cfg(feature = "test-hooks")]
        test_hooks::fire();
        f()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::new(TU_E_INTERNAL, format!("internal error caught at the C boundary ({what}); this is a bug in transporturl")))
        }
    }
}

/// [`boundary`] for calls on a handle: failures are recorded for
/// `tu_last_error`, and a panic marks the handle failed.
fn on_handle<T>(h: *const tu_handle, f: impl FnOnce(&Handle) -> Result<T>) -> Result<T> {
    let handle = handle_ref(h)?;
    let r = boundary(|| f(handle));
    if let Err(e) = &r {
        if e.code == TU_E_INTERNAL {
            handle.mark_failed(e);
        }
        handle.record(e.clone());
    }
    r
}

fn handle_ref<'a>(h: *const tu_handle) -> Result<&'a Handle> {
    if h.is_null() {
        return Err(Error::invalid("the handle is NULL"));
    }
    // SAFETY: a non-NULL handle comes from Box::into_raw in tu_connect* and
    // stays valid until tu_close; the caller promises not to close it while
    // it is in use. Only shared references are made (full duplex).
    Ok(unsafe { &*(h as *const Handle) })
}

fn options_ref<'a>(o: *const tu_options) -> Result<&'a Options> {
    if o.is_null() {
        return Err(Error::invalid("the options pointer is NULL"));
    }
    // SAFETY: made by tu_options_new (Box<Options>), valid until tu_options_free.
    Ok(unsafe { &*(o as *const Options) })
}

/// A C string argument as UTF-8 text. NULL and non-UTF-8 are errors.
fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the call.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!("{what} is not valid UTF-8 (bad byte at offset {})", e.valid_up_to()))
    })
}

fn length(len: usize, what: &str) -> Result<()> {
    if len == 0 {
        return Err(Error::invalid(format!("{what}: length 0; pass a buffer of at least 1 byte")));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what}: length {len} is larger than any buffer can be")));
    }
    Ok(())
}

/// Copies `s` into a C char array: cut at a UTF-8 boundary, NUL-terminated.
fn copy_text(dst: &mut [c_char], s: &str) {
    if dst.is_empty() {
        return;
    }
    let mut n = s.len().min(dst.len() - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, b) in dst.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as c_char;
    }
    dst[n] = 0;
}

/// Resets `*err` (if not NULL): code TU_OK, empty message.
fn reset(err: *mut tu_error) -> Option<&'static mut tu_error> {
    if err.is_null() {
        return None;
    }
    // SAFETY: the caller passes a writable tu_error or NULL.
    let e = unsafe { &mut *err };
    e.code = TU_OK;
    e.message[0] = 0;
    Some(e)
}

fn fill(err: Option<&mut tu_error>, e: &Error) -> i32 {
    if let Some(out) = err {
        out.code = e.code;
        copy_text(&mut out.message, &e.message);
    }
    e.code
}

fn code_of<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => TU_OK,
        Err(e) => e.code,
    }
}

// ---------------------------------------------------------------------------
// Connections

/// Opens the connection `url` names (`tcp://host:port`, `udp://…`,
/// `tls://…`, `unix:///path` …) with default options: certificates verified
/// against the system roots, a 60 s limit on connect + handshake and on each
/// read and write.
///
/// Returns a new handle, owned by the caller and released with `tu_close`;
/// NULL on failure, with the code and message in `*err`. `err` may be NULL.
/// `url` is borrowed for the call only.
#[no_mangle]
pub extern "C" fn tu_connect(url: *const c_char, err: *mut tu_error) -> *mut tu_handle {
    tu_connect_opts(url, ptr::null(), err)
}

/// Like `tu_connect`, with options (`opts` may be NULL for the defaults).
/// `opts` is only read during the call: free it whenever you like after.
#[no_mangle]
pub extern "C" fn tu_connect_opts(url: *const c_char, opts: *const tu_options, err: *mut tu_error) -> *mut tu_handle {
    let err = reset(err);
    let r = boundary(|| {
        let url = text(url, "url")?;
        let defaults;
        let opts = if opts.is_null() {
            defaults = Options::default();
            &defaults
        } else {
            options_ref(opts)?
        };
        Handle::connect(url, opts)
    });
    match r {
        Ok(h) => Box::into_raw(Box::new(h)) as *mut tu_handle,
        Err(e) => {
            fill(err, &e);
            ptr::null_mut()
        }
    }
}

/// Turns TLS on (STARTTLS) or off on a connection.
///
/// `TU_CRYPTO_ANY`, `TU_CRYPTO_TLSV1_2`, `TU_CRYPTO_TLSV1_3`: runs the TLS
/// handshake on the same socket, verifying the URL's host (or
/// `ssl.peer_name`). Call it right after the server's go-ahead (SMTP: `220`
/// to `STARTTLS`): if plaintext bytes are already waiting, the upgrade is
/// refused with `TU_E_PROTOCOL` and the handle is unusable (injection).
/// `TU_CRYPTO_NONE`: sends close_notify, waits for the peer's, and goes back
/// to plaintext; bytes the peer sent after its close_notify are kept for
/// `tu_read`. Legacy methods give `TU_E_INSECURE_PROTOCOL`.
///
/// Returns TU_OK or a TU_E_* code (message via `tu_last_error`).
/// Not to be called while another thread reads or writes `h`.
#[no_mangle]
pub extern "C" fn tu_enable_crypto(h: *mut tu_handle, method: i32) -> i32 {
    code_of(on_handle(h, |h| h.enable_crypto(method)))
}

/// Reads up to `len` bytes into `buf`.
///
/// Returns the count (> 0), 0 at orderly EOF (TCP FIN, or TLS
/// close_notify), or -(TU_E_* code): `-TU_E_TIMEOUT` when `read_timeout`
/// passes, `-TU_E_TRUNCATED` when a TLS peer closed without close_notify (after
/// all data was delivered) or a UDP datagram did not fit (its real size is
/// in the message). On `udp://` one read is one datagram. `len` 0 is
/// `-TU_E_INVALID_ARGUMENT`. One `tu_read` may run while another thread is in
/// `tu_write` on the same handle.
#[no_mangle]
pub extern "C" fn tu_read(h: *mut tu_handle, buf: *mut c_void, len: libc::size_t) -> libc::intptr_t {
    let r = on_handle(h, |h| {
        length(len, "tu_read")?;
        if buf.is_null() {
            return Err(Error::invalid("tu_read: buf is NULL"));
        }
        // SAFETY: the caller passes `buf` writable for `len` bytes, not used
        // by anything else during the call.
        let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) };
        h.read(out)
    });
    match r {
        Ok(n) => n as isize,
        Err(e) => -(e.code as isize),
    }
}

/// Writes `len` bytes from `buf`: all of them, unless `write_timeout`
/// passes part way (then the count that went out). Returns the count (> 0)
/// or -(TU_E_* code). Never raises SIGPIPE: a closed peer is `-TU_E_IO`. On
/// `udp://` one write is one datagram (at most 65,507 bytes). One `tu_write`
/// may run while another thread is in `tu_read` on the same handle.
#[no_mangle]
pub extern "C" fn tu_write(h: *mut tu_handle, buf: *const c_void, len: libc::size_t) -> libc::intptr_t {
    let r = on_handle(h, |h| {
        length(len, "tu_write")?;
        if buf.is_null() {
            return Err(Error::invalid("tu_write: buf is NULL"));
        }
        // SAFETY: the caller passes `buf` readable for `len` bytes.
        let data = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        h.write(data)
    });
    match r {
        Ok(n) => n as isize,
        Err(e) => -(e.code as isize),
    }
}

/// Copies the code and message of the last failure on `h` into `*out` and
/// returns that code (TU_OK, with an empty message, if nothing failed yet).
/// With `h` NULL: TU_E_INVALID_ARGUMENT (and `*out` says so, if given).
#[no_mangle]
pub extern "C" fn tu_last_error(h: *const tu_handle, out: *mut tu_error) -> i32 {
    let out = reset(out);
    let r = boundary(|| {
        let handle = handle_ref(h)?;
        Ok(handle.last_error())
    });
    match r {
        Ok(None) => TU_OK,
        Ok(Some(e)) => fill(out, &e),
        Err(e) => fill(out, &e),
    }
}

/// Closes the connection (TLS: sends close_notify if the socket takes it
/// within a short grace period) and frees the handle. Calling with NULL is
/// fine. Must not be called twice, nor while another thread uses `h`.
#[no_mangle]
pub extern "C" fn tu_close(h: *mut tu_handle) {
    if h.is_null() {
        return;
    }
    let _ = boundary(|| {
        // SAFETY: `h` came from Box::into_raw in tu_connect_opts; the caller
        // gives up its ownership here.
        drop(unsafe { Box::from_raw(h as *mut Handle) });
        Ok(())
    });
}

/// The file descriptor of the connection, borrowed: the library closes it
/// in `tu_close`. -1 if `h` is NULL.
#[no_mangle]
pub extern "C" fn tu_fileno(h: *const tu_handle) -> i32 {
    boundary(|| Ok(handle_ref(h)?.fd())).unwrap_or(-1)
}

/// The negotiated TLS version ("TLSv1.3" or "TLSv1.2"), or NULL when TLS is
/// not on. The string is static: do not free it.
#[no_mangle]
pub extern "C" fn tu_tls_version(h: *const tu_handle) -> *const c_char {
    static_text(boundary(|| Ok(handle_ref(h)?.tls_version())).ok().flatten())
}

/// The IANA name of the negotiated cipher suite
/// ("TLS_AES_256_GCM_SHA384"), or NULL when TLS is not on. Static string.
#[no_mangle]
pub extern "C" fn tu_tls_cipher_suite(h: *const tu_handle) -> *const c_char {
    static_text(boundary(|| Ok(handle_ref(h)?.cipher_suite())).ok().flatten())
}

// ---------------------------------------------------------------------------
// Options

/// A new option set holding the defaults. Free it with `tu_options_free`.
/// NULL only if memory ran out.
#[no_mangle]
pub extern "C" fn tu_options_new() -> *mut tu_options {
    match boundary(|| Ok(Box::new(Options::default()))) {
        Ok(b) => Box::into_raw(b) as *mut tu_options,
        Err(_) => ptr::null_mut(),
    }
}

/// Sets option `key` (PHP's stream-context names: "timeout",
/// "ssl.verify_peer", "ssl.cafile", …) to `value`, checking it now: an
/// unknown key or a bad value is TU_E_INVALID_ARGUMENT with a message that
/// names the key in `*err` (may be NULL). Strings are copied.
#[no_mangle]
pub extern "C" fn tu_options_set(o: *mut tu_options, key: *const c_char, value: *const c_char, err: *mut tu_error) -> i32 {
    let err = reset(err);
    let r = boundary(|| {
        if o.is_null() {
            return Err(Error::invalid("the options pointer is NULL"));
        }
        let key = text(key, "option key")?;
        let value = text(value, &format!("the value of option {key}"))?;
        // SAFETY: made by tu_options_new; the caller does not use it from
        // another thread during this call.
        let opts = unsafe { &mut *(o as *mut Options) };
        opts.set(key, value)
    });
    match r {
        Ok(()) => TU_OK,
        Err(e) => fill(err, &e),
    }
}

/// Frees an option set. Calling with NULL is fine. Must not be called twice.
#[no_mangle]
pub extern "C" fn tu_options_free(o: *mut tu_options) {
    if o.is_null() {
        return;
    }
    let _ = boundary(|| {
        // SAFETY: made by tu_options_new; ownership comes back here.
        drop(unsafe { Box::from_raw(o as *mut Options) });
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Parsing and information

/// Parses a transport URL without connecting, filling `*out` (written only
/// on success). Returns TU_OK or the code the URL would fail with in
/// `tu_connect`, with the message in `*err` (may be NULL).
#[no_mangle]
pub extern "C" fn tu_parse_url(url: *const c_char, out: *mut tu_url_parts, err: *mut tu_error) -> i32 {
    let err = reset(err);
    let r = boundary(|| {
        if url.is_null() {
            return Err(Error::invalid("url is NULL"));
        }
        if out.is_null() {
            return Err(Error::invalid("out is NULL"));
        }
        // SAFETY: NUL-terminated string from the caller.
        let bytes = unsafe { CStr::from_ptr(url) }.to_bytes();
        crate::url::parse_bytes(bytes)
    });
    match r {
        Ok(u) => {
            // SAFETY: checked non-NULL above; caller-owned and writable.
            let out = unsafe { &mut *out };
            copy_text(&mut out.transport, u.transport.name());
            copy_text(&mut out.host, &u.host.as_ref().map(|h| h.to_string_for_display()).unwrap_or_default());
            out.port = u.port.map(i32::from).unwrap_or(0);
            out.explicit_scheme = i32::from(u.explicit_scheme);
            copy_text(&mut out.path, u.path.as_deref().unwrap_or(""));
            TU_OK
        }
        Err(e) => fill(err, &e),
    }
}

/// The library version, e.g. "0.1.0" (also TU_VERSION in the header).
/// Static string.
#[no_mangle]
pub extern "C" fn tu_version() -> *const c_char {
    static VERSION: OnceLock<CString> = OnceLock::new();
    VERSION.get_or_init(|| CString::new(env!("CARGO_PKG_VERSION")).unwrap_or_default()).as_ptr()
}

/// A short description of a code ("malformed URL"), for callers that passed
/// no tu_error. Unknown values give "unknown error code". Static string.
#[no_mangle]
pub extern "C" fn tu_strerror(code: i32) -> *const c_char {
    let d = error::CODES.iter().find(|c| c.0 == code).map(|c| c.2).unwrap_or("unknown error code");
    static_text(Some(d))
}

/// The name of a code ("TU_E_URL"), or NULL for a value that is not a code.
/// Static string.
#[no_mangle]
pub extern "C" fn tu_code_name(code: i32) -> *const c_char {
    static_text(error::code_name(code))
}

/// A NUL-terminated copy of a static string, made once and kept.
fn static_text(s: Option<&'static str>) -> *const c_char {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static TEXTS: OnceLock<Mutex<HashMap<&'static str, &'static CStr>>> = OnceLock::new();
    let Some(s) = s else { return ptr::null() };
    let mut map = TEXTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let c: &'static CStr = map
        .entry(s)
        .or_insert_with(|| Box::leak(CString::new(s).unwrap_or_default().into_boxed_c_str()));
    c.as_ptr()
}

