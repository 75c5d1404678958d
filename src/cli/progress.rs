//! Progress of a long run on stderr, from the pipeline's events: an indicatif bar on a
//! terminal, otherwise a plain line every few seconds ("detail 120/980 servers, ~14m left"),
//! so a plan whose detail read the request budget stretches over minutes is never silent.
//!
//! Owns: when progress shows and how it looks. Must not touch: the estimates (they come with
//! the events, see `pipeline::progress`), stdout (plans go there).
//!
//! Progress shows when the detail read is estimated to take at least [`SHOW_AFTER`], or as
//! soon as it has taken that long (an estimate cannot know the API's latency).

use std::io::Write;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cli::{GlobalArgs, LogFormat};
use crate::pipeline::{NoProgress, PipelineEvent, ProgressSink};

/// A detail read expected (or found) to take this long shows progress.
pub const SHOW_AFTER: Duration = Duration::from_secs(5);
/// Without a terminal, one line per this interval at most.
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// How often the renderer looks at the clock.
const TICK: Duration = Duration::from_secs(1);

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Off,
    /// An indicatif bar on stderr.
    Bar,
    /// Plain lines on stderr.
    Lines,
    /// `info` events in the log (for `--log-format json`, whose stderr is machine-read).
    Log,
}

impl Style {
    /// From the global flags and whether stderr is a terminal.
    pub fn for_stderr(global: &GlobalArgs, stderr_is_tty: bool) -> Style {
        if global.quiet {
            Style::Off
        } else if global.log_format == LogFormat::Json {
            Style::Log
        } else if stderr_is_tty {
            Style::Bar
        } else {
            Style::Lines
        }
    }
}

/// A running renderer: give [`Progress::sink`] to the pipeline, then [`Progress::finish`].
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<PipelineEvent>>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts rendering on the current tokio runtime.
    pub fn start(style: Style) -> Progress {
        match style {
            Style::Off => Progress {
                tx: None,
                task: None,
            },
            Style::Bar => Progress::spawn(Box::new(Bar::default())),
            Style::Lines => Progress::spawn(Box::new(Lines(Box::new(std::io::stderr())))),
            Style::Log => Progress::spawn(Box::new(Log)),
        }
    }

    /// Plain lines into `out` (tests).
    pub fn lines_to(out: Box<dyn Write + Send>) -> Progress {
        Progress::spawn(Box::new(Lines(out)))
    }

    fn spawn(draw: Box<dyn Draw>) -> Progress {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(render(rx, draw));
        Progress {
            tx: Some(tx),
            task: Some(task),
        }
    }

    pub fn sink(&self) -> &dyn ProgressSink {
        match &self.tx {
            Some(tx) => tx,
            None => &NoProgress,
        }
    }

    /// Stops listening and waits until everything received is drawn (and a bar cleared).
    pub async fn finish(mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// `~40s`, `~14m`, `~1h20m` (rounded up: an ETA that reaches zero before the end reads wrong).
pub fn eta_text(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs < 60 {
        format!("~{secs}s")
    } else if secs < 3600 {
        format!("~{}m", secs.div_ceil(60))
    } else {
        let mins = secs.div_ceil(60);
        format!("~{}h{:02}m", mins / 60, mins % 60)
    }
}

/// `40s`, `2m03s`, `1h20m`: how long something took.
pub fn took_text(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// `, ~14m left`, or nothing when no ETA is known yet (no budget wait, no server done).
fn left(eta: Duration) -> String {
    if eta.is_zero() {
        String::new()
    } else {
        format!(", {} left", eta_text(eta))
    }
}

/// How one style draws.
trait Draw: Send {
    /// Progress becomes visible (`estimate`: the start's calls and ETA, when it was shown then).
    fn start(&mut self, total: usize, estimate: Option<(u64, Duration)>);
    /// The current state; `due` is false between two [`LOG_EVERY`] lines (bars redraw anyway).
    fn update(&mut self, done: usize, total: usize, eta: Duration, due: bool);
    /// The read is over.
    fn finish(&mut self, total: usize, calls: u64, took: Duration);
}

/// One detail read in progress.
struct Detail {
    total: usize,
    done: usize,
    /// The ETA of the last event, and when it came.
    eta: Duration,
    eta_at: Instant,
    started: Instant,
    shown: bool,
    last_line: Instant,
}

async fn render(mut rx: mpsc::UnboundedReceiver<PipelineEvent>, mut draw: Box<dyn Draw>) {
    let mut detail: Option<Detail> = None;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                on_event(event, &mut detail, draw.as_mut(), Instant::now());
            }
            _ = ticker.tick() => {
                if let Some(d) = &mut detail {
                    on_tick(d, draw.as_mut(), Instant::now());
                }
            }
        }
    }
}

fn on_event(event: PipelineEvent, detail: &mut Option<Detail>, draw: &mut dyn Draw, now: Instant) {
    match event {
        PipelineEvent::Observed { servers, calls } => {
            tracing::debug!(servers, calls, "fleet observed");
        }
        PipelineEvent::DetailStarted {
            servers,
            estimated_calls,
            eta,
        } => {
            let shown = eta >= SHOW_AFTER;
            if shown {
                draw.start(servers, Some((estimated_calls, eta)));
            }
            *detail = Some(Detail {
                total: servers,
                done: 0,
                eta,
                eta_at: now,
                started: now,
                shown,
                last_line: now,
            });
        }
        PipelineEvent::DetailProgress {
            done, total, eta, ..
        } => {
            if let Some(d) = detail {
                d.done = done;
                d.total = total;
                d.eta = eta;
                d.eta_at = now;
                if d.shown {
                    // Bars move on every server; lines wait for their tick.
                    draw.update(done, total, eta, false);
                }
            }
        }
        PipelineEvent::Planned { calls, .. } => {
            if let Some(d) = detail.take()
                && d.shown
            {
                draw.finish(d.total, calls, now.duration_since(d.started));
            }
        }
    }
}

fn on_tick(d: &mut Detail, draw: &mut dyn Draw, now: Instant) {
    if d.done >= d.total {
        return;
    }
    let eta = d.eta.saturating_sub(now.duration_since(d.eta_at));
    if !d.shown {
        if now.duration_since(d.started) < SHOW_AFTER {
            return;
        }
        d.shown = true;
        draw.start(d.total, None);
        draw.update(d.done, d.total, eta, true);
        d.last_line = now;
        return;
    }
    let due = now.duration_since(d.last_line) >= LOG_EVERY;
    if due {
        d.last_line = now;
    }
    draw.update(d.done, d.total, eta, due);
}

struct Lines(Box<dyn Write + Send>);

impl Draw for Lines {
    fn start(&mut self, total: usize, estimate: Option<(u64, Duration)>) {
        // A closed stderr is no reason to fail a plan.
        let _ = match estimate {
            Some((calls, eta)) => writeln!(
                self.0,
                "reading the detail of {total} servers: about {calls} API calls, {} within the request budget (--requests-per-minute)",
                eta_text(eta)
            ),
            None => writeln!(self.0, "reading the detail of {total} servers"),
        };
    }

    fn update(&mut self, done: usize, total: usize, eta: Duration, due: bool) {
        if due {
            let _ = writeln!(self.0, "detail {done}/{total} servers{}", left(eta));
        }
    }

    fn finish(&mut self, total: usize, calls: u64, took: Duration) {
        let _ = writeln!(
            self.0,
            "detail of {total} servers read in {} ({calls} API calls in this run)",
            took_text(took)
        );
    }
}

#[derive(Default)]
struct Bar(Option<indicatif::ProgressBar>);

impl Draw for Bar {
    fn start(&mut self, total: usize, estimate: Option<(u64, Duration)>) {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("detail [{bar:30}] {pos}/{len} servers{msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Some((calls, eta)) = estimate {
            bar.set_message(format!(", about {calls} API calls{}", left(eta)));
        }
        self.0 = Some(bar);
    }

    fn update(&mut self, done: usize, _total: usize, eta: Duration, _due: bool) {
        if let Some(bar) = &self.0 {
            bar.set_position(done as u64);
            bar.set_message(left(eta));
        }
    }

    fn finish(&mut self, total: usize, calls: u64, took: Duration) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "detail of {total} servers read in {} ({calls} API calls in this run)",
            took_text(took)
        );
    }
}

struct Log;

impl Draw for Log {
    fn start(&mut self, total: usize, estimate: Option<(u64, Duration)>) {
        let (calls, eta) = estimate.unwrap_or_default();
        tracing::info!(
            servers = total,
            estimated_calls = calls,
            eta_secs = eta.as_secs(),
            "reading server detail"
        );
    }

    fn update(&mut self, done: usize, total: usize, eta: Duration, due: bool) {
        if due {
            tracing::info!(done, total, eta_secs = eta.as_secs(), "detail progress");
        }
    }

    fn finish(&mut self, total: usize, calls: u64, took: Duration) {
        tracing::info!(
            servers = total,
            calls,
            secs = took.as_secs_f64(),
            "detail read"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    async fn at(t0: Instant, secs: f64) {
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(secs)).await;
    }

    #[test]
    fn eta_texts() {
        let s = Duration::from_secs;
        assert_eq!(eta_text(s(40)), "~40s");
        assert_eq!(eta_text(Duration::from_millis(200)), "~1s");
        assert_eq!(eta_text(s(14 * 60 - 5)), "~14m");
        assert_eq!(eta_text(s(4891)), "~1h22m");
        assert_eq!(took_text(Duration::from_millis(2500)), "2.5s");
        assert_eq!(took_text(s(63)), "1m03s");
        assert_eq!(took_text(s(4891)), "1h21m");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_terminal_a_line_every_few_seconds() {
        let out = Shared::default();
        let p = Progress::lines_to(Box::new(out.clone()));
        let t0 = Instant::now();
        p.sink().event(PipelineEvent::DetailStarted {
            servers: 980,
            estimated_calls: 4900,
            eta: Duration::from_secs(4890),
        });
        at(t0, 0.5).await;
        assert_eq!(out.lines().len(), 1, "{:?}", out.lines());
        assert!(out.lines()[0].contains("980 servers"), "{:?}", out.lines());
        at(t0, 4.5).await;
        assert_eq!(out.lines().len(), 1, "nothing new before {LOG_EVERY:?}");
        p.sink().event(PipelineEvent::DetailProgress {
            done: 120,
            total: 980,
            calls: 600,
            eta: Duration::from_secs(14 * 60),
        });
        at(t0, 5.5).await;
        assert_eq!(out.lines().len(), 2);
        assert_eq!(out.lines()[1], "detail 120/980 servers, ~14m left");
        // A line every LOG_EVERY, whether or not an event came, the ETA counting down.
        at(t0, 65.5).await;
        assert_eq!(out.lines().len(), 14, "{:?}", out.lines());
        assert_eq!(out.lines()[13], "detail 120/980 servers, ~13m left");
        p.sink().event(PipelineEvent::Planned {
            servers: 980,
            detail_read: 980,
            calls: 4901,
        });
        p.finish().await;
        let last = out.lines().last().cloned().unwrap();
        assert!(last.contains("(4901 API calls in this run)"), "{last}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_read_stays_silent_a_slow_one_speaks_up() {
        // Estimated quick and quick: nothing.
        let out = Shared::default();
        let p = Progress::lines_to(Box::new(out.clone()));
        let t0 = Instant::now();
        let started = PipelineEvent::DetailStarted {
            servers: 3,
            estimated_calls: 15,
            eta: Duration::ZERO,
        };
        p.sink().event(started.clone());
        at(t0, 2.0).await;
        p.sink().event(PipelineEvent::Planned {
            servers: 3,
            detail_read: 3,
            calls: 19,
        });
        p.finish().await;
        assert!(out.lines().is_empty(), "{:?}", out.lines());

        // Estimated quick (unlimited budget) but slow: shows up after SHOW_AFTER.
        let out = Shared::default();
        let p = Progress::lines_to(Box::new(out.clone()));
        let t0 = Instant::now();
        p.sink().event(started);
        at(t0, 4.5).await;
        assert!(out.lines().is_empty());
        at(t0, 5.5).await;
        assert_eq!(out.lines().len(), 2, "{:?}", out.lines());
        assert_eq!(out.lines()[1], "detail 0/3 servers");
        p.finish().await;
    }
}
