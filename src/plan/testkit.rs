//! A pure in-memory stand-in for the OVHcloud API and the state store, plus fixture builders:
//! what the idempotence law, the snapshot scenarios and the benchmark run the planner on.
//!
//! Owns: [`apply_in_memory`] (does to `Observed` and `Records` what the API and apply would
//! do for each action, with every wipe treated as approved) and small builders for plain
//! model values. Must not touch: I/O, the clock (`now` is passed in), randomness.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{
    AppliedState, BootMode, BootSpec, BootType, Desired, DesiredServer, DiskGroup, Hardware,
    InstallRecord, InstallSpec, Netboot, Observed, ObservedDetail, ObservedServer, Origin, Policy,
    RebootPolicy, Records, Settings, Task, TaskStatus, Template, TemplateInput,
};

use super::{Action, BootTarget, Plan, TAG_PREFIX};

/// The EFI bootloader path a reinstall leaves when the request does not set one.
pub const DEFAULT_EFI_PATH: &str = "\\efi\\debian\\grubx64.efi";

/// Apply every action of `plan` as the API and `ovhform apply` would, in memory. It is an
/// executor in miniature: it matches on the typed actions and uses their payloads only —
/// nothing is re-parsed from JSON or text:
/// - `adopt` writes the baseline record; `forget` drops the record and ovhform's tag;
/// - `reinstall` sets the OS, boots to disk, adds a finished `reinstallServer` task and
///   writes the install record (the wipe is treated as approved);
/// - `set-boot` PUTs its target (an iPXE script is taken from the manifest and must match
///   the plan's digest); `update-settings` PUTs its fields; `reboot` adds a finished
///   `hardReboot`;
/// - `wait` lets the running tasks finish; `blocked` and `noop` change nothing;
/// - every desired server with no `blocked`/`wait` action gets its last-applied boot and
///   settings recorded (what apply stores after converging a server).
pub fn apply_in_memory(
    plan: &Plan,
    desired: &Desired,
    observed: &mut Observed,
    records: &mut Records,
    now: Timestamp,
) {
    apply_in_memory_keyed(plan, desired, observed, records, now, None);
}

/// [`apply_in_memory`] with the fleet secret, so records carry the keyed digests of secrets
/// as apply's would.
pub fn apply_in_memory_keyed(
    plan: &Plan,
    desired: &Desired,
    observed: &mut Observed,
    records: &mut Records,
    now: Timestamp,
    key: Option<&super::digest::FleetKey>,
) {
    let mut next_task = observed
        .servers
        .values()
        .filter_map(|s| s.detail.as_ref())
        .flat_map(|d| d.tasks.iter().map(|t| t.id))
        .max()
        .unwrap_or(0)
        + 1;
    for (name, sp) in &plan.servers {
        let ds = desired.servers.get(name);
        let mut settled = ds.is_some();
        for a in &sp.actions {
            match a {
                Action::Noop(_) => {}
                Action::Blocked(_) => settled = false,
                Action::Wait(_) => {
                    settled = false;
                    if let Some(d) = observed
                        .servers
                        .get_mut(name)
                        .and_then(|s| s.detail.as_mut())
                    {
                        for t in d.tasks.iter_mut().filter(|t| t.status.is_pending()) {
                            t.status = TaskStatus::Done;
                            t.done_date = Some(now);
                        }
                        d.install_status = None;
                    }
                }
                Action::Forget(_) => {
                    records.installs.remove(name);
                    records.applied.remove(name);
                    if let Some(s) = observed.servers.get_mut(name) {
                        s.tags.retain(|k, _| !k.starts_with(TAG_PREFIX));
                    }
                }
                Action::Adopt(adopt) => {
                    records.installs.insert(name.clone(), adopt.record.clone());
                }
                Action::Reinstall(r) => {
                    let (Some(spec), Some(live)) = (
                        ds.and_then(|d| d.install.as_ref()),
                        observed.servers.get_mut(name),
                    ) else {
                        continue;
                    };
                    // What a reviewer approved is what runs: the manifest must still be the
                    // spec the plan was made from.
                    assert_eq!(
                        spec.fingerprint, r.fingerprint,
                        "{name}: manifest changed since the plan"
                    );
                    live.os = r.os.clone();
                    live.boot_script = None;
                    // The install sets the EFI path from its customizations, else the
                    // OS's default (as the simulator does).
                    live.efi_bootloader_path = Some(
                        spec.request
                            .pointer("/customizations/efiBootloaderPath")
                            .and_then(Value::as_str)
                            .unwrap_or(DEFAULT_EFI_PATH)
                            .to_string(),
                    );
                    let disk = live
                        .detail
                        .as_ref()
                        .and_then(|d| d.boots.iter().find(|b| b.boot_type == BootType::Harddisk))
                        .cloned()
                        .unwrap_or_else(disk_boot);
                    live.boot_id = Some(disk.id);
                    live.boot = Some(disk);
                    let id = next_task;
                    next_task += 1;
                    push_task(live, id, "reinstallServer", now);
                    records.installs.insert(
                        name.clone(),
                        InstallRecord {
                            revision: plan.revision.clone(),
                            task_id: Some(id),
                            started: Some(now),
                            finished: Some(now),
                            ..super::digest::record_for(name, &plan.fleet, spec, key)
                        },
                    );
                }
                Action::SetBoot(set) => {
                    let Some(live) = observed.servers.get_mut(name) else {
                        continue;
                    };
                    match &set.target {
                        BootTarget::Ipxe { script_digest } => {
                            let script =
                                ds.and_then(|d| d.boot.as_ref())
                                    .and_then(|b| match &b.mode {
                                        BootMode::Ipxe { script } => Some(script.clone()),
                                        _ => None,
                                    });
                            let Some(script) = script else { continue };
                            assert_eq!(
                                &super::planner::script_digest(&script),
                                script_digest,
                                "{name}: iPXE script changed since the plan"
                            );
                            live.boot_script = Some(script);
                            live.boot_id = None;
                            live.boot = None;
                        }
                        BootTarget::Disk { id }
                        | BootTarget::Rescue { id, .. }
                        | BootTarget::Network { id, .. }
                        | BootTarget::BootId { id } => {
                            live.boot_script = None;
                            live.boot_id = Some(*id);
                            live.boot = live
                                .detail
                                .as_ref()
                                .and_then(|d| d.boots.iter().find(|x| x.id == *id))
                                .cloned();
                        }
                        BootTarget::Unresolved { .. } => {
                            unreachable!(
                                "the lint refuses a runnable set-boot to an unresolved boot"
                            )
                        }
                    }
                }
                Action::Reboot(_) => {
                    let id = next_task;
                    next_task += 1;
                    if let Some(live) = observed.servers.get_mut(name) {
                        push_task(live, id, "hardReboot", now);
                    }
                }
                Action::UpdateSettings(u) => {
                    if let Some(live) = observed.servers.get_mut(name) {
                        put_settings(live, &u.fields);
                    }
                }
            }
        }
        if settled && let Some(ds) = ds {
            records.applied.insert(
                name.clone(),
                super::applied_after(ds, sp.lease.as_ref(), now),
            );
        }
    }
}

fn push_task(live: &mut ObservedServer, id: u64, function: &str, now: Timestamp) {
    let d = live.detail.get_or_insert_with(ObservedDetail::default);
    d.tasks.push(Task {
        id,
        function: function.to_string(),
        status: TaskStatus::Done,
        comment: None,
        start_date: Some(now),
        done_date: Some(now),
    });
}

/// PUT semantics of `/dedicated/server/{sn}`: only the fields sent change; `""` clears a
/// nullable string.
pub fn put_settings(live: &mut ObservedServer, body: &Settings) {
    let s = |v: &String| (!v.is_empty()).then(|| v.clone());
    if let Some(v) = &body.efi_bootloader_path {
        live.efi_bootloader_path = s(v);
    }
    if let Some(v) = body.monitoring {
        live.monitoring = v;
    }
    if let Some(v) = body.no_intervention {
        live.no_intervention = v;
    }
    if let Some(v) = &body.rescue_mail {
        live.rescue_mail = s(v);
    }
    if let Some(v) = &body.rescue_ssh_key {
        live.rescue_ssh_key = s(v);
    }
    if let Some(v) = &body.root_device {
        live.root_device = s(v);
    }
}

// ---------------------------------------------------------------------------------------------
// Builders: plain model values for tests and the benchmark.
// ---------------------------------------------------------------------------------------------

/// `sha256:<64 hex>` over the compact JSON of `request` (stands in for the manifest room's
/// canonical fingerprint; serde_json maps are sorted, so this is canonical too).
pub fn fingerprint(request: &Value) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(request.to_string().as_bytes()))
    )
}

/// An install spec for `os` with a hostname customization and a simple layout on disk
/// group 1.
pub fn install_spec(os: &str, hostname: &str) -> InstallSpec {
    let request = json!({
        "operatingSystem": os,
        "customizations": {"hostname": hostname, "sshKey": "ssh-ed25519 AAAAC3Nza ops@example"},
        "storage": [{"diskGroupId": 1, "partitioning": {"layout": [
            {"fileSystem": "ext4", "mountPoint": "/boot", "raidLevel": 1, "size": 1024},
            {"fileSystem": "ext4", "mountPoint": "/", "raidLevel": 1, "size": 0}
        ]}}]
    });
    InstallSpec {
        os: os.to_string(),
        fingerprint: crate::manifest::fingerprint(&request, &BTreeSet::new()),
        algorithm: crate::manifest::FINGERPRINT_ALGORITHM,
        request,
        generation: 1,
        os_disk_group: Some(1),
        keep_disk_groups: BTreeSet::new(),
        secret_paths: BTreeSet::new(),
        credential_paths: BTreeSet::new(),
    }
}

/// Keep disk group `id` as the manifest room does: listed in `keep_disk_groups` and sent as
/// `{diskGroupId, erase: false}`; the fingerprint follows.
pub fn keep_disk_group(spec: &mut InstallSpec, id: u32) {
    spec.keep_disk_groups.insert(id);
    if let Some(storage) = spec.request["storage"].as_array_mut() {
        storage.push(json!({"diskGroupId": id, "erase": false}));
    }
    refingerprint(spec);
}

/// Recompute `spec.fingerprint` after editing `spec.request` or `spec.secret_paths`: over the
/// publishable request, as the manifest room does (no secret value in it).
pub fn refingerprint(spec: &mut InstallSpec) {
    spec.fingerprint = crate::manifest::fingerprint(&spec.request, &spec.secret_paths);
}

pub fn origin(file: &str, line: u32) -> Origin {
    Origin {
        file: file.into(),
        line,
        column: 3,
    }
}

/// A desired server with an install spec, disk boot (reboot never) and default policy.
/// Field origins point at plausible lines of `servers/<name>.yaml`.
pub fn desired_server(name: &str, os: &str) -> DesiredServer {
    let file = format!("servers/{name}.yaml");
    let fo: BTreeMap<String, Origin> = [
        ("spec.install", 6),
        ("spec.install.os", 7),
        ("spec.install.customizations", 8),
        ("spec.install.storage", 11),
        ("spec.install.storage.diskGroupId", 12),
        ("spec.install.storage.partitioning.layout", 14),
        ("spec.install.storage.keepDiskGroups", 17),
        ("spec.install.generation", 18),
        ("spec.boot", 19),
        ("spec.policy", 24),
        ("spec.policy.reinstall", 25),
        ("spec.policy.maintenanceWindow", 26),
        ("spec.policy.suspend", 27),
    ]
    .into_iter()
    .map(|(k, l)| (k.to_string(), origin(&file, l)))
    .collect();
    DesiredServer {
        name: name.to_string(),
        labels: BTreeMap::new(),
        groups: Vec::new(),
        origin: origin(&file, 1),
        field_origins: fo,
        install: Some(install_spec(os, &name.replace('.', "-"))),
        boot: Some(BootSpec {
            mode: crate::model::BootMode::Disk,
            reboot: RebootPolicy::Never,
            lease: None,
        }),
        settings: Settings::default(),
        policy: Policy::default(),
        selected_by_tags: None,
    }
}

pub fn disk_boot() -> Netboot {
    Netboot {
        id: 1,
        boot_type: BootType::Harddisk,
        kernel: "hd".into(),
        description: "Boot to disk".into(),
    }
}

/// The boots every simulated server offers: disk (1), rescue, power, iPXE shell.
pub fn boots() -> Vec<Netboot> {
    vec![
        disk_boot(),
        Netboot {
            id: 22,
            boot_type: BootType::Rescue,
            kernel: "rescue-customer".into(),
            description: "Customer rescue system (Debian-12-based)".into(),
        },
        Netboot {
            id: 33,
            boot_type: BootType::Power,
            kernel: "poweroff".into(),
            description: "Power-off server".into(),
        },
        Netboot {
            id: 44,
            boot_type: BootType::Network,
            kernel: "ipxe-shell".into(),
            description: "iPXE shell".into(),
        },
    ]
}

/// Two disk groups: 2 × 480 GB SSD (1) and 2 × 1.92 TB NVMe (2).
pub fn hardware() -> Hardware {
    Hardware {
        boot_mode: "uefi".into(),
        disk_groups: vec![
            DiskGroup {
                id: 1,
                description: "2 X Disk SSD 480 GB, JBOD".into(),
                disk_type: "SSD".into(),
                number_of_disks: 2,
                disk_size_bytes: 480_000_000_000,
                raid_controller: None,
            },
            DiskGroup {
                id: 2,
                description: "2 X Disk NVME 1920 GB, JBOD".into(),
                disk_type: "NVME".into(),
                number_of_disks: 2,
                disk_size_bytes: 1_920_000_000_000,
                raid_controller: None,
            },
        ],
    }
}

/// The detail pass for a server: boots, no tasks, hardware, compatible templates, no planned
/// intervention.
pub fn detail() -> ObservedDetail {
    ObservedDetail {
        boots: boots(),
        tasks: Vec::new(),
        install_status: None,
        install_status_unknown: false,
        hardware: Some(hardware()),
        compatible_templates: vec![
            "debian12_64".into(),
            "ubuntu2404-server_64".into(),
            "win2022core-std_64".into(),
        ],
        interventions: crate::model::Interventions::Read { list: Vec::new() },
    }
}

/// A live server running `os`, booting from disk, with detail read.
pub fn observed_server(name: &str, os: &str) -> ObservedServer {
    ObservedServer {
        name: name.to_string(),
        os: os.to_string(),
        state: "ok".into(),
        power_state: "poweron".into(),
        datacenter: "gra2".into(),
        boot_id: Some(1),
        boot: Some(disk_boot()),
        boot_script: None,
        efi_bootloader_path: None,
        monitoring: false,
        no_intervention: false,
        rescue_mail: None,
        rescue_ssh_key: None,
        root_device: None,
        iam_urn: Some(format!("urn:v1:eu:resource:dedicatedServer:{name}")),
        tags: BTreeMap::new(),
        detail: Some(detail()),
        anomalies: Vec::new(),
    }
}

/// A Linux template accepting the customizations the fixtures use.
pub fn template(name: &str) -> Template {
    let input = |n: &str, t: &str| TemplateInput {
        name: n.into(),
        input_type: t.into(),
        mandatory: false,
        default: Some(String::new()),
        enum_values: vec![],
    };
    Template {
        name: name.into(),
        family: "linux".into(),
        filesystems: vec![
            "btrfs".into(),
            "ext4".into(),
            "swap".into(),
            "xfs".into(),
            "zfs".into(),
        ],
        inputs: vec![
            input("configDriveUserData", "text"),
            input("hostname", "hostname"),
            input("httpHeaders", "keyValue"),
            input("imageURL", "url"),
            input("postInstallationScript", "text"),
            input("sshKey", "sshPubKey"),
        ],
        lvm_ready: Some(true),
        no_partitioning: false,
        soft_raid_only_mirroring: false,
        end_of_install: None,
    }
}

pub fn catalog() -> BTreeMap<String, Template> {
    ["debian12_64", "ubuntu2404-server_64"]
        .into_iter()
        .map(|n| (n.to_string(), template(n)))
        .collect()
}

/// The record of a finished install of `spec` (task 1000, a day before `now`).
pub fn record_for(name: &str, spec: &InstallSpec, now: Timestamp) -> InstallRecord {
    let day_before = now
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap_or(now);
    InstallRecord {
        revision: Some("0123abc".into()),
        task_id: Some(1000),
        started: Some(day_before),
        finished: Some(day_before),
        ..super::digest::record_for(name, crate::model::DEFAULT_FLEET, spec, None)
    }
}

/// `n` servers, all in sync: desired, observed (with or without detail) and records agree.
/// Names are `ns{i:07}.ip-10-0-0.eu`.
pub fn fleet(n: usize, now: Timestamp, with_detail: bool) -> (Desired, Observed, Records) {
    let mut desired = Desired::default();
    let mut observed = Observed {
        templates: catalog(),
        ..Observed::default()
    };
    let mut records = Records::default();
    for i in 0..n {
        let name = format!("ns{i:07}.ip-10-0-0.eu");
        let ds = desired_server(&name, "debian12_64");
        let mut live = observed_server(&name, "debian12_64");
        if !with_detail {
            live.detail = None;
        }
        let spec = ds.install.as_ref().expect("fixture has an install spec");
        records
            .installs
            .insert(name.clone(), record_for(&name, spec, now));
        records.applied.insert(
            name.clone(),
            AppliedState {
                lease: None,
                boot: ds.boot.as_ref().map(|b| b.mode.clone()),
                settings: ds.settings.clone(),
            },
        );
        desired.servers.insert(name.clone(), ds);
        observed.servers.insert(name, live);
    }
    (desired, observed, records)
}
