//! Maintenance windows: is `now` inside one, and when does the next one start.
//!
//! Owns: evaluating a [`MaintenanceWindow`] (cron start, duration, time zone) at an injected
//! instant. Must not touch: the clock.

use std::str::FromStr;

use croner::Cron;
use jiff::{Timestamp, tz::TimeZone};

use crate::model::MaintenanceWindow;

/// Where `now` stands relative to a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Inside the window that opened at `start`; it closes at `end`.
    Open { start: Timestamp, end: Timestamp },
    /// Outside; the next window opens at `next` (None if the schedule never fires again).
    Closed { next: Option<Timestamp> },
}

/// Evaluate `window` at `now`. Errors are plain text (bad cron or zone), shown as findings;
/// the manifest loader normally rejects them first.
pub fn evaluate(window: &MaintenanceWindow, now: Timestamp) -> Result<WindowState, String> {
    let cron = Cron::from_str(&window.schedule).map_err(|e| {
        format!(
            "schedule {:?} of window {}: {e}",
            window.schedule, window.name
        )
    })?;
    let tz = TimeZone::get(&window.time_zone).map_err(|e| {
        format!(
            "time zone {:?} of window {}: {e}",
            window.time_zone, window.name
        )
    })?;
    let zoned = now.to_zoned(tz);
    let duration =
        jiff::SignedDuration::from_secs(window.duration_secs.min(i64::MAX as u64) as i64);
    // The latest start at or before now: if it started less than `duration` ago, we are in it.
    if let Ok(start) = cron.find_previous_occurrence(&zoned, true) {
        let start = start.timestamp();
        if let Ok(end) = start.checked_add(duration)
            && now < end
        {
            return Ok(WindowState::Open { start, end });
        }
    }
    let next = cron
        .find_next_occurrence(&zoned, false)
        .ok()
        .map(|z| z.timestamp());
    Ok(WindowState::Closed { next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nights() -> MaintenanceWindow {
        MaintenanceWindow {
            name: "prod-nights".into(),
            origin: Default::default(),
            schedule: "0 2 * * *".into(),
            duration_secs: 3 * 3600,
            time_zone: "Europe/Paris".into(),
        }
    }

    #[test]
    fn inside_the_window_reports_its_end() {
        // 03:00 Paris (CET, +01:00) on 2026-11-23 is 02:00 UTC.
        let now: Timestamp = "2026-11-23T02:00:00Z".parse().unwrap();
        let st = evaluate(&nights(), now).unwrap();
        assert_eq!(
            st,
            WindowState::Open {
                start: "2026-11-23T01:00:00Z".parse().unwrap(),
                end: "2026-11-23T04:00:00Z".parse().unwrap()
            }
        );
    }

    #[test]
    fn outside_the_window_reports_the_next_start() {
        let now: Timestamp = "2026-11-23T12:00:00Z".parse().unwrap();
        let st = evaluate(&nights(), now).unwrap();
        assert_eq!(
            st,
            WindowState::Closed {
                next: Some("2026-11-24T01:00:00Z".parse().unwrap())
            }
        );
    }

    #[test]
    fn bad_schedule_is_an_error_not_a_panic() {
        let mut w = nights();
        w.schedule = "not cron".into();
        assert!(evaluate(&w, Timestamp::UNIX_EPOCH).is_err());
    }
}
