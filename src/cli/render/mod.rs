//! Renderings of a [`Plan`]: terminal text, JSON, Markdown for pull-request comments.
//!
//! Owns: presentation only — wording, order, colour, size caps. Must not touch: planning
//! decisions (a renderer never adds, drops or reorders what the plan says per server) and
//! secrets (plans arrive already redacted; renderers never see raw values).
//!
//! Shared here: the one-line wording of actions, disk groups and the summary, so the three
//! formats say the same thing.

use crate::plan::{
    Action, ActionKind, BootTarget, DiskFate, DiskGroupFate, Plan, ServerPlan, Summary, WaitOn,
};

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

pub(crate) fn approval_text(a: &Action) -> Option<String> {
    match a {
        Action::Reinstall(r) => Some(r.approval.to_string()),
        _ => None,
    }
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

/// The detail lines under an action (changes, disk groups, blockers, PUT bodies), without
/// indentation. Used by the text and Markdown renderers.
pub(crate) fn action_lines(a: &Action) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!("reason: {}", a.reason()));
    for c in a.changes() {
        out.push(format!(
            "{}: {} → {}",
            c.field,
            c.old.as_deref().unwrap_or("(none)"),
            c.new.as_deref().unwrap_or("(none)")
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
        // The iPXE script is shown as a diff below; the PUT names the boot id only.
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
    out
}

/// The per-server diff shown in Markdown `<details>` (and the iPXE diff in text): the
/// reinstall request that will be sent, the boot script diff, the settings before/after.
pub(crate) fn server_diff(sp: &ServerPlan) -> String {
    let mut out = String::new();
    for a in &sp.actions {
        if let Some(r) = a.reinstall() {
            out.push_str(&format!(
                "# {} request (secrets shown as sha256 + length)\n",
                title(a)
            ));
            let body = serde_json::to_string_pretty(&r.request).unwrap_or_default();
            for l in body.lines() {
                out.push_str(&format!("+ {l}\n"));
            }
        }
        if let Some(b) = a.set_boot() {
            out.push_str(&format!("# {}: {} → {}\n", title(a), b.from, b.target));
            match &b.script_diff {
                Some(d) => out.push_str(d),
                None => {
                    out.push_str(&format!("- boot: {}\n", b.from));
                    out.push_str(&format!("+ boot: {}\n", b.target));
                }
            }
        }
        if a.effective_kind() == ActionKind::UpdateSettings {
            out.push_str(&format!("# {}\n", title(a)));
            for c in a.changes() {
                out.push_str(&format!(
                    "- {}: {}\n",
                    c.field,
                    c.old.as_deref().unwrap_or("(unset)")
                ));
                out.push_str(&format!(
                    "+ {}: {}\n",
                    c.field,
                    c.new.as_deref().unwrap_or("(unset)")
                ));
            }
        }
    }
    out
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

/// Servers whose plan is more than `noop`, destructive ones first (then by name).
pub(crate) fn changed_servers(plan: &Plan) -> (Vec<&ServerPlan>, Vec<&ServerPlan>) {
    let changed = plan
        .servers
        .values()
        .filter(|s| s.actions.iter().any(|a| a.kind() != ActionKind::Noop));
    changed.partition(|s| s.actions.iter().any(|a| a.kind() == ActionKind::Reinstall))
}
