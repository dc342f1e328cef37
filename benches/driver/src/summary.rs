//! The summary of a run: a table per workload (median, min, max, n), ratios
//! oriented so that > 1 means transporturl is better, "within noise" where
//! the min–max ranges overlap, every goal of BENCH.md marked met or missed,
//! and a JSON file of the ratios for the chart (benches/chart.py).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
    pub unit: String,
    pub cpu: Option<f64>,
    pub cpu_unit: String,
    pub extra: String,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A number with as many digits as it deserves.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn higher_better(unit: &str) -> bool {
    matches!(unit, "MB/s" | "hs/s" | "upgrades/s")
}

pub const LABELS: &[(&str, &str)] = &[
    ("tu-c", "transporturl C ABI"),
    ("tu-rust", "transporturl Rust API"),
    ("tu-python", "transporturl Python binding"),
    ("tu-go", "transporturl Go binding"),
    ("rustls", "raw rustls 0.23"),
    ("rustls-default", "raw rustls, default groups"),
    ("openssl", "OpenSSL C"),
    ("python-ssl", "Python ssl"),
    ("go-tls", "Go crypto/tls"),
    ("php", "PHP streams"),
    ("plain", "plain TCP/UDP (C)"),
    ("python-ctypes", "bare ctypes tu_write"),
    ("go-cgo", "bare cgo tu_write"),
];

fn label(id: &str) -> &str {
    LABELS.iter().find(|(k, _)| *k == id).map(|(_, v)| *v).unwrap_or(id)
}

/// `a op factor × b` in the metric's own units.
struct Goal {
    text: &'static str,
    a: (&'static str, &'static str),
    b: (&'static str, &'static str),
    le: bool,
    factor: f64,
}

const fn g(text: &'static str, wa: &'static str, pa: &'static str, wb: &'static str, pb: &'static str, le: bool, factor: f64) -> Goal {
    Goal { text, a: (wa, pa), b: (wb, pb), le, factor }
}

const GOALS: &[Goal] = &[
    g("W1 send: C ABI ≥ 0.95× raw rustls", "W1", "tu-c", "W1", "rustls", false, 0.95),
    g("W1 send: C ABI ≥ 1.3× OpenSSL", "W1", "tu-c", "W1", "openssl", false, 1.3),
    g("W1 send: C ABI ≥ 1.8× PHP", "W1", "tu-c", "W1", "php", false, 1.8),
    g("W1 send: C ABI ≥ 0.70× plain TCP", "W1", "tu-c", "W1", "plain", false, 0.70),
    g("W1 send: Python binding ≥ 1.3× Python ssl", "W1", "tu-python", "W1", "python-ssl", false, 1.3),
    g("W1 send: Go binding ≥ 1.1× Go crypto/tls", "W1", "tu-go", "W1", "go-tls", false, 1.1),
    g("W2 recv: C ABI ≥ 0.95× raw rustls", "W2", "tu-c", "W2", "rustls", false, 0.95),
    g("W2 recv: C ABI ≥ 1.3× OpenSSL", "W2", "tu-c", "W2", "openssl", false, 1.3),
    g("W2 recv: C ABI ≥ 1.8× PHP", "W2", "tu-c", "W2", "php", false, 1.8),
    g("W2 recv: C ABI ≥ 0.70× plain TCP", "W2", "tu-c", "W2", "plain", false, 0.70),
    g("W3 RTT: C ABI ≤ 1.05× raw rustls", "W3", "tu-c", "W3", "rustls", true, 1.05),
    g("W3 RTT: C ABI ≤ 1.10× plain TCP", "W3", "tu-c", "W3", "plain", true, 1.10),
    g("W3 RTT: C ABI ≤ 0.9× OpenSSL", "W3", "tu-c", "W3", "openssl", true, 0.9),
    g("W3 RTT: Python binding ≤ 0.95× Python ssl", "W3", "tu-python", "W3", "python-ssl", true, 0.95),
    g("W3 RTT: Go binding ≤ 0.9× Go crypto/tls", "W3", "tu-go", "W3", "go-tls", true, 0.9),
    g("W4 full hs/s: C ABI ≥ 0.95× raw rustls", "W4", "tu-c", "W4", "rustls", false, 0.95),
    g("W4 full hs/s: C ABI ≥ 2.5× OpenSSL", "W4", "tu-c", "W4", "openssl", false, 2.5),
    g("W4 full hs/s: C ABI ≥ 3.5× PHP", "W4", "tu-c", "W4", "php", false, 3.5),
    g("W4 full hs/s: Python binding ≥ 2.5× Python ssl", "W4", "tu-python", "W4", "python-ssl", false, 2.5),
    g("W4 full hs/s: Go binding ≥ 1.5× Go crypto/tls", "W4", "tu-go", "W4", "go-tls", false, 1.5),
    g("W5 resumed hs/s: C ABI ≥ 0.95× raw rustls", "W5", "tu-c", "W5", "rustls", false, 0.95),
    g("W5 resumed hs/s: C ABI ≥ 1.4× OpenSSL", "W5", "tu-c", "W5", "openssl", false, 1.4),
    g("W5 resumed hs/s: Python binding ≥ 4× Python ssl", "W5", "tu-python", "W5", "python-ssl", false, 4.0),
    g("W5 resumed hs/s: Go binding ≥ 1.5× Go crypto/tls", "W5", "tu-go", "W5", "go-tls", false, 1.5),
    g("W6 memory: C ABI ≤ 1.2× raw rustls", "W6", "tu-c", "W6", "rustls", true, 1.2),
    g("W6 memory: C ABI ≤ 0.4× OpenSSL", "W6", "tu-c", "W6", "openssl", true, 0.4),
    g("W7 FFI: Python binding ≤ 1.25× a bare ctypes tu_write, CPU time (syscall included)", "W7", "tu-python", "W7", "python-ctypes", true, 1.25),
    g("W7 FFI: Go binding ≤ 1.25× a bare cgo tu_write, CPU time (syscall included)", "W7", "tu-go", "W7", "go-cgo", true, 1.25),
    g("W7 FFI: Python binding ≤ 1.25× a bare ctypes tu_write, user-space instructions (callgrind)", "W7i", "tu-python", "W7i", "python-ctypes", true, 1.25),
    g("W8 STARTTLS: C ABI upgrades/s ≥ 0.95× its direct tls:// hs/s", "W8", "tu-c", "W4", "tu-c", false, 0.95),
    g("W9 UDP RTT: C ABI ≤ 1.05× a raw UDP socket", "W9", "tu-c", "W9", "plain", true, 1.05),
];

pub fn summarize(path: &Path, md_out: Option<&str>, json_out: Option<&str>, print: bool) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut header = Value::Null;
    let mut vals: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut failed: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut skipped: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        match v["type"].as_str() {
            Some("run") => header = v,
            Some("skip") => {
                skipped.insert(
                    (v["workload"].as_str().unwrap_or("").into(), v["peer"].as_str().unwrap_or("").into()),
                    v["reason"].as_str().unwrap_or("").into(),
                );
            }
            Some("measurement") => {
                let key = (v["workload"].as_str().unwrap_or("").to_string(), v["peer"].as_str().unwrap_or("").to_string());
                if let Some(n) = v["workload_name"].as_str() {
                    names.insert(key.0.clone(), n.to_string());
                }
                if v["ok"].as_bool() == Some(true) {
                    vals.entry(key).or_default().push(v);
                } else {
                    failed.insert(key, v["error"].as_str().unwrap_or("failed").to_string());
                }
            }
            _ => {}
        }
    }
    let mut stats: BTreeMap<(String, String), Stat> = BTreeMap::new();
    for (k, list) in &vals {
        let mut xs: Vec<f64> = list.iter().filter_map(|v| v["value"].as_f64()).collect();
        if xs.is_empty() {
            continue;
        }
        let mut cpus: Vec<f64> = list.iter().filter_map(|v| v["cpu_per"].as_f64()).collect();
        let mut peaks: Vec<f64> = list.iter().filter_map(|v| v["peak_kib"].as_f64()).collect();
        let mut res: Vec<f64> = list.iter().filter_map(|v| v["resumed_fraction"].as_f64()).collect();
        let mut extra = String::new();
        if !peaks.is_empty() {
            extra = format!("peak RSS {:.1} MiB", median(&mut peaks) / 1024.0);
        }
        if !res.is_empty() {
            extra = format!("{:.1} % resumed", median(&mut res) * 100.0);
        }
        let n = xs.len();
        let (mn, mx) = (xs.iter().cloned().fold(f64::MAX, f64::min), xs.iter().cloned().fold(f64::MIN, f64::max));
        stats.insert(
            k.clone(),
            Stat {
                median: median(&mut xs),
                min: mn,
                max: mx,
                n,
                unit: list[0]["unit"].as_str().unwrap_or("").into(),
                cpu: if cpus.is_empty() { None } else { Some(median(&mut cpus)) },
                cpu_unit: list[0]["cpu_unit"].as_str().unwrap_or("").into(),
                extra,
            },
        );
    }

    let mut md = String::new();
    let _ = writeln!(md, "# transporturl benchmark — {}\n", header["stamp"].as_str().unwrap_or(""));
    let m = &header["machine"];
    let _ = writeln!(
        md,
        "Machine: {} ({} vCPU, {} MiB), {}; load average at start {}.\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["vcpus"],
        m["mem_mib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["loadavg_at_start"].as_str().unwrap_or("?")
    );
    let s = &header["sizes"];
    let _ = writeln!(
        md,
        "Sizes ({} run, {} repetitions, medians; order alternates each repetition): bulk {} MiB in 16 KiB writes, \
         ping-pong {} × 64 B, {} full handshakes, {} resumed, {} idle connections, {} FFI calls, {} UDP round trips, {} STARTTLS upgrades. \
         {}.\n",
        s["mode"].as_str().unwrap_or("?"),
        s["reps"],
        s["bulk_bytes"].as_u64().unwrap_or(0) >> 20,
        s["pingpong"],
        s["handshakes"],
        s["resumed"],
        s["idle"],
        s["ffi_calls"],
        s["udp"],
        s["starttls"],
        s["tls"].as_str().unwrap_or("")
    );
    let _ = writeln!(md, "## Versions\n\n| peer | version |\n|---|---|");
    if let Some(vs) = header["versions"].as_object() {
        for (k, v) in vs {
            let _ = writeln!(md, "| {} | {} |", label(k), v.as_str().unwrap_or("?").replace('|', "/"));
        }
    }

    // Goals first: the point of the run.
    let mut ratio_rows = Vec::new();
    let _ = writeln!(md, "\n## Goals (ratios > 1 mean transporturl is better)\n");
    let _ = writeln!(
        md,
        "Ceiling: the same ratio for raw rustls, the best a library built on rustls can do against that peer here \
         (a goal above it cannot be met on this machine by any rustls wrapper).\n"
    );
    let _ = writeln!(md, "| goal | measured | ratio | goal ratio | ceiling (raw rustls) | result |\n|---|---|---|---|---|---|");
    for goal in GOALS {
        let a = stats.get(&(goal.a.0.to_string(), goal.a.1.to_string()));
        let b = stats.get(&(goal.b.0.to_string(), goal.b.1.to_string()));
        let (Some(a), Some(b)) = (a, b) else {
            let why = [goal.a, goal.b]
                .iter()
                .find_map(|(w, p)| {
                    let k = (w.to_string(), p.to_string());
                    if stats.contains_key(&k) {
                        None
                    } else {
                        Some(format!(
                            "{} {}: {}",
                            w,
                            label(p),
                            skipped.get(&k).or_else(|| failed.get(&k)).cloned().unwrap_or_else(|| "not measured".into())
                        ))
                    }
                })
                .unwrap_or_default();
            let _ = writeln!(md, "| {} | — | — | — | — | not measured ({}) |", goal.text, why.replace('|', "/"));
            ratio_rows.push(json!({"goal": goal.text, "measured": false, "why": why}));
            continue;
        };
        let hb = higher_better(&a.unit);
        // Oriented: > 1 = transporturl better. The natural ratio a/b is what the goal states.
        let natural = a.median / b.median;
        let oriented = if hb { natural } else { 1.0 / natural };
        let target = if goal.le { 1.0 / goal.factor } else { goal.factor };
        let met = oriented >= target;
        let overlap = a.min <= b.max && b.min <= a.max;
        // The ceiling: raw rustls against the same peer (W1–W6 goals against another library).
        let ceiling = if goal.a.0 == goal.b.0 && goal.b.1 != "rustls" && !goal.b.1.starts_with("tu-") && !goal.a.0.starts_with("W7") {
            stats.get(&(goal.a.0.to_string(), "rustls".to_string())).map(|r| {
                let n = r.median / b.median;
                if hb { n } else { 1.0 / n }
            })
        } else {
            None
        };
        let above = ceiling.map(|c| target > c).unwrap_or(false);
        let result = format!(
            "{}{}{}",
            if met { "**met**" } else { "**missed**" },
            if overlap { " (within noise)" } else { "" },
            if above && !met { "; goal above the ceiling" } else { "" }
        );
        let _ = writeln!(
            md,
            "| {} | {:.3}× ({} vs {} {}) | {:.3} | ≥ {:.3} | {} | {} |",
            goal.text,
            natural,
            num(a.median),
            num(b.median),
            a.unit,
            oriented,
            target,
            ceiling.map(|c| format!("{c:.3}")).unwrap_or_else(|| "—".into()),
            result
        );
        ratio_rows.push(json!({"goal": goal.text, "measured": true, "natural": natural, "oriented": oriented,
                               "target": target, "met": met, "within_noise": overlap, "ceiling": ceiling,
                               "a": a.median, "b": b.median, "unit": a.unit}));
    }
    // Absolute goals.
    let w6 = stats.get(&("W6".to_string(), "tu-c".to_string()));
    if let Some(st) = w6 {
        let met = st.median <= 13.0;
        let _ = writeln!(md, "| W6 memory: C ABI ≤ 13 KiB per idle connection | {:.1} KiB/conn | — | ≤ 13 | — | {} |", st.median, if met { "**met**" } else { "**missed**" });
        ratio_rows.push(json!({"goal": "W6 memory: C ABI ≤ 13 KiB/conn", "measured": true, "oriented": 13.0 / st.median, "target": 1.0, "met": met, "within_noise": false}));
    }
    let rust = stats.get(&("W7".to_string(), "tu-rust".to_string()));
    let c = stats.get(&("W7".to_string(), "tu-c".to_string()));
    if let (Some(r), Some(c)) = (rust, c) {
        let d = c.median - r.median;
        let met = d <= 5.0;
        let overlap = c.min <= r.max && r.min <= c.max;
        let _ = writeln!(
            md,
            "| W7 FFI: C ABI ≤ +5 ns per call over the Rust API (CPU time) | {:+.1} ns ({:.1} vs {:.1} ns/call) | — | ≤ +5 ns | — | {}{} |",
            d,
            c.median,
            r.median,
            if met { "**met**" } else { "**missed**" },
            if overlap { " (within noise)" } else { "" }
        );
        ratio_rows.push(json!({"goal": "W7 FFI: C ABI ≤ +5 ns/call over Rust", "measured": true, "oriented": (r.median + 5.0) / c.median, "target": 1.0, "met": met, "within_noise": overlap}));
    }
    let ri = stats.get(&("W7i".to_string(), "tu-rust".to_string()));
    let ci = stats.get(&("W7i".to_string(), "tu-c".to_string()));
    if let (Some(r), Some(c)) = (ri, ci) {
        let d = c.median - r.median;
        let met = d <= 50.0;
        let _ = writeln!(
            md,
            "| W7 FFI: C ABI ≤ +50 instructions per call over the Rust API (callgrind) | {:+.1} instr ({:.1} vs {:.1}) | — | ≤ +50 | — | {} |",
            d,
            c.median,
            r.median,
            if met { "**met**" } else { "**missed**" }
        );
        ratio_rows.push(json!({"goal": "W7 FFI: C ABI ≤ +50 instr/call over Rust", "measured": true, "oriented": (r.median + 50.0) / c.median, "target": 1.0, "met": met, "within_noise": false}));
    }

    // Per-workload tables.
    let mut workloads: Vec<String> = stats.keys().map(|k| k.0.clone()).collect();
    workloads.extend(skipped.keys().map(|k| k.0.clone()));
    workloads.extend(failed.keys().map(|k| k.0.clone()));
    workloads.sort();
    workloads.dedup();
    for w in &workloads {
        let _ = writeln!(md, "\n## {} — {}\n", w, names.get(w).map(String::as_str).unwrap_or(""));
        let head = stats.get(&(w.clone(), "tu-c".to_string()));
        let _ = writeln!(md, "| peer | median | min | max | n | client CPU | C ABI ratio (> 1 = transporturl better) | notes |\n|---|---|---|---|---|---|---|---|");
        for (id, _) in LABELS {
            let k = (w.clone(), id.to_string());
            if let Some(st) = stats.get(&k) {
                let ratio = match head {
                    Some(h) if *id != "tu-c" => {
                        let r = if higher_better(&st.unit) { h.median / st.median } else { st.median / h.median };
                        let overlap = h.min <= st.max && st.min <= h.max;
                        format!("{:.3}{}", r, if overlap { " (within noise)" } else { "" })
                    }
                    _ => "—".into(),
                };
                let cpu = st.cpu.map(|c| format!("{} {}", num(c), st.cpu_unit)).unwrap_or_else(|| "—".into());
                let mut notes = st.extra.clone();
                if let Some(f) = failed.get(&k) {
                    notes = format!("{notes} some repetitions failed: {}", f.replace('|', "/"));
                }
                let _ = writeln!(
                    md,
                    "| {} | {} {} | {} | {} | {} | {} | {} | {} |",
                    label(id),
                    num(st.median),
                    st.unit,
                    num(st.min),
                    num(st.max),
                    st.n,
                    cpu,
                    ratio,
                    notes.trim()
                );
            } else if let Some(r) = skipped.get(&k).or_else(|| failed.get(&k)) {
                let _ = writeln!(md, "| {} | — | — | — | 0 | — | — | {} |", label(id), r.replace('|', "/"));
            }
        }
    }
    if let Some(p) = md_out {
        std::fs::write(p, &md).unwrap();
    }
    if print {
        println!("{md}");
    }
    if let Some(p) = json_out {
        let mut tables = serde_json::Map::new();
        for ((w, p), st) in &stats {
            tables.insert(format!("{w}/{p}"), json!({"median": st.median, "min": st.min, "max": st.max, "n": st.n, "unit": st.unit, "cpu": st.cpu}));
        }
        let out = json!({"stamp": header["stamp"], "machine": header["machine"], "sizes": header["sizes"], "goals": ratio_rows, "stats": tables});
        std::fs::write(p, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    }
}
