//! Tracking an OVH task to its end: the task's status, and for an installation its
//! step-by-step `install/status`, polled at a pace that fits the API's fair use.
//!
//! Owns: the poll loop, its adaptive interval, tolerance of fresh-task 404s and purged tasks,
//! stall detection and the overall timeout. Must not touch: what to do after the task (the
//! caller records, journals, reports).
//!
//! Pace: one task GET per poll (plus `install/status` every third poll of an install, for the
//! progress display), at an interval that is a third of the expected remaining time, between
//! `min_poll` and `max_poll`, and never faster than the request budget shared by every task
//! being tracked allows — so 100 installs at 60 requests/minute each get a poll every ~2
//! minutes and a completion is noticed within about that. "Stopped waiting" (timeout) is never
//! reported as a failure: the task goes on at OVHcloud.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// How many tasks are being tracked at once, for the shared budget.
#[derive(Clone, Debug, Default)]
pub struct Tracking(Arc<AtomicUsize>);

struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tracking {
    fn enter(&self) -> Active {
        self.0.fetch_add(1, Ordering::Relaxed);
        Active(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed).max(1)
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

/// The wait before the next poll: a third of the expected remaining time, within the
/// configured bounds, and no faster than the budget shared by `active` tracked tasks allows.
pub fn poll_interval(
    cfg: &TrackingConfig,
    expected_remaining: Duration,
    active: usize,
    requests_per_minute: u32,
) -> Duration {
    let own = (expected_remaining / 3).clamp(cfg.min_poll, cfg.max_poll.max(cfg.min_poll));
    if requests_per_minute == 0 {
        return own;
    }
    let fair = Duration::from_secs_f64(
        active as f64 * REQUESTS_PER_POLL * 60.0 / f64::from(requests_per_minute),
    );
    own.max(fair)
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
pub async fn track(
    client: &ovh::Client,
    server: &str,
    task: u64,
    kind: TaskKind,
    cfg: &TrackingConfig,
    tracking: &Tracking,
    events: &UnboundedSender<ApplyEvent>,
) -> Result<TaskEnd, ApplyError> {
    let _active = tracking.enter();
    let started = Instant::now();
    let mut polls: u64 = 0;
    let mut last_step: Option<(usize, String)> = None;
    let mut step_since = Instant::now();
    let mut stalled_reported = false;
    let mut remaining = match kind {
        TaskKind::Install => cfg.typical_install,
        TaskKind::Other => cfg.min_poll,
    };
    loop {
        let wait = poll_interval(
            cfg,
            remaining,
            tracking.count(),
            client.config().requests_per_minute,
        );
        tokio::time::sleep(wait).await;
        polls += 1;
        super::crash::point("track:poll");
        if started.elapsed() > cfg.timeout {
            return Err(ApplyError::StoppedWaiting {
                server: server.to_string(),
                task,
                waited: humantime::format_duration(Duration::from_secs(
                    started.elapsed().as_secs(),
                ))
                .to_string(),
            });
        }
        let t = match client.get_task(server, task).await {
            Ok(t) => Some(t),
            // A fresh task answers 404 for a while; a purged one for ever.
            Err(e) if e.is_not_found() => {
                if started.elapsed() < cfg.fresh_window {
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
    fn the_interval_follows_progress_and_the_shared_budget() {
        let cfg = TrackingConfig::default();
        // Early in an install: a third of 15 minutes, capped at 2 minutes.
        assert_eq!(
            poll_interval(&cfg, Duration::from_secs(900), 1, 60),
            Duration::from_secs(120)
        );
        // Near the end: the floor.
        assert_eq!(
            poll_interval(&cfg, Duration::from_secs(6), 1, 60),
            Duration::from_secs(10)
        );
        // 100 installs share 60 requests/minute: each polls every 133 s, so a completion is
        // noticed within about two minutes and the budget holds.
        let fair = poll_interval(&cfg, Duration::from_secs(6), 100, 60);
        assert!(fair >= Duration::from_secs(133) && fair < Duration::from_secs(180));
        // No budget (loopback simulator): the task's own pace.
        assert_eq!(
            poll_interval(&cfg, Duration::from_secs(6), 100, 0),
            Duration::from_secs(10)
        );
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
