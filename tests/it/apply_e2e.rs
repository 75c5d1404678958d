//! `apply` end to end against the simulator (library API; the CLI has its own tests): the
//! example fleet is planned, applied with the approvals it needs, and planned again — all
//! `noop`; a wipe without approval does not happen; policy `never` and windows block; a saved
//! plan whose server moved behind it skips that server; a manifest changed since the plan
//! refuses that server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ovhform::apply::{self, ApplyContext, ApplyEvent, Approvals, Limits, Outcome, TrackingConfig};
use ovhform::model::Desired;
use ovhform::ovh::Client;
use ovhform::pipeline::{self, Context, NoProgress, Planned};
use ovhform::plan::{ActionKind, PlanInput};
use ovhform::sim::{self, SimConfig, SimHandle};
use ovhform::state::{MemoryFacts, MemoryStore, RecordStore};

use crate::sim_support::start;

const REINSTALL: &str = "POST /dedicated/server/{serviceName}/reinstall";
const WEB2: &str = "ns3000002.ip-51-68-1.eu";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn desired() -> Desired {
    ovhform::manifest::load(&[repo().join("manifests")])
        .expect("example manifests load")
        .desired
}

/// The demo fleet on a fast clock: a 15-minute install takes about a second.
async fn demo_sim() -> SimHandle {
    let text = std::fs::read_to_string(repo().join("demo/fleet.yaml")).unwrap();
    let fleet = sim::fleet::parse(
        &text,
        Path::new("demo/fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .unwrap();
    start(SimConfig {
        fleet,
        speed: 1000.0,
        ..SimConfig::for_tests()
    })
    .await
}

pub fn fast_tracking() -> TrackingConfig {
    TrackingConfig {
        min_poll: Duration::from_millis(50),
        max_poll: Duration::from_millis(200),
        fresh_window: Duration::from_secs(2),
        typical_install: Duration::from_secs(1),
        purge_horizon: Duration::from_secs(30),
        post_deadline: Duration::from_secs(1),
        post_lag: Duration::from_secs(1),
        stall_after: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
    }
}

async fn plan(client: &Client, store: &dyn RecordStore, desired: Desired) -> Planned {
    let facts = MemoryFacts::default();
    let ctx = Context {
        client,
        store,
        facts: &facts,
        facts_ttl: Duration::ZERO,
        progress: &NoProgress,
        input: PlanInput::new(jiff::Timestamp::now()),
    };
    pipeline::run(desired, &ctx).await.expect("plan")
}

async fn run_apply(
    client: &Client,
    store: &dyn RecordStore,
    planned: &Planned,
    approvals: Approvals,
) -> (apply::ApplyReport, Vec<ApplyEvent>) {
    let ctx = ApplyContext {
        client,
        store,
        desired: &planned.desired,
        fleet: planned.plan.fleet.clone(),
        fleet_key: None,
        approvals,
        limits: Limits::default(),
        tracking: fast_tracking(),
        plan_id: None,
        clock: Arc::new(jiff::Timestamp::now),
        halt: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let report = apply::apply(&planned.plan, &ctx, &tx).await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (report, events)
}

fn all_approved() -> Approvals {
    Approvals {
        allow_wipe_all: true,
        // The web group's window is weekday nights: ignore it for the servers it holds.
        ignore_window: ["ns3000001.ip-51-68-1.eu", WEB2, "ns3000003.ip-51-68-1.eu"]
            .into_iter()
            .map(String::from)
            .collect(),
        ..Approvals::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_the_example_fleet_converges_and_a_second_plan_is_all_noop() {
    let sim = demo_sim().await;
    let client = sim::client_for(&sim).unwrap();
    let store = MemoryStore::default();
    let first = plan(&client, &store, desired()).await;
    assert!(first.plan.has_changes());
    let (report, events) = run_apply(&client, &store, &first, all_approved()).await;
    assert!(!report.failed(), "{report:#?}");
    assert_eq!(report.servers[WEB2], Outcome::Converged, "{report:#?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ApplyEvent::InstallProgress { server, .. } if server == WEB2)),
        "install progress was reported"
    );
    assert_eq!(sim.calls().get(REINSTALL).copied(), Some(1));

    let second = plan(&client, &store, desired()).await;
    let busy: Vec<(&String, Vec<ActionKind>)> = second
        .plan
        .servers
        .iter()
        .map(|(n, s)| (n, s.actions.iter().map(|a| a.kind()).collect::<Vec<_>>()))
        .filter(|(_, k)| k.iter().any(|k| *k != ActionKind::Noop))
        .collect();
    assert!(busy.is_empty(), "second plan: {busy:?}");
    assert!(!second.plan.has_changes());
    // Records were mirrored into tags: a plan without the store knows them too.
    let third = plan(&client, &MemoryStore::default(), desired()).await;
    assert!(!third.plan.has_changes(), "{:#?}", third.plan.summary());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_without_approval_does_not_happen() {
    let sim = demo_sim().await;
    let client = sim::client_for(&sim).unwrap();
    let store = MemoryStore::default();
    let first = plan(&client, &store, desired()).await;
    let approvals = Approvals {
        ignore_window: all_approved().ignore_window,
        ..Approvals::default()
    };
    let (report, _) = run_apply(&client, &store, &first, approvals).await;
    assert_eq!(
        report.servers[WEB2],
        Outcome::PendingApproval,
        "{report:#?}"
    );
    assert_eq!(sim.calls().get(REINSTALL).copied().unwrap_or(0), 0);
    // Outside the window, even approved, a deferred wipe waits unless the window is ignored.
    let only_wipe = Approvals {
        allow_wipe: BTreeSet::from([WEB2.to_string()]),
        ..Approvals::default()
    };
    let (report, _) = run_apply(&client, &store, &first, only_wipe).await;
    if first.plan.servers[WEB2].actions[0]
        .deferred_wipe()
        .is_some()
    {
        assert!(
            matches!(report.servers[WEB2], Outcome::Blocked(_)),
            "{report:#?}"
        );
        assert_eq!(sim.calls().get(REINSTALL).copied().unwrap_or(0), 0);
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_changed_since_the_plan_refuses_that_server_and_the_rest_proceeds() {
    let sim = demo_sim().await;
    let client = sim::client_for(&sim).unwrap();
    let store = MemoryStore::default();
    let mut first = plan(&client, &store, desired()).await;
    // The manifests change between plan and apply: another hostname for web-02.
    let spec = first
        .desired
        .servers
        .get_mut(WEB2)
        .unwrap()
        .install
        .as_mut()
        .unwrap();
    spec.request["customizations"]["hostname"] = "changed-after-review".into();
    spec.fingerprint = ovhform::manifest::fingerprint(&spec.request, &spec.secret_paths);
    let (report, _) = run_apply(&client, &store, &first, all_approved()).await;
    match &report.servers[WEB2] {
        Outcome::Skipped(why) => assert!(why.contains("manifest changed since the plan"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.calls().get(REINSTALL).copied().unwrap_or(0), 0);
    assert_eq!(
        report.servers["ns3000001.ip-51-68-1.eu"],
        Outcome::Converged,
        "{report:#?}"
    );
    sim.shutdown().await;
}

/// Under injected faults (10 % 5xx, 5 % 429, resets, purged tasks, fresh-task 404s), a
/// 50-server apply converges — attempts repeated as a caller (the CLI user, the daemon)
/// would — with exactly one reinstall task per approved server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_servers_converge_under_faults_with_one_reinstall_each() {
    const N: usize = 50;
    let (desired, fleet) =
        crate::pipeline::fixture_with(N, |_| "os: debian11_64, monitoring: true".into());
    let sim = start(SimConfig {
        fleet,
        speed: 1000.0,
        faults: ovhform::sim::Faults {
            error_5xx_rate: 0.10,
            rate_429: 0.05,
            reset_rate: 0.02,
            // Simulated time: ~25 real seconds at this speed; tasks older than that vanish.
            purge_tasks_after: Some(Duration::from_secs(7 * 24 * 3600)),
            fresh_task_404: 3,
            ..Default::default()
        },
        seed: 7,
        ..SimConfig::for_tests()
    })
    .await;
    let mut cfg = sim::client_config(&sim).unwrap();
    cfg.retry_min_delay = Duration::from_millis(5);
    cfg.retry_max_delay = Duration::from_millis(50);
    let client = Client::new(cfg).unwrap();
    let store = MemoryStore::default();
    let approvals = Approvals {
        allow_wipe_all: true,
        ..Approvals::default()
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 15, "did not converge in 15 attempts");
        let facts = MemoryFacts::default();
        let pctx = Context {
            client: &client,
            store: &store,
            facts: &facts,
            facts_ttl: Duration::ZERO,
            progress: &NoProgress,
            input: PlanInput::new(jiff::Timestamp::now()),
        };
        // A plan can fail outright under faults (a read that failed every retry): try again.
        let Ok(planned) = pipeline::run(desired.clone(), &pctx).await else {
            continue;
        };
        if !planned.plan.has_changes() && store.intents().await.unwrap().is_empty() {
            break;
        }
        let _ = run_apply(&client, &store, &planned, approvals.clone()).await;
    }
    // Every POST that reached the API (faults answer before it) created a task: one each.
    assert_eq!(sim.calls().get(REINSTALL).copied(), Some(N as u64));
    {
        let world = sim.world();
        for (name, server) in &world.servers {
            let reinstalls = server
                .tasks
                .values()
                .filter(|t| t.function == "reinstallServer")
                .count();
            assert_eq!(reinstalls, 1, "{name}: {reinstalls} reinstall tasks");
            assert_eq!(server.os, "debian12_64", "{name}");
        }
    }
    assert!(store.intents().await.unwrap().is_empty());
    eprintln!("converged after {attempts} attempts");
    sim.shutdown().await;
}

/// Adopting 1,000 matching servers, then planning again: all `noop`, ≤ 40 calls — with the
/// state store, and without it (the records read back from the tags apply wrote). (Wall
/// times at 30 ms latency are measured in docs/benchmarks.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_1000_servers_then_planning_again_is_all_noop_within_40_calls() {
    const N: usize = 1000;
    let (desired, fleet) =
        crate::pipeline::fixture_with(N, |_| "os: debian12_64, monitoring: true".into());
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let client = sim::client_for(&sim).unwrap();
    let store = MemoryStore::default();
    let first = plan(&client, &store, desired.clone()).await;
    assert_eq!(first.plan.summary().adopt, N);
    let (report, _) = run_apply(&client, &store, &first, Approvals::default()).await;
    assert_eq!(report.count(|o| *o == Outcome::Converged), N, "{report:#?}");
    assert_eq!(store.load().await.unwrap().installs.len(), N);

    sim.set_faults(ovhform::sim::Faults {
        latency: Some(Duration::from_millis(30)),
        ..Default::default()
    });
    for (label, records) in [
        ("with the store", &store),
        ("from tags only", &MemoryStore::default()),
    ] {
        sim.reset_calls();
        let again = plan(&client, records, desired.clone()).await;
        assert!(
            !again.plan.has_changes(),
            "{label}: {:?}",
            again.plan.summary()
        );
        assert!(
            again.stats.calls <= 40,
            "{label}: {} calls",
            again.stats.calls
        );
    }
    sim.shutdown().await;
}
