//! The pure planner: desired state (manifests) + observed state (the API) + records (what
//! ovhform did before) → a [`Plan`] a reviewer can trust.
//!
//! Owns: deciding what to do and why, the safety rules, plan-time validation against the
//! catalog and hardware, the plan lint, secret redaction of everything a plan shows.
//! Must not touch: I/O of any kind, the clock (`now` comes in [`PlanInput`]), randomness,
//! async, YAML, HTTP. Everything is ordered through `BTreeMap`/`BTreeSet`, so the same inputs
//! give the same plan byte for byte.
//!
//! Layout: [`planner`] runs the named steps per server; [`checks`] validates a reinstall
//! against catalog and hardware; [`window`] evaluates maintenance windows; [`redact`] hides
//! secrets; [`lint`] checks a finished plan's invariants (omicron's "blippy");
//! [`testkit`] is a pure in-memory "API" used by the idempotence law and the benchmark.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Desired, InstallRecord, Observed, Origin, Records};

pub mod checks;
pub mod lint;
mod planner;
pub mod redact;
pub mod testkit;
pub mod window;

pub use lint::{LintError, lint};

/// Version of the JSON shape of [`Plan`] (`--format json` and saved plans).
pub const FORMAT_VERSION: u32 = 1;

/// Tag key prefix ovhform uses for its install record mirrored into IAM tags.
pub const TAG_PREFIX: &str = "ovhform:";

/// Everything the planner needs besides the three states. Plain data: the CLI fills it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    /// "Now", injected: maintenance windows, `endOfInstall` and adoption times use it.
    pub now: jiff::Timestamp,
    /// `--target SERVER…`: plan only these servers. Empty = every server.
    pub targets: BTreeSet<String>,
    /// The manifests' revision (git commit) the desired state was read from, if known.
    pub revision: Option<String>,
    /// The exact command a reviewer runs to apply this plan (printed in every rendering).
    pub apply_command: String,
}

impl PlanInput {
    /// An input planning every server at `now`, with the default apply command.
    pub fn new(now: jiff::Timestamp) -> Self {
        PlanInput {
            now,
            targets: BTreeSet::new(),
            revision: None,
            apply_command: "ovhform apply".to_string(),
        }
    }
}

/// The planner's output: per server, an ordered list of actions, the drift seen, and the
/// findings of plan-time validation, plus what the plan was based on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub generated_at: jiff::Timestamp,
    pub revision: Option<String>,
    pub apply_command: String,
    /// `--target` as given (empty = all).
    pub targets: BTreeSet<String>,
    pub servers: BTreeMap<String, ServerPlan>,
    /// Findings not tied to one server (unknown targets, group limits).
    pub findings: Vec<Finding>,
    /// Omicron-style report of the named planning steps, in the order they ran.
    pub steps: Vec<StepReport>,
}

/// The plan for one server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerPlan {
    pub server: String,
    /// Where the server was seen; the lint checks actions against it.
    pub presence: Presence,
    /// Ordered: what apply runs first comes first.
    pub actions: Vec<Action>,
    /// Live state that moved away from what ovhform applied, reported apart from intent.
    pub drift: Vec<Drift>,
    pub findings: Vec<Finding>,
    /// The facts the actions depend on: apply re-reads them before acting (freshness).
    pub based_on: BasedOn,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub desired: bool,
    pub observed: bool,
    pub recorded: bool,
}

/// Observed and desired facts a plan for one server was computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasedOn {
    pub live_os: Option<String>,
    pub live_boot_id: Option<u64>,
    /// `sha256:<12 hex> (N bytes)` of the live iPXE script.
    pub live_boot_script: Option<String>,
    pub desired_fingerprint: Option<String>,
    pub desired_generation: Option<u64>,
    pub recorded_fingerprint: Option<String>,
    /// Whether tasks, boots, hardware and catalog were read for this server.
    pub detail_read: bool,
}

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

/// One step of the plan for one server. Optional parts are filled per `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionKind,
    /// True only for `reinstall`: disks are erased.
    pub destructive: bool,
    /// One line: why this action exists.
    pub reason: String,
    /// Which fields differ, old → new (secrets already redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// For `blocked`: everything that blocks it. Empty otherwise.
    pub blocked_by: Vec<String>,
    /// For `blocked`: the action that would run if nothing blocked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<ActionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinstall: Option<ReinstallDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootChange>,
    /// For `update-settings`: the PUT body (only managed, differing fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BTreeMap<String, serde_json::Value>>,
    /// For `wait`: the running task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskRef>,
    /// For `adopt`: the baseline record to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<InstallRecord>,
}

impl Action {
    pub(crate) fn new(kind: ActionKind, reason: impl Into<String>) -> Self {
        Action {
            kind,
            destructive: kind == ActionKind::Reinstall,
            reason: reason.into(),
            changes: Vec::new(),
            blocked_by: Vec::new(),
            blocks: None,
            reinstall: None,
            boot: None,
            settings: None,
            task: None,
            record: None,
        }
    }

    /// The kind this action is about: itself, or for `blocked` the action it blocks.
    pub fn effective_kind(&self) -> ActionKind {
        self.blocks.unwrap_or(self.kind)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Dotted manifest-style path, e.g. `install.fingerprint`, `boot`, `settings.monitoring`.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReinstallDetail {
    pub os: String,
    pub fingerprint: String,
    pub generation: u64,
    /// The request that will be POSTed, secrets replaced by `sha256:<12 hex> (N bytes)`.
    pub request: serde_json::Value,
    /// Every disk group of the server and what the reinstall does to it.
    pub disk_groups: Vec<DiskGroupFate>,
    /// How the wipe gets approved.
    pub approval: Approval,
    /// False when catalog/hardware data was missing and checks could not run (then the
    /// reinstall is `blocked`, never shown as safe).
    pub checks_done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Approval {
    /// Policy `manual`: apply needs `--allow-wipe SERVER` (or `--allow-wipe-all`).
    AllowWipe { flag: String },
    /// Policy `auto` inside maintenance window `window` (until `until`), or with no window.
    Auto {
        window: Option<String>,
        until: Option<jiff::Timestamp>,
    },
    /// Not approvable now (see the `blocked` action's `blocked_by`).
    None,
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
pub struct BootChange {
    /// Human description of the live boot, e.g. `rescue (kernel rescue-customer, id 22)`.
    pub from: String,
    pub to: String,
    /// The PUT body: `{"bootId": N}` or `{"bootScript": "…"}`.
    pub put: serde_json::Value,
    /// Unified diff of the iPXE script (live → desired) when one side is a script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_diff: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub id: u64,
    pub function: String,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// `install`, `boot`, or `settings.<field>`.
    pub field: String,
    /// What ovhform applied (and the manifest still says).
    pub applied: Option<String>,
    pub live: Option<String>,
    /// The drift policy for this field and whether the plan acts on it.
    pub policy: crate::model::DriftAction,
    pub corrected: bool,
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable machine code, e.g. `os-not-compatible`.
    pub code: String,
    pub message: String,
    /// The manifest line the finding is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: String,
    pub notes: Vec<String>,
}

/// Counts for summaries (Terraform-like).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub servers: usize,
    pub adopt: usize,
    pub reinstall: usize,
    pub set_boot: usize,
    pub reboot: usize,
    pub update_settings: usize,
    pub wait: usize,
    pub blocked: usize,
    pub forget: usize,
    /// Servers with nothing to do.
    pub unchanged: usize,
    /// Servers with drift.
    pub drifted: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            servers: self.servers.len(),
            ..Summary::default()
        };
        for sp in self.servers.values() {
            if sp.actions.iter().all(|a| a.kind == ActionKind::Noop) {
                s.unchanged += 1;
            }
            if !sp.drift.is_empty() {
                s.drifted += 1;
            }
            for a in &sp.actions {
                match a.kind {
                    ActionKind::Adopt => s.adopt += 1,
                    ActionKind::Reinstall => s.reinstall += 1,
                    ActionKind::SetBoot => s.set_boot += 1,
                    ActionKind::Reboot => s.reboot += 1,
                    ActionKind::UpdateSettings => s.update_settings += 1,
                    ActionKind::Wait => s.wait += 1,
                    ActionKind::Blocked => s.blocked += 1,
                    ActionKind::Forget => s.forget += 1,
                    ActionKind::Noop => {}
                }
            }
        }
        for f in self.all_findings() {
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
            }
        }
        s
    }

    /// Plan-level findings, then every server's, in server order.
    /// Every finding with the server it is about (`None` for plan-level findings), in the
    /// order the renderers show them: plan-level first, then per server.
    pub fn findings_by_server(&self) -> Vec<(Option<&str>, &Finding)> {
        self.findings
            .iter()
            .map(|f| (None, f))
            .chain(
                self.servers
                    .values()
                    .flat_map(|s| s.findings.iter().map(move |f| (Some(s.server.as_str()), f))),
            )
            .collect()
    }

    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .chain(self.servers.values().flat_map(|s| s.findings.iter()))
    }

    /// Any action other than `noop` (what `--detailed-exitcode` reports as 2).
    pub fn has_changes(&self) -> bool {
        self.servers
            .values()
            .flat_map(|s| &s.actions)
            .any(|a| a.kind != ActionKind::Noop)
    }

    /// Any error-level finding (policy `never` on a needed reinstall, invalid spec, …).
    pub fn has_errors(&self) -> bool {
        self.all_findings().any(|f| f.severity == Severity::Error)
    }

    /// Load a saved plan, refusing other format versions.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(PlanError::Parse)?;
        let found = v.get("format_version").and_then(|x| x.as_u64());
        if found != Some(u64::from(FORMAT_VERSION)) {
            return Err(PlanError::FormatVersion {
                found,
                expected: FORMAT_VERSION,
            });
        }
        serde_json::from_value(v).map_err(PlanError::Parse)
    }
}

/// Errors of the plan room. Planning itself cannot fail (problems become findings and
/// `blocked` actions); only reading a saved plan can.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("saved plan is not valid JSON for this ovhform version: {0}")]
    Parse(#[source] serde_json::Error),
    #[error(
        "saved plan has format_version {found:?}, this ovhform reads {expected}; re-run `ovhform plan --out`"
    )]
    FormatVersion { found: Option<u64>, expected: u32 },
}

/// Plan the fleet. Pure: same inputs, same plan. See the module docs and
/// `docs/notes-plan.md` for the rules.
pub fn plan(desired: &Desired, observed: &Observed, records: &Records, input: &PlanInput) -> Plan {
    planner::plan(desired, observed, records, input)
}

/// The servers the planner may act on: any difference in OS, fingerprint, generation, boot
/// or settings, or no install record. `observe` reads tasks, boots, hardware and the catalog
/// only for these, so an unchanged fleet costs one listing plus one GET per server.
pub fn needs_detail(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> BTreeSet<String> {
    planner::needs_detail(desired, observed, records, input)
}
