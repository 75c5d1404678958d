//! The typed vocabulary of a plan: one [`Action`] variant per kind, each carrying exactly the
//! payload its executor needs, and [`Blocker`]s saying why an action cannot run now.
//!
//! Owns: the shapes, their JSON form (`type`/`kind` tags, kebab-case) and their one-line
//! wording. Must not touch: deciding anything (that is `planner`). An executor matches on
//! these enums; it never re-parses JSON or text to decide, and a field that a kind needs
//! cannot be missing because the kind's payload has it.

use serde::{Deserialize, Serialize};

use crate::model::{InstallRecord, InterventionStatus, Origin, PlannedIntervention, Settings};

use super::finding::FindingCode;

/// One step of the plan for one server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// No record and the server already runs the desired OS: record a baseline, touch nothing.
    Adopt(Adopt),
    /// **Destructive**: reinstall the server; the listed disk groups are erased.
    Reinstall(Reinstall),
    /// PUT the boot (`bootId`, or `bootScript` for iPXE).
    SetBoot(SetBoot),
    /// `POST /reboot` after a boot change, when the manifest asks for it.
    Reboot(Reboot),
    /// One PUT of plain attributes.
    UpdateSettings(UpdateSettings),
    /// An OVH task or an installation is running: nothing else is planned for the server.
    Wait(Wait),
    /// The manifest is gone: drop the record, never touch the server.
    Forget(Forget),
    Noop(Noop),
    /// Needed, but not allowed now; `blockers` say why.
    Blocked(Blocked),
}

/// The kind of an action, without payload: for counting, ordering and wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Adopt,
    Reinstall,
    SetBoot,
    Reboot,
    UpdateSettings,
    Wait,
    Blocked,
    Forget,
    Noop,
}

impl ActionKind {
    pub const ALL: [ActionKind; 9] = [
        ActionKind::Adopt,
        ActionKind::Reinstall,
        ActionKind::SetBoot,
        ActionKind::Reboot,
        ActionKind::UpdateSettings,
        ActionKind::Wait,
        ActionKind::Blocked,
        ActionKind::Forget,
        ActionKind::Noop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Adopt => "adopt",
            ActionKind::Reinstall => "reinstall",
            ActionKind::SetBoot => "set-boot",
            ActionKind::Reboot => "reboot",
            ActionKind::UpdateSettings => "update-settings",
            ActionKind::Wait => "wait",
            ActionKind::Blocked => "blocked",
            ActionKind::Forget => "forget",
            ActionKind::Noop => "noop",
        }
    }

    /// Execution order within one server: records first, the wipe before anything that
    /// depends on the installed system, settings before the boot they may affect, the
    /// reboot last.
    pub fn rank(self) -> u8 {
        match self {
            ActionKind::Wait => 0,
            ActionKind::Forget => 1,
            ActionKind::Adopt => 2,
            ActionKind::Reinstall => 3,
            ActionKind::UpdateSettings => 4,
            ActionKind::SetBoot => 5,
            ActionKind::Reboot => 6,
            ActionKind::Noop => 7,
            ActionKind::Blocked => 8,
        }
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Adopt(_) => ActionKind::Adopt,
            Action::Reinstall(_) => ActionKind::Reinstall,
            Action::SetBoot(_) => ActionKind::SetBoot,
            Action::Reboot(_) => ActionKind::Reboot,
            Action::UpdateSettings(_) => ActionKind::UpdateSettings,
            Action::Wait(_) => ActionKind::Wait,
            Action::Forget(_) => ActionKind::Forget,
            Action::Noop(_) => ActionKind::Noop,
            Action::Blocked(_) => ActionKind::Blocked,
        }
    }

    /// The kind this action is about: itself, or for `blocked` the action it blocks (or
    /// `blocked` when nothing could be planned at all).
    pub fn effective_kind(&self) -> ActionKind {
        match self {
            Action::Blocked(b) => b
                .action
                .as_deref()
                .map_or(ActionKind::Blocked, Action::kind),
            other => other.kind(),
        }
    }

    /// True only for a runnable `reinstall`: disks are erased when it runs.
    pub fn is_destructive(&self) -> bool {
        matches!(self, Action::Reinstall(_))
    }

    /// One line: why this action exists (for `blocked`, why the blocked action would).
    pub fn reason(&self) -> &str {
        match self {
            Action::Adopt(a) => &a.reason,
            Action::Reinstall(a) => &a.reason,
            Action::SetBoot(a) => &a.reason,
            Action::Reboot(a) => &a.reason,
            Action::UpdateSettings(a) => &a.reason,
            Action::Wait(a) => &a.reason,
            Action::Forget(a) => &a.reason,
            Action::Noop(a) => &a.reason,
            Action::Blocked(b) => match &b.action {
                Some(inner) => inner.reason(),
                None => &b.reason,
            },
        }
    }

    /// Which fields differ, old → new (secrets already redacted).
    pub fn changes(&self) -> &[Change] {
        match self {
            Action::Reinstall(a) => &a.changes,
            Action::SetBoot(a) => &a.changes,
            Action::UpdateSettings(a) => &a.changes,
            Action::Forget(a) => &a.changes,
            Action::Blocked(b) => b.action.as_deref().map_or(&[], Action::changes),
            Action::Adopt(_) | Action::Reboot(_) | Action::Wait(_) | Action::Noop(_) => &[],
        }
    }

    /// The reinstall this action is or blocks.
    pub fn reinstall(&self) -> Option<&Reinstall> {
        match self {
            Action::Reinstall(r) => Some(r),
            Action::Blocked(b) => b.action.as_deref().and_then(Action::reinstall),
            _ => None,
        }
    }

    /// The boot change this action is or blocks.
    pub fn set_boot(&self) -> Option<&SetBoot> {
        match self {
            Action::SetBoot(s) => Some(s),
            Action::Blocked(b) => b.action.as_deref().and_then(Action::set_boot),
            _ => None,
        }
    }

    /// A wipe waiting only for its maintenance window: a reinstall whose every blocker is
    /// "outside the window", with when (and in which zone) the window opens. Still a wipe:
    /// renderers list it under the wipe banner.
    pub fn deferred_wipe(&self) -> Option<(jiff::Timestamp, &str)> {
        let Action::Blocked(b) = self else {
            return None;
        };
        if !matches!(b.action.as_deref(), Some(Action::Reinstall(_))) {
            return None;
        }
        let mut when = None;
        for x in &b.blockers {
            match x {
                Blocker::OutsideWindow {
                    next_open: Some(n),
                    time_zone,
                    ..
                } => when = Some((*n, time_zone.as_str())),
                _ => return None,
            }
        }
        when
    }

    /// What blocks this action (empty unless `blocked`).
    pub fn blockers(&self) -> &[Blocker] {
        match self {
            Action::Blocked(b) => &b.blockers,
            _ => &[],
        }
    }

    pub fn noop(reason: impl Into<String>) -> Action {
        Action::Noop(Noop {
            reason: reason.into(),
        })
    }

    /// This action, blocked by `blockers` (added to the existing ones if already blocked).
    /// A blocked action keeps everything it would have done, so the reviewer sees it.
    pub fn block(self, blockers: Vec<Blocker>) -> Action {
        match self {
            Action::Blocked(mut b) => {
                for x in blockers {
                    if !b.blockers.contains(&x) {
                        b.blockers.push(x);
                    }
                }
                Action::Blocked(b)
            }
            other => Action::Blocked(Blocked {
                reason: String::new(),
                action: Some(Box::new(other)),
                blockers,
            }),
        }
    }
}

/// Marks an action that erases disks. Serialised as `"destructive": true`, and only `true` is
/// accepted back, so a saved plan cannot claim a reinstall is harmless.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Destructive;

impl Serialize for Destructive {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for Destructive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? {
            Ok(Destructive)
        } else {
            Err(serde::de::Error::custom(
                "a reinstall is always destructive (`destructive: true`)",
            ))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Dotted manifest-style path, e.g. `install.fingerprint`, `boot`, `settings.monitoring`.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopt {
    pub reason: String,
    /// The baseline record apply writes (after re-checking the server has no running or
    /// failed task).
    pub record: InstallRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reinstall {
    pub destructive: Destructive,
    pub reason: String,
    pub changes: Vec<Change>,
    pub os: String,
    pub fingerprint: String,
    pub generation: u64,
    /// The request that will be POSTed, secrets redacted. Apply rebuilds the real request
    /// from the manifests and refuses it unless its fingerprint equals `fingerprint`.
    pub request: serde_json::Value,
    /// Every disk group of the server and what the reinstall does to it (from the request
    /// actually sent).
    pub disk_groups: Vec<DiskGroupFate>,
    /// The disk groups the manifest keeps (`keepDiskGroups`); the lint checks the request
    /// sends each as `erase: false`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub keep_disk_groups: std::collections::BTreeSet<u32>,
    /// How the wipe gets approved when nothing blocks it.
    pub approval: Approval,
    /// False when catalog/hardware data was missing and checks could not run (then the
    /// reinstall is `blocked`, never shown as safe).
    pub checks_done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Approval {
    /// Apply needs `--allow-wipe SERVER` (or `--allow-wipe-all`): policy `manual`, or any
    /// policy when `why` says an automatic wipe is not allowed.
    AllowWipe {
        flag: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// Policy `auto`: inside maintenance window `window` (until `until`), or with no window.
    /// A closed window leaves `until` empty and blocks the reinstall.
    Auto {
        window: Option<String>,
        until: Option<jiff::Timestamp>,
    },
    /// Policy `never`: no approval can run it (always inside `blocked`).
    Never,
}

impl std::fmt::Display for Approval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approval::AllowWipe { flag, why: None } => write!(f, "needs {flag} at apply"),
            Approval::AllowWipe {
                flag,
                why: Some(why),
            } => write!(f, "needs {flag} at apply, never automatic: {why}"),
            Approval::Auto {
                window: Some(w),
                until: Some(u),
            } => write!(f, "policy auto, inside maintenance window {w} until {u}"),
            Approval::Auto {
                window: Some(w),
                until: None,
            } => write!(f, "policy auto, in maintenance window {w} only"),
            Approval::Auto { .. } => f.write_str("policy auto"),
            Approval::Never => f.write_str("policy never: no approval runs it"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskGroupFate {
    pub id: u32,
    pub description: String,
    pub disk_type: String,
    pub disks: u32,
    pub disk_size_bytes: u64,
    pub fate: DiskFate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFate {
    /// Erased, and the OS is installed on it.
    OsInstall,
    Erased,
    /// Sent as `{diskGroupId, erase: false}`.
    Kept,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetBoot {
    pub reason: String,
    pub changes: Vec<Change>,
    /// Human description of the live boot, e.g. `rescue (kernel rescue-customer, id 22)`.
    pub from: String,
    pub target: BootTarget,
    /// Unified diff of the iPXE script (live → desired) when one side is a script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_diff: Option<String>,
}

/// The boot a `set-boot` PUTs, resolved against this server's own boot list (ids differ per
/// region; kernels are what manifests name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum BootTarget {
    /// `PUT {"bootId": id}` of the server's harddisk boot.
    Disk {
        id: u64,
    },
    Rescue {
        kernel: String,
        id: u64,
    },
    Network {
        kernel: String,
        id: u64,
    },
    /// `PUT {"bootScript": …}`: apply takes the script from the manifests and refuses it
    /// unless its digest is this one.
    Ipxe {
        script_digest: String,
    },
    BootId {
        id: u64,
    },
    /// The manifest's boot could not be resolved on this server (only inside `blocked`).
    Unresolved {
        wanted: String,
    },
}

impl BootTarget {
    /// The `bootId` to PUT, for every target but iPXE scripts.
    pub fn boot_id(&self) -> Option<u64> {
        match self {
            BootTarget::Disk { id }
            | BootTarget::Rescue { id, .. }
            | BootTarget::Network { id, .. }
            | BootTarget::BootId { id } => Some(*id),
            BootTarget::Ipxe { .. } | BootTarget::Unresolved { .. } => None,
        }
    }
}

impl std::fmt::Display for BootTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootTarget::Disk { id } => write!(f, "disk (id {id})"),
            BootTarget::Rescue { kernel, id } => write!(f, "rescue (kernel {kernel}, id {id})"),
            BootTarget::Network { kernel, id } => write!(f, "network (kernel {kernel}, id {id})"),
            BootTarget::Ipxe { script_digest } => {
                // The digest comes from a saved plan too: never slice bytes we did not make.
                let short: String = script_digest.chars().take("sha256:".len() + 12).collect();
                write!(f, "iPXE script {short}")
            }
            BootTarget::BootId { id } => write!(f, "boot id {id}"),
            BootTarget::Unresolved { wanted } => write!(f, "{wanted} (unresolved)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reboot {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateSettings {
    pub reason: String,
    pub changes: Vec<Change>,
    /// The PUT body: only the managed fields that differ (`None` = not sent).
    pub fields: Settings,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub reason: String,
    pub on: WaitOn,
}

/// What a `wait` waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitOn {
    Task(TaskRef),
    /// `install/status` reports an installation in progress.
    Install {
        elapsed_secs: u64,
        steps: usize,
        /// Steps `done` so far (the one running is the next).
        #[serde(default)]
        done: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub id: u64,
    pub function: String,
    pub status: crate::model::TaskStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forget {
    pub reason: String,
    /// The record dropped (`record: <os> <fingerprint> → none`), when there is one.
    pub changes: Vec<Change>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    /// Why there is something to do at all, when no action could be planned (`action` is
    /// `None`, e.g. the server is not in the account). Empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The action that would run if nothing blocked it.
    pub action: Option<Box<Action>>,
    /// Never empty: everything that blocks it.
    pub blockers: Vec<Blocker>,
}

/// Why an action cannot run now. Carries what a daemon needs to requeue ([`Blocker::requeue_at`])
/// and what a renderer needs to say how to unblock it (`Display`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Blocker {
    /// `policy.reinstall: never`.
    PolicyNever { origin: Origin },
    /// A wipe that needs an explicit approval naming the server.
    NeedsApproval { flag: String },
    /// Outside the maintenance window; `next_open` is when it opens (None: never again), in
    /// the window's `time_zone` for people.
    OutsideWindow {
        window: String,
        time_zone: String,
        next_open: Option<jiff::Timestamp>,
    },
    /// `policy.maintenanceWindow` names no `MaintenanceWindow`.
    WindowUndefined { window: String, origin: Origin },
    /// The window's schedule or time zone cannot be evaluated.
    WindowInvalid { window: String, message: String },
    /// `policy.suspend: true`.
    Suspended { origin: Origin },
    /// The group's `maxConcurrentReinstalls` is reached.
    GroupLimit { group: String, max: u32 },
    /// The server's detail (tasks, boots, hardware, catalog) was not read.
    DetailMissing,
    /// A catalog or hardware check could not run for lack of data.
    ChecksNotDone { missing: String },
    /// The spec would be refused by the API (see the finding with the same code).
    InvalidSpec {
        code: FindingCode,
        message: String,
        origin: Option<Origin>,
    },
    /// The manifest names a server the account does not have.
    ServerNotFound { origin: Origin },
    /// The manifest's boot does not exist on this server.
    BootUnresolved { message: String, origin: Origin },
    /// Another fleet's record owns the server.
    OtherFleet { fleet: String },
    /// The state store and the server's tags disagree about what was installed.
    RecordDisputed,
    /// The server's record was refused as implausible (see the finding).
    RecordRefused,
    /// The live data of the server made no sense (see the finding).
    ObservedAnomaly { what: String },
    /// The server's last reinstall failed: it is degraded.
    InstallFailed {
        task: u64,
        step: Option<String>,
        error: Option<String>,
    },
    /// OVH plans an intervention on the server that is not done: an automatic wipe waits for
    /// it to end (`expected_end`, when the daemon plans again).
    PlannedIntervention {
        id: u64,
        /// The API's `type` (hostile text: escaped where shown).
        intervention: String,
        status: InterventionStatus,
        wanted_start: Option<jiff::Timestamp>,
        expected_end: Option<jiff::Timestamp>,
    },
    /// Whether OVH plans an intervention on the server is unknown: an automatic wipe is not
    /// approved on an unchecked "none".
    InterventionsUnchecked { why: Unchecked },
}

/// Why the planned interventions of a server were not checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Unchecked {
    /// They were not read for this plan.
    NotRead,
    /// The API's answer could not be read or made no sense.
    Unreadable { error: String },
}

impl Blocker {
    /// The blocker an unfinished intervention puts on an automatic wipe.
    pub fn intervention(p: &PlannedIntervention) -> Blocker {
        Blocker::PlannedIntervention {
            id: p.id,
            intervention: p.kind.clone(),
            status: p.status.clone(),
            wanted_start: p.wanted_start,
            expected_end: p.expected_end,
        }
    }
}

/// `OVH planned intervention 9 ("HARDWARE_UPGRADE_ON_ACTIVE_SERVER") is "todo", wanted start
/// …, expected end …`: the API's texts quoted (escaped), times in UTC.
pub fn describe_intervention(p: &PlannedIntervention) -> String {
    let mut s = format!(
        "OVH planned intervention {} ({:?}) is {:?}",
        p.id,
        p.kind,
        p.status.as_str()
    );
    if let Some(w) = p.wanted_start {
        s.push_str(&format!(
            ", wanted start {}",
            w.strftime("%Y-%m-%d %H:%M UTC")
        ));
    }
    match p.expected_end {
        Some(e) => s.push_str(&format!(
            ", expected end {}",
            e.strftime("%Y-%m-%d %H:%M UTC")
        )),
        None => s.push_str(", no expected end"),
    }
    s
}

/// `2026-11-30 02:00 Europe/Paris (01:00 UTC)`: a time as the people of the window read it.
pub fn local_time(t: jiff::Timestamp, time_zone: &str) -> String {
    let utc = t.strftime("%H:%M UTC");
    match jiff::tz::TimeZone::get(time_zone) {
        Ok(tz) => format!(
            "{} {time_zone} ({utc})",
            t.to_zoned(tz).strftime("%Y-%m-%d %H:%M")
        ),
        Err(_) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

impl Blocker {
    /// The `kind` tag of every blocker, in declaration order (docs/plan.md lists each).
    pub const KINDS: &'static [&'static str] = &[
        "policy-never",
        "needs-approval",
        "outside-window",
        "window-undefined",
        "window-invalid",
        "suspended",
        "group-limit",
        "detail-missing",
        "checks-not-done",
        "invalid-spec",
        "server-not-found",
        "boot-unresolved",
        "other-fleet",
        "record-disputed",
        "record-refused",
        "observed-anomaly",
        "install-failed",
        "planned-intervention",
        "interventions-unchecked",
    ];

    /// This blocker's `kind` tag.
    pub fn kind_name(&self) -> &'static str {
        let i = match self {
            Blocker::PolicyNever { .. } => 0,
            Blocker::NeedsApproval { .. } => 1,
            Blocker::OutsideWindow { .. } => 2,
            Blocker::WindowUndefined { .. } => 3,
            Blocker::WindowInvalid { .. } => 4,
            Blocker::Suspended { .. } => 5,
            Blocker::GroupLimit { .. } => 6,
            Blocker::DetailMissing => 7,
            Blocker::ChecksNotDone { .. } => 8,
            Blocker::InvalidSpec { .. } => 9,
            Blocker::ServerNotFound { .. } => 10,
            Blocker::BootUnresolved { .. } => 11,
            Blocker::OtherFleet { .. } => 12,
            Blocker::RecordDisputed => 13,
            Blocker::RecordRefused => 14,
            Blocker::ObservedAnomaly { .. } => 15,
            Blocker::InstallFailed { .. } => 16,
            Blocker::PlannedIntervention { .. } => 17,
            Blocker::InterventionsUnchecked { .. } => 18,
        };
        Blocker::KINDS[i]
    }

    /// When re-planning may unblock this without anyone changing anything.
    pub fn requeue_at(&self) -> Option<jiff::Timestamp> {
        match self {
            Blocker::OutsideWindow { next_open, .. } => *next_open,
            // When OVH expects to be done; a late one (the time passed, the status not `done`)
            // is re-checked by the daemon's interval passes.
            Blocker::PlannedIntervention { expected_end, .. } => *expected_end,
            _ => None,
        }
    }
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::PolicyNever { origin } => write!(f, "policy reinstall: never ({origin})"),
            Blocker::NeedsApproval { flag } => {
                write!(f, "needs an explicit approval naming the server ({flag})")
            }
            Blocker::OutsideWindow {
                window,
                time_zone,
                next_open: Some(n),
            } => write!(
                f,
                "outside maintenance window {window}; it next opens at {} (`--ignore-maintenance-window` at apply overrides)",
                local_time(*n, time_zone)
            ),
            Blocker::OutsideWindow {
                window,
                next_open: None,
                ..
            } => write!(
                f,
                "outside maintenance window {window}; its schedule never fires again"
            ),
            Blocker::WindowUndefined { window, origin } => {
                write!(f, "maintenance window {window} is not defined ({origin})")
            }
            Blocker::WindowInvalid { window, message } => {
                write!(f, "maintenance window {window} cannot be evaluated: {message}")
            }
            Blocker::Suspended { origin } => write!(f, "server is suspended ({origin})"),
            Blocker::GroupLimit { group, max } => write!(
                f,
                "group {group} already runs {max} reinstall(s) at a time (maxConcurrentReinstalls)"
            ),
            Blocker::DetailMissing => f.write_str(
                "server detail (running tasks, boots, hardware, catalog) was not observed; re-run the plan",
            ),
            Blocker::ChecksNotDone { missing } => write!(f, "checks not done: {missing}"),
            Blocker::InvalidSpec {
                code,
                message,
                origin,
            } => {
                write!(f, "invalid [{code}]: {message}")?;
                if let Some(o) = origin {
                    write!(f, " ({o})")?;
                }
                Ok(())
            }
            Blocker::ServerNotFound { origin } => write!(
                f,
                "server not found in the account (manifest {origin}); check the service name"
            ),
            Blocker::BootUnresolved { message, origin } => write!(f, "{message} ({origin})"),
            Blocker::OtherFleet { fleet } => write!(
                f,
                "the server is recorded by fleet {fleet:?}; `--take-over SERVER` lets this fleet manage it"
            ),
            Blocker::RecordDisputed => f.write_str(
                "the state store and the server's tags disagree about what is installed (see the finding)",
            ),
            Blocker::RecordRefused => f.write_str(
                "the server's record was refused as implausible (see the finding); fix or remove it first",
            ),
            Blocker::ObservedAnomaly { what } => {
                write!(f, "the API's data for this server made no sense: {what}")
            }
            Blocker::InstallFailed { task, step, error } => {
                write!(f, "the last reinstall (task {task}) failed")?;
                if let Some(s) = step {
                    write!(f, " at step {s:?}")?;
                }
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            Blocker::PlannedIntervention {
                id,
                intervention,
                status,
                wanted_start,
                expected_end,
            } => write!(
                f,
                "{}; an automatic reinstall waits until it is done",
                describe_intervention(&PlannedIntervention {
                    id: *id,
                    kind: intervention.clone(),
                    status: status.clone(),
                    wanted_start: *wanted_start,
                    expected_end: *expected_end,
                })
            ),
            Blocker::InterventionsUnchecked {
                why: Unchecked::NotRead,
            } => f.write_str(
                "OVH's planned interventions on this server were not checked; an automatic reinstall is not approved unchecked",
            ),
            Blocker::InterventionsUnchecked {
                why: Unchecked::Unreadable { error },
            } => write!(
                f,
                "OVH's planned interventions on this server could not be checked ({error}); an automatic reinstall is not approved unchecked"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_marker_only_reads_true() {
        assert_eq!(serde_json::to_string(&Destructive).unwrap(), "true");
        assert!(serde_json::from_str::<Destructive>("true").is_ok());
        let e = serde_json::from_str::<Destructive>("false").unwrap_err();
        assert!(e.to_string().contains("always destructive"), "{e}");
    }

    #[test]
    fn blocking_keeps_the_action_and_merges_blockers() {
        let a = Action::Reboot(Reboot { reason: "r".into() }).block(vec![Blocker::DetailMissing]);
        let a = a.block(vec![
            Blocker::DetailMissing,
            Blocker::GroupLimit {
                group: "g".into(),
                max: 1,
            },
        ]);
        assert_eq!(a.kind(), ActionKind::Blocked);
        assert_eq!(a.effective_kind(), ActionKind::Reboot);
        assert_eq!(a.blockers().len(), 2);
        assert_eq!(a.reason(), "r");
    }

    #[test]
    fn blocker_kind_names_are_their_json_tags() {
        let o = Origin::default();
        let all = [
            Blocker::PolicyNever { origin: o.clone() },
            Blocker::NeedsApproval { flag: "f".into() },
            Blocker::OutsideWindow {
                window: "w".into(),
                time_zone: "UTC".into(),
                next_open: None,
            },
            Blocker::WindowUndefined {
                window: "w".into(),
                origin: o.clone(),
            },
            Blocker::WindowInvalid {
                window: "w".into(),
                message: "m".into(),
            },
            Blocker::Suspended { origin: o.clone() },
            Blocker::GroupLimit {
                group: "g".into(),
                max: 1,
            },
            Blocker::DetailMissing,
            Blocker::ChecksNotDone {
                missing: "m".into(),
            },
            Blocker::InvalidSpec {
                code: FindingCode::Lvm,
                message: "m".into(),
                origin: None,
            },
            Blocker::ServerNotFound { origin: o.clone() },
            Blocker::BootUnresolved {
                message: "m".into(),
                origin: o,
            },
            Blocker::OtherFleet { fleet: "f".into() },
            Blocker::RecordDisputed,
            Blocker::RecordRefused,
            Blocker::ObservedAnomaly { what: "w".into() },
            Blocker::InstallFailed {
                task: 1,
                step: None,
                error: None,
            },
            Blocker::PlannedIntervention {
                id: 1,
                intervention: "HARDWARE_UPGRADE_ON_ACTIVE_SERVER".into(),
                status: InterventionStatus::Todo,
                wanted_start: None,
                expected_end: None,
            },
            Blocker::InterventionsUnchecked {
                why: Unchecked::NotRead,
            },
        ];
        assert_eq!(all.len(), Blocker::KINDS.len());
        for (b, name) in all.iter().zip(Blocker::KINDS) {
            let v = serde_json::to_value(b).unwrap();
            assert_eq!(v["kind"], *name);
            assert_eq!(b.kind_name(), *name);
            assert!(!b.to_string().is_empty());
        }
    }

    #[test]
    fn only_window_blockers_requeue() {
        let t: jiff::Timestamp = "2026-01-01T02:00:00Z".parse().unwrap();
        let w = Blocker::OutsideWindow {
            window: "nights".into(),
            time_zone: "Europe/Paris".into(),
            next_open: Some(t),
        };
        assert_eq!(w.requeue_at(), Some(t));
        assert!(
            w.to_string()
                .contains("2026-01-01 03:00 Europe/Paris (02:00 UTC)"),
            "{w}"
        );
        assert_eq!(Blocker::DetailMissing.requeue_at(), None);
    }

    #[test]
    fn an_intervention_requeues_at_its_expected_end_and_quotes_its_type() {
        let end: jiff::Timestamp = "2026-01-01T06:00:00Z".parse().unwrap();
        let b = Blocker::intervention(&PlannedIntervention {
            id: 9,
            kind: "X\u{1b}[2J`*evil*`".into(),
            status: InterventionStatus::Doing,
            wanted_start: Some("2026-01-01T02:00:00Z".parse().unwrap()),
            expected_end: Some(end),
        });
        assert_eq!(b.requeue_at(), Some(end));
        let text = b.to_string();
        assert!(
            text.contains("intervention 9 (\"X\\u{1b}[2J`*evil*`\") is \"doing\""),
            "{text}"
        );
        assert!(text.contains("expected end 2026-01-01 06:00 UTC"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        let unchecked = Blocker::InterventionsUnchecked {
            why: Unchecked::Unreadable {
                error: "HTTP 503".into(),
            },
        };
        assert_eq!(unchecked.requeue_at(), None);
        assert_eq!(
            serde_json::to_value(&unchecked).unwrap(),
            serde_json::json!({"kind": "interventions-unchecked",
                "why": {"reason": "unreadable", "error": "HTTP 503"}})
        );
    }
}
