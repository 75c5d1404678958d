//! The client-side request budget: a token bucket refilled at `requests_per_minute / 60` per
//! second with a burst of one sixth of a minute's budget (10 requests at 60/min). With that
//! burst no 60-second window ever sees more than 7/6 of the budget, which stays inside OVH's
//! "about 60 requests per minute per key" fair use (REFERENCE §6.7). Pure: the caller passes
//! the clock; the client sleeps for the returned wait (tokio time, so paused-time tests work).

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Budget {
    per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    /// `0` = unlimited.
    pub fn new(requests_per_minute: u32) -> Budget {
        let capacity = f64::from((requests_per_minute / 6).max(1));
        Budget {
            per_sec: f64::from(requests_per_minute) / 60.0,
            capacity,
            tokens: capacity,
            last: None,
        }
    }

    /// How long `calls` requests take through a fresh bucket at `requests_per_minute`: the
    /// burst goes at once, the rest at the refill rate (when the last one may be sent; latency
    /// not included). Zero when unlimited. For estimates shown to users.
    pub fn time_for(requests_per_minute: u32, calls: u64) -> Duration {
        if requests_per_minute == 0 {
            return Duration::ZERO;
        }
        let burst = u64::from((requests_per_minute / 6).max(1));
        let queued = calls.saturating_sub(burst) as f64;
        Duration::from_secs_f64(queued * 60.0 / f64::from(requests_per_minute))
    }

    pub fn is_unlimited(&self) -> bool {
        self.per_sec == 0.0
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
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn time_for_agrees_with_reserving() {
        for (rpm, calls) in [
            (60u32, 1u64),
            (60, 10),
            (60, 11),
            (60, 500),
            (120, 50),
            (7, 3),
        ] {
            let t0 = Instant::now();
            let mut b = Budget::new(rpm);
            let last = (0..calls).map(|_| b.reserve(t0)).max().unwrap_or_default();
            let got = Budget::time_for(rpm, calls);
            let diff = got.abs_diff(last);
            assert!(
                diff < Duration::from_millis(1),
                "{rpm}/min, {calls}: {got:?} vs {last:?}"
            );
        }
        assert_eq!(Budget::time_for(0, 10_000), Duration::ZERO);
    }

    #[test]
    fn unlimited_never_waits() {
        let mut b = Budget::new(0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| b.reserve(t0).is_zero()));
    }

    #[test]
    fn any_minute_stays_within_seven_sixths() {
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
            assert!(n <= 120 + 20 + 1, "{n} sends in one minute");
        }
    }
}
