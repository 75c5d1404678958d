//! Where the real API may answer differently from the published schema, through the whole
//! plan pipeline against the simulator's switches (docs/operations.md "Simulator"): the
//! `iamTags` filter refused, expanded listings served from a stale cache, batch GETs answered
//! 403, servers the key may not read, odd data for one server, and fresh tasks that answer 404
//! (issue 8, "The client against the real API" and "Facts the planner gets wrong today").
//! Each switch on, the plan is the one the switch off gives, and the client took its fallback.

use std::collections::BTreeMap;

use ovhform::model::{DEFAULT_FLEET, Desired, InstallRecord, TaskStatus};
use ovhform::ovh::{Client, Mode};
use ovhform::pipeline::{self, FleetStep, NoProgress, PipelineError, Planned};
use ovhform::plan::{ActionKind, Blocker, PlanInput};
use ovhform::sim::{self, Faults, Modes, SimConfig, SimHandle};
use ovhform::state::facts::DEFAULT_FACTS_TTL;
use ovhform::state::{MemoryFacts, MemoryStore, RecordStore};
use serde_json::json;

use crate::pipeline::{fixture_with, kind_of};
use crate::sim_support::{Api, start};

const SERVER_ROUTE: &str = "GET /dedicated/server/{serviceName}";
const LISTING_ROUTE: &str = "GET /dedicated/server";
const TEMPLATE_ROUTE: &str = "GET /dedicated/installationTemplate/{templateName}";

fn client(sim: &SimHandle) -> Client {
    sim::client_for(sim).expect("client")
}

fn names(desired: &Desired) -> Vec<String> {
    desired.servers.keys().cloned().collect()
}

fn kinds(planned: &Planned, server: &str) -> Vec<ActionKind> {
    planned.plan.servers[server]
        .actions
        .iter()
        .map(kind_of)
        .collect()
}

/// A record as apply would have written it, for `server` running `os`.
fn record(server: &str, os: &str) -> InstallRecord {
    InstallRecord {
        server: server.into(),
        fleet: DEFAULT_FLEET.into(),
        algorithm: 2,
        fingerprint: format!("sha256:{}", "ab".repeat(32)),
        os: os.into(),
        generation: 1,
        revision: None,
        task_id: None,
        started: None,
        finished: None,
        secrets: None,
        request: None,
    }
}

/// A server of the simulated account besides the manifests' (a fleet-file entry).
fn extra_server(name: &str, os: &str) -> sim::Server {
    sim::fleet::parse(
        &format!("servers:\n  - {{name: {name}, os: {os}}}\n"),
        std::path::Path::new("extra.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("extra server parses")
    .remove(0)
}

/// Nothing but a blocked action (or none to take): the planner acts on nothing.
fn acts_on_nothing(planned: &Planned, server: &str) -> bool {
    kinds(planned, server)
        .iter()
        .all(|k| matches!(k, ActionKind::Blocked | ActionKind::Noop | ActionKind::Wait))
}

/// The planner blocked something on the server because of an anomaly (`observed-anomaly`).
fn has_anomaly(planned: &Planned, server: &str) -> bool {
    planned.plan.servers[server].actions.iter().any(|a| {
        a.blockers()
            .iter()
            .any(|b| matches!(b, Blocker::ObservedAnomaly { .. }))
    })
}

/// A plan of `desired` at `now` (plans made at the same `now` compare equal, adopt records
/// included).
async fn plan_at(
    client: &Client,
    store: &dyn RecordStore,
    desired: Desired,
    now: jiff::Timestamp,
) -> Planned {
    let facts = MemoryFacts::default();
    let ctx = pipeline::Context {
        client,
        store,
        facts: &facts,
        facts_ttl: DEFAULT_FACTS_TTL,
        progress: &NoProgress,
        input: PlanInput::new(now),
    };
    pipeline::run(desired, &ctx).await.expect("plan")
}

/// Item 1: the `iamTags` filter refused (400). The tagged servers come from the account's
/// listing, which the fleet pass then reuses: the same plan, the same number of requests, and
/// the filter is not tried again by the same client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_iam_tags_filter_the_listing_finds_the_same_tagged_servers() {
    let now = jiff::Timestamp::now();
    let (desired, mut fleet) = fixture_with(3, |i| {
        if i == 2 {
            "os: debian11_64, monitoring: true".to_string()
        } else {
            "os: debian12_64, monitoring: true".to_string()
        }
    });
    // Two servers ovhform recorded whose manifests are gone: one known by its tags only (found
    // only if the tagged listing finds it), one by the store only (its tag not yet visible in
    // v1: the store is believed whatever the listing shows).
    let tagged_only = "ns7100000.ip-10-7-0.eu";
    let stored_only = "ns7100001.ip-10-7-1.eu";
    let mut orphan = extra_server(tagged_only, "debian12_64");
    orphan.tags = ovhform::state::record_to_tags(&record(tagged_only, "debian12_64")).unwrap();
    fleet.push(orphan);
    fleet.push(extra_server(stored_only, "debian12_64"));
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let store = MemoryStore::default();
    store
        .put_install(&record(stored_only, "debian12_64"))
        .await
        .unwrap();

    sim.reset_calls();
    let with_filter = plan_at(&client(&sim), &store, desired.clone(), now).await;
    let calls_with_filter = sim.calls();

    sim.set_modes(Modes {
        iam_tags_filter: false,
        ..sim.modes()
    });
    let fallback_client = client(&sim);
    sim.reset_calls();
    let without_filter = plan_at(&fallback_client, &store, desired.clone(), now).await;

    assert_eq!(without_filter.plan.servers, with_filter.plan.servers);
    assert_eq!(kinds(&with_filter, tagged_only), [ActionKind::Forget]);
    assert_eq!(kinds(&with_filter, stored_only), [ActionKind::Forget]);
    assert!(fallback_client.fallbacks().contains(&Mode::IamTagsFilter));
    // The refused filter, then the one listing the fleet pass would have read anyway.
    assert_eq!(sim.calls(), calls_with_filter, "no extra listing");
    assert_eq!(sim.calls().get(LISTING_ROUTE), Some(&2));
    // Remembered: the next plan of this client does not try the filter again.
    sim.reset_calls();
    let again = plan_at(&fallback_client, &store, desired, now).await;
    assert_eq!(again.plan.servers, with_filter.plan.servers);
    assert_eq!(sim.calls().get(LISTING_ROUTE), Some(&1));
    sim.shutdown().await;
}

/// Item 2: expanded listings served from a cache that predates a change. ovhform asks for a
/// fresh one (`Pragma: no-cache`), so the plan sees the change exactly as without the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_listing_cache_does_not_hide_a_change_from_the_plan() {
    let now = jiff::Timestamp::now();
    let (desired, fleet) = fixture_with(2, |_| "os: debian12_64, monitoring: true".into());
    let sim = start(SimConfig {
        fleet,
        stale_listing: true,
        ..SimConfig::for_tests()
    })
    .await;
    let changed = names(&desired)[0].clone();
    // Behind ovhform's back: another OS installed and monitoring turned off.
    sim.update_server(&changed, |s| {
        s.os = "debian11_64".into();
        s.monitoring = false;
    });
    // The cache is there to be missed: a listing that does not ask for a fresh one.
    let mut api = Api::new(&sim);
    let cached = api
        .send(
            reqwest::Method::GET,
            "/1.0/dedicated/server",
            None,
            &[("X-Pagination-Mode", "CachedObjectList-Pages")],
            true,
        )
        .await;
    let shown = cached
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == changed.as_str())
        .unwrap()
        .clone();
    assert_eq!(shown["os"], "debian12_64", "stale: {shown}");

    let through_cache = plan_at(&client(&sim), &MemoryStore::default(), desired.clone(), now).await;
    sim.set_modes(Modes {
        stale_listing: false,
        ..sim.modes()
    });
    let fresh = plan_at(&client(&sim), &MemoryStore::default(), desired, now).await;
    assert_eq!(through_cache.plan.servers, fresh.plan.servers);
    assert_eq!(through_cache.observed.servers[&changed].os, "debian11_64");
    assert_eq!(
        kinds(&through_cache, &changed),
        [ActionKind::Reinstall, ActionKind::UpdateSettings]
    );
    sim.shutdown().await;
}

/// Item 3: batch GETs answered 403 (per-server access rules). The client reads object by
/// object, remembers it, and plans what it would have planned with batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_gets_answered_403_fall_back_to_per_object_gets_with_the_same_plan() {
    let now = jiff::Timestamp::now();
    let (desired, fleet) = fixture_with(3, |i| {
        match i {
            0 => "os: debian12_64, monitoring: true, boot: rescue-customer",
            1 => "os: debian11_64, monitoring: true",
            _ => "os: debian12_64, monitoring: true",
        }
        .to_string()
    });
    // Without the expanded listing, the servers themselves are read by batch.
    let sim = start(SimConfig {
        fleet,
        expanded_listing: false,
        ..SimConfig::for_tests()
    })
    .await;
    sim.reset_calls();
    let with_batch = plan_at(&client(&sim), &MemoryStore::default(), desired.clone(), now).await;
    assert_eq!(sim.calls().get(SERVER_ROUTE), Some(&1), "one batch of 3");

    sim.set_modes(Modes {
        batch_forbidden: true,
        ..sim.modes()
    });
    let fallback_client = client(&sim);
    sim.reset_calls();
    let without_batch = plan_at(&fallback_client, &MemoryStore::default(), desired, now).await;
    assert_eq!(without_batch.plan.servers, with_batch.plan.servers);
    assert!(fallback_client.fallbacks().contains(&Mode::Batch));
    assert_eq!(
        sim.calls().get(SERVER_ROUTE),
        Some(&4),
        "the refused batch, then one GET per server"
    );
    sim.shutdown().await;
}

/// Item 3 and 6: a server the key may not read (403 on its own routes). Listed, it gets an
/// anomaly when its detail is refused; read by batch, the batch falls back and the server's
/// own 403 becomes its anomaly. The other servers are planned as without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_key_may_not_read_is_an_anomaly_not_an_aborted_plan() {
    let now = jiff::Timestamp::now();
    for expanded_listing in [true, false] {
        let (desired, fleet) = fixture_with(3, |i| {
            if i == 0 {
                "os: debian12_64, monitoring: true".to_string()
            } else {
                "os: debian11_64, monitoring: true".to_string()
            }
        });
        let sim = start(SimConfig {
            fleet,
            expanded_listing,
            ..SimConfig::for_tests()
        })
        .await;
        let names = names(&desired);
        let before = plan_at(&client(&sim), &MemoryStore::default(), desired.clone(), now).await;
        sim.update_server(&names[2], |s| s.access_denied = true);
        let after = plan_at(&client(&sim), &MemoryStore::default(), desired, now).await;

        assert!(
            has_anomaly(&after, &names[2]),
            "expanded {expanded_listing}"
        );
        assert!(
            acts_on_nothing(&after, &names[2]),
            "{:?}",
            kinds(&after, &names[2])
        );
        for n in &names[..2] {
            assert_eq!(after.plan.servers[n], before.plan.servers[n], "{n}");
            assert!(!has_anomaly(&after, n));
        }
        let message = &after.observed.servers[&names[2]].anomalies[0];
        assert!(message.contains("HTTP 403"), "{message}");
        sim.shutdown().await;
    }
}

/// A key that may read no server at all is a credentials problem: the plan fails with the
/// API's 403 instead of showing a fleet of anomalies as "no changes".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_key_may_read_no_server_the_plan_fails_with_the_403() {
    let now = jiff::Timestamp::now();
    let (desired, fleet) = fixture_with(2, |_| "os: debian12_64, monitoring: true".into());
    let sim = start(SimConfig {
        fleet,
        expanded_listing: false,
        ..SimConfig::for_tests()
    })
    .await;
    for n in names(&desired) {
        sim.update_server(&n, |s| s.access_denied = true);
    }
    let store = MemoryStore::default();
    let facts = MemoryFacts::default();
    let client = client(&sim);
    let ctx = pipeline::Context {
        client: &client,
        store: &store,
        facts: &facts,
        facts_ttl: DEFAULT_FACTS_TTL,
        progress: &NoProgress,
        input: PlanInput::new(now),
    };
    let err = pipeline::run(desired, &ctx)
        .await
        .expect_err("no server readable");
    assert!(
        matches!(
            err,
            PipelineError::Observe {
                step: FleetStep::Servers { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.api_error().and_then(|e| e.status()), Some(403));
    sim.shutdown().await;
}

/// Item 6: one odd server never aborts the fleet's plan. Each gets an anomaly (an
/// `observed-anomaly` blocker, nothing done to it); the others are planned as usual, and an
/// odd `os` never reaches a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_servers_get_anomalies_and_the_rest_of_the_fleet_is_planned() {
    let now = jiff::Timestamp::now();
    // 0 is ordinary; 1-4 run Debian 11 (a reinstall: their detail is read).
    let (desired, fleet) = fixture_with(7, |i| {
        if (1..=4).contains(&i) {
            "os: debian11_64, monitoring: true".to_string()
        } else {
            "os: debian12_64, monitoring: true".to_string()
        }
    });
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let n = names(&desired);
    // 1: its current boot has a bootType this ovhform does not know.
    sim.update_server(&n[1], |s| {
        s.boots.push(sim::world::Boot {
            id: 987_654,
            boot_type: "quantum".into(),
            kernel: "qboot".into(),
            description: "Quantum boot".into(),
        });
        s.boot_id = Some(987_654);
    });
    // 2: a reinstall task in its history whose start date is not a date.
    let task = sim.create_task(&n[2], "reinstallServer").unwrap();
    sim.advance(std::time::Duration::from_secs(3600));
    sim.update_server(&n[2], |s| {
        let t = s.tasks.get_mut(&task).unwrap();
        t.raw.insert("startDate".into(), json!("yesterday"));
    });
    // 3: a disk size in an unknown unit; 4: a disk group without id.
    sim.update_server(&n[3], |s| {
        s.raw_hardware.insert(
            "diskGroups".into(),
            json!([{"defaultHardwareRaidSize": null, "defaultHardwareRaidType": null, "description": "?",
                    "diskGroupId": 1, "diskSize": {"unit": "parsec", "value": 2}, "diskType": "SSD",
                    "numberOfDisks": 2, "raidController": null}]),
        );
    });
    sim.update_server(&n[4], |s| {
        s.raw_hardware.insert(
            "diskGroups".into(),
            json!([{"defaultHardwareRaidSize": null, "defaultHardwareRaidType": null, "description": "?",
                    "diskGroupId": null, "diskSize": {"unit": "GB", "value": 480}, "diskType": "SSD",
                    "numberOfDisks": 2, "raidController": null}]),
        );
    });
    // 5: an OS that is a route; 6: no OS at all.
    sim.update_server(&n[5], |s| s.os = "../../me".into());
    sim.update_server(&n[6], |s| s.os = String::new());
    sim.reset_calls();

    let planned = plan_at(&client(&sim), &MemoryStore::default(), desired, now).await;

    assert_eq!(kinds(&planned, &n[0]), [ActionKind::Adopt]);
    assert!(!has_anomaly(&planned, &n[0]));
    let expect = [
        "unknown bootType \"quantum\"",
        "unreadable startDate \"yesterday\"",
        "unknown unit \"parsec\"",
        "no diskGroupId",
        "\"../../me\" is not an installation template name",
        "`os` is empty",
    ];
    for (server, what) in n[1..].iter().zip(expect) {
        assert!(has_anomaly(&planned, server), "{server}");
        assert!(
            acts_on_nothing(&planned, server),
            "{server}: {:?}",
            kinds(&planned, server)
        );
        let anomalies = &planned.observed.servers[server].anomalies;
        assert!(
            anomalies.iter().any(|a| a.contains(what)),
            "{server}: {anomalies:?}"
        );
    }
    // The odd OS was never asked for: Debian 11 and 12 only.
    assert_eq!(sim.calls().get(TEMPLATE_ROUTE), Some(&2));
    assert!(!planned.observed.templates.contains_key("../../me"));
    sim.shutdown().await;
}

/// Issue 8, "seen": a `reinstallServer` task in `init` answering 404 produced a second
/// reinstall under the wipe banner. A listed task that answers 404 may be running: `wait`.
/// Through the expanded task listing (which leaves the unreadable task out but counts it) and
/// through the filtered id lists (which say it is a `reinstallServer`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_fresh_reinstall_task_answering_404_waits_end_to_end() {
    let now = jiff::Timestamp::now();
    for (economy, function) in [(true, "unknown"), (false, "reinstallServer")] {
        // Two servers, so that without the economy modes the client learns that batch GETs
        // are ignored and reads tasks through the filtered lists.
        let (desired, fleet) = fixture_with(2, |_| "os: debian11_64, monitoring: true".into());
        let sim = start(SimConfig {
            fleet,
            expanded_listing: economy,
            batch: economy,
            ..SimConfig::for_tests()
        })
        .await;
        let name = names(&desired)[0].clone();
        let before = plan_at(&client(&sim), &MemoryStore::default(), desired.clone(), now).await;
        assert_eq!(
            kinds(&before, &name),
            [ActionKind::Reinstall],
            "the wipe a 404 would repeat"
        );

        sim.set_faults(Faults {
            fresh_task_404: 100,
            ..Faults::default()
        });
        let task = sim.create_task(&name, "reinstallServer").unwrap();
        let planned = plan_at(&client(&sim), &MemoryStore::default(), desired, now).await;

        assert_eq!(
            kinds(&planned, &name),
            [ActionKind::Wait],
            "economy {economy}"
        );
        let tasks = &planned.observed.servers[&name]
            .detail
            .as_ref()
            .unwrap()
            .tasks;
        let t = tasks
            .iter()
            .find(|t| t.id == task)
            .expect("the task is kept");
        assert_eq!(
            (t.status, t.function.as_str()),
            (TaskStatus::Unreadable, function)
        );
        assert!(
            sim.world().servers[&name].tasks[&task].transient_404 < 100,
            "its GET was tried and answered 404"
        );
        sim.shutdown().await;
    }
}

/// Issue 8, "seen": a `hardReboot` in `init` answering 404 got a `set-boot`. A listed task that
/// answers 404 may be running: `wait`, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_fresh_reboot_answering_404_gets_no_set_boot_end_to_end() {
    let now = jiff::Timestamp::now();
    let (desired, fleet) = fixture_with(1, |_| {
        "os: debian12_64, monitoring: true, boot: rescue-customer".into()
    });
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let name = names(&desired)[0].clone();
    let before = plan_at(&client(&sim), &MemoryStore::default(), desired.clone(), now).await;
    assert_eq!(
        kinds(&before, &name),
        [ActionKind::Adopt, ActionKind::SetBoot]
    );

    sim.set_faults(Faults {
        fresh_task_404: 100,
        ..Faults::default()
    });
    let task = sim.create_task(&name, "hardReboot").unwrap();
    let planned = plan_at(&client(&sim), &MemoryStore::default(), desired, now).await;

    assert_eq!(kinds(&planned, &name), [ActionKind::Wait]);
    let tasks = &planned.observed.servers[&name]
        .detail
        .as_ref()
        .unwrap()
        .tasks;
    assert_eq!(
        tasks
            .iter()
            .map(|t| (t.id, t.status))
            .collect::<BTreeMap<_, _>>(),
        BTreeMap::from([(task, TaskStatus::Unreadable)])
    );
    sim.shutdown().await;
}
