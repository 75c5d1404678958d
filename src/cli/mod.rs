//! Command-line surface: argument definitions, one module per subcommand, logging setup.
//!
//! Owns: parsing what the user typed and rendering results. Must not touch: planning logic
//! (that is `plan/`), HTTP details (that is `ovh/`).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use miette::{IntoDiagnostic, WrapErr};

pub mod api;
pub mod apply;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod healthcheck;
pub mod import;
pub mod man;
pub mod plan;
pub mod progress;
pub mod render;
pub mod run;
pub mod schema;
pub mod sim;
pub mod state;
pub mod validate;

/// Exit code: success, or no changes.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error (invalid manifests, API failure, …).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: changes present (only with `--detailed-exitcode`).
pub const EXIT_CHANGES: u8 = 2;

/// Declarative OVHcloud dedicated servers: validate manifests, plan, apply.
#[derive(Debug, Parser)]
#[command(name = "ovhform", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr: human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "OVHFORM_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// More logging (-v info, -vv debug, -vvv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests offline; report every error with file:line:column and a hint.
    Validate(validate::Args),
    /// Print the JSON Schema of all manifest kinds (for yaml-language-server and editors).
    Schema(schema::Args),
    /// Observe the live servers and show what would change (read-only).
    Plan(Box<plan::Args>),
    /// Apply a plan: plan and confirm, or run a saved plan exactly (`ovhform apply FILE`).
    /// Reinstalls erase disks and run only for servers named by --allow-wipe.
    Apply(Box<apply::Args>),
    /// Plan and apply the example manifests against the built-in simulator (offline, no
    /// account).
    Demo(demo::Args),
    /// Run the reconcile daemon: watch the manifests, re-plan on change and on an interval,
    /// apply what policy allows (wipes only for `policy.reinstall: auto`, in their window),
    /// serve /healthz, /readyz, /metrics and /status.
    Run(Box<run::Args>),
    /// Check configuration, endpoint, clock, credentials and their access rules, request
    /// budget, state store and manifests: one line per check (ok, warn, fail with a fix).
    Doctor(Box<doctor::Args>),
    /// Run the OVHcloud API simulator (offline tests and demos).
    Sim(Box<sim::Args>),
    /// Look at and reconcile the records ovhform keeps (state store and servers' tags).
    State(state::Args),
    /// Write manifests for the servers of a live account (OS, boot by kernel name, settings),
    /// grouped by OS, so that `plan` over them only adopts.
    Import(Box<import::Args>),
    /// Exit 0 when the daemon's /healthz (or --url) answers HTTP 200, 1 otherwise: the
    /// container image's HEALTHCHECK, which has no curl.
    Healthcheck(healthcheck::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(completions::Args),
    /// Print the manual page (roff), or write one page per subcommand with --out-dir.
    Man(man::Args),
}

/// Logs go to stderr so that stdout stays machine-readable (plans, schemas).
pub fn init_tracing(global: &GlobalArgs) {
    init_tracing_for(global, false)
}

/// `daemon`: a long-running process logs what it does (info) by default.
pub fn init_tracing_for(global: &GlobalArgs, daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if global.quiet {
        "error"
    } else {
        match global.verbose {
            // With JSON logs, apply's progress events are the log's content: shown by default.
            0 if daemon => "info",
            0 if global.log_format == LogFormat::Json => "warn,ovhform::cli::apply=info",
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Sim(args) => sim::run(*args),
        Command::Plan(args) => plan::run(*args, &cli.global),
        Command::Apply(args) => apply::run(*args, &cli.global),
        Command::Demo(args) => demo::run(args, &cli.global),
        Command::Run(args) => run::run(*args, &cli.global),
        Command::State(args) => state::run(args),
        Command::Import(args) => import::run(*args),
        Command::Doctor(args) => doctor::run(*args),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

/// The async runtime of the subcommands that talk to an API (`plan`, `apply`, `demo`).
pub(crate) fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")
}

/// Worker threads of `ovhform run`'s runtime. The loop itself runs on the main thread
/// (`block_on`); one worker serves the HTTP endpoints and the API connections, so `/healthz`
/// answers while a pass plans. The daemon spends its time waiting for the API's budget, not
/// computing: a worker per core would only add a thread stack and a malloc arena each to its
/// resident memory (docs/benchmarks.md "Daemon at rest").
pub const DAEMON_WORKER_THREADS: usize = 1;

/// The runtime of `ovhform run`: [`DAEMON_WORKER_THREADS`] workers.
pub(crate) fn daemon_runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(DAEMON_WORKER_THREADS)
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ovhform run` idles within its memory target partly because it runs one worker thread
    /// (each thread costs a stack and a malloc arena): `docs/benchmarks.md` "Daemon at rest".
    #[test]
    fn the_daemon_runtime_runs_one_worker_thread() {
        let rt = daemon_runtime().expect("runtime");
        assert_eq!(rt.metrics().num_workers(), DAEMON_WORKER_THREADS);
        assert_eq!(DAEMON_WORKER_THREADS, 1);
    }

    /// Most of the daemon's resident memory is its mapped code: the release profile builds
    /// one code unit with link-time optimisation, which keeps the binary small
    /// (`docs/benchmarks.md` "Daemon at rest").
    #[test]
    fn the_release_profile_optimises_for_a_small_binary() {
        let manifest: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        let release = manifest
            .split("[profile.release]")
            .nth(1)
            .expect("a [profile.release] section")
            .split("\n[")
            .next()
            .unwrap_or("");
        let set = |key: &str, value: &str| {
            release.lines().any(|l| {
                l.split('#').next().unwrap_or("").replace(' ', "") == format!("{key}={value}")
            })
        };
        assert!(set("codegen-units", "1"), "{release}");
        assert!(set("lto", "\"fat\""), "{release}");
    }
}
