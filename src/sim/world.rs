//! The simulator's in-memory world: servers, their boots, hardware, disk-group contents,
//! tasks and installs, IAM tags; plus the lazy task engine that moves tasks along the
//! simulated clock.
//!
//! Owns: state and its evolution. Must not touch: HTTP (routes render this state), request
//! authentication. Every status is a function of simulated time, computed on access
//! (`World::tick`), so nothing runs in the background and tests are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::Template;
use super::clock::SimClock;
use super::faults::{FairUse, FaultCounts, Faults};

/// One netboot offered by a server (`dedicated.server.Netboot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Boot {
    pub id: u64,
    pub boot_type: String,
    pub kernel: String,
    pub description: String,
}

impl Boot {
    /// `dedicated.server.Netboot`.
    pub fn to_json(&self) -> Value {
        json!({"bootId": self.id, "bootType": self.boot_type, "description": self.description, "kernel": self.kernel})
    }
}

/// A disk group and what it currently holds. `content` is the simulator's marker of the data
/// on the group: `None` once wiped, the OS name after an install put it there, or whatever a
/// fleet file / test wrote — so a test can prove a kept group survived a reinstall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskGroup {
    pub id: u32,
    pub disk_type: String,
    pub number_of_disks: u32,
    pub disk_size_gb: u64,
    pub raid_controller: Option<String>,
    pub content: Option<String>,
}

impl DiskGroup {
    pub fn description(&self) -> String {
        let mode = if self.raid_controller.is_some() {
            "RAID"
        } else {
            "JBOD"
        };
        format!(
            "{} X Disk {} {} GB, {}",
            self.number_of_disks, self.disk_type, self.disk_size_gb, mode
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    pub boot_mode: String,
    pub description: String,
    pub processor_name: String,
    pub cores_per_processor: u32,
    pub threads_per_processor: u32,
    pub number_of_processors: u32,
    pub memory_mb: u64,
    pub motherboard: String,
    pub form_factor: String,
}

/// Everything the simulator knows about one dedicated server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    pub name: String,
    pub server_id: u64,
    pub ip: String,
    pub reverse: Option<String>,
    pub datacenter: String,
    pub region: String,
    pub availability_zone: String,
    pub rack: String,
    pub commercial_range: Option<String>,
    pub os: String,
    pub state: String,
    pub power_state: String,
    pub support_level: String,
    pub professional_use: bool,
    pub new_upgrade_system: bool,
    pub link_speed: Option<u64>,
    pub monitoring: bool,
    pub no_intervention: bool,
    pub boot_id: Option<u64>,
    pub boot_script: Option<String>,
    pub efi_bootloader_path: Option<String>,
    pub root_device: Option<String>,
    pub rescue_mail: Option<String>,
    pub rescue_ssh_key: Option<String>,
    pub iam_id: String,
    pub display_name: String,
    pub tags: BTreeMap<String, String>,
    pub boots: Vec<Boot>,
    pub hardware: Hardware,
    pub disk_groups: Vec<DiskGroup>,
    /// `install/compatibleTemplates` `.ovh`.
    pub compatible_templates: Vec<String>,
    pub tasks: BTreeMap<u64, Task>,
    /// The install currently shown by `install/status`, if any.
    pub install: Option<Install>,
    /// A failure to inject into the next install started on this server (tests/hooks).
    pub fail_next_install: Option<InstallFailure>,
    /// The consumer key's access rules do not cover this server (tests/hooks): every request
    /// addressing it, and any batch GET naming it, answers 403 `NOT_GRANTED_CALL` [inferred:
    /// how per-server access rules answer]. The account's listings still show it.
    #[serde(default)]
    pub access_denied: bool,
    /// Keys replacing those of the `specifications/hardware` answer (tests/hooks), to serve
    /// what the schema allows but a well-behaved API rarely says: an unknown size unit, a disk
    /// group without id.
    #[serde(default)]
    pub raw_hardware: BTreeMap<String, Value>,
    /// OVH's planned interventions on this server (tests/hooks add them and change their
    /// status: OVH's own scheduling is not simulated, a status moves only when told).
    #[serde(default)]
    pub planned_interventions: BTreeMap<u64, PlannedIntervention>,
    /// The credentials' policy lacks `plannedIntervention/get` for this server (tests/hooks):
    /// its planned-intervention routes answer 403 `NOT_GRANTED_CALL`, everything else as usual.
    #[serde(default)]
    pub interventions_denied: bool,
}

/// `dedicated.server.PlannedIntervention`, as OVH would have scheduled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedIntervention {
    pub id: u64,
    /// `dedicated.PlannedInterventionTypeEnum`; a hook may set any text (a type the schema
    /// does not know yet, hostile bytes).
    pub kind: String,
    /// `dedicated.PlannedInterventionStatusEnum`: `todo`, `doing`, `done`.
    pub status: String,
    pub wanted_start: Timestamp,
    pub expected_end: Timestamp,
}

/// The one value of `dedicated.PlannedInterventionTypeEnum`.
pub const INTERVENTION_TYPE: &str = "HARDWARE_UPGRADE_ON_ACTIVE_SERVER";
/// `dedicated.PlannedInterventionStatusEnum`.
pub const INTERVENTION_STATUSES: [&str; 3] = ["doing", "done", "todo"];

impl PlannedIntervention {
    /// `dedicated.server.PlannedIntervention` (5 keys, all read-only).
    pub fn to_json(&self) -> Value {
        json!({
            "expectedEndDate": fmt_ts(self.expected_end),
            "id": self.id,
            "status": self.status,
            "type": self.kind,
            "wantedStartDate": fmt_ts(self.wanted_start),
        })
    }
}

impl Server {
    pub fn urn(&self) -> String {
        format!("urn:v1:eu:resource:dedicatedServer:{}", self.name)
    }

    pub fn boot(&self, id: u64) -> Option<&Boot> {
        self.boots.iter().find(|b| b.id == id)
    }

    fn tags_json(&self) -> Value {
        if self.tags.is_empty() {
            Value::Null
        } else {
            json!(self.tags)
        }
    }

    /// `dedicated.server.DedicatedWithIAM`: every field, `null` when empty.
    pub fn to_json(&self) -> Value {
        json!({
            "availabilityZone": self.availability_zone,
            "bootId": self.boot_id,
            "bootScript": self.boot_script,
            "commercialRange": self.commercial_range,
            "datacenter": self.datacenter,
            "efiBootloaderPath": self.efi_bootloader_path,
            "iam": {
                "displayName": self.display_name,
                "id": self.iam_id,
                "state": "OK",
                "tags": self.tags_json(),
                "urn": self.urn(),
            },
            "ip": self.ip,
            "linkSpeed": self.link_speed,
            "monitoring": self.monitoring,
            "name": self.name,
            "newUpgradeSystem": self.new_upgrade_system,
            "noIntervention": self.no_intervention,
            "os": self.os,
            "powerState": self.power_state,
            "professionalUse": self.professional_use,
            "rack": self.rack,
            "region": self.region,
            "rescueMail": self.rescue_mail,
            "rescueSshKey": self.rescue_ssh_key,
            "reverse": self.reverse,
            "rootDevice": self.root_device,
            "serverId": self.server_id,
            "state": self.state,
            "supportLevel": self.support_level,
        })
    }

    /// `iam.resource.Resource` (API v2).
    pub fn iam_resource_json(&self) -> Value {
        json!({
            "displayName": self.display_name,
            "id": self.iam_id,
            "name": self.name,
            "owner": "xx1111-ovh",
            "tags": self.tags_json(),
            "type": "dedicatedServer",
            "urn": self.urn(),
        })
    }

    /// `dedicated.server.HardwareSpecifications`.
    pub fn hardware_json(&self) -> Value {
        let h = &self.hardware;
        let groups: Vec<Value> = self
            .disk_groups
            .iter()
            .map(|g| {
                json!({
                    "defaultHardwareRaidSize": g.raid_controller.as_ref().map(|_| json!({"unit": "GB", "value": g.disk_size_gb})),
                    "defaultHardwareRaidType": g.raid_controller.as_ref().map(|_| "raid1"),
                    "description": g.description(),
                    "diskGroupId": g.id,
                    "diskSize": {"unit": "GB", "value": g.disk_size_gb},
                    "diskType": g.disk_type,
                    "numberOfDisks": g.number_of_disks,
                    "raidController": g.raid_controller,
                })
            })
            .collect();
        let mut out = json!({
            "bootMode": h.boot_mode,
            "coresPerProcessor": h.cores_per_processor,
            "defaultHardwareRaidSize": null,
            "defaultHardwareRaidType": null,
            "description": h.description,
            "diskGroups": groups,
            "expansionCards": null,
            "formFactor": h.form_factor,
            "memorySize": {"unit": "MB", "value": h.memory_mb},
            "motherboard": h.motherboard,
            "numberOfProcessors": h.number_of_processors,
            "processorArchitecture": "x86_64",
            "processorName": h.processor_name,
            "threadsPerProcessor": h.threads_per_processor,
            "usbKeys": null,
        });
        if let Value::Object(m) = &mut out {
            for (k, v) in &self.raw_hardware {
                m.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// `dedicated.server.HardwareRaidProfile`: one controller per model, with its disk groups.
    pub fn hardware_raid_profile_json(&self) -> Value {
        let mut controllers: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut slot = 0;
        for g in &self.disk_groups {
            let Some(model) = g.raid_controller.as_deref() else {
                continue;
            };
            let names: Vec<String> = (0..g.number_of_disks)
                .map(|d| format!("c0:d{}", slot + d))
                .collect();
            slot += g.number_of_disks;
            let kind = match g.disk_type.to_ascii_uppercase().as_str() {
                "NVME" => "NVMe",
                "SAS" => "SAS",
                "SATA" => "SATA",
                "SSD" => "SSD",
                _ => "Unknown",
            };
            controllers.entry(model).or_default().push(json!({
                "capacity": {"unit": "GB", "value": g.disk_size_gb},
                "diskGroupId": g.id,
                "names": names,
                "speed": {"unit": "GB/s", "value": "12g"},
                "type": kind,
            }));
        }
        let list: Vec<Value> = controllers
            .into_iter()
            .map(|(model, disks)| json!({"disks": disks, "model": model, "type": "mega"}))
            .collect();
        json!({"controllers": list})
    }

    pub fn pending_task(&self) -> Option<&Task> {
        self.tasks.values().find(|t| t.status.is_pending())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    Init,
    Todo,
    Doing,
    Done,
    Cancelled,
    CustomerError,
    OvhError,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Init => "init",
            TaskStatus::Todo => "todo",
            TaskStatus::Doing => "doing",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::CustomerError => "customerError",
            TaskStatus::OvhError => "ovhError",
        }
    }

    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TaskStatus::Init | TaskStatus::Todo | TaskStatus::Doing
        )
    }
}

/// What a finished task does to its server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TaskEffect {
    Reboot,
    Install(InstallPlan),
    /// A task made by a test hook ([`World::create_bare_task`]): it only runs its lifecycle.
    Nothing,
}

/// The decisions a validated reinstall carries to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallPlan {
    pub os: String,
    pub os_disk_group: u32,
    pub keep_disk_groups: BTreeSet<u32>,
    pub efi_bootloader_path: Option<String>,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: u64,
    pub function: String,
    pub comment: String,
    pub status: TaskStatus,
    pub start: Timestamp,
    pub last_update: Timestamp,
    pub done: Option<Timestamp>,
    /// Planned transitions, in simulated time.
    pub todo_at: Timestamp,
    pub doing_at: Timestamp,
    pub end_at: Timestamp,
    /// The status reached at `end_at`.
    pub final_status: TaskStatus,
    pub effect: TaskEffect,
    /// Remaining GETs of this task answered with a transient 404 (fault injection), during
    /// its first [`FRESH_TASK_404_FOR`] only ([`Task::answers_404`]). While it does, expanded
    /// task listings leave the task out but count it in
    /// `X-Pagination-Elements` [inferred: the cached listing is built from the objects, and an
    /// object that cannot be read yet cannot be in it].
    pub transient_404: u32,
    /// Keys replacing those of the task's JSON (tests/hooks): an unknown status, an unreadable
    /// date — what the schema does not allow but a client must survive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, Value>,
}

/// How long after its creation a task may answer the `freshTask404` fault's 404s: the real API
/// does so right after creation only (REFERENCE §0.8); a first GET that comes later finds it,
/// however many 404s were left (the chaos soak's daemon, killed before its first GET and back
/// minutes later, was told that a task long listed could not be read).
pub const FRESH_TASK_404_FOR: Duration = Duration::from_secs(60);

impl Task {
    /// Whether a GET of this task at `now` answers the transient 404 of a fresh task.
    pub fn answers_404(&self, now: Timestamp) -> bool {
        self.transient_404 > 0 && now < add(self.start, FRESH_TASK_404_FOR)
    }

    /// `dedicated.server.Task` (12 keys).
    pub fn to_json(&self) -> Value {
        self.with_raw(json!({
            "comment": self.comment,
            "doneDate": self.done.map(fmt_ts),
            "function": self.function,
            "lastUpdate": fmt_ts(self.last_update),
            "needSchedule": false,
            "note": null,
            "plannedInterventionId": null,
            "startDate": fmt_ts(self.start),
            "status": self.status.as_str(),
            "tags": null,
            "taskId": self.id,
            "ticketReference": null,
        }))
    }

    fn with_raw(&self, mut v: Value) -> Value {
        if let Value::Object(m) = &mut v {
            for (k, raw) in &self.raw {
                if m.contains_key(k) {
                    m.insert(k.clone(), raw.clone());
                }
            }
        }
        v
    }

    /// `dedicated.server.task.Response` (6 keys), what POST /reinstall returns.
    pub fn to_short_json(&self) -> Value {
        self.with_raw(json!({
            "comment": self.comment,
            "doneDate": self.done.map(fmt_ts),
            "function": self.function,
            "startDate": fmt_ts(self.start),
            "status": self.status.as_str(),
            "taskId": self.id,
        }))
    }
}

/// A step failure to inject into an install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallFailure {
    /// 0-based index into [`INSTALL_STEPS`].
    pub step: usize,
    /// `customerError` or `ovhError`.
    pub status: TaskStatus,
    pub error: String,
}

/// `install/status` of one install, tied to its task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    pub task_id: u64,
    pub failure: Option<InstallFailure>,
    /// Set once the "Cleaning Partitioning" step has wiped the disk groups.
    pub wiped: bool,
}

/// Step comments of a Linux reinstall, 21 steps as observed on the real API (REFERENCE §5.3
/// names steps 1, 5, 6, 10, 13, 16, 19, 21; the others are plausible fill-ins).
pub const INSTALL_STEPS: [&str; 21] = [
    "Checking BIOS version",
    "Checking hardware",
    "Setting up the deployment environment",
    "Rebooting on deployment environment",
    "Preparing disks for new Partitioning",
    "Cleaning Partitioning",
    "Checking disks",
    "Configuring hardware RAID",
    "Creating software RAID",
    "Applying Partitioning",
    "Formatting partitions",
    "Mounting partitions",
    "Downloading OS image",
    "Deploying OS image",
    "Configuring bootloader",
    "Checking Partitioning",
    "Applying customizations",
    "Rebooting on installed OS",
    "Waiting for services to be up",
    "Running post-installation script",
    "Sending end of installation mail",
];
/// Index of "Cleaning Partitioning": when it completes, the disk groups not kept are wiped.
const WIPE_STEP: usize = 5;

/// Durations of task phases in simulated time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub init: Duration,
    pub todo: Duration,
    pub install: Duration,
    pub reboot: Duration,
    /// How long a failed install stays visible in `install/status` before it answers 404.
    pub failed_install_visible: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            init: Duration::from_secs(5),
            todo: Duration::from_secs(10),
            // A real ADVANCE-1 reinstall took ~11 min end to end (REFERENCE §5.2).
            install: Duration::from_secs(15 * 60),
            reboot: Duration::from_secs(90),
            failed_install_visible: Duration::from_secs(30 * 60),
        }
    }
}

pub fn fmt_ts(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(t)
}

/// The whole simulated world.
#[derive(Debug)]
pub struct World {
    pub servers: BTreeMap<String, Server>,
    pub templates: Vec<Template>,
    pub clock: SimClock,
    pub timings: Timings,
    pub faults: Faults,
    pub rng: StdRng,
    /// Arrival times for the fair-use limit ([`Faults::fair_use_per_minute`]).
    pub fair_use: FairUse,
    /// Request counts per route pattern (e.g. `GET /dedicated/server/{serviceName}`).
    pub calls: BTreeMap<String, u64>,
    /// Requests per `Host` header and route pattern: tells apart clients that reach the
    /// simulator under different names (`127.0.0.1:…`, `localhost:…`).
    pub calls_by_host: BTreeMap<String, BTreeMap<String, u64>>,
    /// Arrival time (simulated clock) and route of every request, when recording is on
    /// ([`super::SimHandle::record_arrivals`]): for measuring peaks over sliding windows.
    pub arrivals: Option<Vec<(Timestamp, String)>>,
    /// The servers as they were just before the last change, kept while the stale-listing
    /// mode is on ([`super::Modes::stale_listing`]): what a cached expanded listing serves.
    pub listing_snapshot: Option<BTreeMap<String, Server>>,
    /// The faults injected so far, per kind.
    pub injected: FaultCounts,
    /// Every installation started (reinstall POST or legacy install start), in order: kept
    /// when the task itself is purged from the history, so a test can count reinstalls per
    /// server whatever the purge fault removed.
    pub installs: Vec<InstallStarted>,
    next_task_id: u64,
}

/// One installation the simulator started ([`World::installs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallStarted {
    pub server: String,
    pub task: u64,
    pub at: Timestamp,
    /// The step it is set to fail at, if it is.
    pub fails_at_step: Option<usize>,
}

impl World {
    pub fn new(
        servers: Vec<Server>,
        templates: Vec<Template>,
        clock: SimClock,
        faults: Faults,
        rng: StdRng,
    ) -> Self {
        World {
            servers: servers.into_iter().map(|s| (s.name.clone(), s)).collect(),
            templates,
            clock,
            timings: Timings::default(),
            faults,
            rng,
            fair_use: FairUse::default(),
            calls: BTreeMap::new(),
            calls_by_host: BTreeMap::new(),
            listing_snapshot: None,
            arrivals: None,
            injected: FaultCounts::default(),
            installs: Vec::new(),
            next_task_id: 587_000_001,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// One finished `reinstallServer` task, `age` old, on every server: its delivery.
    pub fn add_delivery_history(&mut self, age: jiff::SignedDuration) {
        let at = self.now().checked_sub(age).unwrap_or(self.now());
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for name in names {
            let id = self.next_task_id;
            self.next_task_id += 1;
            if let Some(srv) = self.servers.get_mut(&name) {
                srv.tasks.insert(
                    id,
                    Task {
                        id,
                        function: "reinstallServer".into(),
                        comment: "Start bare metal OS installation".into(),
                        status: TaskStatus::Done,
                        start: at,
                        last_update: at,
                        done: Some(at),
                        todo_at: at,
                        doing_at: at,
                        end_at: at,
                        final_status: TaskStatus::Done,
                        effect: TaskEffect::Nothing,
                        transient_404: 0,
                        raw: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Create a task on `server`; the caller has checked that the server exists.
    pub fn create_task(
        &mut self,
        server: &str,
        function: &str,
        comment: &str,
        effect: TaskEffect,
    ) -> Option<Task> {
        let now = self.now();
        let t = &self.timings;
        let todo_at = add(now, t.init);
        let doing_at = add(todo_at, t.todo);
        let run = match effect {
            TaskEffect::Reboot | TaskEffect::Nothing => t.reboot,
            TaskEffect::Install(_) => t.install,
        };
        let id = self.next_task_id;
        self.next_task_id += 1;
        let transient_404 = self.faults.fresh_task_404;
        // Random install failures are drawn here (seeded) so a run replays exactly.
        let random_failure = (matches!(effect, TaskEffect::Install(_))
            && self.rng.random::<f64>() < self.faults.install_failure_rate)
            .then(|| InstallFailure {
                step: self.rng.random_range(0..INSTALL_STEPS.len()),
                status: TaskStatus::OvhError,
                error: "Unexpected error during installation, our teams have been notified".into(),
            });
        let srv = self.servers.get_mut(server)?;
        // An installation: the step it fails at, if it does.
        let mut started: Option<Option<usize>> = None;
        let mut end_at = add(doing_at, run);
        let mut final_status = TaskStatus::Done;
        if let TaskEffect::Install(_) = effect {
            // The step may come from a hook body: clamped to the last step, and only a failure
            // status makes sense as the end of a failed install.
            let failure = srv
                .fail_next_install
                .take()
                .or(random_failure)
                .map(|mut f| {
                    f.step = f.step.min(INSTALL_STEPS.len() - 1);
                    if f.status != TaskStatus::CustomerError {
                        f.status = TaskStatus::OvhError;
                    }
                    f
                });
            if let Some(f) = &failure {
                end_at = add(doing_at, step_len(run).saturating_mul(f.step as u32 + 1));
                final_status = f.status;
            }
            started = Some(failure.as_ref().map(|f| f.step));
            srv.install = Some(Install {
                task_id: id,
                failure,
                wiped: false,
            });
        }
        let task = Task {
            id,
            function: function.to_string(),
            comment: comment.to_string(),
            status: TaskStatus::Init,
            start: now,
            last_update: now,
            done: None,
            todo_at,
            doing_at,
            end_at,
            final_status,
            effect,
            transient_404,
            raw: BTreeMap::new(),
        };
        srv.tasks.insert(id, task.clone());
        if let Some(fails_at_step) = started {
            self.injected.install_failures += u64::from(fails_at_step.is_some());
            self.installs.push(InstallStarted {
                server: server.to_string(),
                task: id,
                at: now,
                fails_at_step,
            });
        }
        Some(task)
    }

    /// A task of `function` on `server`, created now (status `init`, then its lifecycle on the
    /// clock, with the reboot's duration) that changes nothing when it ends and shows no
    /// `install/status`: a task someone else started, e.g. a `reinstallServer` that has not
    /// begun installing, or a `hardReboot`. The `freshTask404` fault applies to it. `None`
    /// when the server does not exist.
    /// Schedule a planned intervention on `server`, as OVH would (`None`: no such server).
    /// Ids are unique across the world.
    pub fn plan_intervention(
        &mut self,
        server: &str,
        kind: &str,
        status: &str,
        wanted_start: Timestamp,
        expected_end: Timestamp,
    ) -> Option<PlannedIntervention> {
        let id = 770_000
            + 1
            + self
                .servers
                .values()
                .flat_map(|s| s.planned_interventions.keys())
                .map(|id| id - 770_000)
                .max()
                .unwrap_or(0);
        let pi = PlannedIntervention {
            id,
            kind: kind.to_string(),
            status: status.to_string(),
            wanted_start,
            expected_end,
        };
        self.servers
            .get_mut(server)?
            .planned_interventions
            .insert(id, pi.clone());
        Some(pi)
    }

    /// Set the status of a planned intervention (`false`: no such server or intervention).
    pub fn set_intervention_status(&mut self, server: &str, id: u64, status: &str) -> bool {
        match self
            .servers
            .get_mut(server)
            .and_then(|s| s.planned_interventions.get_mut(&id))
        {
            Some(pi) => {
                pi.status = status.to_string();
                true
            }
            None => false,
        }
    }

    pub fn create_bare_task(&mut self, server: &str, function: &str) -> Option<Task> {
        self.servers.get(server)?;
        let comment = match function {
            "hardReboot" => "Hard reboot",
            "reinstallServer" => "Start bare metal OS installation",
            _ => "",
        };
        self.create_task(server, function, comment, TaskEffect::Nothing)
    }

    /// Move every task to the status simulated time says it has, applying effects once.
    pub fn tick(&mut self) {
        let now = self.now();
        let install_len = self.timings.install;
        let failed_visible = self.timings.failed_install_visible;
        let purge_after = self.faults.purge_tasks_after;
        let mut purged = 0;
        for srv in self.servers.values_mut() {
            let mut finished: Vec<Task> = Vec::new();
            for task in srv.tasks.values_mut() {
                if !task.status.is_pending() {
                    continue;
                }
                let status = if now >= task.end_at {
                    task.final_status
                } else if now >= task.doing_at {
                    TaskStatus::Doing
                } else if now >= task.todo_at {
                    TaskStatus::Todo
                } else {
                    TaskStatus::Init
                };
                if status != task.status {
                    task.status = status;
                    task.last_update = match status {
                        TaskStatus::Todo => task.todo_at,
                        TaskStatus::Doing => task.doing_at,
                        _ => task.end_at,
                    };
                    if !status.is_pending() {
                        task.done = Some(task.end_at);
                        finished.push(task.clone());
                    }
                }
            }
            // Wipe as soon as the cleaning step is over, even if the install fails later.
            if let Some(inst) = &mut srv.install
                && !inst.wiped
                && let Some(task) = srv.tasks.get(&inst.task_id)
                && let TaskEffect::Install(plan) = &task.effect
                && task.status != TaskStatus::Cancelled
                && now
                    >= add(
                        task.doing_at,
                        step_len(install_len).saturating_mul(WIPE_STEP as u32 + 1),
                    )
                && inst.failure.as_ref().is_none_or(|f| f.step > WIPE_STEP)
            {
                inst.wiped = true;
                for g in &mut srv.disk_groups {
                    if !plan.keep_disk_groups.contains(&g.id) {
                        g.content = None;
                    }
                }
            }
            for task in finished {
                apply_effect(srv, &task);
            }
            // install/status answers 404 again once the install is over (a failed one stays
            // visible a while so a poller can read the error).
            if let Some(inst) = &srv.install {
                let gone = match srv.tasks.get(&inst.task_id) {
                    None => true,
                    Some(t) => match t.status {
                        TaskStatus::Done | TaskStatus::Cancelled => true,
                        TaskStatus::CustomerError | TaskStatus::OvhError => {
                            now >= add(t.end_at, failed_visible)
                        }
                        _ => false,
                    },
                };
                if gone {
                    srv.install = None;
                }
            }
            if let Some(after) = purge_after {
                let before = srv.tasks.len();
                srv.tasks
                    .retain(|_, t| t.done.is_none_or(|d| now < add(d, after)));
                purged += (before - srv.tasks.len()) as u64;
            }
        }
        self.injected.purged_tasks += purged;
    }

    /// `dedicated.server.InstallationProgressStatus` of `server`, or `None` (→ 404).
    pub fn install_status(&self, server: &str) -> Option<Value> {
        let srv = self.servers.get(server)?;
        let inst = srv.install.as_ref()?;
        let task = srv.tasks.get(&inst.task_id)?;
        let now = self.now();
        let step = step_len(self.timings.install);
        let elapsed = now.duration_since(task.start).as_secs().max(0);
        let progress: Vec<Value> = INSTALL_STEPS
            .iter()
            .enumerate()
            .map(|(i, comment)| {
                let begin = add(task.doing_at, step.saturating_mul(i as u32));
                let end = add(begin, step);
                let (status, error) = match &inst.failure {
                    Some(f) if f.step == i && now >= end => ("error", Some(f.error.clone())),
                    Some(f)
                        if i > f.step
                            && now
                                >= add(task.doing_at, step.saturating_mul(f.step as u32 + 1)) =>
                    {
                        ("todo", None)
                    }
                    _ if now >= end => ("done", None),
                    _ if now >= begin => ("doing", None),
                    _ => ("todo", None),
                };
                json!({"comment": comment, "error": error, "status": status})
            })
            .collect();
        Some(json!({"elapsedTime": elapsed, "progress": progress}))
    }

    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.tick();
    }
}

fn step_len(install: Duration) -> Duration {
    install / INSTALL_STEPS.len() as u32
}

fn apply_effect(srv: &mut Server, task: &Task) {
    if task.status != TaskStatus::Done {
        return;
    }
    match &task.effect {
        TaskEffect::Reboot => {
            let powered_off = srv
                .boot_id
                .and_then(|id| srv.boot(id))
                .is_some_and(|b| b.boot_type == "power");
            srv.power_state = if powered_off { "poweroff" } else { "poweron" }.to_string();
        }
        TaskEffect::Nothing => {}
        TaskEffect::Install(plan) => {
            srv.os = plan.os.clone();
            // Real installs boot to disk afterwards (REFERENCE §8).
            srv.boot_id = Some(1);
            srv.boot_script = None;
            srv.power_state = "poweron".to_string();
            if srv.hardware.boot_mode != "legacy" {
                srv.efi_bootloader_path = plan.efi_bootloader_path.clone();
            }
            for g in &mut srv.disk_groups {
                if g.id == plan.os_disk_group {
                    g.content = Some(format!("os:{}:task{}", plan.os, task.id));
                } else if !plan.keep_disk_groups.contains(&g.id) {
                    g.content = None;
                }
            }
        }
    }
}
