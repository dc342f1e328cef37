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
    connect_with(opts, err, |opts| Handle::connect(text(url, "url")?, opts))
}

/// The body of every `tu_connect*`: options or the defaults, the boundary,
/// and a new handle or NULL with `*err` filled.
fn connect_with(
    opts: *const tu_options,
    err: *mut tu_error,
    connect: impl FnOnce(&Options) -> Result<Handle>,
) -> *mut tu_handle {
    let err = reset(err);
    let r = boundary(|| {
        let defaults;
        let opts = if opts.is_null() {
            defaults = Options::default();
            &defaults
        } else {
            options_ref(opts)?
        };
        connect(opts)
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
/// Returns TU_OK or a TU_E_* code (message via `tu_last_error`). In
/// non-blocking mode TU_E_WOULD_BLOCK means "not finished": poll for
/// `tu_wants(h)` and call again with the same method; it goes on where it
/// stopped. Not to be called while another thread reads or writes `h`.
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
/// `-TU_E_INVALID_ARGUMENT`. On a non-blocking handle, `-TU_E_WOULD_BLOCK`
/// when nothing can be read now (see `tu_set_nonblocking`: read until then
/// before you poll). After `tu_shutdown` of reading, `-TU_E_STATE`. One
/// `tu_read` may run while another thread is in `tu_write` on the same handle.
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

/// Writes `len` bytes from `buf`: all of them, or an error —
/// `-TU_E_TIMEOUT` when `write_timeout` passes, even part way (the message
/// says how many bytes went out; the stream is then cut mid-message, so treat
/// the connection as failed). Returns the count (> 0)
/// or -(TU_E_* code). Never raises SIGPIPE: a closed peer is `-TU_E_IO`. On
/// `udp://` one write is one datagram (at most 65,507 bytes). On a
/// non-blocking handle, the count accepted now (maybe less than `len`), or
/// `-TU_E_WOULD_BLOCK` when none was: then nothing was taken and the same
/// bytes may be offered again. One `tu_write` may run while another thread
/// is in `tu_read` on the same handle.
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
/// `out` may be NULL: then only the code is returned. With `h` NULL:
/// TU_E_INVALID_ARGUMENT (and `*out` says so, if given).
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
    // SAFETY: `h` came from Box::into_raw in tu_connect_opts; the caller
    // gives up its ownership here. Taken before the boundary, so that the
    // handle is freed even if something in there panics (unwinding drops it).
    let handle = unsafe { Box::from_raw(h as *mut Handle) };
    let _ = boundary(move || {
        drop(handle);
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
    // SAFETY: made by tu_options_new; ownership comes back here (before the
    // boundary, so that a panic in there still frees it).
    let options = unsafe { Box::from_raw(o as *mut Options) };
    let _ = boundary(move || {
        drop(options);
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
    fill_parts(r, out, err)
}

/// Parses fsockopen style — `host` (which may carry a scheme, or be a bare
/// IPv6 literal such as "fe80::1") and `port` apart — without connecting,
/// exactly as `tu_connect_host` would. `port` is 1..65535, or 0 when `host`
/// carries it; a port in both places is TU_E_URL. `*out` is written only on
/// success; `err` may be NULL.
#[no_mangle]
pub extern "C" fn tu_parse_host(host: *const c_char, port: i32, out: *mut tu_url_parts, err: *mut tu_error) -> i32 {
    let err = reset(err);
    let r = boundary(|| {
        let host = text(host, "host")?;
        if out.is_null() {
            return Err(Error::invalid("out is NULL"));
        }
        crate::url::parse_host_port(host, port)
    });
    fill_parts(r, out, err)
}

fn fill_parts(r: Result<crate::url::Url>, out: *mut tu_url_parts, err: Option<&mut tu_error>) -> i32 {
    match r {
        Ok(u) => {
            // SAFETY: the callers checked `out` non-NULL; caller-owned and writable.
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
    boundary(|| Ok(VERSION.get_or_init(|| CString::new(env!("CARGO_PKG_VERSION")).unwrap_or_default()).as_ptr()))
        .unwrap_or(c"unknown".as_ptr())
}

/// A short description of a code ("malformed URL"), for callers that passed
/// no tu_error. Unknown values give "unknown error code". Static string.
#[no_mangle]
pub extern "C" fn tu_strerror(code: i32) -> *const c_char {
    boundary(|| {
        let d = error::CODES.iter().find(|c| c.0 == code).map(|c| c.2).unwrap_or("unknown error code");
        Ok(static_text(Some(d)))
    })
    .unwrap_or(c"internal error".as_ptr())
}

/// The name of a code ("TU_E_URL"), or NULL for a value that is not a code.
/// Static string.
#[no_mangle]
pub extern "C" fn tu_code_name(code: i32) -> *const c_char {
    boundary(|| Ok(static_text(error::code_name(code)))).unwrap_or(ptr::null())
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


// ---------------------------------------------------------------------------
// Connections in full: fsockopen style, non-blocking use, time limits,
// shutdown, addresses

/// fsockopen style: opens `host` (`"example.com"`, `"tls://example.com"`,
/// `"udp://127.0.0.1"`, a bare IPv6 literal such as `"fe80::1"`, or
/// `"unix:///run/app.sock"` with port 0) at `port`.
///
/// `port` is 1..65535, or 0 when `host` carries the port
/// (`"tls://example.com:443"`) or names a Unix socket. A port in both places
/// is TU_E_URL ("port given twice"); a port out of range is TU_E_URL.
/// Otherwise it behaves exactly as `tu_connect_opts` (`opts` may be NULL).
///
/// Returns a new handle, owned by the caller and released with `tu_close`;
/// NULL on failure, with the code and message in `*err` (may be NULL).
/// `host` and `opts` are borrowed for the call only.
#[no_mangle]
pub extern "C" fn tu_connect_host(host: *const c_char, port: i32, opts: *const tu_options, err: *mut tu_error) -> *mut tu_handle {
    connect_with(opts, err, |opts| Handle::connect_host(text(host, "host")?, port, opts))
}

/// Switches non-blocking mode on (`nonblocking` = 1) or off (0); handles
/// start blocking. Returns TU_OK, or TU_E_INVALID_ARGUMENT for another value.
///
/// With it on, `tu_read`, `tu_write`, `tu_enable_crypto` and `tu_shutdown`
/// never wait: where they would, they return TU_E_WOULD_BLOCK (negated for
/// read and write) and `tu_wants` tells which readiness to poll `tu_fileno`
/// for. The rules:
///  - read until TU_E_WOULD_BLOCK before you poll: TLS may hold decrypted
///    bytes the socket no longer shows (`tu_pending` counts them);
///  - a TLS read may need the socket writable and a TLS write readable:
///    poll for what `tu_wants` says, not for what you are doing;
///  - `tu_write` returns the bytes it accepted (maybe fewer than `len`);
///    after TU_E_WOULD_BLOCK nothing was taken, so repeating the call with
///    the same bytes is safe and duplicates nothing;
///  - a TLS handshake started by `tu_enable_crypto` that returns
///    TU_E_WOULD_BLOCK goes on where it stopped when you call
///    `tu_enable_crypto` again with the same method (as PHP's
///    `stream_socket_enable_crypto` returning 0); reads and writes before
///    it returns TU_OK are TU_E_STATE;
///  - time limits do not apply to calls that return TU_E_WOULD_BLOCK; your
///    poll timeout is the limit. `tu_connect*` always blocks (bounded by
///    the `timeout` option).
///
/// Not to be called while another thread reads or writes `h`.
#[no_mangle]
pub extern "C" fn tu_set_nonblocking(h: *mut tu_handle, nonblocking: i32) -> i32 {
    code_of(on_handle(h, |h| match nonblocking {
        0 | 1 => {
            h.set_nonblocking(nonblocking == 1);
            Ok(())
        }
        other => Err(Error::invalid(format!("tu_set_nonblocking: {other} is neither 1 (on) nor 0 (off)"))),
    }))
}

/// After a call on `h` returned TU_E_WOULD_BLOCK: what it waits for, as
/// bits — TU_WANT_READ (1: poll `tu_fileno` for POLLIN) and/or
/// TU_WANT_WRITE (2: POLLOUT). A TLS read may want the socket writable (to
/// send queued records first) and a handshake either way, so poll for what
/// this says, not for what you are doing. Ask right after the call that
/// returned TU_E_WOULD_BLOCK: the next call on `h` that reaches the socket
/// resets it. Reads and the other calls keep separate records (a writer
/// never clears what a reader waits for); tu_wants gives both, or'ed.
/// After a non-blocking TLS `tu_write` that returned > 0, TU_WANT_WRITE
/// means encrypted records are still queued inside: call `tu_flush` when the
/// socket is writable. 0 when nothing waits, or `h` is NULL.
#[no_mangle]
pub extern "C" fn tu_wants(h: *const tu_handle) -> i32 {
    boundary(|| Ok(handle_ref(h)?.wants())).unwrap_or(0)
}

/// The number of bytes a `tu_read` can return without touching the
/// socket: decrypted TLS data held inside (poll on `tu_fileno` cannot see
/// it), or plaintext kept when TLS was turned off. 0 when there are none or
/// `h` is NULL. Undecrypted bytes are not counted: read until
/// TU_E_WOULD_BLOCK before you poll.
#[no_mangle]
pub extern "C" fn tu_pending(h: *const tu_handle) -> libc::size_t {
    boundary(|| Ok(handle_ref(h)?.pending())).unwrap_or(0)
}

/// Changes time limits on an open handle, from the next call on:
/// `which` is TU_TIMEOUT_READ (1, each `tu_read`), TU_TIMEOUT_WRITE (2, each
/// `tu_write`) and/or TU_TIMEOUT_CONNECT (4, a TLS handshake or shutdown by
/// `tu_enable_crypto`), or'ed. `milliseconds` > 0 is the limit, < 0 means no
/// limit; 0 is TU_E_INVALID_ARGUMENT (use `tu_set_nonblocking` for polling).
/// A limit is one deadline for the whole call: a peer that drip-feeds bytes
/// and signals (EINTR) cannot stretch it. Returns TU_OK or a code.
///
/// May be called while another thread is in `tu_read` or `tu_write`; a call
/// already waiting keeps the limit it started with.
#[no_mangle]
pub extern "C" fn tu_set_timeout(h: *mut tu_handle, which: i32, milliseconds: i64) -> i32 {
    code_of(on_handle(h, |h| h.set_timeout(which, milliseconds)))
}

/// Shuts down one or both directions: TU_SHUT_RD (0), TU_SHUT_WR (1) or
/// TU_SHUT_RDWR (2). TU_SHUT_WR on TLS sends close_notify first (waiting up
/// to the write limit for room; non-blocking: TU_E_WOULD_BLOCK, call again),
/// then the peer sees EOF; reading goes on. Afterwards, reading (or
/// writing) that direction is TU_E_STATE, and so is `tu_enable_crypto`.
///
/// May be called from another thread while a `tu_read` waits on `h`: that
/// read then returns promptly (-TU_E_STATE). Still call `tu_close` later.
/// Returns TU_OK or a code.
#[no_mangle]
pub extern "C" fn tu_shutdown(h: *mut tu_handle, how: i32) -> i32 {
    code_of(on_handle(h, |h| h.shutdown(how)))
}

/// Sends the TLS records still queued inside `h`. Needed in non-blocking
/// mode only: a `tu_write` may accept bytes whose records the socket could
/// not take yet (`tu_wants` then shows TU_WANT_WRITE); call `tu_flush` when
/// the socket is writable until it returns TU_OK. Blocking mode waits up to
/// the write limit; non-blocking mode returns TU_E_WOULD_BLOCK while records
/// remain. TU_OK at once on plaintext connections. One thread at a time, like
/// `tu_write` (it may run while another thread is in `tu_read`).
#[no_mangle]
pub extern "C" fn tu_flush(h: *mut tu_handle) -> i32 {
    code_of(on_handle(h, |h| h.flush()))
}

/// Writes the local address of the connection into `buf` (`len` bytes,
/// NUL included): "127.0.0.1:5555", "[::1]:5555", "[fe80::1%2]:80", a Unix
/// socket path, "@name" for an automatic (abstract) Unix address, or "" for
/// an unnamed one. Returns TU_OK, or TU_E_INVALID_ARGUMENT if `buf` is NULL
/// or too small (the message gives the size needed; `buf` is then not
/// written), or TU_E_IO. 64 bytes fit any IP address; 110 any Unix path.
#[no_mangle]
pub extern "C" fn tu_local_address(h: *const tu_handle, buf: *mut c_char, len: libc::size_t) -> i32 {
    code_of(on_handle(h, |h| copy_address(h.local_address()?, buf, len, "tu_local_address")))
}

/// Like `tu_local_address`, for the peer's address (for udg://, the path
/// of the socket connected to).
#[no_mangle]
pub extern "C" fn tu_peer_address(h: *const tu_handle, buf: *mut c_char, len: libc::size_t) -> i32 {
    code_of(on_handle(h, |h| copy_address(h.peer_address()?, buf, len, "tu_peer_address")))
}

/// Copies `addr` and its NUL into the caller's `buf` of `len` bytes, or
/// says how many bytes it needs.
fn copy_address(addr: String, buf: *mut c_char, len: usize, what: &str) -> Result<()> {
    if buf.is_null() {
        return Err(Error::invalid(format!("{what}: buf is NULL")));
    }
    if len < addr.len() + 1 {
        return Err(Error::invalid(format!(
            "{what}: a buffer of {len} bytes is too small for \"{addr}\" ({} bytes with its NUL)",
            addr.len() + 1
        )));
    }
    // SAFETY: the caller passes `buf` writable for `len` bytes, and `len`
    // is at least addr.len() + 1.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, addr.len() + 1) };
    copy_text(out, &addr);
    Ok(())
}

// ---------------------------------------------------------------------------
// TLS connection info: group, ALPN, resumption, verification, SNI, the
// peer's certificates

/// The key-exchange group of the TLS session ("X25519MLKEM768" when both
/// sides have the post-quantum hybrid, else e.g. "X25519", "secp256r1").
/// NULL when TLS is not on, and for a resumed TLS 1.2 session (which has no
/// key exchange). The string is static: do not free it.
#[no_mangle]
pub extern "C" fn tu_tls_group(h: *const tu_handle) -> *const c_char {
    static_text(boundary(|| Ok(handle_ref(h)?.with_tls(|s| s.group_name()).flatten())).ok().flatten())
}

/// Copies the protocol agreed by ALPN ("h2", "http/1.1"; see
/// `ssl.alpn_protocols`) and its NUL into `buf` (`len` bytes). When none was
/// agreed, writes "" and returns TU_OK. Returns TU_E_INVALID_ARGUMENT if `buf`
/// is NULL or too small (`buf` is then not written; the message gives the
/// size needed), TU_E_STATE when TLS is not on. 256 bytes always suffice.
#[no_mangle]
pub extern "C" fn tu_tls_alpn(h: *const tu_handle, buf: *mut c_char, len: libc::size_t) -> i32 {
    code_of(on_handle(h, |h| {
        let alpn = h
            .with_tls(|s| s.alpn().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default())
            .ok_or_else(|| Error::state("tu_tls_alpn: TLS is not on for this connection"))?;
        copy_info_text(&alpn, buf, len, "tu_tls_alpn")
    }))
}

/// 1 if the TLS session was resumed from an earlier connection with the same
/// options (TLS 1.3 ticket, TLS 1.2 session ID or ticket), 0 for a full
/// handshake, -1 when TLS is not on (or `h` is NULL).
#[no_mangle]
pub extern "C" fn tu_tls_resumed(h: *const tu_handle) -> i32 {
    boundary(|| Ok(handle_ref(h)?.with_tls(|s| i32::from(s.resumed())))).ok().flatten().unwrap_or(-1)
}

/// 1 when the server's chain was verified to a trusted root (or the
/// certificate is listed in `ssl.cafile`/`ssl.capath`) and its name checked;
/// 0 when verification was relaxed (`ssl.verify_peer` or
/// `ssl.verify_peer_name` off, or the certificate was let through only by
/// `ssl.allow_self_signed`); -1 when TLS is not on (or `h` is NULL). A
/// matching `ssl.peer_fingerprint` alone does not count as verified.
#[no_mangle]
pub extern "C" fn tu_tls_peer_verified(h: *const tu_handle) -> i32 {
    boundary(|| Ok(handle_ref(h)?.with_tls(|s| i32::from(s.peer_verified())))).ok().flatten().unwrap_or(-1)
}

/// Copies the name sent by SNI and its NUL into `buf` (`len` bytes): ""
/// when none was sent (an IP address, or `ssl.SNI_enabled` off). Returns
/// TU_OK, TU_E_INVALID_ARGUMENT if `buf` is NULL or too small (not written;
/// the message gives the size needed), TU_E_STATE when TLS is not on. 256
/// bytes always suffice.
#[no_mangle]
pub extern "C" fn tu_tls_sni(h: *const tu_handle, buf: *mut c_char, len: libc::size_t) -> i32 {
    code_of(on_handle(h, |h| {
        let sni = h
            .with_tls(|s| s.sni().unwrap_or("").to_string())
            .ok_or_else(|| Error::state("tu_tls_sni: TLS is not on for this connection"))?;
        copy_info_text(&sni, buf, len, "tu_tls_sni")
    }))
}

/// The DER encoding of certificate `index` of the chain the server sent (0
/// = its own certificate, then the intermediates as sent), captured when
/// the option `ssl.capture_peer_cert` was set.
///
/// Returns the certificate's full size in bytes. With `buf` NULL or `len`
/// 0, only the size is returned (ask first, then call again with a buffer
/// that large); otherwise the certificate is copied into `buf`, which must
/// hold it all. Negative codes: -TU_E_STATE when TLS is not on or
/// `ssl.capture_peer_cert` was not set, -TU_E_INVALID_ARGUMENT for an
/// `index` past the end of the chain or a `buf` too small (not written).
/// The data is copied; nothing to free.
#[no_mangle]
pub extern "C" fn tu_tls_peer_cert(h: *const tu_handle, index: libc::size_t, buf: *mut c_void, len: libc::size_t) -> libc::intptr_t {
    let r = on_handle(h, |h| {
        let cert: Vec<u8> = h
            .with_tls(|s| match s.captured_chain() {
                None => Err(Error::state("tu_tls_peer_cert: the peer's certificates were not captured; set the option ssl.capture_peer_cert")),
                Some(chain) => match chain.get(index) {
                    Some(c) => Ok(c.as_ref().to_vec()),
                    None => Err(Error::invalid(format!(
                        "tu_tls_peer_cert: index {index} is past the end of the server's chain of {} certificate(s)",
                        chain.len()
                    ))),
                },
            })
            .ok_or_else(|| Error::state("tu_tls_peer_cert: TLS is not on for this connection"))??;
        if buf.is_null() || len == 0 {
            return Ok(cert.len());
        }
        if len < cert.len() {
            return Err(Error::invalid(format!(
                "tu_tls_peer_cert: a buffer of {len} bytes is too small for certificate {index} ({} bytes)",
                cert.len()
            )));
        }
        // SAFETY: the caller passes `buf` writable for `len` bytes, and
        // `len` is at least cert.len().
        let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, cert.len()) };
        out.copy_from_slice(&cert);
        Ok(cert.len())
    });
    match r {
        Ok(n) => n as isize,
        Err(e) => -(e.code as isize),
    }
}

/// Copies `s` and its NUL into the caller's `buf` of `len` bytes, or says
/// how many bytes it needs.
fn copy_info_text(s: &str, buf: *mut c_char, len: usize, what: &str) -> Result<()> {
    if buf.is_null() {
        return Err(Error::invalid(format!("{what}: buf is NULL")));
    }
    if len < s.len() + 1 {
        return Err(Error::invalid(format!(
            "{what}: a buffer of {len} bytes is too small for \"{s}\" ({} bytes with its NUL)",
            s.len() + 1
        )));
    }
    // SAFETY: the caller passes `buf` writable for `len` bytes, and `len`
    // is at least s.len() + 1.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, s.len() + 1) };
    copy_text(out, s);
    Ok(())
}
