//! The plan lint (omicron's "blippy"): invariants a finished [`Plan`] must satisfy before it
//! is shown, saved or applied. A lint error is a planner bug, never a user error.
//!
//! Owns: the invariant list. Must not touch: planning (it only reads the plan).

use std::collections::BTreeSet;

use serde::Serialize;

use super::redact::{ALWAYS_SECRET, is_redacted};
use super::{ActionKind, Approval, Plan};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LintError {
    pub server: String,
    /// Stable rule name, e.g. `wait-alone`.
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

/// Check every invariant; an empty list means the plan is internally consistent.
pub fn lint(plan: &Plan) -> Vec<LintError> {
    let mut out = Vec::new();
    for (name, sp) in &plan.servers {
        let mut err = |rule: &'static str, message: String| {
            out.push(LintError {
                server: name.clone(),
                rule,
                message,
            });
        };
        if name != &sp.server {
            err(
                "server-key",
                format!("keyed as {name} but names itself {}", sp.server),
            );
        }
        let p = sp.presence;
        if sp.actions.is_empty() {
            err(
                "no-actions",
                "every planned server has at least one action (noop if nothing)".into(),
            );
        }
        let kinds: Vec<ActionKind> = sp.actions.iter().map(|a| a.kind).collect();
        for a in &sp.actions {
            match a.kind {
                ActionKind::Forget if p.desired => err(
                    "forget-desired",
                    "forget planned for a server that still has a manifest".into(),
                ),
                ActionKind::Forget if !(p.recorded || p.observed) => err(
                    "forget-unknown",
                    "forget planned for a server with no record and no tag".into(),
                ),
                ActionKind::Forget => {}
                _ if !(p.desired || p.observed) => err(
                    "outside-universe",
                    format!(
                        "{} planned for a server neither desired nor observed",
                        a.kind
                    ),
                ),
                _ => {}
            }
            if a.destructive != (a.kind == ActionKind::Reinstall) {
                err(
                    "destructive-flag",
                    format!("{} has destructive = {}", a.kind, a.destructive),
                );
            }
            if (a.kind == ActionKind::Blocked) == a.blocked_by.is_empty() {
                err(
                    "blocked-by",
                    format!("{} with blocked_by {:?}", a.kind, a.blocked_by),
                );
            }
            if a.blocks.is_some() && a.kind != ActionKind::Blocked {
                err("blocks", format!("{} with blocks = {:?}", a.kind, a.blocks));
            }
            if a.reason.trim().is_empty() {
                err("reason", format!("{} has no reason", a.kind));
            }
            if a.effective_kind() == ActionKind::Reinstall {
                let grounded = a.changes.iter().any(|c| {
                    matches!(
                        c.field.as_str(),
                        "install.fingerprint" | "install.os" | "install.generation"
                    )
                });
                if !grounded {
                    err(
                        "reinstall-grounded",
                        "reinstall without a fingerprint, OS or generation difference".into(),
                    );
                }
                match &a.reinstall {
                    None => err(
                        "reinstall-detail",
                        "reinstall without its request and disk groups".into(),
                    ),
                    Some(r) => {
                        let approved = r.approval != Approval::None;
                        if a.kind == ActionKind::Reinstall && (!approved || !r.checks_done) {
                            err(
                                "reinstall-approval",
                                "a runnable reinstall needs an approval path and done checks"
                                    .into(),
                            );
                        }
                        for path in ALWAYS_SECRET {
                            if let Some(v) = r.request.pointer(path) {
                                let ok = match v {
                                    serde_json::Value::Object(m) => m.values().all(is_redacted),
                                    other => is_redacted(other),
                                };
                                if !ok {
                                    err("secret-shown", format!("{path} is not redacted"));
                                }
                            }
                        }
                    }
                }
            }
        }
        if kinds.contains(&ActionKind::Wait) && kinds.len() > 1 {
            err("wait-alone", format!("wait together with {kinds:?}"));
        }
        if kinds.contains(&ActionKind::Noop) && kinds.len() > 1 {
            err("noop-alone", format!("noop together with {kinds:?}"));
        }
        if kinds.contains(&ActionKind::Forget) && kinds.len() > 1 {
            err("forget-alone", format!("forget together with {kinds:?}"));
        }
        let mut seen = BTreeSet::new();
        for a in &sp.actions {
            if !seen.insert((a.kind, a.blocks)) {
                err("duplicate", format!("{} appears twice", a.kind));
            }
        }
        let ranks: Vec<u8> = sp
            .actions
            .iter()
            .map(|a| a.effective_kind().rank())
            .collect();
        if ranks.windows(2).any(|w| w[0] > w[1]) {
            err("order", format!("actions out of order: {kinds:?}"));
        }
        if kinds.contains(&ActionKind::Reboot) && !kinds.contains(&ActionKind::SetBoot) {
            err(
                "reboot-after-set-boot",
                "reboot without a set-boot before it".into(),
            );
        }
        if kinds.contains(&ActionKind::Adopt) && kinds.contains(&ActionKind::Reinstall) {
            err(
                "adopt-or-reinstall",
                "adopt and reinstall are exclusive".into(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, BasedOn, Presence, ServerPlan};

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
        };
        Plan {
            format_version: 1,
            generated_at: jiff::Timestamp::UNIX_EPOCH,
            revision: None,
            apply_command: "ovhform apply".into(),
            targets: Default::default(),
            servers: [("s1".to_string(), sp)].into(),
            findings: vec![],
            steps: vec![],
        }
    }

    fn rules(p: &Plan) -> Vec<&'static str> {
        lint(p).into_iter().map(|e| e.rule).collect()
    }

    #[test]
    fn catches_wait_with_other_actions() {
        let p = plan_with(vec![
            Action::new(ActionKind::Wait, "task"),
            Action::new(ActionKind::Reboot, "r"),
        ]);
        let r = rules(&p);
        assert!(r.contains(&"wait-alone"), "{r:?}");
        assert!(r.contains(&"reboot-after-set-boot"), "{r:?}");
    }

    #[test]
    fn catches_ungrounded_reinstall_and_bad_flags() {
        let mut a = Action::new(ActionKind::Reinstall, "because");
        a.destructive = false;
        let r = rules(&plan_with(vec![a]));
        assert!(r.contains(&"reinstall-grounded"), "{r:?}");
        assert!(r.contains(&"destructive-flag"), "{r:?}");
        assert!(r.contains(&"reinstall-detail"), "{r:?}");
    }

    #[test]
    fn catches_order_duplicates_and_blocked_without_reason() {
        let p = plan_with(vec![
            Action::new(ActionKind::SetBoot, "b"),
            Action::new(ActionKind::SetBoot, "b"),
            Action::new(ActionKind::UpdateSettings, "s"),
            Action::new(ActionKind::Blocked, "x"),
        ]);
        let r = rules(&p);
        assert!(r.contains(&"duplicate"), "{r:?}");
        assert!(r.contains(&"order"), "{r:?}");
        assert!(r.contains(&"blocked-by"), "{r:?}");
    }

    #[test]
    fn clean_plan_has_no_lint() {
        let p = plan_with(vec![Action::new(ActionKind::Noop, "in sync")]);
        assert!(lint(&p).is_empty());
    }
}
