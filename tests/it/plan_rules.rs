//! Issue 8, "Evidence that each rule holds": one named `rule_…` test per safety rule of the
//! planner that deleting it left unnoticed (settings drift `warn`, the install-in-progress
//! `wait`, install drift `ignore`, the suspend and missing-detail gates on boot changes and
//! reboots, undefined or invalid maintenance windows, missing hardware facts), and the tests
//! that kill the mutants cargo-mutants left alive in the functions that decide reinstall,
//! adopt, blocked, wait, drift or a gate (docs/benchmarks.md, "Mutation testing of the
//! planner"). Each test names the rule it holds and fails when the rule is removed.

use ovhform::model::*;
use ovhform::plan::testkit;
use ovhform::plan::{Action, ActionKind, Blocker, Plan, WaitOn};

use crate::plan::{input, kinds, now, one, plan_ok};

const A: &str = "a.eu";

fn ds(d: &mut Desired) -> &mut DesiredServer {
    d.servers.get_mut(A).unwrap()
}

fn live(o: &mut Observed) -> &mut ObservedServer {
    o.servers.get_mut(A).unwrap()
}

fn detail(o: &mut Observed) -> &mut ObservedDetail {
    live(o).detail.as_mut().unwrap()
}

fn bump_generation(d: &mut Desired) {
    ds(d).install.as_mut().unwrap().generation = 2;
}

/// The kinds of the blockers of every blocked action of the server.
fn blocker_kinds(p: &Plan) -> Vec<Vec<&'static str>> {
    p.servers[A]
        .actions
        .iter()
        .filter(|a| a.kind() == ActionKind::Blocked)
        .map(|a| a.blockers().iter().map(Blocker::kind_name).collect())
        .collect()
}

/// (kind, effective kind) of every action of the server.
fn shape(p: &Plan) -> Vec<(ActionKind, ActionKind)> {
    p.servers[A]
        .actions
        .iter()
        .map(|a| (a.kind(), a.effective_kind()))
        .collect()
}

fn applied_as_desired(d: &Desired, r: &mut Records) {
    let s = &d.servers[A];
    r.applied.insert(
        A.into(),
        AppliedState {
            boot: s.boot.as_ref().map(|b| b.mode.clone()),
            settings: s.settings.clone(),
        },
    );
}

fn rescue_on_change() -> BootSpec {
    BootSpec {
        mode: BootMode::Rescue {
            kernel: "rescue-customer".into(),
        },
        reboot: RebootPolicy::OnChange,
    }
}

fn ipxe_on_change() -> BootSpec {
    BootSpec {
        mode: BootMode::Ipxe {
            script: "#!ipxe\nchain http://boot.example/a.ipxe\n".into(),
        },
        reboot: RebootPolicy::OnChange,
    }
}

fn window(schedule: &str, time_zone: &str) -> MaintenanceWindow {
    MaintenanceWindow {
        name: "prod-nights".into(),
        origin: testkit::origin("windows.yaml", 1),
        schedule: schedule.into(),
        duration_secs: 3 * 3600,
        time_zone: time_zone.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The rules deleting which no test noticed.
// ---------------------------------------------------------------------------------------------

/// Settings drift under `warn` (the default) is reported and never corrected: no
/// update-settings, a drift entry saying it is not corrected. `correct` corrects it;
/// `ignore` neither acts nor reports.
#[test]
fn rule_settings_drift_warn_reports_without_correcting() {
    let (mut d, mut o, mut r) = one(A);
    ds(&mut d).settings.monitoring = Some(true);
    ds(&mut d).settings.rescue_mail = Some("ops@example.com".into());
    applied_as_desired(&d, &mut r);
    live(&mut o).monitoring = false;
    live(&mut o).rescue_mail = Some("ops@example.com".into());
    assert_eq!(ds(&mut d).policy.drift.settings, DriftAction::Warn);
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Noop], "{:#?}", p.servers[A]);
    let drift = &p.servers[A].drift;
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert_eq!(drift[0].field, "settings.monitoring");
    assert!(!drift[0].corrected);
    assert_eq!(p.report.settings.drift, 1);
    assert_eq!(p.report.settings.drift_corrected, 0);

    ds(&mut d).policy.drift.settings = DriftAction::Correct;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::UpdateSettings]);
    let Action::UpdateSettings(u) = &p.servers[A].actions[0] else {
        unreachable!()
    };
    assert_eq!(
        u.fields,
        Settings {
            monitoring: Some(true),
            ..Settings::default()
        }
    );
    assert_eq!(
        u.reason,
        "correct settings drift (spec.policy.drift.settings: correct)"
    );
    assert!(p.servers[A].drift[0].corrected);
    assert_eq!(p.report.settings.drift_corrected, 1);

    ds(&mut d).policy.drift.settings = DriftAction::Ignore;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Noop]);
    assert!(p.servers[A].drift.is_empty());
}

/// An installation in progress (install/status answers, no step failed) means `wait` and
/// nothing else, even with a change pending.
#[test]
fn rule_an_install_in_progress_means_wait_and_nothing_else() {
    let (mut d, mut o, r) = one(A);
    bump_generation(&mut d);
    ds(&mut d).settings.monitoring = Some(true);
    detail(&mut o).install_status = Some(InstallStatus {
        elapsed_secs: 240,
        steps: vec![
            InstallStep {
                comment: "Downloading image".into(),
                status: "done".into(),
                error: None,
            },
            InstallStep {
                comment: "Setting up partitions".into(),
                status: "doing".into(),
                error: None,
            },
        ],
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Wait], "{:#?}", p.servers[A]);
    let Action::Wait(w) = &p.servers[A].actions[0] else {
        unreachable!()
    };
    assert_eq!(
        w.on,
        WaitOn::Install {
            elapsed_secs: 240,
            steps: 2
        }
    );
    assert_eq!(p.report.tasks.waiting_on_install, 1);
    assert_eq!(p.report.tasks.waiting_on_task, 0);
}

/// Install drift under `ignore` is neither reported nor acted on: a live OS other than the
/// recorded one, or a reinstall ovhform did not make, gives `noop` and no drift entry.
#[test]
fn rule_install_drift_ignore_neither_reports_nor_reinstalls() {
    let (mut d, mut o, r) = one(A);
    ds(&mut d).policy.drift.install = DriftAction::Ignore;
    live(&mut o).os = "ubuntu2404-server_64".into();
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Noop]);
    assert!(p.servers[A].drift.is_empty(), "{:#?}", p.servers[A].drift);
    assert_eq!(p.report.install.drift, 0);

    let (mut d, mut o, r) = one(A);
    ds(&mut d).policy.drift.install = DriftAction::Ignore;
    detail(&mut o).tasks.push(Task {
        id: 5001,
        function: "reinstallServer".into(),
        status: TaskStatus::Done,
        comment: None,
        start_date: Some(now()),
        done_date: Some(now()),
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Noop]);
    assert!(p.servers[A].drift.is_empty(), "{:#?}", p.servers[A].drift);
    // Under warn the same facts are reported, never acted on.
    ds(&mut d).policy.drift.install = DriftAction::Warn;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Noop]);
    assert_eq!(p.servers[A].drift.len(), 1);
    assert!(!p.servers[A].drift[0].corrected);
    assert_eq!(p.report.install.drift, 1);
}

/// A suspended server gets no boot change and no reboot: both are blocked (`suspended`).
#[test]
fn rule_suspend_blocks_boot_changes_and_reboots() {
    let (mut d, o, r) = one(A);
    ds(&mut d).boot = Some(rescue_on_change());
    ds(&mut d).policy.suspend = true;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        shape(&p),
        vec![
            (ActionKind::Blocked, ActionKind::SetBoot),
            (ActionKind::Blocked, ActionKind::Reboot)
        ]
    );
    assert_eq!(
        blocker_kinds(&p),
        vec![vec!["suspended"], vec!["suspended"]]
    );
    assert_eq!(p.report.gates.suspended, 1);
    assert_eq!(p.report.gates.servers_blocked, 1);
}

/// Without the server's detail nothing is changed on it: an iPXE boot (which needs no boot
/// list to resolve), its reboot and a settings change are all blocked (`detail-missing`).
#[test]
fn rule_missing_detail_blocks_boot_changes_reboots_and_settings() {
    let (mut d, mut o, r) = one(A);
    ds(&mut d).boot = Some(ipxe_on_change());
    ds(&mut d).settings.monitoring = Some(true);
    live(&mut o).detail = None;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        shape(&p),
        vec![
            (ActionKind::Blocked, ActionKind::UpdateSettings),
            (ActionKind::Blocked, ActionKind::SetBoot),
            (ActionKind::Blocked, ActionKind::Reboot)
        ]
    );
    assert_eq!(
        blocker_kinds(&p),
        vec![
            vec!["detail-missing"],
            vec!["detail-missing"],
            vec!["detail-missing"]
        ]
    );
    assert_eq!(p.report.gates.detail_missing, 1);
    assert_eq!(p.report.gates.servers_blocked, 1);
}

/// A `maintenanceWindow` naming no MaintenanceWindow blocks the reinstall (manual or auto),
/// with an error finding naming the manifest line.
#[test]
fn rule_an_undefined_maintenance_window_blocks_a_reinstall() {
    for policy in [ReinstallPolicy::Manual, ReinstallPolicy::Auto] {
        let (mut d, o, r) = one(A);
        bump_generation(&mut d);
        ds(&mut d).policy.reinstall = policy;
        ds(&mut d).policy.maintenance_window = Some("prod-nights".into());
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(
            shape(&p),
            vec![(ActionKind::Blocked, ActionKind::Reinstall)],
            "{policy:?}"
        );
        let a = &p.servers[A].actions[0];
        assert_eq!(
            a.blockers(),
            &[Blocker::WindowUndefined {
                window: "prod-nights".into(),
                origin: testkit::origin("servers/a.eu.yaml", 26),
            }]
        );
        assert!(
            a.deferred_wipe().is_none(),
            "an undefined window defers nothing"
        );
        let f = &p.servers[A].findings;
        assert!(
            f.iter().any(|f| f.code.slug() == "window-unknown"
                && f.severity == ovhform::plan::Severity::Error
                && f.origin.as_ref().unwrap().line == 26),
            "{f:#?}"
        );
    }
}

/// A window whose schedule is not cron cannot be evaluated: the reinstall is blocked
/// (`window-invalid`), never run as if the window were open.
#[test]
fn rule_an_invalid_cron_schedule_blocks_a_reinstall() {
    for policy in [ReinstallPolicy::Manual, ReinstallPolicy::Auto] {
        let (mut d, o, r) = one(A);
        d.windows
            .insert("prod-nights".into(), window("every night at two", "UTC"));
        bump_generation(&mut d);
        ds(&mut d).policy.reinstall = policy;
        ds(&mut d).policy.maintenance_window = Some("prod-nights".into());
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(
            shape(&p),
            vec![(ActionKind::Blocked, ActionKind::Reinstall)]
        );
        let b = p.servers[A].actions[0].blockers();
        assert!(
            matches!(b, [Blocker::WindowInvalid { window, message }]
                if window == "prod-nights" && message.contains("every night at two")),
            "{b:#?}"
        );
    }
}

/// A window in a time zone that does not exist cannot be evaluated: the reinstall is
/// blocked (`window-invalid`).
#[test]
fn rule_an_invalid_time_zone_blocks_a_reinstall() {
    for policy in [ReinstallPolicy::Manual, ReinstallPolicy::Auto] {
        let (mut d, o, r) = one(A);
        d.windows.insert(
            "prod-nights".into(),
            window("0 11 * * *", "Mars/Olympus_Mons"),
        );
        bump_generation(&mut d);
        ds(&mut d).policy.reinstall = policy;
        ds(&mut d).policy.maintenance_window = Some("prod-nights".into());
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(
            shape(&p),
            vec![(ActionKind::Blocked, ActionKind::Reinstall)]
        );
        let b = p.servers[A].actions[0].blockers();
        assert!(
            matches!(b, [Blocker::WindowInvalid { message, .. }] if message.contains("Mars/Olympus_Mons")),
            "{b:#?}"
        );
        // The same window in a real zone is open at noon UTC (11:00–14:00): it runs.
        d.windows
            .insert("prod-nights".into(), window("0 11 * * *", "UTC"));
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(
            shape(&p),
            vec![(ActionKind::Reinstall, ActionKind::Reinstall)]
        );
    }
}

/// Without the hardware facts (detail read, hardware not) a reinstall is blocked
/// (`checks-not-done`) and never shown as checked: the disk groups it would erase are unknown.
#[test]
fn rule_missing_hardware_facts_block_a_reinstall() {
    let (mut d, mut o, r) = one(A);
    bump_generation(&mut d);
    detail(&mut o).hardware = None;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        shape(&p),
        vec![(ActionKind::Blocked, ActionKind::Reinstall)]
    );
    let a = &p.servers[A].actions[0];
    assert_eq!(
        a.blockers(),
        &[Blocker::ChecksNotDone {
            missing: "hardware specification was not observed".into()
        }]
    );
    let ri = a.reinstall().unwrap();
    assert!(!ri.checks_done);
    assert!(ri.disk_groups.is_empty());
    assert_eq!(p.report.install.blocked, 1);
}

/// Without the template in the catalog a reinstall is blocked too (`checks-not-done` and
/// the `os-unknown` error).
#[test]
fn rule_a_template_missing_from_the_catalog_blocks_a_reinstall() {
    let (mut d, mut o, r) = one(A);
    bump_generation(&mut d);
    o.templates.remove("debian12_64");
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        shape(&p),
        vec![(ActionKind::Blocked, ActionKind::Reinstall)]
    );
    let kinds: Vec<&str> = blocker_kinds(&p).concat();
    assert_eq!(kinds, vec!["checks-not-done", "invalid-spec"]);
    assert!(!p.servers[A].actions[0].reinstall().unwrap().checks_done);
}
