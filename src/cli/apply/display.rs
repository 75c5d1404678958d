//! What an apply shows while it runs, from the executor's events: on a terminal a live
//! multi-server display (indicatif: a header with totals and elapsed time, one bar per server
//! being worked on — "step 10/21 Applying Partitioning" —, finished servers scrolling above as
//! lines); otherwise one plain line per event that matters; with `--log-format json`, `info`
//! events in the log.
//!
//! Owns: the wording of those lines ([`describe`]) and counting what the summary needs
//! ([`Tally`]). Must not touch: stdout (the plan and the summary go there), deciding anything.
//! Every server name, step comment and error text comes from the API or a plan file: each
//! is escaped with `crate::escape::line` where it is interpolated.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::apply::{ApplyEvent, Outcome};
use crate::cli::progress::{Style, took_text};
use crate::escape;
use crate::plan::ActionKind;

/// What the summary counts from the events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records written to the state store (adopt, install).
    pub records: usize,
    /// Tag writes (records mirrored, or this fleet's tags removed by a forget).
    pub tag_writes: usize,
}

/// Draws until the executor drops its sender, then returns the tally.
pub async fn render(
    mut rx: UnboundedReceiver<ApplyEvent>,
    style: Style,
    working: BTreeSet<String>,
) -> Tally {
    let mut draw: Box<dyn Draw> = match style {
        Style::Off => Box::new(Silent),
        Style::Bar => Box::new(Bars::new(working.len())),
        Style::Lines => Box::new(Lines::new(Box::new(std::io::stderr()))),
        Style::Log => Box::new(Log::default()),
    };
    let mut tally = Tally::default();
    while let Some(e) = rx.recv().await {
        match &e {
            ApplyEvent::Recorded { .. } => tally.records += 1,
            ApplyEvent::TagsWritten { .. } => tally.tag_writes += 1,
            _ => {}
        }
        draw.event(&e);
    }
    draw.finish();
    tally
}

/// An escaped value for one line.
fn e(s: &str) -> String {
    escape::line(s).into_owned()
}

/// How a server ended, in a few words (details come in the summary).
pub fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Converged => "converged".into(),
        Outcome::Unchanged => "unchanged".into(),
        Outcome::PendingApproval => "pending approval: its reinstall was not approved".into(),
        Outcome::Blocked(why) => format!(
            "blocked: {}",
            why.iter().map(|w| e(w)).collect::<Vec<_>>().join("; ")
        ),
        Outcome::Waiting => "waiting: an OVH task runs on it; nothing was done".into(),
        Outcome::Skipped(why) => format!("skipped: {}", e(why)),
        Outcome::Failed(why) => format!("FAILED: {}", e(why)),
        Outcome::Degraded(why) => format!("DEGRADED: {}", e(why)),
        Outcome::StoppedWaiting(why) => format!("stopped waiting (not failed): {}", e(why)),
    }
}

/// The line an event deserves, if any (`None`: nothing new to say). `last_step` remembers,
/// per server, the install step last shown, so a poll that saw no progress says nothing.
pub fn describe(
    event: &ApplyEvent,
    last_step: &mut BTreeMap<String, (usize, String)>,
) -> Option<String> {
    Some(match event {
        ApplyEvent::IntentFound { server, state } => format!(
            "{}: an earlier run's reinstall is in the journal ({}): resolving it first",
            e(server),
            e(state)
        ),
        ApplyEvent::ActionStarted { server, action } => match action {
            ActionKind::Reinstall => format!(
                "{}: reinstall: re-reading the server, then starting the installation",
                e(server)
            ),
            ActionKind::Adopt => format!(
                "{}: adopt: re-checking tasks and install status, then recording a baseline",
                e(server)
            ),
            other => format!("{}: {other} started", e(server)),
        },
        ApplyEvent::ActionDone { server, action } => format!("{}: {action} done", e(server)),
        ApplyEvent::Reinstalling { server, task } => {
            format!("{}: installation task {task} started", e(server))
        }
        ApplyEvent::InstallProgress {
            server,
            step,
            steps,
            comment,
            elapsed,
            ..
        } => {
            let now = (*step, comment.clone());
            if last_step.get(server) == Some(&now) {
                return None;
            }
            last_step.insert(server.clone(), now);
            format!(
                "{}: step {step}/{steps} {} ({} elapsed)",
                e(server),
                e(comment),
                took_text(*elapsed)
            )
        }
        ApplyEvent::Stalled {
            server,
            task,
            step,
            for_,
        } => format!(
            "{}: task {task} has been at step {} for {}: still waiting",
            e(server),
            e(step),
            took_text(*for_)
        ),
        ApplyEvent::Recorded { server } => {
            format!("{}: record written to the state store", e(server))
        }
        ApplyEvent::TagsWritten { server } => {
            format!("{}: record mirrored into the server's IAM tags", e(server))
        }
        ApplyEvent::TagsFailed { server, error } => format!(
            "{}: the record is in the state store but its IAM tags could not be written ({}); the next apply rewrites them",
            e(server),
            e(error)
        ),
        ApplyEvent::ServerDone { server, outcome } => {
            if *outcome == Outcome::Unchanged {
                return None;
            }
            format!("{}: {}", e(server), outcome_text(outcome))
        }
    })
}

/// How one style draws.
trait Draw: Send {
    fn event(&mut self, event: &ApplyEvent);
    fn finish(&mut self);
}

struct Silent;

impl Draw for Silent {
    fn event(&mut self, _: &ApplyEvent) {}
    fn finish(&mut self) {}
}

/// One plain line per event that matters (no terminal).
pub struct Lines {
    out: Box<dyn Write + Send>,
    last_step: BTreeMap<String, (usize, String)>,
}

impl Lines {
    pub fn new(out: Box<dyn Write + Send>) -> Lines {
        Lines {
            out,
            last_step: BTreeMap::new(),
        }
    }
}

impl Draw for Lines {
    fn event(&mut self, event: &ApplyEvent) {
        if let Some(line) = describe(event, &mut self.last_step) {
            // A closed stderr is no reason to stop an apply.
            let _ = writeln!(self.out, "{line}");
        }
    }
    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// `info` events for `--log-format json` (stderr is machine-read there).
#[derive(Default)]
struct Log {
    last_step: BTreeMap<String, (usize, String)>,
}

impl Draw for Log {
    fn event(&mut self, event: &ApplyEvent) {
        let Some(message) = describe(event, &mut self.last_step) else {
            return;
        };
        match event {
            ApplyEvent::InstallProgress {
                server,
                task,
                step,
                steps,
                ..
            } => tracing::info!(server = %e(server), task, step, steps, "{message}"),
            ApplyEvent::Reinstalling { server, task } => {
                tracing::info!(server = %e(server), task, "{message}")
            }
            ApplyEvent::ServerDone { server, outcome } => {
                tracing::info!(server = %e(server), outcome = outcome_kind(outcome), "{message}")
            }
            _ => tracing::info!("{message}"),
        }
    }
    fn finish(&mut self) {}
}

/// A stable name per outcome, for machine-read logs.
pub fn outcome_kind(o: &Outcome) -> &'static str {
    match o {
        Outcome::Converged => "converged",
        Outcome::Unchanged => "unchanged",
        Outcome::PendingApproval => "pending-approval",
        Outcome::Blocked(_) => "blocked",
        Outcome::Waiting => "waiting",
        Outcome::Skipped(_) => "skipped",
        Outcome::Failed(_) => "failed",
        Outcome::Degraded(_) => "degraded",
        Outcome::StoppedWaiting(_) => "stopped-waiting",
    }
}

/// The live display on a terminal.
struct Bars {
    multi: indicatif::MultiProgress,
    header: indicatif::ProgressBar,
    servers: BTreeMap<String, indicatif::ProgressBar>,
    total: usize,
    done: usize,
    installing: BTreeSet<String>,
    problems: usize,
    last_step: BTreeMap<String, (usize, String)>,
}

const TICK: Duration = Duration::from_millis(120);

fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

impl Bars {
    fn new(total: usize) -> Bars {
        let multi =
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
        let header = multi.add(indicatif::ProgressBar::new_spinner());
        header.set_style(style("{spinner} {msg} [{elapsed_precise}]"));
        header.enable_steady_tick(TICK);
        let bars = Bars {
            multi,
            header,
            servers: BTreeMap::new(),
            total,
            done: 0,
            installing: BTreeSet::new(),
            problems: 0,
            last_step: BTreeMap::new(),
        };
        bars.update_header();
        bars
    }

    fn update_header(&self) {
        let mut msg = format!(
            "apply: {}/{} servers done, {} installing",
            self.done,
            self.total,
            self.installing.len()
        );
        if self.problems > 0 {
            msg.push_str(&format!(", {} with problems", self.problems));
        }
        self.header.set_message(msg);
    }

    fn bar(&mut self, server: &str) -> &indicatif::ProgressBar {
        if !self.servers.contains_key(server) {
            let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(style("  {spinner} {prefix:<26} {msg} ({elapsed})"));
            bar.set_prefix(e(server));
            bar.enable_steady_tick(TICK);
            self.servers.insert(server.to_string(), bar);
            // A server seen for the first time (an earlier run's intent) adds to the total.
            self.total = self.total.max(self.done + self.servers.len());
        }
        &self.servers[server]
    }
}

impl Draw for Bars {
    fn event(&mut self, event: &ApplyEvent) {
        match event {
            ApplyEvent::IntentFound { server, .. } => {
                self.bar(server)
                    .set_message("resolving an earlier run's reinstall intent");
            }
            ApplyEvent::ActionStarted { server, action } => {
                let msg = match action {
                    ActionKind::Reinstall => "reinstall: re-reading the server".to_string(),
                    other => other.to_string(),
                };
                self.bar(server).set_message(msg);
            }
            ApplyEvent::Reinstalling { server, task } => {
                self.installing.insert(server.clone());
                self.bar(server)
                    .set_message(format!("installation task {task} started"));
            }
            ApplyEvent::InstallProgress {
                server,
                step,
                steps,
                comment,
                ..
            } => {
                self.last_step
                    .insert(server.clone(), (*step, comment.clone()));
                let bar = self.bar(server).clone();
                if bar.length() != Some(*steps as u64) {
                    bar.set_length(*steps as u64);
                    bar.set_style(style(
                        "  {spinner} {prefix:<26} [{bar:21}] {msg} ({elapsed})",
                    ));
                }
                bar.set_position(*step as u64);
                bar.set_message(format!("step {step}/{steps} {}", e(comment)));
            }
            ApplyEvent::Stalled { .. } | ApplyEvent::TagsFailed { .. } => {
                if let Some(line) = describe(event, &mut self.last_step) {
                    let _ = self.multi.println(line);
                }
            }
            ApplyEvent::Recorded { server } => {
                self.bar(server).set_message("recording");
            }
            ApplyEvent::TagsWritten { .. } | ApplyEvent::ActionDone { .. } => {}
            ApplyEvent::ServerDone { server, outcome } => {
                self.installing.remove(server);
                if let Some(bar) = self.servers.remove(server) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                if *outcome != Outcome::Unchanged {
                    self.done += 1;
                    if !matches!(
                        outcome,
                        Outcome::Converged
                            | Outcome::PendingApproval
                            | Outcome::Blocked(_)
                            | Outcome::Waiting
                    ) {
                        self.problems += 1;
                    }
                    let _ = self
                        .multi
                        .println(format!("{}: {}", e(server), outcome_text(outcome)));
                }
            }
        }
        self.update_header();
    }

    fn finish(&mut self) {
        for bar in self.servers.values() {
            bar.finish_and_clear();
        }
        self.header.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_only_what_is_new_and_escape_everything() {
        let mut seen = BTreeMap::new();
        let progress = |step, comment: &str| ApplyEvent::InstallProgress {
            server: "ns1\x1b[31m".into(),
            task: 7,
            step,
            steps: 21,
            comment: comment.into(),
            elapsed: Duration::from_secs(65),
        };
        let first = describe(&progress(10, "Applying Partitioning"), &mut seen).unwrap();
        assert_eq!(
            first,
            "ns1\\x1b[31m: step 10/21 Applying Partitioning (1m05s elapsed)"
        );
        assert_eq!(
            describe(&progress(10, "Applying Partitioning"), &mut seen),
            None
        );
        assert!(
            describe(&progress(11, "x\u{202e}y"), &mut seen)
                .unwrap()
                .contains("x\\u{202e}y")
        );
        let done = ApplyEvent::ServerDone {
            server: "a".into(),
            outcome: Outcome::StoppedWaiting("a: stopped waiting for task 7".into()),
        };
        let line = describe(&done, &mut seen).unwrap();
        assert!(line.contains("stopped waiting (not failed)"), "{line}");
        assert!(!line.to_lowercase().contains("failed:"), "{line}");
        let unchanged = ApplyEvent::ServerDone {
            server: "a".into(),
            outcome: Outcome::Unchanged,
        };
        assert_eq!(describe(&unchanged, &mut seen), None);
    }
}
