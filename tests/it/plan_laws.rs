//! Property laws of the planner over generated fleets (fixed seed, so CI is deterministic):
//!
//! - determinism (same inputs, same plan and renderings, byte for byte);
//! - idempotence: apply the plan in memory, plan again → only `noop` for a fleet without
//!   blockers, and for every server of any fleet that nothing blocked (a `wait` plan takes one
//!   round more, once its tasks end); `noop` or `blocked` for the others;
//! - every action targets a known server; `reinstall` only with a fingerprint/OS/generation
//!   difference or install drift; the plan lint is always clean;
//! - drift policy `warn` never acts;
//! - a blocker never yields an action, and the gates (suspend, missing detail, anomaly,
//!   dispute, window, catalog and hardware checks) block what they say they block;
//! - cheap vs full observation (issue 8): planning with every server's detail equals planning
//!   with detail for `needs_detail`'s servers only, except for what the coverage line
//!   declares unverified.
//!
//! The generators produce maintenance windows (open, closed, undefined, invalid), varied
//! hardware (1–3 disk groups, with or without a RAID controller, hardware not read) and
//! catalog (template missing, OS not compatible, end of install), records of another OS or
//! another generation, several tasks (pending, finished, failed, unreadable), partial detail,
//! targets, suspend, anomalies, tag-only records and store/tag disputes.
//! `the_generators_cover_every_action_drift_and_blocker` guards them against going vacuous.

use std::collections::{BTreeMap, BTreeSet};

use ovhform::cli::render::{MARKDOWN_LIMIT, render_markdown, render_text};
use ovhform::model::*;
use ovhform::plan::testkit::{self, apply_in_memory, desired_server, observed_server, record_for};
use ovhform::plan::window::{WindowState, evaluate};
use ovhform::plan::{
    Action, ActionKind, Approval, Blocker, Plan, PlanInput, ServerPlan, lint, needs_detail, plan,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::json;

const OSES: [&str; 2] = ["debian12_64", "ubuntu2404-server_64"];
const SCRIPT_A: &str = "#!ipxe\nchain http://boot.example/a.ipxe\n";
const SCRIPT_B: &str = "#!ipxe\nchain http://boot.example/b.ipxe\n";
/// The window a server names, by index: none, open now, closed now, not defined, a schedule
/// that is not cron, a time zone that does not exist.
const WINDOWS: [&str; 6] = ["", "open", "closed", "undefined", "bad-cron", "bad-zone"];

/// One generated server.
#[derive(Clone, Debug)]
struct Case {
    live_os: usize,
    desired_os: usize,
    /// 0 none, 1 matching, 2 other fingerprint (no request kept), 3 older generation,
    /// 4 newer generation (the manifest lowered it), 5 an install of the other OS, 6 one that
    /// says it finished tomorrow (refused as implausible).
    record: u8,
    /// 0 unmanaged, 1 disk, 2 rescue, 3 network, 4 iPXE A, 5 iPXE B, 6 bootId 22.
    desired_boot: u8,
    /// 0 disk, 1 rescue, 2 iPXE A.
    live_boot: u8,
    reboot: bool,
    /// The manifest's rescue kernel is not offered by the server.
    missing_kernel: bool,
    monitoring: Option<bool>,
    live_monitoring: bool,
    mail: Option<u8>,
    live_mail: Option<u8>,
    /// Managed EFI path: None, or one of two paths.
    efi: Option<bool>,
    /// Records say ovhform applied the manifest's boot and settings.
    applied: bool,
    /// Drift policies (boot, settings, install): 0 ignore, 1 warn, 2 correct.
    drift: (u8, u8, u8),
    auto: bool,
    never: bool,
    /// Index in [`WINDOWS`].
    window: u8,
    suspend: bool,
    hw: Hw,
    /// The desired OS is not in the server's compatible templates.
    incompatible: bool,
    /// Tasks in the server's history, by kind (see [`task`]).
    tasks: Vec<u8>,
    /// install/status: 0 nothing installing, 1 an installation in progress, 2 one whose step
    /// failed, 3 could not be read.
    install_status: u8,
    /// Detail (tasks, boots, hardware, catalog) read.
    detail: bool,
    anomaly: bool,
    /// The record comes from the server's tags only.
    tag_only: bool,
    /// The store and the tags disagree.
    dispute: bool,
    /// OVH's planned interventions (when detail is read): 0 read, none; 1 one `todo`; 2 one
    /// `done`; 3 one `doing` without an expected end; 4 not read; 5 unreadable.
    interventions: u8,
}

#[derive(Clone, Debug)]
struct Hw {
    /// 0: hardware not read; else the number of disk groups (1–3).
    groups: u8,
    /// Disks in disk group 1 (the OS's).
    disks: u8,
    /// Disk group 1 has a RAID controller.
    raid_controller: bool,
    /// The spec's storage: 0 soft RAID 1, 1 also keep disk group 2, 2 hardware RAID 1,
    /// 3 soft RAID 5, 4 ZFS soft RAID 6 (raidz2).
    storage: u8,
}

/// A generated fleet: servers, servers whose manifest was removed, the catalog and targets.
#[derive(Clone, Debug)]
struct Fleet {
    cases: Vec<Case>,
    forgotten: usize,
    /// 0 full, 1 the Ubuntu template missing, 2 Debian past its end of install, 3 Ubuntu's
    /// end of install in the future.
    catalog: u8,
    /// `--target`: a mask over the servers (cases, then forgotten) and an unknown name.
    targets: Option<(u16, bool)>,
}

impl Case {
    /// The same server with nothing that blocks: what the idempotence law runs on.
    fn calm(mut self) -> Case {
        self.never = false;
        self.suspend = false;
        self.missing_kernel = false;
        if self.window > 1 {
            self.window = 0;
        }
        // A refused record blocks any wipe of the server.
        if self.record == 6 && self.live_os != self.desired_os {
            self.record = 1;
        }
        self.hw = Hw {
            groups: self.hw.groups.max(2),
            disks: 5,
            raid_controller: true,
            storage: self.hw.storage,
        };
        self.incompatible = false;
        self.detail = true;
        self.anomaly = false;
        self.dispute = false;
        // What the pipeline would have read for a reinstall that can run.
        if !matches!(self.interventions, 0 | 2) {
            self.interventions = 0;
        }
        // A failed reinstall leaves an unrecorded server degraded: its adopt stays blocked.
        self.tasks.retain(|t| !matches!(t, 5 | 6));
        self
    }
}

impl Fleet {
    fn calm(mut self) -> Fleet {
        self.cases = self.cases.into_iter().map(Case::calm).collect();
        if self.catalog == 1 {
            self.catalog = 0;
        }
        self.targets = None;
        self
    }

    /// Calm, but with the planned interventions as generated: automatic wipes that nothing
    /// else blocks meet unread, unreadable and unfinished interventions.
    fn calm_with_interventions(self) -> Fleet {
        let kept: Vec<u8> = self.cases.iter().map(|c| c.interventions).collect();
        let mut f = self.calm();
        for (c, k) in f.cases.iter_mut().zip(kept) {
            c.interventions = k;
        }
        f
    }

    fn with_detail(mut self) -> Fleet {
        for c in &mut self.cases {
            c.detail = true;
        }
        self
    }

    fn all_warn(mut self) -> Fleet {
        for c in &mut self.cases {
            c.drift = (1, 1, 1);
        }
        self
    }
}

fn weighted(p: f64) -> impl Strategy<Value = bool> {
    proptest::bool::weighted(p)
}

fn case() -> impl Strategy<Value = Case> {
    let install = (
        0..2usize,
        0..2usize,
        prop_oneof![2 => Just(0u8), 3 => Just(1u8), 5 => 2..7u8],
        any::<bool>(),
        (0..3u8, 0..3u8, 0..3u8),
    );
    let boot = (0..7u8, 0..3u8, any::<bool>(), weighted(0.08));
    let settings = (
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        proptest::option::of(0..3u8),
        proptest::option::of(0..3u8),
        proptest::option::of(any::<bool>()),
    );
    let policy = (
        any::<bool>(),
        weighted(0.08),
        prop_oneof![4 => Just(0u8), 6 => 1..6u8],
        weighted(0.08),
    );
    let hw = (
        prop_oneof![1 => Just(0u8), 2 => Just(1u8), 4 => Just(2u8), 2 => Just(3u8)],
        prop_oneof![1 => Just(1u8), 4 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8), 1 => Just(5u8)],
        any::<bool>(),
        prop_oneof![4 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)],
    )
        .prop_map(|(groups, disks, raid_controller, storage)| Hw {
            groups,
            disks,
            raid_controller,
            storage,
        });
    let task_kind = prop_oneof![
        1 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8), 6 => Just(3u8), 2 => Just(4u8),
        3 => Just(5u8), 1 => Just(6u8), 1 => Just(7u8), 1 => Just(8u8), 1 => Just(9u8),
    ];
    let observed = (
        prop_oneof![3 => Just(vec![]), 2 => prop::collection::vec(task_kind, 1..3)],
        prop_oneof![14 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        weighted(0.88),
        weighted(0.06),
        weighted(0.12),
    );
    let records = (weighted(0.15), weighted(0.1));
    (install, boot, settings, policy, hw, observed, records).prop_map(
        |(
            (live_os, desired_os, record, applied, drift),
            (desired_boot, live_boot, reboot, missing_kernel),
            (monitoring, live_monitoring, mail, live_mail, efi),
            (auto, never, window, suspend),
            hw,
            (tasks, install_status, detail, anomaly, incompatible),
            (tag_only, dispute),
        )| Case {
            live_os,
            desired_os,
            record,
            desired_boot,
            live_boot,
            reboot,
            missing_kernel,
            monitoring,
            live_monitoring,
            mail,
            live_mail,
            efi,
            applied,
            drift,
            auto,
            never,
            window,
            suspend,
            hw,
            incompatible,
            tasks,
            install_status,
            detail,
            anomaly,
            tag_only,
            dispute,
            // Drawn per fleet, last (see `fleet`).
            interventions: 0,
        },
    )
}

fn fleet() -> impl Strategy<Value = Fleet> {
    (
        prop::collection::vec(case(), 1..8),
        0..3usize,
        prop_oneof![3 => Just(0u8), 1 => 1..4u8],
        prop_oneof![4 => Just(None), 1 => (any::<u16>(), weighted(0.3)).prop_map(Some)],
    )
        .prop_map(|(mut cases, forgotten, catalog, targets)| {
            for (i, c) in cases.iter_mut().enumerate() {
                c.interventions = interventions_of(c, i);
            }
            Fleet {
                cases,
                forgotten,
                catalog,
                targets,
            }
        })
}

/// A case's planned interventions, derived from what was drawn instead of drawn: one more
/// draw would shift the random stream, and with it every fleet the seeded generators (and the
/// coverage counts below) have always produced.
fn interventions_of(c: &Case, i: usize) -> u8 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{c:?}/{i}").hash(&mut h);
    // 0 ×5, 1 ×2, 2, 3, 4 ×3, 5 ×3.
    [0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 4, 4, 5, 5, 5][(h.finish() % 15) as usize]
}

fn mail(i: u8) -> String {
    ["", "ops@example.com", "noc@example.com"][i as usize].to_string()
}

fn drift_action(i: u8) -> DriftAction {
    [DriftAction::Ignore, DriftAction::Warn, DriftAction::Correct][i as usize]
}

fn now() -> jiff::Timestamp {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

fn ago(hours: i64) -> jiff::Timestamp {
    now()
        .checked_sub(jiff::SignedDuration::from_hours(hours))
        .unwrap()
}

fn window(name: &str, schedule: &str, time_zone: &str) -> MaintenanceWindow {
    MaintenanceWindow {
        name: name.into(),
        origin: testkit::origin("windows.yaml", 1),
        schedule: schedule.into(),
        duration_secs: 3 * 3600,
        time_zone: time_zone.into(),
    }
}

/// The windows every generated fleet defines (at `now`, 12:00 UTC: `open` is open, `closed`
/// is closed, the other two cannot be evaluated).
fn windows() -> Vec<MaintenanceWindow> {
    vec![
        window("open", "0 11 * * *", "UTC"),
        window("closed", "0 2 * * *", "Europe/Paris"),
        window("bad-cron", "not a cron line", "UTC"),
        window("bad-zone", "0 2 * * *", "Mars/Olympus_Mons"),
    ]
}

fn catalog(kind: u8) -> BTreeMap<String, Template> {
    let mut c = testkit::catalog();
    match kind {
        1 => {
            c.remove(OSES[1]);
        }
        2 => c.get_mut(OSES[0]).unwrap().end_of_install = Some("2026-01-01".into()),
        3 => c.get_mut(OSES[1]).unwrap().end_of_install = Some("2027-06-30".into()),
        _ => {}
    }
    c
}

/// A task of the given kind (`j` keeps ids apart). The record of a generated server was made
/// by task 1000, a day before `now`.
fn task(kind: u8, j: u64) -> Task {
    let t = |id: u64, function: &str, status: TaskStatus, when: Option<jiff::Timestamp>| Task {
        id,
        function: function.into(),
        status,
        comment: None,
        start_date: when,
        done_date: when.filter(|_| !status.is_pending() && status != TaskStatus::Unreadable),
    };
    let hour_ago = Some(ago(1));
    match kind {
        // Running.
        0 => t(2000 + j, "hardReboot", TaskStatus::Doing, hour_ago),
        1 => t(2100 + j, "reinstallServer", TaskStatus::Init, hour_ago),
        // Finished.
        2 => t(2200 + j, "hardReboot", TaskStatus::Done, hour_ago),
        // A reinstall after the recorded one that ovhform did not make (install drift).
        3 => t(2300 + j, "reinstallServer", TaskStatus::Done, hour_ago),
        // A reinstall before the recorded one.
        4 => t(500 + j, "reinstallServer", TaskStatus::Done, Some(ago(48))),
        // A failed reinstall: the server is degraded.
        5 => Task {
            comment: Some("Partitioning failed".into()),
            ..t(
                2500 + j,
                "reinstallServer",
                TaskStatus::CustomerError,
                hour_ago,
            )
        },
        6 => t(2600 + j, "reinstallServer", TaskStatus::OvhError, hour_ago),
        // Listed but answering 404: newer than every readable task (fresh), or older.
        7 => t(3000 + j, "reinstallServer", TaskStatus::Unreadable, None),
        8 => t(100 + j, "hardReboot", TaskStatus::Unreadable, None),
        // A status this ovhform does not know: waited on.
        _ => t(2900 + j, "upgradeFirmware", TaskStatus::Unknown, hour_ago),
    }
}

fn storage(spec: &mut InstallSpec, kind: u8) {
    let layout = &mut spec.request["storage"][0]["partitioning"]["layout"][1];
    match kind {
        1 => {
            spec.keep_disk_groups.insert(2);
            spec.request["storage"]
                .as_array_mut()
                .unwrap()
                .push(json!({"diskGroupId": 2, "erase": false}));
        }
        2 => spec.request["storage"][0]["hardwareRaid"] = json!([{"raidLevel": 1}]),
        3 => layout["raidLevel"] = 5.into(),
        4 => {
            layout["fileSystem"] = "zfs".into();
            layout["raidLevel"] = 6.into();
        }
        _ => return,
    }
    testkit::refingerprint(spec);
}

fn hardware(hw: &Hw) -> Option<Hardware> {
    (hw.groups > 0).then(|| Hardware {
        boot_mode: "uefi".into(),
        disk_groups: (1..=u32::from(hw.groups))
            .map(|id| DiskGroup {
                id,
                description: format!("disk group {id}"),
                disk_type: "SSD".into(),
                number_of_disks: if id == 1 { u32::from(hw.disks) } else { 2 },
                disk_size_bytes: 480_000_000_000,
                raid_controller: (id == 1 && hw.raid_controller).then(|| "LSI MegaRAID".into()),
            })
            .collect(),
    })
}

fn server_name(i: usize) -> String {
    format!("s{i:03}.eu")
}

fn build(f: &Fleet) -> (Desired, Observed, Records, PlanInput) {
    let now = now();
    let mut d = Desired::default();
    for w in windows() {
        d.windows.insert(w.name.clone(), w);
    }
    let mut o = Observed {
        templates: catalog(f.catalog),
        ..Default::default()
    };
    let mut r = Records::default();
    for (i, c) in f.cases.iter().enumerate() {
        let name = server_name(i);
        let mut ds = desired_server(&name, OSES[c.desired_os]);
        let mut live = observed_server(&name, OSES[c.live_os]);
        let spec = ds.install.as_mut().unwrap();
        spec.generation = 2;
        storage(spec, c.hw.storage);
        let rec = match c.record {
            1 => Some(record_for(&name, spec, now)),
            2 => {
                let mut rec = record_for(&name, spec, now);
                rec.fingerprint = format!("sha256:{}", "0".repeat(64));
                rec.request = None;
                Some(rec)
            }
            3 | 4 => {
                let mut rec = record_for(&name, spec, now);
                rec.generation = if c.record == 3 { 1 } else { 3 };
                Some(rec)
            }
            5 => {
                let mut other = testkit::install_spec(OSES[1 - c.desired_os], &name);
                other.generation = 2;
                Some(record_for(&name, &other, now))
            }
            6 => {
                let tomorrow = ago(-24);
                Some(InstallRecord {
                    started: Some(tomorrow),
                    finished: Some(tomorrow),
                    ..record_for(&name, spec, now)
                })
            }
            _ => None,
        };
        if let Some(rec) = rec {
            let source = if c.tag_only {
                RecordSource::Tags
            } else {
                RecordSource::Store
            };
            r.sources.insert(name.clone(), source);
            if c.dispute {
                let mut tags = rec.clone();
                tags.fingerprint = format!("sha256:{}", "f".repeat(64));
                tags.finished = Some(ago(2));
                r.disputes.insert(
                    name.clone(),
                    RecordDispute {
                        store: rec.clone(),
                        tags,
                    },
                );
            }
            r.installs.insert(name.clone(), rec);
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
            lease: None,
        });
        if c.missing_kernel {
            ds.boot = Some(BootSpec {
                mode: BootMode::Rescue {
                    kernel: "rescue64-pro".into(),
                },
                reboot: RebootPolicy::OnChange,
                lease: None,
            });
        }
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
        if c.never {
            ds.policy.reinstall = ReinstallPolicy::Never;
        }
        if c.window > 0 {
            ds.policy.maintenance_window = Some(WINDOWS[c.window as usize].into());
        }
        ds.policy.suspend = c.suspend;

        let detail = live.detail.as_mut().unwrap();
        detail.hardware = hardware(&c.hw);
        if c.incompatible {
            let os = &ds.install.as_ref().unwrap().os;
            detail.compatible_templates.retain(|t| t != os);
        }
        for (j, k) in c.tasks.iter().enumerate() {
            detail.tasks.push(task(*k, j as u64));
        }
        match c.install_status {
            1 => {
                detail.install_status = Some(InstallStatus {
                    elapsed_secs: 120,
                    steps: vec![InstallStep {
                        comment: "Setting up partitions".into(),
                        status: "doing".into(),
                        error: None,
                    }],
                })
            }
            2 => {
                detail.install_status = Some(InstallStatus {
                    elapsed_secs: 900,
                    steps: vec![
                        InstallStep {
                            comment: "Downloading image".into(),
                            status: "done".into(),
                            error: None,
                        },
                        InstallStep {
                            comment: "Setting up partitions".into(),
                            status: "error".into(),
                            error: Some("not enough disks".into()),
                        },
                    ],
                })
            }
            3 => detail.install_status_unknown = true,
            _ => {}
        }
        let one = |status: InterventionStatus, expected_end: Option<jiff::Timestamp>| {
            Interventions::Read {
                list: vec![PlannedIntervention {
                    id: 40 + i as u64,
                    kind: "HARDWARE_UPGRADE_ON_ACTIVE_SERVER".into(),
                    status,
                    wanted_start: Some(now),
                    expected_end,
                }],
            }
        };
        detail.interventions = match c.interventions {
            1 => one(
                InterventionStatus::Todo,
                Some(now + jiff::SignedDuration::from_hours(3)),
            ),
            2 => one(InterventionStatus::Done, Some(now)),
            3 => one(InterventionStatus::Doing, None),
            4 => Interventions::NotRead,
            5 => Interventions::Unreadable {
                error: "HTTP 503".into(),
            },
            _ => Interventions::Read { list: vec![] },
        };
        if !c.detail {
            live.detail = None;
        }
        if c.anomaly {
            live.anomalies
                .push("its boot id is not in its boot list".into());
        }
        if c.applied {
            r.applied.insert(
                name.clone(),
                AppliedState {
                    lease: None,
                    boot: ds.boot.as_ref().map(|b| b.mode.clone()),
                    settings: ds.settings.clone(),
                },
            );
        }
        d.servers.insert(name.clone(), ds);
        o.servers.insert(name, live);
    }
    let mut names: Vec<String> = (0..f.cases.len()).map(server_name).collect();
    for i in 0..f.forgotten {
        let name = format!("gone{i}.eu");
        let ds = desired_server(&name, OSES[0]);
        r.installs.insert(
            name.clone(),
            record_for(&name, ds.install.as_ref().unwrap(), now),
        );
        let mut live = observed_server(&name, OSES[0]);
        live.tags
            .insert("ovhform:install".into(), "sha256:abc".into());
        o.servers.insert(name.clone(), live);
        names.push(name);
    }
    let mut input = PlanInput::new(now);
    if let Some((mask, typo)) = f.targets {
        input.targets = names
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, n)| n)
            .collect();
        if typo {
            input.targets.insert("typo.eu".into());
        }
    }
    (d, o, r, input)
}

fn config() -> Config {
    Config {
        cases: 192,
        rng_seed: RngSeed::Fixed(0x0f4f_0a11),
        ..Config::default()
    }
}

/// A reinstall (runnable or blocked) rests on a difference between the manifest and what
/// ovhform recorded (or, without a record, the live OS): never on drift alone unless the drift
/// policy says so.
fn intended_reinstall(name: &str, sp: &ServerPlan, d: &Desired, o: &Observed, r: &Records) -> bool {
    let spec = d.servers[name].install.as_ref().unwrap();
    match believed(name, sp, r) {
        None => o.servers[name].os != spec.os,
        Some(rec) => {
            rec.fingerprint != spec.fingerprint
                || rec.os != spec.os
                || spec.generation > rec.generation
        }
    }
}

/// The record the planner believes: none when it refused it as implausible.
fn believed<'r>(name: &str, sp: &ServerPlan, r: &'r Records) -> Option<&'r InstallRecord> {
    let refused = sp
        .findings
        .iter()
        .any(|f| f.code.slug() == "record-implausible");
    r.installs.get(name).filter(|_| !refused)
}

/// Install drift the planner can see: the live OS is not the recorded one, a reinstall ran
/// after the recorded one that ovhform did not make, or the last reinstall failed.
fn install_drift(name: &str, sp: &ServerPlan, o: &Observed, r: &Records) -> bool {
    let live = &o.servers[name];
    let Some(rec) = believed(name, sp, r) else {
        return false;
    };
    let tasks: Vec<&Task> = live.detail.iter().flat_map(|d| &d.tasks).collect();
    let foreign = tasks.iter().any(|t| {
        t.function == "reinstallServer"
            && t.status == TaskStatus::Done
            && Some(t.id) != rec.task_id
            && match (rec.started, t.start_date) {
                (Some(s), Some(ts)) => ts > s,
                _ => rec.task_id.is_some_and(|id| t.id > id),
            }
    });
    let failed = tasks
        .iter()
        .filter(|t| t.function == "reinstallServer")
        .max_by_key(|t| t.id)
        .is_some_and(|t| matches!(t.status, TaskStatus::CustomerError | TaskStatus::OvhError));
    live.os != rec.os || foreign || failed
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
                let policy = d.servers[name].policy.drift.install;
                let grounded = intended_reinstall(name, sp, d, o, r)
                    || (policy == DriftAction::Correct && install_drift(name, sp, o, r));
                prop_assert!(
                    grounded,
                    "{name}: reinstall without an OS/fingerprint/generation difference: {:#?}",
                    a
                );
            }
        }
    }
    Ok(())
}

/// What happened while a fleet was planned and applied until it settled.
struct Settled {
    /// The plan after the last apply.
    last: Plan,
    /// Servers with a `blocked` action in a plan that was applied.
    blocked: BTreeSet<String>,
}

/// Plan, apply the plan in memory, plan again. A plan with `wait` is applied once more after
/// its tasks end (the first apply only waits; a task answering 404 finishes too): `wait`
/// means "nothing else yet", so convergence takes one round more. Every plan on the way must
/// be lint-clean, with reinstalls grounded and every action inside the universe.
fn apply_until_settled(
    d: &Desired,
    o: &mut Observed,
    r: &mut Records,
    input: &PlanInput,
) -> Result<Settled, TestCaseError> {
    let mut p = plan(d, o, r, input);
    let mut blocked = BTreeSet::new();
    for _round in 0..2 {
        prop_assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
        check_universe_and_reinstall(&p, d, o, r)?;
        let mut waited = false;
        for sp in p.servers.values() {
            for a in &sp.actions {
                match a.kind() {
                    ActionKind::Wait => waited = true,
                    ActionKind::Blocked => {
                        blocked.insert(sp.server.clone());
                    }
                    _ => {}
                }
            }
        }
        apply_in_memory(&p, d, o, r, now());
        if waited {
            // Time passes: tasks that answered 404 became readable and finished.
            for s in o.servers.values_mut() {
                for t in s.detail.iter_mut().flat_map(|d| d.tasks.iter_mut()) {
                    if t.status == TaskStatus::Unreadable {
                        t.status = TaskStatus::Done;
                        t.start_date = Some(now());
                        t.done_date = Some(now());
                    }
                }
            }
        }
        p = plan(d, o, r, input);
        if !waited {
            break;
        }
    }
    prop_assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
    check_universe_and_reinstall(&p, d, o, r)?;
    Ok(Settled { last: p, blocked })
}

fn is_api(k: ActionKind) -> bool {
    matches!(
        k,
        ActionKind::Reinstall
            | ActionKind::SetBoot
            | ActionKind::UpdateSettings
            | ActionKind::Reboot
    )
}

/// The desired value of each managed setting, by API name (`""` and unset are the same to
/// the API).
fn setting_values(s: &Settings) -> BTreeMap<&'static str, Option<String>> {
    let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let flag = |v: Option<bool>| v.map(|b| b.to_string());
    [
        ("efiBootloaderPath", text(&s.efi_bootloader_path)),
        ("monitoring", flag(s.monitoring)),
        ("noIntervention", flag(s.no_intervention)),
        ("rescueMail", text(&s.rescue_mail)),
        ("rescueSshKey", text(&s.rescue_ssh_key)),
        ("rootDevice", text(&s.root_device)),
    ]
    .into()
}

/// The fields a settings PUT sends.
fn sent_fields(s: &Settings) -> Vec<&'static str> {
    let sent = [
        ("efiBootloaderPath", s.efi_bootloader_path.is_some()),
        ("monitoring", s.monitoring.is_some()),
        ("noIntervention", s.no_intervention.is_some()),
        ("rescueMail", s.rescue_mail.is_some()),
        ("rescueSshKey", s.rescue_ssh_key.is_some()),
        ("rootDevice", s.root_device.is_some()),
    ];
    sent.into_iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| n)
        .collect()
}

/// Whether the server's maintenance window (if any) lets a reinstall run now.
fn window_allows(ds: &DesiredServer, d: &Desired, now: jiff::Timestamp) -> bool {
    match &ds.policy.maintenance_window {
        None => true,
        Some(w) => d
            .windows
            .get(w)
            .is_some_and(|w| matches!(evaluate(w, now), Ok(WindowState::Open { .. }))),
    }
}

/// Everything that must block a reinstall of this server, by what it is.
fn reinstall_gates(
    name: &str,
    d: &Desired,
    o: &Observed,
    r: &Records,
    now: jiff::Timestamp,
) -> Vec<&'static str> {
    let ds = &d.servers[name];
    let live = &o.servers[name];
    let spec = ds.install.as_ref().unwrap();
    let mut gates = Vec::new();
    if ds.policy.reinstall == ReinstallPolicy::Never {
        gates.push("policy never");
    }
    if !window_allows(ds, d, now) {
        gates.push("window");
    }
    if r.disputes.contains_key(name) {
        gates.push("dispute");
    }
    match &live.detail {
        None => gates.push("detail missing"),
        Some(detail) => {
            if !detail.compatible_templates.contains(&spec.os) {
                gates.push("os not compatible");
            }
            if !o.templates.contains_key(&spec.os) {
                gates.push("template missing");
            }
            match &detail.hardware {
                None => gates.push("hardware not read"),
                Some(hw) => {
                    let os_group = hw.disk_groups.iter().find(|g| g.id == 1);
                    let disks = os_group.map_or(0, |g| g.number_of_disks);
                    let layout = &spec.request["storage"][0]["partitioning"]["layout"][1];
                    let soft = match (layout["raidLevel"].as_u64(), layout["fileSystem"].as_str()) {
                        (Some(6), Some("zfs")) => 5,
                        (Some(5), _) => 3,
                        _ => 2,
                    };
                    if disks < soft {
                        gates.push("too few disks");
                    }
                    if spec.request["storage"][0].get("hardwareRaid").is_some()
                        && os_group.is_none_or(|g| g.raid_controller.is_none())
                    {
                        gates.push("no RAID controller");
                    }
                    if spec
                        .keep_disk_groups
                        .iter()
                        .any(|k| !hw.disk_groups.iter().any(|g| g.id == *k))
                    {
                        gates.push("kept disk group missing");
                    }
                }
            }
        }
    }
    if ds.policy.suspend {
        gates.push("suspended");
    }
    if !live.anomalies.is_empty() {
        gates.push("anomaly");
    }
    gates
}

/// Cheap vs full observation, for one server not in `needs_detail`: the cheap plan is
/// `noop`/`adopt` (or the gates' `blocked` adopt), and the full plan differs only by facts
/// only the detail shows — a `wait`, install drift (and its correction when the policy says
/// so) or a degraded server's finding and blocked adopt.
fn unread_server_agrees(
    name: &str,
    cheap: &ServerPlan,
    full: &ServerPlan,
    d: &Desired,
) -> Result<(), TestCaseError> {
    let gate = |b: &Blocker| {
        matches!(
            b,
            Blocker::Suspended { .. } | Blocker::DetailMissing | Blocker::ObservedAnomaly { .. }
        )
    };
    for a in &cheap.actions {
        let ok = match a {
            Action::Noop(_) | Action::Adopt(_) | Action::Forget(_) => true,
            Action::Blocked(b) => match b.action.as_deref() {
                Some(Action::Adopt(_)) => b.blockers.iter().all(gate),
                None => true,
                Some(_) => false,
            },
            _ => false,
        };
        prop_assert!(
            ok,
            "{name}: planned without detail, yet {a:#?}\n(full plan: {full:#?})"
        );
    }
    // The one drift the listing shows: a server left in rescue or netboot with an unmanaged
    // boot (the boot type comes from the listing's id through the cache). The full plan
    // reports it too; only its "since" can differ (the task history says when).
    let left_in = |x: &ovhform::plan::Drift| x.field == "boot" && x.applied.is_none();
    prop_assert!(
        cheap.drift.iter().all(left_in),
        "{name}: {:#?}",
        cheap.drift
    );
    // (A running task the detail shows owns the server: the full plan stops at its `wait`.)
    let full_waits = full.actions.iter().map(Action::kind).eq([ActionKind::Wait]);
    prop_assert_eq!(
        if full_waits { 0 } else { cheap.drift.len() },
        full.drift.iter().filter(|x| left_in(x)).count(),
        "{}: {:#?} vs {:#?}",
        name,
        cheap.drift,
        full.drift
    );
    // The cheap plan's blocked actions carry the missing detail as one more blocker.
    let mut cheap_norm = cheap.clone();
    cheap_norm.drift.retain(|x| !left_in(x));
    for a in &mut cheap_norm.actions {
        if let Action::Blocked(b) = a {
            b.blockers.retain(|x| *x != Blocker::DetailMissing);
        }
    }
    let mut full_norm = full.clone();
    full_norm.drift.retain(|x| !left_in(x));
    full_norm.based_on.detail_read = false;
    if full_norm == cheap_norm {
        return Ok(());
    }
    let kinds: Vec<ActionKind> = full.actions.iter().map(Action::kind).collect();
    if kinds == [ActionKind::Wait] {
        return Ok(());
    }
    let degraded = full
        .findings
        .iter()
        .any(|f| f.code.slug() == "install-failed");
    let drifted = full.drift.iter().any(|x| x.field == "install");
    prop_assert!(
        degraded || drifted,
        "{name}: the full plan differs by more than the detail explains:\ncheap: {cheap:#?}\nfull: {full:#?}"
    );
    for f in &cheap.findings {
        prop_assert!(full.findings.contains(f), "{name}: {f:?} lost with detail");
    }
    let corrects = d.servers[name].policy.drift.install == DriftAction::Correct;
    // What follows a reinstall (runnable, or blocked as a whole server is: an anomaly) was
    // planned assuming it ran.
    let reinstall_runs = full.actions.iter().any(|a| a.reinstall().is_some());
    for a in &full.actions {
        let explained = cheap_norm.actions.contains(a)
            || a.kind() == ActionKind::Noop
            || (a.effective_kind() == ActionKind::Adopt
                && a.blockers()
                    .iter()
                    .any(|b| matches!(b, Blocker::InstallFailed { .. })))
            || (a.reinstall().is_some()
                && corrects
                && a.reason().starts_with("correct install drift"))
            || (reinstall_runs
                && matches!(
                    a.effective_kind(),
                    ActionKind::UpdateSettings | ActionKind::SetBoot | ActionKind::Reboot
                ));
        prop_assert!(
            explained,
            "{name}: {a:#?} is not explained by install drift or a failed install:\ncheap: {cheap:#?}\nfull: {full:#?}"
        );
    }
    Ok(())
}

/// The laws above are only as strong as the fleets they see: over the generator's own
/// distribution (same seed and case count), every action type, every kind of drift, every
/// blocker the planner can produce and both grounds for a reinstall must actually occur, and
/// a good share of servers must have something to do. Guards against a generator change
/// that quietly makes the laws vacuous.
#[test]
fn the_generators_cover_every_action_drift_and_blocker() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::new(config());
    let strategy = fleet();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut bump = |k: String| *kinds.entry(k).or_default() += 1;
    let (mut servers, mut busy) = (0, 0);
    for i in 0..config().cases {
        let f = strategy.new_tree(&mut runner).unwrap().current();
        // Some fleets without blockers, as the idempotence law sees them.
        let fleets = if i % 4 == 0 {
            // Calm fleets see automatic wipes nothing else blocks: once as the idempotence law
            // does, once meeting the generated interventions.
            vec![f.clone().calm(), f.calm_with_interventions()]
        } else {
            vec![f]
        };
        for f in fleets {
            let (d, o, r, input) = build(&f);
            let p = plan(&d, &o, &r, &input);
            if !input.targets.is_empty() {
                bump("targeted".into());
            }
            for fd in &p.findings {
                bump(format!("finding {}", fd.code.slug()));
            }
            let n = needs_detail(&d, &o, &r, &input);
            for sp in p.servers.values() {
                servers += 1;
                if o.servers.contains_key(&sp.server) && !n.contains(&sp.server) {
                    bump("not in needs_detail".into());
                }
                if sp.actions.iter().any(|a| a.kind() != ActionKind::Noop) {
                    busy += 1;
                }
                for fd in &sp.findings {
                    bump(format!("finding {}", fd.code.slug()));
                }
                for a in &sp.actions {
                    bump(a.kind().to_string());
                    if a.kind() == ActionKind::Blocked {
                        bump(format!("blocked {}", a.effective_kind()));
                        for b in a.blockers() {
                            bump(format!("blocker {}", b.kind_name()));
                        }
                    }
                    if let Action::Wait(w) = a {
                        bump(format!(
                            "wait {}",
                            serde_json::to_value(&w.on).unwrap()["kind"]
                        ));
                    }
                    if let Some(ri) = a.reinstall() {
                        let ground = if r.installs.contains_key(&sp.server) {
                            "reinstall: record differs"
                        } else {
                            "reinstall: no record, other OS"
                        };
                        bump(ground.to_string());
                        match &ri.approval {
                            Approval::AllowWipe { why: Some(_), .. } => {
                                bump("approval never automatic".into())
                            }
                            Approval::AllowWipe { why: None, .. } => {
                                bump("approval allow-wipe".into())
                            }
                            Approval::Auto { .. } => bump("approval auto".into()),
                            Approval::Never => bump("approval never".into()),
                        }
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
    }
    let mut want: Vec<String> = [
        "adopt",
        "reinstall",
        "set-boot",
        "reboot",
        "update-settings",
        "wait",
        "blocked",
        "forget",
        "noop",
        "blocked adopt",
        "blocked reinstall",
        "blocked set-boot",
        "blocked update-settings",
        "blocked reboot",
        "reinstall: record differs",
        "reinstall: no record, other OS",
        "drift install",
        "drift install: foreign task",
        "drift boot",
        "drift settings",
        "wait \"task\"",
        "wait \"install\"",
        "approval allow-wipe",
        "approval auto",
        "approval never automatic",
        "approval never",
        "targeted",
        "not in needs_detail",
        "finding target-unknown",
        "finding generation-lowered",
        "finding end-of-install",
        "finding install-failed",
        "finding record-implausible",
        "finding record-disputed",
        "finding os-not-compatible",
        "finding os-unknown",
        "finding raid-disks",
        "finding hardware-raid-unsupported",
        "finding kept-disk-group-missing",
        "finding window-unknown",
        "finding planned-intervention",
    ]
    .map(String::from)
    .into();
    // Every blocker but the ones this planner never produces from these inputs: approvals
    // and group limits are enforced by apply, other fleets and absent servers have their own
    // tests.
    for b in Blocker::KINDS {
        if !matches!(
            *b,
            "needs-approval" | "group-limit" | "other-fleet" | "server-not-found"
        ) {
            want.push(format!("blocker {b}"));
        }
    }
    // `cargo test plan_laws::the_generators -- --nocapture` shows the distribution.
    eprintln!("{kinds:#?}");
    for k in want {
        let n = kinds.get(&k).copied().unwrap_or(0);
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
    fn planner_is_deterministic(f in fleet()) {
        let (d, o, r, input) = build(&f);
        let a = plan(&d, &o, &r, &input);
        let b = plan(&d, &o.clone(), &r.clone(), &input);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.to_json(), b.to_json());
        prop_assert_eq!(render_text(&a, true), render_text(&b, true));
        prop_assert_eq!(render_markdown(&a, MARKDOWN_LIMIT), render_markdown(&b, MARKDOWN_LIMIT));
    }

    /// A fleet without blockers converges: plan, apply, plan again → only `noop`.
    #[test]
    fn applying_the_plan_then_replanning_yields_only_noop(f in fleet()) {
        let (d, mut o, mut r, input) = build(&f.calm());
        let s = apply_until_settled(&d, &mut o, &mut r, &input)?;
        prop_assert!(s.blocked.is_empty(), "a calm fleet was blocked: {:?}", s.blocked);
        for (name, sp) in &s.last.servers {
            let kinds: Vec<ActionKind> = sp.actions.iter().map(|a| a.kind()).collect();
            prop_assert_eq!(&kinds, &vec![ActionKind::Noop], "{} after apply: {:#?}", name, sp.actions);
        }
        prop_assert!(!s.last.has_changes());
    }

    /// Any fleet: every server that nothing blocked converges to `noop`; the others end
    /// with nothing but `noop` or `blocked`.
    #[test]
    fn applying_then_replanning_settles_every_server_nothing_blocks(f in fleet()) {
        let (d, mut o, mut r, input) = build(&f);
        let s = apply_until_settled(&d, &mut o, &mut r, &input)?;
        for (name, sp) in &s.last.servers {
            let kinds: Vec<ActionKind> = sp.actions.iter().map(|a| a.kind()).collect();
            if s.blocked.contains(name) {
                prop_assert!(
                    kinds.iter().all(|k| matches!(k, ActionKind::Noop | ActionKind::Blocked)),
                    "{} after apply: {:#?}", name, sp.actions
                );
            } else {
                prop_assert_eq!(&kinds, &vec![ActionKind::Noop], "{} after apply: {:#?}", name, sp.actions);
            }
        }
    }

    /// With every drift policy `warn`, no action corrects drift: each set-boot, settings
    /// field and reinstall is an intended change (or follows a reinstall), and every drift
    /// entry says it is not corrected.
    #[test]
    fn warn_never_acts(f in fleet()) {
        let (d, o, r, input) = build(&f.all_warn());
        let p = plan(&d, &o, &r, &input);
        prop_assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
        for (name, sp) in &p.servers {
            for dr in &sp.drift {
                prop_assert!(!dr.corrected, "{}: warn corrected {:?}", name, dr);
                prop_assert_eq!(dr.policy, DriftAction::Warn);
            }
            let Some(ds) = d.servers.get(name) else { continue };
            let applied = r.applied.get(name);
            // A reinstall (runnable, or blocked only by the gates that block everything)
            // resets the boot and the EFI path: setting them again is no drift correction.
            let reinstall_runs = sp.actions.iter().any(|a| a.reinstall().is_some());
            for a in &sp.actions {
                let inner = match a {
                    Action::Blocked(b) => match b.action.as_deref() { Some(x) => x, None => continue },
                    x => x,
                };
                prop_assert!(!inner.reason().starts_with("correct "), "{}: {:#?}", name, a);
                match inner {
                    Action::Reinstall(_) => prop_assert!(
                        intended_reinstall(name, sp, &d, &o, &r), "{}: warn reinstalled: {:#?}", name, a
                    ),
                    Action::SetBoot(_) => {
                        let mode = ds.boot.as_ref().map(|b| &b.mode);
                        let was_applied = applied.and_then(|x| x.boot.as_ref()) == mode;
                        prop_assert!(reinstall_runs || !was_applied, "{}: warn set the boot: {:#?}", name, a);
                    }
                    Action::UpdateSettings(u) => {
                        let want = setting_values(&ds.settings);
                        let had = applied.map(|x| (setting_values(&x.settings), sent_fields(&x.settings)));
                        for field in sent_fields(&u.fields) {
                            let was_applied = had.as_ref().is_some_and(|(h, managed)| {
                                managed.contains(&field) && h[field] == want[field]
                            });
                            prop_assert!(
                                !was_applied || (field == "efiBootloaderPath" && reinstall_runs),
                                "{}: warn corrected setting {}: {:#?}", name, field, a
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A `blocked` action is never also planned runnable, and each gate blocks what it says:
    /// suspend, missing detail and anomalies every API action (suspend and anomalies adopt
    /// too); policy never, a closed, undefined or invalid window, a dispute, catalog and
    /// hardware problems every reinstall; a failed install or a tag-only record never lets
    /// a wipe be automatic.
    #[test]
    fn a_blocker_never_yields_an_action(f in fleet()) {
        let (d, o, r, input) = build(&f);
        let p = plan(&d, &o, &r, &input);
        prop_assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
        for (name, sp) in &p.servers {
            let runnable: Vec<ActionKind> = sp.actions.iter().map(|a| a.kind()).collect();
            for a in &sp.actions {
                if a.kind() == ActionKind::Blocked && a.effective_kind() != ActionKind::Blocked {
                    prop_assert!(
                        !runnable.contains(&a.effective_kind()),
                        "{}: {} both blocked and runnable: {:#?}", name, a.effective_kind(), sp.actions
                    );
                }
            }
            let (Some(ds), Some(live)) = (d.servers.get(name), o.servers.get(name)) else { continue };
            let gated = ds.policy.suspend || live.detail.is_none() || !live.anomalies.is_empty();
            let no_adopt = ds.policy.suspend || !live.anomalies.is_empty();
            for k in &runnable {
                prop_assert!(!(gated && is_api(*k)), "{}: gated, yet {} runs", name, k);
                prop_assert!(!(no_adopt && *k == ActionKind::Adopt), "{}: suspended, yet adopted", name);
            }
            if runnable.contains(&ActionKind::Reinstall) {
                let gates = reinstall_gates(name, &d, &o, &r, input.now);
                prop_assert!(gates.is_empty(), "{}: a reinstall runs despite {:?}", name, gates);
            }
            // Planned interventions: an automatic wipe runs only on a list read and finished;
            // one a person approves runs with a warning for each unfinished one.
            let interventions = live.detail.as_ref().map(|d| &d.interventions);
            let open = match interventions {
                Some(Interventions::Read { list }) => {
                    list.iter().filter(|p| !p.status.is_finished()).count()
                }
                _ => 0,
            };
            for a in &sp.actions {
                if let Action::Reinstall(ri) = a {
                    match ri.approval {
                        Approval::Auto { .. } => prop_assert!(
                            matches!(interventions, Some(Interventions::Read { .. })) && open == 0,
                            "{}: an automatic wipe with interventions {:?}", name, interventions
                        ),
                        _ => prop_assert_eq!(
                            sp.findings.iter().filter(|f| f.code.slug() == "planned-intervention").count(),
                            open + usize::from(matches!(interventions, Some(Interventions::Unreadable { .. }))),
                            "{}: one warning per unfinished intervention", name
                        ),
                    }
                }
                for b in a.blockers() {
                    if let Blocker::PlannedIntervention { expected_end, .. } = b {
                        prop_assert_eq!(b.requeue_at(), *expected_end);
                        prop_assert!(open > 0, "{}: blocked by a finished intervention", name);
                    }
                }
            }
            if ds.boot.as_ref().is_some_and(|b| b.mode == BootMode::Rescue { kernel: "rescue64-pro".into() }) {
                prop_assert!(!runnable.contains(&ActionKind::SetBoot), "{}: set-boot to a missing kernel", name);
                prop_assert!(!runnable.contains(&ActionKind::Reboot), "{}: reboot after a blocked set-boot", name);
            }
            let degraded = sp.findings.iter().any(|f| f.code.slug() == "install-failed");
            let tag_only = r.sources.get(name) == Some(&RecordSource::Tags)
                && !sp.findings.iter().any(|f| f.code.slug() == "record-implausible");
            for a in &sp.actions {
                if let Some(ri) = a.reinstall() && (degraded || tag_only) {
                    prop_assert!(
                        matches!(&ri.approval, Approval::AllowWipe { why: Some(_), .. } | Approval::Never),
                        "{}: an automatic wipe of a degraded or tag-only server: {:?}", name, ri.approval
                    );
                }
            }
        }
    }

    /// Issue 8: planning with every server's detail equals planning with detail for
    /// `needs_detail`'s servers only, except for what the coverage line declares unverified.
    #[test]
    fn cheap_and_full_observation_agree_except_what_coverage_declares(f in fleet()) {
        let (d, full, r, input) = build(&f.with_detail());
        let mut listing = full.clone();
        for s in listing.servers.values_mut() {
            s.detail = None;
        }
        let n = needs_detail(&d, &listing, &r, &input);
        let mut cheap = full.clone();
        for (name, s) in cheap.servers.iter_mut() {
            if !n.contains(name) {
                s.detail = None;
            }
        }
        let pf = plan(&d, &full, &r, &input);
        let pc = plan(&d, &cheap, &r, &input);
        prop_assert!(lint(&pf).is_empty(), "{:#?}", lint(&pf));
        prop_assert!(lint(&pc).is_empty(), "{:#?}", lint(&pc));
        prop_assert_eq!(pf.servers.keys().collect::<Vec<_>>(), pc.servers.keys().collect::<Vec<_>>());
        let (mut unread, mut adopts) = (0, 0);
        for (name, c) in &pc.servers {
            let full_sp = &pf.servers[name];
            if n.contains(name) {
                prop_assert_eq!(c, full_sp, "{} is in needs_detail: both plans read it", name);
                continue;
            }
            if cheap.servers.contains_key(name) {
                unread += 1;
                adopts += c.actions.iter().filter(|a| a.kind() == ActionKind::Adopt).count();
            }
            unread_server_agrees(name, c, full_sp, &d)?;
        }
        prop_assert_eq!(pc.report.coverage.detail_not_read, unread);
        prop_assert_eq!(pc.report.coverage.adopt_unchecked, adopts);
        prop_assert_eq!(pc.report.coverage.detail_read, n.len());
        prop_assert_eq!(pf.report.coverage.detail_not_read, 0);
        prop_assert_eq!(pf.report.coverage.adopt_unchecked, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// The proptest regression seeds of earlier generators, as the explicit cases they shrank to.
// ---------------------------------------------------------------------------------------------

/// A server as the first generators made it by default: debian desired and live, nothing
/// recorded, boot and settings unmanaged, default policies, detail read, no task.
fn plain() -> Case {
    Case {
        live_os: 0,
        desired_os: 0,
        record: 0,
        desired_boot: 0,
        live_boot: 0,
        reboot: false,
        missing_kernel: false,
        monitoring: None,
        live_monitoring: false,
        mail: None,
        live_mail: None,
        efi: None,
        applied: false,
        drift: (0, 0, 0),
        auto: false,
        never: false,
        window: 0,
        suspend: false,
        hw: Hw {
            groups: 2,
            disks: 2,
            raid_controller: false,
            storage: 0,
        },
        incompatible: false,
        tasks: vec![],
        install_status: 0,
        detail: true,
        anomaly: false,
        tag_only: false,
        dispute: false,
        interventions: 0,
    }
}

fn one_server(c: Case) -> Fleet {
    Fleet {
        cases: vec![c],
        forgotten: 0,
        catalog: 0,
        targets: None,
    }
}

/// Seed `88a226b9…` (cheap vs full observation): a recorded server whose install drifted by a
/// foreign reinstall task, install drift `correct`, a rescue boot to set, and an anomaly that
/// blocks every action. The full plan's set-boot follows a reinstall that is blocked too (by
/// the anomaly): it is explained by that reinstall, which the law first only counted when it
/// was runnable.
#[test]
fn regression_seed_a_set_boot_after_a_blocked_drift_correcting_reinstall_is_explained() {
    let case = Case {
        record: 1,
        desired_boot: 2,
        live_boot: 1,
        drift: (0, 0, 2),
        hw: Hw {
            groups: 1,
            disks: 2,
            raid_controller: true,
            storage: 2,
        },
        tasks: vec![3],
        detail: false,
        anomaly: true,
        ..plain()
    };
    let f = one_server(case).with_detail();
    let (d, full, r, input) = build(&f);
    let mut cheap = full.clone();
    for s in cheap.servers.values_mut() {
        s.detail = None;
    }
    assert!(needs_detail(&d, &cheap, &r, &input).is_empty());
    let pf = plan(&d, &full, &r, &input);
    let pc = plan(&d, &cheap, &r, &input);
    let name = "s000.eu";
    let kinds: Vec<(ActionKind, ActionKind)> = pf.servers[name]
        .actions
        .iter()
        .map(|a| (a.kind(), a.effective_kind()))
        .collect();
    assert!(
        kinds.contains(&(ActionKind::Blocked, ActionKind::Reinstall))
            && kinds.contains(&(ActionKind::Blocked, ActionKind::SetBoot)),
        "{kinds:?}"
    );
    unread_server_agrees(name, &pc.servers[name], &pf.servers[name], &d)
        .expect("the set-boot is explained by the blocked reinstall");
}

/// Seed `d844e6fc…`: a single unrecorded server already running the desired OS. It is
/// adopted, and once the baseline is recorded the next plan is `noop`.
#[test]
fn regression_seed_an_unrecorded_in_sync_server_is_adopted_then_noop() {
    let (d, mut o, mut r, input) = build(&one_server(plain()));
    let p = plan(&d, &o, &r, &input);
    assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
    let kinds: Vec<ActionKind> = p.servers["s000.eu"]
        .actions
        .iter()
        .map(|a| a.kind())
        .collect();
    assert_eq!(kinds, vec![ActionKind::Adopt]);
    apply_in_memory(&p, &d, &mut o, &mut r, now());
    let again = plan(&d, &o, &r, &input);
    assert!(!again.has_changes(), "{:#?}", again.servers);
    assert!(lint(&again).is_empty());
}

/// Seeds `cb73738b…` and `30dd7c82…` (the same case, once for the idempotence law and once
/// for the law with blockers): an in-sync recorded Ubuntu server, install drift policy
/// `correct`, with a `hardReboot` running. The plan waits and plans nothing else; once the
/// task ends the next plan is `noop` — a finished reboot is not install drift.
#[test]
fn regression_seed_a_running_reboot_waits_then_noop_even_when_install_drift_is_corrected() {
    let case = Case {
        live_os: 1,
        desired_os: 1,
        record: 1,
        drift: (0, 0, 2),
        tasks: vec![0],
        ..plain()
    };
    let (d, mut o, mut r, input) = build(&one_server(case));
    let p = plan(&d, &o, &r, &input);
    assert!(lint(&p).is_empty(), "{:#?}", lint(&p));
    let kinds: Vec<ActionKind> = p.servers["s000.eu"]
        .actions
        .iter()
        .map(|a| a.kind())
        .collect();
    assert_eq!(kinds, vec![ActionKind::Wait]);
    apply_in_memory(&p, &d, &mut o, &mut r, now());
    let again = plan(&d, &o, &r, &input);
    assert!(lint(&again).is_empty(), "{:#?}", lint(&again));
    let kinds: Vec<ActionKind> = again.servers["s000.eu"]
        .actions
        .iter()
        .map(|a| a.kind())
        .collect();
    assert_eq!(kinds, vec![ActionKind::Noop], "{:#?}", again.servers);
    assert!(again.servers["s000.eu"].drift.is_empty());
}
