//! Issue 8, "Facts the planner gets wrong today": a task answering 404 is not gone, an odd
//! server never aborts the fleet's plan, and `--install-api legacy` plans what the legacy
//! route can do. Each "seen" is a named `regression_` test.

use ovhform::model::*;
use ovhform::plan::{ActionKind, Blocker, InstallRoute, PlanInput, WaitOn};

use crate::plan::{input, kinds, one, plan_ok};

fn listed_but_404(o: &mut Observed, id: u64, function: &str) {
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .tasks
        .push(Task {
            id,
            function: function.into(),
            status: TaskStatus::Unreadable,
            comment: None,
            start_date: None,
            done_date: None,
        });
}

/// Seen: a `reinstallServer` task in `init` answering 404 produced a second reinstall under
/// the wipe banner. Fresh tasks answer 404 for a while: a listed task newer than every
/// readable one means `wait`.
#[test]
fn regression_a_fresh_reinstall_task_answering_404_means_wait_not_a_second_reinstall() {
    let (mut d, mut o, r) = one("a.eu");
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 2;
    listed_but_404(&mut o, 9001, "reinstallServer");
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Wait]);
    let ovhform::plan::Action::Wait(w) = &p.servers["a.eu"].actions[0] else {
        unreachable!()
    };
    assert!(matches!(&w.on, WaitOn::Task(t) if t.id == 9001 && t.status == TaskStatus::Unreadable));
    assert!(w.reason.contains("404"), "{}", w.reason);
}

/// Seen: a `hardReboot` in `init` got a `set-boot`.
#[test]
fn regression_a_fresh_reboot_answering_404_gets_no_set_boot() {
    let (mut d, mut o, r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().boot = Some(BootSpec {
        mode: BootMode::Rescue {
            kernel: "rescue-customer".into(),
        },
        reboot: RebootPolicy::OnChange,
        lease: None,
    });
    listed_but_404(&mut o, 9002, "hardReboot");
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Wait]);
}

/// An unreadable task older than a task that could be read was purged, not fresh — unless
/// the install status could not be read either, when it may still be running.
#[test]
fn an_old_unreadable_task_is_purged_unless_the_install_status_is_unknown() {
    let (d, mut o, r) = one("a.eu");
    listed_but_404(&mut o, 10, "hardReboot");
    let detail = o.servers.get_mut("a.eu").unwrap().detail.as_mut().unwrap();
    detail.tasks.push(Task {
        id: 20,
        function: "hardReboot".into(),
        status: TaskStatus::Done,
        comment: None,
        start_date: None,
        done_date: None,
    });
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Noop]
    );
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .install_status_unknown = true;
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Wait]
    );
}

/// A status this ovhform does not know is read as running (never as "gone").
#[test]
fn an_unknown_task_status_is_waited_on() {
    let status: TaskStatus = serde_json::from_str("\"exploded\"").unwrap();
    assert_eq!(status, TaskStatus::Unknown);
    let (d, mut o, r) = one("a.eu");
    listed_but_404(&mut o, 5, "hardReboot");
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .tasks[0]
        .status = status;
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Wait]
    );
}

/// One odd server never aborts the fleet's plan: what `observe` could not make sense of
/// becomes a finding on that server, which gets no action; the others are planned.
#[test]
fn regression_an_odd_server_gets_a_finding_not_an_aborted_plan() {
    let (mut d, mut o, r) = one("a.eu");
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 2;
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .anomalies
        .push("boot 99 has unknown bootType `quantum`".into());
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(
        (a.kind(), a.effective_kind()),
        (ActionKind::Blocked, ActionKind::Reinstall)
    );
    assert!(
        a.blockers()
            .iter()
            .any(|b| matches!(b, Blocker::ObservedAnomaly { what } if what.contains("quantum")))
    );
}

/// `plan --install-api legacy` plans what the legacy route can do, the decision apply makes:
/// kept disk groups cannot be expressed there, so the reinstall is refused with an error
/// finding instead of erasing the group the manifest keeps.
#[test]
fn regression_the_legacy_route_cannot_keep_disk_groups() {
    let (mut d, o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.generation = 2;
    spec.keep_disk_groups.insert(2);
    spec.request["storage"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"diskGroupId": 2, "erase": false}));
    ovhform::plan::testkit::refingerprint(spec);
    let legacy = PlanInput {
        install_route: InstallRoute::Legacy,
        ..input()
    };
    let p = plan_ok(&d, &o, &r, &legacy);
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(
        (a.kind(), a.effective_kind()),
        (ActionKind::Blocked, ActionKind::Reinstall)
    );
    assert!(
        p.servers["a.eu"]
            .findings
            .iter()
            .any(|f| f.code.slug() == "legacy-unsupported")
    );
    // The same spec on the reinstall route is fine.
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Reinstall]
    );
}

/// The coverage line says what was not read and how to read it: `--refresh` reads every live
/// server's detail, so a foreign same-OS reinstall on an otherwise unchanged server is seen.
#[test]
fn refresh_reads_every_server_and_the_coverage_line_says_so() {
    use ovhform::plan::{needs_detail, plan, testkit};
    let (d, o, r) = testkit::fleet(5, crate::plan::now(), false);
    assert!(needs_detail(&d, &o, &r, &input()).is_empty());
    let p = plan(&d, &o, &r, &input());
    assert_eq!(p.report.coverage.detail_not_read, 5);
    assert!(p.report.coverage.line().contains("--refresh"));
    let refresh = PlanInput {
        refresh: true,
        ..input()
    };
    assert_eq!(needs_detail(&d, &o, &r, &refresh).len(), 5);
}

/// `--replace SERVER` (Terraform's `-replace`) plans a rebuild with an unchanged spec, and
/// says why; other servers are untouched.
#[test]
fn replace_plans_a_rebuild_with_the_same_spec() {
    let (d, o, r) = one("a.eu");
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Noop]
    );
    let replace = PlanInput {
        replace: ["a.eu".to_string()].into(),
        ..input()
    };
    let p = plan_ok(&d, &o, &r, &replace);
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    assert_eq!(a.changes()[0].field, "install.replace");
}
