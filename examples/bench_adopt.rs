//! Benchmark of the second plan after adopting a fleet (issue 9): 1,000 servers that already
//! run what their manifests ask are adopted by `apply` (a baseline record each, in the state
//! directory and in the servers' tags), then planned again at 30 ms of API latency, at the
//! default request budget (60 requests/minute) — once with the state directory, once without
//! it (records from the tags, as a CI job with a read-only key plans). Prints calls and wall
//! time of each re-plan. Figures go to docs/benchmarks.md.
//!
//! Run: `cargo run --release --example bench_adopt [-- SERVERS]` (default 1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ovhform::apply::{self, ApplyContext, Approvals, Limits, TrackingConfig};
use ovhform::model::Desired;
use ovhform::ovh::Client;
use ovhform::pipeline::{self, Context, NoProgress, Planned};
use ovhform::plan::PlanInput;
use ovhform::sim::{self, Faults, SimConfig};
use ovhform::state::{FileStore, MemoryFacts, MemoryStore, RecordStore};

async fn plan(client: &Client, store: &dyn RecordStore, desired: Desired) -> (Planned, Duration) {
    let facts = MemoryFacts::default();
    let t0 = Instant::now();
    let planned = pipeline::run(
        desired,
        &Context {
            client,
            store,
            facts: &facts,
            facts_ttl: Duration::ZERO,
            progress: &NoProgress,
            input: PlanInput::new(jiff::Timestamp::now()),
        },
    )
    .await
    .expect("plan");
    (planned, t0.elapsed())
}

#[path = "common/fleet.rs"]
mod fleet;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let (dir, desired, fleet) = fleet::generate(
        n,
        8_000_000,
        "debian12_64",
        "  boot: {mode: disk}\n  settings: {monitoring: true}\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let handle = sim::spawn(
        listener,
        SimConfig {
            fleet,
            hooks: true,
            ..SimConfig::default()
        },
    );
    // Adopting is not what is measured: no budget, no latency.
    let fast = sim::client_for(&handle).expect("client");
    let state_dir = dir.path().join("state");
    let store = FileStore::open_locked(&state_dir).expect("state dir");
    let (first, first_time) = plan(&fast, &store, desired.clone()).await;
    assert_eq!(first.plan.summary().adopt, n);
    let ctx = ApplyContext {
        client: &fast,
        store: &store,
        desired: &first.desired,
        fleet: first.plan.fleet.clone(),
        fleet_key: None,
        approvals: Approvals::default(),
        limits: Limits {
            servers: 64,
            reinstalls: 1,
        },
        tracking: TrackingConfig::default(),
        plan_id: None,
        clock: Arc::new(jiff::Timestamp::now),
        halt: None,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    drop(rx);
    let t0 = Instant::now();
    let report = apply::apply(&first.plan, &ctx, &tx).await;
    let adopt_time = t0.elapsed();
    assert!(!report.failed(), "{report:#?}");
    drop(store);
    println!(
        "servers: {n}; first plan {} calls in {:.2} s, adopt {:.2} s (no latency, no budget)",
        first.stats.calls,
        first_time.as_secs_f64(),
        adopt_time.as_secs_f64()
    );

    handle.set_faults(Faults {
        latency: Some(Duration::from_millis(30)),
        ..Faults::default()
    });
    for label in ["with the state dir", "without it (records from the tags)"] {
        // A new process each time: a fresh client (default budget, 60/min), nothing cached.
        let mut cfg = sim::client_config(&handle).expect("config");
        cfg.requests_per_minute = 60;
        let client = Client::new(cfg).expect("client");
        let file;
        let empty = MemoryStore::default();
        let records: &dyn RecordStore = if label.starts_with("with") {
            file = FileStore::open_read_only(&state_dir);
            &file
        } else {
            &empty
        };
        handle.reset_calls();
        let (again, took) = plan(&client, records, desired.clone()).await;
        let s = again.plan.summary();
        assert!(!again.plan.has_changes(), "{label}: {s:?}");
        println!(
            "re-plan {label}: {} servers, no changes, {} calls (simulator counted {}), {:.3} s at 30 ms latency and 60 requests/minute",
            s.servers,
            again.stats.calls,
            handle.total_calls(),
            took.as_secs_f64()
        );
    }
}
