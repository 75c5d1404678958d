//! What the daemon may run on its own: the approvals it hands to the executor for one pass.
//!
//! Owns: the daemon's approval rule, pure. Must not touch: I/O, planning. The planner has
//! already decided everything that makes a wipe automatic or not — `policy.reinstall: auto`,
//! inside its maintenance window, within group limits, not a tag-only record, not suspended
//! (those are `Approval::Auto` on an unblocked reinstall; everything else is blocked or needs
//! a person) — so the daemon approves exactly the unblocked `Auto` reinstalls and nothing
//! else: no `--allow-wipe-all`, no window override, no `--replace`. Boot, settings, adopt and
//! forget need no approval (the drift policy already chose what the plan corrects).

use std::collections::BTreeSet;

use crate::apply::Approvals;
use crate::plan::{Action, Approval, Plan, Severity};

/// The approvals of one pass.
pub fn approvals(plan: &Plan) -> Approvals {
    let allow_wipe: BTreeSet<String> = plan
        .servers
        .iter()
        .filter(|(_, sp)| {
            sp.actions.iter().any(|a| {
                matches!(a, Action::Reinstall(r) if matches!(r.approval, Approval::Auto { .. }))
            })
        })
        .map(|(name, _)| name.clone())
        .collect();
    Approvals {
        allow_wipe,
        ..Approvals::default()
    }
}

/// The servers the daemon leaves alone this pass: those with an error finding (the CLI
/// refuses the whole plan; the daemon keeps reconciling the others).
pub fn with_errors(plan: &Plan) -> BTreeSet<String> {
    plan.servers
        .iter()
        .filter(|(_, sp)| sp.findings.iter().any(|f| f.severity == Severity::Error))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReinstallPolicy;
    use crate::plan::{PlanInput, testkit};

    #[test]
    fn only_unblocked_auto_reinstalls_are_approved() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        for (policy, approved) in [
            (ReinstallPolicy::Auto, true),
            (ReinstallPolicy::Manual, false),
            (ReinstallPolicy::Never, false),
        ] {
            let (mut desired, observed, records) = testkit::fleet(1, now, true);
            let name = desired.servers.keys().next().unwrap().clone();
            let server = desired.servers.get_mut(&name).unwrap();
            // A new hostname: the spec changed, a reinstall is planned.
            server.install = Some(testkit::install_spec("debian12_64", "renamed"));
            server.policy.reinstall = policy;
            let plan = crate::plan::plan(&desired, &observed, &records, &PlanInput::new(now));
            assert!(
                plan.servers[&name]
                    .actions
                    .iter()
                    .any(|a| a.reinstall().is_some()),
                "a reinstall is planned ({policy:?})"
            );
            let a = approvals(&plan);
            assert_eq!(a.allow_wipe.contains(&name), approved, "{policy:?}");
            assert!(!a.allow_wipe_all && a.ignore_window.is_empty() && a.replace.is_empty());
        }
    }
}
