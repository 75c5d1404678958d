//! The plan pipeline (`ovhform::pipeline::run`) against the simulator: the call economy of a
//! first plan (issue 7: 1,000 servers already running the desired OS, no records, ≤ 40 calls at
//! the default budget, with and without the expanded listing), the persisted facts cache
//! (a second plan reads no hardware or compatibility route within the TTL, and does again past
//! it), progress events, coverage and typed errors. Calls are counted by the run's own meter
//! and checked against the simulator's log.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ovhform::model::Desired;
use ovhform::ovh::{self, Client, ReqwestTransport};
use ovhform::pipeline::{
    self, Context, FleetStep, NoProgress, PipelineError, PipelineEvent, Planned, ProgressSink,
};
use ovhform::plan::{Action, ActionKind, PlanInput};
use ovhform::sim::{self, Faults, SimConfig, SimHandle};
use ovhform::state::facts::DEFAULT_FACTS_TTL;
use ovhform::state::{FactsCache, FileFacts, MemoryFacts, MemoryStore, RecordStore};

use crate::sim_support::start;

const HARDWARE: &str = "GET /dedicated/server/{serviceName}/specifications/hardware";
const COMPATIBLE: &str = "GET /dedicated/server/{serviceName}/install/compatibleTemplates";
const TEMPLATE: &str = "GET /dedicated/installationTemplate/{templateName}";

/// The kind of an action (one place to change when actions become an enum with `kind()`).
pub fn kind_of(a: &Action) -> ActionKind {
    a.kind()
}

/// A plan of `desired` with `store`'s records, in-memory facts and no progress.
pub async fn plan_with(client: &Client, store: &dyn RecordStore, desired: Desired) -> Planned {
    let facts = MemoryFacts::default();
    let ctx = Context {
        client,
        store,
        facts: &facts,
        facts_ttl: DEFAULT_FACTS_TTL,
        progress: &NoProgress,
        input: PlanInput::new(jiff::Timestamp::now()),
    };
    pipeline::run(desired, &ctx).await.expect("plan")
}

/// Every event, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<PipelineEvent>>);

impl ProgressSink for Recorder {
    fn event(&self, e: PipelineEvent) {
        self.0.lock().unwrap().push(e);
    }
}

/// `n` Server manifests (one file) and the matching simulator fleet: each server runs
/// `live_os`, boots from disk, has monitoring on; the manifests want debian12_64, a disk boot
/// and monitoring on. No tags: ovhform has no record of any of them.
fn fixture(n: usize, live_os: &str) -> (Desired, Vec<sim::Server>) {
    fixture_with(n, |_| format!("os: {live_os}, monitoring: true"))
}

/// [`fixture`] with the fleet-file fields of server `i` besides its name.
pub fn fixture_with(n: usize, live: impl Fn(usize) -> String) -> (Desired, Vec<sim::Server>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet_yaml = String::from("servers:\n");
    let mut manifests = String::new();
    for i in 0..n {
        let name = format!("ns{:07}.ip-10-7-{}.eu", 7_000_000 + i, i % 200);
        fleet_yaml.push_str(&format!("  - {{name: {name}, {}}}\n", live(i)));
        manifests.push_str(&format!(
            "---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  install:\n    os: debian12_64\n    customizations: {{hostname: node-{i}}}\n  boot: {{mode: disk}}\n  settings: {{monitoring: true}}\n"
        ));
    }
    std::fs::write(dir.path().join("fleet.yaml"), &manifests).expect("write manifests");
    let desired = ovhform::manifest::load(&[dir.path().join("fleet.yaml")])
        .expect("generated manifests load")
        .desired;
    assert_eq!(desired.servers.len(), n);
    let fleet = sim::fleet::parse(
        &fleet_yaml,
        Path::new("fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("fleet parses");
    (desired, fleet)
}

/// A client at the default request budget (60/min), set explicitly: the loopback default is
/// not the budget this is about.
fn budgeted_client(sim: &SimHandle) -> Client {
    let mut cfg = sim::client_config(sim).expect("config");
    cfg.requests_per_minute = 60;
    Client::new(cfg).expect("client")
}

async fn first_plan_of_1000(expanded_listing: bool, iam_tags_filter: bool) {
    const N: usize = 1000;
    let (desired, fleet) = fixture(N, "debian12_64");
    let sim = start(SimConfig {
        fleet,
        expanded_listing,
        iam_tags_filter,
        batch: true,
        faults: Faults {
            latency: Some(Duration::from_millis(30)),
            ..Faults::default()
        },
        ..SimConfig::for_tests()
    })
    .await;
    let client = budgeted_client(&sim);
    sim.reset_calls();

    let planned = plan_with(&client, &MemoryStore::default(), desired).await;

    assert_eq!(planned.plan.servers.len(), N);
    for sp in planned.plan.servers.values() {
        let kinds: Vec<ActionKind> = sp.actions.iter().map(kind_of).collect();
        assert_eq!(
            kinds,
            [ActionKind::Adopt],
            "{}: {:?}",
            sp.server,
            sp.actions
        );
    }
    let stats = &planned.stats;
    assert!(
        stats.calls <= 40,
        "expanded listing {expanded_listing}: {stats:?}"
    );
    assert_eq!(sim.total_calls(), stats.calls, "the simulator agrees");
    assert_eq!(sim.calls(), stats.routes, "route by route");
    assert_eq!(stats.detail_servers, 0);
    // The plan rests on the listing alone; apply re-checks each adopt before recording it.
    assert!(planned.coverage.detail_read.is_empty());
    assert_eq!(planned.coverage.not_read.len(), N);
    if !expanded_listing {
        assert!(client.fallbacks().contains(&ovh::Mode::ExpandedServers));
    }
    if !iam_tags_filter {
        assert!(client.fallbacks().contains(&ovh::Mode::IamTagsFilter));
        // The tagged servers came from the listing the fleet pass reads anyway.
        assert_eq!(
            stats.routes.get("GET /dedicated/server"),
            Some(&3),
            "{stats:?}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_plan_of_1000_running_servers_costs_at_most_40_calls() {
    first_plan_of_1000(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_plan_without_expanded_listing_costs_at_most_40_calls_with_batch_gets() {
    first_plan_of_1000(false, true).await;
}

/// Issue 8: a region without the `iamTags` filter (a 4xx) costs the refused call and nothing
/// more: the tagged servers come from the expanded listing (2 pages of 500) the fleet pass
/// takes its servers from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_plan_without_the_iam_tags_filter_costs_at_most_40_calls() {
    first_plan_of_1000(true, false).await;
}

/// A context over `facts` at `now`, recording events.
fn ctx<'a>(
    client: &'a Client,
    store: &'a MemoryStore,
    facts: &'a dyn FactsCache,
    progress: &'a Recorder,
    now: jiff::Timestamp,
) -> Context<'a> {
    Context {
        client,
        store,
        facts,
        facts_ttl: DEFAULT_FACTS_TTL,
        progress,
        input: PlanInput::new(now),
    }
}

/// A client whose wall clock (fetch times of facts, signatures) runs `ahead` of the machine's.
fn client_ahead(sim: &SimHandle, ahead: Duration) -> Client {
    let cfg = sim::client_config(sim).expect("config");
    let transport = ReqwestTransport::new(cfg.timeout).expect("transport");
    let ahead = ahead.as_secs() as i64;
    Client::with_transport_and_clock(
        cfg,
        Arc::new(transport),
        Arc::new(move || jiff::Timestamp::now().as_second() + ahead),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_plan_within_the_ttl_reads_no_hardware_or_compatibility_route() {
    const N: usize = 20;
    // Every server still runs Debian 11: a reinstall each, so each needs its detail every time.
    let (desired, fleet) = fixture(N, "debian11_64");
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let state_dir = tempfile::tempdir().expect("tempdir");
    let facts = FileFacts::in_state_dir(state_dir.path());
    let store = MemoryStore::default();
    let now = jiff::Timestamp::now();

    // First plan: reads everything, fills the file.
    let events = Recorder::default();
    let client = sim::client_for(&sim).expect("client");
    sim.reset_calls();
    let first = pipeline::run(desired.clone(), &ctx(&client, &store, &facts, &events, now))
        .await
        .expect("first plan");
    assert_eq!(first.stats.detail_servers, N);
    assert_eq!(first.stats.routes.get(HARDWARE), Some(&(N as u64)));
    assert_eq!(first.stats.routes.get(COMPATIBLE), Some(&(N as u64)));
    assert_eq!(
        first.stats.routes.get(TEMPLATE),
        Some(&2),
        "debian11 and 12"
    );
    assert_eq!(first.coverage.detail_read.len(), N);
    assert!(facts.path().is_file(), "the facts cache was written");
    for sp in first.plan.servers.values() {
        assert!(
            sp.actions
                .iter()
                .any(|a| kind_of(a) == ActionKind::Reinstall),
            "{}: {:?}",
            sp.server,
            sp.actions
        );
    }
    let events = events.0.into_inner().unwrap();
    assert_eq!(
        events[0],
        PipelineEvent::Observed {
            servers: N,
            calls: first.stats.fleet_calls
        }
    );
    match &events[1] {
        PipelineEvent::DetailStarted {
            servers,
            estimated_calls,
            eta,
        } => {
            // 5 per server, the netboots of the first parallel wave (8), 2 templates.
            assert_eq!((*servers, *estimated_calls), (N, 5 * N as u64 + 8 + 2));
            assert_eq!(*eta, Duration::ZERO, "no budget on this client");
        }
        other => panic!("expected DetailStarted, got {other:?}"),
    }
    let done: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            PipelineEvent::DetailProgress { done, total, .. } if *total == N => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(done, (1..=N).collect::<Vec<_>>());
    assert!(matches!(
        events.last(),
        Some(PipelineEvent::Planned {
            servers: N,
            detail_read: N,
            ..
        })
    ));

    // Second plan, a NEW client (nothing in memory): only the file can explain the saving.
    let events = Recorder::default();
    let client = sim::client_for(&sim).expect("client");
    sim.reset_calls();
    let later = now + jiff::SignedDuration::from_hours(1);
    let second = pipeline::run(
        desired.clone(),
        &ctx(&client, &store, &facts, &events, later),
    )
    .await
    .expect("second plan");
    for route in [HARDWARE, COMPATIBLE, TEMPLATE] {
        assert_eq!(
            second.stats.routes.get(route),
            None,
            "{route}: {:?}",
            second.stats
        );
        assert_eq!(sim.calls().get(route), None, "{route} (simulator's log)");
    }
    assert_eq!(second.stats.facts_cached, 2 * N + 2);
    assert_eq!(
        second.plan.servers, first.plan.servers,
        "same plan from cached facts"
    );
    assert!(events.0.into_inner().unwrap().iter().any(|e| matches!(
        e,
        PipelineEvent::DetailStarted { estimated_calls, .. } if *estimated_calls == 3 * N as u64 + 8
    )));

    // Past the TTL (a client and a `now` 25 hours on): read again.
    let ahead = Duration::from_secs(25 * 3600);
    let client = client_ahead(&sim, ahead);
    sim.reset_calls();
    let events = Recorder::default();
    let third = pipeline::run(
        desired,
        &ctx(
            &client,
            &store,
            &facts,
            &events,
            now + jiff::SignedDuration::from_hours(25),
        ),
    )
    .await
    .expect("third plan");
    assert_eq!(third.stats.routes.get(HARDWARE), Some(&(N as u64)));
    assert_eq!(third.stats.routes.get(COMPATIBLE), Some(&(N as u64)));
    assert_eq!(third.stats.facts_cached, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_unwritable_facts_cache_never_fails_a_plan() {
    let (desired, fleet) = fixture(3, "debian11_64");
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let state_dir = tempfile::tempdir().expect("tempdir");
    let facts = FileFacts::in_state_dir(state_dir.path());
    std::fs::create_dir_all(facts.path().parent().unwrap()).unwrap();
    std::fs::write(
        facts.path(),
        b"{\"formatVersion\": 1, \"hardware\": {\"x\": 7}}",
    )
    .unwrap();
    let store = MemoryStore::default();
    let client = sim::client_for(&sim).expect("client");
    let now = jiff::Timestamp::now();
    let planned = pipeline::run(
        desired.clone(),
        &ctx(&client, &store, &facts, &Recorder::default(), now),
    )
    .await
    .expect("a corrupt cache is ignored");
    assert_eq!(planned.stats.detail_servers, 3);
    // Rewritten with good facts.
    let reloaded = facts.load().expect("rewritten");
    assert_eq!(reloaded.hardware.len(), 3);

    // A cache path that cannot be written (its directory is a file): logged, not fatal.
    let blocked = tempfile::tempdir().expect("tempdir");
    std::fs::write(blocked.path().join("cache"), b"not a directory").unwrap();
    let facts = FileFacts::in_state_dir(blocked.path());
    pipeline::run(
        desired,
        &ctx(&client, &store, &facts, &Recorder::default(), now),
    )
    .await
    .expect("an unwritable cache is ignored");
    sim.shutdown().await;
}

/// Without a record, only a server whose OS, boot or settings differ is read in detail; the
/// coverage says which servers were planned from the listing alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_records_only_servers_with_a_difference_are_read_in_detail() {
    let (desired, fleet) = fixture_with(4, |i| {
        match i {
            0 => "os: debian12_64, monitoring: true, boot: rescue-customer",
            1 => "os: debian12_64, monitoring: false",
            2 => "os: debian11_64, monitoring: true",
            _ => "os: debian12_64, monitoring: true",
        }
        .to_string()
    });
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let client = sim::client_for(&sim).expect("client");
    let planned = plan_with(&client, &MemoryStore::default(), desired).await;
    let names: Vec<&String> = planned.plan.servers.keys().collect();
    let set = |idx: &[usize]| -> std::collections::BTreeSet<String> {
        idx.iter().map(|i| names[*i].clone()).collect()
    };
    assert_eq!(planned.coverage.detail_read, set(&[0, 1, 2]));
    assert_eq!(planned.coverage.not_read, set(&[3]));
    let kinds = |i: usize| -> Vec<ActionKind> {
        planned.plan.servers[names[i]]
            .actions
            .iter()
            .map(kind_of)
            .collect()
    };
    assert_eq!(kinds(0), [ActionKind::Adopt, ActionKind::SetBoot]);
    assert_eq!(kinds(1), [ActionKind::Adopt, ActionKind::UpdateSettings]);
    assert_eq!(kinds(2), [ActionKind::Reinstall]);
    assert_eq!(kinds(3), [ActionKind::Adopt]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_a_typed_observe_error() {
    let sim = start(SimConfig::for_tests()).await;
    let mut cfg = sim::client_config(&sim).expect("config");
    sim.shutdown().await;
    cfg.max_retries = 0;
    cfg.timeout = Duration::from_secs(2);
    let client = Client::new(cfg).expect("client");
    let store = MemoryStore::default();
    let facts = MemoryFacts::default();
    let err = pipeline::run(
        Desired::default(),
        &ctx(
            &client,
            &store,
            &facts,
            &Recorder::default(),
            jiff::Timestamp::now(),
        ),
    )
    .await
    .expect_err("nothing listens");
    assert!(
        matches!(
            err,
            PipelineError::Observe {
                step: FleetStep::TaggedServers,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.api_error().is_some());
    let help = miette::Diagnostic::help(&err).expect("help").to_string();
    assert!(help.contains("--endpoint"), "{help}");
}
