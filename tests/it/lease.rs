//! Issue 10, "Rescue is a lease, not a state": `boot.for` / `boot.until` leases through the
//! pure planner and the in-memory apply (start recorded, end returns to disk, the ended
//! lease is not started again), "left in rescue since …" drift, the plan's lease lines, and
//! the manifest fields.

use jiff::{SignedDuration, Timestamp};
use ovhform::model::*;
use ovhform::plan::testkit::{self, apply_in_memory};
use ovhform::plan::{Action, ActionKind, LeaseState, Plan, PlanInput};

use crate::plan::{input, kinds, now, one, plan_ok};

const A: &str = "a.eu";

fn rescue() -> BootMode {
    BootMode::Rescue {
        kernel: "rescue-customer".into(),
    }
}

fn leased(lease: BootLease, reboot: RebootPolicy) -> BootSpec {
    BootSpec {
        mode: rescue(),
        reboot,
        lease: Some(lease),
    }
}

fn at(offset: SignedDuration) -> PlanInput {
    PlanInput {
        now: now().checked_add(offset).unwrap(),
        ..input()
    }
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn set_boot_targets(p: &Plan) -> Vec<String> {
    p.servers[A]
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::SetBoot(s) => Some(s.changes[0].new.clone().unwrap_or_default()),
            _ => None,
        })
        .collect()
}

/// The whole life of a `for: 2h` lease: set, recorded when converged, active (no action,
/// its end shown), returned to disk at its end with a reboot, then left alone: the ended
/// lease is not started again by the same manifest.
#[test]
fn a_for_lease_is_set_runs_out_and_returns_the_server_to_disk_once() {
    let (mut d, mut o, mut r) = one(A);
    d.servers.get_mut(A).unwrap().boot = Some(leased(
        BootLease::For { secs: 2 * 3600 },
        RebootPolicy::OnChange,
    ));

    // t0: not started; the plan sets rescue and reboots into it.
    let p = plan_ok(&d, &o, &r, &at(hours(0)));
    let lease = p.servers[A].lease.clone().expect("a lease");
    assert_eq!(lease.state, LeaseState::NotStarted);
    assert_eq!(lease.ends, None);
    assert_eq!(kinds(&p, A), [ActionKind::SetBoot, ActionKind::Reboot]);
    assert_eq!(set_boot_targets(&p), ["rescue (kernel rescue-customer)"]);
    apply_in_memory(&p, &d, &mut o, &mut r, now());
    let rec = r.applied[A]
        .lease
        .clone()
        .expect("the lease start is recorded");
    assert_eq!(rec.started, now());
    assert_eq!(r.applied[A].boot, Some(rescue()));

    // t0+1h: active, nothing to do, the end is two hours after the start.
    let p = plan_ok(&d, &o, &r, &at(hours(1)));
    assert_eq!(kinds(&p, A), [ActionKind::Noop]);
    let lease = p.servers[A].lease.clone().unwrap();
    assert_eq!(lease.state, LeaseState::Active);
    assert_eq!(lease.started, Some(now()));
    assert_eq!(lease.ends, Some(now().checked_add(hours(2)).unwrap()));

    // t0+2h: ended; back to disk and reboot, whatever the drift policy.
    let end = now().checked_add(hours(2)).unwrap();
    let p = plan_ok(&d, &o, &r, &at(hours(2)));
    assert_eq!(
        p.servers[A].lease.as_ref().unwrap().state,
        LeaseState::Ended
    );
    assert_eq!(kinds(&p, A), [ActionKind::SetBoot, ActionKind::Reboot]);
    assert_eq!(set_boot_targets(&p), ["disk"]);
    let Action::SetBoot(set) = &p.servers[A].actions[0] else {
        panic!("set-boot first")
    };
    assert!(
        set.reason
            .contains(&format!("ended at {end}: back to disk")),
        "{}",
        set.reason
    );
    apply_in_memory(&p, &d, &mut o, &mut r, end);
    assert_eq!(r.applied[A].boot, Some(BootMode::Disk));
    assert_eq!(
        r.applied[A].lease.as_ref().map(|l| l.started),
        Some(now()),
        "the ended lease stays recorded"
    );

    // t0+5h: the same manifest does not start the lease again.
    let p = plan_ok(&d, &o, &r, &at(hours(5)));
    assert_eq!(kinds(&p, A), [ActionKind::Noop]);
    assert!(p.servers[A].drift.is_empty(), "{:#?}", p.servers[A].drift);

    // Someone puts it back into rescue by hand: drift, "left in rescue since" the lease's end.
    let live = o.servers.get_mut(A).unwrap();
    live.boot_id = Some(22);
    live.boot = testkit::boots().into_iter().find(|b| b.id == 22);
    let p = plan_ok(&d, &o, &r, &at(hours(6)));
    let drift = &p.servers[A].drift;
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(
        drift[0]
            .note
            .contains(&format!("left in rescue since its lease ended at {end}")),
        "{}",
        drift[0].note
    );

    // A new lease (another `for`) is a new lease: it is set again.
    d.servers.get_mut(A).unwrap().boot = Some(leased(
        BootLease::For { secs: 3 * 3600 },
        RebootPolicy::OnChange,
    ));
    let live = o.servers.get_mut(A).unwrap();
    live.boot_id = Some(1);
    live.boot = Some(testkit::disk_boot());
    let p = plan_ok(&d, &o, &r, &at(hours(6)));
    assert_eq!(
        p.servers[A].lease.as_ref().unwrap().state,
        LeaseState::NotStarted
    );
    assert_eq!(set_boot_targets(&p), ["rescue (kernel rescue-customer)"]);
}

/// A `for` lease on a server already in the leased mode starts now (recorded by apply), and
/// restarting the planner later does not extend it: the recorded start counts.
#[test]
fn a_lease_found_already_in_its_mode_starts_at_the_first_converged_pass_and_is_not_extended() {
    let (mut d, mut o, mut r) = one(A);
    d.servers.get_mut(A).unwrap().boot =
        Some(leased(BootLease::For { secs: 3600 }, RebootPolicy::Never));
    let live = o.servers.get_mut(A).unwrap();
    live.boot_id = Some(22);
    live.boot = testkit::boots().into_iter().find(|b| b.id == 22);
    let p = plan_ok(&d, &o, &r, &at(hours(0)));
    assert_eq!(kinds(&p, A), [ActionKind::Noop]);
    let l = p.servers[A].lease.clone().unwrap();
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(l.started, None);
    assert_eq!(l.ends, Some(now().checked_add(hours(1)).unwrap()));
    apply_in_memory(&p, &d, &mut o, &mut r, now());
    assert_eq!(r.applied[A].lease.as_ref().unwrap().started, now());
    // Half an hour later: the end has not moved.
    let later = SignedDuration::from_mins(30);
    let p = plan_ok(&d, &o, &r, &at(later));
    assert_eq!(
        p.servers[A].lease.as_ref().unwrap().ends,
        Some(now().checked_add(hours(1)).unwrap())
    );
    // Without the ongoing reboot policy the end sets disk and does not reboot.
    let p = plan_ok(&d, &o, &r, &at(hours(1)));
    assert_eq!(kinds(&p, A), [ActionKind::SetBoot]);
    assert_eq!(set_boot_targets(&p), ["disk"]);
}

/// An `until` already passed before the server was ever set sets nothing, and says so.
#[test]
fn an_until_lease_that_passed_unused_sets_nothing_and_warns() {
    let (mut d, o, r) = one(A);
    d.servers.get_mut(A).unwrap().boot = Some(leased(
        BootLease::Until {
            at: now().checked_sub(hours(1)).unwrap(),
        },
        RebootPolicy::OnChange,
    ));
    let p = plan_ok(&d, &o, &r, &at(hours(0)));
    assert_eq!(kinds(&p, A), [ActionKind::Noop]);
    let codes: Vec<&str> = p.servers[A]
        .findings
        .iter()
        .map(|f| f.code.slug())
        .collect();
    assert_eq!(codes, ["lease-ended-unused"]);

    // Before its time, an until lease is set and ends at its time.
    let until = now().checked_add(hours(3)).unwrap();
    d.servers.get_mut(A).unwrap().boot = Some(leased(
        BootLease::Until { at: until },
        RebootPolicy::OnChange,
    ));
    let p = plan_ok(&d, &o, &r, &at(hours(0)));
    assert_eq!(set_boot_targets(&p), ["rescue (kernel rescue-customer)"]);
    assert_eq!(p.servers[A].lease.as_ref().unwrap().ends, Some(until));
}

/// A server in rescue with an unmanaged boot is reported as drift (never changed), with the
/// reboot that put it there when the task history says.
#[test]
fn a_server_left_in_rescue_without_a_lease_is_reported_since_its_last_reboot() {
    let (mut d, mut o, r) = one(A);
    d.servers.get_mut(A).unwrap().boot = None;
    let rebooted: Timestamp = now().checked_sub(hours(30)).unwrap();
    let live = o.servers.get_mut(A).unwrap();
    live.boot_id = Some(22);
    live.boot = testkit::boots().into_iter().find(|b| b.id == 22);
    live.detail.as_mut().unwrap().tasks.push(Task {
        id: 77,
        function: "hardReboot".into(),
        status: TaskStatus::Done,
        comment: None,
        start_date: Some(rebooted),
        done_date: Some(rebooted),
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), [ActionKind::Noop]);
    let drift = &p.servers[A].drift;
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(!drift[0].corrected);
    assert!(
        drift[0].note.starts_with(&format!(
            "left in rescue since the reboot of {rebooted} (task 77)"
        )),
        "{}",
        drift[0].note
    );
    // On disk: nothing said.
    let live = o.servers.get_mut(A).unwrap();
    live.boot_id = Some(1);
    live.boot = Some(testkit::disk_boot());
    let p = plan_ok(&d, &o, &r, &input());
    assert!(p.servers[A].drift.is_empty());
}

/// `plan` shows every lease, active ones with their end and the time left.
#[test]
fn the_plan_shows_leases_with_their_end_in_text_and_markdown() {
    let (mut d, mut o, mut r) = one(A);
    d.servers.get_mut(A).unwrap().boot = Some(leased(
        BootLease::For { secs: 2 * 3600 },
        RebootPolicy::Never,
    ));
    let p = plan_ok(&d, &o, &r, &at(hours(0)));
    apply_in_memory(&p, &d, &mut o, &mut r, now());
    let p = plan_ok(&d, &o, &r, &at(SignedDuration::from_mins(40)));
    let end = now().checked_add(hours(2)).unwrap();
    let line = format!(
        "rescue (kernel rescue-customer) for 2h — active, ends {end} (in 1h 20m): then back to disk"
    );
    let text = ovhform::cli::render::render_text(&p, false);
    assert!(text.contains("Boot leases:"), "{text}");
    assert!(text.contains(&format!("{A}: {line}")), "{text}");
    let md = ovhform::cli::render::render_markdown(&p, ovhform::cli::render::MARKDOWN_LIMIT);
    assert!(md.contains("#### Boot leases"), "{md}");
    assert!(md.contains(&format!("`{A}`: ")), "{md}");
    assert!(md.contains("ends "), "{md}");
}

/// The manifest fields: `for` and `until` load into the lease; a lease with mode disk is
/// refused (E0505, covered with its line by the invalid corpus).
#[test]
fn lease_fields_load_from_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let write = |body: &str| {
        std::fs::write(
            dir.path().join("s.yaml"),
            format!(
                "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: {A}\nspec:\n  boot:\n{body}"
            ),
        )
        .unwrap();
        ovhform::manifest::load(&[dir.path().to_path_buf()])
    };
    let d = write("    mode: rescue\n    for: 90m\n").expect("valid");
    assert_eq!(
        d.desired.servers[A].boot.as_ref().unwrap().lease,
        Some(BootLease::For { secs: 5400 })
    );
    let d =
        write("    mode: network\n    network: ipxe-shell\n    until: 2026-12-01T10:00:00+01:00\n")
            .expect("valid");
    assert_eq!(
        d.desired.servers[A].boot.as_ref().unwrap().lease,
        Some(BootLease::Until {
            at: "2026-12-01T09:00:00Z".parse().unwrap()
        })
    );
    let errs = write("    mode: rescue\n    for: 31 days\n").expect_err("too long");
    assert!(errs.iter().any(|e| e.code.id() == "E0505"), "{errs:?}");
}
