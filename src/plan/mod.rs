//! The pure planner: desired state (manifests) + observed state (the API) + records (what
//! ovhform did before) → a [`Plan`] a reviewer can trust.
//!
//! Owns: deciding what to do and why, the safety rules, plan-time validation against the
//! catalog and hardware, the plan lint, secret redaction of everything a plan shows, and the
//! plan's saved form ([`Plan::to_json`] / [`Plan::from_json`]).
//! Must not touch: I/O of any kind, the clock (`now` comes in [`PlanInput`]), randomness,
//! async, YAML, HTTP. Everything is ordered through `BTreeMap`/`BTreeSet`, so the same inputs
//! give the same plan byte for byte.
//!
//! Layout: [`action`] holds the typed actions and blockers an executor matches on;
//! [`finding`] the one table of finding codes; [`planner`] runs the named steps per server,
//! each returning its own report ([`report`]); [`checks`] validates a reinstall against
//! catalog and hardware; [`window`] evaluates maintenance windows; [`redact`] hides secrets;
//! [`lint`] checks a finished plan's invariants (omicron's "blippy"); [`testkit`] is a pure
//! in-memory "API" used by the idempotence law and the benchmark.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Desired, Observed, Records};

pub mod action;
pub mod checks;
pub mod digest;
pub mod finding;
pub mod lint;
mod planner;
pub mod redact;
pub mod report;
pub mod testkit;
pub mod window;

pub use action::{
    Action, ActionKind, Adopt, Approval, Blocked, Blocker, BootTarget, Change, Destructive,
    DiskFate, DiskGroupFate, Forget, Noop, Reboot, Reinstall, SetBoot, TaskRef, Unchecked,
    UpdateSettings, Wait, WaitOn,
};
pub use finding::{Finding, FindingCode, Severity};
pub use lint::{LintCheck, LintError, lint};
pub use report::PlanningReport;

/// Version of the JSON shape of [`Plan`] (`--format json` and saved plans).
/// 2: actions are tagged payloads (`type` + the fields of that kind), blockers are typed.
pub const FORMAT_VERSION: u32 = 3;

/// Tag key prefix ovhform uses for its install record mirrored into IAM tags.
pub const TAG_PREFIX: &str = "ovhform:";

/// Everything the planner needs besides the three states. Plain data: the caller fills it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    /// "Now", injected: maintenance windows, `endOfInstall` and adoption times use it.
    pub now: jiff::Timestamp,
    /// `--target SERVER…`: plan only these servers. Empty = every server.
    pub targets: BTreeSet<String>,
    /// The fleet this plan is for: only its records are this plan's to act on.
    pub fleet: String,
    /// The fleet secret that keys the digests of secret values. `None`: secrets are not
    /// compared, and the plan says so. Never serialised.
    #[serde(skip)]
    pub fleet_key: Option<digest::FleetKey>,
    /// `--take-over SERVER…`: servers recorded by another fleet that this plan may manage.
    pub take_over: BTreeSet<String>,
    /// Which API route apply will install with: the plan refuses what that route cannot do.
    pub install_route: InstallRoute,
    /// `--replace SERVER…`: rebuild these servers with the same spec (Terraform's
    /// `-replace`): a reinstall is planned even when the spec is unchanged.
    #[serde(default)]
    pub replace: BTreeSet<String>,
    /// `--refresh`: read every live server's detail (running tasks, install history, …), not
    /// only those with an intended change, so the plan verifies the whole fleet.
    #[serde(default)]
    pub refresh: bool,
    /// Servers whose detail is read this run whatever the listing says: the daemon's
    /// round-robin verification (a reinstall made outside ovhform shows only in the detail).
    #[serde(default)]
    pub verify: BTreeSet<String>,
    /// Whose planned interventions the pipeline reads (see [`needs_interventions`]).
    #[serde(default)]
    pub intervention_reads: InterventionReads,
    /// The manifests' revision (git commit) the desired state was read from, if known.
    pub revision: Option<String>,
    /// The exact command that applies this plan, printed by every rendering when the plan
    /// has changes and no errors. `None` prints none: there is no command to run yet, or
    /// this plan cannot be applied as it is (the caller decides; the planner never invents
    /// one).
    pub apply_command: Option<String>,
}

impl PlanInput {
    /// An input planning every server at `now`, suggesting no command.
    pub fn new(now: jiff::Timestamp) -> Self {
        PlanInput {
            now,
            targets: BTreeSet::new(),
            fleet: crate::model::DEFAULT_FLEET.to_string(),
            fleet_key: None,
            take_over: BTreeSet::new(),
            install_route: InstallRoute::Reinstall,
            refresh: false,
            verify: BTreeSet::new(),
            intervention_reads: InterventionReads::default(),
            replace: BTreeSet::new(),
            revision: None,
            apply_command: None,
        }
    }
}

/// Which reinstalls the pipeline reads OVH's planned interventions for. A policy-`auto`
/// reinstall is never approved without them; one needing `--allow-wipe` gets a warning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterventionReads {
    /// Every reinstall that may run this apply (`plan`, `apply`: a person may approve one).
    #[default]
    Reinstalls,
    /// Only the automatic ones (the daemon, which approves nothing else).
    Automatic,
}

/// The API route that installs: `POST /reinstall`, or the legacy `POST /install/start`
/// (which cannot keep disk groups nor take a custom layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallRoute {
    #[default]
    Reinstall,
    Legacy,
}

/// The planner's output: per server, an ordered list of actions, the drift seen, and the
/// findings of plan-time validation, plus what the plan was based on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// The fleet the plan is for (apply refuses a plan of another fleet).
    pub fleet: String,
    pub generated_at: jiff::Timestamp,
    pub revision: Option<String>,
    /// See [`PlanInput::apply_command`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_command: Option<String>,
    /// `--target` as given (empty = all).
    pub targets: BTreeSet<String>,
    pub servers: BTreeMap<String, ServerPlan>,
    /// Findings not tied to one server (unknown targets, group limits).
    pub findings: Vec<Finding>,
    /// What each planning step decided and why, in the order the steps ran.
    pub report: PlanningReport,
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
    /// The manifest's boot is a lease (`boot.for` / `boot.until`): where it stands. Apply
    /// records its start once the server converged; the daemon requeues at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeasePlan>,
}

/// What the store remembers of a server once it converged to its manifest (apply writes it,
/// the planner reads it back): the boot and settings applied and, for a boot lease, which
/// lease and when it started (`now`, unless the plan saw it started) — or disk once it ran
/// out.
pub fn applied_after(
    ds: &crate::model::DesiredServer,
    lease: Option<&LeasePlan>,
    now: jiff::Timestamp,
) -> crate::model::AppliedState {
    use crate::model::{AppliedLease, AppliedState, BootMode};
    let (boot, lease) = match (&ds.boot, lease) {
        (Some(b), Some(l)) if b.lease == Some(l.lease) => {
            let boot = if l.state == LeaseState::Ended {
                BootMode::Disk
            } else {
                b.mode.clone()
            };
            let lease = AppliedLease {
                mode: b.mode.clone(),
                lease: l.lease,
                started: l.started.unwrap_or(now),
            };
            (Some(boot), Some(lease))
        }
        (b, _) => (b.as_ref().map(|b| b.mode.clone()), None),
    };
    AppliedState {
        boot,
        settings: ds.settings.clone(),
        lease,
    }
}

/// A boot lease at plan time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeasePlan {
    /// The leased mode, described (an iPXE script by its digest, never in full).
    pub mode: String,
    pub lease: crate::model::BootLease,
    pub state: LeaseState,
    /// When the lease started (recorded by apply); `None` = not yet.
    pub started: Option<jiff::Timestamp>,
    /// When it ends; `None` for a `for` lease that has not started.
    pub ends: Option<jiff::Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeaseState {
    /// The server is not in the leased mode yet: this plan sets it.
    NotStarted,
    /// The server is in the leased mode and the lease runs until `ends`.
    Active,
    /// The lease ran out: the server returns to (or stays on) disk.
    Ended,
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

/// Counts for summaries (Terraform-like).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub servers: usize,
    pub adopt: usize,
    pub reinstall: usize,
    /// Reinstalls waiting only for their maintenance window: still wipes.
    pub deferred_reinstall: usize,
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
            if sp.actions.iter().all(|a| a.kind() == ActionKind::Noop) {
                s.unchanged += 1;
            }
            if !sp.drift.is_empty() {
                s.drifted += 1;
            }
            for a in &sp.actions {
                if a.deferred_wipe().is_some() {
                    s.deferred_reinstall += 1;
                }
                match a.kind() {
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
            .any(|a| a.kind() != ActionKind::Noop)
    }

    /// Any error-level finding (policy `never` on a needed reinstall, invalid spec, …).
    pub fn has_errors(&self) -> bool {
        self.all_findings().any(|f| f.severity == Severity::Error)
    }

    /// The plan as pretty JSON with a `summary` object and a `checksum` (`--format json` and
    /// saved plans): stable key order (structs and `BTreeMap`s only), trailing newline.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Saved<'a> {
            #[serde(flatten)]
            plan: &'a Plan,
            summary: Summary,
            checksum: String,
        }
        let v = Saved {
            plan: self,
            summary: self.summary(),
            checksum: self.checksum(),
        };
        // Plain structs, enums and maps with string keys: serialising cannot fail.
        let mut s = serde_json::to_string_pretty(&v)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the plan: {e}\"}}"));
        s.push('\n');
        s
    }

    /// `sha256:<hex>` of the plan's compact JSON with its summary. A saved plan carries it so
    /// a file damaged after it was written (a truncated copy, a flipped byte that still
    /// parses) is refused rather than applied as something nobody reviewed. It is not a
    /// signature: whoever can edit the file can recompute it, and the lint and per-server
    /// fingerprints are what stand against deliberate edits.
    fn checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        #[derive(Serialize)]
        struct Summed<'a> {
            #[serde(flatten)]
            plan: &'a Plan,
            summary: Summary,
        }
        let bytes = serde_json::to_vec(&Summed {
            plan: self,
            summary: self.summary(),
        })
        .unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    /// Load a saved plan, refusing other format versions and a content that does not match
    /// its checksum (the `summary` key written by [`Plan::to_json`] is recomputed, not read).
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let mut v: serde_json::Value = serde_json::from_str(text).map_err(PlanError::Parse)?;
        let found = v.get("format_version").and_then(|x| x.as_u64());
        if found != Some(u64::from(FORMAT_VERSION)) {
            return Err(PlanError::FormatVersion {
                found,
                expected: FORMAT_VERSION,
            });
        }
        // Decoded before the checksum is compared: a damaged file says what is wrong with it,
        // and the decoder stays reachable for fuzzing (docs/fuzzing.md).
        let written = v.as_object_mut().and_then(|m| m.remove("checksum"));
        let plan: Plan = serde_json::from_value(v).map_err(PlanError::Parse)?;
        match written {
            Some(serde_json::Value::String(c)) if c == plan.checksum() => {}
            Some(_) => return Err(PlanError::Checksum { missing: false }),
            None => return Err(PlanError::Checksum { missing: true }),
        }
        Ok(plan)
    }
}

/// Errors of the plan room. Planning itself cannot fail (problems become findings and
/// `blocked` actions); only reading a saved plan can.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    // serde's message quotes the file's text (an unknown variant, a field name): escaped, and
    // not a `source`, which a report would print again, raw, as the cause.
    #[error(
        "saved plan is not valid JSON for this ovhform version: {}",
        crate::escape::line(&.0.to_string())
    )]
    #[diagnostic(
        code(ovhform::plan::parse),
        help("the file is truncated, edited or not a plan; re-run `ovhform plan --out FILE`")
    )]
    Parse(serde_json::Error),
    #[error("saved plan has format_version {found:?}, this ovhform reads {expected}")]
    #[diagnostic(
        code(ovhform::plan::format_version),
        help("a different ovhform version wrote it; re-run `ovhform plan --out FILE`")
    )]
    FormatVersion { found: Option<u64>, expected: u32 },
    #[error("{}", if *missing { "saved plan has no checksum" } else { "saved plan does not match its checksum: it changed after `ovhform plan` wrote it" })]
    #[diagnostic(
        code(ovhform::plan::checksum),
        help(
            "the file was damaged or edited; re-run `ovhform plan --out FILE` and review it again"
        )
    )]
    Checksum { missing: bool },
}

/// Plan the fleet. Pure: same inputs, same plan. See the module docs and docs/plan.md.
pub fn plan(desired: &Desired, observed: &Observed, records: &Records, input: &PlanInput) -> Plan {
    planner::plan(desired, observed, records, input)
}

/// The servers whose planned interventions decide this plan: a reinstall that nothing else
/// blocks and whose server's interventions were not read — an `auto` one (blocked only by
/// `interventions-unchecked`), and under [`InterventionReads::Reinstalls`] one awaiting an
/// explicit approval. The pipeline reads those and plans again; everything else costs no call.
pub fn needs_interventions(
    plan: &Plan,
    observed: &Observed,
    reads: InterventionReads,
) -> BTreeSet<String> {
    planner::needs_interventions(plan, observed, reads)
}

/// The servers the planner may act on: any difference in OS, fingerprint, generation, boot
/// or settings. `observe` reads tasks, boots, hardware and the catalog only for these, so an
/// unchanged fleet costs one listing whatever its size.
pub fn needs_detail(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> BTreeSet<String> {
    planner::needs_detail(desired, observed, records, input)
}
