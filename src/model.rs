//! Plain domain types shared by every room: the desired state that `manifest/` produces, the
//! observed state that `observe` produces, and the records `state/` keeps.
//!
//! Owns: data shapes only. Must not touch: YAML, spans, HTTP, the clock, the file system.
//! The planner sees nothing but these types, which is what keeps it pure and testable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a value came from in the manifests, kept as plain data so that later rooms (the
/// planner's catalog checks) can name a manifest line without knowing about YAML.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The whole validated desired state of a manifest tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Keyed by OVH service name (e.g. `ns3012345.ip-51-68-1.eu`).
    pub servers: BTreeMap<String, DesiredServer>,
    pub groups: BTreeMap<String, DesiredGroup>,
    pub windows: BTreeMap<String, MaintenanceWindow>,
    /// ServerGroups that select live servers by their IAM tags, by group name: the pipeline
    /// adds a copy of the prototype, named after the server, for every listed server whose
    /// tags match and that has no manifest of its own ([`Desired::select_by_tags`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tag_selectors: BTreeMap<String, TagSelector>,
}

/// A `selector.matchTags` of a ServerGroup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagSelector {
    pub match_tags: BTreeMap<String, String>,
    /// The group's template, built for a name no server has.
    pub prototype: DesiredServer,
}

impl Desired {
    /// Adds the live servers `tags` (user IAM tags by server) select through the tag
    /// selectors: each a copy of its group's prototype, named after it, marked as selected by
    /// tags (its wipe is never automatic). A server with a manifest of its own keeps it (tags
    /// never override a manifest); a server two tag groups select goes to the first, in group
    /// name order. Returns the servers added.
    pub fn select_by_tags(
        &mut self,
        tags: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Vec<String> {
        let mut added = Vec::new();
        for (group, sel) in &self.tag_selectors {
            for (name, server_tags) in tags {
                let all = sel
                    .match_tags
                    .iter()
                    .all(|(k, v)| server_tags.get(k) == Some(v));
                if !all || self.servers.contains_key(name) {
                    continue;
                }
                let mut ds = sel.prototype.clone();
                ds.name = name.clone();
                ds.selected_by_tags = Some(group.clone());
                self.servers.insert(name.clone(), ds);
                if let Some(g) = self.groups.get_mut(group) {
                    g.members.insert(name.clone());
                }
                added.push(name.clone());
            }
        }
        added
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredServer {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The `ServerGroup`s this server belongs to (by membership or selector).
    pub groups: Vec<String>,
    /// Where the server's own `Server` document starts, or the group that produced it.
    pub origin: Origin,
    /// Origins of individual fields, keyed by dotted path (`spec.install.os`,
    /// `spec.install.storage.keepDiskGroups`, `spec.boot.mode`, …).
    pub field_origins: BTreeMap<String, Origin>,
    pub install: Option<InstallSpec>,
    pub boot: Option<BootSpec>,
    pub settings: Settings,
    pub policy: Policy,
    /// The ServerGroup whose `matchTags` selector brought this server in (it has no manifest
    /// of its own). A wipe of it is never automatic: IAM tags are not the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_by_tags: Option<String>,
}

impl DesiredServer {
    /// The best origin for a dotted field path: the field's own, else its closest parent's,
    /// else the document's.
    pub fn origin_of(&self, path: &str) -> &Origin {
        let mut p = path;
        loop {
            if let Some(o) = self.field_origins.get(p) {
                return o;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return &self.origin,
            }
        }
    }
}

/// Customization keys whose values are secret whatever the manifest marked: they carry
/// credentials (`httpHeaders`) or whole scripts and user data that routinely embed them.
pub const ALWAYS_SECRET: &[&str] = &[
    "/customizations/httpHeaders",
    "/customizations/configDriveUserData",
    "/customizations/postInstallationScript",
];

/// What a reinstall would install, fully resolved: files read, scripts base64-encoded,
/// environment values substituted, sizes in MiB. Its `Debug` shows the request with every
/// secret value as `<redacted>`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallSpec {
    /// `operatingSystem`.
    pub os: String,
    /// The exact `dedicated.server.Reinstall` body ovhform would POST (keys sorted).
    pub request: serde_json::Value,
    /// `sha256:<64 hex>` over the canonical JSON of the *public* request
    /// (`manifest::public_request`): API defaults normalised, every secret replaced by
    /// `"<secret>"` and every `httpHeaders` value by `"<credential>"`. Holds nothing secret, so
    /// it may be published (PR comments, IAM tags); secrets are compared elsewhere, through a
    /// keyed digest.
    pub fingerprint: String,
    /// The version of the algorithm that computed `fingerprint`
    /// (`manifest::FINGERPRINT_ALGORITHM`): fingerprints of different versions never compare
    /// equal, so records carry it.
    pub algorithm: u32,
    /// Bumped by the user to force a rebuild with an unchanged spec.
    pub generation: u64,
    /// The disk group the OS goes on (`None` = the API's default, disk group 1).
    pub os_disk_group: Option<u32>,
    /// Disk groups sent as `{diskGroupId, erase: false}`.
    pub keep_disk_groups: BTreeSet<u32>,
    /// Paths inside `request` (JSON pointers, e.g. `/customizations/httpHeaders/Authorization`)
    /// whose values are secret: never shown, never hashed without a key (the fingerprint holds
    /// a placeholder for each).
    pub secret_paths: BTreeSet<String>,
    /// The subset of `secret_paths` that are credentials to fetch the image (`httpHeaders`
    /// values): the image is identified by `imageURL` and its checksum, so rotating them must
    /// not force a reinstall.
    pub credential_paths: BTreeSet<String>,
}

impl std::fmt::Debug for InstallSpec {
    /// The request holds the secrets in clear (it is what is POSTed): a `Debug` of a spec, in
    /// a log line, an error or a panic message, must not (issue 12, secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn redact(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => m.values_mut().for_each(redact),
                serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
                leaf => *leaf = serde_json::Value::String("<redacted>".into()),
            }
        }
        let mut request = self.request.clone();
        let paths = self
            .secret_paths
            .iter()
            .map(String::as_str)
            .chain(ALWAYS_SECRET.iter().copied());
        for path in paths {
            if let Some(v) = request.pointer_mut(path) {
                redact(v);
            }
        }
        f.debug_struct("InstallSpec")
            .field("os", &self.os)
            .field("request", &request)
            .field("fingerprint", &self.fingerprint)
            .field("algorithm", &self.algorithm)
            .field("generation", &self.generation)
            .field("os_disk_group", &self.os_disk_group)
            .field("keep_disk_groups", &self.keep_disk_groups)
            .field("secret_paths", &self.secret_paths)
            .field("credential_paths", &self.credential_paths)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSpec {
    pub mode: BootMode,
    pub reboot: RebootPolicy,
    /// `boot.for` / `boot.until`: the mode is a lease; once it runs out the server returns to
    /// booting from disk. Rescue and netboot left on by mistake are the classic trap: a later
    /// reboot silently brings the server back into them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<BootLease>,
}

/// How long a temporary boot lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BootLease {
    /// `for: 2h`: counted from when ovhform first saw the server converged to the mode.
    For { secs: u64 },
    /// `until: 2026-12-01T10:00:00Z`: an absolute end.
    Until { at: jiff::Timestamp },
}

impl BootLease {
    /// When a lease that started at `started` ends (`None` for a `for` lease not started).
    pub fn ends(&self, started: Option<jiff::Timestamp>) -> Option<jiff::Timestamp> {
        match *self {
            BootLease::Until { at } => Some(at),
            BootLease::For { secs } => started.map(|s| {
                s.saturating_add(jiff::SignedDuration::from_secs(
                    i64::try_from(secs).unwrap_or(i64::MAX),
                ))
                .unwrap_or(jiff::Timestamp::MAX)
            }),
        }
    }
}

impl std::fmt::Display for BootLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootLease::For { secs } => write!(
                f,
                "for {}",
                humantime::format_duration(std::time::Duration::from_secs(*secs))
            ),
            BootLease::Until { at } => write!(f, "until {at}"),
        }
    }
}

/// The boot a server should be set to. Rescue and network boots are named by kernel and
/// resolved against the server's own boot list at plan time (ids differ per region).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum BootMode {
    Disk,
    Rescue {
        kernel: String,
    },
    Network {
        kernel: String,
    },
    /// A custom iPXE script, PUT as `bootScript` (byte-exact).
    Ipxe {
        script: String,
    },
    /// An explicit boot id, for the rare boots that have no stable kernel name.
    BootId {
        id: u64,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RebootPolicy {
    #[default]
    Never,
    OnChange,
}

/// Plain attributes PUT on the server. `None` = not managed by ovhform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub efi_bootloader_path: Option<String>,
    pub monitoring: Option<bool>,
    pub no_intervention: Option<bool>,
    pub rescue_mail: Option<String>,
    pub rescue_ssh_key: Option<String>,
    pub root_device: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub reinstall: ReinstallPolicy,
    pub drift: DriftPolicy,
    pub maintenance_window: Option<String>,
    pub suspend: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReinstallPolicy {
    #[default]
    Manual,
    Auto,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftPolicy {
    pub boot: DriftAction,
    pub settings: DriftAction,
    pub install: DriftAction,
}

impl Default for DriftPolicy {
    /// Report, never act: like Argo CD without self-heal, nothing changes behind a reviewer.
    fn default() -> Self {
        DriftPolicy {
            boot: DriftAction::Warn,
            settings: DriftAction::Warn,
            install: DriftAction::Warn,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DriftAction {
    Ignore,
    #[default]
    Warn,
    Correct,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredGroup {
    pub name: String,
    pub origin: Origin,
    pub members: BTreeSet<String>,
    pub max_concurrent_reinstalls: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub name: String,
    pub origin: Origin,
    /// Cron expression (5 fields), validated by `croner`.
    pub schedule: String,
    pub duration_secs: u64,
    /// IANA time zone name, validated by `jiff`.
    pub time_zone: String,
}

// ---------------------------------------------------------------------------------------------
// Observed state: what the API says, decided nothing about.
// ---------------------------------------------------------------------------------------------

/// A snapshot of the live fleet as `observe` read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub servers: BTreeMap<String, ObservedServer>,
    /// Installation templates by name, for the servers that were read in detail.
    pub templates: BTreeMap<String, Template>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedServer {
    pub name: String,
    pub os: String,
    pub state: String,
    pub power_state: String,
    pub datacenter: String,
    /// `None` when a custom `bootScript` is set.
    pub boot_id: Option<u64>,
    /// The netboot `boot_id` refers to, resolved (through a cache) to its type and kernel.
    pub boot: Option<Netboot>,
    pub boot_script: Option<String>,
    pub efi_bootloader_path: Option<String>,
    pub monitoring: bool,
    pub no_intervention: bool,
    pub rescue_mail: Option<String>,
    pub rescue_ssh_key: Option<String>,
    pub root_device: Option<String>,
    pub iam_urn: Option<String>,
    /// User IAM tags (`ovh:` system tags excluded).
    pub tags: BTreeMap<String, String>,
    /// Filled only for servers the planner may act on (the detail pass).
    pub detail: Option<ObservedDetail>,
    /// What `observe` could not make sense of for this server (an unknown boot type, an
    /// unreadable date, …): the server is planned without acting on it instead of aborting
    /// the fleet's plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedDetail {
    /// Every netboot the server offers (to resolve rescue/network kernels to ids).
    pub boots: Vec<Netboot>,
    /// Tasks still pending (`init|todo|doing`) and the `reinstallServer` tasks in the history.
    pub tasks: Vec<Task>,
    /// `None` when the API answers 404 (nothing installing).
    pub install_status: Option<InstallStatus>,
    /// The install status could not be read (an error other than 404): whether something is
    /// installing is unknown.
    #[serde(default)]
    pub install_status_unknown: bool,
    pub hardware: Option<Hardware>,
    /// `compatibleTemplates.ovh`.
    pub compatible_templates: Vec<String>,
    /// OVH's planned interventions on the server, read only for servers a reinstall may run
    /// on (the pipeline's intervention pass); `NotRead` otherwise.
    #[serde(default)]
    pub interventions: Interventions,
}

/// What is known of OVH's planned interventions on a server. Only `Read` says anything: an
/// unread or unreadable list is never taken for an empty one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Interventions {
    /// Not asked for (the server had no reinstall this run could run).
    #[default]
    NotRead,
    /// `GET …/plannedIntervention` and each listed one, read.
    Read { list: Vec<PlannedIntervention> },
    /// The API did not answer (an error, a refusal, an intervention that could not be read
    /// or made sense of): whether one is planned is unknown.
    Unreadable { error: String },
}

/// `dedicated.server.PlannedIntervention`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedIntervention {
    pub id: u64,
    /// `dedicated.PlannedInterventionTypeEnum` (`HARDWARE_UPGRADE_ON_ACTIVE_SERVER`), kept as
    /// the API's text: a new type is still an intervention.
    pub kind: String,
    pub status: InterventionStatus,
    pub wanted_start: Option<jiff::Timestamp>,
    pub expected_end: Option<jiff::Timestamp>,
}

/// `dedicated.PlannedInterventionStatusEnum`: `doing, done, todo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InterventionStatus {
    Todo,
    Doing,
    Done,
    /// A status this ovhform does not know (the API added one): treated as not finished.
    #[serde(untagged)]
    Other(String),
}

impl InterventionStatus {
    /// The API's text of this status.
    pub fn parse(s: &str) -> InterventionStatus {
        match s {
            "todo" => InterventionStatus::Todo,
            "doing" => InterventionStatus::Doing,
            "done" => InterventionStatus::Done,
            other => InterventionStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            InterventionStatus::Todo => "todo",
            InterventionStatus::Doing => "doing",
            InterventionStatus::Done => "done",
            InterventionStatus::Other(s) => s,
        }
    }

    /// Only `done` is finished; anything else (an unknown status too) may still touch the
    /// server.
    pub fn is_finished(&self) -> bool {
        *self == InterventionStatus::Done
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Netboot {
    pub id: u64,
    pub boot_type: BootType,
    pub kernel: String,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BootType {
    Harddisk,
    Internal,
    Network,
    Power,
    Rescue,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: u64,
    /// `TaskFunctionEnum` value, e.g. `reinstallServer`, `hardReboot`.
    pub function: String,
    pub status: TaskStatus,
    pub comment: Option<String>,
    pub start_date: Option<jiff::Timestamp>,
    pub done_date: Option<jiff::Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    Init,
    Todo,
    Doing,
    Done,
    Cancelled,
    CustomerError,
    OvhError,
    /// Listed by the API, but its own GET answered 404: fresh tasks do for a while
    /// (REFERENCE §0), so it may well be running. Never an API value; set by `observe`.
    Unreadable,
    /// A status this ovhform does not know (the API added one): treated as running.
    #[serde(other)]
    Unknown,
}

impl TaskStatus {
    /// Pollers treat `init|todo|doing` as pending, everything else as final; a status
    /// nobody knows is pending too (waiting is the safe reading).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TaskStatus::Init | TaskStatus::Todo | TaskStatus::Doing | TaskStatus::Unknown
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallStatus {
    pub elapsed_secs: u64,
    pub steps: Vec<InstallStep>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallStep {
    pub comment: String,
    /// `doing, done, error, expired, idle, pending, stopping, todo`.
    pub status: String,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    /// `legacy | uefi | uefi-legacy`.
    pub boot_mode: String,
    pub disk_groups: Vec<DiskGroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskGroup {
    pub id: u32,
    pub description: String,
    pub disk_type: String,
    pub number_of_disks: u32,
    /// Size of one disk in bytes (the API gives `{unit, value}`; converted on observe).
    pub disk_size_bytes: u64,
    pub raid_controller: Option<String>,
}

/// An installation template from the catalog (`/dedicated/installationTemplate/{name}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    pub family: String,
    pub filesystems: Vec<String>,
    pub inputs: Vec<TemplateInput>,
    pub lvm_ready: Option<bool>,
    pub no_partitioning: bool,
    pub soft_raid_only_mirroring: bool,
    /// `YYYY-MM-DD`.
    pub end_of_install: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInput {
    pub name: String,
    /// `TemplateOsInputTypeEnum` value.
    pub input_type: String,
    pub mandatory: bool,
    pub default: Option<String>,
    pub enum_values: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Records: what ovhform did before.
// ---------------------------------------------------------------------------------------------

/// The fleet name records carry when none is configured (and the owner of records written
/// before records had owners).
pub const DEFAULT_FLEET: &str = "default";

fn default_fleet() -> String {
    DEFAULT_FLEET.to_string()
}

fn legacy_algorithm() -> u32 {
    1
}

/// The record of an install ovhform made (or adopted), per server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallRecord {
    pub server: String,
    /// The fleet (one manifests repository, one owner) that wrote the record. A plan only
    /// acts on its own fleet's servers.
    #[serde(default = "default_fleet")]
    pub fleet: String,
    /// Version of the fingerprint algorithm `fingerprint` was computed with (1: over the whole
    /// request, secrets included; 2: publishable, secrets compared through keyed digests).
    #[serde(default = "legacy_algorithm")]
    pub algorithm: u32,
    pub fingerprint: String,
    pub os: String,
    pub generation: u64,
    /// The manifests' git revision when known.
    pub revision: Option<String>,
    /// `None` for an adopted baseline (ovhform installed nothing).
    pub task_id: Option<u64>,
    pub started: Option<jiff::Timestamp>,
    pub finished: Option<jiff::Timestamp>,
    /// Keyed digests (HMAC with the fleet secret) of the secret values installed, for the
    /// planner to tell "changed" from "unchanged" without anyone learning a secret. `None`
    /// when the writer had no fleet secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretDigests>,
    /// The publishable request installed (secrets as placeholders): what field-by-field
    /// diffs compare against. Kept in the store only (too large for tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
}

/// Keyed digests of the secret parts of an install request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretDigests {
    /// Over every secret value but the `httpHeaders` credentials: a change forces a rebuild.
    pub secrets: String,
    /// Over the `httpHeaders` values: a change is a credential rotation, not a rebuild.
    pub credentials: String,
    /// Per secret path (JSON pointer): which secret changed. Store only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Which fleet secret keyed these digests (a keyed digest of a fixed text): a plan made
    /// with another secret says so instead of reading every digest as a changed secret.
    /// `None` in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_check: Option<String>,
}

/// Everything ovhform remembers, keyed by server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Records {
    pub installs: BTreeMap<String, InstallRecord>,
    /// Last-applied boot and settings per server (see [`AppliedState`]).
    #[serde(default)]
    pub applied: BTreeMap<String, AppliedState>,
    /// Reinstalls ovhform made that failed, per server: the server is degraded until a new
    /// install succeeds — kept here because the task history that shows it is purged in time.
    #[serde(default)]
    pub failed: BTreeMap<String, FailedInstall>,
    /// Where each believed install record comes from. Computed when the store and the tags
    /// are merged; never persisted.
    #[serde(skip)]
    pub sources: BTreeMap<String, RecordSource>,
    /// Servers whose store record and tag record disagree: the planner plans nothing
    /// destructive from them. Computed by the merge; never persisted.
    #[serde(skip)]
    pub disputes: BTreeMap<String, RecordDispute>,
}

/// A reinstall that ended in error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedInstall {
    pub task: u64,
    /// `customerError`, `ovhError` or `cancelled`.
    pub status: String,
    pub step: Option<String>,
    pub error: Option<String>,
    pub at: jiff::Timestamp,
}

/// Where a believed install record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordSource {
    /// The state store (authoritative); the tag mirror is absent (it may lag) or agrees.
    Store,
    /// Only the server's IAM tags: anyone allowed to write tags could have written it.
    Tags,
}

/// A store record and a tag record that disagree about one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDispute {
    pub store: InstallRecord,
    pub tags: InstallRecord,
}

/// A reinstall ovhform is about to POST, or has POSTed: journaled durably *before* the POST,
/// so that after a crash at any instant the next run re-attaches to the task instead of
/// wiping the server a second time. Kept until the install is recorded, or the API proves no
/// task was created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// Unique: `<server>@<created as unix ms>`.
    pub id: String,
    pub server: String,
    pub fleet: String,
    /// The reviewed fingerprint of what is installed.
    pub fingerprint: String,
    /// `sha256:` over the publishable request (no secret in it).
    pub request_digest: String,
    pub os: String,
    pub generation: u64,
    /// When the POST was about to be sent, in the API's clock (the `/auth/time` delta applied).
    pub created: jiff::Timestamp,
    /// The saved plan the reinstall came from, when there was one.
    #[serde(default)]
    pub plan_id: Option<String>,
    pub state: IntentState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum IntentState {
    /// Journaled: the POST may or may not have reached the API.
    Journaled,
    /// The API answered with (or the history shows) this task.
    Posted { task_id: u64 },
    /// Could not be resolved against the API (e.g. the history was purged while ovhform was
    /// down): nothing is POSTed for the server until a person resolves it.
    Unresolved { reason: String },
}

/// What ovhform last applied to a server's boot and settings: the desired values it converged
/// the server to (written by apply, read by the planner). It is what tells drift (live moved
/// away from what was applied, manifest unchanged) from an intended change (the manifest now
/// says something other than what was applied).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedState {
    /// The boot mode last applied; `None` = ovhform never managed this server's boot.
    #[serde(default)]
    pub boot: Option<BootMode>,
    /// The settings last applied (only the `Some` fields were managed).
    #[serde(default)]
    pub settings: Settings,
    /// The boot lease last started: which mode for which lease, and when it started. Kept
    /// after the lease ran out (with `boot` back to disk) so the same manifest does not start
    /// it again; a different `for`/`until` is a new lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<AppliedLease>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedLease {
    pub mode: BootMode,
    pub lease: BootLease,
    pub started: jiff::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12, secrets): `InstallSpec` derived `Debug`, which printed the request
    /// as POSTed — scripts, user data, headers and `{env:}` values in clear — for any log line,
    /// error or panic message that formatted a desired state.
    #[test]
    fn regression_the_debug_of_an_install_spec_shows_no_secret() {
        let spec = InstallSpec {
            os: "byolinux_64".into(),
            request: serde_json::json!({
                "operatingSystem": "byolinux_64",
                "customizations": {
                    "hostname": "web-1",
                    "imageURL": "https://img.example/x?t=ENV-SECRET-1",
                    "httpHeaders": {"Authorization": "Bearer HEADER-SECRET-2"},
                    "configDriveUserData": "VVNFUi1EQVRBLVNFQ1JFVC0z",
                    "postInstallationScript": "U0NSSVBULVNFQ1JFVC00",
                },
            }),
            fingerprint: "sha256:0".into(),
            algorithm: 2,
            generation: 1,
            os_disk_group: None,
            keep_disk_groups: BTreeSet::new(),
            secret_paths: ["/customizations/imageURL".to_string()].into(),
            credential_paths: BTreeSet::new(),
        };
        let shown = format!("{spec:?} {spec:#?}");
        for secret in [
            "ENV-SECRET-1",
            "HEADER-SECRET-2",
            "VVNFUi1EQVRBLVNFQ1JFVC0z",
            "U0NSSVBULVNFQ1JFVC00",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // The rest is still there to debug with; header names are configuration.
        for kept in ["web-1", "Authorization", "byolinux_64", "<redacted>"] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
    }
}
