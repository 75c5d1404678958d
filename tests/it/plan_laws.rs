//! Property laws of the planner over generated fleets (fixed seed, so CI is deterministic):
//! determinism; idempotence (apply the plan in memory, plan again → only `noop`; a `wait`
//! plan takes one round more, once its tasks end); every
//! action targets a known server; `reinstall` only with a fingerprint/OS/generation
//! difference; the plan lint is always clean.

use std::collections::BTreeSet;

use ovhform::cli::render::{MARKDOWN_LIMIT, render_markdown, render_text};
use ovhform::model::*;
use ovhform::plan::testkit::{self, apply_in_memory, desired_server, observed_server, record_for};
use ovhform::plan::{ActionKind, Plan, PlanInput, lint, plan};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const OSES: [&str; 2] = ["debian12_64", "ubuntu2404-server_64"];
const SCRIPT_A: &str = "#!ipxe\nchain http://boot.example/a.ipxe\n";
const SCRIPT_B: &str = "#!ipxe\nchain http://boot.example/b.ipxe\n";

#[derive(Clone, Debug)]
struct Case {
    live_os: usize,
    desired_os: usize,
    /// 0 none, 1 matching, 2 other fingerprint, 3 older generation.
    record: u8,
    /// 0 unmanaged, 1 disk, 2 rescue, 3 network, 4 iPXE A, 5 iPXE B, 6 bootId 22.
    desired_boot: u8,
    /// 0 disk, 1 rescue, 2 iPXE A.
    live_boot: u8,
    reboot: bool,
    monitoring: Option<bool>,
    live_monitoring: bool,
    mail: Option<u8>,
    live_mail: Option<u8>,
    /// Managed EFI path: None, or one of two paths.
    efi: Option<bool>,
    applied: bool,
    drift: (u8, u8, u8),
    auto: bool,
    /// 0 none, 1 policy never, 2 suspended, 3 missing kernel, 4 no detail.
    blocker: u8,
    /// OVH tasks in the server's history: 0–5 none, 6 a running task (→ `wait`), 7–8 a
    /// finished `reinstallServer` ovhform did not make (→ install drift), 9 an install in
    /// progress (→ `wait`).
    task: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (0..2usize, 0..2usize, 0..4u8, 0..7u8, 0..3u8, any::<bool>()),
        (
            proptest::option::of(any::<bool>()),
            any::<bool>(),
            proptest::option::of(0..3u8),
            proptest::option::of(0..3u8),
        ),
        (
            any::<bool>(),
            (0..3u8, 0..3u8, 0..3u8),
            any::<bool>(),
            proptest::option::of(any::<bool>()),
            0..10u8,
        ),
    )
        .prop_map(
            |(
                (live_os, desired_os, record, desired_boot, live_boot, reboot),
                (monitoring, live_monitoring, mail, live_mail),
                (applied, drift, auto, efi, task),
            )| Case {
                task,
                efi,
                live_os,
                desired_os,
                record,
                desired_boot,
                live_boot,
                reboot,
                monitoring,
                live_monitoring,
                mail,
                live_mail,
                applied,
                drift,
                auto,
                blocker: 0,
            },
        )
}

fn mail(i: u8) -> String {
    ["", "ops@example.com", "noc@example.com"][i as usize].to_string()
}

fn drift_action(i: u8) -> DriftAction {
    [DriftAction::Ignore, DriftAction::Warn, DriftAction::Correct][i as usize]
}

fn build(cases: &[Case], forgotten: usize) -> (Desired, Observed, Records) {
    let now = now();
    let mut d = Desired::default();
    let mut o = Observed {
        templates: testkit::catalog(),
        ..Default::default()
    };
    let mut r = Records::default();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("s{i:03}.eu");
        let mut ds = desired_server(&name, OSES[c.desired_os]);
        let mut live = observed_server(&name, OSES[c.live_os]);
        let spec = ds.install.as_mut().unwrap();
        spec.generation = 2;
        match c.record {
            1 => drop(
                r.installs
                    .insert(name.clone(), record_for(&name, spec, now)),
            ),
            2 => {
                let mut rec = record_for(&name, spec, now);
                rec.fingerprint = format!("sha256:{}", "0".repeat(64));
                rec.request = None;
                r.installs.insert(name.clone(), rec);
            }
            3 => {
                let mut rec = record_for(&name, spec, now);
                rec.generation = 1;
                r.installs.insert(name.clone(), rec);
            }
            _ => {}
        }
        let mode = match c.desired_boot {
            1 => Some(BootMode::Disk),
            2 => Some(BootMode::Rescue {
                kernel: "rescue-customer".into(),
            }),
            3 => Some(BootMode::Network {
                kernel: "ipxe-shell".into(),
            }),
            4 => Some(BootMode::Ipxe {
                script: SCRIPT_A.into(),
            }),
            5 => Some(BootMode::Ipxe {
                script: SCRIPT_B.into(),
            }),
            6 => Some(BootMode::BootId { id: 22 }),
            _ => None,
        };
        ds.boot = mode.map(|mode| BootSpec {
            mode,
            reboot: if c.reboot {
                RebootPolicy::OnChange
            } else {
                RebootPolicy::Never
            },
        });
        match c.live_boot {
            1 => {
                live.boot_id = Some(22);
                live.boot = Some(testkit::boots()[1].clone());
            }
            2 => {
                live.boot_id = None;
                live.boot = None;
                live.boot_script = Some(SCRIPT_A.into());
            }
            _ => {}
        }
        ds.settings.efi_bootloader_path = c.efi.map(|custom| {
            if custom {
                "\\efi\\custom\\shim.efi".to_string()
            } else {
                testkit::DEFAULT_EFI_PATH.to_string()
            }
        });
        ds.settings.monitoring = c.monitoring;
        live.monitoring = c.live_monitoring;
        ds.settings.rescue_mail = c.mail.map(mail);
        live.rescue_mail = c.live_mail.map(mail).filter(|m| !m.is_empty());
        ds.policy.drift = DriftPolicy {
            boot: drift_action(c.drift.0),
            settings: drift_action(c.drift.1),
            install: drift_action(c.drift.2),
        };
        if c.auto {
            ds.policy.reinstall = ReinstallPolicy::Auto;
        }
        let hour_ago = now
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap();
        let detail = live.detail.as_mut().unwrap();
        match c.task {
            6 => detail.tasks.push(Task {
                id: 7,
                function: "hardReboot".into(),
                status: TaskStatus::Doing,
                comment: None,
                start_date: Some(hour_ago),
                done_date: None,
            }),
            // After the recorded install (a day before `now`, task 1000): not ovhform's.
            7 | 8 => detail.tasks.push(Task {
                id: 2000,
                function: "reinstallServer".into(),
                status: TaskStatus::Done,
                comment: None,
                start_date: Some(hour_ago),
                done_date: Some(hour_ago),
            }),
            9 => {
                detail.install_status = Some(InstallStatus {
                    elapsed_secs: 120,
                    steps: vec![],
                })
            }
            _ => {}
        }
        match c.blocker {
            1 => ds.policy.reinstall = ReinstallPolicy::Never,
            2 => ds.policy.suspend = true,
            3 => {
                ds.boot = Some(BootSpec {
                    mode: BootMode::Rescue {
                        kernel: "rescue64-pro".into(),
                    },
                    reboot: RebootPolicy::OnChange,
                })
            }
            4 => live.detail = None,
            _ => {}
        }
        if c.applied {
            r.applied.insert(
                name.clone(),
                AppliedState {
                    boot: ds.boot.as_ref().map(|b| b.mode.clone()),
                    settings: ds.settings.clone(),
                },
            );
        }
        d.servers.insert(name.clone(), ds);
        o.servers.insert(name, live);
    }
    for i in 0..forgotten {
        let name = format!("gone{i}.eu");
        let ds = desired_server(&name, OSES[0]);
        r.installs.insert(
            name.clone(),
            record_for(&name, ds.install.as_ref().unwrap(), now),
        );
        let mut live = observed_server(&name, OSES[0]);
        live.tags
            .insert("ovhform:install".into(), "sha256:abc".into());
        o.servers.insert(name, live);
    }
    (d, o, r)
}

fn now() -> jiff::Timestamp {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

fn input() -> PlanInput {
    PlanInput::new(now())
}

fn config() -> Config {
    Config {
        cases: 128,
        rng_seed: RngSeed::Fixed(0x0f4f_0a11),
        ..Config::default()
    }
}

fn check_universe_and_reinstall(
    p: &Plan,
    d: &Desired,
    o: &Observed,
    r: &Records,
) -> Result<(), TestCaseError> {
    for (name, sp) in &p.servers {
        for a in &sp.actions {
            let known = d.servers.contains_key(name) || o.servers.contains_key(name);
            let recorded = r.installs.contains_key(name) || r.applied.contains_key(name);
            prop_assert!(
                known || (a.kind() == ActionKind::Forget && recorded),
                "{name}: {:?} outside the universe",
                a.kind()
            );
            if a.effective_kind() == ActionKind::Reinstall {
                let spec = d.servers[name].install.as_ref().unwrap();
                let live = &o.servers[name];
                let grounded = match r.installs.get(name) {
                    None => live.os != spec.os,
                    // A `reinstallServer` after the recorded one that ovhform did not make: what
                    // is installed now has an unknown fingerprint (install drift).
                    Some(rec) => {
                        let foreign = live.detail.iter().flat_map(|dt| &dt.tasks).any(|t| {
                            t.function == "reinstallServer"
                                && t.status == TaskStatus::Done
                                && Some(t.id) != rec.task_id
                                && t.start_date > rec.started
                        });
                        rec.fingerprint != spec.fingerprint
                            || rec.os != spec.os
                            || spec.generation > rec.generation
                            || live.os != rec.os
                            || foreign
                    }
                };
                prop_assert!(
                    grounded,
                    "{name}: reinstall without an OS/fingerprint/generation difference"
                );
            }
        }
    }
    Ok(())
}

/// Plan, apply the plan in memory, plan again. A plan with `wait` is applied once more after
/// its tasks end (the first apply only waits): `wait` means "nothing else yet", so convergence
/// takes one round more. Every plan on the way must be lint-clean, with reinstalls grounded and
/// every action inside the universe. Returns the plan after the last apply.
fn apply_until_settled(
    d: &Desired,
    o: &mut Observed,
    r: &mut Records,
) -> Result<Plan, TestCaseError> {
    let mut p = plan(d, o, r, &input());
    for _round in 0..2 {
        prop_assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
        check_universe_and_reinstall(&p, d, o, r)?;
        let waited = p
            .servers
            .values()
            .any(|sp| sp.actions.iter().any(|a| a.kind() == ActionKind::Wait));
        apply_in_memory(&p, d, o, r, now());
        p = plan(d, o, r, &input());
        if !waited {
            break;
        }
    }
    prop_assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
    check_universe_and_reinstall(&p, d, o, r)?;
    Ok(p)
}

/// The laws above are only as strong as the fleets they see: over the generator's own
/// distribution (same seed and case count), every action type, every kind of drift, and both
/// grounds for a reinstall (no record + other OS; record differs) must actually occur, and a
/// good share of servers must have something to do. Guards against a generator change that
/// quietly makes the laws vacuous.
#[test]
fn the_generators_cover_every_action_and_drift() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::new(config());
    let strategy = (prop::collection::vec((case(), 0..5u8), 1..8), 0..3usize);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut bump = |k: String| *kinds.entry(k).or_default() += 1;
    let (mut servers, mut busy) = (0, 0);
    for i in 0..config().cases {
        let (cases, forgotten) = strategy.new_tree(&mut runner).unwrap().current();
        // Half the fleets without blockers, as the idempotence law sees them.
        let blockers = i % 2 == 1;
        let cases: Vec<Case> = cases
            .into_iter()
            .map(|(mut c, b)| {
                c.blocker = if blockers { b } else { 0 };
                c
            })
            .collect();
        let (d, o, r) = build(&cases, forgotten);
        let p = plan(&d, &o, &r, &input());
        for sp in p.servers.values() {
            servers += 1;
            if sp.actions.iter().any(|a| a.kind() != ActionKind::Noop) {
                busy += 1;
            }
            for a in &sp.actions {
                bump(a.kind().to_string());
                if a.kind() == ActionKind::Blocked {
                    bump(format!("blocked {}", a.effective_kind()));
                }
                if a.effective_kind() == ActionKind::Reinstall {
                    let ground = if r.installs.contains_key(&sp.server) {
                        "reinstall: record differs"
                    } else {
                        "reinstall: no record, other OS"
                    };
                    bump(ground.to_string());
                }
            }
            for dr in &sp.drift {
                let field = dr.field.split('.').next().unwrap_or("").to_string();
                bump(format!("drift {field}"));
                if dr.field == "install"
                    && dr
                        .live
                        .as_deref()
                        .is_some_and(|l| l.starts_with("reinstalled by task"))
                {
                    bump("drift install: foreign task".to_string());
                }
            }
        }
    }
    for k in [
        "adopt",
        "reinstall",
        "set-boot",
        "reboot",
        "update-settings",
        "wait",
        "blocked",
        "forget",
        "noop",
        "blocked reinstall",
        "blocked set-boot",
        "blocked update-settings",
        "reinstall: record differs",
        "reinstall: no record, other OS",
        "drift install",
        "drift install: foreign task",
        "drift boot",
        "drift settings",
    ] {
        let n = kinds.get(k).copied().unwrap_or(0);
        assert!(
            n >= 5,
            "the generators produce {k:?} only {n} times: {kinds:#?}"
        );
    }
    assert!(
        busy * 3 >= servers,
        "only {busy} of {servers} generated servers have something to do: {kinds:#?}"
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn planner_is_deterministic(cases in prop::collection::vec(case(), 1..8), forgotten in 0..3usize) {
        let (d, o, r) = build(&cases, forgotten);
        let a = plan(&d, &o, &r, &input());
        let b = plan(&d, &o, &r.clone(), &input());
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.to_json(), b.to_json());
        prop_assert_eq!(render_text(&a, true), render_text(&b, true));
        prop_assert_eq!(render_markdown(&a, MARKDOWN_LIMIT), render_markdown(&b, MARKDOWN_LIMIT));
    }

    #[test]
    fn applying_the_plan_then_replanning_yields_only_noop(cases in prop::collection::vec(case(), 1..8), forgotten in 0..3usize) {
        let (d, mut o, mut r) = build(&cases, forgotten);
        let last = apply_until_settled(&d, &mut o, &mut r)?;
        for (name, sp) in &last.servers {
            let kinds: Vec<ActionKind> = sp.actions.iter().map(|a| a.kind()).collect();
            prop_assert_eq!(&kinds, &vec![ActionKind::Noop], "{} after apply: {:#?}", name, sp.actions);
        }
        prop_assert!(!last.has_changes());
    }

    #[test]
    fn with_blockers_replanning_yields_only_noop_or_blocked(
        cases in prop::collection::vec((case(), 0..5u8), 1..8),
    ) {
        let cases: Vec<Case> = cases.into_iter().map(|(mut c, b)| { c.blocker = b; c }).collect();
        let (d, mut o, mut r) = build(&cases, 0);
        let last = apply_until_settled(&d, &mut o, &mut r)?;
        let allowed: BTreeSet<ActionKind> = [ActionKind::Noop, ActionKind::Blocked].into();
        for sp in last.servers.values() {
            for a in &sp.actions {
                prop_assert!(allowed.contains(&a.kind()), "{}: {:?} after apply", sp.server, a);
            }
        }
    }
}
