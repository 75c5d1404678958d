//! The client-side request budget: a token bucket refilled at `requests_per_minute / 60` per
//! second with a burst of one sixth of a minute's budget (10 requests at 60/min), and a
//! sliding window on top: no 61-second window ever holds more than `requests_per_minute`
//! sends, OVH's "about 60 requests per minute per key" fair use (REFERENCE §6.7) read
//! strictly — the extra second absorbs network jitter, so the API's own count over any minute
//! stays within the budget too. Pure: the caller passes the clock; the client sleeps for the returned wait (tokio
//! time, so paused-time tests work).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Budget {
    per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Option<Instant>,
    /// The send times reserved last, at most `limit` of them (the window's content).
    window: VecDeque<Instant>,
    limit: usize,
    period: Duration,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Budget {
    /// `0` = unlimited.
    pub fn new(requests_per_minute: u32) -> Budget {
        Budget::per_period(requests_per_minute, WINDOW)
    }

    /// `requests` per `period` instead of per minute (a simulator's scaled minute).
    pub fn per_period(requests: u32, period: Duration) -> Budget {
        let capacity = f64::from((requests / 6).max(1));
        let period = if period.is_zero() { WINDOW } else { period };
        Budget {
            per_sec: f64::from(requests) / period.as_secs_f64(),
            capacity,
            tokens: capacity,
            last: None,
            window: VecDeque::new(),
            limit: requests as usize,
            period,
        }
    }

    /// How long `calls` requests take through a fresh bucket at `requests_per_minute`: the
    /// burst goes at once, the rest at the refill rate (when the last one may be sent; latency
    /// not included). Zero when unlimited. For estimates shown to users.
    pub fn time_for(requests_per_minute: u32, calls: u64) -> Duration {
        if requests_per_minute == 0 || calls == 0 {
            return Duration::ZERO;
        }
        // Replayed rather than solved: the window repeats the burst each minute.
        let t0 = Instant::now();
        let mut b = Budget::new(requests_per_minute);
        (0..calls).map(|_| b.reserve(t0)).max().unwrap_or_default()
    }

    pub fn is_unlimited(&self) -> bool {
        self.per_sec == 0.0
    }

    /// Requests that could go at `now` without waiting (`None` when unlimited): the daemon's
    /// `ovhform_api_budget_left`. Does not reserve anything.
    pub fn left(&self, now: Instant) -> Option<u64> {
        if self.is_unlimited() {
            return None;
        }
        let refilled = match self.last {
            Some(last) => {
                let elapsed = now.saturating_duration_since(last).as_secs_f64();
                (self.tokens + elapsed * self.per_sec).min(self.capacity)
            }
            None => self.tokens,
        };
        let horizon = self.period + self.period / 60;
        let in_window = self
            .window
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < horizon)
            .count();
        let by_window = self.limit.saturating_sub(in_window) as u64;
        Some((refilled.max(0.0).floor() as u64).min(by_window))
    }

    /// Take one request slot at `now`; returns how long to wait before sending it. Slots are
    /// reserved in call order (tokens may go negative), so concurrent callers queue fairly.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        let bucket = if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_sec)
        };
        let mut at = now + bucket;
        if self.window.len() >= self.limit
            && let Some(oldest) = self.window.front()
        {
            at = at.max(*oldest + self.period + self.period / 60);
        }
        self.window.push_back(at);
        while self.window.len() > self.limit {
            self.window.pop_front();
        }
        at.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_counts_what_may_go_now_without_reserving() {
        let t0 = Instant::now();
        let mut b = Budget::new(60);
        assert_eq!(b.left(t0), Some(10));
        for _ in 0..4 {
            b.reserve(t0);
        }
        assert_eq!(b.left(t0), Some(6));
        assert_eq!(b.left(t0), Some(6));
        assert_eq!(b.left(t0 + Duration::from_secs(2)), Some(8));
        assert_eq!(Budget::new(0).left(t0), None);
    }

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(60);
        // A burst of 10 goes at once, then one per second.
        for _ in 0..10 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        assert_eq!(b.reserve(t0), Duration::from_secs(1));
        assert_eq!(b.reserve(t0), Duration::from_secs(2));
        // After 5 s the bucket has refilled the 2 reserved slots plus 3.
        let w = b.reserve(t0 + Duration::from_secs(5));
        assert_eq!(w, Duration::ZERO);
    }

    #[test]
    fn time_for_counts_the_burst_the_rate_and_the_window() {
        let s = Duration::from_secs;
        // The burst at once, then one per second…
        assert_eq!(Budget::time_for(60, 1), s(0));
        assert_eq!(Budget::time_for(60, 10), s(0));
        assert_eq!(Budget::time_for(60, 11), s(1));
        assert_eq!(Budget::time_for(60, 60), s(50));
        // …until the window is full: the 61st to the 70th wait for the first 61 s to end, and
        // so on: 60 per 61 s sustained.
        assert_eq!(Budget::time_for(60, 61), s(61));
        assert_eq!(Budget::time_for(60, 70), s(61));
        assert_eq!(Budget::time_for(60, 71), s(62));
        assert_eq!(Budget::time_for(60, 600), s(599));
        assert_eq!(Budget::time_for(0, 10_000), Duration::ZERO);
    }

    #[test]
    fn unlimited_never_waits() {
        let mut b = Budget::new(0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| b.reserve(t0).is_zero()));
    }

    #[test]
    fn any_minute_stays_within_the_budget() {
        // Reserve greedily for 5 minutes and count sends per sliding 60 s window.
        let t0 = Instant::now();
        let mut b = Budget::new(120);
        let mut sends = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(300) {
            let w = b.reserve(now);
            now += w;
            sends.push(now);
        }
        for (i, s) in sends.iter().enumerate() {
            let n = sends[i..]
                .iter()
                .take_while(|t| **t < *s + Duration::from_secs(60))
                .count();
            assert!(n <= 120, "{n} sends in one minute");
        }
        // Sustained, nearly the whole budget is used: 5 minutes hold about 600 sends.
        assert!(sends.len() >= 585, "{} sends in 5 minutes", sends.len());
    }
}
