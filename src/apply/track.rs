//! Tracking an OVH task to its end: the task's status, and for an installation its
//! step-by-step `install/status`, polled at a pace that fits the API's fair use.
//!
//! Owns: the poll loop, its adaptive interval, tolerance of fresh-task 404s and purged tasks,
//! stall detection and the overall timeout. Must not touch: what to do after the task (the
//! caller records, journals, reports).
//!
//! Pace: one task GET per poll (plus `install/status` every third poll of an install: the
//! progress display and the estimate of the time left). Each task wants polls at its own pace
//! ([`own_interval`]: an install a few while it runs, closing in on its expected end, then one
//! every `max_poll / 2`); every task being tracked
//! declares that wish to the shared [`Tracking`], and when together they would use more than
//! [`TRACKING_SHARE`] of the request budget, every wait is stretched by the same factor — so
//! the installs about to end keep polling often and those with a long way to go give way, and
//! no wait runs past a task's expected end. 100 installs at 60 requests/minute stay within the
//! budget and each completion is noticed within about two minutes (docs/benchmarks.md).
//! "Stopped waiting" (timeout) is never reported as a failure: the task goes on at OVHcloud.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::{ApplyError, ApplyEvent};
use crate::ovh;

/// How tasks are polled. Tests shrink every duration; the daemon shares one per process.
#[derive(Clone, Debug)]
pub struct TrackingConfig {
    /// Shortest wait between two polls of one task.
    pub min_poll: Duration,
    /// Longest wait between two polls of one task.
    pub max_poll: Duration,
    /// How long a new task may answer 404 or be missing from listings (REFERENCE §0.8;
    /// terraform-provider-ovh retries 404 for 5 minutes).
    pub fresh_window: Duration,
    /// Expected length of an installation when nothing better is known.
    pub typical_install: Duration,
    /// A reinstall POST leaves within this of its intent's `created`, or not at all (checked
    /// after the budget wait, just before signing).
    pub post_deadline: Duration,
    /// OVHcloud starts (or refuses) a reinstall within this of its intent's `created`: the
    /// deadline above plus the API's own handling. Resolution waits out this plus the fresh
    /// window before concluding anything from a task's absence.
    pub post_lag: Duration,
    /// How long a finished task surely stays in the history (OVHcloud purges after days):
    /// within it, a reinstall task missing from the list after the fresh window proves the
    /// POST created none.
    pub purge_horizon: Duration,
    /// A step unchanged this long is reported as stalled (tracking goes on).
    pub stall_after: Duration,
    /// Stop waiting for one task after this long.
    pub timeout: Duration,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            min_poll: Duration::from_secs(10),
            max_poll: Duration::from_secs(120),
            fresh_window: Duration::from_secs(5 * 60),
            typical_install: Duration::from_secs(15 * 60),
            post_deadline: Duration::from_secs(60),
            post_lag: Duration::from_secs(120),
            purge_horizon: Duration::from_secs(3600),
            stall_after: Duration::from_secs(20 * 60),
            timeout: Duration::from_secs(2 * 3600),
        }
    }
}

impl TrackingConfig {
    /// Every pace and window divided by `factor` (the overall timeout kept): tracking on a
    /// simulator whose clock runs `factor` times faster than real time.
    pub fn scaled(&self, factor: f64) -> TrackingConfig {
        if !(factor.is_finite() && factor > 0.0) {
            return self.clone();
        }
        let s = |d: Duration| d.div_f64(factor);
        TrackingConfig {
            min_poll: s(self.min_poll),
            max_poll: s(self.max_poll),
            fresh_window: s(self.fresh_window),
            typical_install: s(self.typical_install),
            post_deadline: s(self.post_deadline),
            post_lag: s(self.post_lag),
            purge_horizon: s(self.purge_horizon),
            stall_after: s(self.stall_after),
            timeout: self.timeout,
        }
    }
}

/// The polls every tracked task wants, for sharing the request budget among them.
#[derive(Clone, Debug, Default)]
pub struct Tracking(Arc<Mutex<Demand>>);

#[derive(Debug, Default)]
struct Demand {
    next: u64,
    /// Requests per second each tracked task would make at its own pace.
    rates: BTreeMap<u64, f64>,
}

struct Active {
    id: u64,
    demand: Arc<Mutex<Demand>>,
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Ok(mut d) = self.demand.lock() {
            d.rates.remove(&self.id);
        }
    }
}

impl Tracking {
    fn enter(&self) -> Active {
        let mut d = self.0.lock().expect("tracking lock");
        d.next += 1;
        let id = d.next;
        d.rates.insert(id, 0.0);
        Active {
            id,
            demand: self.0.clone(),
        }
    }

    /// Declares `active`'s own rate; returns every tracked task's rates summed.
    fn declare(&self, active: &Active, rate: f64) -> f64 {
        let mut d = self.0.lock().expect("tracking lock");
        d.rates.insert(active.id, rate);
        d.rates.values().sum()
    }
}

/// What kind of task is tracked: an install reads progress too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Install,
    Other,
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskEnd {
    Done,
    /// `customerError`, `ovhError` or `cancelled`, with the failing step when known.
    Failed {
        status: String,
        step: Option<String>,
        error: Option<String>,
        comment: Option<String>,
    },
    /// Purged from the history (GET answers 404 long after creation) with nothing installing:
    /// the caller decides from the server's state.
    Purged,
}

/// Requests one poll costs on average (a task GET, plus `install/status` every third poll).
const REQUESTS_PER_POLL: f64 = 4.0 / 3.0;

/// The part of the request budget task polls may take together: the rest stays for the
/// reinstall POSTs, re-reads and tag writes of the same run.
pub const TRACKING_SHARE: f64 = 0.75;

/// A task's own pace. An install: half its expected remaining time, between half of
/// `max_poll` and four times it — a few polls while it runs, closing in on its expected end,
/// then one every `max_poll / 2` until it ends (a completion is noticed within about that,
/// however wrong the estimate was). Any other task (a reboot lasts a minute or two): a third of
/// its expected remaining time, between `min_poll` and `max_poll`.
pub fn own_interval(
    cfg: &TrackingConfig,
    kind: TaskKind,
    expected_remaining: Duration,
) -> Duration {
    let max = cfg.max_poll.max(cfg.min_poll);
    match kind {
        TaskKind::Install => (expected_remaining / 2).clamp((max / 2).max(cfg.min_poll), max * 4),
        TaskKind::Other => (expected_remaining / 3).clamp(cfg.min_poll, max),
    }
}

/// The wait before a task's next poll: its own pace, stretched by how far the summed wishes of
/// every tracked task (`demand`, requests per second, its own included) exceed the share of
/// the budget tracking may use — but never past the task's expected end, so a task about to
/// finish is looked at when it should. `requests_per_second` 0: no budget.
pub fn poll_interval(
    own: Duration,
    expected_remaining: Duration,
    demand: f64,
    requests_per_second: f64,
) -> Duration {
    if requests_per_second <= 0.0 {
        return own;
    }
    let share = requests_per_second * TRACKING_SHARE;
    let stretch = (demand / share).max(1.0);
    // A zero pace (a test hook's clock scale) or a runaway demand must not panic.
    let stretched = Duration::try_from_secs_f64(own.as_secs_f64() * stretch).unwrap_or(own);
    if expected_remaining > own {
        stretched.min(expected_remaining)
    } else {
        stretched
    }
}

/// Expected remaining time of an install from its progress: the pace of the steps done so
/// far applied to the steps left, else the typical duration minus the elapsed time.
pub fn expected_remaining(
    typical: Duration,
    elapsed: Duration,
    steps_done: usize,
    steps_total: usize,
) -> Duration {
    if steps_done > 0 && steps_total > steps_done {
        let per_step = elapsed / steps_done as u32;
        per_step * (steps_total - steps_done) as u32
    } else {
        typical.saturating_sub(elapsed)
    }
}

/// Polls `task` on `server` until it ends, the overall timeout passes, or the task is gone.
// The task (server, id, kind, known age) and the tracking's context (client, config, shared
// budget, events) are separate concerns a struct would only bundle for this one call.
#[allow(clippy::too_many_arguments)]
pub async fn track(
    client: &ovh::Client,
    server: &str,
    task: u64,
    kind: TaskKind,
    cfg: &TrackingConfig,
    tracking: &Tracking,
    events: &UnboundedSender<ApplyEvent>,
    known_age: Duration,
) -> Result<TaskEnd, ApplyError> {
    let active = tracking.enter();
    let started = Instant::now();
    let mut polls: u64 = 0;
    let mut last_step: Option<(usize, String)> = None;
    let mut step_since = Instant::now();
    let mut stalled_reported = false;
    // The expected remaining time as of `estimated_at`.
    let mut remaining = match kind {
        TaskKind::Install => cfg.typical_install,
        TaskKind::Other => cfg.min_poll,
    };
    let mut estimated_at = Instant::now();
    let mut final_poll_done = false;
    loop {
        let left = remaining.saturating_sub(estimated_at.elapsed());
        let own = own_interval(cfg, kind, left);
        let demand = tracking.declare(&active, REQUESTS_PER_POLL / own.as_secs_f64().max(1e-3));
        // Never sleep past the timeout: the task is read once more at the deadline, so a
        // short timeout (the daemon's `--track-for`) still sees a task that ended.
        let wait = poll_interval(own, left, demand, client.config().requests_per_second())
            .min(cfg.timeout.saturating_sub(started.elapsed()));
        tokio::time::sleep(wait).await;
        polls += 1;
        super::crash::point("track:poll");
        if started.elapsed() >= cfg.timeout && final_poll_done {
            return Err(ApplyError::StoppedWaiting {
                server: server.to_string(),
                task,
                waited: humantime::format_duration(Duration::from_secs(
                    started.elapsed().as_secs(),
                ))
                .to_string(),
            });
        }
        final_poll_done |= started.elapsed() >= cfg.timeout;
        // Read before the GET: a 404 counts as "purged" only if the task had existed for the
        // fresh window when the request left (journal.pml TRACK_AFTER_ANSWER). `known_age`
        // is how long it surely existed before this tracking began: a re-attached task's age
        // counts, or a daemon pass's few seconds of tracking would take a purged task's 404
        // for a fresh one's in every pass, for ever.
        let tracked = known_age + started.elapsed();
        let t = match client.get_task(server, task).await {
            Ok(t) => Some(t),
            // A fresh task answers 404 for a while; a purged one for ever.
            Err(e) if e.is_not_found() => {
                if tracked < cfg.fresh_window {
                    continue;
                }
                None
            }
            // Transient after the client's own retries: keep waiting, the timeout bounds it.
            Err(e) if e.is_transient() => continue,
            Err(source) => {
                return Err(ApplyError::Api {
                    server: server.to_string(),
                    step: "read the task",
                    source,
                });
            }
        };
        let progress_due = kind == TaskKind::Install && (polls % 3 == 1 || t.is_none());
        let mut failing_step = None;
        if progress_due {
            match client.install_status(server).await {
                Ok(Some(st)) => {
                    let steps = st.progress.unwrap_or_default();
                    let done = steps.iter().filter(|s| s.status == "done").count();
                    let current = steps
                        .iter()
                        .position(|s| s.status != "done")
                        .unwrap_or(steps.len().saturating_sub(1));
                    let comment = steps
                        .get(current)
                        .map(|s| s.comment.clone())
                        .unwrap_or_default();
                    failing_step = steps
                        .iter()
                        .find(|s| s.status == "error")
                        .map(|s| (s.comment.clone(), s.error.clone()));
                    remaining = expected_remaining(
                        cfg.typical_install,
                        Duration::from_secs(st.elapsed_time),
                        done,
                        steps.len(),
                    );
                    estimated_at = Instant::now();
                    let _ = events.send(ApplyEvent::InstallProgress {
                        server: server.to_string(),
                        task,
                        step: (current + 1).min(steps.len()),
                        steps: steps.len(),
                        comment: comment.clone(),
                        elapsed: Duration::from_secs(st.elapsed_time),
                    });
                    let now_step = (current, comment);
                    if last_step.as_ref() != Some(&now_step) {
                        last_step = Some(now_step);
                        step_since = Instant::now();
                        stalled_reported = false;
                    } else if !stalled_reported && step_since.elapsed() > cfg.stall_after {
                        stalled_reported = true;
                        let _ = events.send(ApplyEvent::Stalled {
                            server: server.to_string(),
                            task,
                            step: last_step.clone().map(|s| s.1).unwrap_or_default(),
                            for_: step_since.elapsed(),
                        });
                    }
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => {}
                Err(_) => {}
            }
        }
        let Some(t) = t else {
            return Ok(TaskEnd::Purged);
        };
        match t.status.as_str() {
            "init" | "todo" | "doing" => {
                if kind == TaskKind::Other {
                    remaining = cfg.min_poll;
                    estimated_at = Instant::now();
                }
            }
            "done" => return Ok(TaskEnd::Done),
            other => {
                // The failing step, read now if the last poll did not.
                if kind == TaskKind::Install
                    && failing_step.is_none()
                    && let Ok(Some(st)) = client.install_status(server).await
                {
                    failing_step = st
                        .progress
                        .unwrap_or_default()
                        .into_iter()
                        .find(|s| s.status == "error")
                        .map(|s| (s.comment, s.error));
                }
                return Ok(TaskEnd::Failed {
                    status: other.to_string(),
                    step: failing_step.as_ref().map(|s| s.0.clone()),
                    error: failing_step.and_then(|s| s.1),
                    comment: t.comment.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_pace_follows_progress() {
        let cfg = TrackingConfig::default();
        let s = Duration::from_secs;
        // Early in an install: half of what is left, at most 8 minutes.
        assert_eq!(own_interval(&cfg, TaskKind::Install, s(3600)), s(480));
        assert_eq!(own_interval(&cfg, TaskKind::Install, s(900)), s(450));
        assert_eq!(own_interval(&cfg, TaskKind::Install, s(300)), s(150));
        // Near or past its expected end: every minute.
        assert_eq!(own_interval(&cfg, TaskKind::Install, s(6)), s(60));
        assert_eq!(own_interval(&cfg, TaskKind::Install, s(0)), s(60));
        // A reboot: a third of what is left, from 10 s to 2 minutes.
        assert_eq!(own_interval(&cfg, TaskKind::Other, s(900)), s(120));
        assert_eq!(own_interval(&cfg, TaskKind::Other, s(90)), s(30));
        assert_eq!(own_interval(&cfg, TaskKind::Other, s(6)), s(10));
    }

    #[test]
    fn the_shared_budget_stretches_every_wait_but_never_past_the_expected_end() {
        let s = Duration::from_secs;
        // Within the share (45 requests/min of 60): the task's own pace.
        assert_eq!(poll_interval(s(10), s(6), 0.5, 1.0), s(10));
        // Twice the share: twice the wait.
        assert_eq!(poll_interval(s(10), s(6), 1.5, 1.0), s(20));
        // A long way to go: stretched, but the poll comes at the expected end at the latest.
        assert_eq!(poll_interval(s(120), s(300), 1.5, 1.0), s(240));
        assert_eq!(poll_interval(s(120), s(200), 1.5, 1.0), s(200));
        // No budget (loopback simulator): the task's own pace.
        assert_eq!(poll_interval(s(10), s(6), 100.0, 0.0), s(10));
        // Degenerate inputs give a wait, not a panic.
        assert_eq!(poll_interval(s(0), s(0), f64::INFINITY, 1.0), s(0));
        assert_eq!(poll_interval(s(10), s(0), f64::INFINITY, 1.0), s(10));
        assert_eq!(poll_interval(s(10), s(0), f64::NAN, 1.0), s(10));
    }

    #[test]
    fn tasks_declare_their_demand_and_leave_it_when_done() {
        let t = Tracking::default();
        let a = t.enter();
        let b = t.enter();
        assert_eq!(t.declare(&a, 0.5), 0.5);
        assert_eq!(t.declare(&b, 0.25), 0.75);
        drop(a);
        assert_eq!(t.declare(&b, 0.25), 0.25);
    }

    #[test]
    fn remaining_time_comes_from_the_pace_of_the_steps() {
        let typical = Duration::from_secs(900);
        assert_eq!(
            expected_remaining(typical, Duration::from_secs(300), 5, 20),
            Duration::from_secs(900)
        );
        assert_eq!(
            expected_remaining(typical, Duration::from_secs(100), 0, 20),
            Duration::from_secs(800)
        );
        assert_eq!(
            expected_remaining(typical, Duration::from_secs(1000), 0, 0),
            Duration::ZERO
        );
    }
}
