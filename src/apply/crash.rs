//! Crash points for the kill test: a named place in the executor where a test can stop the
//! process with SIGKILL at a precise instant (before or after each journal write, around the
//! reinstall POST, mid-tracking, around the record and tag writes, …).
//!
//! Owns: reading `OVHFORM_CRASH_AT=<point>` (or `<point>#<n>`: the n-th time the point is
//! reached) once, and what happens at an armed point: a marker line on stderr
//! (`ovhform: crash point <point> reached`), then this thread stops for good so that nothing
//! after the point runs until the test kills the process. Also `OVHFORM_PAUSE_AT` (SIGSTOP
//! there) and `OVHFORM_PANIC_AT` (a panic there). Unset, a point costs one branch.
//! Must not touch: anything else — it is a test hook, documented in docs/apply.md.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Armed {
    point: String,
    nth: usize,
    seen: AtomicUsize,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("OVHFORM_CRASH_AT").ok()?;
            let (point, nth) = match v.split_once('#') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
                None => (v, 1),
            };
            Some(Armed {
                point,
                nth,
                seen: AtomicUsize::new(0),
            })
        })
        .as_ref()
}

/// Every crash point the executor has, for the kill test to iterate over.
pub const POINTS: &[&str] = &[
    "apply:start",
    "resolve:before",
    "resolve:after-attach",
    "intent:before-journal",
    "intent:after-journal",
    "intent:after-post",
    "intent:after-posted-journal",
    "track:poll",
    "install:before-record",
    "install:after-store-record",
    "install:after-tags",
    "install:after-drop-intent",
    "adopt:before-record",
    "adopt:after-store-record",
    "tags:before-put",
    "boot:before-put",
    "boot:after-put",
    "settings:before-put",
    "settings:after-put",
    "reboot:before-post",
    "reboot:after-post",
    "forget:before",
    "forget:after-store",
    "applied:before-write",
];

/// `OVHFORM_PAUSE_AT=<point>`: the process stops itself (SIGSTOP) the first time it reaches
/// the point, and goes on from there when continued (SIGCONT). For the daemon's HA test: a
/// leader frozen just before a write, resumed after another replica took over.
fn pause_at() -> Option<&'static str> {
    static PAUSE: OnceLock<Option<String>> = OnceLock::new();
    PAUSE
        .get_or_init(|| std::env::var("OVHFORM_PAUSE_AT").ok())
        .as_deref()
}

/// `OVHFORM_PANIC_AT=<point>`: the process panics there, for the secrets test to read what a
/// panic prints (message, location, backtrace) while the executor holds the secrets.
fn panic_at() -> Option<&'static str> {
    static PANIC: OnceLock<Option<String>> = OnceLock::new();
    PANIC
        .get_or_init(|| std::env::var("OVHFORM_PANIC_AT").ok())
        .as_deref()
}

/// A crash point: a no-op unless `OVHFORM_CRASH_AT`, `OVHFORM_PAUSE_AT` or `OVHFORM_PANIC_AT`
/// names it.
pub fn point(name: &str) {
    if panic_at() == Some(name) {
        panic!("ovhform: panic point {name} reached (OVHFORM_PANIC_AT)");
    }
    if pause_at() == Some(name) {
        static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !PAUSED.swap(true, Ordering::SeqCst) {
            use std::io::Write as _;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "ovhform: pause point {name} reached");
            let _ = err.flush();
            drop(err);
            // Returns once the process is continued.
            let _ = std::process::Command::new("kill")
                .args(["-STOP", &std::process::id().to_string()])
                .status();
        }
    }
    let Some(a) = armed() else { return };
    if a.point != name {
        return;
    }
    if a.seen.fetch_add(1, Ordering::SeqCst) + 1 != a.nth {
        return;
    }
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "ovhform: crash point {name} reached");
    let _ = err.flush();
    drop(err);
    // Nothing after the point may run: this thread stops here until the test's SIGKILL.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list the kill test iterates over is exactly the points the executor has.
    #[test]
    fn every_listed_point_exists_in_the_executor_and_no_other() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("intent.rs"),
            include_str!("track.rs"),
        ]
        .concat();
        for p in POINTS {
            assert!(
                sources.contains(&format!("\"{p}\"")),
                "{p} is not in the executor"
            );
        }
        // Every `crash::point("…")` is listed (the two names chosen by a condition are
        // checked by the loop above).
        for used in sources.split("point(\"").skip(1) {
            let name = used.split('"').next().unwrap_or_default();
            assert!(POINTS.contains(&name), "{name} is used but not listed");
        }
        assert!(POINTS.len() >= 20);
    }
}
