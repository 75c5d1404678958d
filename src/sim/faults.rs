//! Fault injection: the misbehaviours the real API shows (REFERENCE §0.8, §8), switchable by
//! CLI flags, by [`super::SimConfig`] and at run time from tests or the `/_sim/faults` hook.
//!
//! Owns: the fault settings and the seeded dice. Must not touch: routes (they ask
//! [`Faults::draw`] what to do) or world state.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Extra latency added to every API response (real time, not scaled by the speed factor).
    #[serde(with = "humantime_serde_opt")]
    pub latency: Option<Duration>,
    /// Probability (0..=1) that an API request answers 500 `Server::InternalServerError`.
    pub error_5xx_rate: f64,
    /// Probability (0..=1) that an API request answers 429.
    pub rate_429: f64,
    /// Probability (0..=1) that the connection is reset instead of answered.
    pub reset_rate: f64,
    /// Finished tasks disappear (GET → 404) this long (simulated time) after completion.
    #[serde(with = "humantime_serde_opt")]
    pub purge_tasks_after: Option<Duration>,
    /// The first N GETs of a freshly created task answer 404 (the real API sometimes does).
    pub fresh_task_404: u32,
    /// Probability (0..=1) that an install fails at a random step (`ovhError`).
    pub install_failure_rate: f64,
    /// Answer 429 once more than this many API requests arrived in the last 60 s (real time):
    /// OVH's stated fair use is about 60 requests/minute per key (REFERENCE §6.7).
    pub fair_use_per_minute: Option<u32>,
}

/// How often each fault was injected since the simulator started: what a chaos soak reports
/// and checks it really exercised (`tests/it/soak.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCounts {
    /// Connections reset instead of answered.
    pub resets: u64,
    /// 429 answers (the dice and the fair-use limit).
    pub too_many_requests: u64,
    /// 500 answers.
    pub server_errors: u64,
    /// Responses held back by [`Faults::latency`].
    pub delayed: u64,
    /// Task GETs answered 404 because the task was fresh ([`Faults::fresh_task_404`]).
    pub fresh_task_404: u64,
    /// Finished tasks purged from the history ([`Faults::purge_tasks_after`]).
    pub purged_tasks: u64,
    /// Installations set to fail at a step (the dice or a test's `fail_next_install`).
    pub install_failures: u64,
}

impl FaultCounts {
    /// Counts `injected` (a request's draw).
    pub fn count(&mut self, injected: Injected) {
        match injected {
            Injected::None => {}
            Injected::ServerError => self.server_errors += 1,
            Injected::TooManyRequests => self.too_many_requests += 1,
            Injected::Reset => self.resets += 1,
        }
    }
}

/// Sliding one-minute window of request arrival times, for the fair-use limit.
#[derive(Debug, Default)]
pub struct FairUse {
    arrivals: VecDeque<Instant>,
}

impl FairUse {
    /// Record a request at `now` unless the window is full; `None` limit admits everything.
    pub fn admit(&mut self, limit: Option<u32>, now: Instant) -> bool {
        let Some(limit) = limit else { return true };
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.arrivals.pop_front();
        }
        if self.arrivals.len() >= limit as usize {
            return false;
        }
        self.arrivals.push_back(now);
        true
    }
}

/// What to do with one request instead of answering it normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    None,
    ServerError,
    TooManyRequests,
    Reset,
}

impl Faults {
    /// Roll the dice for one request (always in the same order, so a seed replays exactly).
    pub fn draw(&self, rng: &mut StdRng) -> Injected {
        let (reset, too_many, error) = (
            rng.random::<f64>(),
            rng.random::<f64>(),
            rng.random::<f64>(),
        );
        if reset < self.reset_rate {
            Injected::Reset
        } else if too_many < self.rate_429 {
            Injected::TooManyRequests
        } else if error < self.error_5xx_rate {
            Injected::ServerError
        } else {
            Injected::None
        }
    }
}

/// `Option<Duration>` as a humantime string ("250ms", "10m") in hook JSON bodies.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        v.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let f = Faults {
            error_5xx_rate: 0.3,
            rate_429: 0.2,
            reset_rate: 0.1,
            ..Faults::default()
        };
        let roll = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200).map(|_| f.draw(&mut rng)).collect::<Vec<_>>()
        };
        let a = roll(7);
        assert_eq!(a, roll(7));
        assert!(a.contains(&Injected::Reset) && a.contains(&Injected::TooManyRequests));
        assert!(a.contains(&Injected::ServerError) && a.contains(&Injected::None));
    }

    #[test]
    fn fair_use_window_slides() {
        let mut f = FairUse::default();
        let t0 = Instant::now();
        assert!((0..60).all(|_| f.admit(Some(60), t0)));
        assert!(!f.admit(Some(60), t0 + Duration::from_secs(59)));
        assert!(f.admit(Some(60), t0 + Duration::from_secs(60)));
        assert!(f.admit(None, t0));
    }

    #[test]
    fn no_faults_by_default() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..100).all(|_| Faults::default().draw(&mut rng) == Injected::None));
    }
}
