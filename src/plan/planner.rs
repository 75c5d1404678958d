//! The planning steps, run per server in a fixed order, each leaving its reasons in the
//! actions it produces (omicron's `do_plan` habit):
//!
//! 1. `targets`  — which servers are planned (desired ∪ recorded ∪ tagged, `--target`).
//! 2. `forget`   — recorded/tagged servers without a manifest: stop managing, touch nothing.
//! 3. `presence` — a manifest for a server the account does not have → `blocked`.
//! 4. `tasks`    — a pending OVH task → `wait`, and nothing else for that server.
//! 5. `install`  — adopt / reinstall / install drift, checked against catalog + hardware.
//! 6. `boot`     — boot mode vs live boot (by kernel, by id, iPXE byte-exact), reboot.
//! 7. `settings` — only fields the manifest sets; drift vs intended change.
//! 8. `gates`    — approval (policy, window, suspend, missing detail) → `blocked`.
//! 9. `limits`   — group reinstall limits, reported (enforced by apply).
//!
//! Must not touch: I/O, the clock, anything outside its arguments.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{
    AppliedState, BootMode, BootType, Desired, DesiredServer, DriftAction, InstallRecord,
    InstallSpec, Interventions, Observed, ObservedServer, RecordDispute, RecordSource, Records,
    ReinstallPolicy, Settings, TaskStatus,
};

use super::action::{
    Action, ActionKind, Adopt, Approval, Blocked, Blocker, BootTarget, Change, Destructive, Forget,
    Reboot, Reinstall, SetBoot, TaskRef, Unchecked, UpdateSettings, Wait, WaitOn,
};
use super::checks::check_reinstall;
use super::digest;
use super::finding::{Finding, FindingCode};
use super::redact::hash_len;
use super::report::{
    BootReport, GatesReport, InstallReport, PlanningReport, SettingsReport, TasksReport,
};
use super::window::{WindowState, evaluate};
use super::{
    BasedOn, Drift, LeasePlan, LeaseState, Plan, PlanInput, Presence, ServerPlan, TAG_PREFIX,
};

pub(super) fn plan(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> Plan {
    let mut findings = Vec::new();
    let mut report = PlanningReport::default();
    let names = universe(desired, observed, records, input);
    report.targets.planned = names.len();
    report.targets.targeted = !input.targets.is_empty();
    for t in &input.targets {
        if !names.contains(t) {
            report.targets.unknown += 1;
            findings.push(Finding::new(
                FindingCode::TargetUnknown,
                format!(
                    "--target {t}: no manifest, record or live server has this name; check the spelling"
                ),
                None,
            ));
        }
    }
    let mut servers = BTreeMap::new();
    for name in &names {
        let (sp, steps) = plan_server(name, desired, observed, records, input);
        steps.fold_into(&mut report);
        servers.insert(name.clone(), sp);
    }
    report.limits.groups_over_limit = group_limits(desired, &servers, &mut findings);
    let secrets_not_compared = report.coverage.secrets_not_compared;
    report.coverage = super::report::CoverageReport {
        secrets_not_compared,
        fleet_key: input.fleet_key.is_some(),
        ..coverage(&servers, observed)
    };
    Plan {
        format_version: super::FORMAT_VERSION,
        fleet: input.fleet.clone(),
        generated_at: input.now,
        revision: input.revision.clone(),
        apply_command: input.apply_command.clone(),
        targets: input.targets.clone(),
        servers,
        findings,
        report,
    }
}

/// What each step did for one server (each step's own report), folded into the plan's.
#[derive(Default)]
#[must_use]
struct ServerSteps {
    forget: bool,
    other_fleet: bool,
    not_found: bool,
    secrets_not_compared: bool,
    tasks: TasksReport,
    install: InstallReport,
    boot: BootReport,
    settings: SettingsReport,
    gates: GatesReport,
}

impl ServerSteps {
    fn fold_into(self, r: &mut PlanningReport) {
        r.forget.forgotten += usize::from(self.forget);
        r.presence.not_found += usize::from(self.not_found);
        r.presence.other_fleet += usize::from(self.other_fleet);
        r.coverage.secrets_not_compared += usize::from(self.secrets_not_compared);
        let t = &mut r.tasks;
        t.waiting_on_task += self.tasks.waiting_on_task;
        t.waiting_on_install += self.tasks.waiting_on_install;
        let i = &mut r.install;
        i.adopt += self.install.adopt;
        i.reinstall += self.install.reinstall;
        i.blocked += self.install.blocked;
        i.drift += self.install.drift;
        i.drift_corrected += self.install.drift_corrected;
        let b = &mut r.boot;
        b.set_boot += self.boot.set_boot;
        b.reboot += self.boot.reboot;
        b.unresolved += self.boot.unresolved;
        b.drift += self.boot.drift;
        b.drift_corrected += self.boot.drift_corrected;
        let s = &mut r.settings;
        s.update += self.settings.update;
        s.drift += self.settings.drift;
        s.drift_corrected += self.settings.drift_corrected;
        let g = &mut r.gates;
        g.servers_blocked += self.gates.servers_blocked;
        g.suspended += self.gates.suspended;
        g.detail_missing += self.gates.detail_missing;
    }
}

/// What the plan verified: live servers planned with and without their detail.
fn coverage(
    servers: &BTreeMap<String, ServerPlan>,
    observed: &Observed,
) -> super::report::CoverageReport {
    let mut c = super::report::CoverageReport::default();
    for (name, sp) in servers {
        let Some(live) = observed.servers.get(name) else {
            continue;
        };
        if live.detail.is_some() {
            c.detail_read += 1;
        } else {
            c.detail_not_read += 1;
            c.adopt_unchecked += sp
                .actions
                .iter()
                .filter(|a| a.kind() == ActionKind::Adopt)
                .count();
        }
    }
    c
}

fn has_ovhform_tag(s: &ObservedServer) -> bool {
    s.tags.keys().any(|k| k.starts_with(TAG_PREFIX))
}

/// The fleet a server's `ovhform:` tags name (format-1 tags name none: the default fleet).
fn tag_fleet(s: &ObservedServer) -> &str {
    s.tags
        .get(FLEET_TAG)
        .map_or(crate::model::DEFAULT_FLEET, String::as_str)
}

const FLEET_TAG: &str = "ovhform:fleet";

/// Whether this plan may act on a server recorded by `fleet`.
fn ours(fleet: &str, server: &str, input: &PlanInput) -> bool {
    fleet == input.fleet || input.take_over.contains(server)
}

/// Every server the plan is about: desired, recorded, or carrying ovhform's tag. Live servers
/// ovhform never managed are not in the plan at all.
fn universe(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> BTreeSet<String> {
    // Another fleet's servers are not this plan's (two repositories never fight over one
    // server); a manifest naming one is reported by the owner step.
    let mut names: BTreeSet<String> = desired.servers.keys().cloned().collect();
    names.extend(
        records
            .installs
            .iter()
            .filter(|(server, r)| ours(&r.fleet, server, input))
            .map(|(server, _)| server.clone()),
    );
    names.extend(records.applied.keys().cloned());
    names.extend(
        observed
            .servers
            .values()
            .filter(|s| has_ovhform_tag(s) && ours(tag_fleet(s), &s.name, input))
            .map(|s| s.name.clone()),
    );
    if !input.targets.is_empty() {
        names.retain(|n| input.targets.contains(n));
    }
    names
}

pub(super) fn needs_interventions(
    plan: &Plan,
    observed: &Observed,
    reads: super::InterventionReads,
) -> BTreeSet<String> {
    let unchecked = [Blocker::InterventionsUnchecked {
        why: Unchecked::NotRead,
    }];
    plan.servers
        .iter()
        .filter(|(name, _)| {
            observed
                .servers
                .get(*name)
                .and_then(|s| s.detail.as_ref())
                .is_some_and(|d| d.interventions == Interventions::NotRead)
        })
        .filter(|(_, sp)| {
            sp.actions.iter().any(|a| match a {
                Action::Blocked(b) => {
                    a.reinstall().is_some() && b.blockers.as_slice() == unchecked.as_slice()
                }
                Action::Reinstall(r) => {
                    reads == super::InterventionReads::Reinstalls
                        && matches!(r.approval, Approval::AllowWipe { .. })
                }
                _ => false,
            })
        })
        .map(|(name, _)| name.clone())
        .collect()
}

pub(super) fn needs_detail(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> BTreeSet<String> {
    desired
        .servers
        .iter()
        .filter(|(name, _)| input.targets.is_empty() || input.targets.contains(*name))
        .filter_map(|(name, ds)| {
            let live = observed.servers.get(name)?;
            if input.refresh || input.replace.contains(name) || input.verify.contains(name) {
                return Some(name.clone());
            }
            let install_differs =
                ds.install
                    .as_ref()
                    .is_some_and(|spec| match records.installs.get(name) {
                        // No record and already the desired OS is an adopt, decided from the
                        // listing alone; apply re-checks tasks and install status just before
                        // it records the baseline, so a first plan stays a handful of calls.
                        None => live.os != spec.os,
                        Some(r) => {
                            r.fingerprint != spec.fingerprint
                                || r.generation != spec.generation
                                || r.os != spec.os
                                || live.os != spec.os
                                || secrets_differ(r, spec, input)
                        }
                    });
            let boot_differs = ds
                .boot
                .as_ref()
                .is_some_and(|b| !boot_matches(&b.mode, live));
            let settings_differ = settings_fields(&ds.settings, live)
                .iter()
                .any(|f| !f.in_sync());
            (install_differs || boot_differs || settings_differ).then(|| name.clone())
        })
        .collect()
}

/// With the fleet secret, whether the record's digest of the secret values differs from the
/// spec's (credentials excluded: a rotation needs no detail).
fn secrets_differ(r: &InstallRecord, spec: &InstallSpec, input: &PlanInput) -> bool {
    match (&input.fleet_key, &r.secrets) {
        (Some(key), Some(old)) if !key.is_other_than(old) => {
            digest::secret_digests(spec, key).secrets != old.secrets
        }
        _ => false,
    }
}

fn plan_server(
    name: &str,
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> (ServerPlan, ServerSteps) {
    let ds = desired.servers.get(name);
    let live = observed.servers.get(name);
    let rec = records.installs.get(name);
    let mut steps = ServerSteps::default();
    let mut sp = ServerPlan {
        server: name.to_string(),
        presence: Presence {
            desired: ds.is_some(),
            observed: live.is_some(),
            recorded: rec.is_some() || records.applied.contains_key(name),
        },
        actions: Vec::new(),
        drift: Vec::new(),
        findings: Vec::new(),
        based_on: BasedOn {
            live_os: live.map(|l| l.os.clone()),
            live_boot_id: live.and_then(|l| l.boot_id),
            live_boot_script: live
                .and_then(|l| l.boot_script.as_ref())
                .map(|s| hash_len(s.as_bytes())),
            desired_fingerprint: ds
                .and_then(|d| d.install.as_ref())
                .map(|i| i.fingerprint.clone()),
            desired_generation: ds.and_then(|d| d.install.as_ref()).map(|i| i.generation),
            recorded_fingerprint: rec.map(|r| r.fingerprint.clone()),
            detail_read: live.is_some_and(|l| l.detail.is_some()),
        },
        lease: None,
    };

    // Step: forget.
    let Some(ds) = ds else {
        steps.forget = true;
        sp.actions.push(Action::Forget(Forget {
            reason: "no manifest for this server any more: ovhform stops managing it and drops its record; the server itself is not touched".into(),
            changes: rec
                .map(|r| Change {
                    field: "record".into(),
                    old: Some(format!("{} {}", r.os, short_fp(&r.fingerprint))),
                    new: None,
                })
                .into_iter()
                .collect(),
        }));
        return (sp, steps);
    };

    // Step: owner. Another fleet's record: this plan does not act on the server unless told
    // to take it over.
    if let Some(r) = rec
        && !ours(&r.fleet, name, input)
    {
        steps.other_fleet = true;
        sp.actions.push(Action::Blocked(Blocked {
            reason: "the manifest names a server another fleet manages".into(),
            action: None,
            blockers: vec![Blocker::OtherFleet {
                fleet: r.fleet.clone(),
            }],
        }));
        sp.findings.push(Finding::new(
            FindingCode::OwnedByOtherFleet,
            format!(
                "server {name} is recorded by fleet {:?}, not this plan's fleet {:?}; remove the manifest, or take the server over with --take-over {name}",
                r.fleet, input.fleet
            ),
            Some(ds.origin.clone()),
        ));
        return (sp, steps);
    }

    // Step: presence.
    let Some(live) = live else {
        steps.not_found = true;
        sp.actions.push(Action::Blocked(Blocked {
            reason: "the manifest names a server this account does not have".into(),
            action: None,
            blockers: vec![Blocker::ServerNotFound {
                origin: ds.origin.clone(),
            }],
        }));
        sp.findings.push(Finding::new(
            FindingCode::ServerNotFound,
            format!("server {name} is not in the account"),
            Some(ds.origin.clone()),
        ));
        return (sp, steps);
    };

    // What observe could not make sense of is said, whatever else is planned.
    for what in &live.anomalies {
        sp.findings.push(Finding::new(
            FindingCode::ObservedAnomaly,
            format!("the API's data for this server made no sense: {what}; nothing is done to it"),
            Some(ds.origin.clone()),
        ));
    }

    // Step: tasks. A running task owns the server: nothing else is planned for it.
    if let Some(wait) = tasks_step(live, &mut steps.tasks) {
        sp.actions.push(Action::Wait(wait));
        return (sp, steps);
    }

    let failed = failed_install(live).or_else(|| {
        // The history may have been purged since: the store remembers ovhform's failures.
        records.failed.get(name).map(|f| FailedInstall {
            task: f.task,
            status: match f.status.as_str() {
                "customerError" => TaskStatus::CustomerError,
                "cancelled" => TaskStatus::Cancelled,
                _ => TaskStatus::OvhError,
            },
            step: f.step.clone(),
            error: f.error.clone(),
        })
    });
    let mut pl = ServerPlanner {
        name,
        ds,
        live,
        desired,
        observed,
        input,
        sp,
        source: records.sources.get(name).copied(),
        dispute: records.disputes.get(name),
        failed,
        secrets_not_compared: false,
        refused: false,
    };
    let rec = pl.believe(rec);
    steps.install = pl.install_step(rec);
    steps.secrets_not_compared = pl.secrets_not_compared;
    steps.boot = pl.boot_step(records.applied.get(name));
    steps.settings = pl.settings_step(records.applied.get(name).map(|a| &a.settings));
    steps.gates = pl.gates_step();
    let mut sp = pl.sp;
    if sp.actions.is_empty() {
        let reason = if sp.drift.is_empty() {
            "in sync with the manifest"
        } else {
            "no change planned; drift is reported, the drift policy does not correct it"
        };
        sp.actions.push(Action::noop(reason));
    }
    // Stable sort: ties keep the order the steps produced them in.
    sp.actions.sort_by_key(|a| a.effective_kind().rank());
    (sp, steps)
}

/// A task the API lists but answers 404 for: a fresh one (the API takes a while to serve new
/// tasks) or a purged old one. Without its dates, "fresh" means newer than every task that
/// could be read; and when the install status could not be read either, it may be running.
fn unreadable_may_run(t: &crate::model::Task, d: &crate::model::ObservedDetail) -> bool {
    if t.status != TaskStatus::Unreadable {
        return false;
    }
    let newest_readable = d
        .tasks
        .iter()
        .filter(|x| x.status != TaskStatus::Unreadable)
        .map(|x| x.id)
        .max();
    d.install_status_unknown || newest_readable.is_none_or(|n| t.id > n)
}

/// The oldest pending task, else a task that may be one (listed, answering 404), else an
/// installation in progress, as a `wait`.
fn tasks_step(live: &ObservedServer, report: &mut TasksReport) -> Option<Wait> {
    let detail = live.detail.as_ref()?;
    let mut pending: Vec<_> = detail
        .tasks
        .iter()
        .filter(|t| t.status.is_pending() || unreadable_may_run(t, detail))
        .collect();
    pending.sort_by_key(|t| t.id);
    if let Some(t) = pending.first() {
        report.waiting_on_task += 1;
        let others = pending.len() - 1;
        let state = if t.status == TaskStatus::Unreadable {
            "listed but answering 404 (fresh tasks do for a few minutes)".to_string()
        } else {
            task_status(t.status)
        };
        return Some(Wait {
            reason: format!(
                "OVH task {} ({}) is {state}{}; nothing else is planned until it ends",
                t.id,
                t.function,
                if others > 0 {
                    format!(" (+{others} more pending)")
                } else {
                    String::new()
                }
            ),
            on: WaitOn::Task(TaskRef {
                id: t.id,
                function: t.function.clone(),
                status: t.status,
            }),
        });
    }
    let st = detail.install_status.as_ref()?;
    // A status whose step failed is a failed install, not one in progress (see
    // `failed_install`): waiting on it would hide a degraded server for as long as the API
    // keeps the status.
    if st.steps.iter().any(|s| s.status == "error") {
        return None;
    }
    report.waiting_on_install += 1;
    Some(Wait {
        reason: format!(
            "an installation is in progress ({} s elapsed, {} steps); nothing else is planned until it ends",
            st.elapsed_secs,
            st.steps.len()
        ),
        on: WaitOn::Install {
            elapsed_secs: st.elapsed_secs,
            steps: st.steps.len(),
            done: st.steps.iter().filter(|s| s.status == "done").count(),
        },
    })
}

struct ServerPlanner<'a> {
    name: &'a str,
    ds: &'a DesiredServer,
    live: &'a ObservedServer,
    desired: &'a Desired,
    observed: &'a Observed,
    input: &'a PlanInput,
    sp: ServerPlan,
    /// Where the believed record comes from (`None`: no record).
    source: Option<RecordSource>,
    /// The store and the tags disagree about this server.
    dispute: Option<&'a RecordDispute>,
    /// The server's last reinstall failed: it is degraded.
    failed: Option<FailedInstall>,
    /// Secrets could not be compared (no fleet key, or a record without digests).
    secrets_not_compared: bool,
    /// The server's record was refused as implausible: nothing destructive is planned until
    /// it is fixed or removed.
    refused: bool,
}

/// The last `reinstallServer` task ended in error: the disks may already be wiped.
#[derive(Clone, Debug)]
struct FailedInstall {
    task: u64,
    status: TaskStatus,
    /// The failing step and its error, from install/status when it says, else the task's
    /// comment.
    step: Option<String>,
    error: Option<String>,
}

/// The server's last reinstall, when it failed (`customerError`/`ovhError`): whoever made it,
/// the server is degraded — never adopted as healthy, never re-wiped without approval.
fn failed_install(live: &ObservedServer) -> Option<FailedInstall> {
    let d = live.detail.as_ref()?;
    let last = d
        .tasks
        .iter()
        .filter(|t| t.function == "reinstallServer")
        .max_by_key(|t| t.id)?;
    if !matches!(
        last.status,
        TaskStatus::CustomerError | TaskStatus::OvhError
    ) {
        return None;
    }
    let failing = d
        .install_status
        .as_ref()
        .and_then(|st| st.steps.iter().find(|s| s.status == "error"));
    Some(FailedInstall {
        task: last.id,
        status: last.status,
        step: failing.map(|s| s.comment.clone()),
        error: failing
            .and_then(|s| s.error.clone())
            .or_else(|| last.comment.clone()),
    })
}

/// What a record claims, for a reviewer comparing two of them.
fn claim(r: &InstallRecord) -> String {
    format!(
        "{} {} generation {} (fleet {:?}, algorithm {}{}{})",
        r.os,
        short_fp(&r.fingerprint),
        r.generation,
        r.fleet,
        r.algorithm,
        r.finished
            .map(|t| format!(", finished {t}"))
            .unwrap_or_default(),
        r.task_id.map(|t| format!(", task {t}")).unwrap_or_default()
    )
}

fn short_fp(fp: &str) -> String {
    let hex = fp.strip_prefix("sha256:").unwrap_or(fp);
    // Records come from a store or a tag: never slice bytes of text we did not make.
    format!("sha256:{}", hex.chars().take(12).collect::<String>())
}

fn drift_act(policy: DriftAction) -> bool {
    policy == DriftAction::Correct
}

impl ServerPlanner<'_> {
    /// Which record to believe: an implausible one is refused (reported, not planned from);
    /// a disputed one is kept (the store's) but nothing destructive is planned from it.
    fn believe<'r>(&mut self, rec: Option<&'r InstallRecord>) -> Option<&'r InstallRecord> {
        if let Some(d) = self.dispute {
            self.sp.findings.push(Finding::new(
                FindingCode::RecordDisputed,
                format!(
                    "the state store and the server's tags disagree: the store records {}, the tags record {}; nothing destructive is planned until they agree. A forged tag looks the same as an install made with another state directory: check which is right, then either `ovhform state take-tag {}` (believe the tags) or remove the server's `ovhform:` tags (believe the store)",
                    claim(&d.store),
                    claim(&d.tags),
                    self.name
                ),
                Some(self.ds.origin.clone()),
            ));
        }
        let r = rec?;
        match self.implausible(r) {
            None => Some(r),
            Some(why) => {
                self.sp.findings.push(Finding::new(
                    FindingCode::RecordImplausible,
                    format!(
                        "the {} record of {} is refused: {why}; the plan treats the server as having no record",
                        match self.source {
                            Some(RecordSource::Tags) => "tag",
                            _ => "store",
                        },
                        self.name
                    ),
                    Some(self.ds.origin.clone()),
                ));
                self.source = None;
                self.refused = true;
                None
            }
        }
    }

    /// Why a record cannot be true, if it cannot.
    fn implausible(&self, r: &InstallRecord) -> Option<String> {
        if r.server != self.name {
            return Some(format!("it names another server ({:?})", r.server));
        }
        if r.algorithm == 0 || r.algorithm > digest::ALGORITHM {
            return Some(format!(
                "unknown fingerprint algorithm {} (this ovhform knows 1 to {})",
                r.algorithm,
                digest::ALGORITHM
            ));
        }
        let hex = r.fingerprint.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some("its fingerprint is not `sha256:` and 64 hex digits".into());
        }
        // A little slack for clock skew between the machine that applied and this one.
        let horizon = self
            .input
            .now
            .checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap_or(self.input.now);
        for (what, t) in [("started", r.started), ("finished", r.finished)] {
            if let Some(t) = t
                && t > horizon
            {
                return Some(format!("it says the install {what} at {t}, in the future"));
            }
        }
        // A server running exactly the desired OS, whose record claims another OS with no
        // reinstall since: the record's OS was never installed here (the OS only changes by
        // a reinstall). When the live OS differs from the manifest too, the same facts are
        // install drift (the history may have been purged) and the drift policy decides.
        if r.os != self.live.os
            && self
                .ds
                .install
                .as_ref()
                .is_some_and(|s| s.os == self.live.os)
            && let Some(d) = &self.live.detail
        {
            let since = r.started.or(r.finished);
            let reinstalled = d.tasks.iter().any(|t| {
                t.function == "reinstallServer"
                    && match (since, t.start_date, r.task_id) {
                        (Some(s), Some(ts), _) => ts > s,
                        (_, _, Some(id)) => t.id > id,
                        (None, _, None) => true,
                        _ => false,
                    }
            });
            if !reinstalled {
                return Some(format!(
                    "it records OS {} but the server runs {} and its task history shows no reinstall since the record",
                    r.os, self.live.os
                ));
            }
        }
        None
    }

    /// The record adopt and apply write for the manifest's spec.
    fn new_record(&self, spec: &InstallSpec) -> InstallRecord {
        InstallRecord {
            revision: self.input.revision.clone(),
            finished: Some(self.input.now),
            ..digest::record_for(
                self.name,
                &self.input.fleet,
                spec,
                self.input.fleet_key.as_ref(),
            )
        }
    }

    fn install_step(&mut self, rec: Option<&InstallRecord>) -> InstallReport {
        let mut report = InstallReport::default();
        let Some(spec) = &self.ds.install else {
            return report;
        };
        if let Some(f) = self.failed.clone() {
            self.sp.findings.push(Finding::new(
                FindingCode::InstallFailed,
                format!(
                    "the last reinstall (task {}) ended {}{}{}: the server is degraded — its disks may already be erased; it is never adopted as healthy, and reinstalling it again needs an explicit approval",
                    f.task,
                    task_status(f.status),
                    f.step.as_deref().map(|s| format!(" at step {s:?}")).unwrap_or_default(),
                    f.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default(),
                ),
                Some(self.ds.origin.clone()),
            ));
        }
        let live_os = &self.live.os;
        let Some(r) = rec else {
            if *live_os == spec.os {
                let adopt = Action::Adopt(Adopt {
                    reason: format!(
                        "no install record and the server already runs {live_os}: record a baseline, touch nothing"
                    ),
                    record: self.new_record(spec),
                });
                match &self.failed {
                    Some(f) => self
                        .sp
                        .actions
                        .push(adopt.block(vec![Blocker::InstallFailed {
                            task: f.task,
                            step: f.step.clone(),
                            error: f.error.clone(),
                        }])),
                    None => {
                        report.adopt += 1;
                        self.sp.actions.push(adopt);
                    }
                }
            } else {
                let changes = vec![Change {
                    field: "install.os".into(),
                    old: Some(live_os.clone()),
                    new: Some(spec.os.clone()),
                }];
                self.reinstall(
                    spec,
                    format!(
                        "no install record and the live OS {live_os} differs from the desired {}",
                        spec.os
                    ),
                    changes,
                    &mut report,
                );
            }
            return report;
        };

        let (mut changes, rotated) = self.compare(r, spec);
        if changes.is_empty() && self.input.replace.contains(self.name) {
            changes.push(Change {
                field: "install.replace".into(),
                old: Some("as recorded".into()),
                new: Some("rebuilt with the same spec (--replace)".into()),
            });
        }
        if !changes.is_empty() {
            let what: Vec<&str> = changes
                .iter()
                .map(|c| c.field.trim_start_matches("install."))
                .collect();
            self.reinstall(
                spec,
                format!(
                    "install spec changed since the recorded install ({})",
                    what.join(", ")
                ),
                changes,
                &mut report,
            );
            return report;
        }
        if r.algorithm < digest::ALGORITHM || rotated {
            // Nothing to rebuild; the record must be rewritten (credentials rotated, or an
            // older algorithm whose fingerprint cannot be compared any more).
            let reason = if rotated {
                "httpHeaders credentials changed (a rotation, not a rebuild): record the new digest, touch nothing"
            } else {
                "the record was written by fingerprint algorithm 1 (secrets included, not comparable): record the current spec as the baseline, touch nothing"
            };
            self.sp.findings.push(Finding::new(
                if rotated {
                    FindingCode::CredentialsRotated
                } else {
                    FindingCode::RecordAlgorithmOld
                },
                reason,
                Some(self.ds.origin_of("spec.install").clone()),
            ));
            report.adopt += 1;
            self.sp.actions.push(Action::Adopt(Adopt {
                reason: reason.into(),
                record: self.new_record(spec),
            }));
            return report;
        }

        // The spec is what ovhform installed: anything else is install drift.
        let policy = self.ds.policy.drift.install;
        let mut drift = None;
        if *live_os != r.os {
            drift = Some((
                Drift {
                    field: "install".into(),
                    applied: Some(r.os.clone()),
                    live: Some(live_os.clone()),
                    policy,
                    corrected: false,
                    note: format!(
                        "live OS {live_os} differs from the recorded install of {}",
                        r.os
                    ),
                },
                Change {
                    field: "install.os".into(),
                    old: Some(live_os.clone()),
                    new: Some(spec.os.clone()),
                },
            ));
        } else if let Some(f) = &self.failed {
            drift = Some((
                Drift {
                    field: "install".into(),
                    applied: Some(format!("{} {}", r.os, short_fp(&r.fingerprint))),
                    live: Some(format!("reinstall task {} failed", f.task)),
                    policy,
                    corrected: false,
                    note: format!(
                        "a reinstall after the recorded install failed (task {}): the server is degraded",
                        f.task
                    ),
                },
                Change {
                    field: "install.fingerprint".into(),
                    old: Some(format!("unknown (failed task {})", f.task)),
                    new: Some(short_fp(&spec.fingerprint)),
                },
            ));
        } else if let Some(t) = self.foreign_reinstall(r) {
            drift = Some((
                Drift {
                    field: "install".into(),
                    applied: Some(format!("{} {}", r.os, short_fp(&r.fingerprint))),
                    live: Some(format!("reinstalled by task {}", t.id)),
                    policy,
                    corrected: false,
                    note: format!(
                        "reinstallServer task {} in the history was not made by ovhform",
                        t.id
                    ),
                },
                Change {
                    field: "install.fingerprint".into(),
                    old: Some(format!("unknown (task {})", t.id)),
                    new: Some(short_fp(&spec.fingerprint)),
                },
            ));
        }
        let Some((mut d, change)) = drift else {
            return report;
        };
        if policy == DriftAction::Ignore {
            return report;
        }
        report.drift += 1;
        if drift_act(policy) {
            report.drift_corrected += 1;
            d.corrected = true;
            self.sp.drift.push(d);
            // Correcting install drift is a wipe: it goes through the same gate as any reinstall.
            self.reinstall(
                spec,
                "correct install drift (spec.policy.drift.install: correct)".to_string(),
                vec![change],
                &mut report,
            );
        } else {
            self.sp.drift.push(d);
        }
        report
    }

    /// What changed between the record and the spec, field by field (secrets as changed or
    /// unchanged only), and whether only the `httpHeaders` credentials changed.
    fn compare(&mut self, r: &InstallRecord, spec: &InstallSpec) -> (Vec<Change>, bool) {
        let mut changes = Vec::new();
        if r.os != spec.os {
            changes.push(Change {
                field: "install.os".into(),
                old: Some(r.os.clone()),
                new: Some(spec.os.clone()),
            });
        }
        // Algorithm 1 hashed the secrets in: its fingerprint says nothing comparable.
        if r.algorithm == digest::ALGORITHM && r.fingerprint != spec.fingerprint {
            let public = digest::public_request(spec);
            let fields = r
                .request
                .as_ref()
                .map(|old| digest::field_changes(old, &public))
                .unwrap_or_default();
            if fields.is_empty() {
                changes.push(Change {
                    field: "install.fingerprint".into(),
                    old: Some(format!(
                        "{} (fields unknown: the record keeps no request)",
                        short_fp(&r.fingerprint)
                    )),
                    new: Some(short_fp(&spec.fingerprint)),
                });
            }
            for (field, old, new) in fields {
                changes.push(Change {
                    field: format!("install.{field}"),
                    old,
                    new,
                });
            }
        }
        if spec.generation > r.generation {
            changes.push(Change {
                field: "install.generation".into(),
                old: Some(r.generation.to_string()),
                new: Some(spec.generation.to_string()),
            });
        } else if spec.generation < r.generation {
            self.sp.findings.push(Finding::new(
                FindingCode::GenerationLowered,
                format!(
                    "generation {} is lower than the recorded {}; only a bump forces a rebuild",
                    spec.generation, r.generation
                ),
                Some(self.ds.origin_of("spec.install.generation").clone()),
            ));
        }
        let mut rotated = false;
        match (&self.input.fleet_key, &r.secrets) {
            (Some(key), Some(old)) if key.is_other_than(old) => {
                // Digests under another key differ whatever the secrets are: nothing can be
                // said of them, and saying "changed" would propose a wipe on no evidence.
                self.secrets_not_compared = !spec.secret_paths.is_empty();
                self.sp.findings.push(Finding::new(
                    FindingCode::FleetSecretMismatch,
                    "the record was written with another fleet secret: secret values cannot be \
                     compared (check OVHFORM_SECRET_KEY or the state store's fleet secret)"
                        .to_string(),
                    None,
                ));
            }
            (Some(key), Some(old)) => {
                let new = digest::secret_digests(spec, key);
                if new.secrets != old.secrets {
                    let named: Vec<&String> = new
                        .fields
                        .iter()
                        .filter(|(p, d)| {
                            !digest::is_credential_path(p) && old.fields.get(*p) != Some(*d)
                        })
                        .map(|(p, _)| p)
                        .collect();
                    if named.is_empty() || old.fields.is_empty() {
                        changes.push(Change {
                            field: "install.secrets".into(),
                            old: Some("(secret)".into()),
                            new: Some("(secret, changed)".into()),
                        });
                    } else {
                        for p in named {
                            changes.push(Change {
                                field: format!(
                                    "install.{}",
                                    p.trim_start_matches('/').replace('/', ".")
                                ),
                                old: Some("(secret)".into()),
                                new: Some("(secret, changed)".into()),
                            });
                        }
                    }
                }
                rotated = new.credentials != old.credentials;
            }
            _ => self.secrets_not_compared = !spec.secret_paths.is_empty(),
        }
        (changes, rotated)
    }

    /// A finished `reinstallServer` task the record does not account for.
    fn foreign_reinstall(&self, r: &InstallRecord) -> Option<&crate::model::Task> {
        let detail = self.live.detail.as_ref()?;
        let since = r.started.or(r.finished);
        detail
            .tasks
            .iter()
            .filter(|t| {
                t.function == "reinstallServer" && t.status == crate::model::TaskStatus::Done
            })
            .filter(|t| Some(t.id) != r.task_id)
            .filter(|t| match (since, t.start_date, r.task_id) {
                (Some(s), Some(ts), _) => ts > s,
                (_, _, Some(id)) => t.id > id,
                _ => false,
            })
            .max_by_key(|t| t.id)
    }

    /// The approval path of a reinstall under the server's policy, and what blocks it. A
    /// maintenance window binds every reinstall, manual or automatic.
    fn approval(&mut self, reason: &str) -> (Approval, Vec<Blocker>) {
        let policy = &self.ds.policy;
        if policy.reinstall == ReinstallPolicy::Never {
            let origin = self.ds.origin_of("spec.policy.reinstall").clone();
            self.sp.findings.push(Finding::new(
                FindingCode::ReinstallNever,
                format!("a reinstall is needed ({reason}) but policy reinstall is never"),
                Some(origin.clone()),
            ));
            return (Approval::Never, vec![Blocker::PolicyNever { origin }]);
        }
        let (until, blockers) = match policy.maintenance_window.clone() {
            None => (None, vec![]),
            Some(wname) => self.window_gate(&wname),
        };
        // Never automatic: a wipe whose only evidence is a record anyone allowed to write tags
        // could have written, or a wipe of a server whose last reinstall failed.
        let explicit = if self.failed.is_some() {
            Some("the last reinstall of this server failed".to_string())
        } else if self.source == Some(RecordSource::Tags) {
            Some("the only evidence for this wipe is the record in the server's tags".to_string())
        } else {
            self.ds.selected_by_tags.as_ref().map(|group| {
                format!(
                    "the server is in group {group} through its IAM tags, which anyone allowed to tag it could have set"
                )
            })
        };
        let approval = match (policy.reinstall, explicit) {
            (ReinstallPolicy::Auto, None) => Approval::Auto {
                window: policy.maintenance_window.clone(),
                until,
            },
            (_, why) => Approval::AllowWipe {
                flag: format!("--allow-wipe {}", self.name),
                why,
            },
        };
        (approval, blockers)
    }

    /// Whether the named window is open now: its end, or what blocks.
    fn window_gate(&mut self, wname: &str) -> (Option<jiff::Timestamp>, Vec<Blocker>) {
        let Some(w) = self.desired.windows.get(wname) else {
            let origin = self.ds.origin_of("spec.policy.maintenanceWindow").clone();
            self.sp.findings.push(Finding::new(
                FindingCode::WindowUnknown,
                format!(
                    "maintenance window {wname} is not defined by any MaintenanceWindow manifest"
                ),
                Some(origin.clone()),
            ));
            return (
                None,
                vec![Blocker::WindowUndefined {
                    window: wname.to_string(),
                    origin,
                }],
            );
        };
        match evaluate(w, self.input.now) {
            Ok(WindowState::Open { end, .. }) => (Some(end), vec![]),
            Ok(WindowState::Closed { next }) => (
                None,
                vec![Blocker::OutsideWindow {
                    window: wname.to_string(),
                    time_zone: w.time_zone.clone(),
                    next_open: next,
                }],
            ),
            Err(message) => (
                None,
                vec![Blocker::WindowInvalid {
                    window: wname.to_string(),
                    message,
                }],
            ),
        }
    }

    fn reinstall(
        &mut self,
        spec: &InstallSpec,
        reason: String,
        changes: Vec<Change>,
        report: &mut InstallReport,
    ) {
        let checks = check_reinstall(
            self.ds,
            spec,
            self.live,
            &self.observed.templates,
            self.input.now,
        );
        let (approval, mut blockers) = self.approval(&reason);
        if self.dispute.is_some() {
            blockers.push(Blocker::RecordDisputed);
        }
        if self.refused {
            blockers.push(Blocker::RecordRefused);
        }
        // Without detail the gates step blocks the server as a whole; one blocker is enough.
        if self.live.detail.is_some() {
            for m in &checks.missing {
                blockers.push(Blocker::ChecksNotDone { missing: m.clone() });
            }
        }
        if self.input.install_route == super::InstallRoute::Legacy
            && let Err(e) = crate::ovh::install_start_from_reinstall(&spec.request)
        {
            // The same decision apply makes: what the legacy route cannot express is refused,
            // never dropped (dropping a kept disk group would erase it).
            let f = Finding::new(
                FindingCode::LegacyUnsupported,
                e.to_string(),
                Some(self.ds.origin_of("spec.install").clone()),
            );
            blockers.push(Blocker::InvalidSpec {
                code: f.code,
                message: f.message.clone(),
                origin: f.origin.clone(),
            });
            self.sp.findings.push(f);
        }
        for e in checks.errors() {
            blockers.push(Blocker::InvalidSpec {
                code: e.code,
                message: e.message.clone(),
                origin: e.origin.clone(),
            });
        }
        self.sp.findings.extend(checks.findings.iter().cloned());
        if blockers.is_empty() {
            blockers = self.intervention_gate(&approval);
        }
        let a = Action::Reinstall(Reinstall {
            destructive: Destructive,
            reason,
            changes,
            os: spec.os.clone(),
            fingerprint: spec.fingerprint.clone(),
            generation: spec.generation,
            // What is sent, secrets as placeholders (not normalised: the reviewer sees the body).
            request: super::redact::redact_request(&spec.request, &spec.secret_paths),
            disk_groups: checks.disk_groups,
            keep_disk_groups: spec.keep_disk_groups.clone(),
            approval,
            checks_done: checks.checks_done,
        });
        report.reinstall += 1;
        if blockers.is_empty() {
            self.sp.actions.push(a);
        } else {
            report.blocked += 1;
            self.sp.actions.push(a.block(blockers));
        }
    }

    /// OVH's planned interventions, for a reinstall nothing else blocks. An automatic wipe
    /// needs them read and none unfinished; one a person approves gets a warning instead
    /// (that person decides). Without detail the gates step blocks the server anyway.
    fn intervention_gate(&mut self, approval: &Approval) -> Vec<Blocker> {
        let Some(d) = &self.live.detail else {
            return Vec::new();
        };
        let open: Vec<&crate::model::PlannedIntervention> = match &d.interventions {
            Interventions::Read { list } => {
                list.iter().filter(|p| !p.status.is_finished()).collect()
            }
            _ => Vec::new(),
        };
        match approval {
            Approval::Auto { .. } => match &d.interventions {
                Interventions::NotRead => vec![Blocker::InterventionsUnchecked {
                    why: Unchecked::NotRead,
                }],
                Interventions::Unreadable { error } => vec![Blocker::InterventionsUnchecked {
                    why: Unchecked::Unreadable {
                        error: error.clone(),
                    },
                }],
                Interventions::Read { .. } => open.into_iter().map(Blocker::intervention).collect(),
            },
            Approval::AllowWipe { .. } => {
                let origin = Some(self.ds.origin_of("spec.policy.reinstall").clone());
                let warn = match &d.interventions {
                    Interventions::Unreadable { error } => vec![format!(
                        "OVH's planned interventions on this server could not be checked ({error}); check the console before approving the reinstall"
                    )],
                    _ => open
                        .into_iter()
                        .map(|p| {
                            format!(
                                "{}; a reinstall approved now wipes the server while OVH works on it",
                                super::action::describe_intervention(p)
                            )
                        })
                        .collect(),
                };
                for message in warn {
                    self.sp.findings.push(Finding::new(
                        FindingCode::PlannedIntervention,
                        message,
                        origin.clone(),
                    ));
                }
                Vec::new()
            }
            Approval::Never => Vec::new(),
        }
    }

    fn reinstall_runs(&self) -> bool {
        self.sp
            .actions
            .iter()
            .any(|a| a.kind() == ActionKind::Reinstall)
    }

    fn boot_step(&mut self, applied_state: Option<&AppliedState>) -> BootReport {
        let mut report = BootReport::default();
        let applied = applied_state.and_then(|a| a.boot.as_ref());
        let Some(bs) = &self.ds.boot else {
            // Unmanaged boot: nothing is changed, but a server sitting in rescue or netboot is
            // worth saying (a later reboot brings it back there).
            if let Some(since) = self.left_in_temporary(applied_state) {
                report.drift += 1;
                self.sp.drift.push(Drift {
                    field: "boot".into(),
                    applied: None,
                    live: Some(describe_live(self.live)),
                    policy: DriftAction::Warn,
                    corrected: false,
                    note: format!(
                        "left in {since}: the manifest has no spec.boot, so nothing returns it \
                         to disk; set `boot: {{mode: disk}}`, or a lease (`for:` / `until:`) on \
                         the temporary boot"
                    ),
                });
            }
            return report;
        };
        let lease_end = self.lease_step(bs, applied_state);
        let leased_out = lease_end.is_some();
        let mode = if leased_out {
            &BootMode::Disk
        } else {
            &bs.mode
        };
        let reason;
        if self.reinstall_runs() {
            // A reinstall leaves the server booting from disk (bootId 1, no script).
            if *mode == BootMode::Disk {
                return report;
            }
            reason = format!(
                "the reinstall leaves the server booting from disk; then set {}",
                describe_mode(mode)
            );
        } else if boot_matches(mode, self.live) {
            return report;
        } else if let Some(ended) = lease_end
            && applied != Some(mode)
        {
            // The lease just ran out (the server is still in the leased mode, or anywhere
            // else but disk): back to disk whatever the drift policy, that is the lease.
            reason = format!(
                "the {} lease ({}) ended at {ended}: back to disk",
                describe_mode(&bs.mode),
                bs.lease.map(|l| l.to_string()).unwrap_or_default()
            );
        } else if applied == Some(mode) {
            let policy = self.ds.policy.drift.boot;
            if policy == DriftAction::Ignore {
                return report;
            }
            let note = match self.left_in_temporary(applied_state) {
                Some(since) => format!("boot changed outside ovhform: left in {since}"),
                None => "boot changed outside ovhform".into(),
            };
            report.drift += 1;
            self.sp.drift.push(Drift {
                field: "boot".into(),
                applied: Some(describe_mode(mode)),
                live: Some(describe_live(self.live)),
                policy,
                corrected: drift_act(policy),
                note,
            });
            if !drift_act(policy) {
                return report;
            }
            report.drift_corrected += 1;
            reason = "correct boot drift (spec.policy.drift.boot: correct)".to_string();
        } else {
            reason = format!(
                "boot is {}, the manifest wants {}",
                describe_live(self.live),
                describe_mode(mode)
            );
        }
        let script_diff = match (mode, &self.live.boot_script) {
            (BootMode::Ipxe { script }, old) => {
                Some(script_diff(old.as_deref().unwrap_or(""), script))
            }
            (_, Some(old)) => Some(script_diff(old, "")),
            _ => None,
        };
        let resolved = self.resolve(mode);
        let set = SetBoot {
            reason,
            changes: vec![Change {
                field: "boot".into(),
                old: Some(describe_live(self.live)),
                new: Some(describe_mode(mode)),
            }],
            from: describe_live(self.live),
            target: resolved.clone().unwrap_or_else(|_| BootTarget::Unresolved {
                wanted: describe_mode(mode),
            }),
            script_diff,
        };
        report.set_boot += 1;
        if let Err(message) = resolved {
            report.unresolved += 1;
            let origin = self.ds.origin_of("spec.boot").clone();
            self.sp.findings.push(Finding::new(
                FindingCode::BootUnresolved,
                message.clone(),
                Some(origin.clone()),
            ));
            self.sp.actions.push(
                Action::SetBoot(set).block(vec![Blocker::BootUnresolved { message, origin }]),
            );
            return report;
        }
        self.sp.actions.push(Action::SetBoot(set));
        if bs.reboot == crate::model::RebootPolicy::OnChange {
            report.reboot += 1;
            self.sp.actions.push(Action::Reboot(Reboot {
                reason:
                    "the boot changes and spec.boot.reboot is onChange: hard reboot to take effect"
                        .into(),
            }));
        }
        report
    }

    /// Where the manifest's boot lease stands (recorded in the plan for apply, the renderers
    /// and the daemon's requeue); `Some(end)` once it ran out: the server belongs on disk.
    fn lease_step(
        &mut self,
        bs: &crate::model::BootSpec,
        applied: Option<&AppliedState>,
    ) -> Option<jiff::Timestamp> {
        let lease = bs.lease?;
        let now = self.input.now;
        // Only a record of this very lease counts: another mode or another `for`/`until` is a
        // new lease, started when the server first converges to it.
        let started = applied
            .and_then(|a| a.lease.as_ref())
            .filter(|l| l.mode == bs.mode && l.lease == lease)
            .map(|l| l.started);
        let in_mode = boot_matches(&bs.mode, self.live);
        let ends = match (started, in_mode) {
            (None, true) => lease.ends(Some(now)),
            _ => lease.ends(started),
        };
        let state = match ends {
            Some(end) if now >= end => LeaseState::Ended,
            _ if started.is_some() || in_mode => LeaseState::Active,
            _ => LeaseState::NotStarted,
        };
        self.sp.lease = Some(LeasePlan {
            mode: describe_mode(&bs.mode),
            lease,
            state,
            started,
            ends,
        });
        if state == LeaseState::Ended && started.is_none() {
            self.sp.findings.push(Finding::new(
                FindingCode::LeaseEndedUnused,
                format!(
                    "the boot lease ({lease}) ended before the server was ever set to {}: \
                     nothing is set; move `until:` forward to use it",
                    describe_mode(&bs.mode)
                ),
                Some(self.ds.origin_of("spec.boot").clone()),
            ));
        }
        (state == LeaseState::Ended).then_some(ends).flatten()
    }

    /// `Some("rescue since …")` when the server sits in a rescue or network boot that no
    /// active lease of the manifest accounts for.
    fn left_in_temporary(&self, applied: Option<&AppliedState>) -> Option<String> {
        let netboot = live_netboot(self.live)?;
        if self.live.boot_script.is_some()
            || !matches!(netboot.boot_type, BootType::Rescue | BootType::Network)
        {
            return None;
        }
        if let Some(bs) = &self.ds.boot
            && boot_matches(&bs.mode, self.live)
            && self
                .sp
                .lease
                .as_ref()
                .is_none_or(|l| l.state != LeaseState::Ended)
        {
            // What the manifest asks for (with a running lease, or none: then it is the
            // manifest's choice).
            return None;
        }
        let what = type_name(netboot.boot_type);
        let lease_end = applied
            .and_then(|a| a.lease.as_ref())
            .and_then(|l| l.lease.ends(Some(l.started)))
            .filter(|end| *end <= self.input.now);
        let reboot = self.live.detail.as_ref().and_then(|d| {
            d.tasks
                .iter()
                .filter(|t| {
                    t.status == TaskStatus::Done
                        && matches!(t.function.as_str(), "hardReboot" | "rebootServer")
                })
                .filter_map(|t| t.done_date.or(t.start_date).map(|at| (at, t.id)))
                .max()
        });
        Some(match (lease_end, reboot) {
            (Some(end), _) => format!("{what} since its lease ended at {end}"),
            (None, Some((at, id))) => format!("{what} since the reboot of {at} (task {id})"),
            (None, None) => format!("{what} since an unknown time (no reboot in the task history)"),
        })
    }

    /// The manifest's boot → what to PUT on this server (ids differ per region: kernels are
    /// resolved against the server's own boot list).
    fn resolve(&self, mode: &BootMode) -> Result<BootTarget, String> {
        if let BootMode::Ipxe { script } = mode {
            return Ok(BootTarget::Ipxe {
                script_digest: script_digest(script),
            });
        }
        let Some(d) = &self.live.detail else {
            return Err("the server's boot list was not observed".to_string());
        };
        let find = |ty: BootType, kernel: Option<&String>| {
            d.boots
                .iter()
                .filter(|b| b.boot_type == ty && kernel.is_none_or(|k| &b.kernel == k))
                .min_by_key(|b| b.id)
                .ok_or_else(|| match kernel {
                    Some(k) => format!(
                        "no {} boot with kernel {k} on this server (available: {})",
                        type_name(ty),
                        list_boots(&d.boots)
                    ),
                    None => format!(
                        "no {} boot on this server (available: {})",
                        type_name(ty),
                        list_boots(&d.boots)
                    ),
                })
        };
        match mode {
            BootMode::Ipxe { .. } => unreachable!("handled above"),
            BootMode::Disk => find(BootType::Harddisk, None).map(|b| BootTarget::Disk { id: b.id }),
            BootMode::Rescue { kernel } => {
                find(BootType::Rescue, Some(kernel)).map(|b| BootTarget::Rescue {
                    kernel: kernel.clone(),
                    id: b.id,
                })
            }
            BootMode::Network { kernel } => {
                find(BootType::Network, Some(kernel)).map(|b| BootTarget::Network {
                    kernel: kernel.clone(),
                    id: b.id,
                })
            }
            BootMode::BootId { id } if d.boots.iter().any(|b| b.id == *id) => {
                Ok(BootTarget::BootId { id: *id })
            }
            BootMode::BootId { id } => Err(format!(
                "boot id {id} is not offered by this server ({})",
                list_boots(&d.boots)
            )),
        }
    }

    fn settings_step(&mut self, applied: Option<&Settings>) -> SettingsReport {
        let mut report = SettingsReport::default();
        let fields = settings_fields(&self.ds.settings, self.live);
        let applied_fields = applied
            .map(|s| settings_fields(s, self.live))
            .unwrap_or_default();
        let policy = self.ds.policy.drift.settings;
        let mut body = Settings::default();
        let mut sent: Vec<&'static str> = Vec::new();
        let mut changes = Vec::new();
        let mut intended = 0;
        for f in fields.iter().filter(|f| !f.in_sync()) {
            let was_applied = applied_fields.iter().any(|a| {
                a.name == f.name
                    && a.desired
                        .as_ref()
                        .is_some_and(|v| same(v, f.desired.as_ref().unwrap_or(&Value::Null)))
            });
            if was_applied {
                if policy == DriftAction::Ignore {
                    continue;
                }
                report.drift += 1;
                self.sp.drift.push(Drift {
                    field: format!("settings.{}", f.name),
                    applied: f.desired.as_ref().map(show),
                    live: Some(show(&f.live)),
                    policy,
                    corrected: drift_act(policy),
                    note: "setting changed outside ovhform".into(),
                });
                if !drift_act(policy) {
                    continue;
                }
                report.drift_corrected += 1;
            } else {
                intended += 1;
            }
            let d = f.desired.clone().unwrap_or(Value::Null);
            changes.push(Change {
                field: format!("settings.{}", f.name),
                old: Some(show(&f.live)),
                new: Some(show(&d)),
            });
            copy_field(&mut body, &self.ds.settings, f.name);
            sent.push(f.name);
        }
        // A reinstall rewrites efiBootloaderPath (from the install's customizations or the
        // OS default): a managed path is set again after it, even if it matches today.
        let mut after_reinstall = false;
        if self.reinstall_runs()
            && let Some(efi) = &self.ds.settings.efi_bootloader_path
            && body.efi_bootloader_path.is_none()
        {
            after_reinstall = true;
            changes.push(Change {
                field: "settings.efiBootloaderPath".into(),
                old: Some("(reset by the reinstall)".into()),
                new: Some(efi.clone()),
            });
            body.efi_bootloader_path = Some(efi.clone());
            sent.push("efiBootloaderPath");
            intended += 1;
        }
        if sent.is_empty() {
            return report;
        }
        sent.sort_unstable();
        let reason = if after_reinstall && changes.len() == 1 {
            "the reinstall resets efiBootloaderPath; set it again after".to_string()
        } else if intended == changes.len() {
            format!("settings differ from the manifest: {}", sent.join(", "))
        } else {
            "correct settings drift (spec.policy.drift.settings: correct)".to_string()
        };
        report.update += 1;
        self.sp.actions.push(Action::UpdateSettings(UpdateSettings {
            reason,
            changes,
            fields: body,
        }));
        report
    }

    /// Conditions that block every API action on the server.
    fn gates_step(&mut self) -> GatesReport {
        let mut report = GatesReport::default();
        let mut why = Vec::new();
        if self.ds.policy.suspend {
            report.suspended += 1;
            why.push(Blocker::Suspended {
                origin: self.ds.origin_of("spec.policy.suspend").clone(),
            });
        }
        if self.live.detail.is_none() {
            report.detail_missing += 1;
            why.push(Blocker::DetailMissing);
        }
        for a in &self.live.anomalies {
            why.push(Blocker::ObservedAnomaly { what: a.clone() });
        }
        if why.is_empty() {
            return report;
        }
        // Nothing at all for a suspended server, or one whose live data made no sense.
        let suspended = self.ds.policy.suspend || !self.live.anomalies.is_empty();
        let mut blocked_any = false;
        for a in std::mem::take(&mut self.sp.actions) {
            // Missing detail does not gate an adopt (apply re-checks the server before it
            // records anything); a suspended server gets nothing at all, not even a record.
            let gated = matches!(
                a.effective_kind(),
                ActionKind::Reinstall
                    | ActionKind::SetBoot
                    | ActionKind::UpdateSettings
                    | ActionKind::Reboot
            ) || a.kind() == ActionKind::Blocked
                || (suspended && a.kind() == ActionKind::Adopt);
            if gated {
                blocked_any = true;
                self.sp.actions.push(a.block(why.clone()));
            } else {
                self.sp.actions.push(a);
            }
        }
        report.servers_blocked = usize::from(blocked_any);
        report
    }
}

/// Copy the managed setting `name` from `from` into `into`.
fn copy_field(into: &mut Settings, from: &Settings, name: &str) {
    match name {
        "efiBootloaderPath" => into.efi_bootloader_path = from.efi_bootloader_path.clone(),
        "monitoring" => into.monitoring = from.monitoring,
        "noIntervention" => into.no_intervention = from.no_intervention,
        "rescueMail" => into.rescue_mail = from.rescue_mail.clone(),
        "rescueSshKey" => into.rescue_ssh_key = from.rescue_ssh_key.clone(),
        "rootDevice" => into.root_device = from.root_device.clone(),
        _ => {}
    }
}

/// `sha256:<64 hex>` of an iPXE script: what apply checks the manifest's script against.
pub(crate) fn script_digest(script: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(script.as_bytes())))
}

fn type_name(ty: BootType) -> &'static str {
    match ty {
        BootType::Harddisk => "harddisk",
        BootType::Internal => "internal",
        BootType::Network => "network",
        BootType::Power => "power",
        BootType::Rescue => "rescue",
    }
}

fn list_boots(boots: &[crate::model::Netboot]) -> String {
    if boots.is_empty() {
        return "none".into();
    }
    boots
        .iter()
        .map(|b| format!("{} {} #{}", type_name(b.boot_type), b.kernel, b.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The live netboot: as observe resolved it, else looked up by id in the boot list.
fn live_netboot(live: &ObservedServer) -> Option<&crate::model::Netboot> {
    live.boot.as_ref().or_else(|| {
        let id = live.boot_id?;
        live.detail.as_ref()?.boots.iter().find(|b| b.id == id)
    })
}

pub(crate) fn boot_matches(mode: &BootMode, live: &ObservedServer) -> bool {
    let netboot = live_netboot(live);
    match mode {
        BootMode::Ipxe { script } => live.boot_script.as_deref() == Some(script.as_str()),
        _ if live.boot_script.is_some() => false,
        // bootId 1 is the disk boot on every server (REFERENCE §0.2).
        BootMode::Disk => match netboot {
            Some(b) => b.boot_type == BootType::Harddisk,
            None => live.boot_id == Some(1),
        },
        BootMode::Rescue { kernel } => {
            netboot.is_some_and(|b| b.boot_type == BootType::Rescue && &b.kernel == kernel)
        }
        BootMode::Network { kernel } => {
            netboot.is_some_and(|b| b.boot_type == BootType::Network && &b.kernel == kernel)
        }
        BootMode::BootId { id } => live.boot_id == Some(*id),
    }
}

pub(crate) fn describe_mode(mode: &BootMode) -> String {
    match mode {
        BootMode::Disk => "disk".into(),
        BootMode::Rescue { kernel } => format!("rescue (kernel {kernel})"),
        BootMode::Network { kernel } => format!("network (kernel {kernel})"),
        BootMode::Ipxe { script } => script_label(script),
        BootMode::BootId { id } => format!("boot id {id}"),
    }
}

pub(crate) fn describe_live(live: &ObservedServer) -> String {
    if let Some(s) = &live.boot_script {
        return script_label(s);
    }
    match (live_netboot(live), live.boot_id) {
        (Some(b), _) if b.boot_type == BootType::Harddisk => format!("disk (id {})", b.id),
        (Some(b), _) => format!(
            "{} (kernel {}, id {})",
            type_name(b.boot_type),
            b.kernel,
            b.id
        ),
        (None, Some(id)) => format!("boot id {id}"),
        (None, None) => "unknown".into(),
    }
}

/// iPXE scripts are not secret; a short hash tells two scripts of one length apart.
fn script_label(script: &str) -> String {
    format!("iPXE script {}", hash_len(script.as_bytes()))
}

fn task_status(s: crate::model::TaskStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn script_diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("live bootScript", "desired bootScript")
        .to_string()
}

/// One managed setting: its API name, desired value (None = unmanaged) and live value.
pub(crate) struct SettingField {
    pub name: &'static str,
    pub desired: Option<Value>,
    pub live: Value,
}

impl SettingField {
    pub fn in_sync(&self) -> bool {
        match &self.desired {
            None => true,
            Some(d) => same(d, &self.live),
        }
    }
}

/// An empty string and null are the same to the API (clients clear a field with `""`).
fn same(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| match v {
        Value::String(s) if s.is_empty() => Value::Null,
        other => other.clone(),
    };
    norm(a) == norm(b)
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn settings_fields(s: &Settings, live: &ObservedServer) -> Vec<SettingField> {
    let opt = |v: &Option<String>| {
        v.as_ref()
            .map(|s| Value::String(s.clone()))
            .unwrap_or(Value::Null)
    };
    let d_str = |v: &Option<String>| v.as_ref().map(|s| Value::String(s.clone()));
    vec![
        SettingField {
            name: "efiBootloaderPath",
            desired: d_str(&s.efi_bootloader_path),
            live: opt(&live.efi_bootloader_path),
        },
        SettingField {
            name: "monitoring",
            desired: s.monitoring.map(Value::Bool),
            live: Value::Bool(live.monitoring),
        },
        SettingField {
            name: "noIntervention",
            desired: s.no_intervention.map(Value::Bool),
            live: Value::Bool(live.no_intervention),
        },
        SettingField {
            name: "rescueMail",
            desired: d_str(&s.rescue_mail),
            live: opt(&live.rescue_mail),
        },
        SettingField {
            name: "rescueSshKey",
            desired: d_str(&s.rescue_ssh_key),
            live: opt(&live.rescue_ssh_key),
        },
        SettingField {
            name: "rootDevice",
            desired: d_str(&s.root_device),
            live: opt(&live.root_device),
        },
    ]
}

/// Warns about groups planning more reinstalls than they run at once; returns how many.
fn group_limits(
    desired: &Desired,
    servers: &BTreeMap<String, ServerPlan>,
    findings: &mut Vec<Finding>,
) -> usize {
    let mut over = 0;
    for g in desired.groups.values() {
        let Some(max) = g.max_concurrent_reinstalls else {
            continue;
        };
        let n = g
            .members
            .iter()
            .filter_map(|m| servers.get(m))
            .filter(|sp| sp.actions.iter().any(|a| a.kind() == ActionKind::Reinstall))
            .count();
        if n > max as usize {
            over += 1;
            findings.push(Finding::new(
                FindingCode::GroupLimit,
                format!(
                    "group {}: {n} reinstalls planned, apply runs at most {max} at a time (maxConcurrentReinstalls)",
                    g.name
                ),
                Some(g.origin.clone()),
            ));
        }
    }
    over
}
