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

use serde_json::{Value, json};

use crate::model::{
    BootMode, BootType, Desired, DesiredServer, DriftAction, InstallRecord, InstallSpec, Observed,
    ObservedServer, Records, ReinstallPolicy, Settings,
};

use super::checks::check_reinstall;
use super::redact::{hash_len, redact_request};
use super::window::{WindowState, evaluate};
use super::{
    Action, ActionKind, Approval, BasedOn, BootChange, Change, Drift, Finding, Plan, PlanInput,
    Presence, ReinstallDetail, ServerPlan, Severity, StepReport, TAG_PREFIX, TaskRef,
};

pub(super) fn plan(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> Plan {
    let mut findings = Vec::new();
    let names = universe(desired, observed, records, input);
    for t in &input.targets {
        if !names.contains(t) {
            findings.push(Finding {
                severity: Severity::Error,
                code: "target-unknown".into(),
                message: format!(
                    "--target {t}: no manifest, record or live server has this name; check the spelling"
                ),
                origin: None,
            });
        }
    }
    let mut servers = BTreeMap::new();
    for name in &names {
        let sp = plan_server(name, desired, observed, records, input);
        servers.insert(name.clone(), sp);
    }
    group_limits(desired, &servers, &mut findings);
    let steps = step_reports(&servers, names.len(), input);
    Plan {
        format_version: super::FORMAT_VERSION,
        generated_at: input.now,
        revision: input.revision.clone(),
        apply_command: input.apply_command.clone(),
        targets: input.targets.clone(),
        servers,
        findings,
        steps,
    }
}

fn has_ovhform_tag(s: &ObservedServer) -> bool {
    s.tags.keys().any(|k| k.starts_with(TAG_PREFIX))
}

/// Every server the plan is about: desired, recorded, or carrying ovhform's tag. Live servers
/// ovhform never managed are not in the plan at all.
fn universe(
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = desired.servers.keys().cloned().collect();
    names.extend(records.installs.keys().cloned());
    names.extend(records.applied.keys().cloned());
    names.extend(
        observed
            .servers
            .values()
            .filter(|s| has_ovhform_tag(s))
            .map(|s| s.name.clone()),
    );
    if !input.targets.is_empty() {
        names.retain(|n| input.targets.contains(n));
    }
    names
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

fn plan_server(
    name: &str,
    desired: &Desired,
    observed: &Observed,
    records: &Records,
    input: &PlanInput,
) -> ServerPlan {
    let ds = desired.servers.get(name);
    let live = observed.servers.get(name);
    let rec = records.installs.get(name);
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
    };

    // Step: forget.
    let Some(ds) = ds else {
        let mut a = Action::new(
            ActionKind::Forget,
            "no manifest for this server any more: ovhform stops managing it and drops its record; the server itself is not touched",
        );
        if let Some(r) = rec {
            a.changes.push(Change {
                field: "record".into(),
                old: Some(format!("{} {}", r.os, short_fp(&r.fingerprint))),
                new: None,
            });
        }
        sp.actions.push(a);
        return sp;
    };

    // Step: presence.
    let Some(live) = live else {
        let mut a = Action::new(
            ActionKind::Blocked,
            "the manifest names a server this account does not have",
        );
        a.blocked_by.push(format!(
            "server {name} not found in the account (manifest {}); check the service name",
            ds.origin
        ));
        sp.findings.push(Finding {
            severity: Severity::Error,
            code: "server-not-found".into(),
            message: format!("server {name} is not in the account"),
            origin: Some(ds.origin.clone()),
        });
        sp.actions.push(a);
        return sp;
    };

    // Step: tasks. A running task owns the server: nothing else is planned for it.
    if let Some(detail) = &live.detail {
        let mut pending: Vec<_> = detail
            .tasks
            .iter()
            .filter(|t| t.status.is_pending())
            .collect();
        pending.sort_by_key(|t| t.id);
        if let Some(t) = pending.first() {
            let others = pending.len() - 1;
            let mut a = Action::new(
                ActionKind::Wait,
                format!(
                    "OVH task {} ({}) is {}{}; nothing else is planned until it ends",
                    t.id,
                    t.function,
                    task_status(t.status),
                    if others > 0 {
                        format!(" (+{others} more pending)")
                    } else {
                        String::new()
                    }
                ),
            );
            a.task = Some(TaskRef {
                id: t.id,
                function: t.function.clone(),
                status: task_status(t.status),
            });
            sp.actions.push(a);
            return sp;
        }
        if let Some(st) = &detail.install_status {
            let a = Action::new(
                ActionKind::Wait,
                format!(
                    "an installation is in progress ({} s elapsed, {} steps); nothing else is planned until it ends",
                    st.elapsed_secs,
                    st.steps.len()
                ),
            );
            sp.actions.push(a);
            return sp;
        }
    }

    let mut pl = ServerPlanner {
        name,
        ds,
        live,
        desired,
        observed,
        input,
        sp,
    };
    pl.install_step(rec);
    pl.boot_step(records.applied.get(name).and_then(|a| a.boot.as_ref()));
    pl.settings_step(records.applied.get(name).map(|a| &a.settings));
    pl.gates_step();
    let mut sp = pl.sp;
    if sp.actions.is_empty() {
        let reason = if sp.drift.is_empty() {
            "in sync with the manifest".to_string()
        } else {
            "no change planned; drift is reported, the drift policy does not correct it".to_string()
        };
        sp.actions.push(Action::new(ActionKind::Noop, reason));
    }
    // Stable sort: ties keep the order the steps produced them in.
    sp.actions.sort_by_key(|a| a.effective_kind().rank());
    sp
}

struct ServerPlanner<'a> {
    name: &'a str,
    ds: &'a DesiredServer,
    live: &'a ObservedServer,
    desired: &'a Desired,
    observed: &'a Observed,
    input: &'a PlanInput,
    sp: ServerPlan,
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
    fn install_step(&mut self, rec: Option<&InstallRecord>) {
        let Some(spec) = &self.ds.install else { return };
        let live_os = &self.live.os;
        let Some(r) = rec else {
            if *live_os == spec.os {
                let mut a = Action::new(
                    ActionKind::Adopt,
                    format!(
                        "no install record and the server already runs {live_os}: record a baseline, touch nothing"
                    ),
                );
                a.record = Some(InstallRecord {
                    server: self.name.to_string(),
                    fingerprint: spec.fingerprint.clone(),
                    os: spec.os.clone(),
                    generation: spec.generation,
                    revision: self.input.revision.clone(),
                    task_id: None,
                    started: None,
                    finished: Some(self.input.now),
                });
                self.sp.actions.push(a);
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
                );
            }
            return;
        };

        let mut changes = Vec::new();
        if r.os != spec.os {
            changes.push(Change {
                field: "install.os".into(),
                old: Some(r.os.clone()),
                new: Some(spec.os.clone()),
            });
        }
        if r.fingerprint != spec.fingerprint {
            changes.push(Change {
                field: "install.fingerprint".into(),
                old: Some(short_fp(&r.fingerprint)),
                new: Some(short_fp(&spec.fingerprint)),
            });
        }
        if spec.generation > r.generation {
            changes.push(Change {
                field: "install.generation".into(),
                old: Some(r.generation.to_string()),
                new: Some(spec.generation.to_string()),
            });
        } else if spec.generation < r.generation {
            self.sp.findings.push(Finding {
                severity: Severity::Warning,
                code: "generation-lowered".into(),
                message: format!(
                    "generation {} is lower than the recorded {}; only a bump forces a rebuild",
                    spec.generation, r.generation
                ),
                origin: Some(self.ds.origin_of("spec.install.generation").clone()),
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
            );
            return;
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
        let Some((mut d, change)) = drift else { return };
        if policy == DriftAction::Ignore {
            return;
        }
        if drift_act(policy) {
            d.corrected = true;
            self.sp.drift.push(d);
            // Correcting install drift is a wipe: it goes through the same gate as any reinstall.
            self.reinstall(
                spec,
                "correct install drift (spec.policy.drift.install: correct)".to_string(),
                vec![change],
            );
        } else {
            self.sp.drift.push(d);
        }
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

    fn reinstall(&mut self, spec: &InstallSpec, reason: String, changes: Vec<Change>) {
        let checks = check_reinstall(
            self.ds,
            spec,
            self.live,
            &self.observed.templates,
            self.input.now,
        );
        let mut blocked_by: Vec<String> = Vec::new();
        let policy = &self.ds.policy;
        let approval = match policy.reinstall {
            ReinstallPolicy::Never => {
                blocked_by.push(format!(
                    "policy reinstall: never ({})",
                    self.ds.origin_of("spec.policy.reinstall")
                ));
                self.sp.findings.push(Finding {
                    severity: Severity::Error,
                    code: "reinstall-never".into(),
                    message: format!(
                        "a reinstall is needed ({reason}) but policy reinstall is never"
                    ),
                    origin: Some(self.ds.origin_of("spec.policy.reinstall").clone()),
                });
                Approval::None
            }
            ReinstallPolicy::Manual => Approval::AllowWipe {
                flag: format!("--allow-wipe {}", self.name),
            },
            ReinstallPolicy::Auto => match &policy.maintenance_window {
                None => Approval::Auto {
                    window: None,
                    until: None,
                },
                Some(wname) => match self.desired.windows.get(wname) {
                    None => {
                        blocked_by.push(format!("maintenance window {wname} is not defined"));
                        self.sp.findings.push(Finding {
                            severity: Severity::Error,
                            code: "window-unknown".into(),
                            message: format!("maintenance window {wname} is not defined by any MaintenanceWindow manifest"),
                            origin: Some(self.ds.origin_of("spec.policy.maintenanceWindow").clone()),
                        });
                        Approval::None
                    }
                    Some(w) => match evaluate(w, self.input.now) {
                        Ok(WindowState::Open { end, .. }) => Approval::Auto {
                            window: Some(wname.clone()),
                            until: Some(end),
                        },
                        Ok(WindowState::Closed { next }) => {
                            blocked_by.push(match next {
                                Some(n) => format!("outside maintenance window {wname}; next window opens at {n}"),
                                None => format!("outside maintenance window {wname}; its schedule never fires again"),
                            });
                            Approval::None
                        }
                        Err(e) => {
                            blocked_by.push(e);
                            Approval::None
                        }
                    },
                },
            },
        };
        // Without detail the gates step blocks the server as a whole; one message is enough.
        if self.live.detail.is_some() {
            for m in &checks.missing {
                blocked_by.push(format!("checks not done: {m}"));
            }
        }
        for e in checks.errors() {
            blocked_by.push(format!(
                "invalid: {}{}",
                e.message,
                e.origin
                    .as_ref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default()
            ));
        }
        self.sp.findings.extend(checks.findings.iter().cloned());
        let detail = ReinstallDetail {
            os: spec.os.clone(),
            fingerprint: spec.fingerprint.clone(),
            generation: spec.generation,
            request: redact_request(&spec.request, &spec.secret_paths),
            disk_groups: checks.disk_groups,
            approval: if blocked_by.is_empty() {
                approval
            } else {
                Approval::None
            },
            checks_done: checks.checks_done,
        };
        let mut a = Action::new(ActionKind::Reinstall, reason);
        a.changes = changes;
        a.reinstall = Some(detail);
        if !blocked_by.is_empty() {
            block(&mut a, blocked_by);
        }
        self.sp.actions.push(a);
    }

    fn reinstall_runs(&self) -> bool {
        self.sp
            .actions
            .iter()
            .any(|a| a.kind == ActionKind::Reinstall)
    }

    fn boot_step(&mut self, applied: Option<&BootMode>) {
        let Some(bs) = &self.ds.boot else { return };
        let mode = &bs.mode;
        let reason;
        if self.reinstall_runs() {
            // A reinstall leaves the server booting from disk (bootId 1, no script).
            if *mode == BootMode::Disk {
                return;
            }
            reason = format!(
                "the reinstall leaves the server booting from disk; then set {}",
                describe_mode(mode)
            );
        } else if boot_matches(mode, self.live) {
            return;
        } else if applied == Some(mode) {
            let policy = self.ds.policy.drift.boot;
            if policy == DriftAction::Ignore {
                return;
            }
            self.sp.drift.push(Drift {
                field: "boot".into(),
                applied: Some(describe_mode(mode)),
                live: Some(describe_live(self.live)),
                policy,
                corrected: drift_act(policy),
                note: "boot changed outside ovhform".into(),
            });
            if !drift_act(policy) {
                return;
            }
            reason = "correct boot drift (spec.policy.drift.boot: correct)".to_string();
        } else {
            reason = format!(
                "boot is {}, the manifest wants {}",
                describe_live(self.live),
                describe_mode(mode)
            );
        }
        let mut a = Action::new(ActionKind::SetBoot, reason);
        a.changes.push(Change {
            field: "boot".into(),
            old: Some(describe_live(self.live)),
            new: Some(describe_mode(mode)),
        });
        let put = match mode {
            BootMode::Ipxe { script } => Ok(json!({ "bootScript": script })),
            BootMode::Disk => self.resolve(BootType::Harddisk, None),
            BootMode::Rescue { kernel } => self.resolve(BootType::Rescue, Some(kernel)),
            BootMode::Network { kernel } => self.resolve(BootType::Network, Some(kernel)),
            BootMode::BootId { id } => match &self.live.detail {
                None => Err("the server's boot list was not observed".to_string()),
                Some(d) if d.boots.iter().any(|b| b.id == *id) => Ok(json!({ "bootId": id })),
                Some(d) => Err(format!(
                    "boot id {id} is not offered by this server ({})",
                    list_boots(&d.boots)
                )),
            },
        };
        let script_diff = match (mode, &self.live.boot_script) {
            (BootMode::Ipxe { script }, old) => {
                Some(script_diff(old.as_deref().unwrap_or(""), script))
            }
            (_, Some(old)) => Some(script_diff(old, "")),
            _ => None,
        };
        let (put, blocked) = match put {
            Ok(p) => (p, None),
            Err(e) => (Value::Null, Some(e)),
        };
        a.boot = Some(BootChange {
            from: describe_live(self.live),
            to: describe_mode(mode),
            put,
            script_diff,
        });
        if let Some(e) = blocked {
            self.sp.findings.push(Finding {
                severity: Severity::Error,
                code: "boot-unresolved".into(),
                message: e.clone(),
                origin: Some(self.ds.origin_of("spec.boot").clone()),
            });
            block(&mut a, vec![e]);
            self.sp.actions.push(a);
            return;
        }
        self.sp.actions.push(a);
        if bs.reboot == crate::model::RebootPolicy::OnChange {
            self.sp.actions.push(Action::new(
                ActionKind::Reboot,
                "the boot changes and spec.boot.reboot is onChange: hard reboot to take effect",
            ));
        }
    }

    /// A boot named by type and kernel → this server's boot id.
    fn resolve(&self, ty: BootType, kernel: Option<&String>) -> Result<Value, String> {
        let Some(d) = &self.live.detail else {
            return Err("the server's boot list was not observed".to_string());
        };
        d.boots
            .iter()
            .filter(|b| b.boot_type == ty && kernel.is_none_or(|k| &b.kernel == k))
            .min_by_key(|b| b.id)
            .map(|b| json!({ "bootId": b.id }))
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
    }

    fn settings_step(&mut self, applied: Option<&Settings>) {
        let fields = settings_fields(&self.ds.settings, self.live);
        let applied_fields = applied
            .map(|s| settings_fields(s, self.live))
            .unwrap_or_default();
        let policy = self.ds.policy.drift.settings;
        let mut body = BTreeMap::new();
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
            } else {
                intended += 1;
            }
            let d = f.desired.clone().unwrap_or(Value::Null);
            changes.push(Change {
                field: format!("settings.{}", f.name),
                old: Some(show(&f.live)),
                new: Some(show(&d)),
            });
            body.insert(f.name.to_string(), d);
        }
        // A reinstall rewrites efiBootloaderPath (from the install's customizations or the
        // OS default): a managed path is set again after it, even if it matches today.
        let mut after_reinstall = false;
        if self.reinstall_runs()
            && let Some(efi) = &self.ds.settings.efi_bootloader_path
            && !body.contains_key("efiBootloaderPath")
        {
            after_reinstall = true;
            changes.push(Change {
                field: "settings.efiBootloaderPath".into(),
                old: Some("(reset by the reinstall)".into()),
                new: Some(efi.clone()),
            });
            body.insert("efiBootloaderPath".into(), Value::String(efi.clone()));
            intended += 1;
        }
        if body.is_empty() {
            return;
        }
        let reason = if after_reinstall && changes.len() == 1 {
            "the reinstall resets efiBootloaderPath; set it again after".to_string()
        } else if intended == changes.len() {
            format!(
                "settings differ from the manifest: {}",
                body.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        } else {
            "correct settings drift (spec.policy.drift.settings: correct)".to_string()
        };
        let mut a = Action::new(ActionKind::UpdateSettings, reason);
        a.changes = changes;
        a.settings = Some(body);
        self.sp.actions.push(a);
    }

    /// Conditions that block every API action on the server.
    fn gates_step(&mut self) {
        let mut why = Vec::new();
        if self.ds.policy.suspend {
            why.push(format!(
                "server is suspended ({})",
                self.ds.origin_of("spec.policy.suspend")
            ));
        }
        if self.live.detail.is_none() {
            why.push(
                "server detail (running tasks, boots, hardware, catalog) was not observed; re-run the plan".to_string(),
            );
        }
        if why.is_empty() {
            return;
        }
        for a in &mut self.sp.actions {
            if matches!(
                a.kind,
                ActionKind::Reinstall
                    | ActionKind::SetBoot
                    | ActionKind::UpdateSettings
                    | ActionKind::Reboot
            ) {
                block(a, why.clone());
            } else if a.kind == ActionKind::Blocked {
                for w in &why {
                    if !a.blocked_by.contains(w) {
                        a.blocked_by.push(w.clone());
                    }
                }
            }
        }
    }
}

/// Turn an action into `blocked`, keeping what it would have done.
fn block(a: &mut Action, why: Vec<String>) {
    if a.kind != ActionKind::Blocked {
        a.blocks = Some(a.kind);
        a.kind = ActionKind::Blocked;
        a.destructive = false;
        if let Some(r) = &mut a.reinstall {
            r.approval = Approval::None;
        }
    }
    a.blocked_by.extend(why);
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

fn group_limits(
    desired: &Desired,
    servers: &BTreeMap<String, ServerPlan>,
    findings: &mut Vec<Finding>,
) {
    for g in desired.groups.values() {
        let Some(max) = g.max_concurrent_reinstalls else {
            continue;
        };
        let n = g
            .members
            .iter()
            .filter_map(|m| servers.get(m))
            .filter(|sp| sp.actions.iter().any(|a| a.kind == ActionKind::Reinstall))
            .count();
        if n > max as usize {
            findings.push(Finding {
                severity: Severity::Warning,
                code: "group-limit".into(),
                message: format!(
                    "group {}: {n} reinstalls planned, apply runs at most {max} at a time (maxConcurrentReinstalls)",
                    g.name
                ),
                origin: Some(g.origin.clone()),
            });
        }
    }
}

fn step_reports(
    servers: &BTreeMap<String, ServerPlan>,
    planned: usize,
    input: &PlanInput,
) -> Vec<StepReport> {
    let count = |k: ActionKind| {
        servers
            .values()
            .flat_map(|s| &s.actions)
            .filter(|a| a.effective_kind() == k && a.kind == k)
            .count()
    };
    let blocked = |k: ActionKind| {
        servers
            .values()
            .flat_map(|s| &s.actions)
            .filter(|a| a.kind == ActionKind::Blocked && a.blocks == Some(k))
            .count()
    };
    let drift = |prefix: &str| {
        servers
            .values()
            .flat_map(|s| &s.drift)
            .filter(|d| d.field.starts_with(prefix))
            .count()
    };
    let step = |name: &str, notes: Vec<String>| StepReport {
        step: name.to_string(),
        notes,
    };
    vec![
        step(
            "targets",
            vec![if input.targets.is_empty() {
                format!("{planned} servers planned (all managed servers)")
            } else {
                format!("{planned} servers planned (--target)")
            }],
        ),
        step(
            "forget",
            vec![format!(
                "{} servers without a manifest",
                count(ActionKind::Forget)
            )],
        ),
        step(
            "tasks",
            vec![format!(
                "{} servers waiting on a running task",
                count(ActionKind::Wait)
            )],
        ),
        step(
            "install",
            vec![
                format!(
                    "{} adopt, {} reinstall, {} reinstall blocked",
                    count(ActionKind::Adopt),
                    count(ActionKind::Reinstall),
                    blocked(ActionKind::Reinstall)
                ),
                format!("{} install drift", drift("install")),
            ],
        ),
        step(
            "boot",
            vec![
                format!(
                    "{} set-boot, {} reboot, {} blocked",
                    count(ActionKind::SetBoot),
                    count(ActionKind::Reboot),
                    blocked(ActionKind::SetBoot)
                ),
                format!("{} boot drift", drift("boot")),
            ],
        ),
        step(
            "settings",
            vec![
                format!(
                    "{} update-settings, {} blocked",
                    count(ActionKind::UpdateSettings),
                    blocked(ActionKind::UpdateSettings)
                ),
                format!("{} settings drift", drift("settings")),
            ],
        ),
    ]
}
