//! Terminal text rendering: destructive actions first under a WIPE banner, then the other
//! changes per server, drift, findings, and a Terraform-like summary line. Colour only when
//! the caller says so (the CLI decides from the TTY and `NO_COLOR`).

use std::fmt::Write as _;

use crate::plan::{ActionKind, Plan, ServerPlan, Severity};

use super::{action_lines, changed_servers, summary_line, symbol, title};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
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

/// Render for a terminal. `color`: emit ANSI colours.
pub fn render_text(plan: &Plan, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    let rev = plan.revision.as_deref().unwrap_or("unknown revision");
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!(
            "ovhform plan — manifests at {rev}, planned at {}",
            plan.generated_at
        ))
    );
    if !plan.targets.is_empty() {
        let t: Vec<&str> = plan.targets.iter().map(String::as_str).collect();
        let _ = writeln!(out, "Targets: {}", t.join(", "));
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
                    "  {} {}: applied {}, live {} — {}; policy {}, {}",
                    p.yellow("≠"),
                    p.bold(&format!("{} {}", sp.server, d.field)),
                    d.applied.as_deref().unwrap_or("(none)"),
                    d.live.as_deref().unwrap_or("(none)"),
                    d.note,
                    super::policy_name(d.policy),
                    if d.corrected {
                        "corrected by this plan"
                    } else {
                        "not corrected"
                    }
                );
            }
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
            let _ = writeln!(out, "  {sev}[{}]{who}{at} {}", f.code, f.message);
        }
        let _ = writeln!(out);
    }

    let s = plan.summary();
    let _ = writeln!(out, "{}", p.dim(&plan.report.coverage.line()));
    let _ = writeln!(out, "{}", p.bold(&summary_line(&s)));
    if let Some(cmd) = super::apply_hint(plan) {
        let _ = writeln!(out, "Apply with: {cmd}");
    }
    out
}

fn server_block(out: &mut String, p: &Paint, sp: &ServerPlan) {
    let _ = writeln!(out, "  {}", p.bold(&sp.server));
    for a in sp.actions.iter().filter(|a| a.kind() != ActionKind::Noop) {
        let head = format!("{} {}", symbol(a.kind()), title(a));
        let _ = writeln!(out, "    {}", p.kind(a.kind(), &head));
        for l in action_lines(a) {
            let _ = writeln!(out, "        {l}");
        }
        if let Some(d) = a.set_boot().and_then(|b| b.script_diff.as_ref()) {
            for l in d.lines() {
                let painted = if l.starts_with('+') && !l.starts_with("+++") {
                    p.green(l)
                } else if l.starts_with('-') && !l.starts_with("---") {
                    p.red(l)
                } else {
                    l.to_string()
                };
                let _ = writeln!(out, "        {painted}");
            }
        }
    }
}
