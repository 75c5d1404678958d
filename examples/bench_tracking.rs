//! Benchmark of task tracking under the API's fair use (issue 9): N concurrent reinstalls
//! tracked to the end with the default request budget (60 requests/minute), on the
//! simulator's scaled clock. Everything is expressed in simulated time: the budget and the
//! tracking intervals are scaled by the same factor as the simulator's clock, so the figures
//! are what a real fleet would see.
//!
//! Run: `cargo run --release --example bench_tracking [-- SERVERS SPEED]` (default 100 60).
//! Prints: polls per install, requests per simulated minute (mean, and the peak over every
//! sliding 60 simulated seconds, from the simulator's arrival log), and the delay between each
//! task's end (simulator) and the moment apply noticed it (`Recorded`). `BENCH_VERBOSE=1`
//! adds the per-minute counts, the calls by route, the delays and the peak window's requests.
//! Figures go to docs/benchmarks.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ovhform::apply::{self, ApplyContext, ApplyEvent, Approvals, Limits, TrackingConfig};
use ovhform::pipeline::{self, Context, NoProgress};
use ovhform::plan::PlanInput;
use ovhform::sim::{self, SimConfig};
use ovhform::state::{MemoryFacts, MemoryStore};

#[path = "common/fleet.rs"]
mod fleet;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let speed: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60.0);

    // N servers on Debian 11 whose manifests want Debian 12: N reinstalls.
    let (_dir, desired, fleet) = fleet::generate(n, 9_000_000, "debian11_64", "");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let handle = sim::spawn(
        listener,
        SimConfig {
            fleet,
            speed,
            hooks: true,
            ..SimConfig::default()
        },
    );
    // The budget of a real key, in simulated time: 60 per simulated minute.
    let mut cfg = sim::client_config(&handle).expect("config");
    cfg.requests_per_minute = 60;
    cfg.budget_period = Duration::from_secs(60).div_f64(speed);
    cfg.concurrency = 16;
    let client = ovhform::ovh::Client::new(cfg).expect("client");
    let scaled = |d: Duration| d.div_f64(speed);
    let defaults = TrackingConfig::default();
    let tracking = TrackingConfig {
        min_poll: scaled(defaults.min_poll),
        max_poll: scaled(defaults.max_poll),
        fresh_window: scaled(defaults.fresh_window),
        typical_install: scaled(defaults.typical_install),
        purge_horizon: scaled(defaults.purge_horizon),
        post_deadline: scaled(defaults.post_deadline),
        post_lag: scaled(defaults.post_lag),
        stall_after: scaled(defaults.stall_after),
        timeout: scaled(defaults.timeout),
    };

    let store = MemoryStore::default();
    let facts = MemoryFacts::default();
    let planned = pipeline::run(
        desired,
        &Context {
            client: &client,
            store: &store,
            facts: &facts,
            facts_ttl: Duration::ZERO,
            progress: &NoProgress,
            input: PlanInput::new(jiff::Timestamp::now()),
        },
    )
    .await
    .expect("plan");
    assert_eq!(planned.plan.summary().reinstall, n);

    let ctx = ApplyContext {
        client: &client,
        store: &store,
        desired: &planned.desired,
        fleet: planned.plan.fleet.clone(),
        fleet_key: None,
        approvals: Approvals {
            allow_wipe_all: true,
            ..Approvals::default()
        },
        limits: Limits {
            servers: n,
            reinstalls: n,
        },
        tracking,
        plan_id: None,
        clock: Arc::new(jiff::Timestamp::now),
        halt: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    handle.reset_calls();
    handle.record_arrivals();
    let real0 = Instant::now();
    let sim0 = handle.world().clock.now();
    let finished = std::sync::atomic::AtomicBool::new(false);
    // Requests per simulated minute, sampled every simulated minute while apply runs.
    let sampler = async {
        let mut per_minute = Vec::new();
        let mut last = 0u64;
        while !finished.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(60).div_f64(speed)).await;
            let total = handle.total_calls();
            per_minute.push(total - last);
            last = total;
        }
        per_minute
    };
    let noticed = async {
        let mut noticed: BTreeMap<String, Instant> = BTreeMap::new();
        while let Some(e) = rx.recv().await {
            // Recorded: tracking saw the end and the store has the record (before the tag
            // write, which queues on the budget like any request).
            if let ApplyEvent::Recorded { server, .. } = e {
                noticed.insert(server, Instant::now());
            }
        }
        noticed
    };
    let run = async {
        let report = apply::apply(&planned.plan, &ctx, &tx).await;
        drop(tx);
        finished.store(true, std::sync::atomic::Ordering::Relaxed);
        report
    };
    let (report, noticed, per_minute) = tokio::join!(run, noticed, sampler);
    let elapsed_real = real0.elapsed();
    assert!(!report.failed(), "{report:#?}");

    // When each task ended, in real time, from the simulator's own record.
    let mut delays = Vec::new();
    {
        let world = handle.world();
        for (server, seen) in &noticed {
            let task = world.servers[server]
                .tasks
                .values()
                .filter(|t| t.function == "reinstallServer")
                .max_by_key(|t| t.id)
                .expect("a reinstall task");
            let done = task.done.expect("done");
            let sim_secs = done.duration_since(sim0).as_secs_f64();
            let end_real = real0 + Duration::from_secs_f64(sim_secs / speed);
            let delay_sim = seen.saturating_duration_since(end_real).as_secs_f64() * speed;
            delays.push(delay_sim);
        }
    }
    let calls = handle.calls();
    let polls: u64 = calls
        .iter()
        .filter(|(k, _)| k.contains("/task/{taskId}") || k.ends_with("/install/status"))
        .map(|(_, v)| *v)
        .sum();
    let total: u64 = calls.values().sum();
    delays.sort_by(|a, b| a.total_cmp(b));
    let sim_minutes = elapsed_real.as_secs_f64() * speed / 60.0;
    println!("servers: {n}, simulator speed x{speed}");
    println!(
        "apply took {:.1} simulated minutes ({:.1} s real); {total} requests in all, {:.1} per simulated minute on average",
        sim_minutes,
        elapsed_real.as_secs_f64(),
        total as f64 / sim_minutes
    );
    // Peak over every sliding 60-second window of the simulator's clock, from its arrival log.
    let arrivals = handle.arrivals();
    let mut peak = 0;
    let mut peak_at = 0;
    let mut start = 0;
    for (end, (t, _)) in arrivals.iter().enumerate() {
        while t.duration_since(arrivals[start].0) >= jiff::SignedDuration::from_secs(60) {
            start += 1;
        }
        if end + 1 - start > peak {
            peak = end + 1 - start;
            peak_at = start;
        }
    }
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let t0 = arrivals[peak_at].0;
        for (t, route) in &arrivals[peak_at..peak_at + peak] {
            println!("  +{:6.2}s {route}", t.duration_since(t0).as_secs_f64());
        }
    }
    println!("peak requests in any 60 simulated seconds: {peak}");
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        println!("per simulated minute: {per_minute:?}");
        println!("by route: {calls:#?}");
        println!("delays: {delays:?}");
    }
    println!(
        "tracking polls (task + install/status GETs): {polls}, {:.1} per install",
        polls as f64 / n as f64
    );
    println!(
        "completion noticed after the task ended (simulated seconds): median {:.0}, p95 {:.0}, max {:.0}",
        delays[delays.len() / 2],
        delays[(delays.len() * 95 / 100).min(delays.len() - 1)],
        delays[delays.len() - 1]
    );
    handle.shutdown().await;
}
