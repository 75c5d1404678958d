//! Benchmark of task tracking under the API's fair use (issue 9): N concurrent reinstalls
//! tracked to the end with the default request budget (60 requests/minute), on the
//! simulator's scaled clock. Everything is expressed in simulated time: the budget and the
//! tracking intervals are scaled by the same factor as the simulator's clock, so the figures
//! are what a real fleet would see.
//!
//! Run: `cargo run --release --example bench_tracking [-- SERVERS SPEED]` (default 100 60).
//! Prints: polls per install, requests per simulated minute during tracking (peak over any
//! simulated minute and mean), and the delay between each task's end (simulator) and the
//! moment apply noticed it. Figures go to docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ovhform::apply::{self, ApplyContext, ApplyEvent, Approvals, Limits, TrackingConfig};
use ovhform::pipeline::{self, Context, NoProgress};
use ovhform::plan::{ActionKind, PlanInput};
use ovhform::sim::{self, SimConfig};
use ovhform::state::{MemoryFacts, MemoryStore};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let speed: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60.0);

    // N servers on Debian 11 whose manifests want Debian 12: N reinstalls.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet_yaml = String::from("servers:\n");
    let mut manifests = String::new();
    for i in 0..n {
        let name = format!("ns{:07}.ip-10-9-{}.eu", 9_000_000 + i, i % 200);
        fleet_yaml.push_str(&format!(
            "  - {{name: {name}, os: debian11_64, monitoring: true}}\n"
        ));
        manifests.push_str(&format!(
            "---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  install:\n    os: debian12_64\n    customizations: {{hostname: node-{i}}}\n"
        ));
    }
    std::fs::write(dir.path().join("fleet.yaml"), &manifests).expect("write");
    let desired = ovhform::manifest::load(&[dir.path().join("fleet.yaml")])
        .expect("manifests")
        .desired;
    let fleet = sim::fleet::parse(
        &fleet_yaml,
        Path::new("fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("fleet");
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
    cfg.requests_per_minute = (60.0 * speed) as u32;
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
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    handle.reset_calls();
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
            if let ApplyEvent::ActionDone {
                server,
                action: ActionKind::Reinstall,
            } = e
            {
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
    // The last sample is a partial minute.
    let peak = per_minute
        .iter()
        .take(per_minute.len().saturating_sub(1))
        .max()
        .copied()
        .unwrap_or(0);
    println!("peak requests in one simulated minute: {peak}");
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
