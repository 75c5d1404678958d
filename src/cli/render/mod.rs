//! Renderings of a [`Plan`]: terminal text, JSON, Markdown for pull-request comments.
//!
//! Owns: presentation only — wording, order, colour, size caps. Must not touch: planning
//! decisions (a renderer never adds, drops or reorders what the plan says per server) and
//! secrets (plans arrive already redacted; renderers never see raw values).
//!
//! Shared here: the one-line wording of actions, disk groups and the summary, so the three
//! formats say the same thing.

use crate::plan::{
    Action, ActionKind, BootTarget, DiskFate, DiskGroupFate, Plan, Reinstall, ServerPlan, Summary,
    WaitOn,
};

pub use crate::escape;
mod markdown;
mod text;

pub use markdown::{MARKDOWN_LIMIT, render_markdown};
pub use text::render_text;

/// `--format` of `ovhform plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// Render `plan` in `format`; `color` applies to text only.
pub fn render(plan: &Plan, format: PlanFormat, color: bool) -> String {
    match format {
        PlanFormat::Text => render_text(plan, color),
        PlanFormat::Json => plan.to_json(),
        PlanFormat::Markdown => render_markdown(plan, MARKDOWN_LIMIT),
    }
}

/// Colour for text output: only on a terminal, and never when `NO_COLOR` is set to a
/// non-empty value (no-color.org). The caller passes what it read, so this stays pure.
pub fn color_wanted(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Exit code of `ovhform plan`: 1 when the plan has error-level findings (invalid spec,
/// policy `never` on a needed reinstall, unknown server or target), else 2 for changes with
/// `--detailed-exitcode`, else 0.
pub fn plan_exit_code(plan: &Plan, detailed_exitcode: bool) -> u8 {
    if plan.has_errors() {
        super::EXIT_ERROR
    } else if detailed_exitcode && plan.has_changes() {
        super::EXIT_CHANGES
    } else {
        super::EXIT_OK
    }
}

pub(crate) fn policy_name(p: crate::model::DriftAction) -> &'static str {
    match p {
        crate::model::DriftAction::Ignore => "ignore",
        crate::model::DriftAction::Warn => "warn",
        crate::model::DriftAction::Correct => "correct",
    }
}

/// Terraform-like marker of an action kind.
pub(crate) fn symbol(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Reinstall => "-/+",
        ActionKind::Adopt => "+",
        ActionKind::SetBoot | ActionKind::UpdateSettings => "~",
        ActionKind::Reboot => "↻",
        ActionKind::Wait => "…",
        ActionKind::Blocked => "!",
        ActionKind::Forget => "-",
        ActionKind::Noop => "=",
    }
}

/// `set-boot`, or `blocked reinstall` for a blocked action.
pub(crate) fn title(a: &Action) -> String {
    match a {
        Action::Blocked(b) => match &b.action {
            Some(inner) => format!("blocked {}", inner.kind()),
            None => "blocked".to_string(),
        },
        other => other.kind().to_string(),
    }
}

/// How a reinstall (runnable or blocked) gets approved; nothing for policy `never`, whose
/// blocker says it all.
pub(crate) fn approval_text(a: &Action) -> Option<String> {
    a.reinstall()
        .filter(|r| r.approval != crate::plan::Approval::Never)
        .map(|r| r.approval.to_string())
}

pub(crate) fn size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().si().to_string()
}

pub(crate) fn disk_group_line(g: &DiskGroupFate) -> String {
    let fate = match g.fate {
        DiskFate::OsInstall => "ERASED, OS installed here",
        DiskFate::Erased => "ERASED",
        DiskFate::Kept => "kept (erase: false)",
    };
    format!(
        "disk group {}: {} × {} {} ({} total) — {fate}",
        g.id,
        g.disks,
        size(g.disk_size_bytes),
        g.disk_type,
        size(g.disk_size_bytes.saturating_mul(u64::from(g.disks)))
    )
}

/// A compared value as shown: `(none)` when absent, quoted when its difference could be
/// invisible (see [`escape::value`]).
pub(crate) fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".to_string(), |v| escape::value(v).into_owned())
}

/// The detail lines under an action (changes, approval, blockers, disk groups, PUT bodies),
/// without indentation, each already escaped for a terminal. Used by both renderers.
pub(crate) fn action_lines(a: &Action) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!("reason: {}", a.reason()));
    for c in a.changes() {
        out.push(format!(
            "{}: {} → {}",
            c.field,
            shown(c.old.as_deref()),
            shown(c.new.as_deref())
        ));
    }
    if let Some(ap) = approval_text(a) {
        out.push(format!("approval: {ap}"));
    }
    for b in a.blockers() {
        out.push(format!("blocked by: {b}"));
    }
    if let Some(r) = a.reinstall() {
        if !r.checks_done {
            out.push("catalog/hardware checks: NOT DONE".to_string());
        }
        for g in &r.disk_groups {
            out.push(disk_group_line(g));
        }
    }
    if let Some(b) = a.set_boot() {
        // The iPXE script is shown as a diff; the PUT names the boot id only.
        match &b.target {
            BootTarget::Ipxe { .. } => out.push("PUT bootScript (see diff)".to_string()),
            BootTarget::Unresolved { .. } => {}
            t => {
                if let Some(id) = t.boot_id() {
                    out.push(format!("PUT bootId = {id}"));
                }
            }
        }
    }
    if let Action::Wait(w) = a
        && let WaitOn::Task(t) = &w.on
    {
        out.push(format!(
            "task {} {} ({})",
            t.id,
            t.function,
            serde_json::to_value(t.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ));
    }
    out.into_iter()
        .map(|l| escape::line(&l).into_owned())
        .collect()
}

/// The redacted reinstall request, pretty-printed, one escaped line each.
pub(crate) fn request_lines(r: &Reinstall) -> Vec<String> {
    serde_json::to_string_pretty(&r.request)
        .unwrap_or_default()
        .lines()
        .map(|l| escape::line(l).into_owned())
        .collect()
}

/// A unified diff (of a live, hostile `bootScript`), one escaped line each; a line whose
/// content has invisible differences (trailing space, CR) is quoted.
pub(crate) fn diff_lines(diff: &str) -> Vec<String> {
    diff.lines()
        .map(|l| {
            let (mark, rest) = match l.chars().next() {
                Some(c @ ('+' | '-' | ' ')) if !l.starts_with("+++") && !l.starts_with("---") => {
                    l.split_at(c.len_utf8())
                }
                _ => ("", l),
            };
            if mark.is_empty() {
                escape::line(l).into_owned()
            } else {
                format!("{mark}{}", escape::value(rest))
            }
        })
        .collect()
}

/// The per-server diff shown in Markdown `<details>`: the reinstall request that will be
/// sent, the boot script diff, the settings before/after. Escaped line by line.
pub(crate) fn server_diff(sp: &ServerPlan) -> String {
    let mut out = String::new();
    let mut push = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    for a in &sp.actions {
        if let Some(r) = a.reinstall() {
            push(format!(
                "# {} request (secret values as placeholders)",
                title(a)
            ));
            for l in request_lines(r) {
                push(format!("+ {l}"));
            }
        }
        if let Some(b) = a.set_boot() {
            push(escape::line(&format!("# {}: {} → {}", title(a), b.from, b.target)).into_owned());
            match &b.script_diff {
                Some(d) => diff_lines(d).into_iter().for_each(&mut push),
                None => {
                    push(escape::line(&format!("- boot: {}", b.from)).into_owned());
                    push(escape::line(&format!("+ boot: {}", b.target)).into_owned());
                }
            }
        }
        if a.effective_kind() == ActionKind::UpdateSettings {
            push(format!("# {}", title(a)));
            for c in a.changes() {
                push(
                    escape::line(&format!("- {}: {}", c.field, shown(c.old.as_deref())))
                        .into_owned(),
                );
                push(
                    escape::line(&format!("+ {}: {}", c.field, shown(c.new.as_deref())))
                        .into_owned(),
                );
            }
        }
    }
    out
}

/// The wipe line of a server under a banner: what the reinstall erases and keeps, and for a
/// deferred wipe when it runs. `None` when the server has no wipe.
pub(crate) fn wipe_summary(sp: &ServerPlan) -> Option<String> {
    let a = sp
        .actions
        .iter()
        .find(|a| a.kind() == ActionKind::Reinstall || a.deferred_wipe().is_some())?;
    let r = a.reinstall()?;
    let groups = |kept: bool| -> Vec<String> {
        r.disk_groups
            .iter()
            .filter(|g| (g.fate == DiskFate::Kept) == kept)
            .map(|g| format!("group {}", g.id))
            .collect()
    };
    let (erased, kept) = (groups(false), groups(true));
    let mut line = match a.deferred_wipe() {
        Some((when, tz)) => format!(
            "DEFERRED until {} (maintenance window): erases ",
            crate::plan::action::local_time(when, tz)
        ),
        None => "erases ".to_string(),
    };
    line.push_str(&if erased.is_empty() {
        "(disks unknown: hardware not read)".to_string()
    } else {
        erased.join(", ")
    });
    if !kept.is_empty() {
        line.push_str(&format!("; keeps {}", kept.join(", ")));
    }
    Some(line)
}

/// `Plan: 1 to reinstall (destructive), 2 to adopt, … 997 unchanged.`
pub fn summary_line(s: &Summary) -> String {
    let mut parts = Vec::new();
    let mut add = |n: usize, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    add(s.reinstall, "to reinstall (destructive)");
    add(
        s.deferred_reinstall,
        "deferred reinstall(s) (destructive, waiting for a maintenance window)",
    );
    add(s.adopt, "to adopt");
    add(s.set_boot, "boot change(s)");
    add(s.reboot, "reboot(s)");
    add(s.update_settings, "settings update(s)");
    add(s.wait, "waiting on a task");
    add(s.blocked, "blocked");
    add(s.forget, "to forget");
    let changes = if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    };
    let mut line = format!(
        "Plan: {changes}; {} of {} servers unchanged.",
        s.unchanged, s.servers
    );
    if s.drifted > 0 {
        line.push_str(&format!(" {} drifted.", s.drifted));
    }
    if s.errors > 0 || s.warnings > 0 {
        line.push_str(&format!(
            " {} error(s), {} warning(s).",
            s.errors, s.warnings
        ));
    }
    line
}

/// The apply command to suggest: only for a plan with changes and no errors, and only when
/// the caller gave one (no command is invented).
pub(crate) fn apply_hint(plan: &Plan) -> Option<&str> {
    (plan.has_changes() && !plan.has_errors())
        .then_some(plan.apply_command.as_deref())
        .flatten()
}

/// Servers whose plan is more than `noop`: those with a wipe (runnable or deferred only by
/// its maintenance window) first, then the others, each by name.
pub(crate) fn changed_servers(plan: &Plan) -> (Vec<&ServerPlan>, Vec<&ServerPlan>) {
    let changed = plan
        .servers
        .values()
        .filter(|s| s.actions.iter().any(|a| a.kind() != ActionKind::Noop));
    changed.partition(|s| wipe_summary(s).is_some())
}

/// One line on a boot lease: its mode, its term and where it stands at `now`.
pub(crate) fn lease_line(l: &crate::plan::LeasePlan, now: jiff::Timestamp) -> String {
    use crate::plan::LeaseState;
    let standing = match (l.state, l.ends) {
        (LeaseState::Active, Some(end)) => {
            let left = std::time::Duration::try_from(end.duration_since(now))
                .unwrap_or_default()
                .as_secs();
            format!(
                "active, ends {end} (in {}): then back to disk",
                humantime::format_duration(std::time::Duration::from_secs(left))
            )
        }
        (LeaseState::Active, None) => "active".to_string(),
        (LeaseState::NotStarted, Some(end)) => {
            format!("not started: this plan sets it; ends {end}")
        }
        (LeaseState::NotStarted, None) => {
            "not started: this plan sets it; the lease counts from then".to_string()
        }
        (LeaseState::Ended, Some(end)) => format!("ended {end}: back to disk"),
        (LeaseState::Ended, None) => "ended: back to disk".to_string(),
    };
    format!("{} {} — {standing}", l.mode, l.lease)
}
