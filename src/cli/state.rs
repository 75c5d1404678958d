//! `ovhform state`: look at and reconcile what ovhform remembers.
//!
//! Owns: the `state show` and `state take-tag` subcommands — how a person settles a
//! disagreement between the state store and a server's tags after reviewing both (a plan
//! never settles it by itself: a forged tag looks the same as an install made with another
//! state directory). Must not touch: the merge rule (`state/merge.rs`), planning.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};

use crate::cli::api::ApiArgs;
use crate::cli::render::escape;
use crate::state::{RecordStore, StateArgs, record_from_tags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Print the records of the state store as JSON (all servers, or the ones named).
    Show(ShowArgs),
    /// Replace the store's record of SERVER by the record in the server's IAM tags, after
    /// reviewing a `record-disputed` finding. Reads the tags through the API; writes the store.
    TakeTag(Box<TakeTagArgs>),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Servers to show (service names); all when none.
    #[arg(value_name = "SERVER")]
    pub servers: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct TakeTagArgs {
    /// The servers whose tag record to believe.
    #[arg(value_name = "SERVER", required = true)]
    pub servers: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    match args.command {
        StateCommand::Show(a) => show(a),
        StateCommand::TakeTag(a) => take_tag(*a),
    }
}

fn show(args: ShowArgs) -> miette::Result<ExitCode> {
    let records = crate::cli::runtime()?.block_on(args.state.open_read_only().load())?;
    let wanted: BTreeSet<&String> = args.servers.iter().collect();
    let installs: Vec<_> = records
        .installs
        .values()
        .filter(|r| wanted.is_empty() || wanted.contains(&r.server))
        .collect();
    let text = serde_json::to_string_pretty(&installs).into_diagnostic()?;
    // Records may hold values that came from tags: escaped for the terminal like any output.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", escape::block(&text));
    Ok(ExitCode::SUCCESS)
}

fn take_tag(args: TakeTagArgs) -> miette::Result<ExitCode> {
    let store = args.state.open_locked()?;
    let client = args
        .api
        .client()
        .into_diagnostic()
        .wrap_err("cannot set up the OVHcloud API client")?;
    let names: BTreeSet<String> = args.servers.iter().cloned().collect();
    let runtime = crate::cli::runtime()?;
    let observed = runtime
        .block_on(crate::observe::observe_fleet(&client, &names))
        .into_diagnostic()
        .wrap_err("cannot read the servers' tags")?;
    let stored = runtime.block_on(store.load())?;
    let mut taken = Vec::new();
    for name in &names {
        let server = observed
            .servers
            .get(name)
            .ok_or_else(|| miette!("server {} is not in the account", escape::line(name)))?;
        let rec = record_from_tags(name, &server.tags)?.ok_or_else(|| {
            miette!(
                "server {} has no ovhform record in its tags; nothing to take",
                escape::line(name)
            )
        })?;
        taken.push((stored.installs.get(name).cloned(), rec));
    }
    for (_, rec) in &taken {
        runtime.block_on(store.put_install(rec))?;
    }
    for (old, rec) in taken {
        let claim = |r: &crate::model::InstallRecord| {
            format!(
                "{} {} generation {} (fleet {}, algorithm {})",
                r.os, r.fingerprint, r.generation, r.fleet, r.algorithm
            )
        };
        eprintln!(
            "{}",
            escape::line(&format!(
                "{}: the store now records {} (was: {})",
                rec.server,
                claim(&rec),
                old.as_ref().map_or_else(|| "no record".to_string(), claim)
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}
