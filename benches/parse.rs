//! Results parsing benchmark (not a timed test): prints figures, asserts nothing.
//!
//! 1. Parse and summarise corpus #02 (2.3 MB ginkgo v2 JUnit, 6636 testcases): best and
//!    median wall time over several runs, and peak RSS above the process baseline.
//! 2. A synthetic ~100 MB ginkgo v1 JUnit (50,000 testcases with large outputs) summarised
//!    with streaming (no output kept): wall time and peak RSS above baseline.
//!
//! `cargo bench --bench parse [-- CORPUS_02 [SYNTHETIC_XML | -]]`; without SYNTHETIC_XML the
//! file is generated in a temp dir (and deleted); `-` skips it. `ci/bench-results.sh` runs this next to
//! Python's junitparser.

use e2e_gate::results::load::load_files;
use e2e_gate::results::read::ReadOptions;
use e2e_gate::results::summary::summarize_with;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of this thread (immune to other processes competing for the 2 cores).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `f` once and returns (time, peak RSS above the RSS before, in KiB).
fn measure<T>(f: impl FnOnce() -> T) -> (Duration, u64, T) {
    reset_peak();
    let base = status_kib("VmRSS:");
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    let peak = status_kib("VmHWM:");
    (took, peak.saturating_sub(base), out)
}

fn summarise(path: &Path, opts: &ReadOptions) -> (usize, String) {
    let suite = load_files(&[path.to_path_buf()], "bench", opts);
    let s = summarize_with(std::slice::from_ref(&suite), false);
    let t = s.totals;
    (
        suite.specs.len() + suite.suite_nodes.len(),
        format!(
            "passed {} failed {} flaky {} skipped {} pending {} incomplete {}",
            t.passed, t.failed, t.flaky, t.skipped, t.pending, s.suites[0].incomplete
        ),
    )
}

/// Writes a ginkgo-v1-shaped JUnit of `cases` testcases with ~2 KB output each.
pub fn generate(path: &Path, cases: usize) -> std::io::Result<u64> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(w, "  <testsuite name=\"Kubernetes e2e suite\" tests=\"{cases}\" failures=\"0\" errors=\"0\" time=\"7267.419\">")?;
    let line = "STEP: Destroying namespace &quot;e2e-tests-x&quot; for this suite. INFO: pod running on node-1&#xA;";
    for i in 0..cases {
        let name = format!(
            "[sig-synthetic] Group {} should do thing {i} [Conformance]",
            i % 97
        );
        if i % 10 == 9 {
            writeln!(w, "      <testcase name=\"{name}\" classname=\"Kubernetes e2e suite\" time=\"0\">\n          <skipped></skipped>\n      </testcase>")?;
            continue;
        }
        writeln!(
            w,
            "      <testcase name=\"{name}\" classname=\"Kubernetes e2e suite\" time=\"1.25\">"
        )?;
        if i % 1000 == 7 {
            writeln!(w, "          <failure type=\"Failure\">/workspace/test/e2e/x.go:{i}&#xA;synthetic failure {i}&#xA;</failure>")?;
        }
        write!(w, "          <system-out>")?;
        for _ in 0..22 {
            w.write_all(line.as_bytes())?;
        }
        writeln!(w, "</system-out>\n      </testcase>")?;
    }
    writeln!(w, "  </testsuite>")?;
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let corpus02 = args.first().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/02-v2-k8s1.32-switch-parallel5-flaked2.junit_01.xml"
        ))
    });
    println!("== e2e-gate results benchmark (release build, 1 thread)");
    if corpus02.is_file() {
        let size = std::fs::metadata(&corpus02).map(|m| m.len()).unwrap_or(0);
        let opts = ReadOptions::default();
        let (first, peak, (cases, line)) = measure(|| summarise(&corpus02, &opts));
        let mut times = vec![first];
        let mut cpu = Vec::new();
        for _ in 0..29 {
            let t = Instant::now();
            let c = thread_cpu();
            let _ = summarise(&corpus02, &opts);
            cpu.push(thread_cpu() - c);
            times.push(t.elapsed());
        }
        times.sort();
        cpu.sort();
        if std::env::var_os("BENCH_BREAKDOWN").is_some() {
            let bytes = std::fs::read(&corpus02).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut parse = Vec::new();
            let mut summ = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                let suite =
                    e2e_gate::results::read::junit::read_junit(text.as_bytes(), "02", &opts);
                parse.push(t.elapsed());
                let t = Instant::now();
                let _ = summarize_with(std::slice::from_ref(&suite), false);
                summ.push(t.elapsed());
            }
            parse.sort();
            summ.sort();
            let mut floor = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                let mut r = quick_xml::Reader::from_str(&text);
                let mut n = 0usize;
                while let Ok(ev) = r.read_event() {
                    if matches!(ev, quick_xml::events::Event::Eof) {
                        break;
                    }
                    n += 1;
                }
                floor.push(t.elapsed());
                std::hint::black_box(n);
            }
            floor.sort();
            println!(
                "breakdown: bare quick-xml event loop (zero-copy) best {:?}",
                floor[0]
            );
            println!(
                "breakdown: parse from memory (the streaming reader over a slice) best {:?}, summarize best {:?}",
                parse[0], summ[0]
            );
        }
        println!("corpus02: {} bytes, {cases} testcases → {line}", size);
        println!(
            "corpus02: rust parse+summarise best {:.2} ms, median {:.2} ms (30 runs); peak RSS above baseline {} KiB ({:.2}x file size)",
            times[0].as_secs_f64() * 1e3,
            times[times.len() / 2].as_secs_f64() * 1e3,
            peak,
            (peak as f64 * 1024.0) / size as f64
        );
        println!(
            "corpus02: rust CPU time (this thread) best {:.2} ms, median {:.2} ms",
            cpu[0].as_secs_f64() * 1e3,
            cpu[cpu.len() / 2].as_secs_f64() * 1e3
        );
        println!(
            "RESULT corpus02_median_ms={:.3} corpus02_cpu_median_ms={:.3}",
            times[times.len() / 2].as_secs_f64() * 1e3,
            cpu[cpu.len() / 2].as_secs_f64() * 1e3
        );
    } else {
        println!("corpus02: {} absent, skipped", corpus02.display());
    }

    let tmp = tempfile::tempdir().ok();
    let synthetic = match args.get(1) {
        // `-`: corpus #02 only (the side-by-side rounds of ci/bench-results.sh).
        Some(p) if p == "-" => return,
        Some(p) => PathBuf::from(p),
        None => {
            let Some(dir) = tmp.as_ref() else {
                println!("synthetic: no temp dir");
                return;
            };
            let p = dir.path().join("synthetic-junit.xml");
            match generate(&p, 50_000) {
                Ok(n) => println!("synthetic: generated {n} bytes at {}", p.display()),
                Err(e) => {
                    println!("synthetic: cannot generate: {e}");
                    return;
                }
            }
            p
        }
    };
    let size = std::fs::metadata(&synthetic).map(|m| m.len()).unwrap_or(0);
    // Summaries only: no captured output kept.
    let opts = ReadOptions {
        max_output_bytes: 0,
        max_failure_bytes: 16 * 1024,
        ..ReadOptions::default()
    };
    // warm the page cache so the figure is parse time, not disk time
    let _ = std::fs::read(&synthetic).map(|v| v.len());
    let mut best = Duration::MAX;
    let mut peak_max = 0;
    let mut line = String::new();
    for _ in 0..3 {
        let (took, peak, (cases, l)) = measure(|| summarise(&synthetic, &opts));
        best = best.min(took);
        peak_max = peak_max.max(peak);
        line = format!("{cases} testcases → {l}");
    }
    println!("synthetic: {size} bytes, {line}");
    println!(
        "synthetic: rust streaming summarise best {:.0} ms (3 runs); peak RSS above baseline {} KiB ({:.3}x file size)",
        best.as_secs_f64() * 1e3,
        peak_max,
        (peak_max as f64 * 1024.0) / size.max(1) as f64
    );
    println!(
        "RESULT synthetic_ms={:.1} synthetic_peak_kib={peak_max}",
        best.as_secs_f64() * 1e3
    );
}
