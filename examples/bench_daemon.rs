//! Benchmark of the reconcile daemon at rest (issue 10): 1,000 adopted servers that match
//! their manifests, `ovhform run` (the release binary, its own process) at the default budget
//! of 60 requests a minute and a 5-minute interval, for MINUTES minutes. Measures, from the
//! simulator's arrival log and /proc: the most requests in any 60-second window, the daemon's
//! CPU use outside passes and over the whole run, its peak and final RSS, each pass's calls
//! and duration, and the servers verified per pass — from which the bound on detecting a
//! reinstall made outside ovhform follows. Figures go to docs/benchmarks.md.
//!
//! Run: `cargo build --release && cargo run --release --example bench_daemon [-- MINUTES [SERVERS]]`
//! (default 12 minutes, 1000 servers). Environment: `BENCH_BINS=old:new` measures several
//! `ovhform` binaries one after the other against the same simulator and the same adopted
//! state (before and after in one run); `BENCH_RPM` and `BENCH_INTERVAL` (default 60 and 5m)
//! shorten the cycle for quick looks; `BENCH_WRAP` starts the daemon under a profiler (e.g.
//! a heaptrack wrapper script: the figures are then the wrapper's). RSS is sampled every
//! second: the peak (VmHWM) and "at rest", the most outside passes once the first is over.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovhform::sim::{self, SimConfig};

#[path = "common/fleet.rs"]
mod fleet;

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// (VmRSS, VmHWM) of `pid` in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let minutes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(12);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let exe = std::env::current_exe().expect("exe");
    let ovhform = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("ovhform"))
        .expect("target/release/ovhform");
    // Several binaries (`BENCH_BINS=old:new`) are measured one after the other against the
    // same simulator and the same adopted state: before and after in one run.
    let binaries: Vec<std::path::PathBuf> = match std::env::var("BENCH_BINS") {
        Ok(v) if !v.is_empty() => v.split(':').map(std::path::PathBuf::from).collect(),
        _ => vec![ovhform.clone()],
    };
    for b in binaries.iter().chain([&ovhform]) {
        assert!(
            b.exists(),
            "{} missing: cargo build --release first",
            b.display()
        );
    }

    let (dir, _desired, fleet) = fleet::generate(n, 5_000_000, "debian12_64", "");
    let manifests = dir.path().join("fleet.yaml");
    let state = dir.path().join("state");
    let sim = sim::spawn(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SimConfig {
            fleet,
            // Real time: the arrival log's minutes are the daemon's minutes.
            speed: 1.0,
            ..SimConfig::for_tests()
        },
    );
    let creds = sim.credentials();
    let bench = Bench {
        minutes,
        rpm: std::env::var("BENCH_RPM")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
        interval: std::env::var("BENCH_INTERVAL").unwrap_or_else(|_| "5m".into()),
        manifests: manifests.clone(),
        wrap: std::env::var("BENCH_WRAP").ok().filter(|w| !w.is_empty()),
    };
    // `program [first..] args --state STATE` in the benchmark's environment.
    let cmd = |program: &std::path::Path, args: &[&str]| {
        let mut c = Command::new(program);
        c.args(args)
            .arg("--state")
            .arg(&state)
            .current_dir(dir.path())
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("OVH_ENDPOINT", sim.base_url())
            .env("OVH_APPLICATION_KEY", &creds.application_key)
            .env("OVH_APPLICATION_SECRET", &creds.application_secret)
            .env("OVH_CONSUMER_KEY", &creds.consumer_key)
            .stdin(Stdio::null());
        // glibc's arena count, to measure its effect on RSS (docs/benchmarks.md).
        if let Ok(v) = std::env::var("MALLOC_ARENA_MAX") {
            c.env("MALLOC_ARENA_MAX", v);
        }
        c
    };

    // Adopt the fleet first, unthrottled (the simulator has no fair-use limit by default).
    let t0 = Instant::now();
    let out = cmd(
        &ovhform,
        &[
            "apply",
            "--manifests",
            manifests.to_str().unwrap(),
            "--auto-approve",
        ],
    )
    .output()
    .expect("apply");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "adopted {n} servers in {:.1} s ({} calls)",
        t0.elapsed().as_secs_f64(),
        sim.total_calls()
    );

    // A snapshot of the state after adoption: every binary starts from the same records and
    // facts cache.
    let adopted = dir.path().join("state.adopted");
    copy_dir(&state, &adopted);
    for (i, bin) in binaries.iter().enumerate() {
        if i > 0 {
            let _ = std::fs::remove_dir_all(&state);
            copy_dir(&adopted, &state);
        }
        measure(bin, &cmd, &sim, &bench, n).await;
    }
}

/// How the daemon runs in this benchmark.
struct Bench {
    minutes: u64,
    rpm: u32,
    interval: String,
    manifests: std::path::PathBuf,
    /// A program the daemon is started under (heaptrack, valgrind): then the figures are the
    /// wrapper's, and only its own output matters.
    wrap: Option<String>,
}

/// One binary's run: its passes, requests, CPU and memory.
async fn measure(
    bin: &std::path::Path,
    cmd: &dyn Fn(&std::path::Path, &[&str]) -> Command,
    sim: &sim::SimHandle,
    bench: &Bench,
    n: usize,
) {
    sim.reset_calls();
    sim.record_arrivals();
    let started = jiff::Timestamp::now();
    let rpm = bench.rpm.to_string();
    let args = [
        "run",
        "--manifests",
        bench.manifests.to_str().unwrap(),
        "--interval",
        bench.interval.as_str(),
        "--requests-per-minute",
        rpm.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ];
    let mut command = match &bench.wrap {
        Some(w) => {
            let mut wrapped = vec![bin.to_str().unwrap()];
            wrapped.extend(args);
            cmd(std::path::Path::new(w), &wrapped)
        }
        None => cmd(bin, &args),
    };
    let mut daemon = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ovhform run");
    let pid = daemon.id();
    let log = daemon.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(log).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });

    let end = Instant::now() + Duration::from_secs(bench.minutes * 60);
    // (monotonic, CPU seconds, wall clock, VmRSS MiB)
    let mut samples: Vec<(Instant, f64, jiff::Timestamp, f64)> = Vec::new();
    let mut peak = 0.0f64;
    while Instant::now() < end {
        let (rss, hwm) = rss_mib(pid);
        peak = peak.max(hwm);
        samples.push((
            Instant::now(),
            cpu_seconds(pid),
            jiff::Timestamp::now(),
            rss,
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let threads = threads(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = daemon.wait();

    // Passes, from the daemon's log: from "reconcile pass" to "pass done".
    let logs = lines.lock().unwrap().clone();
    let at = |l: &str| -> Option<jiff::Timestamp> {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        v["timestamp"].as_str()?.parse().ok()
    };
    let mut passes: Vec<(jiff::Timestamp, jiff::Timestamp)> = Vec::new();
    let mut open: Option<jiff::Timestamp> = None;
    for l in &logs {
        if l.contains("\"reconcile pass\"") {
            open = at(l);
        } else if l.contains("\"pass done\"")
            && let (Some(s), Some(e)) = (open.take(), at(l))
        {
            passes.push((s, e));
        }
    }
    if let Some(s) = open {
        passes.push((s, jiff::Timestamp::MAX));
    }
    let in_pass = |t: jiff::Timestamp| passes.iter().any(|(s, e)| t >= *s && t <= *e);
    // CPU outside passes: sample intervals with neither end inside a pass.
    let (mut idle_cpu, mut idle_wall, mut all_cpu, mut all_wall) = (0.0, 0.0, 0.0, 0.0);
    for w in samples.windows(2) {
        let (t0, c0, w0, _) = w[0];
        let (t1, c1, w1, _) = w[1];
        let dt = (t1 - t0).as_secs_f64();
        all_cpu += c1 - c0;
        all_wall += dt;
        let spanned = passes.iter().any(|(s, e)| *s <= w1 && *e >= w0);
        if !in_pass(w0) && !in_pass(w1) && !spanned {
            idle_cpu += c1 - c0;
            idle_wall += dt;
        }
    }
    // At rest: RSS outside passes, once the first pass is over (before it, the process has
    // not planned anything yet).
    let first_end = passes.first().map(|p| p.1).unwrap_or(jiff::Timestamp::MAX);
    let rest: Vec<f64> = samples
        .iter()
        .filter(|(_, _, w, _)| *w > first_end && !in_pass(*w))
        .map(|s| s.3)
        .collect();
    let rest_max = rest.iter().copied().fold(0.0, f64::max);
    let start_rss = samples.first().map(|s| s.3).unwrap_or(0.0);
    let last_rss = samples.last().map(|s| s.3).unwrap_or(0.0);
    let arrivals = sim.arrivals();
    let mut worst = 0usize;
    for (i, (t, _)) in arrivals.iter().enumerate() {
        let until = *t + Duration::from_secs(60);
        let n = arrivals[i..].iter().take_while(|(u, _)| *u < until).count();
        worst = worst.max(n);
    }
    let minutes_run = all_wall / 60.0;
    println!("== {}", bin.display());
    println!(
        "daemon: {} min at {} requests/minute, interval {}, {n} servers",
        bench.minutes, bench.rpm, bench.interval
    );
    println!(
        "requests: {} in {:.1} min ({:.1}/min average), at most {worst} in any 60 s window",
        arrivals.len(),
        minutes_run,
        arrivals.len() as f64 / minutes_run.max(1e-9)
    );
    println!(
        "CPU: {:.3} % outside passes ({:.0} s idle), {:.2} % over the run",
        100.0 * idle_cpu / idle_wall.max(1e-9),
        idle_wall,
        100.0 * all_cpu / all_wall.max(1e-9)
    );
    println!(
        "RSS: peak {peak:.1} MiB, at rest {rest_max:.1} MiB at most ({} samples), first sample {start_rss:.1} MiB, at the end {last_rss:.1} MiB; {threads} threads",
        rest.len()
    );
    for l in logs.iter().filter(|l| l.contains("pass done")) {
        println!("  {l}");
    }
    println!("since {started}");
}

/// Threads of `pid`.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}
