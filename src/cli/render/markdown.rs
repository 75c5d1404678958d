//! Markdown rendering for a pull-request comment: a one-line summary, a wipe banner, a counts
//! table, drift, findings, one collapsible `<details>` per changed server with its diff, and
//! the exact apply command. Capped in size (GitHub refuses comments over 65,536 characters):
//! servers that do not fit are counted in a "… N more servers" note.

use std::fmt::Write as _;

use crate::plan::{ActionKind, Plan, ServerPlan, Severity};

use super::escape::{self, md, md_code};
use super::{
    action_lines, changed_servers, server_diff, shown, summary_line, symbol, title, wipe_summary,
};

/// Default cap, below GitHub's 65,536-character comment limit with room for a CI footer.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// Render for a PR comment, at most about `max_bytes` bytes. The header, the wipe banner
/// (which names every server to be wiped, never cut) and the closing part are always kept;
/// per-server sections are dropped from the end first, and the comment says so.
pub fn render_markdown(plan: &Plan, max_bytes: usize) -> String {
    let s = plan.summary();
    let mut head = String::new();
    let _ = writeln!(head, "### ovhform plan\n");
    let _ = writeln!(head, "**{}**\n", md(&summary_line(&s)));
    if let Some(rev) = &plan.revision {
        let _ = writeln!(
            head,
            "Manifests at {}, planned at {}.\n",
            md_code(rev),
            plan.generated_at
        );
    }
    let (wipes, others) = changed_servers(plan);
    if !wipes.is_empty() {
        let _ = writeln!(head, "> [!CAUTION]");
        let _ = writeln!(
            head,
            "> **WIPE: {} server(s) will be reinstalled and their listed disks ERASED.**",
            wipes.len()
        );
        let lines: Vec<String> = wipes
            .iter()
            .filter_map(|sp| {
                wipe_summary(sp).map(|w| format!("> - {}: {}", md_code(&sp.server), md(&w)))
            })
            .collect();
        let full: usize = lines.iter().map(|l| l.len() + 1).sum();
        if full <= max_bytes / 2 {
            for l in lines {
                let _ = writeln!(head, "{l}");
            }
        } else {
            // Too many to detail in one comment: still name every one, compactly.
            let names: Vec<String> = wipes.iter().map(|sp| md_code(&sp.server)).collect();
            let _ = writeln!(
                head,
                "> Every server to be wiped (their disk groups are in the full plan): {}",
                names.join(", ")
            );
        }
        let _ = writeln!(head);
    }
    let _ = writeln!(head, "| action | count |\n|---|---:|");
    for (label, n) in [
        ("reinstall (destructive)", s.reinstall),
        ("deferred reinstall (destructive)", s.deferred_reinstall),
        ("adopt", s.adopt),
        ("set-boot", s.set_boot),
        ("reboot", s.reboot),
        ("update-settings", s.update_settings),
        ("wait", s.wait),
        ("blocked", s.blocked),
        ("forget", s.forget),
        ("unchanged servers", s.unchanged),
    ] {
        if n > 0 {
            let _ = writeln!(head, "| {label} | {n} |");
        }
    }
    let _ = writeln!(head);

    let drifted: Vec<&ServerPlan> = plan
        .servers
        .values()
        .filter(|s| !s.drift.is_empty())
        .collect();
    if !drifted.is_empty() {
        let _ = writeln!(head, "#### Drift (changed outside ovhform)\n");
        let _ = writeln!(
            head,
            "| server | field | applied | live | policy | note |\n|---|---|---|---|---|---|"
        );
        let mut shown = 0;
        for sp in &drifted {
            for d in &sp.drift {
                if shown < 50 {
                    let _ = writeln!(
                        head,
                        "| {} | {} | {} | {} | {}{} | {} |",
                        md_code(&sp.server),
                        md(&d.field),
                        cell(d.applied.as_deref()),
                        cell(d.live.as_deref()),
                        super::policy_name(d.policy),
                        if d.corrected { ", corrected" } else { "" },
                        md(&d.note)
                    );
                }
                shown += 1;
            }
        }
        if shown > 50 {
            let _ = writeln!(head, "\n… {} more drifted fields", shown - 50);
        }
        let _ = writeln!(head);
    }

    let leases: Vec<(&ServerPlan, &crate::plan::LeasePlan)> = plan
        .servers
        .values()
        .filter_map(|s| s.lease.as_ref().map(|l| (s, l)))
        .collect();
    if !leases.is_empty() {
        let _ = writeln!(head, "#### Boot leases\n");
        for (i, (sp, l)) in leases.iter().enumerate() {
            if i == 50 {
                let _ = writeln!(head, "- … {} more leases", leases.len() - 50);
                break;
            }
            let _ = writeln!(
                head,
                "- {}: {}",
                md_code(&sp.server),
                md(&super::lease_line(l, plan.generated_at))
            );
        }
        let _ = writeln!(head);
    }

    let findings = plan.findings_by_server();
    if !findings.is_empty() {
        let _ = writeln!(head, "#### Findings\n");
        for (i, (server, f)) in findings.iter().enumerate() {
            if i == 50 {
                let _ = writeln!(head, "- … {} more findings", findings.len() - 50);
                break;
            }
            let sev = if f.severity == Severity::Error {
                "❌ error"
            } else {
                "⚠️ warning"
            };
            let at = f
                .origin
                .as_ref()
                .map(|o| format!(" {}", md_code(&o.to_string())))
                .unwrap_or_default();
            let who = server
                .map(|s| format!(" {}", md_code(s)))
                .unwrap_or_default();
            let _ = writeln!(head, "- {sev} `{}`{who}{at}: {}", f.code, md(&f.message));
        }
        let _ = writeln!(head);
    }

    let mut tail = String::new();
    let _ = writeln!(tail, "_{}_\n", md(&plan.report.coverage.line()));
    if let Some(cmd) = super::apply_hint(plan) {
        // The command quotes names and paths; a backtick run in one cannot close the fence.
        let cmd = escape::line(cmd);
        let longest = cmd.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        let _ = writeln!(tail, "To apply after merge:\n\n{fence}sh\n{cmd}\n{fence}");
    } else if !plan.has_changes() {
        let _ = writeln!(tail, "No changes: the fleet matches the manifests.");
    }

    // Header lists are capped above; if a tiny limit still cannot hold them, cut the header
    // (at a character boundary) rather than exceed the limit.
    let room = max_bytes.saturating_sub(tail.len() + 120);
    if head.len() > room {
        let mut cut = room;
        while !head.is_char_boundary(cut) {
            cut -= 1;
        }
        head.truncate(cut);
        head.push_str("\n\n… (truncated: comment size limit)\n\n");
    }
    let mut body = String::new();
    let servers: Vec<&ServerPlan> = wipes.into_iter().chain(others).collect();
    let budget = max_bytes.saturating_sub(head.len() + tail.len() + 200);
    let mut omitted = 0;
    for (i, sp) in servers.iter().enumerate() {
        let section = server_section(sp);
        if body.len() + section.len() > budget {
            omitted = servers.len() - i;
            break;
        }
        body.push_str(&section);
    }
    if omitted > 0 {
        let _ = writeln!(
            body,
            "\n… {omitted} more server(s) not detailed here (comment size limit); every server to be wiped is named in the banner above. The full plan: `ovhform plan` (or the JSON plan saved with `--out` by the CI job).\n"
        );
    }
    // Values were escaped where interpolated; this pass catches anything that slipped by.
    escape::block(&format!("{head}{body}\n{tail}")).into_owned()
}

fn cell(s: Option<&str>) -> String {
    md(&shown(s))
}

fn server_section(sp: &ServerPlan) -> String {
    let mut out = String::new();
    let kinds: Vec<String> = sp
        .actions
        .iter()
        .filter(|a| a.kind() != ActionKind::Noop)
        .map(|a| format!("{} {}", symbol(a.kind()), title(a)))
        .collect();
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code>: {}</summary>\n",
        escape::html(&sp.server),
        escape::html(&kinds.join(", "))
    );
    for a in sp.actions.iter().filter(|a| a.kind() != ActionKind::Noop) {
        let _ = writeln!(out, "- **{}**", md(&title(a)));
        for l in action_lines(a) {
            let _ = writeln!(out, "  - {}", md(&l));
        }
    }
    let mut diff = server_diff(sp);
    if !diff.is_empty() {
        if !diff.ends_with('\n') {
            diff.push('\n');
        }
        // A fence longer than any backtick run in the diff keeps user text inside the block.
        let longest = diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let _ = writeln!(out, "\n{fence}diff\n{}{fence}", diff);
    }
    let _ = writeln!(out, "\n</details>\n");
    out
}
