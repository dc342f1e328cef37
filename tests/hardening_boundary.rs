//! The C boundary (issue 8, item 3), for every export the header declares,
//! found by reading `include/transporturl.h` (so exports added later are
//! covered without editing this file):
//!
//! - each pointer argument NULL in turn (the others valid), and all of them
//!   NULL: no crash, no TU_E_INTERNAL, a well-formed message in any `tu_error`,
//!   outputs untouched when the call fails;
//! - each integer argument out of range (negative, INT_MIN/MAX, huge sizes):
//!   the same;
//! - a forced panic (feature `test-hooks`) in every export: the call returns its
//!   failure value (NULL, TU_E_INTERNAL, -TU_E_INTERNAL ...), the process goes
//!   on, a handle is either failed cleanly (TU_E_STATE afterwards) or untouched,
//!   and nothing leaks (`tu_close`/`tu_options_free` still free).
//!
//! The NULL and range sweeps call the exports by name in the shared library that
//! the same build produced (`target/<profile>/libtransporturl.so`, via dlsym);
//! the panic sweep calls the linked crate, whose hook can be armed.

mod common;
mod hardening_support;

use hardening_support::*;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::net::TcpListener;
use std::sync::OnceLock;
use transporturl::error::*;
use transporturl::ffi::*;

const SUITE: &str = "boundary";

/// Both tests count descriptors: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// The header

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Handle,
    Options,
    Error,
    Parts,
    OutBuf,
    InBuf,
    Text,
    Size,
    Int,
    Unsupported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Void,
    Ptr,
    I32,
    ISize,
    USize,
    Other,
}

#[derive(Clone, Debug)]
struct Proto {
    name: String,
    ret: Ret,
    ret_text: String,
    params: Vec<(Kind, String, String)>, // kind, C type, name
}

fn kind_of(ty: &str) -> Kind {
    let t = ty.split_whitespace().collect::<Vec<_>>().join(" ");
    let ptr = t.contains('*');
    let konst = t.starts_with("const ");
    if t.contains("tu_handle") && ptr {
        Kind::Handle
    } else if t.contains("tu_options") && ptr {
        Kind::Options
    } else if t.contains("tu_error") && ptr {
        Kind::Error
    } else if t.contains("tu_url_parts") && ptr {
        Kind::Parts
    } else if ptr && t.contains("char") && konst {
        Kind::Text
    } else if ptr && t.contains("void") && konst {
        Kind::InBuf
    } else if ptr && !konst {
        Kind::OutBuf
    } else if t == "size_t" || t == "uintptr_t" {
        Kind::Size
    } else if ["int32_t", "int64_t", "int", "uint32_t", "uint16_t", "uint8_t", "int16_t", "intptr_t", "bool", "uint64_t"].contains(&t.as_str()) {
        Kind::Int
    } else {
        Kind::Unsupported
    }
}

fn prototypes() -> Vec<Proto> {
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/transporturl.h")).unwrap();
    // Drop comments and preprocessor lines, then split into statements.
    let mut text = String::new();
    let mut rest = header.as_str();
    while let Some(i) = rest.find("/*") {
        text.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map(|j| &rest[i + j + 2..]).unwrap_or("");
    }
    text.push_str(rest);
    let text: String = text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    for stmt in text.split(';') {
        let s = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
        let s = s.trim_start_matches("extern \"C\" {").trim();
        let Some(open) = s.find('(') else { continue };
        if s.starts_with("typedef") || s.starts_with("struct tu_") && !s[..open].contains('*') && !s[..open].contains(' ') {
            continue;
        }
        let head = &s[..open];
        let name = head.rsplit(|c: char| c == ' ' || c == '*').next().unwrap_or("").to_string();
        if !name.starts_with("tu_") {
            continue;
        }
        let ret_text = head[..head.len() - name.len()].trim().to_string();
        let ret = match ret_text.as_str() {
            "void" => Ret::Void,
            t if t.ends_with('*') => Ret::Ptr,
            "int32_t" => Ret::I32,
            "intptr_t" => Ret::ISize,
            "size_t" => Ret::USize,
            _ => Ret::Other,
        };
        let inner = &s[open + 1..s.rfind(')').unwrap()];
        let params = if inner.trim() == "void" || inner.trim().is_empty() {
            Vec::new()
        } else {
            inner
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    let pname = p.rsplit(|c: char| c == ' ' || c == '*').next().unwrap().to_string();
                    let ty = p[..p.len() - pname.len()].trim().to_string();
                    (kind_of(&ty), ty, pname)
                })
                .collect()
        };
        out.push(Proto { name, ret, ret_text, params });
    }
    assert!(out.len() >= 17, "only {} prototypes found in the header", out.len());
    out
}

// ---------------------------------------------------------------------------
// Calling an export by address with up to six integer-class arguments
// (x86-64 SysV and AArch64 pass them all in registers; extra ones are ignored)

type Raw = extern "C" fn(usize, usize, usize, usize, usize, usize) -> usize;

fn call(addr: usize, args: &[usize]) -> usize {
    assert!(args.len() <= 6);
    let mut a = [0usize; 6];
    a[..args.len()].copy_from_slice(args);
    // SAFETY (test): `addr` is an exported C function whose parameters are all
    // pointers or integers (checked from the header), at most six.
    let f: Raw = unsafe { std::mem::transmute::<usize, Raw>(addr) };
    f(a[0], a[1], a[2], a[3], a[4], a[5])
}

/// The few entry points the sweeps need to make valid arguments.
struct Api {
    sym: Box<dyn Fn(&str) -> Option<usize>>,
}

impl Api {
    fn f(&self, name: &str) -> usize {
        (self.sym)(name).unwrap_or_else(|| panic!("{name} not found"))
    }
    fn connect(&self, url: &str) -> usize {
        let o = call(self.f("tu_options_new"), &[]);
        for (k, v) in [("timeout", "2"), ("read_timeout", "0.3"), ("write_timeout", "0.3")] {
            let (k, v) = (CString::new(k).unwrap(), CString::new(v).unwrap());
            assert_eq!(call(self.f("tu_options_set"), &[o, k.as_ptr() as usize, v.as_ptr() as usize, 0]) as i32, TU_OK);
        }
        let u = CString::new(url).unwrap();
        let mut e = new_error();
        let h = call(self.f("tu_connect_opts"), &[u.as_ptr() as usize, o, &mut e as *mut _ as usize]);
        call(self.f("tu_options_free"), &[o]);
        assert!(h != 0, "{url}: {}", message(&e));
        h
    }
    fn last_error(&self, h: usize) -> (i32, String) {
        let mut e = new_error();
        let rc = call(self.f("tu_last_error"), &[h, &mut e as *mut _ as usize]) as i32;
        (rc, message(&e))
    }
    fn close(&self, h: usize) {
        call(self.f("tu_close"), &[h]);
    }
}

/// The shared library built with this test (same source, same features).
fn so_api() -> Option<Api> {
    // `cargo test` leaves it in target/<profile>/deps (beside this binary);
    // `cargo build` copies it one level up.
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    let path = [deps.join("libtransporturl.so"), deps.parent()?.join("libtransporturl.so")].into_iter().find(|p| p.exists())?;
    let c = CString::new(path.to_str()?).ok()?;
    // SAFETY (test): loading our own library; it stays loaded (never dlclose'd).
    let lib = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        return None;
    }
    let lib = lib as usize;
    Some(Api {
        sym: Box::new(move |name| {
            let n = CString::new(name).unwrap();
            // SAFETY (test): a valid handle from dlopen and a NUL-terminated name.
            let p = unsafe { libc::dlsym(lib as *mut c_void, n.as_ptr()) };
            (!p.is_null()).then_some(p as usize)
        }),
    })
}

/// An echo server for the handles the sweeps need, serving forever.
fn echo_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || common::echo_plain(s));
            }
        });
        port
    })
}

/// Valid arguments for `p`, plus what keeps them alive and what to check or free.
struct Args {
    vals: Vec<usize>,
    handle: Option<usize>,
    options: Vec<usize>,
    errors: Vec<Box<tu_error>>,
    bufs: Vec<Vec<u8>>,
    texts: Vec<CString>,
}

const SENTINEL: u8 = 0xA5;

fn valid_args(api: &Api, p: &Proto) -> Args {
    let mut a = Args { vals: Vec::new(), handle: None, options: Vec::new(), errors: Vec::new(), bufs: Vec::new(), texts: Vec::new() };
    for (kind, _, name) in &p.params {
        let v = match kind {
            Kind::Handle => {
                let h = api.connect(&format!("tcp://127.0.0.1:{}", echo_port()));
                a.handle = Some(h);
                h
            }
            Kind::Options => {
                let o = call(api.f("tu_options_new"), &[]);
                a.options.push(o);
                o
            }
            Kind::Error => {
                a.errors.push(Box::new(new_error()));
                &mut **a.errors.last_mut().unwrap() as *mut tu_error as usize
            }
            Kind::Parts | Kind::OutBuf => {
                a.bufs.push(vec![SENTINEL; 4096]);
                a.bufs.last_mut().unwrap().as_mut_ptr() as usize
            }
            Kind::InBuf => {
                a.bufs.push(vec![b'x'; 4096]);
                a.bufs.last_mut().unwrap().as_mut_ptr() as usize
            }
            Kind::Text => {
                let t = match name.as_str() {
                    "url" => format!("tcp://127.0.0.1:{}", echo_port()),
                    "host" => "127.0.0.1".to_string(),
                    "key" => "timeout".to_string(),
                    "value" => "5".to_string(),
                    _ => "x".to_string(),
                };
                a.texts.push(CString::new(t).unwrap());
                a.texts.last().unwrap().as_ptr() as usize
            }
            Kind::Size => 16,
            Kind::Int => 0,
            Kind::Unsupported => unreachable!(),
        };
        a.vals.push(v);
    }
    a
}

fn supported(p: &Proto) -> bool {
    p.params.len() <= 6 && p.params.iter().all(|(k, _, _)| *k != Kind::Unsupported) && p.ret != Ret::Other
}

/// Frees what a call returned (a new handle or option set).
fn release(api: &Api, p: &Proto, r: usize) {
    if p.ret == Ret::Ptr && r != 0 {
        if p.ret_text.contains("tu_handle") {
            api.close(r);
        } else if p.ret_text.contains("tu_options") {
            call(api.f("tu_options_free"), &[r]);
        }
    }
}

/// Did the call fail, judged by its return value? (None: cannot tell.)
fn failed(p: &Proto, r: usize) -> Option<bool> {
    match p.ret {
        Ret::I32 => Some(r as i32 != TU_OK),
        Ret::ISize => Some((r as isize) < 0),
        _ => None,
    }
}

/// The checks after one call: no TU_E_INTERNAL anywhere, messages well formed,
/// outputs untouched when the call failed. Then everything is freed.
fn after_call(api: &Api, p: &Proto, what: &str, args: &mut Args, r: usize, nulled: Option<usize>) {
    match p.ret {
        Ret::I32 => assert_ne!(r as i32, TU_E_INTERNAL, "{what}: TU_E_INTERNAL (a panic inside)"),
        Ret::ISize => assert_ne!(r as isize, -(TU_E_INTERNAL as isize), "{what}: -TU_E_INTERNAL (a panic inside)"),
        _ => {}
    }
    for (i, e) in args.errors.iter().enumerate() {
        let idx = p.params.iter().enumerate().filter(|(_, x)| x.0 == Kind::Error).nth(i).map(|x| x.0);
        if idx == nulled {
            continue;
        }
        assert!(e.message.iter().any(|&c| c == 0), "{what}: tu_error message not NUL-terminated");
        if e.code != -99 {
            let m = message(e);
            assert_ne!(e.code, TU_E_INTERNAL, "{what}: {m}");
            assert_eq!(e.code == TU_OK, m.is_empty(), "{what}: code {} with message {m:?}", e.code);
        }
    }
    if failed(p, r) == Some(true) {
        let outs: Vec<usize> = p.params.iter().enumerate().filter(|(_, x)| matches!(x.0, Kind::OutBuf | Kind::Parts)).map(|x| x.0).collect();
        let mut b = 0;
        for (i, (k, _, _)) in p.params.iter().enumerate() {
            if matches!(k, Kind::OutBuf | Kind::Parts | Kind::InBuf) {
                if outs.contains(&i) && Some(i) != nulled {
                    assert!(args.bufs[b].iter().all(|&x| x == SENTINEL), "{what}: failed ({}) but wrote its output", r as isize);
                }
                b += 1;
            }
        }
    }
    if let Some(h) = args.handle {
        let (code, m) = api.last_error(h);
        assert_ne!(code, TU_E_INTERNAL, "{what}: the handle's last error is {m}");
        api.close(h);
    }
    for &o in &args.options {
        call(api.f("tu_options_free"), &[o]);
    }
    release(api, p, r);
}

#[test]
fn every_export_with_null_pointers_and_out_of_range_integers() {
    let _g = serial();
    let Some(api) = so_api() else {
        eprintln!("SKIP: no libtransporturl.so beside the test binary");
        return;
    };
    let protos = prototypes();
    echo_port();
    let base = quiet_fds();
    let mut calls = 0;
    let mut skipped = Vec::new();
    for p in &protos {
        if !supported(p) {
            skipped.push(p.name.clone());
            continue;
        }
        let Some(addr) = (api.sym)(&p.name) else {
            // The header and the library disagree: tests/header.rs reports that.
            eprintln!("WARNING: {} is in the header but not in the library beside the test", p.name);
            continue;
        };
        let ptrs: Vec<usize> = p.params.iter().enumerate().filter(|(_, x)| !matches!(x.0, Kind::Size | Kind::Int)).map(|x| x.0).collect();
        // Each pointer NULL in turn.
        for &i in &ptrs {
            let mut args = valid_args(&api, p);
            args.vals[i] = 0;
            let r = call(addr, &args.vals);
            let what = format!("{}({} = NULL)", p.name, p.params[i].2);
            after_call(&api, p, &what, &mut args, r, Some(i));
            calls += 1;
        }
        // All of them NULL.
        if !ptrs.is_empty() {
            let mut args = valid_args(&api, p);
            for &i in &ptrs {
                args.vals[i] = 0;
            }
            let r = call(addr, &args.vals);
            // With no error struct left, only the return value can be checked.
            args.errors.clear();
            after_call(&api, p, &format!("{}(all NULL)", p.name), &mut args, r, None);
            calls += 1;
        }
        // Integers out of range, one at a time, with valid pointers.
        for (i, (k, ty, name)) in p.params.iter().enumerate() {
            let values: Vec<usize> = match (k, ty.as_str()) {
                (Kind::Size, _) => vec![0, usize::MAX, isize::MAX as usize + 1],
                (Kind::Int, "int64_t") => vec![-1i64 as usize, i64::MIN as usize, i64::MAX as usize, 99, 1 << 40],
                (Kind::Int, _) => vec![-1i64 as usize, i32::MIN as i64 as usize, i32::MAX as usize, 99, 1 << 20],
                _ => continue,
            };
            for v in values {
                // A valid buffer with a "huge" length must be refused before it is
                // used; a zero size may legitimately ask for a size only.
                let mut args = valid_args(&api, p);
                args.vals[i] = v;
                let r = call(addr, &args.vals);
                after_call(&api, p, &format!("{}({name} = {})", p.name, v as isize), &mut args, r, None);
                calls += 1;
            }
        }
    }
    let after = settle_fds(base);
    assert!(after <= base, "descriptors leaked by the sweep: {base} before, {after} after");
    assert!(skipped.is_empty(), "exports the sweep cannot call (float arguments, more than six, ...): {skipped:?}");
    figure(SUITE, "exports swept with NULL pointers and out-of-range integers", format!("{} exports, {calls} calls, 0 crashes, 0 TU_E_INTERNAL, 0 outputs written on failure", protos.len()));
}

// ---------------------------------------------------------------------------
// A forced panic in every export

#[cfg(feature = "test-hooks")]
mod panics {
    use super::*;
    use transporturl::ffi::test_hooks::panic_in_next_call;

    macro_rules! table {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const () as usize)),*] };
    }

    /// The exports of the linked crate by name (their addresses).
    fn linked() -> HashMap<&'static str, usize> {
        table![
            tu_connect, tu_connect_opts, tu_enable_crypto, tu_read, tu_write, tu_last_error, tu_close, tu_fileno,
            tu_tls_version, tu_tls_cipher_suite, tu_options_new, tu_options_set, tu_options_free, tu_parse_url,
            tu_version, tu_strerror, tu_code_name, tu_connect_host, tu_set_nonblocking, tu_wants, tu_pending,
            tu_set_timeout, tu_shutdown, tu_local_address, tu_peer_address, tu_tls_group, tu_tls_alpn,
            tu_tls_resumed, tu_tls_peer_verified, tu_tls_sni, tu_tls_peer_cert, tu_parse_host, tu_flush,
        ]
        .into_iter()
        .collect()
    }

    fn linked_api() -> Api {
        let t = linked();
        Api { sym: Box::new(move |n| t.get(n).copied()) }
    }

    /// Is the hook still armed? (The export did not run inside the boundary.)
    fn hook_still_armed() -> bool {
        let mut parts: tu_url_parts = unsafe { std::mem::zeroed() };
        let mut e = new_error();
        tu_parse_url(c"tcp://h:1".as_ptr(), &mut parts, &mut e) == TU_E_INTERNAL
    }

    #[test]
    fn a_forced_panic_in_every_export() {
        let _g = serial();
        let api = linked_api();
        let table = linked();
        let protos = prototypes();
        let missing: Vec<&str> = protos.iter().map(|p| p.name.as_str()).filter(|n| !table.contains_key(n)).collect();
        if !missing.is_empty() {
            let msg = format!("exports not in the panic table of tests/hardening_boundary.rs (add them): {missing:?}");
            assert!(!full(), "{msg}");
            eprintln!("WARNING: {msg}");
        }
        echo_port();
        let base = quiet_fds();
        // The forced panics are expected: keep their messages out of the log.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| {
            if !info.to_string().contains("panic forced by the test hook") {
                eprintln!("{info}");
            }
        }));
        let mut outside = Vec::new();
        let mut failed_handles = 0;
        let mut checked = 0;
        for p in protos.iter().filter(|p| table.contains_key(p.name.as_str()) && supported(p)) {
            let mut args = valid_args(&api, p);
            let what = &p.name;
            let fd = args.handle.map(|h| tu_fileno(h as *const tu_handle));
            panic_in_next_call();
            let r = call(table[p.name.as_str()], &args.vals);
            if hook_still_armed() {
                outside.push(p.name.clone());
            }
            checked += 1;
            // The failure value of its kind.
            match p.ret {
                // NULL, or a static fallback text (tu_strerror, tu_version).
                Ret::Ptr if p.ret_text.contains("tu_") => assert_eq!(r, 0, "{what}: a new object after a panic"),
                Ret::ISize => assert_eq!(r as isize, -(TU_E_INTERNAL as isize), "{what}"),
                Ret::I32 if p.params.iter().any(|x| x.0 == Kind::Error) => assert_eq!(r as i32, TU_E_INTERNAL, "{what}"),
                _ => {}
            }
            for e in &args.errors {
                assert_eq!(e.code, TU_E_INTERNAL, "{what}: err.code");
                assert!(message(e).contains("panic"), "{what}: {}", message(e));
            }
            if failed(p, r) == Some(true) {
                for b in args.bufs.iter().filter(|b| b[0] == SENTINEL || b[0] == b'x') {
                    assert!(b.iter().all(|&x| x == SENTINEL) || b.iter().all(|&x| x == b'x'), "{what}: output written after a panic");
                }
            }
            if p.name == "tu_close" {
                // The handle is gone (its descriptor closed), nothing leaked.
                let fd = fd.unwrap();
                // SAFETY (test): F_GETFD on a number that may or may not be open.
                assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, -1, "tu_close: the handle leaked after a panic");
                args.handle = None;
            }
            if p.name == "tu_options_free" {
                args.options.clear(); // freed by the call, or leaked (counted below by nothing: see the note)
            }
            if let Some(h) = args.handle {
                // Failed cleanly (TU_E_STATE from now on) or untouched (still works).
                let (code, _) = api.last_error(h);
                let w = tu_write(h as *mut tu_handle, b"x".as_ptr().cast(), 1);
                if code == TU_E_INTERNAL {
                    assert_eq!(w, -(TU_E_STATE as isize), "{what}: a handle that panicked must refuse further use");
                    failed_handles += 1;
                } else {
                    assert_eq!(w, 1, "{what}: the handle should be untouched: {:?}", api.last_error(h));
                }
                api.close(h);
                args.handle = None;
            }
            for &o in &args.options {
                tu_options_free(o as *mut tu_options);
            }
            args.options.clear();
            release(&api, p, r);
        }
        std::panic::set_hook(hook);
        let after = settle_fds(base);
        assert!(after <= base, "descriptors leaked after forced panics: {base} before, {after} after");
        assert!(outside.is_empty(), "exports that do not run inside the panic boundary: {outside:?}");
        figure(SUITE, "forced panics caught at the boundary", format!("{checked} exports, process alive, {failed_handles} handles failed cleanly, 0 leaks"));
    }
}
