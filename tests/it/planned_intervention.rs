//! Issue 10: a maintenance window is not entered while OVH has a planned intervention on the
//! server. The planner's rule on pure inputs (an unfinished intervention blocks an automatic
//! wipe and requeues at its expected end, a finished one does not, an unread or unreadable
//! list never approves one, a person's approval gets a warning instead), and the daemon end to
//! end against the simulator: no reinstall POST while the intervention is planned, `blocked`
//! with the reason in `/status`, the pass at its expected end reinstalls once OVH finished it,
//! a refused list approves nothing, and only the candidates' lists are read.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use ovhform::daemon::{Reason, Requeue, ServerStatus};
use ovhform::model::{
    InterventionStatus, Interventions, Observed, PlannedIntervention, ReinstallPolicy,
};
use ovhform::plan::{
    self, Action, Approval, Blocker, InterventionReads, Plan, PlanInput, Unchecked, testkit,
};

use crate::cli_support::{WEB2, reinstalls};
use crate::daemon::{TestClock, replace_in, start, state_of};

const LIST: &str = "GET /dedicated/server/{serviceName}/plannedIntervention";
const ITEM: &str = "GET /dedicated/server/{serviceName}/plannedIntervention/{interventionId}";

fn now() -> Timestamp {
    "2026-11-30T01:30:00Z".parse().unwrap()
}

/// One server whose spec changed (a new hostname): a reinstall under `policy`, detail read,
/// its planned interventions as given.
fn one(policy: ReinstallPolicy, interventions: Interventions) -> (String, Plan, Observed) {
    let (mut desired, mut observed, records) = testkit::fleet(1, now(), true);
    let name = desired.servers.keys().next().unwrap().clone();
    let server = desired.servers.get_mut(&name).unwrap();
    server.install = Some(testkit::install_spec("debian12_64", "renamed"));
    server.policy.reinstall = policy;
    observed
        .servers
        .get_mut(&name)
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .interventions = interventions;
    let p = plan::plan(&desired, &observed, &records, &PlanInput::new(now()));
    (name, p, observed)
}

fn intervention(status: InterventionStatus) -> PlannedIntervention {
    PlannedIntervention {
        id: 4242,
        kind: "HARDWARE_UPGRADE_ON_ACTIVE_SERVER".into(),
        status,
        wanted_start: Some(now() - Duration::from_secs(600)),
        expected_end: Some(now() + Duration::from_secs(7200)),
    }
}

fn read(list: Vec<PlannedIntervention>) -> Interventions {
    Interventions::Read { list }
}

fn the_reinstall(p: &Plan, name: &str) -> Action {
    p.servers[name]
        .actions
        .iter()
        .find(|a| a.reinstall().is_some())
        .cloned()
        .unwrap_or_else(|| panic!("no reinstall planned: {:#?}", p.servers[name]))
}

#[test]
fn an_unfinished_intervention_blocks_an_automatic_wipe_until_its_expected_end() {
    for status in [
        InterventionStatus::Todo,
        InterventionStatus::Doing,
        InterventionStatus::Other("paused".into()),
    ] {
        let pi = intervention(status.clone());
        let (name, p, _) = one(ReinstallPolicy::Auto, read(vec![pi.clone()]));
        let a = the_reinstall(&p, &name);
        assert!(
            matches!(a.reinstall().unwrap().approval, Approval::Auto { .. }),
            "{a:#?}"
        );
        assert_eq!(
            a.blockers(),
            [Blocker::PlannedIntervention {
                id: 4242,
                intervention: "HARDWARE_UPGRADE_ON_ACTIVE_SERVER".into(),
                status: status.clone(),
                wanted_start: pi.wanted_start,
                expected_end: pi.expected_end,
            }],
            "{status:?}"
        );
        assert_eq!(a.blockers()[0].requeue_at(), pi.expected_end);
        // Blocked, not deferred: a wipe waiting for OVH is not a wipe waiting for its window.
        assert!(a.deferred_wipe().is_none());
        assert!(ovhform::daemon::policy::approvals(&p).allow_wipe.is_empty());
        assert!(plan::lint(&p).is_empty(), "{:?}", plan::lint(&p));
        let text = ovhform::cli::render::render_text(&p, false);
        assert!(
            text.contains("OVH planned intervention 4242 (\"HARDWARE_UPGRADE_ON_ACTIVE_SERVER\")"),
            "{text}"
        );
    }
}

#[test]
fn a_finished_intervention_blocks_nothing() {
    let (name, p, _) = one(
        ReinstallPolicy::Auto,
        read(vec![intervention(InterventionStatus::Done)]),
    );
    let a = the_reinstall(&p, &name);
    assert!(matches!(a, Action::Reinstall(_)), "{a:#?}");
    assert!(
        ovhform::daemon::policy::approvals(&p)
            .allow_wipe
            .contains(&name)
    );
    assert!(p.servers[&name].findings.is_empty());
}

#[test]
fn an_unread_or_unreadable_list_never_approves_an_automatic_wipe() {
    for (interventions, why) in [
        (Interventions::NotRead, Unchecked::NotRead),
        (
            Interventions::Unreadable {
                error: "HTTP 403 \"NOT_GRANTED_CALL\"".into(),
            },
            Unchecked::Unreadable {
                error: "HTTP 403 \"NOT_GRANTED_CALL\"".into(),
            },
        ),
    ] {
        let (name, p, observed) = one(ReinstallPolicy::Auto, interventions.clone());
        let a = the_reinstall(&p, &name);
        assert_eq!(
            a.blockers(),
            [Blocker::InterventionsUnchecked { why }],
            "{interventions:?}"
        );
        assert_eq!(a.blockers()[0].requeue_at(), None);
        assert!(ovhform::daemon::policy::approvals(&p).allow_wipe.is_empty());
        // Only the unread one is for the pipeline to read; an unreadable one was tried.
        let wanted = plan::needs_interventions(&p, &observed, InterventionReads::Automatic);
        assert_eq!(
            wanted.contains(&name),
            interventions == Interventions::NotRead,
            "{interventions:?}"
        );
    }
}

#[test]
fn a_person_approving_a_wipe_is_warned_not_blocked() {
    let (name, p, observed) = one(
        ReinstallPolicy::Manual,
        read(vec![
            intervention(InterventionStatus::Todo),
            intervention(InterventionStatus::Done),
        ]),
    );
    let a = the_reinstall(&p, &name);
    assert!(matches!(a, Action::Reinstall(_)), "{a:#?}");
    let warnings: Vec<&str> = p.servers[&name]
        .findings
        .iter()
        .filter(|f| f.code.slug() == "planned-intervention")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("is \"todo\"") && warnings[0].contains("wipes the server"),
        "{warnings:?}"
    );
    assert!(!p.has_errors());
    // Read for `plan`/`apply` (a person may approve it), never for the daemon.
    let (name, p, observed_unread) = one(ReinstallPolicy::Manual, Interventions::NotRead);
    assert!(p.servers[&name].findings.is_empty());
    assert!(
        plan::needs_interventions(&p, &observed_unread, InterventionReads::Reinstalls)
            .contains(&name)
    );
    assert!(
        plan::needs_interventions(&p, &observed_unread, InterventionReads::Automatic).is_empty()
    );
    // Already read: nothing more to read.
    assert!(plan::needs_interventions(&p, &observed, InterventionReads::Reinstalls).is_empty());
    // Could not be read: the warning says so.
    let (name, p, _) = one(
        ReinstallPolicy::Manual,
        Interventions::Unreadable {
            error: "HTTP 503".into(),
        },
    );
    assert!(
        p.servers[&name]
            .findings
            .iter()
            .any(|f| f.code.slug() == "planned-intervention"
                && f.message.contains("could not be checked (HTTP 503)")),
        "{:#?}",
        p.servers[&name].findings
    );
}

#[test]
fn a_hostile_intervention_type_is_escaped_in_text_and_markdown() {
    let mut pi = intervention(InterventionStatus::Todo);
    pi.kind = "X\u{1b}[31m\u{202e}<b>**boom**</b>`|".into();
    let (_, p, _) = one(ReinstallPolicy::Auto, read(vec![pi]));
    let text = ovhform::cli::render::render_text(&p, false);
    let md = ovhform::cli::render::render_markdown(&p, ovhform::cli::render::MARKDOWN_LIMIT);
    for out in [&text, &md] {
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{out}"
        );
        assert!(out.contains("4242"), "{out}");
    }
    assert!(!md.contains("<b>"), "{md}");
}

/// Monday 2026-11-30, 02:01 in Paris: inside the web group's `prod-nights` window.
fn in_window() -> Timestamp {
    "2026-11-30T01:01:00Z".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_waits_for_a_planned_intervention_then_reinstalls_when_it_ends() {
    let clock = TestClock::at(in_window());
    let c = clock.clone();
    let mut d = start(
        |_| {},
        move |cfg| cfg.clock = std::sync::Arc::new(move || c.now()),
    )
    .await;
    // Pass 1: web-02's wipe waits for a person (policy manual): the daemon reads no
    // intervention list for it.
    d.pass(1, Duration::from_secs(30)).await;
    assert_eq!(reinstalls(&d.sim), 0);
    assert_eq!(d.sim.calls().get(LIST), None, "{:?}", d.sim.calls());

    // OVH plans an intervention on web-02, expected to end in 6 s; then the team makes the
    // group's wipes automatic.
    let ends = clock.now() + Duration::from_secs(6);
    let id = d
        .sim
        .plan_intervention(WEB2, "todo", clock.now(), ends)
        .expect("web-02 exists");
    let before = d.last().number;
    replace_in(
        &d.manifests.join("groups/web.yaml"),
        "reinstall: manual",
        "reinstall: auto",
    );
    d.pass(before + 1, Duration::from_secs(30)).await;
    let doc = d.status().await;
    match state_of(&doc, WEB2) {
        ServerStatus::Blocked { reasons } => assert!(
            reasons
                .iter()
                .any(|r| r.contains(&format!("OVH planned intervention {id}"))
                    && r.contains("\"todo\"")),
            "{reasons:?}"
        ),
        other => panic!("while the intervention is planned: {other:?}"),
    }
    assert_eq!(reinstalls(&d.sim), 0, "no wipe during an intervention");
    // Only web-02, the one automatic candidate, had its list read: one list and one object
    // per pass that planned it.
    let calls = d.sim.calls();
    let lists = calls.get(LIST).copied().unwrap_or(0);
    assert!((1..=2).contains(&lists), "{calls:?}");
    assert_eq!(calls.get(ITEM).copied(), Some(lists), "{calls:?}");

    // OVH finishes it; the pass at its expected end (not the one-hour interval) reinstalls.
    assert!(d.sim.set_intervention_status(WEB2, id, "done"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = d.last().number;
    let mut reasons = Vec::new();
    while reinstalls(&d.sim) == 0 && Instant::now() < deadline {
        let p = d.pass(n + 1, Duration::from_secs(20)).await;
        n = p.number;
        reasons.push(p.reason);
    }
    assert_eq!(reinstalls(&d.sim), 1, "{reasons:?}");
    assert!(clock.now() >= ends);
    assert!(
        reasons.iter().any(|r| matches!(
            r,
            Some(Reason::Requeue {
                why: Requeue::InterventionEnds,
                server,
            }) if server == WEB2
        )),
        "{reasons:?}"
    );
    d.no_pass_after_settling(n).await;
    assert_eq!(reinstalls(&d.sim), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_intervention_list_never_approves_an_automatic_wipe() {
    let clock = TestClock::at(in_window());
    let c = clock.clone();
    let mut d = start(
        |_| {},
        move |cfg| cfg.clock = std::sync::Arc::new(move || c.now()),
    )
    .await;
    d.pass(1, Duration::from_secs(30)).await;
    // The credentials' policy lacks `plannedIntervention/get` for web-02.
    assert!(d.sim.update_server(WEB2, |s| s.interventions_denied = true));
    let before = d.last().number;
    replace_in(
        &d.manifests.join("groups/web.yaml"),
        "reinstall: manual",
        "reinstall: auto",
    );
    d.pass(before + 1, Duration::from_secs(30)).await;
    match state_of(&d.status().await, WEB2) {
        ServerStatus::Blocked { reasons } => assert!(
            reasons.iter().any(|r| r.contains("could not be checked")
                && r.contains("403")
                && r.contains("not approved unchecked")),
            "{reasons:?}"
        ),
        other => panic!("with the list refused: {other:?}"),
    }
    assert_eq!(reinstalls(&d.sim), 0, "an unchecked list approves no wipe");
    // Granted again: the next pass (SIGHUP here) reads an empty list and reinstalls.
    assert!(
        d.sim
            .update_server(WEB2, |s| s.interventions_denied = false)
    );
    let n = d.last().number;
    d.triggers.send(Reason::Hangup);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = n;
    while reinstalls(&d.sim) == 0 && Instant::now() < deadline {
        n = d.pass(n + 1, Duration::from_secs(20)).await.number;
    }
    assert_eq!(reinstalls(&d.sim), 1);
    d.no_pass_after_settling(n).await;
    d.stop().await;
}
