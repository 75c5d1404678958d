//! `ovhform demo`: the whole plan flow on the built-in simulator, with no account and nothing
//! written outside a temporary state kept in memory.
//!
//! Owns: the demo's wiring (an in-process simulator whose fleet matches `manifests/`, an
//! in-memory record store) and what it prints. Must not touch: anything but 127.0.0.1.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};

use crate::cli::plan::{PlanContext, plan_manifests, runtime};
use crate::cli::render::{self, MARKDOWN_LIMIT};
use crate::ovh::{self, ClientConfig, Credentials, Endpoint, Secret};
use crate::sim::{self, SimConfig, SimHandle};
use crate::state::MemoryStore;

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

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let manifests = args.manifests.unwrap_or_else(default_manifests);
    let fleet = sim::fleet::parse(
        DEMO_FLEET,
        Path::new("demo/fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .map_err(|e| miette!("{e}"))?;

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
        let client = client_for_sim(&handle).map_err(|e| miette!("{e}"))?;
        let store = MemoryStore::default();
        eprintln!(
            "ovhform demo: simulator on {} (in-process, offline), manifests from {}\n",
            handle.base_url(),
            manifests.display()
        );
        let ctx = PlanContext {
            client: &client,
            store: &store,
            now: jiff::Timestamp::now(),
            targets: BTreeSet::new(),
            revision: crate::state::manifests_revision(&manifests),
            // The simulator is gone when the demo ends: never suggest a command naming it.
            apply_command: None,
        };
        let planned = plan_manifests(&manifests, &ctx).await?;
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
            "observed {} servers with {} API calls",
            planned.observed.servers.len(),
            planned.observed.api_calls
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

/// An ovhform client signed with the simulator's credentials, without a request budget (the
/// simulator has no fair-use limit unless asked for one).
pub fn client_for_sim(handle: &SimHandle) -> Result<ovh::Client, ovh::Error> {
    let creds = handle.credentials();
    let cfg = ClientConfig {
        requests_per_minute: 0,
        ..ClientConfig::new(
            Endpoint::parse(&handle.base_url())?,
            Credentials::ApplicationKey {
                application_key: creds.application_key.clone(),
                application_secret: Secret::new(creds.application_secret.clone()),
                consumer_key: Secret::new(creds.consumer_key.clone()),
            },
        )
    };
    ovh::Client::new(cfg)
}
