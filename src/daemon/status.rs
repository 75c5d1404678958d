//! What the daemon says about each server: the status model of `/status` (and the
//! `ovhform_servers{status}` gauge), derived from a pass's plan and its apply report.
//!
//! Owns: [`ServerStatus`] and [`StatusDoc`] (the documented JSON, its schema from schemars:
//! docs/status.schema.json, checked by a test), and the pure derivation [`derive`]. Must not
//! touch: I/O, planning rules, what apply runs. Strings from the API (task steps, errors)
//! reach `/status` only as JSON strings, which JSON escapes; they are never interpreted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apply::{ApplyReport, Outcome};
use crate::plan::{Action, Blocker, FindingCode, Plan, ServerPlan, WaitOn};

/// One server's state, Argo CD style.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ServerStatus {
    /// Live = desired; nothing to do.
    Synced,
    /// Changes are planned and were not (all) applied in the last pass.
    OutOfSync { changes: Vec<String> },
    /// Live moved away from what ovhform applied, and policy only reports it.
    Drifted { fields: Vec<String> },
    /// An installation runs (`step` of `steps` when known).
    Reinstalling {
        task: Option<u64>,
        step: Option<usize>,
        steps: Option<usize>,
    },
    /// A reboot or another OVH task runs on it.
    Rebooting { task: Option<u64> },
    /// A reinstall waits for a person's approval (`ovhform apply --allow-wipe SERVER`).
    PendingApproval { reason: String },
    /// Something stops the change (window, limit, policy, invalid spec, …).
    Blocked { reasons: Vec<String> },
    /// Work failed or cannot be resolved; a person must look.
    Degraded { reason: String },
    /// `policy.suspend: true`.
    Suspended,
}

impl ServerStatus {
    /// The label of `ovhform_servers{status}`.
    pub fn label(&self) -> &'static str {
        match self {
            ServerStatus::Synced => "Synced",
            ServerStatus::OutOfSync { .. } => "OutOfSync",
            ServerStatus::Drifted { .. } => "Drifted",
            ServerStatus::Reinstalling { .. } => "Reinstalling",
            ServerStatus::Rebooting { .. } => "Rebooting",
            ServerStatus::PendingApproval { .. } => "PendingApproval",
            ServerStatus::Blocked { .. } => "Blocked",
            ServerStatus::Degraded { .. } => "Degraded",
            ServerStatus::Suspended => "Suspended",
        }
    }

    pub const LABELS: [&'static str; 9] = [
        "Synced",
        "OutOfSync",
        "Drifted",
        "Reinstalling",
        "Rebooting",
        "PendingApproval",
        "Blocked",
        "Degraded",
        "Suspended",
    ];
}

/// One server in `/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerState {
    #[serde(flatten)]
    pub status: ServerStatus,
    /// The manifests' git revision last applied to this server (when the manifests are a
    /// git checkout).
    pub revision: Option<String>,
    /// The last error of work on this server.
    pub last_error: Option<String>,
    /// When the last pass that read this server's detail (tasks, install status, boots)
    /// planned it.
    #[schemars(schema_with = "maybe_time")]
    pub last_verified: Option<Timestamp>,
    /// When a pass last planned it.
    #[schemars(schema_with = "time")]
    pub last_planned: Timestamp,
    /// The manifest's boot is a lease (`boot.for` / `boot.until`): when it runs out and the
    /// server returns to disk (`null`: no lease, or not started yet).
    #[schemars(schema_with = "maybe_time")]
    pub boot_lease_ends: Option<Timestamp>,
}

/// The whole `/status` document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc {
    pub fleet: String,
    /// This replica acts (holds the lease or the state lock).
    pub leader: bool,
    /// The first pass is done.
    pub ready: bool,
    /// The manifests' revision of the last pass.
    pub revision: Option<String>,
    pub last_pass: Option<PassSummary>,
    /// The manifests failed to load: the last valid desired state is used for the servers
    /// they affect.
    pub manifest_errors: Option<ManifestErrors>,
    pub servers: BTreeMap<String, ServerState>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassSummary {
    pub number: u64,
    pub reason: String,
    #[schemars(schema_with = "time")]
    pub started: Timestamp,
    pub duration_ms: u64,
    /// API requests of the pass (planning and apply).
    pub api_calls: u64,
    /// `None`: the pass succeeded.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestErrors {
    #[schemars(schema_with = "time")]
    pub since: Timestamp,
    pub summary: String,
    /// Files with errors (their servers keep their last valid desired state).
    pub files: Vec<String>,
    /// Servers planned from the last valid desired state.
    pub servers_kept: Vec<String>,
}

fn time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time"})
}

fn maybe_time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "null"], "format": "date-time"})
}

/// The JSON Schema of `/status` (docs/status.schema.json).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(StatusDoc)).unwrap_or_default()
}

/// A server's status after a pass: the apply outcome when apply ran it, else the plan.
pub fn derive(sp: &ServerPlan, outcome: Option<&Outcome>) -> ServerStatus {
    if let Some(s) = from_plan_blockers(sp) {
        return s;
    }
    // The last reinstall failed and nothing has run since: degraded until a person approves a
    // new wipe (the reinstall the plan wants waits for that), not merely out of sync.
    if matches!(outcome, None | Some(Outcome::PendingApproval))
        && let Some(f) = sp
            .findings
            .iter()
            .find(|f| f.code == FindingCode::InstallFailed)
    {
        return ServerStatus::Degraded {
            reason: f.message.clone(),
        };
    }
    if let Some(outcome) = outcome {
        match outcome {
            Outcome::Converged | Outcome::Unchanged => {}
            Outcome::PendingApproval => {
                return ServerStatus::PendingApproval {
                    reason: pending_reason(sp),
                };
            }
            Outcome::Blocked(reasons) => {
                return ServerStatus::Blocked {
                    reasons: reasons.clone(),
                };
            }
            Outcome::Waiting => return waiting(sp),
            Outcome::StoppedWaiting(_) => {
                return match sp.actions.iter().find_map(Action::reinstall) {
                    Some(_) => ServerStatus::Reinstalling {
                        task: None,
                        step: None,
                        steps: None,
                    },
                    None => ServerStatus::Rebooting { task: None },
                };
            }
            Outcome::Skipped(why) => {
                return ServerStatus::OutOfSync {
                    changes: vec![why.clone()],
                };
            }
            Outcome::Failed(why) | Outcome::Degraded(why) => {
                return ServerStatus::Degraded {
                    reason: why.clone(),
                };
            }
        }
    }
    if sp.actions.iter().any(|a| matches!(a, Action::Wait(_))) {
        return waiting(sp);
    }
    let drifted: Vec<String> = sp
        .drift
        .iter()
        .filter(|d| !d.corrected)
        .map(|d| d.field.clone())
        .collect();
    let blocked: Vec<String> = sp
        .actions
        .iter()
        .flat_map(|a| a.blockers())
        .map(|b| b.to_string())
        .collect();
    // Apply ran every action (Converged/Unchanged): only drift that policy reports is left.
    let applied = matches!(outcome, Some(Outcome::Converged | Outcome::Unchanged));
    let changes: Vec<String> = sp
        .actions
        .iter()
        .filter(|a| is_change(a))
        .map(|a| a.kind().to_string())
        .collect();
    if !blocked.is_empty() && !applied {
        ServerStatus::Blocked { reasons: blocked }
    } else if !changes.is_empty() && !applied {
        ServerStatus::OutOfSync { changes }
    } else if drifted.is_empty() {
        ServerStatus::Synced
    } else {
        ServerStatus::Drifted { fields: drifted }
    }
}

/// Whether running `a` changes the server or the records.
fn is_change(a: &Action) -> bool {
    !matches!(a, Action::Noop(_) | Action::Wait(_) | Action::Blocked(_))
}

fn from_plan_blockers(sp: &ServerPlan) -> Option<ServerStatus> {
    let blockers: Vec<&Blocker> = sp.actions.iter().flat_map(|a| a.blockers()).collect();
    if blockers
        .iter()
        .any(|b| matches!(b, Blocker::Suspended { .. }))
    {
        return Some(ServerStatus::Suspended);
    }
    if let Some(Blocker::InstallFailed { task, step, .. }) = blockers
        .iter()
        .find(|b| matches!(b, Blocker::InstallFailed { .. }))
    {
        return Some(ServerStatus::Degraded {
            reason: match step {
                Some(step) => format!("reinstall task {task} failed at step {step}"),
                None => format!("reinstall task {task} failed"),
            },
        });
    }
    None
}

fn pending_reason(sp: &ServerPlan) -> String {
    sp.actions
        .iter()
        .find_map(|a| a.reinstall().map(|r| r.approval.to_string()))
        .unwrap_or_else(|| "a reinstall needs an explicit approval naming the server".into())
}

fn waiting(sp: &ServerPlan) -> ServerStatus {
    for a in &sp.actions {
        if let Action::Wait(w) = a {
            return match &w.on {
                WaitOn::Install { steps, done, .. } => ServerStatus::Reinstalling {
                    task: None,
                    // The step running: the first not done.
                    step: Some((done + 1).min(*steps)),
                    steps: Some(*steps),
                },
                WaitOn::Task(t) if t.function.contains("reinstall") => ServerStatus::Reinstalling {
                    task: Some(t.id),
                    step: None,
                    steps: None,
                },
                WaitOn::Task(t) => ServerStatus::Rebooting { task: Some(t.id) },
            };
        }
    }
    ServerStatus::Rebooting { task: None }
}

/// A pass planned from the fleet listing alone does not see a failed installation (that is in
/// the task history): a server `previous`ly degraded whose new status is only the unapproved
/// `reinstall` it still wants stays degraded. Anything else (converged, another change, a
/// person's approval running) replaces it.
pub fn keep_degraded(previous: Option<&ServerStatus>, new: ServerStatus) -> ServerStatus {
    match (previous, &new) {
        (Some(ServerStatus::Degraded { .. }), ServerStatus::OutOfSync { changes })
            if changes.iter().all(|c| c == "reinstall") =>
        {
            previous.cloned().unwrap_or(new)
        }
        _ => new,
    }
}

/// Every server of a pass: its status from the plan and the apply report.
pub fn derive_all(plan: &Plan, report: Option<&ApplyReport>) -> BTreeMap<String, ServerStatus> {
    plan.servers
        .iter()
        .map(|(name, sp)| {
            let outcome = report.and_then(|r| r.servers.get(name));
            (name.clone(), derive(sp, outcome))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn degraded() -> ServerStatus {
        ServerStatus::Degraded {
            reason: "reinstall task 7 failed".into(),
        }
    }

    #[test]
    fn a_degraded_server_stays_degraded_while_it_only_wants_its_unapproved_reinstall() {
        let wants = |c: &[&str]| ServerStatus::OutOfSync {
            changes: c.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            keep_degraded(Some(&degraded()), wants(&["reinstall"])),
            degraded()
        );
        // Another change, a converged pass, or no history: the new status.
        let other = wants(&["reinstall", "update-settings"]);
        assert_eq!(keep_degraded(Some(&degraded()), other.clone()), other);
        assert_eq!(
            keep_degraded(Some(&degraded()), ServerStatus::Synced),
            ServerStatus::Synced
        );
        assert_eq!(
            keep_degraded(None, wants(&["reinstall"])),
            wants(&["reinstall"])
        );
        assert_eq!(
            keep_degraded(Some(&ServerStatus::Synced), wants(&["reinstall"])),
            wants(&["reinstall"])
        );
    }

    #[test]
    fn a_plan_that_read_the_failed_installation_says_degraded_until_something_runs() {
        let sp: ServerPlan = serde_json::from_value(serde_json::json!({
            "server": "ns1.eu",
            "presence": {"desired": true, "observed": true, "recorded": true},
            "actions": [],
            "drift": [],
            "findings": [{
                "severity": "error",
                "code": "install-failed",
                "message": "the last reinstall (task 7) ended in error"
            }],
            "based_on": {
                "live_os": "debian12_64", "live_boot_id": 1, "live_boot_script": null,
                "desired_fingerprint": null, "desired_generation": 0,
                "recorded_fingerprint": null, "detail_read": true
            }
        }))
        .expect("a server plan");
        for outcome in [None, Some(&Outcome::PendingApproval)] {
            assert!(
                matches!(derive(&sp, outcome), ServerStatus::Degraded { ref reason } if reason.contains("task 7")),
                "{outcome:?}"
            );
        }
        // A person approved a new installation and it converged: no longer degraded.
        assert_eq!(derive(&sp, Some(&Outcome::Converged)), ServerStatus::Synced);
    }
}
