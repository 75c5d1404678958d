//! What a pipeline run tells its caller while it runs, and the arithmetic behind its estimates.
//!
//! Owns: [`PipelineEvent`], the [`ProgressSink`] trait, and the pure estimates (how many
//! requests a detail read will make, how long the request budget makes it take, how long is
//! left). Must not touch: rendering (the CLI draws bars and log lines; the daemon will count
//! events) or the clock (callers pass elapsed times).

use std::time::Duration;

use crate::ovh::Budget;

/// Requests the detail read of one server makes with nothing cached: the boot list, the task
/// list (one expanded listing), the install status, the hardware specifications and the
/// compatible templates. Netboot objects go through a cache shared by the whole fleet: only the
/// first servers read in parallel fetch them (see [`estimate_detail`]).
pub const DETAIL_CALLS_PER_SERVER: u64 = 5;

/// A step of a run, as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineEvent {
    /// The fleet pass is done: `servers` observed with `calls` requests so far.
    Observed { servers: usize, calls: u64 },
    /// The detail read of `servers` starts; it should take about `estimated_calls` requests
    /// and, by the request budget, about `eta` (zero when the budget is unlimited).
    DetailStarted {
        servers: usize,
        estimated_calls: u64,
        eta: Duration,
    },
    /// `done` of `total` servers have their detail, with `calls` requests so far; about `eta`
    /// left.
    DetailProgress {
        done: usize,
        total: usize,
        calls: u64,
        eta: Duration,
    },
    /// The plan is made and passed its lint.
    Planned {
        servers: usize,
        detail_read: usize,
        calls: u64,
    },
}

/// Where a run sends its events. Must not block: it is called from the run's own task.
pub trait ProgressSink: Send + Sync {
    fn event(&self, event: PipelineEvent);
}

/// Drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _: PipelineEvent) {}
}

/// A channel: the receiver renders or counts. A closed receiver just stops listening.
impl ProgressSink for tokio::sync::mpsc::UnboundedSender<PipelineEvent> {
    fn event(&self, event: PipelineEvent) {
        let _ = self.send(event);
    }
}

/// What a detail read is expected to cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub calls: u64,
    /// How long the request budget makes those calls take (latency not included).
    pub eta: Duration,
}

/// The cost of reading the detail of `servers` servers, `concurrency` at a time, when
/// `cached_facts` of their hardware and compatible-template answers are already cached and
/// `templates` installation templates must be read, under a budget of `requests_per_minute`
/// (0 = unlimited). The servers of the first parallel wave each fetch the netboot objects the
/// shared cache does not hold yet: one batch request apiece.
pub fn estimate_detail(
    servers: usize,
    concurrency: usize,
    cached_facts: usize,
    templates: usize,
    requests_per_minute: u32,
) -> Estimate {
    let netboot_reads = servers.min(concurrency.max(1)) as u64;
    let calls = (servers as u64)
        .saturating_mul(DETAIL_CALLS_PER_SERVER)
        .saturating_sub(cached_facts as u64)
        .saturating_add(netboot_reads)
        .saturating_add(templates as u64);
    Estimate {
        calls,
        eta: Budget::time_for(requests_per_minute, calls),
    }
}

/// Time left in a detail read with `servers_left` servers to go, after `calls_done` of about
/// `calls_estimated` requests in `elapsed`, for a read the budget was to stretch to
/// `budget_eta`. The larger of what the budget still needs and what the pace of requests so
/// far predicts: the pace alone is too hopeful during the budget's initial burst, the budget
/// alone ignores latency when the budget is not what limits. Counted in requests, not
/// servers: servers finish in waves (several are read at once), requests flow evenly.
pub fn eta_left(
    servers_left: usize,
    calls_done: u64,
    calls_estimated: u64,
    elapsed: Duration,
    budget_eta: Duration,
) -> Duration {
    if servers_left == 0 {
        return Duration::ZERO;
    }
    let budget_left = budget_eta.saturating_sub(elapsed);
    if calls_done == 0 {
        return budget_left;
    }
    // An estimate that proved too low still leaves at least a request per server to go.
    let calls_left = calls_estimated
        .saturating_sub(calls_done)
        .max(servers_left as u64);
    let pace = elapsed.mul_f64(calls_left as f64 / calls_done as f64);
    budget_left.max(pace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_counts_calls_and_budget_time() {
        // 980 servers 8 at a time, nothing cached, one template: 4,909 calls; at 60/min the
        // first 10 go in the burst, then one per second, never more than 60 in 61 s.
        let e = estimate_detail(980, 8, 0, 1, 60);
        assert_eq!(e.calls, 4909);
        assert_eq!(e.eta, Duration::from_secs(4980));
        // Hardware and compatible templates cached for all: 3 calls per server.
        assert_eq!(estimate_detail(980, 8, 1960, 0, 60).calls, 2948);
        // Within the burst: no wait; unlimited: no wait.
        assert_eq!(estimate_detail(1, 8, 0, 0, 60).eta, Duration::ZERO);
        assert_eq!(estimate_detail(980, 8, 0, 0, 0).eta, Duration::ZERO);
        // 120/min refills two per second after a burst of 20.
        assert_eq!(
            estimate_detail(10, 10, 0, 0, 120).eta,
            Duration::from_secs(20)
        );
    }

    #[test]
    fn eta_left_takes_the_slower_of_budget_and_pace() {
        let s = Duration::from_secs;
        assert_eq!(eta_left(100, 0, 500, s(10), s(500)), s(490));
        // Fast start (burst): the budget still needs 400 s.
        assert_eq!(eta_left(50, 250, 500, s(100), s(500)), s(400));
        // Slower than the budget (latency): the pace wins.
        assert_eq!(eta_left(90, 50, 500, s(100), s(50)), s(900));
        // Past an estimate that was too low: a request per server left, at the pace so far.
        assert_eq!(eta_left(4, 100, 80, s(100), s(80)), s(4));
        assert_eq!(eta_left(0, 500, 500, s(100), s(500)), Duration::ZERO);
    }
}
