//! What each planning step decided, fleet-wide (omicron's planning report): every step of
//! `planner` returns its own `#[must_use]` report per server, folded here into counts.
//!
//! Owns: the report shapes and their wording. Must not touch: deciding anything. The
//! coverage part is what the plan claims to have verified — renderers print it so a plan
//! never claims more than it checked.

use serde::{Deserialize, Serialize};

/// The planning report of a whole plan, one part per step in the order the steps run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanningReport {
    pub targets: TargetsReport,
    pub forget: ForgetReport,
    pub presence: PresenceReport,
    pub tasks: TasksReport,
    pub install: InstallReport,
    pub boot: BootReport,
    pub settings: SettingsReport,
    pub gates: GatesReport,
    pub limits: LimitsReport,
    pub coverage: CoverageReport,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetsReport {
    /// Servers in the plan.
    pub planned: usize,
    /// Whether `--target` narrowed the plan.
    pub targeted: bool,
    /// `--target` names that match nothing.
    pub unknown: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetReport {
    /// Recorded or tagged servers without a manifest.
    pub forgotten: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceReport {
    /// Manifests naming a server the account does not have.
    pub not_found: usize,
    /// Manifests naming a server another fleet's record owns.
    pub other_fleet: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TasksReport {
    /// Servers with a running OVH task.
    pub waiting_on_task: usize,
    /// Servers with an installation in progress (no task listed).
    pub waiting_on_install: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallReport {
    pub adopt: usize,
    /// Reinstalls proposed (before the gates step).
    pub reinstall: usize,
    /// Of those, blocked by the install rules themselves (policy, window, invalid spec,
    /// checks not done).
    pub blocked: usize,
    pub drift: usize,
    /// Install drift corrected by a reinstall (`drift.install: correct`).
    pub drift_corrected: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootReport {
    pub set_boot: usize,
    pub reboot: usize,
    /// Boots that could not be resolved on the server.
    pub unresolved: usize,
    pub drift: usize,
    pub drift_corrected: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsReport {
    pub update: usize,
    pub drift: usize,
    pub drift_corrected: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatesReport {
    /// Servers whose API actions the gates blocked.
    pub servers_blocked: usize,
    pub suspended: usize,
    pub detail_missing: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsReport {
    /// Groups planning more reinstalls than `maxConcurrentReinstalls`.
    pub groups_over_limit: usize,
}

/// What the plan verified, and what it did not read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageReport {
    /// Live servers whose detail (running tasks, install status and history, boots,
    /// hardware, catalog) was read.
    pub detail_read: usize,
    /// Live servers planned from the fleet listing alone.
    pub detail_not_read: usize,
    /// `adopt`s planned without reading running tasks or install status: apply re-checks
    /// each of them before it records anything.
    pub adopt_unchecked: usize,
    /// Servers whose secret values could not be compared with the record (no fleet secret,
    /// or a record written without one): only their non-secret fields were compared.
    pub secrets_not_compared: usize,
    /// Whether the plan had the fleet secret to compare secrets with.
    pub fleet_key: bool,
}

impl PlanningReport {
    /// One line per step, for `-v` logs and docs.
    pub fn notes(&self) -> Vec<(&'static str, String)> {
        let t = &self.targets;
        vec![
            (
                "targets",
                format!(
                    "{} servers planned ({}){}",
                    t.planned,
                    if t.targeted {
                        "--target"
                    } else {
                        "all managed servers"
                    },
                    if t.unknown > 0 {
                        format!(", {} unknown target(s)", t.unknown)
                    } else {
                        String::new()
                    }
                ),
            ),
            (
                "forget",
                format!("{} servers without a manifest", self.forget.forgotten),
            ),
            (
                "presence",
                format!(
                    "{} manifests name a server not in the account, {} one another fleet owns",
                    self.presence.not_found, self.presence.other_fleet
                ),
            ),
            (
                "tasks",
                format!(
                    "{} waiting on a running task, {} on an installation in progress",
                    self.tasks.waiting_on_task, self.tasks.waiting_on_install
                ),
            ),
            (
                "install",
                format!(
                    "{} adopt, {} reinstall ({} blocked by install rules), {} install drift ({} corrected)",
                    self.install.adopt,
                    self.install.reinstall,
                    self.install.blocked,
                    self.install.drift,
                    self.install.drift_corrected
                ),
            ),
            (
                "boot",
                format!(
                    "{} set-boot, {} reboot, {} unresolved, {} boot drift ({} corrected)",
                    self.boot.set_boot,
                    self.boot.reboot,
                    self.boot.unresolved,
                    self.boot.drift,
                    self.boot.drift_corrected
                ),
            ),
            (
                "settings",
                format!(
                    "{} update-settings, {} settings drift ({} corrected)",
                    self.settings.update, self.settings.drift, self.settings.drift_corrected
                ),
            ),
            (
                "gates",
                format!(
                    "{} servers blocked ({} suspended, {} without detail)",
                    self.gates.servers_blocked, self.gates.suspended, self.gates.detail_missing
                ),
            ),
            (
                "limits",
                format!(
                    "{} groups over maxConcurrentReinstalls",
                    self.limits.groups_over_limit
                ),
            ),
            ("coverage", self.coverage.line()),
        ]
    }
}

impl CoverageReport {
    /// The coverage line every rendering prints: what was verified and what was not.
    pub fn line(&self) -> String {
        let mut s = format!(
            "Coverage: detail (running tasks, install status and history, boots, hardware, catalog) read for {} server(s)",
            self.detail_read
        );
        if self.detail_not_read > 0 {
            s.push_str(&format!(
                "; {} server(s) planned from the fleet listing alone: a reinstall made outside ovhform to the same OS, or a running task, is not detected for them (`--refresh` reads them too)",
                self.detail_not_read
            ));
        }
        if self.adopt_unchecked > 0 {
            s.push_str(&format!(
                "; {} adopt(s) not checked against running tasks or install history: apply re-checks each before recording a baseline",
                self.adopt_unchecked
            ));
        }
        if self.secrets_not_compared > 0 {
            s.push_str(&format!(
                "; secret values not compared for {} server(s) ({}): only their non-secret fields were",
                self.secrets_not_compared,
                if self.fleet_key {
                    "their records were written without this fleet secret"
                } else {
                    "no fleet secret: set OVHFORM_SECRET_KEY"
                }
            ));
        }
        s.push('.');
        s
    }
}
