//! ovhform's own client and `observe` against the simulator: the API-call economy of the
//! fleet pass (issue 3: 1,000 servers with nothing running cost ≤ 40 calls) and the fallback
//! to plain per-object GETs when the API does not honour expanded listing or batch. Calls are
//! counted by a per-run [`Meter`], as the pipeline does.

use std::collections::BTreeSet;

use ovhform::observe::{observe_detail, observe_fleet};
use ovhform::ovh::{Client, Meter};
use ovhform::sim::{SimConfig, SimHandle};

use crate::sim_support::start;

/// A client for `sim` that counts into a fresh meter.
fn client_for(sim: &SimHandle) -> (Client, Meter) {
    let meter = Meter::new();
    let client = ovhform::sim::client_for(sim).expect("client builds");
    (client.metered(&meter), meter)
}

async fn generated(count: usize, expanded: bool, batch: bool) -> SimHandle {
    let mut config = SimConfig::for_tests().with_generated_fleet(count, 11);
    config.expanded_listing = expanded;
    config.batch = batch;
    start(config).await
}

fn all_names(sim: &SimHandle) -> BTreeSet<String> {
    sim.world().servers.keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observing_1000_idle_servers_costs_at_most_40_calls() {
    let sim = generated(1000, true, true).await;
    let names = all_names(&sim);
    assert_eq!(names.len(), 1000);
    let (client, meter) = client_for(&sim);
    sim.reset_calls();

    let observed = observe_fleet(&client, &names).await.expect("observe");

    assert_eq!(observed.servers.len(), 1000);
    assert!(
        meter.total() <= 40,
        "fleet pass cost {} calls",
        meter.total()
    );
    // The simulator's own count agrees with the meter's, route by route.
    assert_eq!(sim.total_calls(), meter.total());
    assert_eq!(sim.calls(), meter.routes());
    // Every non-disk boot was resolved to its type and kernel.
    for s in observed.servers.values() {
        if s.boot_id.is_some() {
            assert!(
                s.boot.is_some(),
                "{}: boot {:?} unresolved",
                s.name,
                s.boot_id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_expanded_listing_and_batch_the_fallback_reads_the_same_fleet() {
    let fast = generated(60, true, true).await;
    let slow = generated(60, false, false).await;
    let names = all_names(&fast);
    assert_eq!(names, all_names(&slow));

    let (fast_client, fast_meter) = client_for(&fast);
    let (slow_client, slow_meter) = client_for(&slow);
    let a = observe_fleet(&fast_client, &names)
        .await
        .expect("observe, modes on");
    let b = observe_fleet(&slow_client, &names)
        .await
        .expect("observe, modes off");

    assert_eq!(a.servers, b.servers, "same fleet, whatever the API honours");
    assert!(fast_meter.total() < 10, "modes on: {fast_meter:?}");
    // One GET per server at least, since every object must be fetched on its own.
    assert!(slow_meter.total() >= 60, "modes off: {slow_meter:?}");
    assert!(
        !slow_client.fallbacks().is_empty(),
        "the client noticed and fell back"
    );
    assert!(fast_client.fallbacks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_pass_reads_hardware_boots_and_catalog_of_the_named_servers_only() {
    let sim = generated(20, true, true).await;
    let names = all_names(&sim);
    let (client, meter) = client_for(&sim);
    let mut observed = observe_fleet(&client, &names).await.expect("observe");
    let fleet_calls = meter.total();
    let picked: BTreeSet<String> = names.iter().take(3).cloned().collect();

    observe_detail(&client, &mut observed, &picked)
        .await
        .expect("detail");

    for (name, s) in &observed.servers {
        if picked.contains(name) {
            let d = s.detail.as_ref().expect("detail read");
            assert!(!d.boots.is_empty(), "{name}: boots");
            assert!(
                d.hardware
                    .as_ref()
                    .is_some_and(|h| !h.disk_groups.is_empty())
            );
            assert!(!d.compatible_templates.is_empty());
            assert!(d.install_status.is_none(), "nothing installing");
            assert!(
                observed.templates.contains_key(&s.os),
                "{name}: template of {}",
                s.os
            );
        } else {
            assert!(s.detail.is_none(), "{name} was not asked for");
        }
    }
    assert!(meter.total() > fleet_calls);
    // Five reads per server (boots, tasks, install status, hardware, compatible templates),
    // the boot objects through the shared netboot cache.
    for route in [
        "GET /dedicated/server/{serviceName}/specifications/hardware",
        "GET /dedicated/server/{serviceName}/install/compatibleTemplates",
        "GET /dedicated/server/{serviceName}/install/status",
    ] {
        assert_eq!(meter.route(route), 3, "{route}: {meter:?}");
    }
}
