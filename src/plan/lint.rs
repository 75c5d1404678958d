//! The plan lint (omicron's "blippy"): invariants a finished [`Plan`] must satisfy before it
//! is shown, saved or applied. A lint error is a planner bug, never a user error.
//!
//! Owns: the list of named checks ([`CHECKS`]), one function each over the typed plan. What
//! the types already guarantee (a reinstall has its request, a set-boot its target, a wait its
//! task) is not checked here; what remains are relations between actions and with the
//! server's presence. Must not touch: planning (it only reads the plan).

use std::collections::BTreeSet;

use serde::Serialize;

use super::redact::{ALWAYS_SECRET, is_redacted};
use super::{Action, ActionKind, Approval, BootTarget, Plan, ServerPlan};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LintError {
    pub server: String,
    /// The check's stable name, e.g. `wait-alone`.
    pub rule: &'static str,
    pub message: String,
}

impl std::fmt::Display for LintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plan lint {} on {}: {}",
            self.rule, self.server, self.message
        )
    }
}

/// One named invariant over one server's plan; it pushes a message per violation.
pub struct LintCheck {
    pub name: &'static str,
    pub check: fn(&str, &ServerPlan, &mut Vec<String>),
}

/// Every check, in the order they run.
pub const CHECKS: &[LintCheck] = &[
    LintCheck {
        name: "server-key",
        check: server_key,
    },
    LintCheck {
        name: "no-actions",
        check: no_actions,
    },
    LintCheck {
        name: "forget-scope",
        check: forget_scope,
    },
    LintCheck {
        name: "outside-universe",
        check: outside_universe,
    },
    LintCheck {
        name: "reinstall-grounded",
        check: reinstall_grounded,
    },
    LintCheck {
        name: "reinstall-runnable",
        check: reinstall_runnable,
    },
    LintCheck {
        name: "secret-shown",
        check: secret_shown,
    },
    LintCheck {
        name: "kept-groups-sent",
        check: kept_groups_sent,
    },
    LintCheck {
        name: "alone",
        check: alone,
    },
    LintCheck {
        name: "duplicate",
        check: duplicate,
    },
    LintCheck {
        name: "order",
        check: order,
    },
    LintCheck {
        name: "reboot-after-set-boot",
        check: reboot_after_set_boot,
    },
    LintCheck {
        name: "adopt-or-reinstall",
        check: adopt_or_reinstall,
    },
    LintCheck {
        name: "boot-resolved",
        check: boot_resolved,
    },
    LintCheck {
        name: "blocked-shape",
        check: blocked_shape,
    },
];

/// Run every check; an empty list means the plan is internally consistent.
pub fn lint(plan: &Plan) -> Vec<LintError> {
    let mut out = Vec::new();
    for (name, sp) in &plan.servers {
        for c in CHECKS {
            let mut messages = Vec::new();
            (c.check)(name, sp, &mut messages);
            out.extend(messages.into_iter().map(|message| LintError {
                server: name.clone(),
                rule: c.name,
                message,
            }));
        }
    }
    out
}

fn kinds(sp: &ServerPlan) -> Vec<ActionKind> {
    sp.actions.iter().map(Action::kind).collect()
}

fn server_key(name: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    if name != sp.server {
        out.push(format!("keyed as {name} but names itself {}", sp.server));
    }
}

fn no_actions(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    if sp.actions.is_empty() {
        out.push("every planned server has at least one action (noop if nothing)".into());
    }
}

/// `forget` only for a server with no manifest that ovhform knows of (record or tag).
fn forget_scope(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let p = sp.presence;
    for a in &sp.actions {
        if a.kind() == ActionKind::Forget {
            if p.desired {
                out.push("forget planned for a server that still has a manifest".into());
            }
            if !(p.recorded || p.observed) {
                out.push("forget planned for a server with no record and no tag".into());
            }
        }
    }
}

/// Every other action is about a server that is desired or live.
fn outside_universe(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let p = sp.presence;
    for a in &sp.actions {
        if a.kind() != ActionKind::Forget && !(p.desired || p.observed) {
            out.push(format!(
                "{} planned for a server neither desired nor observed",
                a.kind()
            ));
        }
    }
}

/// A reinstall (runnable or blocked) rests on an OS, fingerprint or generation difference.
fn reinstall_grounded(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    for a in &sp.actions {
        let Some(r) = a.reinstall() else { continue };
        let grounded = r.changes.iter().any(|c| c.field.starts_with("install."));
        if !grounded {
            out.push("reinstall without a difference in the install spec".into());
        }
    }
}

/// A runnable reinstall has an approval path and finished checks.
fn reinstall_runnable(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    for a in &sp.actions {
        if let Action::Reinstall(r) = a {
            if r.approval == Approval::Never {
                out.push("a runnable reinstall under policy never".into());
            }
            if !r.checks_done {
                out.push("a runnable reinstall whose checks were not done".into());
            }
        }
    }
}

/// No secret customization reaches a plan unredacted.
fn secret_shown(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    for a in &sp.actions {
        let Some(r) = a.reinstall() else { continue };
        for path in ALWAYS_SECRET {
            if let Some(v) = r.request.pointer(path) {
                let ok = match v {
                    serde_json::Value::Object(m) => m.values().all(is_redacted),
                    other => is_redacted(other),
                };
                if !ok {
                    out.push(format!("{path} is not redacted"));
                }
            }
        }
    }
}

/// A disk group shown as kept is one the request sends as `erase: false`, and every group the
/// manifest keeps is sent so: a "kept" the API would erase is the worst lie a plan can tell.
fn kept_groups_sent(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    for a in &sp.actions {
        let Some(r) = a.reinstall() else { continue };
        let sent = super::checks::kept_in_request(&r.request);
        for g in &r.disk_groups {
            let kept = g.fate == super::DiskFate::Kept;
            if kept != sent.contains(&g.id) {
                out.push(format!(
                    "disk group {} shown as {:?} but the request {} it",
                    g.id,
                    g.fate,
                    if sent.contains(&g.id) {
                        "keeps"
                    } else {
                        "erases"
                    }
                ));
            }
        }
        // A runnable one, that is: the planner blocks an inconsistent spec with a finding.
        if let Action::Reinstall(runnable) = a {
            for k in &runnable.keep_disk_groups {
                if !sent.contains(k) {
                    out.push(format!(
                        "a runnable reinstall keeps {k} but the request does not send it as erase: false"
                    ));
                }
            }
        }
    }
}

/// `wait`, `noop` and `forget` stand alone.
fn alone(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let k = kinds(sp);
    for lonely in [ActionKind::Wait, ActionKind::Noop, ActionKind::Forget] {
        if k.contains(&lonely) && k.len() > 1 {
            out.push(format!("{lonely} together with {k:?}"));
        }
    }
}

fn duplicate(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    for a in &sp.actions {
        if !seen.insert((a.kind(), a.effective_kind())) {
            out.push(format!("{} appears twice", a.effective_kind()));
        }
    }
}

fn order(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let ranks: Vec<u8> = sp
        .actions
        .iter()
        .map(|a| a.effective_kind().rank())
        .collect();
    if ranks.windows(2).any(|w| w[0] > w[1]) {
        out.push(format!("actions out of order: {:?}", kinds(sp)));
    }
}

/// A reboot only follows a boot change that runs (never a blocked one).
fn reboot_after_set_boot(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let k = kinds(sp);
    if k.contains(&ActionKind::Reboot) && !k.contains(&ActionKind::SetBoot) {
        out.push("reboot without a set-boot before it".into());
    }
}

fn adopt_or_reinstall(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    let adopt = sp.actions.iter().any(|a| a.kind() == ActionKind::Adopt);
    let reinstall = sp.actions.iter().any(|a| a.reinstall().is_some());
    if adopt && reinstall {
        out.push("adopt and reinstall are exclusive".into());
    }
}

/// A runnable set-boot PUTs a resolved boot.
fn boot_resolved(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    for a in &sp.actions {
        if let Action::SetBoot(s) = a
            && let BootTarget::Unresolved { wanted } = &s.target
        {
            out.push(format!(
                "a runnable set-boot to an unresolved boot ({wanted})"
            ));
        }
    }
}

/// A blocked action names what blocks it, blocks a real action (never another `blocked`),
/// and says why when it blocks nothing in particular.
fn blocked_shape(_: &str, sp: &ServerPlan, out: &mut Vec<String>) {
    for a in &sp.actions {
        let Action::Blocked(b) = a else { continue };
        if b.blockers.is_empty() {
            out.push(format!("blocked {} without a blocker", a.effective_kind()));
        }
        match b.action.as_deref() {
            Some(Action::Blocked(_)) => out.push("blocked inside blocked".into()),
            Some(Action::Noop(_) | Action::Wait(_) | Action::Forget(_)) => out.push(format!(
                "blocked {}: only API actions and adopt can be blocked",
                a.effective_kind()
            )),
            Some(_) => {}
            None if b.reason.trim().is_empty() => {
                out.push("blocked with no action and no reason".into())
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Settings;
    use crate::plan::{BasedOn, PlanningReport};
    use crate::plan::{
        Blocked, Blocker, Change, Destructive, Noop, Presence, Reboot, Reinstall, SetBoot,
        UpdateSettings, Wait, WaitOn,
    };

    fn plan_with(actions: Vec<Action>) -> Plan {
        let sp = ServerPlan {
            server: "s1".into(),
            presence: Presence {
                desired: true,
                observed: true,
                recorded: false,
            },
            actions,
            drift: vec![],
            findings: vec![],
            based_on: BasedOn::default(),
            lease: None,
        };
        Plan {
            format_version: crate::plan::FORMAT_VERSION,
            fleet: "default".into(),
            generated_at: jiff::Timestamp::UNIX_EPOCH,
            revision: None,
            apply_command: None,
            targets: Default::default(),
            servers: [("s1".to_string(), sp)].into(),
            findings: vec![],
            report: PlanningReport::default(),
        }
    }

    fn rules(p: &Plan) -> Vec<&'static str> {
        lint(p).into_iter().map(|e| e.rule).collect()
    }

    fn reboot() -> Action {
        Action::Reboot(Reboot { reason: "r".into() })
    }

    fn set_boot(target: BootTarget) -> Action {
        Action::SetBoot(SetBoot {
            reason: "b".into(),
            changes: vec![],
            from: "disk".into(),
            target,
            script_diff: None,
        })
    }

    fn reinstall(changes: Vec<Change>, approval: Approval, checks_done: bool) -> Action {
        Action::Reinstall(Reinstall {
            destructive: Destructive,
            reason: "because".into(),
            changes,
            os: "debian12_64".into(),
            fingerprint: "sha256:00".into(),
            generation: 1,
            request: serde_json::json!({"customizations": {"postInstallationScript": "echo hi"}}),
            disk_groups: vec![],
            keep_disk_groups: Default::default(),
            approval,
            checks_done,
        })
    }

    #[test]
    fn catches_wait_with_other_actions() {
        let p = plan_with(vec![
            Action::Wait(Wait {
                reason: "task".into(),
                on: WaitOn::Install {
                    elapsed_secs: 1,
                    steps: 2,
                    done: 0,
                },
            }),
            reboot(),
        ]);
        let r = rules(&p);
        assert!(r.contains(&"alone"), "{r:?}");
        assert!(r.contains(&"reboot-after-set-boot"), "{r:?}");
    }

    #[test]
    fn catches_ungrounded_unapproved_unchecked_reinstall_showing_a_secret() {
        let r = rules(&plan_with(vec![reinstall(vec![], Approval::Never, false)]));
        for rule in ["reinstall-grounded", "reinstall-runnable", "secret-shown"] {
            assert!(r.contains(&rule), "{rule}: {r:?}");
        }
        let fine = Change {
            field: "install.os".into(),
            old: Some("a".into()),
            new: Some("b".into()),
        };
        // Blocked, the same reinstall is not "runnable"; still grounded and redaction-checked.
        let blocked =
            reinstall(vec![fine], Approval::Never, false).block(vec![Blocker::PolicyNever {
                origin: Default::default(),
            }]);
        let r = rules(&plan_with(vec![blocked]));
        assert_eq!(r, vec!["secret-shown"], "{r:?}");
    }

    #[test]
    fn catches_order_duplicates_and_unresolved_or_empty_blocks() {
        let p = plan_with(vec![
            set_boot(BootTarget::Disk { id: 1 }),
            set_boot(BootTarget::Unresolved {
                wanted: "rescue".into(),
            }),
            Action::UpdateSettings(UpdateSettings {
                reason: "s".into(),
                changes: vec![],
                fields: Settings::default(),
            }),
            Action::Blocked(Blocked {
                reason: String::new(),
                action: None,
                blockers: vec![],
            }),
        ]);
        let r = rules(&p);
        for rule in ["duplicate", "order", "boot-resolved", "blocked-shape"] {
            assert!(r.contains(&rule), "{rule}: {r:?}");
        }
    }

    #[test]
    fn blocked_noop_and_nested_blocks_are_caught() {
        let nested = Action::Blocked(Blocked {
            reason: String::new(),
            action: Some(Box::new(reboot().block(vec![Blocker::DetailMissing]))),
            blockers: vec![Blocker::DetailMissing],
        });
        let noop = Action::Noop(Noop { reason: "x".into() }).block(vec![Blocker::DetailMissing]);
        assert!(rules(&plan_with(vec![nested])).contains(&"blocked-shape"));
        assert!(rules(&plan_with(vec![noop])).contains(&"blocked-shape"));
    }

    #[test]
    fn clean_plan_has_no_lint_and_every_check_has_a_unique_name() {
        let p = plan_with(vec![Action::noop("in sync")]);
        assert!(lint(&p).is_empty());
        let names: BTreeSet<&str> = CHECKS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), CHECKS.len());
    }
}
