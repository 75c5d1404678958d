//! `ovhform demo`: the whole plan flow on the built-in simulator, with no account and nothing
//! written outside a temporary state kept in memory.
//!
//! Owns: the demo's wiring (an in-process simulator whose fleet matches `manifests/`, an
//! in-memory record store) and what it prints. Must not touch: anything but 127.0.0.1.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr};

use crate::cli::GlobalArgs;
use crate::cli::plan::{load_desired, run_pipeline};
use crate::cli::progress::Style;
use crate::cli::render::{self, MARKDOWN_LIMIT};
use crate::cli::runtime;
use crate::plan::PlanInput;
use crate::sim::{self, SimConfig};
use crate::state::{MemoryFacts, MemoryStore};

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
        let planned = run_pipeline(
            desired,
            &client,
            &MemoryStore::default(),
            &MemoryFacts::default(),
            crate::state::facts::DEFAULT_FACTS_TTL,
            input,
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
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn default_manifests() -> PathBuf {
    let local = PathBuf::from("manifests");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
    }
}
