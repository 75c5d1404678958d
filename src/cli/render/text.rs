//! Terminal text rendering: wipes first under a WIPE banner (deferred ones too, with when they
//! run), each with its full redacted request, then the other changes per server, drift,
//! findings, the coverage line and a Terraform-like summary. Colour only when the caller says
//! so (the CLI decides from the TTY and `NO_COLOR`).
//!
//! Every value is escaped where it is interpolated, colours are marks that only the final pass
//! ([`escape::finish_terminal`]) turns into SGR sequences, and that pass escapes anything else
//! unsafe: no value can move the cursor, erase the banner or fake a line.

use std::fmt::Write as _;

use crate::plan::{ActionKind, Plan, ServerPlan, Severity};

use super::escape::{self, MARK_CLOSE, MARK_OPEN};
use super::{
    action_lines, changed_servers, diff_lines, request_lines, shown, summary_line, symbol, title,
    wipe_summary,
};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("{MARK_OPEN}{code}{MARK_CLOSE}{s}{MARK_OPEN}0{MARK_CLOSE}")
        } else {
            s.to_string()
        }
    }
    fn red(&self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn cyan(&self, s: &str) -> String {
        self.wrap("36", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn kind(&self, k: ActionKind, s: &str) -> String {
        match k {
            ActionKind::Reinstall => self.red(s),
            ActionKind::Blocked | ActionKind::Wait => self.yellow(s),
            ActionKind::Adopt => self.green(s),
            ActionKind::Forget => self.dim(s),
            _ => self.cyan(s),
        }
    }
}

/// One escaped line of text (values are single lines: a newline inside one is shown as `\n`).
fn esc(s: &str) -> String {
    escape::line(s).into_owned()
}

/// Render for a terminal. `color`: emit ANSI colours.
pub fn render_text(plan: &Plan, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    let rev = plan.revision.as_deref().unwrap_or("unknown revision");
    let _ = writeln!(
        out,
        "{}",
        p.bold(&esc(&format!(
            "ovhform plan — manifests at {rev}, planned at {}",
            plan.generated_at
        )))
    );
    if !plan.targets.is_empty() {
        let t: Vec<&str> = plan.targets.iter().map(String::as_str).collect();
        let _ = writeln!(out, "Targets: {}", esc(&t.join(", ")));
    }
    let _ = writeln!(out);

    let (wipes, others) = changed_servers(plan);
    if !wipes.is_empty() {
        let bar = "!".repeat(72);
        let _ = writeln!(out, "{}", p.red(&bar));
        let _ = writeln!(
            out,
            "{}",
            p.red(&format!(
                "!! WIPE: {} server(s) will be REINSTALLED — listed disks are ERASED",
                wipes.len()
            ))
        );
        for sp in &wipes {
            if let Some(w) = wipe_summary(sp) {
                let _ = writeln!(out, "{}", p.red(&esc(&format!("!!   {}: {w}", sp.server))));
            }
        }
        let _ = writeln!(out, "{}", p.red(&bar));
        for sp in &wipes {
            server_block(&mut out, &p, sp);
        }
        let _ = writeln!(out);
    }
    if !others.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Changes:"));
        for sp in &others {
            server_block(&mut out, &p, sp);
        }
        let _ = writeln!(out);
    }

    let drifted: Vec<&ServerPlan> = plan
        .servers
        .values()
        .filter(|s| !s.drift.is_empty())
        .collect();
    if !drifted.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            p.bold("Drift (live state changed outside ovhform):")
        );
        for sp in drifted {
            for d in &sp.drift {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    p.yellow("≠"),
                    p.bold(&esc(&format!("{} {}", sp.server, d.field))),
                    esc(&format!(
                        "applied {}, live {} — {}; policy {}, {}",
                        shown(d.applied.as_deref()),
                        shown(d.live.as_deref()),
                        d.note,
                        super::policy_name(d.policy),
                        if d.corrected {
                            "corrected by this plan"
                        } else {
                            "not corrected"
                        }
                    ))
                );
            }
        }
        let _ = writeln!(out);
    }

    let leases: Vec<(&ServerPlan, &crate::plan::LeasePlan)> = plan
        .servers
        .values()
        .filter_map(|s| s.lease.as_ref().map(|l| (s, l)))
        .collect();
    if !leases.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Boot leases:"));
        for (sp, l) in leases {
            let _ = writeln!(
                out,
                "  ⏲ {}: {}",
                p.bold(&esc(&sp.server)),
                esc(&super::lease_line(l, plan.generated_at))
            );
        }
        let _ = writeln!(out);
    }

    let findings = plan.findings_by_server();
    if !findings.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Findings:"));
        for (server, f) in findings {
            let sev = match f.severity {
                Severity::Error => p.red("error"),
                Severity::Warning => p.yellow("warning"),
            };
            let at = f
                .origin
                .as_ref()
                .map(|o| format!(" {o}:"))
                .unwrap_or_default();
            let who = server.map(|s| format!(" {s}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {sev}{}",
                esc(&format!("[{}]{who}{at} {}", f.code, f.message))
            );
        }
        let _ = writeln!(out);
    }

    let s = plan.summary();
    let _ = writeln!(out, "{}", p.dim(&esc(&plan.report.coverage.line())));
    let _ = writeln!(out, "{}", p.bold(&summary_line(&s)));
    if let Some(cmd) = super::apply_hint(plan) {
        let _ = writeln!(out, "Apply with: {}", esc(cmd));
    }
    escape::finish_terminal(&out)
}

fn server_block(out: &mut String, p: &Paint, sp: &ServerPlan) {
    let _ = writeln!(out, "  {}", p.bold(&esc(&sp.server)));
    for a in sp.actions.iter().filter(|a| a.kind() != ActionKind::Noop) {
        let head = format!("{} {}", symbol(a.kind()), title(a));
        let _ = writeln!(out, "    {}", p.kind(a.kind(), &head));
        for l in action_lines(a) {
            let _ = writeln!(out, "        {l}");
        }
        if let Some(r) = a.reinstall() {
            let _ = writeln!(out, "        request (secret values as placeholders):");
            for l in request_lines(r) {
                let _ = writeln!(out, "          {l}");
            }
        }
        if let Some(d) = a.set_boot().and_then(|b| b.script_diff.as_ref()) {
            for l in diff_lines(d) {
                let painted = if l.starts_with('+') && !l.starts_with("+++") {
                    p.green(&l)
                } else if l.starts_with('-') && !l.starts_with("---") {
                    p.red(&l)
                } else {
                    l
                };
                let _ = writeln!(out, "        {painted}");
            }
        }
    }
}
