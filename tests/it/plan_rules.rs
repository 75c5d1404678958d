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
            lease: None,
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
        lease: None,
    }
}

fn ipxe_on_change() -> BootSpec {
    BootSpec {
        mode: BootMode::Ipxe {
            script: "#!ipxe\nchain http://boot.example/a.ipxe\n".into(),
        },
        reboot: RebootPolicy::OnChange,
        lease: None,
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
            steps: 2,
            done: 1
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

/// A maintenance window is open from its start (included) until its end (excluded): at the
/// closing instant a reinstall is blocked outside the window, never run, and waits for the
/// next opening. (Mutation testing: `now < end` bent to `now <= end` was left alive.)
#[test]
fn rule_a_maintenance_window_closes_at_its_end_instant() {
    // 02:00 Europe/Paris (01:00 UTC in November) for 3 hours: 01:00–04:00 UTC.
    let (mut d, o, r) = one(A);
    d.windows
        .insert("prod-nights".into(), window("0 2 * * *", "Europe/Paris"));
    bump_generation(&mut d);
    ds(&mut d).policy.reinstall = ReinstallPolicy::Auto;
    ds(&mut d).policy.maintenance_window = Some("prod-nights".into());
    let at = |t: &str| {
        let mut i = input();
        i.now = t.parse().unwrap();
        plan_ok(&d, &o, &r, &i)
    };
    for open in ["2026-11-24T01:00:00Z", "2026-11-24T03:59:59Z"] {
        assert_eq!(
            shape(&at(open)),
            vec![(ActionKind::Reinstall, ActionKind::Reinstall)],
            "{open}"
        );
    }
    for closed in ["2026-11-24T00:59:59Z", "2026-11-24T04:00:00Z"] {
        let p = at(closed);
        assert_eq!(
            shape(&p),
            vec![(ActionKind::Blocked, ActionKind::Reinstall)],
            "{closed}"
        );
        assert!(
            matches!(p.servers[A].actions[0].blockers(),
                [Blocker::OutsideWindow { window, .. }] if window == "prod-nights"),
            "{closed}: {:#?}",
            p.servers[A].actions[0].blockers()
        );
    }
    // At the closing instant the next opening is the next night's.
    let p = at("2026-11-24T04:00:00Z");
    assert_eq!(
        p.servers[A].actions[0].deferred_wipe(),
        Some(("2026-11-25T01:00:00Z".parse().unwrap(), "Europe/Paris"))
    );
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

// ---------------------------------------------------------------------------------------------
// Catalog and hardware checks (src/plan/checks.rs), boundary by boundary.
// ---------------------------------------------------------------------------------------------

mod checks {
    use ovhform::model::{InstallSpec, Template, TemplateInput};
    use ovhform::plan::checks::{CheckOutcome, check_reinstall, os_disk_group};
    use ovhform::plan::testkit::{self, desired_server, observed_server};
    use ovhform::plan::{DiskFate, Severity};
    use serde_json::json;

    use crate::plan::now;

    /// Check reinstalling a spec whose storage is `storage` on a server whose disk group 1
    /// has `disks` disks (and a RAID controller when `controller`).
    fn check(storage: serde_json::Value, disks: u32, controller: bool) -> CheckOutcome {
        let mut ds = desired_server("a.eu", "debian12_64");
        let spec = ds.install.as_mut().unwrap();
        spec.request["storage"] = storage;
        spec.os_disk_group = None;
        testkit::refingerprint(spec);
        let mut live = observed_server("a.eu", "debian12_64");
        let hw = live.detail.as_mut().unwrap().hardware.as_mut().unwrap();
        hw.disk_groups[0].number_of_disks = disks;
        hw.disk_groups[0].raid_controller = controller.then(|| "LSI MegaRAID".into());
        let spec = ds.install.clone().unwrap();
        check_reinstall(&ds, &spec, &live, &testkit::catalog(), now())
    }

    fn codes(c: &CheckOutcome) -> Vec<&'static str> {
        c.findings.iter().map(|f| f.code.slug()).collect()
    }

    fn soft(level: u64, fs: &str) -> serde_json::Value {
        json!([{"diskGroupId": 1, "partitioning": {"layout": [
            {"fileSystem": fs, "mountPoint": "/", "raidLevel": level, "size": 0}
        ]}}])
    }

    fn hard(level: Option<u64>) -> serde_json::Value {
        let raid = match level {
            Some(l) => json!({"raidLevel": l}),
            None => json!({}),
        };
        json!([{"diskGroupId": 1, "hardwareRaid": [raid]}])
    }

    /// Soft RAID needs, per level, at least this many disks (ZFS levels follow OVH's raidz
    /// mapping: 5 = raidz1, 6 = raidz2, 7 = raidz3); one disk fewer is a `raid-disks` error.
    #[test]
    fn rule_soft_raid_minimum_disks_per_level() {
        for (level, fs, need) in [
            (1, "ext4", 2),
            (5, "ext4", 3),
            (6, "ext4", 4),
            (6, "zfs", 5),
            (7, "zfs", 7),
            (10, "ext4", 4),
            // A level the table does not know needs one disk.
            (3, "ext4", 1),
        ] {
            let enough = check(soft(level, fs), need, false);
            assert_eq!(
                codes(&enough),
                Vec::<&str>::new(),
                "RAID {level} {fs} on {need}"
            );
            if need > 1 {
                let short = check(soft(level, fs), need - 1, false);
                assert_eq!(codes(&short), vec!["raid-disks"], "RAID {level} {fs}");
                let f = &short.findings[0];
                assert_eq!(f.severity, Severity::Error);
                assert!(
                    f.message
                        .contains(&format!("soft RAID {level} needs at least {need} disks")),
                    "{}",
                    f.message
                );
            }
        }
        // RAID 0 needs a disk: a disk group without any is refused.
        assert_eq!(codes(&check(soft(0, "ext4"), 0, false)), vec!["raid-disks"]);
        assert!(codes(&check(soft(0, "ext4"), 1, false)).is_empty());
    }

    /// Hardware RAID needs, per level, at least this many disks, and a RAID controller.
    #[test]
    fn rule_hardware_raid_minimum_disks_per_level_and_controller() {
        for (level, need) in [
            (Some(1), 2),
            (Some(5), 3),
            (Some(6), 4),
            (Some(10), 4),
            (Some(50), 6),
            (Some(60), 8),
            // No level given: the API's default, RAID 1.
            (None, 2),
            // A level the table does not know needs one disk.
            (Some(3), 1),
        ] {
            let enough = check(hard(level), need, true);
            assert_eq!(codes(&enough), Vec::<&str>::new(), "{level:?} on {need}");
            if need > 1 {
                let short = check(hard(level), need - 1, true);
                assert_eq!(codes(&short), vec!["raid-disks"], "{level:?}");
                assert!(
                    short.findings[0]
                        .message
                        .contains(&format!("needs at least {need} disks")),
                    "{}",
                    short.findings[0].message
                );
            }
        }
        assert_eq!(codes(&check(hard(Some(0)), 0, true)), vec!["raid-disks"]);
        assert!(codes(&check(hard(Some(0)), 1, true)).is_empty());
        assert_eq!(
            codes(&check(hard(Some(1)), 2, false)),
            vec!["hardware-raid-unsupported"]
        );
    }

    /// The OS goes on the spec's disk group, else the request's install entry's, else 1; an
    /// erase-only entry (`{diskGroupId, erase: false}`) is not the install entry.
    #[test]
    fn rule_the_os_disk_group_comes_from_the_install_entry() {
        let mut spec = testkit::install_spec("debian12_64", "a");
        spec.os_disk_group = None;
        spec.request["storage"] = json!([{"diskGroupId": 2, "erase": false}, {"diskGroupId": 2}]);
        assert_eq!(os_disk_group(&spec), 2);
        spec.request["storage"] = json!([{"diskGroupId": 1, "erase": false}, {"diskGroupId": 2, "partitioning": {"layout": []}}]);
        assert_eq!(os_disk_group(&spec), 2);
        // An entry with partitioning is the install entry even when it says `erase`.
        spec.request["storage"] =
            json!([{"diskGroupId": 2, "erase": true, "partitioning": {"layout": []}}]);
        assert_eq!(os_disk_group(&spec), 2);
        spec.request["storage"] = json!([{"diskGroupId": 0}]);
        assert_eq!(os_disk_group(&spec), 1, "0 is no disk group: the default");
        spec.request["storage"] = json!([{"diskGroupId": 2, "erase": false}]);
        assert_eq!(
            os_disk_group(&spec),
            1,
            "only an erase-only entry: the default"
        );
        spec.request["storage"] = json!([]);
        assert_eq!(os_disk_group(&spec), 1);
        spec.os_disk_group = Some(3);
        assert_eq!(os_disk_group(&spec), 3);

        // The fates follow: the OS group erased for the install, the others erased or kept.
        let c = check(json!([{"diskGroupId": 2}]), 2, false);
        let fates: Vec<(u32, DiskFate)> = c.disk_groups.iter().map(|g| (g.id, g.fate)).collect();
        assert_eq!(fates, vec![(1, DiskFate::Erased), (2, DiskFate::OsInstall)]);
    }

    /// `endOfInstall` passed (strictly before today, UTC) is a warning; today or later is not.
    #[test]
    fn rule_end_of_install_is_past_only_strictly_before_today() {
        let ds = desired_server("a.eu", "debian12_64");
        let spec = ds.install.clone().unwrap();
        let live = observed_server("a.eu", "debian12_64");
        for (end, warned) in [
            ("2026-11-22", true),
            ("2026-11-23", false),
            ("2026-11-24", false),
            ("not a date", false),
        ] {
            let mut cat = testkit::catalog();
            cat.get_mut("debian12_64").unwrap().end_of_install = Some(end.into());
            let c = check_reinstall(&ds, &spec, &live, &cat, now());
            let eol: Vec<&ovhform::plan::Finding> = c
                .findings
                .iter()
                .filter(|f| f.code.slug() == "end-of-install")
                .collect();
            assert_eq!(!eol.is_empty(), warned, "{end}: {eol:?}");
            assert!(eol.iter().all(|f| f.severity == Severity::Warning));
            assert!(c.checks_done, "a warning does not stop the checks");
        }
    }

    /// An OS missing from the catalog names the nearest name the plan read (the server's
    /// compatible templates), so that a typo is fixed from the plan; a name near none of them
    /// gets no guess.
    #[test]
    fn rule_an_unknown_os_suggests_the_nearest_catalog_name() {
        let live = observed_server("a.eu", "debian12_64");
        let unknown = |os: &str| -> String {
            let ds = desired_server("a.eu", os);
            let spec = ds.install.clone().unwrap();
            let c = check_reinstall(&ds, &spec, &live, &testkit::catalog(), now());
            let f = c
                .findings
                .iter()
                .find(|f| f.code.slug() == "os-unknown")
                .unwrap_or_else(|| panic!("{os}: no os-unknown in {:?}", c.findings));
            assert_eq!(f.severity, Severity::Error);
            assert!(
                !c.checks_done,
                "{os}: an unknown OS leaves the checks undone"
            );
            f.message.clone()
        };
        assert_eq!(
            unknown("debian12-64"),
            "OS debian12-64 is not in the installation template catalog; did you mean `debian12_64`?"
        );
        // Only a compatible template is that close: the suggestion comes from the server.
        assert_eq!(
            unknown("win2022core-std64"),
            "OS win2022core-std64 is not in the installation template catalog; did you mean `win2022core-std_64`?"
        );
        assert_eq!(
            unknown("plan9"),
            "OS plan9 is not in the installation template catalog"
        );
    }

    fn check_with(
        edit_spec: impl FnOnce(&mut InstallSpec),
        edit_template: impl FnOnce(&mut Template),
    ) -> CheckOutcome {
        let mut ds = desired_server("a.eu", "debian12_64");
        let spec = ds.install.as_mut().unwrap();
        edit_spec(spec);
        testkit::refingerprint(spec);
        let spec = ds.install.clone().unwrap();
        let mut cat = testkit::catalog();
        edit_template(cat.get_mut("debian12_64").unwrap());
        let live = observed_server("a.eu", "debian12_64");
        check_reinstall(&ds, &spec, &live, &cat, now())
    }

    fn input(name: &str, mandatory: bool, default: Option<&str>, enums: &[&str]) -> TemplateInput {
        TemplateInput {
            name: name.into(),
            input_type: "string".into(),
            mandatory,
            default: default.map(String::from),
            enum_values: enums.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// A mandatory template input must be given unless the template has a non-empty default
    /// for it (an empty default is no default).
    #[test]
    fn rule_a_mandatory_input_needs_a_value_or_a_non_empty_default() {
        for (default, missing) in [(None, true), (Some(""), true), (Some("en-us"), false)] {
            let c = check_with(
                |_| {},
                |t| t.inputs.push(input("language", true, default, &[])),
            );
            assert_eq!(
                codes(&c).contains(&"input-missing"),
                missing,
                "default {default:?}: {:?}",
                codes(&c)
            );
        }
        // Given, it is not missing; not mandatory, it may be absent.
        let c = check_with(
            |s| s.request["customizations"]["language"] = "en-us".into(),
            |t| t.inputs.push(input("language", true, None, &[])),
        );
        assert!(codes(&c).is_empty(), "{:?}", codes(&c));
        let c = check_with(
            |_| {},
            |t| t.inputs.push(input("language", false, None, &[])),
        );
        assert!(codes(&c).is_empty(), "{:?}", codes(&c));
    }

    /// A customization outside its template's allowed values is an error that never shows a
    /// secret: not when the customization is marked secret, nor when only a value nested
    /// inside it is.
    #[test]
    fn rule_an_enum_finding_never_shows_a_secret_even_a_nested_one() {
        let c = check_with(
            |s| {
                s.request["customizations"]["imageOptions"] = json!({"token": "SEKRIT-NESTED"});
                s.secret_paths
                    .insert("/customizations/imageOptions/token".into());
            },
            |t| t.inputs.push(input("imageOptions", false, None, &["{}"])),
        );
        let f: Vec<&ovhform::plan::Finding> = c
            .findings
            .iter()
            .filter(|f| f.code.slug() == "input-enum")
            .collect();
        assert_eq!(f.len(), 1, "{:?}", codes(&c));
        assert!(!f[0].message.contains("SEKRIT"), "{}", f[0].message);
        assert!(
            f[0].message.contains("(a secret value)"),
            "{}",
            f[0].message
        );
        // A value that is not secret is quoted, so a reviewer sees what is wrong.
        let c = check_with(
            |s| s.request["customizations"]["language"] = "klingon".into(),
            |t| {
                t.inputs
                    .push(input("language", false, None, &["en-us", "fr-fr"]))
            },
        );
        assert_eq!(codes(&c), vec!["input-enum"]);
        assert!(
            c.findings[0].message.contains("\"klingon\""),
            "{}",
            c.findings[0].message
        );
        let c = check_with(
            |s| s.request["customizations"]["language"] = "fr-fr".into(),
            |t| {
                t.inputs
                    .push(input("language", false, None, &["en-us", "fr-fr"]))
            },
        );
        assert!(codes(&c).is_empty());
    }

    /// LVM is refused only for a partition that uses it on a template that is not LVM-ready.
    #[test]
    fn rule_lvm_is_refused_only_when_used_on_a_template_not_lvm_ready() {
        let lv = |s: &mut InstallSpec| {
            s.request["storage"][0]["partitioning"]["layout"][1]["extras"] =
                json!({"lv": {"name": "root"}})
        };
        let not_ready = |t: &mut Template| t.lvm_ready = Some(false);
        assert_eq!(codes(&check_with(lv, not_ready)), vec!["lvm"]);
        assert!(codes(&check_with(|_| {}, not_ready)).is_empty());
        assert!(codes(&check_with(lv, |_| {})).is_empty());
        assert!(codes(&check_with(lv, |t| t.lvm_ready = None)).is_empty());
    }

    /// A template allowing only mirroring refuses soft RAID above 1, partition by partition;
    /// RAID 0 and 1 pass.
    #[test]
    fn rule_mirroring_only_templates_refuse_raid_above_one() {
        let mirroring = |t: &mut Template| t.soft_raid_only_mirroring = true;
        // The fixture's layout: /boot and / in RAID 1.
        assert!(codes(&check_with(|_| {}, mirroring)).is_empty());
        let c = check_with(
            |s| s.request["storage"][0]["partitioning"]["layout"][0]["raidLevel"] = 0.into(),
            mirroring,
        );
        assert!(codes(&c).is_empty(), "{:?}", codes(&c));
        let c = check_with(
            |s| s.request["storage"][0]["partitioning"]["layout"][1]["raidLevel"] = 10.into(),
            mirroring,
        );
        // RAID 10 on 2 disks is also too few disks; the mirroring finding names "/" only.
        let m: Vec<&str> = c
            .findings
            .iter()
            .filter(|f| f.code.slug() == "soft-raid-mirroring")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("/: "), "{}", m[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets and credentials (src/plan/digest.rs as the planner uses it), coverage.
// ---------------------------------------------------------------------------------------------

mod secrets {
    use ovhform::model::InstallSpec;
    use ovhform::plan::digest::{FleetKey, credential_paths, is_credential_path};
    use ovhform::plan::testkit::{self, apply_in_memory_keyed};
    use ovhform::plan::{ActionKind, PlanInput};

    use crate::plan::{input, kinds, now, one, plan_ok, with_secrets};

    fn keyed() -> (PlanInput, FleetKey) {
        let key = FleetKey::new("fleet-secret-for-rule-tests").unwrap();
        let mut i = input();
        i.fleet_key = Some(key.clone());
        (i, key)
    }

    fn spec_of(d: &mut ovhform::model::Desired) -> &mut InstallSpec {
        d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap()
    }

    /// `httpHeaders` values are credentials: a rotation is never named as a changed secret,
    /// even when a real secret changes in the same edit (that one is named, and forces the
    /// reinstall).
    #[test]
    fn rule_a_rotated_credential_is_never_named_as_a_changed_secret() {
        let (keyed, key) = keyed();
        let (mut d, mut o, mut r) = one("a.eu");
        with_secrets(spec_of(&mut d));
        r.installs.clear();
        let p = plan_ok(&d, &o, &r, &keyed);
        apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
        assert_eq!(
            kinds(&plan_ok(&d, &o, &r, &keyed), "a.eu"),
            vec![ActionKind::Noop]
        );

        let spec = spec_of(&mut d);
        spec.request["customizations"]["httpHeaders"]["Authorization"] = "Bearer rotated".into();
        spec.request["customizations"]["imageURL"] = "https://images.example/x?token=NEW".into();
        testkit::refingerprint(spec);
        let p = plan_ok(&d, &o, &r, &keyed);
        let a = &p.servers["a.eu"].actions[0];
        assert_eq!(a.kind(), ActionKind::Reinstall);
        let fields: Vec<&str> = a.changes().iter().map(|c| c.field.as_str()).collect();
        assert!(
            fields.contains(&"install.customizations.imageURL"),
            "{fields:?}"
        );
        assert!(
            !fields.iter().any(|f| f.contains("httpHeaders")),
            "a credential named as a changed secret: {fields:?}"
        );
    }

    /// Regression (found by the CI preview tests): a plan keyed with another fleet secret read
    /// every recorded digest as a changed secret and proposed reinstalls on no evidence. The
    /// record now says which secret keyed it: with another one nothing secret is compared, no
    /// change is claimed, and the plan warns `fleet-secret-mismatch`. With the right one a
    /// changed secret still forces the reinstall.
    #[test]
    fn rule_another_fleet_secret_is_never_read_as_changed_secrets() {
        let (keyed, key) = keyed();
        let (mut d, mut o, mut r) = one("a.eu");
        with_secrets(spec_of(&mut d));
        r.installs.clear();
        let p = plan_ok(&d, &o, &r, &keyed);
        apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
        let mut other = input();
        other.fleet_key = FleetKey::new("not-this-fleets-secret");
        let p = plan_ok(&d, &o, &r, &other);
        assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
        let codes: Vec<&str> = p.servers["a.eu"]
            .findings
            .iter()
            .map(|f| f.code.slug())
            .collect();
        assert_eq!(codes, ["fleet-secret-mismatch"]);
        assert_eq!(p.report.coverage.secrets_not_compared, 1);
        // The right secret: a changed secret is seen and forces the rebuild.
        let spec = spec_of(&mut d);
        spec.request["customizations"]["imageURL"] = "https://images.example/x?token=NEW".into();
        testkit::refingerprint(spec);
        assert_eq!(
            kinds(&plan_ok(&d, &o, &r, &keyed), "a.eu"),
            vec![ActionKind::Reinstall]
        );
    }

    /// A keyed install with both secrets of the fixture (`imageURL`, and the
    /// post-installation script marked secret too), recorded by the test kit's executor.
    fn installed_with_two_secrets() -> (
        ovhform::model::Desired,
        ovhform::model::Observed,
        ovhform::model::Records,
        PlanInput,
    ) {
        let (keyed, key) = keyed();
        let (mut d, mut o, mut r) = one("a.eu");
        let spec = spec_of(&mut d);
        with_secrets(spec);
        spec.secret_paths
            .insert("/customizations/postInstallationScript".into());
        testkit::refingerprint(spec);
        r.installs.clear();
        let p = plan_ok(&d, &o, &r, &keyed);
        apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
        (d, o, r, keyed)
    }

    fn changed_fields(p: &ovhform::plan::Plan) -> Vec<String> {
        let a = &p.servers["a.eu"].actions[0];
        assert_eq!(a.kind(), ActionKind::Reinstall, "{a:#?}");
        a.changes().iter().map(|c| c.field.clone()).collect()
    }

    /// A changed secret is named, and only it: the other secrets, unchanged, are not.
    #[test]
    fn rule_only_the_secrets_that_changed_are_named() {
        let (mut d, o, r, keyed) = installed_with_two_secrets();
        assert_eq!(
            kinds(&plan_ok(&d, &o, &r, &keyed), "a.eu"),
            vec![ActionKind::Noop]
        );
        let spec = spec_of(&mut d);
        spec.request["customizations"]["imageURL"] = "https://images.example/x?token=NEW".into();
        testkit::refingerprint(spec);
        assert_eq!(
            changed_fields(&plan_ok(&d, &o, &r, &keyed)),
            vec!["install.customizations.imageURL"]
        );
    }

    /// When the changed secrets cannot be named — one is no longer a secret, or the record
    /// keeps only the overall digest — the plan still reinstalls and says "secrets changed".
    #[test]
    fn rule_secrets_that_cannot_be_named_still_force_the_reinstall() {
        // The script is no longer marked secret: the set of secrets changed, yet no secret of
        // the new spec differs by name.
        let (mut d, o, r, keyed) = installed_with_two_secrets();
        let spec = spec_of(&mut d);
        spec.secret_paths
            .remove("/customizations/postInstallationScript");
        testkit::refingerprint(spec);
        assert_eq!(
            changed_fields(&plan_ok(&d, &o, &r, &keyed)),
            vec!["install.secrets"]
        );
        // A record with the overall digest only: "secrets changed", not a guess per field.
        let (mut d, o, mut r, keyed) = installed_with_two_secrets();
        r.installs
            .get_mut("a.eu")
            .unwrap()
            .secrets
            .as_mut()
            .unwrap()
            .fields
            .clear();
        let spec = spec_of(&mut d);
        spec.request["customizations"]["imageURL"] = "https://images.example/x?token=NEW".into();
        testkit::refingerprint(spec);
        assert_eq!(
            changed_fields(&plan_ok(&d, &o, &r, &keyed)),
            vec!["install.secrets"]
        );
    }

    /// A record written by fingerprint algorithm 1 (secrets hashed in) cannot be compared:
    /// the spec is recorded as the new baseline (`adopt`), never rebuilt; the current
    /// algorithm's records are compared as usual.
    #[test]
    fn rule_an_old_algorithm_record_is_re_recorded_not_rebuilt() {
        let (d, o, mut r) = one("a.eu");
        let rec = r.installs.get_mut("a.eu").unwrap();
        rec.algorithm = 1;
        rec.fingerprint = format!("sha256:{}", "1".repeat(64));
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Adopt]);
        assert!(
            p.servers["a.eu"]
                .findings
                .iter()
                .any(|f| f.code.slug() == "record-algorithm-old")
        );
        assert_eq!(p.report.install.adopt, 1);
        assert_eq!(p.report.install.reinstall, 0);
        // Algorithm 2 with that fingerprint is a change of spec: a reinstall.
        r.installs.get_mut("a.eu").unwrap().algorithm = 2;
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(p.servers["a.eu"].actions[0].kind(), ActionKind::Reinstall);
        assert_eq!(p.report.install.adopt, 0);
    }

    /// Which secret paths are credentials: the values under `httpHeaders`, nothing else.
    #[test]
    fn rule_credentials_are_the_http_header_values() {
        assert!(is_credential_path(
            "/customizations/httpHeaders/Authorization"
        ));
        assert!(!is_credential_path("/customizations/httpHeaders"));
        assert!(!is_credential_path("/customizations/imageURL"));
        let mut spec = testkit::install_spec("debian12_64", "a");
        assert!(credential_paths(&spec).is_empty());
        with_secrets(&mut spec);
        spec.secret_paths
            .insert("/customizations/httpHeaders/X-Token".into());
        assert_eq!(
            credential_paths(&spec),
            [
                "/customizations/httpHeaders/Authorization".to_string(),
                "/customizations/httpHeaders/X-Token".to_string()
            ]
            .into()
        );
    }

    /// The coverage says whether the plan had the fleet secret, and for how many servers
    /// secrets could not be compared.
    #[test]
    fn rule_the_coverage_says_whether_secrets_were_compared() {
        let (keyed, _) = keyed();
        let (mut d, o, r) = one("a.eu");
        with_secrets(spec_of(&mut d));
        let p = plan_ok(&d, &o, &r, &keyed);
        assert!(p.report.coverage.fleet_key);
        // The record was written without the key: secrets could not be compared.
        assert_eq!(p.report.coverage.secrets_not_compared, 1);
        assert!(
            p.report
                .coverage
                .line()
                .contains("their records were written without this fleet secret")
        );
        let p = plan_ok(&d, &o, &r, &input());
        assert!(!p.report.coverage.fleet_key);
        assert!(p.report.coverage.line().contains("no fleet secret"));
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks and waits.
// ---------------------------------------------------------------------------------------------

fn task(id: u64, function: &str, status: TaskStatus) -> Task {
    Task {
        id,
        function: function.into(),
        status,
        comment: None,
        start_date: None,
        done_date: None,
    }
}

/// A listed task answering 404 that is newer than every task that could be read is fresh:
/// `wait`. (Task ids are unique: an unreadable task never shares its id with a readable one,
/// so "newer" is `>`.)
#[test]
fn rule_an_unreadable_task_newer_than_every_readable_one_means_wait() {
    let (d, mut o, r) = one(A);
    detail(&mut o).tasks = vec![
        task(10, "hardReboot", TaskStatus::Done),
        task(11, "hardReboot", TaskStatus::Unreadable),
    ];
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Wait]);
    let Action::Wait(w) = &p.servers[A].actions[0] else {
        unreachable!()
    };
    assert!(matches!(&w.on, WaitOn::Task(t) if t.id == 11));
    // Older than a readable task: purged, not waited on.
    detail(&mut o).tasks[1].id = 9;
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), A),
        vec![ActionKind::Noop]
    );
}

/// Several pending tasks: the wait names the oldest and counts the others.
#[test]
fn rule_the_wait_names_the_oldest_pending_task() {
    let (d, mut o, r) = one(A);
    detail(&mut o).tasks = vec![
        task(30, "hardReboot", TaskStatus::Doing),
        task(12, "reinstallServer", TaskStatus::Todo),
        task(20, "hardReboot", TaskStatus::Done),
        task(40, "upgradeFirmware", TaskStatus::Init),
    ];
    let p = plan_ok(&d, &o, &r, &input());
    let Action::Wait(w) = &p.servers[A].actions[0] else {
        panic!("{:#?}", p.servers[A])
    };
    assert!(matches!(&w.on, WaitOn::Task(t) if t.id == 12), "{w:?}");
    assert!(w.reason.contains("(+2 more pending)"), "{}", w.reason);
}

// ---------------------------------------------------------------------------------------------
// Which servers need their detail read.
// ---------------------------------------------------------------------------------------------

/// With the fleet secret, a secret changed since the record makes the server need its
/// detail (a reinstall may follow); an unchanged secret, or a record without digests, does
/// not.
#[test]
fn rule_a_changed_secret_needs_detail_with_the_fleet_secret() {
    use ovhform::plan::digest::FleetKey;
    use ovhform::plan::needs_detail;
    use ovhform::plan::testkit::apply_in_memory_keyed;

    let key = FleetKey::new("fleet-secret-for-rule-tests").unwrap();
    let mut keyed = input();
    keyed.fleet_key = Some(key.clone());
    let (mut d, mut o, mut r) = one(A);
    crate::plan::with_secrets(ds(&mut d).install.as_mut().unwrap());
    r.installs.clear();
    let p = plan_ok(&d, &o, &r, &keyed);
    apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
    let mut listing = o.clone();
    live(&mut listing).detail = None;
    assert!(needs_detail(&d, &listing, &r, &keyed).is_empty());

    let spec = ds(&mut d).install.as_mut().unwrap();
    spec.request["customizations"]["imageURL"] = "https://images.example/x?token=NEW".into();
    testkit::refingerprint(spec);
    // The fingerprint covers no secret: only the keyed digests tell the change.
    assert_eq!(spec.fingerprint, r.installs[A].fingerprint);
    assert_eq!(
        needs_detail(&d, &listing, &r, &keyed),
        [A.to_string()].into()
    );
    // Without the key, or with a record written without it, secrets are not compared.
    assert!(needs_detail(&d, &listing, &r, &input()).is_empty());
    r.installs.get_mut(A).unwrap().secrets = None;
    assert!(needs_detail(&d, &listing, &r, &keyed).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Install drift from the task history, and records that cannot be true.
// ---------------------------------------------------------------------------------------------

fn dated(id: u64, function: &str, status: TaskStatus, at: jiff::Timestamp) -> Task {
    Task {
        start_date: Some(at),
        done_date: Some(at),
        ..task(id, function, status)
    }
}

fn install_drift_live(p: &Plan) -> Vec<String> {
    p.servers[A]
        .drift
        .iter()
        .filter(|d| d.field == "install")
        .filter_map(|d| d.live.clone())
        .collect()
}

/// A reinstall ovhform did not make is a finished `reinstallServer` task other than the
/// recorded one that started after the recorded install started (or, without dates, whose
/// id is higher than the recorded task's). Other tasks, unfinished or cancelled reinstalls,
/// and the recorded task itself are not.
#[test]
fn rule_a_foreign_reinstall_is_a_later_finished_reinstall_task() {
    let recorded = now()
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap();
    let later = now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let earlier = now()
        .checked_sub(jiff::SignedDuration::from_hours(48))
        .unwrap();
    let (d, mut o, r) = one(A);
    assert_eq!(r.installs[A].started, Some(recorded));
    assert_eq!(r.installs[A].task_id, Some(1000));
    let drift_with = |o: &mut Observed, tasks: Vec<Task>, r: &Records| {
        detail(o).tasks = tasks;
        install_drift_live(&plan_ok(&d, o, r, &input()))
    };
    let foreign = |id: u64| vec![format!("reinstalled by task {id}")];
    let none: Vec<String> = vec![];

    let t = dated(2000, "reinstallServer", TaskStatus::Done, later);
    assert_eq!(drift_with(&mut o, vec![t.clone()], &r), foreign(2000));
    // Two of them: the latest is named.
    let t2 = dated(2001, "reinstallServer", TaskStatus::Done, later);
    assert_eq!(drift_with(&mut o, vec![t2, t.clone()], &r), foreign(2001));
    // Not a reinstall, not finished, cancelled, or before the record: no drift.
    for other in [
        dated(2000, "hardReboot", TaskStatus::Done, later),
        dated(2000, "reinstallServer", TaskStatus::Cancelled, later),
        dated(2000, "reinstallServer", TaskStatus::Done, earlier),
        // Started at the very instant the recorded install started: not after it.
        dated(2000, "reinstallServer", TaskStatus::Done, recorded),
        // The recorded task itself.
        dated(1000, "reinstallServer", TaskStatus::Done, later),
    ] {
        assert_eq!(
            drift_with(&mut o, vec![other.clone()], &r),
            none,
            "{other:?}"
        );
    }

    // Without dates on the record, task ids decide.
    let mut r2 = r.clone();
    let rec = r2.installs.get_mut(A).unwrap();
    rec.started = None;
    rec.finished = None;
    assert_eq!(drift_with(&mut o, vec![t.clone()], &r2), foreign(2000));
    let old = dated(999, "reinstallServer", TaskStatus::Done, later);
    assert_eq!(drift_with(&mut o, vec![old], &r2), none);
    // The record's dates, but a task without one: ids decide too.
    let undated = task(2000, "reinstallServer", TaskStatus::Done);
    assert_eq!(drift_with(&mut o, vec![undated.clone()], &r), foreign(2000));
    let undated_old = task(999, "reinstallServer", TaskStatus::Done);
    assert_eq!(drift_with(&mut o, vec![undated_old], &r), none);
    // Neither dates nor a task id on the record: nothing can be told foreign.
    r2.installs.get_mut(A).unwrap().task_id = None;
    assert_eq!(drift_with(&mut o, vec![t], &r2), none);
    assert_eq!(drift_with(&mut o, vec![undated], &r2), none);
}

/// A failed reinstall — the last `reinstallServer` task ended `customerError` or `ovhError` —
/// leaves the server degraded; a later successful one heals it, and other tasks do not count.
#[test]
fn rule_only_the_last_reinstall_task_tells_a_degraded_server() {
    let (d, mut o, mut r) = one(A);
    r.installs.clear();
    let degraded = |o: &Observed| {
        let p = plan_ok(&d, o, &r, &input());
        p.servers[A]
            .findings
            .iter()
            .any(|f| f.code.slug() == "install-failed")
    };
    for failed in [TaskStatus::CustomerError, TaskStatus::OvhError] {
        detail(&mut o).tasks = vec![task(20, "reinstallServer", failed)];
        assert!(degraded(&o), "{failed:?}");
        // A later hardReboot does not heal it; a later reinstall does.
        detail(&mut o)
            .tasks
            .push(task(21, "hardReboot", TaskStatus::Done));
        assert!(degraded(&o), "{failed:?}");
        detail(&mut o)
            .tasks
            .push(task(22, "reinstallServer", TaskStatus::Done));
        assert!(!degraded(&o), "{failed:?}");
        // An earlier failure is history.
        detail(&mut o).tasks = vec![
            task(22, "reinstallServer", TaskStatus::Done),
            task(20, "reinstallServer", failed),
        ];
        assert!(!degraded(&o), "{failed:?}");
    }
    detail(&mut o).tasks = vec![task(20, "reinstallServer", TaskStatus::Cancelled)];
    assert!(!degraded(&o));
    detail(&mut o).tasks = vec![task(20, "hardReboot", TaskStatus::CustomerError)];
    assert!(!degraded(&o));
    // Degraded: never adopted, the adopt is blocked with the failing task.
    detail(&mut o).tasks = vec![task(20, "reinstallServer", TaskStatus::OvhError)];
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(shape(&p), vec![(ActionKind::Blocked, ActionKind::Adopt)]);
    assert!(matches!(
        p.servers[A].actions[0].blockers(),
        [Blocker::InstallFailed { task: 20, .. }]
    ));
}

fn refused(p: &Plan) -> bool {
    p.servers[A]
        .findings
        .iter()
        .any(|f| f.code.slug() == "record-implausible")
}

/// A record is refused when it cannot be true: it names another server, an algorithm this
/// ovhform does not know (0, or above the current one), a fingerprint that is not
/// `sha256:` + 64 hex digits, or a start or finish more than 10 minutes in the future.
#[test]
fn rule_an_implausible_record_is_refused_at_each_boundary() {
    let check = |edit: &dyn Fn(&mut InstallRecord), want: bool| {
        let (d, o, mut r) = one(A);
        edit(r.installs.get_mut(A).unwrap());
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(refused(&p), want, "{:?}", r.installs[A]);
        let expect = if want {
            ActionKind::Adopt
        } else {
            ActionKind::Noop
        };
        assert_eq!(kinds(&p, A), vec![expect]);
    };
    let at = |mins: i64| {
        now()
            .checked_add(jiff::SignedDuration::from_mins(mins))
            .unwrap()
    };
    check(&|_| {}, false);
    check(&|r| r.server = "b.eu".into(), true);
    check(&|r| r.algorithm = 0, true);
    check(
        &|r| r.algorithm = ovhform::plan::digest::ALGORITHM + 1,
        true,
    );
    check(
        &|r| r.fingerprint = format!("sha256:{}", "a".repeat(63)),
        true,
    );
    check(
        &|r| r.fingerprint = format!("sha256:{}", "a".repeat(65)),
        true,
    );
    check(
        &|r| r.fingerprint = format!("sha256:{}g", "a".repeat(63)),
        true,
    );
    check(
        &|r| r.fingerprint = format!("sha512:{}", "a".repeat(64)),
        true,
    );
    check(&|r| r.finished = Some(at(10)), false);
    check(&|r| r.finished = Some(at(11)), true);
    check(&|r| r.started = Some(at(10)), false);
    check(&|r| r.started = Some(at(11)), true);
}

/// A record of an OS the server does not run, on a server already running the manifest's
/// OS, is refused unless a reinstall happened since the record (then the OS did change:
/// the record is believed and the difference planned).
#[test]
fn rule_a_record_of_another_os_is_refused_unless_a_reinstall_followed_it() {
    let since = now()
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap();
    let after = now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let before = now()
        .checked_sub(jiff::SignedDuration::from_hours(48))
        .unwrap();
    let plan_with = |tasks: Vec<Task>, edit: &dyn Fn(&mut InstallRecord)| {
        let (d, mut o, mut r) = one(A);
        let rec = r.installs.get_mut(A).unwrap();
        rec.os = "debian11_64".into();
        edit(rec);
        detail(&mut o).tasks = tasks;
        plan_ok(&d, &o, &r, &input())
    };
    let p = plan_with(vec![], &|_| {});
    assert!(refused(&p));
    assert_eq!(kinds(&p, A), vec![ActionKind::Adopt]);
    // A reinstall after the record's start: the record is believed (its OS differs from the
    // manifest's: a reinstall is planned).
    let p = plan_with(
        vec![dated(2000, "reinstallServer", TaskStatus::Done, after)],
        &|_| {},
    );
    assert!(!refused(&p), "{:#?}", p.servers[A].findings);
    assert_eq!(
        p.servers[A].actions[0].effective_kind(),
        ActionKind::Reinstall
    );
    // Only before it, or only other tasks: refused.
    for t in [
        dated(2000, "reinstallServer", TaskStatus::Done, before),
        dated(2000, "reinstallServer", TaskStatus::Done, since),
        dated(2000, "hardReboot", TaskStatus::Done, after),
    ] {
        assert!(refused(&plan_with(vec![t.clone()], &|_| {})), "{t:?}");
    }
    // Without dates on the record, a later task id counts; an earlier one does not.
    let undated = |r: &mut InstallRecord| {
        r.started = None;
        r.finished = None;
    };
    let later = task(2000, "reinstallServer", TaskStatus::Done);
    assert!(!refused(&plan_with(vec![later.clone()], &undated)));
    let earlier = task(999, "reinstallServer", TaskStatus::Done);
    assert!(refused(&plan_with(vec![earlier], &undated)));
    // The recorded task itself is the install the record describes, not one since.
    let itself = task(1000, "reinstallServer", TaskStatus::Done);
    assert!(refused(&plan_with(vec![itself], &undated)));
    // Neither dates nor a task id: any reinstall in the history counts.
    let bare = |r: &mut InstallRecord| {
        r.started = None;
        r.finished = None;
        r.task_id = None;
    };
    assert!(!refused(&plan_with(vec![later.clone()], &bare)));
    assert!(refused(&plan_with(vec![], &bare)));
    // Dates on the record, none on the task, no task id: nothing tells the order.
    let no_id = |r: &mut InstallRecord| r.task_id = None;
    assert!(refused(&plan_with(vec![later], &no_id)));
    // The live OS differing from the manifest too is install drift, not an implausible
    // record (the history may have been purged).
    let (d, mut o, mut r) = one(A);
    r.installs.get_mut(A).unwrap().os = "debian11_64".into();
    live(&mut o).os = "ubuntu2404-server_64".into();
    let p = plan_ok(&d, &o, &r, &input());
    assert!(!refused(&p));
    // Without the detail the history is unknown: the record is believed.
    let (d, mut o, mut r) = one(A);
    r.installs.get_mut(A).unwrap().os = "debian11_64".into();
    live(&mut o).detail = None;
    assert!(!refused(&plan_ok(&d, &o, &r, &input())));
}

// ---------------------------------------------------------------------------------------------
// Boot.
// ---------------------------------------------------------------------------------------------

/// Boot drift follows its policy and is counted: `correct` sets the boot back and counts a
/// corrected drift; `warn` counts it only.
#[test]
fn rule_boot_drift_is_corrected_only_under_correct_and_counted() {
    let (mut d, mut o, mut r) = one(A);
    applied_as_desired(&d, &mut r);
    live(&mut o).boot_id = Some(22);
    live(&mut o).boot = Some(testkit::boots()[1].clone());
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Noop]);
    assert_eq!((p.report.boot.drift, p.report.boot.drift_corrected), (1, 0));
    ds(&mut d).policy.drift.boot = DriftAction::Correct;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::SetBoot]);
    assert_eq!((p.report.boot.drift, p.report.boot.drift_corrected), (1, 1));
    assert_eq!(
        p.servers[A].actions[0].reason(),
        "correct boot drift (spec.policy.drift.boot: correct)"
    );
}

/// Leaving an iPXE script for another boot shows the script being removed.
#[test]
fn rule_leaving_an_ipxe_script_shows_the_script_removed() {
    let (mut d, mut o, r) = one(A);
    ds(&mut d).boot = Some(rescue_on_change());
    let l = live(&mut o);
    l.boot_id = None;
    l.boot = None;
    l.boot_script = Some("#!ipxe\nchain http://boot.example/old.ipxe\n".into());
    let p = plan_ok(&d, &o, &r, &input());
    let set = p.servers[A].actions[0].set_boot().unwrap();
    let diff = set.script_diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains("-chain http://boot.example/old.ipxe"),
        "{diff}"
    );
    // No script on either side: no diff.
    let (mut d, o, r) = one(A);
    ds(&mut d).boot = Some(rescue_on_change());
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        p.servers[A].actions[0].set_boot().unwrap().script_diff,
        None
    );
}

/// When the task history is purged, the store's memory of a failed reinstall still makes the
/// server degraded, and the finding names the status the store kept (a customer error is the
/// customer's to fix, an OVH error OVH's): the status is not flattened to one kind.
#[test]
fn rule_a_failure_the_store_remembers_keeps_its_status() {
    let (d, mut o, mut r) = one(A);
    r.installs.clear();
    detail(&mut o).tasks.clear();
    for (status, shown) in [
        ("customerError", "ended customerError"),
        ("cancelled", "ended cancelled"),
        ("ovhError", "ended ovhError"),
    ] {
        r.failed.insert(
            A.into(),
            FailedInstall {
                task: 20,
                status: status.into(),
                step: None,
                error: None,
                at: now(),
            },
        );
        let p = plan_ok(&d, &o, &r, &input());
        let failed: Vec<&str> = p.servers[A]
            .findings
            .iter()
            .filter(|f| f.code.slug() == "install-failed")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(failed.len(), 1, "{status}: {:#?}", p.servers[A].findings);
        assert!(
            failed[0].starts_with(&format!("the last reinstall (task 20) {shown}:")),
            "{status}: {}",
            failed[0]
        );
        // Degraded: never adopted as healthy.
        assert_eq!(shape(&p), vec![(ActionKind::Blocked, ActionKind::Adopt)]);
        assert!(
            matches!(
                p.servers[A].actions[0].blockers(),
                [Blocker::InstallFailed { task: 20, .. }]
            ),
            "{status}: {:#?}",
            p.servers[A].actions
        );
    }
}

/// An explicit boot id is set only when the server offers it; any other id is blocked
/// (`boot-unresolved`), never PUT (mutation testing: the guard of `resolve`).
#[test]
fn rule_an_explicit_boot_id_is_set_only_when_the_server_offers_it() {
    let (mut d, o, r) = one(A);
    ds(&mut d).boot = Some(BootSpec {
        mode: BootMode::BootId { id: 44 },
        reboot: RebootPolicy::Never,
        lease: None,
    });
    let p = plan_ok(&d, &o, &r, &input());
    let set = p.servers[A]
        .actions
        .iter()
        .find_map(|a| match a {
            Action::SetBoot(s) => Some(s.target.clone()),
            _ => None,
        })
        .expect("a boot change");
    assert_eq!(set, ovhform::plan::BootTarget::BootId { id: 44 });

    ds(&mut d).boot = Some(BootSpec {
        mode: BootMode::BootId { id: 4242 },
        reboot: RebootPolicy::Never,
        lease: None,
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(shape(&p), vec![(ActionKind::Blocked, ActionKind::SetBoot)]);
    assert_eq!(blocker_kinds(&p), vec![vec!["boot-unresolved"]]);
}

/// A blocked action blocked again keeps every reason, each once (mutation testing:
/// `Action::block`), so a reviewer and the daemon's status see all of them.
#[test]
fn rule_a_blocked_action_blocked_again_keeps_every_reason_once() {
    let a = Action::noop("x")
        .block(vec![Blocker::DetailMissing])
        .block(vec![Blocker::RecordDisputed, Blocker::DetailMissing]);
    let kinds: Vec<&str> = a.blockers().iter().map(|b| b.kind_name()).collect();
    assert_eq!(kinds, ["detail-missing", "record-disputed"]);
}

/// A group warns only when it plans *more* reinstalls than it runs at once, and the report
/// counts the groups over their limit (mutation testing: `group_limits`).
#[test]
fn rule_a_group_at_its_reinstall_limit_does_not_warn_and_one_over_does() {
    const B: &str = "ns3000002.ip-51-68-1.eu";
    let (mut d, mut o, mut r) = one(A);
    let (d2, o2, r2) = one(B);
    d.servers.extend(d2.servers);
    o.servers.extend(o2.servers);
    r.installs.extend(r2.installs);
    r.applied.extend(r2.applied);
    for name in [A, B] {
        let s = d.servers.get_mut(name).unwrap();
        s.install.as_mut().unwrap().generation += 1;
        s.groups = vec!["web".into()];
    }
    let group = |max| DesiredGroup {
        name: "web".into(),
        origin: testkit::origin("groups/web.yaml", 1),
        members: [A.to_string(), B.to_string()].into(),
        max_concurrent_reinstalls: Some(max),
    };
    let warned = |p: &Plan| {
        p.findings
            .iter()
            .filter(|f| f.code == ovhform::plan::FindingCode::GroupLimit)
            .count()
    };
    d.groups.insert("web".into(), group(2));
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, A), vec![ActionKind::Reinstall]);
    assert_eq!(kinds(&p, B), vec![ActionKind::Reinstall]);
    assert_eq!((warned(&p), p.report.limits.groups_over_limit), (0, 0));
    d.groups.insert("web".into(), group(1));
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!((warned(&p), p.report.limits.groups_over_limit), (1, 1));
}

/// A saved plan whose server entry is filed under another server's name (an edited plan that
/// would run one server's actions on another) fails the lint, which apply runs before
/// anything (mutation testing: `lint::server_key`).
#[test]
fn rule_a_server_plan_filed_under_another_name_fails_the_lint() {
    const B: &str = "ns3000002.ip-51-68-1.eu";
    let (d, o, r) = one(A);
    let mut p = plan_ok(&d, &o, &r, &input());
    let sp = p.servers.remove(A).unwrap();
    p.servers.insert(B.to_string(), sp);
    let errors = ovhform::plan::lint(&p);
    assert!(
        errors
            .iter()
            .any(|e| e.server == B && e.message.contains("names itself")),
        "{errors:#?}"
    );
}

/// A's plan when ovhform has no record of it: `adopt`.
fn adopt_action() -> Action {
    let (d, o, _) = one(A);
    let p = plan_ok(&d, &o, &Records::default(), &input());
    p.servers[A].actions[0].clone()
}

/// A's plan after a generation bump: a runnable `reinstall` (approved or not, it is one).
fn reinstall_action() -> Action {
    let (mut d, o, r) = one(A);
    bump_generation(&mut d);
    let p = plan_ok(&d, &o, &r, &input());
    p.servers[A]
        .actions
        .iter()
        .find(|a| matches!(a, Action::Reinstall(_)))
        .cloned()
        .expect("a runnable reinstall")
}

/// Every lint check fires on the tampering it exists for (a saved plan is as hostile as an
/// API answer: apply refuses a plan that fails the lint). Each row starts from a consistent
/// plan, breaks one invariant and expects that check's name (mutation testing: every
/// `lint.rs` check replaced by a no-op is caught).
#[test]
fn rule_every_lint_check_fires_on_its_tampering() {
    use ovhform::plan::{BootTarget, Forget, Noop};
    // A consistent plan: set-boot + reboot on A.
    let boot_plan = || {
        let (mut d, o, r) = one(A);
        ds(&mut d).boot = Some(rescue_on_change());
        plan_ok(&d, &o, &r, &input())
    };
    let noop = || {
        Action::Noop(Noop {
            reason: "in sync".into(),
        })
    };
    let forget = || {
        Action::Forget(Forget {
            reason: "no manifest".into(),
            changes: Vec::new(),
        })
    };
    type Tamper = fn(&mut ovhform::plan::ServerPlan, &dyn Fn() -> Action, &dyn Fn() -> Action);
    let rows: Vec<(&str, Tamper)> = vec![
        ("no-actions", |sp, _, _| sp.actions.clear()),
        ("forget-scope", |sp, _, f| sp.actions = vec![f()]),
        ("outside-universe", |sp, _, _| {
            sp.presence.desired = false;
            sp.presence.observed = false;
        }),
        ("alone", |sp, n, _| sp.actions.push(n())),
        ("duplicate", |sp, _, _| {
            let first = sp.actions[0].clone();
            sp.actions.insert(0, first);
        }),
        ("order", |sp, _, _| sp.actions.reverse()),
        ("reboot-after-set-boot", |sp, _, _| {
            sp.actions.remove(0);
        }),
        ("boot-resolved", |sp, _, _| {
            if let Action::SetBoot(s) = &mut sp.actions[0] {
                s.target = BootTarget::Unresolved {
                    wanted: "rescue-customer".into(),
                };
            }
        }),
        ("blocked-shape", |sp, n, _| {
            sp.actions = vec![n().block(vec![Blocker::DetailMissing])];
        }),
        ("blocked-shape", |sp, _, _| {
            // Blocking nothing in particular, and not saying why.
            sp.actions = vec![Action::Blocked(ovhform::plan::Blocked {
                reason: " ".into(),
                action: None,
                blockers: vec![Blocker::DetailMissing],
            })];
        }),
        ("adopt-or-reinstall", |sp, _, _| {
            sp.actions = vec![adopt_action(), reinstall_action()];
        }),
        ("reinstall-grounded", |sp, _, _| {
            let mut r = reinstall_action();
            if let Action::Reinstall(x) = &mut r {
                x.changes.retain(|c| !c.field.starts_with("install."));
            }
            sp.actions = vec![r];
        }),
        ("reinstall-runnable", |sp, _, _| {
            let mut r = reinstall_action();
            if let Action::Reinstall(x) = &mut r {
                x.checks_done = false;
            }
            sp.actions = vec![r];
        }),
        ("secret-shown", |sp, _, _| {
            let mut r = reinstall_action();
            if let Action::Reinstall(x) = &mut r
                && let Some(c) = x.request.get_mut("customizations")
            {
                c["postInstallationScript"] = "IyEvYmluL3NoCmVjaG8gc2VjcmV0".into();
            }
            sp.actions = vec![r];
        }),
        ("kept-groups-sent", |sp, _, _| {
            let mut r = reinstall_action();
            if let Action::Reinstall(x) = &mut r {
                x.keep_disk_groups.insert(2);
            }
            sp.actions = vec![r];
        }),
    ];
    for (rule, tamper) in rows {
        let mut p = boot_plan();
        assert!(ovhform::plan::lint(&p).is_empty());
        tamper(p.servers.get_mut(A).unwrap(), &noop, &forget);
        let errors = ovhform::plan::lint(&p);
        assert!(
            errors.iter().any(|e| e.rule == rule),
            "{rule} did not fire: {errors:#?}"
        );
        if rule == "duplicate" {
            // Two actions of one rank are in order: only `duplicate` speaks.
            assert!(!errors.iter().any(|e| e.rule == "order"), "{errors:#?}");
        }
    }
}
