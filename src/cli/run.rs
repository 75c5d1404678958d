//! `ovhform run`: the reconcile daemon's command line — flags, signals (SIGHUP re-plans,
//! SIGTERM/SIGINT stop gracefully), the listener, and the parts the daemon is built from.
//!
//! Owns: turning flags into a [`DaemonConfig`], the seat (`--state`), the signal handlers.
//! Must not touch: the loop and its policy (`src/daemon/`), planning, apply.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

use crate::apply::Limits;
use crate::cli::api::ApiArgs;
use crate::cli::apply::{DEFAULT_MAX_REINSTALLS, tracking_config};
use crate::cli::{EXIT_OK, GlobalArgs, daemon_runtime};
use crate::daemon::seat::LEASE_TTL;
use crate::daemon::{Daemon, DaemonConfig, DirSeat, Pacing, PgSeat, Reason, Seat};
use crate::escape;
use crate::ovh::InstallApi;
use crate::plan::InstallRoute;
use crate::plan::digest::FleetKey;
use crate::state::{FactsCache, MemoryFacts, PgStore, StateArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory (or file) of manifests, watched for changes (a symlink swapped by git-sync
    /// is followed).
    #[arg(long, value_name = "DIR", default_value = "manifests")]
    pub manifests: PathBuf,
    /// Re-plan at least this often, changed or not.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Address of the read-only HTTP endpoints (/healthz, /readyz, /metrics, /status).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Bearer token required by /readyz, /metrics and /status (not /healthz).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "OVHFORM_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
    /// POST a JSON event here on a failed task, drift, a wipe waiting for approval, a reinstall
    /// held by its window, a stalled installation step (retried with backoff; never blocks).
    #[arg(
        long,
        value_name = "URL",
        env = "OVHFORM_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub webhook: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Reinstalls running at once (each group's maxConcurrentReinstalls also holds).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REINSTALLS, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_concurrent_reinstalls: usize,
    /// How long one pass follows a task before leaving it to the next pass (the task goes on;
    /// the journal keeps the reinstall's intent).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration)]
    pub track_for: Duration,
    /// Manifest file events closer than this are one change.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub debounce: Duration,
    /// This replica's name in the PostgreSQL lease (with `--state postgres://…`): unique per
    /// replica. Default: the host name and the process id.
    #[arg(long, value_name = "NAME", env = "OVHFORM_REPLICA")]
    pub replica: Option<String>,
    /// How long hardware and catalog facts are reused (see `ovhform plan --facts-ttl`).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub facts_ttl: Duration,
}

pub fn run(args: Args, _global: &GlobalArgs) -> miette::Result<ExitCode> {
    let client = args
        .api
        .client()
        .into_diagnostic()
        .wrap_err("cannot set up the OVHcloud API client")?;
    let rt = daemon_runtime()?;
    rt.block_on(async move {
        let postgres = args.state.postgres_url();
        let (seat, facts, fleet_secret): (Arc<dyn Seat>, Arc<dyn FactsCache>, Option<String>) =
            match &postgres {
                Some(url) => {
                    let replica = args.replica.clone().unwrap_or_else(default_replica);
                    let store = PgStore::connect(url, &args.state.fleet, &replica).await?;
                    let secret = match std::env::var("OVHFORM_SECRET_KEY") {
                        Ok(v) if !v.is_empty() => Some(v),
                        _ => store.fleet_secret().await?,
                    };
                    (
                        Arc::new(PgSeat::new(store, LEASE_TTL)),
                        Arc::new(MemoryFacts::default()),
                        secret,
                    )
                }
                None => (
                    Arc::new(DirSeat(args.state.clone())),
                    Arc::new(args.state.facts()),
                    args.state.fleet_secret()?,
                ),
            };
        let fleet_key = fleet_secret.as_deref().and_then(FleetKey::new);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr().into_diagnostic()?;
        let cfg = DaemonConfig {
            pacing: Pacing {
                interval: args.interval,
                debounce: args.debounce,
                ..Pacing::default()
            },
            fleet_key,
            install_route: match args.api.install_api {
                InstallApi::Reinstall => InstallRoute::Reinstall,
                InstallApi::Legacy => InstallRoute::Legacy,
            },
            limits: Limits {
                reinstalls: args.max_concurrent_reinstalls,
                ..Limits::default()
            },
            tracking: tracking_config(args.track_for),
            task_requeue: Duration::from_secs_f64(60.0 / time_scale()),
            facts_ttl: args.facts_ttl,
            http_token: args.http_token.clone(),
            webhook: args.webhook.clone(),
            ..DaemonConfig::new(&args.manifests, args.state.fleet.clone())
        };
        let where_state = seat.describe();
        let daemon = Daemon::new(cfg, client, seat, facts);
        let triggers = daemon.triggers();
        spawn_hangup(triggers);
        eprintln!(
            "ovhform run: fleet {}, manifests {}, state {}, http://{addr} (/healthz /readyz /metrics /status)",
            escape::line(&args.state.fleet),
            escape::line(&args.manifests.display().to_string()),
            escape::line(&where_state),
        );
        daemon
            .run(listener, terminated())
            .await
            .into_diagnostic()
            .wrap_err("the daemon stopped")?;
        eprintln!("ovhform run: stopped");
        Ok(ExitCode::from(EXIT_OK))
    })
}

/// The simulator test hook `OVHFORM_TIME_SCALE` (docs/apply.md): a fast simulated clock gets
/// its task requeues as much sooner.
fn time_scale() -> f64 {
    std::env::var(crate::cli::apply::TIME_SCALE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| *s >= 1.0)
        .unwrap_or(1.0)
}

/// `host:pid`: unique per replica on one host, readable in `/status` and the lease table.
fn default_replica() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ovhform".into());
    format!("{host}:{}", std::process::id())
}

/// SIGHUP: re-read the manifests and plan now.
fn spawn_hangup(triggers: crate::daemon::TriggerSender) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    triggers.send(Reason::Hangup);
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP cannot be handled"),
    }
}

/// SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down: no new action starts; running OVH tasks go on");
}
