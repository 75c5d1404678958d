//! The simulator's clock: simulated time that runs `speed` times faster than real time and can
//! be advanced by hand, so a 15-minute install takes seconds in a demo and no time at all in a
//! test (tests advance the clock instead of sleeping).
//!
//! Owns: the mapping real instant → simulated timestamp. Must not touch: the authentication
//! clock (`/auth/time` and signature timestamps stay on real wall time, as a client's
//! `/auth/time` delta would otherwise drift with the speed factor).

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct SimClock {
    /// Simulated time at `anchor`.
    base: Timestamp,
    anchor: Instant,
    speed: f64,
}

impl SimClock {
    pub fn new(start: Timestamp, speed: f64) -> Self {
        SimClock {
            base: start,
            anchor: Instant::now(),
            speed: sanitize(speed),
        }
    }

    pub fn now(&self) -> Timestamp {
        let real = self.anchor.elapsed().as_secs_f64() * self.speed;
        let nanos = (real * 1e9).min(i64::MAX as f64) as i64;
        self.base
            .saturating_add(SignedDuration::from_nanos(nanos))
            .unwrap_or(self.base)
    }

    /// Change the speed factor from now on (time already elapsed is kept).
    pub fn set_speed(&mut self, speed: f64) {
        self.base = self.now();
        self.anchor = Instant::now();
        self.speed = sanitize(speed);
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Jump forward in simulated time (tests and the `/_sim/clock/advance` hook).
    pub fn advance(&mut self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        self.base = self.base.saturating_add(by).unwrap_or(self.base);
    }
}

/// A speed of 0 freezes simulated time (useful in tests that only advance by hand); negative
/// or non-finite factors make no sense and are treated as 1.
fn sanitize(speed: f64) -> f64 {
    if speed.is_finite() && speed >= 0.0 {
        speed
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let mut c = SimClock::new(start, 0.0);
        assert_eq!(c.now(), start);
        c.advance(Duration::from_secs(900));
        assert_eq!(
            c.now(),
            start.checked_add(SignedDuration::from_secs(900)).unwrap()
        );
    }

    #[test]
    fn bad_speed_falls_back_to_real_time() {
        let c = SimClock::new(Timestamp::UNIX_EPOCH, f64::NAN);
        assert_eq!(c.speed(), 1.0);
    }
}
