//! `ovhform demo`: the whole plan → apply → plan flow on the built-in simulator, with no
//! account and nothing written outside a temporary state kept in memory.
//!
//! Owns: the demo's wiring (an in-process simulator whose fleet matches `manifests/`, an
//! in-memory record store, a fast simulated clock for the apply), the approvals it gives in
//! the user's stead (said on screen) and what it prints. Must not touch: anything but
//! 127.0.0.1; any command it suggests names no simulator (it is gone when the demo ends).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

use crate::apply::{ApplyContext, Approvals, Limits, TrackingConfig};
use crate::cli::GlobalArgs;
use crate::cli::apply::{self as apply_cli, Preview, Summary, shell_word};
use crate::cli::plan::{load_desired, run_pipeline};
use crate::cli::progress::Style;
use crate::cli::render::{self, MARKDOWN_LIMIT};
use crate::cli::{EXIT_ERROR, EXIT_OK, runtime};
use crate::escape;
use crate::plan::{Action, Plan, PlanInput};
use crate::sim::{self, SimConfig};
use crate::state::{MemoryFacts, MemoryStore};

/// The simulator's clock during the demo's apply: a 15-minute installation takes about 5 s.
pub const DEMO_SPEED: f64 = 200.0;

/// The simulator fleet of the demo (see the file for which server is in which state).
const DEMO_FLEET: &str = include_str!("../../demo/fleet.yaml");

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifests to plan. Default: `manifests/` in the working directory, else the examples
    /// shipped with the source tree.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Print only the terminal rendering (skip the Markdown PR comment).
    #[arg(long)]
    pub text_only: bool,
    /// Stop after the first plan (do not apply).
    #[arg(long)]
    pub plan_only: bool,
}

pub fn run(args: Args, global: &GlobalArgs) -> miette::Result<ExitCode> {
    let manifests = args.manifests.unwrap_or_else(default_manifests);
    let fleet = sim::fleet::parse(
        DEMO_FLEET,
        Path::new("demo/fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .into_diagnostic()
    .wrap_err("the demo fleet shipped with ovhform does not parse")?;
    let desired = load_desired(&manifests)?;
    let style = Style::for_stderr(global, std::io::stderr().is_terminal());

    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .into_diagnostic()
            .wrap_err("cannot bind the simulator on 127.0.0.1")?;
        let handle = sim::spawn(
            listener,
            SimConfig {
                fleet,
                ..SimConfig::default()
            },
        );
        let client = sim::client_for(&handle)
            .into_diagnostic()
            .wrap_err("cannot set up a client for the simulator")?;
        eprintln!(
            "ovhform demo: simulator on {} (in-process, offline), manifests from {}\n",
            handle.base_url(),
            manifests.display()
        );
        let input = PlanInput {
            revision: crate::state::manifests_revision(&manifests),
            // The simulator is gone when the demo ends: never suggest a command naming it.
            apply_command: None,
            ..PlanInput::new(jiff::Timestamp::now())
        };
        // Nothing is written outside memory: no record store, no facts file.
        let store = MemoryStore::default();
        let facts = MemoryFacts::default();
        let planned = run_pipeline(
            desired.clone(),
            &client,
            &store,
            &facts,
            crate::state::facts::DEFAULT_FACTS_TTL,
            input.clone(),
            style,
        )
        .await?;
        let color = render::color_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        println!("{}", render::render_text(&planned.plan, color));
        if !args.text_only {
            println!("──── the same plan as a pull-request comment (--format markdown) ────\n");
            println!("{}", render::render_markdown(&planned.plan, MARKDOWN_LIMIT));
        }
        eprintln!(
            "observed {} servers with {} API calls ({} read in detail)",
            planned.observed.servers.len(),
            planned.stats.calls,
            planned.coverage.detail_read.len()
        );
        if args.plan_only {
            handle.shutdown().await;
            return Ok(ExitCode::SUCCESS);
        }

        // The apply, on a fast simulated clock, with the approvals a person would give.
        let approvals = demo_approvals(&planned.plan);
        println!(
            "──── ovhform apply, on the simulator's clock running {DEMO_SPEED}× (a 15-minute installation takes about 5 s) ────\n"
        );
        println!("{}", say_approvals(&approvals));
        handle.set_speed(DEMO_SPEED);
        let preview = Preview::of(&planned.plan, &approvals);
        print!("{}", preview.render());
        let ctx = ApplyContext {
            client: &client,
            store: &store,
            desired: &desired,
            fleet: planned.plan.fleet.clone(),
            fleet_key: None,
            approvals,
            limits: Limits::default(),
            tracking: demo_tracking(),
            plan_id: Some(apply_cli::plan_id(planned.plan.to_json().as_bytes())),
            clock: Arc::new(jiff::Timestamp::now),
            halt: None,
        };
        let started = std::time::Instant::now();
        let (report, tally) = apply_cli::execute(&planned.plan, &ctx, style, &preview).await;
        let summary = Summary::new(&report, &tally, started.elapsed());
        print!("{}", summary.render());

        // The proof: planning again finds nothing to do.
        println!("\n──── planning again after the apply ────\n");
        let again = run_pipeline(
            desired.clone(),
            &client,
            &store,
            &facts,
            crate::state::facts::DEFAULT_FACTS_TTL,
            PlanInput {
                now: jiff::Timestamp::now(),
                ..input
            },
            style,
        )
        .await?;
        let converged = !again.plan.has_changes();
        if converged {
            println!(
                "{}\nThe fleet matches the manifests: a second plan has no changes.",
                render::summary_line(&again.plan.summary())
            );
        } else {
            println!("{}", render::render_text(&again.plan, color));
            println!("The second plan still has changes: see above.");
        }
        handle.shutdown().await;
        let ok = converged && summary.exit_code() == EXIT_OK;
        Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_ERROR }))
    })
}

/// What a person would pass to apply the demo plan: every wipe the plan shows is approved,
/// and the maintenance window of each deferred one is ignored (the demo cannot wait for
/// weekday nights).
pub fn demo_approvals(plan: &Plan) -> Approvals {
    let mut wipes = BTreeSet::new();
    let mut windows = BTreeSet::new();
    for sp in plan.servers.values() {
        for a in &sp.actions {
            if matches!(a, Action::Reinstall(_)) {
                wipes.insert(sp.server.clone());
            } else if a.deferred_wipe().is_some() {
                wipes.insert(sp.server.clone());
                windows.insert(sp.server.clone());
            }
        }
    }
    Approvals {
        allow_wipe: wipes,
        ignore_window: windows,
        ..Approvals::default()
    }
}

/// The approvals, said plainly as the flags they stand for.
fn say_approvals(a: &Approvals) -> String {
    let flags = |flag: &str, servers: &BTreeSet<String>| {
        servers
            .iter()
            .map(|s| format!("{flag} {}", escape::line(&shell_word(s))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if a.allow_wipe.is_empty() {
        return "The demo plan has no wipe to approve.".into();
    }
    let mut out = format!(
        "The demo answers for you: it approves the wipes its plan shows, as {} would",
        flags("--allow-wipe", &a.allow_wipe)
    );
    if !a.ignore_window.is_empty() {
        out.push_str(&format!(
            ", and runs them outside their maintenance window, as {} would",
            flags("--ignore-maintenance-window", &a.ignore_window)
        ));
    }
    out.push_str(". A real apply wipes only the servers you name, and asks before it starts.");
    out
}

/// Tracks at the pace of the demo's fast clock (production polls every 10 s to 2 min).
fn demo_tracking() -> TrackingConfig {
    TrackingConfig {
        timeout: Duration::from_secs(120),
        ..TrackingConfig::default().scaled(DEMO_SPEED)
    }
}

fn default_manifests() -> PathBuf {
    let local = PathBuf::from("manifests");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
    }
}
