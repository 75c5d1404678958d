//! Why the daemon runs a pass: every source (file watch, interval resync, SIGHUP, requeue
//! times the plan's blockers carry, retries after an error, leadership) merged into one
//! stream of typed [`Reason`]s.
//!
//! Owns: debouncing (a burst of manifest events — an editor's save, a `git checkout`, a
//! git-sync swap — is one pass), coalescing (whatever arrived during a pass is one more pass,
//! not one per event), the timer queue and the interval. Must not touch: what a pass does,
//! the file system (the watcher sends [`Reason::Manifests`] through a [`TriggerSender`]).
//!
//! Timing runs on tokio's clock (`tokio::time::Instant`), so tests pause and advance it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// Why a pass runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The daemon started (or became the leader).
    Start,
    /// Manifest files changed: how many file events were folded into this pass.
    Manifests { events: usize },
    /// The resync interval elapsed without another pass.
    Interval,
    /// SIGHUP.
    Hangup,
    /// A time a plan said something changes: a maintenance window opens, a task is expected to
    /// end, a lease runs out.
    Requeue { server: String, why: Requeue },
    /// The last pass failed; this is attempt `attempt` (backoff).
    Retry { attempt: u32 },
    /// Time to try for the leadership again (a standby).
    Campaign,
}

impl Reason {
    /// The label of `ovhform_reconcile_passes_total{reason}`.
    pub fn label(&self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Manifests { .. } => "manifests",
            Reason::Interval => "interval",
            Reason::Hangup => "sighup",
            Reason::Requeue { .. } => "requeue",
            Reason::Retry { .. } => "retry",
            Reason::Campaign => "campaign",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Start => f.write_str("start"),
            Reason::Manifests { events } => write!(f, "manifests changed ({events} events)"),
            Reason::Interval => f.write_str("resync interval"),
            Reason::Hangup => f.write_str("SIGHUP"),
            Reason::Requeue { server, why } => write!(f, "{server}: {why}"),
            Reason::Retry { attempt } => write!(f, "retry #{attempt} after an error"),
            Reason::Campaign => f.write_str("leadership campaign"),
        }
    }
}

/// What a requeue waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requeue {
    WindowOpens,
    TaskEnds,
    LeaseEnds,
    /// A verification read found work that needs a pass of its own (a wipe).
    Verified,
    /// An OVH planned intervention is expected to end.
    InterventionEnds,
}

impl std::fmt::Display for Requeue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Requeue::WindowOpens => "maintenance window opens",
            Requeue::TaskEnds => "task expected to end",
            Requeue::LeaseEnds => "boot lease ends",
            Requeue::Verified => "verification found work",
            Requeue::InterventionEnds => "planned intervention expected to end",
        })
    }
}

/// The sending half, for the watcher, the signal handler and tests. Never blocks: a full
/// queue already holds a pass to run.
#[derive(Clone, Debug)]
pub struct TriggerSender(mpsc::Sender<Reason>);

impl TriggerSender {
    /// Queues `reason`; dropped when the queue is full (a pass is pending anyway) or the
    /// daemon is gone.
    pub fn send(&self, reason: Reason) {
        let _ = self.0.try_send(reason);
    }
}

/// How triggers are paced.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// A pass at least this often (`--interval`).
    pub interval: Duration,
    /// Manifest events closer than this are one burst.
    pub debounce: Duration,
    /// A burst never delays its pass longer than this (an editor saving forever).
    pub debounce_max: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            interval: Duration::from_secs(300),
            debounce: Duration::from_millis(200),
            debounce_max: Duration::from_secs(2),
        }
    }
}

/// The merged stream.
pub struct Triggers {
    rx: mpsc::Receiver<Reason>,
    pacing: Pacing,
    /// When the interval fires next (reset by every pass).
    resync_at: Instant,
    /// Requeues and retries by time; one entry per (time, reason).
    timers: BTreeMap<(Instant, u64), Reason>,
    seq: u64,
    /// False once every sender is gone.
    open: bool,
}

/// Queue depth: far more than one pass can fold.
const QUEUE: usize = 1024;

impl Triggers {
    pub fn new(pacing: Pacing) -> (Triggers, TriggerSender) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let triggers = Triggers {
            rx,
            pacing,
            resync_at: Instant::now() + pacing.interval,
            timers: BTreeMap::new(),
            seq: 0,
            open: true,
        };
        (triggers, TriggerSender(tx))
    }

    /// Runs `reason` at `at` (tokio clock). An earlier identical request is kept: the
    /// earliest wins, later duplicates are dropped.
    pub fn schedule(&mut self, at: Instant, reason: Reason) {
        if let Some((&(t, _), _)) = self.timers.iter().find(|(_, r)| **r == reason) {
            if t <= at {
                return;
            }
            self.timers.retain(|_, r| *r != reason);
        }
        self.seq += 1;
        self.timers.insert((at, self.seq), reason);
    }

    /// Drops every scheduled retry (a pass succeeded).
    pub fn clear_retries(&mut self) {
        self.timers
            .retain(|_, r| !matches!(r, Reason::Retry { .. }));
    }

    /// Drops every scheduled requeue (each pass schedules the ones its plan still carries).
    pub fn clear_requeues(&mut self) {
        self.timers
            .retain(|_, r| !matches!(r, Reason::Requeue { .. }));
    }

    /// When the next timer or the interval fires.
    pub fn next_deadline(&self) -> Instant {
        self.timers
            .keys()
            .next()
            .map(|(t, _)| *t)
            .unwrap_or(self.resync_at)
            .min(self.resync_at)
    }

    /// A pass ran: the interval counts from now.
    pub fn pass_done(&mut self) {
        self.resync_at = Instant::now() + self.pacing.interval;
    }

    /// The next reason to run a pass. Manifest events are debounced; everything already
    /// queued is folded into the returned reason (a pass covers all of them). `None` when
    /// every sender is gone and no timer is left (never in the daemon: it keeps a sender).
    pub async fn next(&mut self) -> Reason {
        let first = loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                r = self.rx.recv(), if self.open => match r {
                    Some(r) => break r,
                    // Every sender gone: only timers and the interval are left.
                    None => self.open = false,
                },
                _ = tokio::time::sleep_until(deadline) => break self.fire(deadline),
            }
        };
        match first {
            Reason::Manifests { events } => self.debounce(events).await,
            other => {
                // Fold what is already queued: one pass covers it all.
                let mut manifests = 0;
                while let Ok(r) = self.rx.try_recv() {
                    if let Reason::Manifests { events } = r {
                        manifests += events;
                    }
                }
                if manifests > 0 {
                    Reason::Manifests { events: manifests }
                } else {
                    other
                }
            }
        }
    }

    /// The timer due at `deadline`, or the interval.
    fn fire(&mut self, deadline: Instant) -> Reason {
        match self.timers.keys().next().copied() {
            Some(key) if key.0 <= deadline => self.timers.remove(&key).unwrap_or(Reason::Interval),
            _ => {
                self.resync_at = Instant::now() + self.pacing.interval;
                Reason::Interval
            }
        }
    }

    /// Waits until manifest events stop for `debounce` (at most `debounce_max` after the
    /// first): the whole burst is one pass.
    async fn debounce(&mut self, mut events: usize) -> Reason {
        let cap = Instant::now() + self.pacing.debounce_max;
        loop {
            let quiet = (Instant::now() + self.pacing.debounce).min(cap);
            tokio::select! {
                r = self.rx.recv(), if self.open => match r {
                    Some(Reason::Manifests { events: n }) => events += n,
                    // Other reasons are covered by the pass this burst leads to.
                    Some(_) => {}
                    None => self.open = false,
                },
                _ = tokio::time::sleep_until(quiet) => return Reason::Manifests { events },
            }
            if Instant::now() >= cap {
                return Reason::Manifests { events };
            }
        }
    }
}

/// Exponential backoff for failed passes: 5 s, 10 s, 20 s, … capped at `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(5);
    base.saturating_mul(1u32 << attempt.min(16).saturating_sub(1))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> Pacing {
        Pacing {
            interval: Duration::from_secs(300),
            debounce: Duration::from_millis(200),
            debounce_max: Duration::from_secs(2),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_fifty_file_events_is_one_pass() {
        let (mut t, tx) = Triggers::new(pacing());
        let sender = tokio::spawn(async move {
            for _ in 0..50 {
                tx.send(Reason::Manifests { events: 1 });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tx
        });
        let started = Instant::now();
        assert_eq!(t.next().await, Reason::Manifests { events: 50 });
        // The burst lasted 490 ms; the pass starts one quiet period after its last event.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(690) && waited < Duration::from_millis(800),
            "{waited:?}"
        );
        let _tx = sender.await.unwrap();
        t.pass_done();
        // Nothing else is pending: the next reason is the interval, 300 s later.
        let at = Instant::now();
        assert_eq!(t.next().await, Reason::Interval);
        assert_eq!(at.elapsed(), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_burst_still_gets_its_pass_after_the_cap() {
        let (mut t, tx) = Triggers::new(pacing());
        let _sender = tokio::spawn(async move {
            loop {
                tx.send(Reason::Manifests { events: 1 });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let started = Instant::now();
        assert!(matches!(t.next().await, Reason::Manifests { .. }));
        assert!(started.elapsed() <= Duration::from_millis(2050));
    }

    #[tokio::test(start_paused = true)]
    async fn the_interval_fires_after_the_last_pass_not_the_first() {
        let (mut t, _tx) = Triggers::new(pacing());
        tokio::time::advance(Duration::from_secs(200)).await;
        t.pass_done();
        let at = Instant::now();
        assert_eq!(t.next().await, Reason::Interval);
        assert_eq!(at.elapsed(), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeue_fires_at_its_time_before_the_interval() {
        let (mut t, _tx) = Triggers::new(pacing());
        let why = Reason::Requeue {
            server: "a".into(),
            why: Requeue::WindowOpens,
        };
        let at = Instant::now();
        t.schedule(at + Duration::from_secs(90), why.clone());
        // A later duplicate is dropped; an earlier one replaces it.
        t.schedule(at + Duration::from_secs(120), why.clone());
        t.schedule(at + Duration::from_secs(60), why.clone());
        assert_eq!(t.next().await, why);
        assert_eq!(at.elapsed(), Duration::from_secs(60));
        assert_eq!(t.next().await, Reason::Interval);
        assert_eq!(at.elapsed(), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn sighup_runs_at_once_and_folds_queued_file_events() {
        let (mut t, tx) = Triggers::new(pacing());
        tx.send(Reason::Hangup);
        let at = Instant::now();
        assert_eq!(t.next().await, Reason::Hangup);
        assert_eq!(at.elapsed(), Duration::ZERO);
        tx.send(Reason::Hangup);
        tx.send(Reason::Manifests { events: 3 });
        assert_eq!(t.next().await, Reason::Manifests { events: 3 });
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_the_cap() {
        let max = Duration::from_secs(300);
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a, max).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
