//! `tu-bench`: the driver of `make bench` (benches/README.md has the method,
//! the peers and the deliberate deviations from the project's benchmark design).
//!
//!   tu-bench run --peers FILE --out DIR [--smoke] [--reps N] [--only W1,W3]
//!   tu-bench server --mode MODE ...        (the reference server; see server.rs)
//!   tu-bench summary FILE.jsonl [--md OUT.md] [--json OUT.json]
//!
//! `run` makes a CA and an ECDSA P-256 leaf (SAN localhost, 127.0.0.1), starts one
//! reference server per workload with the right CPU pinning, runs every peer of
//! the peers file as a subprocess with a time limit, alternating the order each
//! repetition, writes one JSON line per measurement, then the summary.

mod server;
mod summary;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn die(msg: &str) -> ! {
    eprintln!("tu-bench: {msg}");
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => {
            let a = &args[2..];
            server::run(server::Args {
                mode: flag(a, "--mode").unwrap_or_else(|| die("--mode")),
                plain: a.iter().any(|x| x == "--plain"),
                tickets: flag(a, "--tickets").map(|v| v.parse().unwrap()).unwrap_or(2),
                bytes: flag(a, "--bytes").map(|v| v.parse().unwrap()).unwrap_or(0),
                cert: flag(a, "--cert").unwrap_or_default(),
                key: flag(a, "--key").unwrap_or_default(),
                cpu: flag(a, "--cpu").map(|v| v.parse().unwrap()),
                kx: flag(a, "--kx").unwrap_or_else(|| "x25519".into()),
            })
        }
        Some("run") => run(&args[2..]),
        Some("summary") => {
            let a = &args[2..];
            let file = a.first().unwrap_or_else(|| die("summary FILE.jsonl"));
            summary::summarize(Path::new(file), flag(a, "--md").as_deref(), flag(a, "--json").as_deref(), true);
        }
        _ => die("usage: tu-bench run|server|summary ..."),
    }
}

// ---------------------------------------------------------------------------
// Certificates

fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "transporturl bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (c, l, k) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&c, ca_cert.pem()).unwrap();
    std::fs::write(&l, leaf_cert.pem()).unwrap();
    std::fs::write(&k, leaf_key.serialize_pem()).unwrap();
    (c, l, k)
}

// ---------------------------------------------------------------------------
// Peers and servers

#[derive(Clone)]
struct Peer {
    id: String,
    status: String,
    argv: Vec<String>,
}

fn read_peers(file: &str) -> Vec<Peer> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split('\t');
            let id = f.next().unwrap().to_string();
            let status = f.next().unwrap_or("skip: no status").to_string();
            Peer { id, status, argv: f.map(String::from).collect() }
        })
        .collect()
}

fn pin(cmd: &mut Command, cpu: Option<usize>) {
    unsafe {
        cmd.pre_exec(move || {
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
            let lim = libc::rlimit { rlim_cur: 8192, rlim_max: 8192 };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Server {
    fn start(exe: &Path, args: &[String], cpu: Option<usize>) -> Server {
        let mut cmd = Command::new(exe);
        cmd.arg("server").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if let Some(c) = cpu {
            cmd.args(["--cpu", &c.to_string()]);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("server: {e}")));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| die("server: no port"));
        Server { child, stdin, stdout, port }
    }
    fn stats(&mut self) -> Value {
        let _ = writeln!(self.stdin, "stats");
        let _ = self.stdin.flush();
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        serde_json::from_str(&line).unwrap_or(Value::Null)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Outcome {
    ok: bool,
    /// Exit status 3: the peer does not do this workload (a skip, not a failure).
    unsupported: bool,
    result: Value,
    err: String,
}

/// Runs one peer with a wall-clock limit (and an RLIMIT_CPU of the same size).
fn run_peer(argv: &[String], extra: &[String], cpu: Option<usize>, limit: Duration) -> Outcome {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).args(extra).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    pin(&mut cmd, cpu);
    let secs = limit.as_secs() + 5;
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: secs, rlim_max: secs + 5 };
            libc::setrlimit(libc::RLIMIT_CPU, &lim);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome { ok: false, unsupported: false, result: Value::Null, err: format!("cannot start {}: {e}", argv[0]) },
    };
    // Peers print little; read their pipes in threads so that nothing blocks.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = t_out.join().unwrap_or_default();
    let err = t_err.join().unwrap_or_default();
    let last = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    match status {
        None => Outcome { ok: false, unsupported: false, result: Value::Null, err: format!("killed after the {} s limit; {}", limit.as_secs(), tail(&err)) },
        Some(st) if st.code() == Some(3) => Outcome { ok: false, unsupported: true, result: Value::Null, err: tail(&err) },
        Some(st) if !st.success() => Outcome { ok: false, unsupported: false, result: Value::Null, err: format!("exit {st}: {}", tail(&err)) },
        Some(_) => match serde_json::from_str::<Value>(last) {
            Ok(v) if v.get("value").is_some() || v.get("version").is_some() => Outcome { ok: true, unsupported: false, result: v, err: String::new() },
            _ => Outcome { ok: false, unsupported: false, result: Value::Null, err: format!("no result line; stdout: {}; stderr: {}", tail(&out), tail(&err)) },
        },
    }
}

fn tail(s: &str) -> String {
    let t: Vec<&str> = s.trim().lines().rev().take(4).collect();
    let mut t: Vec<&str> = t.into_iter().rev().collect();
    t.retain(|l| !l.is_empty());
    let j = t.join(" | ");
    if j.len() > 600 {
        j[j.len() - 600..].to_string()
    } else {
        j
    }
}

// ---------------------------------------------------------------------------
// Workloads

struct Sizes {
    bulk_bytes: u64,
    pingpong: u64,
    hs: u64,
    resume: u64,
    idle: u64,
    ffi: u64,
    udp: u64,
    starttls: u64,
    limit: Duration,
}

struct Workload {
    id: &'static str,
    name: &'static str,
    /// The peer program's workload argument.
    arg: &'static str,
    peers: &'static [&'static str],
    server_cpu: Option<usize>,
    client_cpu: Option<usize>,
}

const BULK_PEERS: &[&str] = &["tu-c", "tu-rust", "tu-python", "tu-go", "rustls", "openssl", "python-ssl", "go-tls", "php", "plain"];
const HS_PEERS: &[&str] =
    &["tu-c", "tu-rust", "tu-python", "tu-go", "rustls", "rustls-default", "openssl", "python-ssl", "go-tls", "php", "plain"];
const RESUME_PEERS: &[&str] = &["tu-c", "tu-rust", "tu-python", "tu-go", "rustls", "openssl", "python-ssl", "go-tls", "php"];
const IDLE_PEERS: &[&str] = &["tu-c", "tu-rust", "tu-python", "tu-go", "rustls", "openssl", "python-ssl", "go-tls", "php", "plain"];
const FFI_PEERS: &[&str] = &["tu-rust", "tu-c", "tu-python", "python-ctypes", "tu-go", "go-cgo"];

const WORKLOADS: &[Workload] = &[
    Workload { id: "W1", name: "bulk send", arg: "send", peers: BULK_PEERS, server_cpu: Some(1), client_cpu: Some(0) },
    Workload { id: "W2", name: "bulk receive", arg: "recv", peers: BULK_PEERS, server_cpu: Some(1), client_cpu: Some(0) },
    Workload { id: "W3", name: "ping-pong 64 B", arg: "pingpong", peers: BULK_PEERS, server_cpu: Some(0), client_cpu: Some(0) },
    Workload { id: "W4", name: "full handshakes", arg: "hs", peers: HS_PEERS, server_cpu: Some(0), client_cpu: Some(0) },
    Workload { id: "W5", name: "resumed handshakes", arg: "resume", peers: RESUME_PEERS, server_cpu: Some(0), client_cpu: Some(0) },
    Workload { id: "W6", name: "idle connections", arg: "idle", peers: IDLE_PEERS, server_cpu: None, client_cpu: None },
    Workload { id: "W7", name: "FFI: write 64 B on udp:// (CPU ns per call)", arg: "ffi", peers: FFI_PEERS, server_cpu: Some(1), client_cpu: Some(0) },
    Workload { id: "W8", name: "STARTTLS upgrade", arg: "starttls", peers: &["tu-c", "tu-rust", "rustls"], server_cpu: Some(0), client_cpu: Some(0) },
    Workload { id: "W9", name: "udp:// ping-pong 64 B", arg: "udp", peers: &["tu-c", "plain"], server_cpu: Some(0), client_cpu: Some(0) },
];

/// The server arguments for a workload (plain: the floor row's server).
fn server_args(w: &Workload, plain: bool, kx_default: bool, s: &Sizes, cert: &Path, key: &Path) -> Vec<String> {
    let (mode, tickets, bytes) = match w.arg {
        "send" => ("sink", 2, s.bulk_bytes),
        "recv" => ("source", 2, s.bulk_bytes),
        "pingpong" => ("echo", 2, 0),
        "hs" => ("hs1", 0, 0),
        "resume" => ("hs1", 2, 0),
        "idle" => ("hold", 2, 0),
        "ffi" => ("udp-sink", 0, 0),
        "starttls" => ("starttls", 0, 0),
        "udp" => ("udp-echo", 0, 0),
        _ => unreachable!(),
    };
    let mut a: Vec<String> = vec!["--mode".into(), mode.into(), "--tickets".into(), tickets.to_string(), "--bytes".into(), bytes.to_string()];
    if plain {
        a.push("--plain".into());
    } else {
        a.extend(["--cert".into(), cert.display().to_string(), "--key".into(), key.display().to_string()]);
    }
    if kx_default {
        a.extend(["--kx".into(), "default".into()]);
    }
    a
}

fn peer_args(w: &Workload, s: &Sizes, port: u16, ca: &Path) -> Vec<String> {
    let n = match w.arg {
        "send" | "recv" => 0,
        "pingpong" => s.pingpong,
        "hs" => s.hs,
        "resume" => s.resume,
        "idle" => s.idle,
        "ffi" => s.ffi,
        "starttls" => s.starttls,
        "udp" => s.udp,
        _ => 0,
    };
    vec![
        w.arg.to_string(),
        format!("port={port}"),
        format!("ca={}", ca.display()),
        format!("n={n}"),
        format!("bytes={}", s.bulk_bytes),
    ]
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0) / 1024)
        .unwrap_or(0);
    let uname = Command::new("uname").arg("-srm").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    json!({"cpu": cpu, "vcpus": ncpu, "mem_mib": mem, "kernel": uname, "loadavg_at_start": load})
}

fn run(args: &[String]) {
    let smoke = args.iter().any(|a| a == "--smoke");
    let peers_file = flag(args, "--peers").unwrap_or_else(|| die("--peers FILE"));
    let out_dir = PathBuf::from(flag(args, "--out").unwrap_or_else(|| die("--out DIR")));
    let stamp = flag(args, "--stamp").unwrap_or_else(|| "run".into());
    let only: Option<Vec<String>> = flag(args, "--only").map(|s| s.split(',').map(String::from).collect());
    let reps: usize = flag(args, "--reps").map(|v| v.parse().unwrap()).unwrap_or(if smoke { 1 } else { 5 });
    let scale: f64 = flag(args, "--scale").map(|v| v.parse().unwrap()).unwrap_or(1.0);
    let sc = |v: u64| ((v as f64 * scale) as u64).max(1);
    let sizes = if smoke {
        Sizes { bulk_bytes: 64 << 20, pingpong: 5_000, hs: 200, resume: 200, idle: 100, ffi: 100_000, udp: 5_000, starttls: 200, limit: Duration::from_secs(40) }
    } else {
        Sizes {
            bulk_bytes: sc(1 << 30),
            pingpong: sc(50_000),
            hs: sc(2_000),
            resume: sc(2_000),
            idle: sc(1_000),
            ffi: sc(1_000_000),
            udp: sc(50_000),
            starttls: sc(2_000),
            limit: Duration::from_secs(120),
        }
    };
    std::fs::create_dir_all(&out_dir).unwrap();
    let work = std::env::temp_dir().join(format!("tu-bench-{}", std::process::id()));
    let (ca, cert, key) = make_certs(&work.join("certs"));
    let exe = std::env::current_exe().unwrap();
    let peers = read_peers(&peers_file);
    let by_id: BTreeMap<String, Peer> = peers.iter().map(|p| (p.id.clone(), p.clone())).collect();
    let jsonl_path = out_dir.join(format!("{stamp}.jsonl"));
    let mut jsonl = std::fs::File::create(&jsonl_path).unwrap();
    let machine = machine();
    let size_info = json!({
        "mode": if smoke { "smoke" } else { "full" }, "reps": reps,
        "bulk_bytes": sizes.bulk_bytes, "pingpong": sizes.pingpong, "handshakes": sizes.hs, "resumed": sizes.resume,
        "idle": sizes.idle, "ffi_calls": sizes.ffi, "udp": sizes.udp, "starttls": sizes.starttls,
        "write_size": 16384, "message_size": 64, "tls": "TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 (server-pinned; clients pinned where they can), ECDSA P-256 leaf, verified, SNI localhost",
    });
    eprintln!(
        "tu-bench: {} run, {reps} repetition(s): bulk {} MiB, ping-pong {}, handshakes {}, resumed {}, idle {}, FFI calls {}, UDP {}, STARTTLS {}",
        if smoke { "smoke" } else { "full" },
        sizes.bulk_bytes >> 20, sizes.pingpong, sizes.hs, sizes.resume, sizes.idle, sizes.ffi, sizes.udp, sizes.starttls
    );

    // Versions, and which peers run at all.
    let mut versions = serde_json::Map::new();
    let mut usable: BTreeMap<String, bool> = BTreeMap::new();
    for p in &peers {
        if p.status != "ok" {
            eprintln!("  {:<15} skipped: {}", p.id, p.status.trim_start_matches("skip: "));
            versions.insert(p.id.clone(), Value::String(format!("not run: {}", p.status.trim_start_matches("skip: "))));
            usable.insert(p.id.clone(), false);
            continue;
        }
        let o = run_peer(&p.argv, &["version".into()], None, Duration::from_secs(30));
        if o.ok {
            let v = o.result["version"].as_str().unwrap_or("?").to_string();
            eprintln!("  {:<15} {v}", p.id);
            versions.insert(p.id.clone(), Value::String(v));
            usable.insert(p.id.clone(), true);
        } else {
            eprintln!("  {:<15} FAILS to start: {}", p.id, o.err);
            versions.insert(p.id.clone(), Value::String(format!("failed: {}", o.err)));
            usable.insert(p.id.clone(), false);
        }
    }
    // Crate versions (the lock file the Rust peers were built from) and the compilers.
    if let Ok(lock) = std::fs::read_to_string("benches/driver/Cargo.lock") {
        let mut found = Vec::new();
        let mut name = String::new();
        for line in lock.lines() {
            if let Some(n) = line.strip_prefix("name = ") {
                name = n.trim_matches('"').to_string();
            } else if let Some(v) = line.strip_prefix("version = ") {
                if ["rustls", "aws-lc-rs", "aws-lc-sys", "rustls-webpki", "socket2", "rustix"].contains(&name.as_str()) {
                    found.push(format!("{name} {}", v.trim_matches('"')));
                }
            }
        }
        versions.insert("crates".into(), Value::String(found.join(", ")));
    }
    for (key, cmd, arg) in [("rustc", "rustc", "--version"), ("cc", "cc", "--version"), ("valgrind", "valgrind", "--version")] {
        if let Ok(o) = Command::new(cmd).arg(arg).output() {
            let v = String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string();
            versions.insert(key.into(), Value::String(v));
        }
    }
    let versions = Value::Object(versions);
    let header = json!({"type": "run", "stamp": stamp, "machine": machine, "sizes": size_info, "versions": versions});
    writeln!(jsonl, "{header}").unwrap();

    let mut failures: Vec<String> = Vec::new();
    let workloads: Vec<&Workload> =
        WORKLOADS.iter().filter(|w| only.as_ref().map(|o| o.iter().any(|x| x == w.id)).unwrap_or(true)).collect();
    let t_run = Instant::now();
    for rep in 0..reps {
        for w in &workloads {
            // A server per workload and repetition: a fresh ticket key and session cache.
            let needs_plain = w.peers.iter().any(|p| *p == "plain") && !matches!(w.arg, "udp" | "ffi");
            let mut tls_srv = Server::start(&exe, &server_args(w, false, false, &sizes, &cert, &key), w.server_cpu);
            let mut plain_srv = needs_plain.then(|| Server::start(&exe, &server_args(w, true, false, &sizes, &cert, &key), w.server_cpu));
            let mut kx_srv = w.peers.contains(&"rustls-default").then(|| {
                Server::start(&exe, &server_args(w, false, true, &sizes, &cert, &key), w.server_cpu)
            });
            let mut order: Vec<&str> = w.peers.to_vec();
            if rep % 2 == 1 {
                order.reverse();
            }
            for pid in order {
                let Some(peer) = by_id.get(pid) else { continue };
                if !usable.get(pid).copied().unwrap_or(false) {
                    if rep == 0 {
                        let rec = json!({"type": "skip", "workload": w.id, "peer": pid, "reason": versions[pid]});
                        writeln!(jsonl, "{rec}").unwrap();
                    }
                    continue;
                }
                let srv: &mut Server = if pid == "plain" && plain_srv.is_some() {
                    plain_srv.as_mut().unwrap()
                } else if pid == "rustls-default" {
                    kx_srv.as_mut().unwrap()
                } else {
                    &mut tls_srv
                };
                let _ = srv.stats();
                let o = run_peer(&peer.argv, &peer_args(w, &sizes, srv.port, &ca), w.client_cpu, sizes.limit);
                let st = srv.stats();
                if o.unsupported {
                    if rep == 0 {
                        eprintln!("  rep {rep} {} {:<15} not supported: {}", w.id, pid, o.err);
                        let rec = json!({"type": "skip", "workload": w.id, "peer": pid, "reason": format!("not supported: {}", o.err)});
                        writeln!(jsonl, "{rec}").unwrap();
                    }
                    continue;
                }
                let mut rec = json!({
                    "type": "measurement", "workload": w.id, "workload_name": w.name, "peer": pid, "rep": rep,
                    "ok": o.ok, "server": st,
                });
                if o.ok {
                    for (k, v) in o.result.as_object().unwrap() {
                        rec[k] = v.clone();
                    }
                    // W5 counts only if the server saw resumptions (>= 99 %).
                    if w.arg == "resume" {
                        let h = st["handshakes"].as_f64().unwrap_or(0.0);
                        let r = st["resumed"].as_f64().unwrap_or(0.0);
                        let frac = if h > 0.0 { r / h } else { 0.0 };
                        rec["resumed_fraction"] = json!(frac);
                        if frac < 0.99 {
                            rec["ok"] = json!(false);
                            rec["error"] = json!(format!("only {:.1} % of handshakes resumed (server count)", frac * 100.0));
                        }
                    }
                    eprintln!(
                        "  rep {rep} {} {:<15} {:>10.2} {}{}",
                        w.id,
                        pid,
                        rec["value"].as_f64().unwrap_or(0.0),
                        rec["unit"].as_str().unwrap_or(""),
                        rec.get("error").map(|e| format!("  ({})", e.as_str().unwrap_or(""))).unwrap_or_default()
                    );
                } else {
                    rec["error"] = json!(o.err);
                    eprintln!("  rep {rep} {} {:<15} FAILED: {}", w.id, pid, o.err);
                    failures.push(format!("{} {}: {}", w.id, pid, o.err));
                }
                rec["size"] = json!(match w.arg {
                    "send" | "recv" => sizes.bulk_bytes,
                    _ => peer_args(w, &sizes, 0, &ca)[3].trim_start_matches("n=").parse::<u64>().unwrap_or(0),
                });
                writeln!(jsonl, "{rec}").unwrap();
                jsonl.flush().unwrap();
            }
            drop(tls_srv);
            drop(plain_srv.take());
            drop(kx_srv.take());
        }
    }
    eprintln!("tu-bench: measurements took {:.0} s", t_run.elapsed().as_secs_f64());

    // W7 instruction counts (callgrind), repeatable where wall time is not.
    if only.is_none() && !args.iter().any(|a| a == "--no-callgrind") {
        callgrind(&by_id, &usable, &mut jsonl, &exe, &ca, &cert, &key, smoke);
    }
    drop(jsonl);
    let _ = std::fs::remove_dir_all(&work);
    let md = out_dir.join(format!("{stamp}-summary.md"));
    let js = out_dir.join(format!("{stamp}-summary.json"));
    summary::summarize(&jsonl_path, Some(md.to_str().unwrap()), Some(js.to_str().unwrap()), !smoke);
    eprintln!("tu-bench: wrote {} and {}", jsonl_path.display(), md.display());
    // The headline row must work; other peers only report.
    let headline_failed = failures.iter().any(|f| f.contains(" tu-c:"));
    if !usable.get("tu-c").copied().unwrap_or(false) || headline_failed {
        eprintln!("tu-bench: the transporturl C ABI row failed");
        std::process::exit(1);
    }
    if !failures.is_empty() {
        eprintln!("tu-bench: {} measurement(s) of other peers failed (reported above)", failures.len());
        if args.iter().any(|a| a == "--strict") {
            std::process::exit(1);
        }
    }
}

/// One callgrind run of a peer: the user-space instructions it executed.
fn callgrind_count(peer: &Peer, args: &[String]) -> Option<u64> {
    let mut argv: Vec<String> = vec!["valgrind".into(), "--tool=callgrind".into(), "--callgrind-out-file=/dev/null".into()];
    // `env VAR=... prog`: valgrind must trace prog, not env.
    let mut rest = peer.argv.clone();
    let mut envs = Vec::new();
    if rest.first().map(|s| s.ends_with("env")).unwrap_or(false) {
        rest.remove(0);
        while rest.first().map(|s| s.contains('=')).unwrap_or(false) {
            envs.push(rest.remove(0));
        }
    }
    argv.extend(rest);
    argv.extend(args.iter().cloned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for e in &envs {
        let (k, v) = e.split_once('=').unwrap();
        cmd.env(k, v);
    }
    pin(&mut cmd, Some(0));
    let child = cmd.spawn().ok()?;
    // Bounded like every other peer run.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(o) => o.ok()?,
        Err(_) => {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            return None;
        }
    };
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stderr).lines().find_map(|l| l.split("Collected :").nth(1).and_then(|v| v.trim().parse::<u64>().ok()))
}

/// Instructions per operation (user space, client side), counted by
/// callgrind: the difference of two runs of different length cancels
/// start-up, connect and library initialisation. Repeatable where wall time
/// on a shared VM is not. W7i is the FFI goal's figure; the others explain
/// the wall-time ratios.
#[allow(clippy::too_many_arguments)]
fn callgrind(
    by_id: &BTreeMap<String, Peer>,
    usable: &BTreeMap<String, bool>,
    jsonl: &mut std::fs::File,
    exe: &Path,
    ca: &Path,
    cert: &Path,
    key: &Path,
    smoke: bool,
) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("tu-bench: valgrind not found: no instruction counts");
        return;
    }
    let tls = |mode: &str, tickets: u32, bytes: u64| -> Vec<String> {
        vec![
            "--mode".into(), mode.into(), "--tickets".into(), tickets.to_string(), "--bytes".into(), bytes.to_string(),
            "--cert".into(), cert.display().to_string(), "--key".into(), key.display().to_string(),
        ]
    };
    let tls_peers: &[&str] = &["tu-c", "tu-rust", "rustls", "openssl"];
    // (id, name, peer workload, unit, server args for run 1 and 2, n1, n2, ops between the runs, peers)
    struct Job {
        id: &'static str,
        name: &'static str,
        arg: &'static str,
        unit: &'static str,
        srv: [Vec<String>; 2],
        n: [u64; 2],
        bytes: [u64; 2],
        ops: f64,
        peers: Vec<&'static str>,
    }
    let warm = |n: u64| n + (n / 50).max(10);
    let (f1, f2) = if smoke { (2_000u64, 12_000u64) } else { (10_000u64, 60_000u64) };
    let mut jobs = vec![Job {
        id: "W7i",
        name: "FFI write 64 B: instructions/call (callgrind)",
        arg: "ffi",
        unit: "instr/call",
        srv: [tls("udp-sink", 0, 0), tls("udp-sink", 0, 0)],
        n: [f1, f2],
        bytes: [0, 0],
        ops: (f2 - f1) as f64,
        peers: if smoke { vec!["tu-rust", "tu-c"] } else { vec!["tu-rust", "tu-c", "tu-python", "python-ctypes"] },
    }];
    if !smoke {
        let (b1, b2) = (16u64 << 20, 48u64 << 20);
        jobs.push(Job { id: "W2i", name: "bulk receive: client instructions per 16 KiB (callgrind)", arg: "recv", unit: "instr/16KiB",
            srv: [tls("source", 2, b1), tls("source", 2, b2)], n: [0, 0], bytes: [b1, b2], ops: ((b2 - b1) / 16384) as f64, peers: tls_peers.to_vec() });
        jobs.push(Job { id: "W1i", name: "bulk send: client instructions per 16 KiB (callgrind)", arg: "send", unit: "instr/16KiB",
            srv: [tls("sink", 2, b1), tls("sink", 2, b2)], n: [0, 0], bytes: [b1, b2], ops: ((b2 - b1) / 16384) as f64, peers: tls_peers.to_vec() });
        jobs.push(Job { id: "W3i", name: "ping-pong: client instructions per round trip (callgrind)", arg: "pingpong", unit: "instr/RTT",
            srv: [tls("echo", 2, 0), tls("echo", 2, 0)], n: [2_000, 6_000], bytes: [0, 0], ops: (warm(6_000) - warm(2_000)) as f64, peers: tls_peers.to_vec() });
        jobs.push(Job { id: "W4i", name: "full handshake: client instructions per handshake (callgrind)", arg: "hs", unit: "instr/hs",
            srv: [tls("hs1", 0, 0), tls("hs1", 0, 0)], n: [30, 130], bytes: [0, 0], ops: 100.0, peers: tls_peers.to_vec() });
        jobs.push(Job { id: "W5i", name: "resumed handshake: client instructions per handshake (callgrind)", arg: "resume", unit: "instr/hs",
            srv: [tls("hs1", 2, 0), tls("hs1", 2, 0)], n: [30, 130], bytes: [0, 0], ops: 100.0, peers: tls_peers.to_vec() });
        let mut udp = tls("udp-echo", 0, 0);
        udp.truncate(6);
        jobs.push(Job { id: "W9i", name: "udp:// ping-pong: client instructions per round trip (callgrind)", arg: "udp", unit: "instr/RTT",
            srv: [udp.clone(), udp], n: [2_000, 6_000], bytes: [0, 0], ops: (warm(6_000) - warm(2_000)) as f64, peers: vec!["tu-c", "plain"] });
    }
    for job in &jobs {
        let servers: Vec<Server> = job.srv.iter().map(|a| Server::start(exe, a, None)).collect();
        for &pid in &job.peers {
            let Some(peer) = by_id.get(pid) else { continue };
            if !usable.get(pid).copied().unwrap_or(false) {
                continue;
            }
            let counts: Vec<Option<u64>> = (0..2)
                .map(|i| {
                    let args = vec![
                        job.arg.to_string(),
                        format!("port={}", servers[i].port),
                        format!("ca={}", ca.display()),
                        format!("n={}", job.n[i]),
                        format!("bytes={}", job.bytes[i]),
                    ];
                    callgrind_count(peer, &args)
                })
                .collect();
            let rec = match (counts[0], counts[1]) {
                (Some(a), Some(b)) => {
                    let per = (b as f64 - a as f64) / job.ops;
                    eprintln!("  {} callgrind {pid:<15} {per:>10.0} {}", job.id, job.unit);
                    json!({"type": "measurement", "workload": job.id, "workload_name": job.name, "peer": pid, "rep": 0, "ok": true,
                           "value": per, "unit": job.unit, "collected": [a, b], "n": job.n, "bytes": job.bytes})
                }
                _ => {
                    eprintln!("  {} callgrind {pid:<15} failed", job.id);
                    json!({"type": "measurement", "workload": job.id, "workload_name": job.name, "peer": pid, "rep": 0, "ok": false,
                           "error": "callgrind run failed"})
                }
            };
            writeln!(jsonl, "{rec}").unwrap();
        }
    }
}
