//! Benchmark of the pure planner on a 1,000-server fleet held in memory (no API, no I/O).
//!
//! Run: `cargo run --release --example bench_plan [-- SERVERS RUNS]`
//! Prints mean / median / p95 / min per scenario; figures go to docs/benchmarks.md.
//! Target (issue 4): planning 1,000 servers takes < 50 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ovhform::cli::render::{MARKDOWN_LIMIT, render_markdown, render_text};
use ovhform::plan::{PlanInput, lint, plan, testkit};

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let median = samples[n / 2];
    let p95 = samples[(n * 95 / 100).min(n - 1)];
    println!(
        "{name:<44} mean {:>8.3} ms  median {:>8.3} ms  p95 {:>8.3} ms  min {:>8.3} ms  ({n} runs)",
        ms(mean),
        ms(median),
        ms(p95),
        ms(samples[0])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Vec<Duration> {
    for _ in 0..runs.min(10) {
        black_box(f());
    }
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let servers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let now: jiff::Timestamp = "2026-11-23T12:00:00Z".parse().expect("fixed instant");
    let input = PlanInput::new(now);

    // 1. The common CI case: nothing changed, detail not read (needs_detail was empty).
    let (d, o, r) = testkit::fleet(servers, now, false);
    assert!(ovhform::plan::needs_detail(&d, &o, &r, &input).is_empty());
    stats(
        &format!("plan, {servers} servers, no changes"),
        time(runs, || plan(&d, &o, &r, &input)),
    );
    stats(
        &format!("needs_detail, {servers} servers"),
        time(runs, || ovhform::plan::needs_detail(&d, &o, &r, &input)),
    );

    // 2. Detail read for every server and ~25% of them changed (reinstall with catalog and
    //    hardware checks, settings, boot): the heavy case.
    let (mut d, o, r) = testkit::fleet(servers, now, true);
    for (i, ds) in d.servers.values_mut().enumerate() {
        match i % 12 {
            0 => ds.install.as_mut().expect("fixture install").generation = 2,
            1 => ds.settings.monitoring = Some(true),
            2 => {
                ds.boot = Some(ovhform::model::BootSpec {
                    mode: ovhform::model::BootMode::Rescue {
                        kernel: "rescue-customer".into(),
                    },
                    reboot: ovhform::model::RebootPolicy::OnChange,
                    lease: None,
                })
            }
            _ => {}
        }
    }
    let p = plan(&d, &o, &r, &input);
    assert!(lint(&p).is_empty());
    println!("  summary: {:?}", p.summary());
    stats(
        &format!("plan, {servers} servers, 25% changed, detail"),
        time(runs, || plan(&d, &o, &r, &input)),
    );
    stats("lint", time(runs, || lint(&p)));
    stats("render_text", time(runs, || render_text(&p, false)));
    stats("render_json", time(runs, || p.to_json()));
    stats(
        "render_markdown (60 KB cap)",
        time(runs, || render_markdown(&p, MARKDOWN_LIMIT)),
    );
}
