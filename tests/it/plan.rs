//! The planner's safety rules, one named test each, on plain model values built in memory.
//! `scenario()` is the fleet the rendering snapshots use too: one server per situation.

use std::collections::BTreeSet;

use base64::Engine as _;
use ovhform::model::*;
use ovhform::plan::testkit::{self, desired_server, observed_server, record_for};
use ovhform::plan::{
    Action, ActionKind, Approval, BootTarget, DiskFate, Plan, PlanInput, Severity, WaitOn, lint,
    needs_detail, plan,
};

pub const NOW: &str = "2026-11-23T12:00:00Z";
/// Secret values that must never appear in any rendering.
pub const SECRET_HEADER: &str = "Bearer s3cr3t-TOKEN-never-shown";
pub const SECRET_SCRIPT: &str = "#!/bin/sh\necho 'db_password=hunter2-NEVER-SHOWN'\n";
pub const SECRET_URL_TOKEN: &str = "tok-9f8e7d-NEVER-SHOWN";

pub fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

pub fn input() -> PlanInput {
    PlanInput {
        revision: Some("4f2c9e1".into()),
        apply_command: Some("ovhform apply plan.json".into()),
        ..PlanInput::new(now())
    }
}

/// Plan and assert the lint is clean (every test goes through this).
pub fn plan_ok(d: &Desired, o: &Observed, r: &Records, i: &PlanInput) -> Plan {
    let p = plan(d, o, r, i);
    let errs = lint(&p);
    assert!(errs.is_empty(), "plan lint: {errs:#?}");
    p
}

/// What blocks `a`, as the renderers word it.
fn blocked_by(a: &Action) -> Vec<String> {
    a.blockers().iter().map(ToString::to_string).collect()
}

pub fn kinds(p: &Plan, server: &str) -> Vec<ActionKind> {
    p.servers[server].actions.iter().map(|a| a.kind()).collect()
}

/// Desired + observed + records for one in-sync server, ready to be bent by a test.
pub fn one(name: &str) -> (Desired, Observed, Records) {
    let mut d = Desired::default();
    let mut o = Observed {
        templates: testkit::catalog(),
        ..Default::default()
    };
    let mut r = Records::default();
    let ds = desired_server(name, "debian12_64");
    r.installs.insert(
        name.into(),
        record_for(name, ds.install.as_ref().unwrap(), now()),
    );
    d.servers.insert(name.into(), ds);
    o.servers
        .insert(name.into(), observed_server(name, "debian12_64"));
    (d, o, r)
}

fn nights() -> MaintenanceWindow {
    MaintenanceWindow {
        name: "prod-nights".into(),
        origin: testkit::origin("windows.yaml", 1),
        schedule: "0 2 * * *".into(),
        duration_secs: 3 * 3600,
        time_zone: "Europe/Paris".into(),
    }
}

pub fn with_secrets(spec: &mut InstallSpec) {
    let c = spec.request["customizations"].as_object_mut().unwrap();
    c.insert(
        "httpHeaders".into(),
        serde_json::json!({"Authorization": SECRET_HEADER}),
    );
    c.insert(
        "postInstallationScript".into(),
        base64::engine::general_purpose::STANDARD
            .encode(SECRET_SCRIPT)
            .into(),
    );
    c.insert(
        "imageURL".into(),
        format!("https://images.example/deb.qcow2?token={SECRET_URL_TOKEN}").into(),
    );
    spec.secret_paths.insert("/customizations/imageURL".into());
    spec.secret_paths
        .insert("/customizations/httpHeaders/Authorization".into());
    testkit::refingerprint(spec);
}

/// One server per situation the planner knows; the rendering snapshots use it.
pub fn scenario() -> (Desired, Observed, Records) {
    let mut d = Desired::default();
    let mut o = Observed {
        templates: testkit::catalog(),
        ..Default::default()
    };
    let mut r = Records::default();
    d.windows.insert("prod-nights".into(), nights());
    let n = now();
    let mut add =
        |name: &str, f: &mut dyn FnMut(&mut DesiredServer, &mut ObservedServer, &mut Records)| {
            let mut ds = desired_server(name, "debian12_64");
            let mut live = observed_server(name, "debian12_64");
            r.installs.insert(
                name.into(),
                record_for(name, ds.install.as_ref().unwrap(), n),
            );
            r.applied.insert(
                name.into(),
                AppliedState {
                    lease: None,
                    boot: Some(BootMode::Disk),
                    settings: Settings::default(),
                },
            );
            f(&mut ds, &mut live, &mut r);
            d.servers.insert(name.into(), ds);
            o.servers.insert(name.into(), live);
        };
    add("adopt.ns1.eu", &mut |_, _, r| {
        r.installs.remove("adopt.ns1.eu");
    });
    add("wipe-new.ns2.eu", &mut |ds, live, r| {
        r.installs.remove("wipe-new.ns2.eu");
        live.os = "ubuntu2404-server_64".into();
        let spec = ds.install.as_mut().unwrap();
        spec.keep_disk_groups.insert(2);
        spec.request["storage"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"diskGroupId": 2, "erase": false}));
        with_secrets(spec);
    });
    add("wipe-auto.ns3.eu", &mut |ds, _, _| {
        ds.policy.reinstall = ReinstallPolicy::Auto;
        let spec = ds.install.as_mut().unwrap();
        spec.request["customizations"]["hostname"] = "web-03-new".into();
        testkit::refingerprint(spec);
    });
    add("never.ns4.eu", &mut |ds, _, _| {
        ds.policy.reinstall = ReinstallPolicy::Never;
        ds.install.as_mut().unwrap().generation = 2;
    });
    add("window.ns5.eu", &mut |ds, _, _| {
        ds.policy.reinstall = ReinstallPolicy::Auto;
        ds.policy.maintenance_window = Some("prod-nights".into());
        ds.install.as_mut().unwrap().generation = 2;
    });
    add("busy.ns6.eu", &mut |ds, live, _| {
        ds.install.as_mut().unwrap().generation = 2;
        live.detail.as_mut().unwrap().tasks.push(Task {
            id: 4242,
            function: "hardReboot".into(),
            status: TaskStatus::Doing,
            comment: None,
            start_date: Some(n),
            done_date: None,
        });
    });
    add("rescue.ns7.eu", &mut |ds, _, _| {
        ds.boot = Some(BootSpec {
            mode: BootMode::Rescue {
                kernel: "rescue-customer".into(),
            },
            reboot: RebootPolicy::OnChange,
            lease: None,
        });
    });
    add("ipxe.ns8.eu", &mut |ds, live, _| {
        ds.boot = Some(BootSpec {
            mode: BootMode::Ipxe {
                script: "#!ipxe\ndhcp\nchain http://boot.example/v2.ipxe\n".into(),
            },
            reboot: RebootPolicy::Never,
            lease: None,
        });
        live.boot_id = None;
        live.boot = None;
        live.boot_script = Some("#!ipxe\ndhcp\nchain http://boot.example/v1.ipxe\n".into());
    });
    add("settings.ns9.eu", &mut |ds, _, _| {
        ds.settings.monitoring = Some(true);
        ds.settings.rescue_mail = Some("ops@example.com".into());
    });
    add("drift-boot.ns10.eu", &mut |_, live, _| {
        live.boot_id = Some(22);
        live.boot = Some(testkit::boots()[1].clone());
    });
    add("drift-settings.ns11.eu", &mut |ds, live, r| {
        ds.settings.monitoring = Some(true);
        ds.policy.drift.settings = DriftAction::Correct;
        r.applied
            .get_mut("drift-settings.ns11.eu")
            .unwrap()
            .settings
            .monitoring = Some(true);
        live.monitoring = false;
    });
    add("drift-os.ns12.eu", &mut |_, live, _| {
        live.os = "ubuntu2404-server_64".into();
    });
    add("drift-task.ns13.eu", &mut |ds, live, _| {
        ds.policy.drift.install = DriftAction::Correct;
        live.detail.as_mut().unwrap().tasks.push(Task {
            id: 5001,
            function: "reinstallServer".into(),
            status: TaskStatus::Done,
            comment: Some("Start bare metal OS installation".into()),
            start_date: Some(n),
            done_date: Some(n),
        });
    });
    add("nokernel.ns14.eu", &mut |ds, _, _| {
        ds.boot = Some(BootSpec {
            mode: BootMode::Rescue {
                kernel: "rescue64-pro".into(),
            },
            reboot: RebootPolicy::OnChange,
            lease: None,
        });
    });
    add("invalid.ns16.eu", &mut |ds, live, _| {
        live.detail
            .as_mut()
            .unwrap()
            .compatible_templates
            .retain(|t| t != "debian12_64");
        let spec = ds.install.as_mut().unwrap();
        testkit::keep_disk_group(spec, 3);
        spec.request["customizations"]["favouriteColour"] = "blue".into();
        testkit::refingerprint(spec);
    });
    add("nodetail.ns17.eu", &mut |ds, live, _| {
        ds.install.as_mut().unwrap().generation = 2;
        live.detail = None;
    });
    add("suspended.ns18.eu", &mut |ds, _, _| {
        ds.policy.suspend = true;
        ds.settings.monitoring = Some(true);
    });
    add("synced.ns19.eu", &mut |_, _, _| {});
    // A server whose manifest was removed: only a record remains.
    let gone = desired_server("gone.ns15.eu", "debian12_64");
    r.installs.insert(
        "gone.ns15.eu".into(),
        record_for("gone.ns15.eu", gone.install.as_ref().unwrap(), n),
    );
    o.servers.insert(
        "gone.ns15.eu".into(),
        observed_server("gone.ns15.eu", "debian12_64"),
    );
    // A manifest for a server the account does not have.
    let ghost = desired_server("ghost.ns20.eu", "debian12_64");
    d.servers.insert("ghost.ns20.eu".into(), ghost);
    // End of install passed for the template the auto reinstall uses: a warning only.
    o.templates.get_mut("debian12_64").unwrap().end_of_install = Some("2026-01-01".into());
    (d, o, r)
}

#[test]
fn no_record_and_same_os_adopts_never_reinstalls() {
    let (d, o, mut r) = one("a.eu");
    r.installs.clear();
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Adopt]);
    let Action::Adopt(adopt) = &p.servers["a.eu"].actions[0] else {
        panic!("adopt expected")
    };
    let rec = &adopt.record;
    assert_eq!(
        rec.fingerprint,
        d.servers["a.eu"].install.as_ref().unwrap().fingerprint
    );
    assert_eq!(rec.task_id, None);
    assert!(!p.servers["a.eu"].actions[0].is_destructive());
}

#[test]
fn no_record_and_other_os_reinstalls_destructively() {
    let (d, mut o, mut r) = one("a.eu");
    r.installs.clear();
    o.servers.get_mut("a.eu").unwrap().os = "ubuntu2404-server_64".into();
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    assert!(a.is_destructive());
    assert_eq!(a.changes()[0].field, "install.os");
    assert_eq!(a.changes()[0].old.as_deref(), Some("ubuntu2404-server_64"));
    assert_eq!(
        a.reinstall().unwrap().approval,
        Approval::AllowWipe {
            flag: "--allow-wipe a.eu".into(),
            why: None,
        }
    );
}

#[test]
fn fingerprint_change_reinstalls() {
    let (mut d, o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.request["customizations"]["hostname"] = "renamed".into();
    testkit::refingerprint(spec);
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    // Field by field, old → new, as Terraform marks what forces replacement.
    assert_eq!(
        a.changes()
            .iter()
            .map(|c| (c.field.as_str(), c.old.as_deref(), c.new.as_deref()))
            .collect::<Vec<_>>(),
        vec![(
            "install.customizations.hostname",
            Some("a-eu"),
            Some("renamed")
        )]
    );
}

#[test]
fn generation_bump_reinstalls_and_lowering_only_warns() {
    let (mut d, o, r) = one("a.eu");
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Reinstall]);
    assert_eq!(
        p.servers["a.eu"].actions[0].changes()[0].field,
        "install.generation"
    );

    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 0;
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
    assert_eq!(
        p.servers["a.eu"].findings[0].code.slug(),
        "generation-lowered"
    );
}

#[test]
fn policy_never_blocks_with_an_error_finding() {
    let (mut d, o, r) = one("a.eu");
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.policy.reinstall = ReinstallPolicy::Never;
    ds.install.as_mut().unwrap().generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Blocked);
    assert_eq!(a.effective_kind(), ActionKind::Reinstall);
    assert!(!a.is_destructive());
    assert!(
        blocked_by(a)[0].starts_with("policy reinstall: never (servers/a.eu.yaml:25:3)"),
        "{:?}",
        blocked_by(a)
    );
    assert!(p.has_errors());
    assert_eq!(p.servers["a.eu"].findings[0].severity, Severity::Error);
}

#[test]
fn pending_task_waits_and_plans_nothing_else() {
    let (mut d, mut o, r) = one("a.eu");
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.install.as_mut().unwrap().generation = 2;
    ds.settings.monitoring = Some(true);
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .tasks
        .push(Task {
            id: 7,
            function: "reinstallServer".into(),
            status: TaskStatus::Todo,
            comment: None,
            start_date: None,
            done_date: None,
        });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Wait]);
    let Action::Wait(w) = &p.servers["a.eu"].actions[0] else {
        panic!("wait expected")
    };
    assert!(matches!(&w.on, WaitOn::Task(t) if t.id == 7), "{w:?}");
}

#[test]
fn removed_manifest_forgets_without_touching_the_server() {
    let (mut d, o, r) = one("a.eu");
    d.servers.clear();
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Forget);
    assert!(a.set_boot().is_none() && a.reinstall().is_none());
    assert!(!a.is_destructive());
}

#[test]
fn ovhform_tag_without_manifest_or_record_forgets() {
    let (mut d, mut o, mut r) = one("a.eu");
    d.servers.clear();
    r.installs.clear();
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .tags
        .insert("ovhform:install".into(), "sha256:abc".into());
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Forget]);
    // An unmanaged server (no manifest, record or tag) is not in the plan at all.
    o.servers.get_mut("a.eu").unwrap().tags.clear();
    assert!(plan_ok(&d, &o, &r, &input()).servers.is_empty());
}

#[test]
fn rescue_boot_resolves_kernel_to_this_servers_id_then_reboots() {
    let (mut d, o, r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().boot = Some(BootSpec {
        mode: BootMode::Rescue {
            kernel: "rescue-customer".into(),
        },
        reboot: RebootPolicy::OnChange,
        lease: None,
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        kinds(&p, "a.eu"),
        vec![ActionKind::SetBoot, ActionKind::Reboot]
    );
    assert_eq!(
        p.servers["a.eu"].actions[0].set_boot().unwrap().target,
        BootTarget::Rescue {
            kernel: "rescue-customer".into(),
            id: 22
        }
    );
}

#[test]
fn boot_without_reboot_on_change_does_not_reboot() {
    let (mut d, o, r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().boot = Some(BootSpec {
        mode: BootMode::Network {
            kernel: "ipxe-shell".into(),
        },
        reboot: RebootPolicy::Never,
        lease: None,
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::SetBoot]);
    assert_eq!(
        p.servers["a.eu"].actions[0].set_boot().unwrap().target,
        BootTarget::Network {
            kernel: "ipxe-shell".into(),
            id: 44
        }
    );
}

#[test]
fn missing_kernel_blocks_with_the_available_boots() {
    let (mut d, o, r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().boot = Some(BootSpec {
        mode: BootMode::Rescue {
            kernel: "rescue64-pro".into(),
        },
        reboot: RebootPolicy::OnChange,
        lease: None,
    });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Blocked]);
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.effective_kind(), ActionKind::SetBoot);
    assert!(
        blocked_by(a)[0].contains("no rescue boot with kernel rescue64-pro"),
        "{:?}",
        blocked_by(a)
    );
    assert!(blocked_by(a)[0].contains("rescue rescue-customer #22"));
}

#[test]
fn ipxe_script_is_compared_byte_exact_and_diffed() {
    let (mut d, mut o, r) = one("a.eu");
    let script = "#!ipxe\nchain http://boot.example/a.ipxe\n";
    d.servers.get_mut("a.eu").unwrap().boot = Some(BootSpec {
        mode: BootMode::Ipxe {
            script: script.into(),
        },
        reboot: RebootPolicy::Never,
        lease: None,
    });
    let live = o.servers.get_mut("a.eu").unwrap();
    live.boot_id = None;
    live.boot = None;
    // Only a trailing space differs: byte-exact comparison must see it.
    live.boot_script = Some("#!ipxe\nchain http://boot.example/a.ipxe \n".into());
    let p = plan_ok(&d, &o, &r, &input());
    let b = p.servers["a.eu"].actions[0].set_boot().unwrap();
    assert_eq!(
        b.target,
        BootTarget::Ipxe {
            script_digest: format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(script.as_bytes()))
            )
        }
    );
    let diff = b.script_diff.as_ref().unwrap();
    assert!(
        diff.contains("-chain http://boot.example/a.ipxe \n+chain http://boot.example/a.ipxe\n"),
        "{diff}"
    );

    o.servers.get_mut("a.eu").unwrap().boot_script = Some(script.into());
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Noop]
    );
}

#[test]
fn only_settings_present_in_the_manifest_are_managed() {
    let (mut d, mut o, r) = one("a.eu");
    let live = o.servers.get_mut("a.eu").unwrap();
    live.rescue_mail = Some("someone@else".into());
    live.root_device = Some("/dev/sda".into());
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Noop]
    );
    d.servers.get_mut("a.eu").unwrap().settings.monitoring = Some(true);
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::UpdateSettings);
    let Action::UpdateSettings(u) = a else {
        panic!("update-settings expected")
    };
    assert_eq!(
        u.fields,
        Settings {
            monitoring: Some(true),
            ..Settings::default()
        }
    );
}

#[test]
fn boot_drift_is_reported_and_acted_on_only_per_policy() {
    let (d, mut o, mut r) = one("a.eu");
    r.applied.insert(
        "a.eu".into(),
        AppliedState {
            lease: None,
            boot: Some(BootMode::Disk),
            settings: Settings::default(),
        },
    );
    let live = o.servers.get_mut("a.eu").unwrap();
    live.boot_id = Some(22);
    live.boot = Some(testkit::boots()[1].clone());
    // Default policy warn: reported, not acted on.
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
    assert_eq!(p.servers["a.eu"].drift[0].field, "boot");
    assert!(!p.servers["a.eu"].drift[0].corrected);
    // correct: acted on.
    let mut d2 = d.clone();
    d2.servers.get_mut("a.eu").unwrap().policy.drift.boot = DriftAction::Correct;
    let p = plan_ok(&d2, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::SetBoot]);
    assert!(p.servers["a.eu"].drift[0].corrected);
    // ignore: neither.
    d2.servers.get_mut("a.eu").unwrap().policy.drift.boot = DriftAction::Ignore;
    let p = plan_ok(&d2, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
    assert!(p.servers["a.eu"].drift.is_empty());
    // Without an applied record the difference is an intended change, not drift.
    r.applied.clear();
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::SetBoot]);
    assert!(p.servers["a.eu"].drift.is_empty());
}

#[test]
fn install_drift_is_never_corrected_without_the_wipe_gate() {
    let (mut d, mut o, r) = one("a.eu");
    o.servers.get_mut("a.eu").unwrap().os = "ubuntu2404-server_64".into();
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
    assert_eq!(p.servers["a.eu"].drift[0].field, "install");
    d.servers.get_mut("a.eu").unwrap().policy.drift.install = DriftAction::Correct;
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    assert_eq!(
        a.reinstall().unwrap().approval,
        Approval::AllowWipe {
            flag: "--allow-wipe a.eu".into(),
            why: None,
        }
    );
}

#[test]
fn foreign_reinstall_task_in_history_is_install_drift() {
    let (d, mut o, r) = one("a.eu");
    o.servers
        .get_mut("a.eu")
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .tasks
        .push(Task {
            id: 5001,
            function: "reinstallServer".into(),
            status: TaskStatus::Done,
            comment: None,
            start_date: Some(now()),
            done_date: Some(now()),
        });
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        p.servers["a.eu"].drift[0].live.as_deref(),
        Some("reinstalled by task 5001")
    );
    // The task ovhform made itself is not drift.
    let mut r2 = r.clone();
    let rec = r2.installs.get_mut("a.eu").unwrap();
    rec.task_id = Some(5001);
    rec.started = Some(now());
    assert!(
        plan_ok(&d, &o, &r2, &input()).servers["a.eu"]
            .drift
            .is_empty()
    );
}

#[test]
fn catalog_and_hardware_errors_block_and_name_the_manifest_line() {
    let (mut d, mut o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.request["customizations"]["favouriteColour"] = "blue".into();
    spec.request["storage"][0]["partitioning"]["layout"][1]["fileSystem"] = "ntfs".into();
    spec.request["storage"][0]["partitioning"]["layout"][1]["raidLevel"] = 5.into();
    testkit::keep_disk_group(spec, 3);
    let t = o.templates.get_mut("debian12_64").unwrap();
    t.inputs.push(TemplateInput {
        name: "language".into(),
        input_type: "enum".into(),
        mandatory: true,
        default: None,
        enum_values: vec!["en-us".into()],
    });
    t.end_of_install = Some("2026-01-01".into());
    let p = plan_ok(&d, &o, &r, &input());
    let sp = &p.servers["a.eu"];
    assert_eq!(sp.actions[0].effective_kind(), ActionKind::Reinstall);
    let codes: BTreeSet<&str> = sp.findings.iter().map(|f| f.code.slug()).collect();
    for c in [
        "input-unknown",
        "input-missing",
        "filesystem",
        "raid-disks",
        "kept-disk-group-missing",
        "end-of-install",
    ] {
        assert!(codes.contains(c), "{c} missing in {codes:?}");
    }
    let kept = sp
        .findings
        .iter()
        .find(|f| f.code.slug() == "kept-disk-group-missing")
        .unwrap();
    assert_eq!(
        kept.origin.as_ref().unwrap().to_string(),
        "servers/a.eu.yaml:17:3"
    );
    let eol = sp
        .findings
        .iter()
        .find(|f| f.code.slug() == "end-of-install")
        .unwrap();
    assert_eq!(eol.severity, Severity::Warning);

    o.servers
        .get_mut("a.eu")
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .compatible_templates
        .clear();
    let p = plan_ok(&d, &o, &r, &input());
    assert!(
        p.servers["a.eu"]
            .findings
            .iter()
            .any(|f| f.code.slug() == "os-not-compatible"
                && f.origin.as_ref().unwrap().to_string() == "servers/a.eu.yaml:7:3")
    );
}

#[test]
fn lvm_mirroring_and_no_partitioning_rules() {
    let (mut d, mut o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.request["storage"][0]["partitioning"]["layout"][1]["extras"] =
        serde_json::json!({"lv": {"name": "root"}});
    spec.request["storage"][0]["partitioning"]["layout"][1]["raidLevel"] = 5.into();
    testkit::refingerprint(spec);
    let t = o.templates.get_mut("debian12_64").unwrap();
    t.lvm_ready = Some(false);
    t.soft_raid_only_mirroring = true;
    t.no_partitioning = true;
    let p = plan_ok(&d, &o, &r, &input());
    let codes: BTreeSet<&str> = p.servers["a.eu"]
        .findings
        .iter()
        .map(|f| f.code.slug())
        .collect();
    for c in ["lvm", "soft-raid-mirroring", "no-partitioning"] {
        assert!(codes.contains(c), "{c} missing in {codes:?}");
    }
}

/// Issue 8: a test blessed "kept" for a group the request omits — which the API would erase.
/// A group's fate comes from the request actually sent, and keeping a group the request does
/// not send as `erase: false` is an error that blocks the wipe.
#[test]
fn regression_a_group_is_kept_only_when_the_request_sends_erase_false() {
    let (mut d, o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.keep_disk_groups.insert(2);
    spec.generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    let groups = &a.reinstall().unwrap().disk_groups;
    assert_eq!((groups[1].id, groups[1].fate), (2, DiskFate::Erased));
    assert_eq!(a.kind(), ActionKind::Blocked);
    assert!(
        p.servers["a.eu"]
            .findings
            .iter()
            .any(|f| f.code.slug() == "kept-not-sent")
    );
}

#[test]
fn reinstall_lists_erased_and_kept_disk_groups_with_sizes() {
    let (mut d, o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    testkit::keep_disk_group(spec, 2);
    spec.generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    let groups = &p.servers["a.eu"].actions[0]
        .reinstall()
        .unwrap()
        .disk_groups;
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0].id, groups[0].fate, groups[0].disks),
        (1, DiskFate::OsInstall, 2)
    );
    assert_eq!(
        (groups[1].id, groups[1].fate, groups[1].disk_size_bytes),
        (2, DiskFate::Kept, 1_920_000_000_000)
    );
}

/// Issue 8, seen: `maintenanceWindow` bound only `policy: auto`, so `--allow-wipe-all` would
/// have wiped the example database at noon. A window binds manual reinstalls too.
#[test]
fn regression_maintenance_window_binds_manual_reinstalls() {
    let (mut d, o, r) = one("a.eu");
    d.windows.insert("prod-nights".into(), nights());
    let ds = d.servers.get_mut("a.eu").unwrap();
    assert_eq!(ds.policy.reinstall, ReinstallPolicy::Manual);
    ds.policy.maintenance_window = Some("prod-nights".into());
    ds.install.as_mut().unwrap().generation = 2;
    let noon = input();
    let a = &plan_ok(&d, &o, &r, &noon).servers["a.eu"].actions[0];
    assert_eq!(
        (a.kind(), a.effective_kind()),
        (ActionKind::Blocked, ActionKind::Reinstall)
    );
    assert!(a.deferred_wipe().is_some());
    let mut night = input();
    night.now = "2026-11-24T02:30:00Z".parse().unwrap();
    let a = &plan_ok(&d, &o, &r, &night).servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    assert_eq!(
        a.reinstall().unwrap().approval,
        Approval::AllowWipe {
            flag: "--allow-wipe a.eu".into(),
            why: None,
        }
    );
}

#[test]
fn auto_reinstall_runs_only_inside_the_maintenance_window() {
    let (mut d, o, r) = one("a.eu");
    d.windows.insert("prod-nights".into(), nights());
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.policy.reinstall = ReinstallPolicy::Auto;
    ds.policy.maintenance_window = Some("prod-nights".into());
    ds.install.as_mut().unwrap().generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Blocked);
    assert_eq!(
        blocked_by(a),
        vec![
            "outside maintenance window prod-nights; it next opens at 2026-11-24 02:00 Europe/Paris (01:00 UTC) (`--ignore-maintenance-window` at apply overrides)"
        ]
    );
    // Waiting only for its window, it is still a wipe: a deferred one.
    assert_eq!(
        a.deferred_wipe(),
        Some(("2026-11-24T01:00:00Z".parse().unwrap(), "Europe/Paris"))
    );

    let mut inside = input();
    inside.now = "2026-11-24T02:30:00Z".parse().unwrap();
    let p = plan_ok(&d, &o, &r, &inside);
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    assert_eq!(
        a.reinstall().unwrap().approval,
        Approval::Auto {
            window: Some("prod-nights".into()),
            until: Some("2026-11-24T04:00:00Z".parse().unwrap())
        }
    );
}

#[test]
fn suspended_server_blocks_every_api_action() {
    let (mut d, o, r) = one("a.eu");
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.policy.suspend = true;
    ds.settings.monitoring = Some(true);
    ds.install.as_mut().unwrap().generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    let sp = &p.servers["a.eu"];
    assert!(
        sp.actions.iter().all(|a| a.kind() == ActionKind::Blocked),
        "{:?}",
        kinds(&p, "a.eu")
    );
    assert!(sp.actions.iter().all(|a| {
        blocked_by(a)
            .iter()
            .any(|b| b.starts_with("server is suspended"))
    }));
}

#[test]
fn missing_detail_blocks_api_actions_but_allows_adopt() {
    let (mut d, mut o, mut r) = one("a.eu");
    o.servers.get_mut("a.eu").unwrap().detail = None;
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 2;
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(
        (a.kind(), a.effective_kind()),
        (ActionKind::Blocked, ActionKind::Reinstall)
    );
    assert!(!a.reinstall().unwrap().checks_done);
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 1;
    r.installs.clear();
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Adopt]
    );
}

#[test]
fn reinstall_comes_before_the_boot_it_resets() {
    let (mut d, o, r) = one("a.eu");
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.install.as_mut().unwrap().generation = 2;
    ds.boot = Some(BootSpec {
        mode: BootMode::Rescue {
            kernel: "rescue-customer".into(),
        },
        reboot: RebootPolicy::OnChange,
        lease: None,
    });
    ds.settings.monitoring = Some(true);
    let mut o2 = o.clone();
    let live = o2.servers.get_mut("a.eu").unwrap();
    live.boot_id = Some(22);
    live.boot = Some(testkit::boots()[1].clone());
    // Live already boots rescue, but the reinstall resets it to disk: set-boot follows.
    let p = plan_ok(&d, &o2, &r, &input());
    assert_eq!(
        kinds(&p, "a.eu"),
        vec![
            ActionKind::Reinstall,
            ActionKind::UpdateSettings,
            ActionKind::SetBoot,
            ActionKind::Reboot
        ]
    );
}

#[test]
fn unknown_target_is_an_error_and_targets_filter() {
    let (d, o, r) = scenario();
    let mut i = input();
    i.targets = ["rescue.ns7.eu".to_string(), "typo.eu".to_string()].into();
    let p = plan_ok(&d, &o, &r, &i);
    assert_eq!(p.servers.keys().collect::<Vec<_>>(), vec!["rescue.ns7.eu"]);
    assert_eq!(p.findings[0].code.slug(), "target-unknown");
}

#[test]
fn needs_detail_is_empty_for_a_synced_fleet_and_names_changed_servers() {
    let (mut d, o, r) = testkit::fleet(50, now(), false);
    assert!(needs_detail(&d, &o, &r, &input()).is_empty());
    d.servers
        .get_mut("ns0000007.ip-10-0-0.eu")
        .unwrap()
        .settings
        .monitoring = Some(true);
    d.servers
        .get_mut("ns0000009.ip-10-0-0.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 5;
    let got = needs_detail(&d, &o, &r, &input());
    assert_eq!(
        got,
        [
            "ns0000007.ip-10-0-0.eu".to_string(),
            "ns0000009.ip-10-0-0.eu".to_string()
        ]
        .into()
    );
    // Without detail those servers are blocked, never acted on blind.
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        p.servers["ns0000009.ip-10-0-0.eu"].actions[0].kind(),
        ActionKind::Blocked
    );
}

#[test]
fn group_limit_is_reported() {
    let (mut d, o, r) = scenario();
    d.groups.insert(
        "web".into(),
        DesiredGroup {
            name: "web".into(),
            origin: testkit::origin("groups/web.yaml", 1),
            members: [
                "wipe-new.ns2.eu".to_string(),
                "wipe-auto.ns3.eu".to_string(),
            ]
            .into(),
            max_concurrent_reinstalls: Some(1),
        },
    );
    let p = plan_ok(&d, &o, &r, &input());
    assert!(
        p.findings.iter().any(|f| f.code.slug() == "group-limit"),
        "{:?}",
        p.findings
    );
}

#[test]
fn scenario_covers_every_action_type() {
    let (d, o, r) = scenario();
    let p = plan_ok(&d, &o, &r, &input());
    let seen: BTreeSet<ActionKind> = p
        .servers
        .values()
        .flat_map(|s| &s.actions)
        .map(|a| a.kind())
        .collect();
    use ActionKind::*;
    let all: BTreeSet<ActionKind> = [
        Adopt,
        Reinstall,
        SetBoot,
        Reboot,
        UpdateSettings,
        Wait,
        Blocked,
        Forget,
        Noop,
    ]
    .into();
    assert_eq!(seen, all);
    assert_eq!(seen, ActionKind::ALL.into_iter().collect());
}

/// What an executor needs is in the typed payload of each kind: this match has no wildcard
/// arm (a new kind fails to compile until handled) and reads nothing but payload fields —
/// no JSON, no text. Then the test kit's in-memory apply, an executor in miniature built the
/// same way, runs the plan and the world ends as the payloads said.
#[test]
fn an_executor_match_covers_every_action_kind_from_typed_payloads() {
    let (d, mut o, mut r) = scenario();
    let p = plan_ok(&d, &o, &r, &input());
    let mut handled = BTreeSet::new();
    for (name, sp) in &p.servers {
        for a in &sp.actions {
            handled.insert(a.kind());
            match a {
                Action::Adopt(x) => assert_eq!(&x.record.server, name),
                Action::Reinstall(x) => {
                    assert!(x.checks_done && !x.disk_groups.is_empty(), "{name}");
                    assert_eq!(
                        x.fingerprint,
                        d.servers[name].install.as_ref().unwrap().fingerprint
                    );
                }
                Action::SetBoot(x) => match &x.target {
                    BootTarget::Ipxe { script_digest } => {
                        assert!(script_digest.starts_with("sha256:"))
                    }
                    t => assert!(t.boot_id().is_some(), "{name}: {t:?}"),
                },
                Action::Reboot(x) => assert!(!x.reason.is_empty()),
                Action::UpdateSettings(x) => {
                    assert_ne!(x.fields, Settings::default(), "{name}: empty PUT")
                }
                Action::Wait(x) => {
                    assert!(matches!(x.on, WaitOn::Task(_) | WaitOn::Install { .. }))
                }
                Action::Forget(x) => assert!(!x.reason.is_empty()),
                Action::Noop(x) => assert!(!x.reason.is_empty()),
                Action::Blocked(x) => assert!(!x.blockers.is_empty(), "{name}"),
            }
        }
    }
    assert_eq!(handled, ActionKind::ALL.into_iter().collect());

    testkit::apply_in_memory(&p, &d, &mut o, &mut r, now());
    assert_eq!(o.servers["rescue.ns7.eu"].boot_id, Some(22));
    assert_eq!(
        o.servers["ipxe.ns8.eu"].boot_script.as_deref(),
        d.servers["ipxe.ns8.eu"]
            .boot
            .as_ref()
            .and_then(|b| match &b.mode {
                BootMode::Ipxe { script } => Some(script.as_str()),
                _ => None,
            })
    );
    assert_eq!(o.servers["wipe-new.ns2.eu"].os, "debian12_64");
    assert_eq!(r.installs["adopt.ns1.eu"].task_id, None);
    assert!(!r.installs.contains_key("gone.ns15.eu"));
}

#[test]
fn saved_plan_round_trips_and_refuses_other_versions() {
    let (d, o, r) = scenario();
    let p = plan_ok(&d, &o, &r, &input());
    let json = p.to_json();
    assert_eq!(Plan::from_json(&json).unwrap(), p);
    let bumped = json.replacen("\"format_version\": 3", "\"format_version\": 4", 1);
    assert!(
        Plan::from_json(&bumped)
            .unwrap_err()
            .to_string()
            .contains("format_version Some(4)")
    );
    // A saved plan cannot claim a reinstall is harmless.
    assert!(json.contains("\"destructive\": true"));
    let tampered = json.replace("\"destructive\": true", "\"destructive\": false");
    assert!(Plan::from_json(&tampered).is_err());
}

/// Regression (bad_input): one byte of a saved plan changed inside a string still parsed, linted
/// and was applied. The checksum refuses any change of content, and a plan without one.
#[test]
fn a_saved_plan_changed_by_one_byte_or_without_its_checksum_is_refused() {
    let (d, o, r) = scenario();
    let json = plan_ok(&d, &o, &r, &input()).to_json();
    let reason_at = json.find("\"reason\": \"").expect("a reason") + 12;
    let mut bytes = json.clone().into_bytes();
    bytes[reason_at] = if bytes[reason_at] == b'x' { b'y' } else { b'x' };
    let changed = String::from_utf8(bytes).expect("utf8");
    let e = Plan::from_json(&changed).unwrap_err().to_string();
    assert!(e.contains("does not match its checksum"), "{e}");
    let line = json
        .lines()
        .find(|l| l.contains("\"checksum\""))
        .expect("checksum line");
    let without = json
        .replace(&format!("{line}\n"), "")
        .replace(",\n}", "\n}");
    let e = Plan::from_json(&without).unwrap_err().to_string();
    assert!(e.contains("has no checksum"), "{e}");
    // Whitespace is not content: a reformatted plan is the same plan.
    let compact: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(Plan::from_json(&compact.to_string()).is_ok());
}

#[test]
fn a_secret_enum_customization_is_never_shown_in_findings() {
    let (mut d, mut o, r) = one("a.eu");
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.request["customizations"]["imageURL"] = "https://x.example/?token=SEKRIT-VALUE".into();
    spec.secret_paths.insert("/customizations/imageURL".into());
    testkit::refingerprint(spec);
    let t = o.templates.get_mut("debian12_64").unwrap();
    t.inputs
        .iter_mut()
        .find(|i| i.name == "imageURL")
        .unwrap()
        .enum_values = vec!["https://ok.example/".into()];
    let p = plan_ok(&d, &o, &r, &input());
    let f = p.servers["a.eu"]
        .findings
        .iter()
        .find(|f| f.code.slug() == "input-enum")
        .unwrap();
    assert!(!f.message.contains("SEKRIT"), "{}", f.message);
    // Not even a hash or a length: they let a reader confirm a guess.
    assert!(
        !f.message.contains("sha256:") && !f.message.contains("bytes"),
        "{}",
        f.message
    );
    assert!(f.message.contains("(a secret value)"), "{}", f.message);
}

#[test]
fn unresolved_boot_id_is_looked_up_in_the_boot_list() {
    let (mut d, mut o, r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().boot = Some(BootSpec {
        mode: BootMode::Rescue {
            kernel: "rescue-customer".into(),
        },
        reboot: RebootPolicy::Never,
        lease: None,
    });
    let live = o.servers.get_mut("a.eu").unwrap();
    live.boot_id = Some(22);
    live.boot = None;
    assert_eq!(
        kinds(&plan_ok(&d, &o, &r, &input()), "a.eu"),
        vec![ActionKind::Noop]
    );
}

#[test]
fn managed_efi_path_is_set_again_after_a_reinstall() {
    let (mut d, mut o, r) = one("a.eu");
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.install.as_mut().unwrap().generation = 2;
    ds.settings.efi_bootloader_path = Some("\\efi\\custom\\shim.efi".into());
    o.servers.get_mut("a.eu").unwrap().efi_bootloader_path = Some("\\efi\\custom\\shim.efi".into());
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(
        kinds(&p, "a.eu"),
        vec![ActionKind::Reinstall, ActionKind::UpdateSettings]
    );
    assert_eq!(
        p.servers["a.eu"].actions[1].reason(),
        "the reinstall resets efiBootloaderPath; set it again after"
    );
}

#[test]
fn garbage_record_fingerprint_does_not_panic() {
    let (d, o, mut r) = one("a.eu");
    r.installs.get_mut("a.eu").unwrap().fingerprint = "sha256:éééééééééééééé".into();
    let p = plan_ok(&d, &o, &r, &input());
    // A record that cannot be a fingerprint is refused, never planned from: the server
    // already runs the desired OS, so it is adopted afresh.
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Adopt]);
    assert!(
        p.servers["a.eu"]
            .findings
            .iter()
            .any(|f| f.code.slug() == "record-implausible")
    );
}
