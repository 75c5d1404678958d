//! `ovhform state`: look at and reconcile what ovhform remembers.
//!
//! Owns: the `state show`, `state take-tag`, `state drop-intent` and `state fleet-secret`
//! subcommands — how a person settles a disagreement between the state store and a server's
//! tags after reviewing both (a plan never settles it by itself: a forged tag looks the same as
//! an install made with another state directory), an unresolved reinstall intent after checking
//! the server (apply never guesses whether a reinstall it cannot trace started), and the fleet
//! secret (read from stdin or a file, never shown). Must not touch: the merge rule
//! (`state/merge.rs`), planning, the resolution protocol (`apply/intent.rs`).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};

use crate::cli::api::ApiArgs;
use crate::cli::render::escape;
use crate::model::IntentState;
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
    /// Remove the unresolved reinstall intent of SERVER from the journal, after checking the
    /// server by hand (console, `install/status`, task history): the next plan then decides
    /// from what the server runs — adopt if it matches its manifest, a reinstall (approved as
    /// any) if not. Only an intent apply marked unresolved can be removed; apply resolves the
    /// others itself.
    DropIntent(DropIntentArgs),
    /// Store the fleet secret (the key of the digests that compare secret values) in the
    /// state store: a directory's `fleet.key` or the PostgreSQL store the daemons share. Read
    /// from stdin or a file, or generated; never printed. An existing secret is replaced only
    /// with `--replace`.
    FleetSecret(FleetSecretArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stdin", "from_file", "generate"])))]
pub struct FleetSecretArgs {
    /// Read the secret from standard input (e.g. `openssl rand -hex 32 | …`; the same value
    /// goes into CI as `OVHFORM_SECRET_KEY` so that previews compare secrets too).
    #[arg(long)]
    pub stdin: bool,
    /// Read the secret from a file (e.g. a state directory's `fleet.key`, moved into
    /// PostgreSQL).
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<std::path::PathBuf>,
    /// Generate 32 random bytes (hex). Nothing else will know it: only for a store that is
    /// the only place plans run from.
    #[arg(long)]
    pub generate: bool,
    /// Replace an existing secret. Every recorded digest was keyed with the old one: secret
    /// values then show as "cannot compare" until the servers are reinstalled or adopted.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct DropIntentArgs {
    /// The servers whose unresolved intent to remove.
    #[arg(value_name = "SERVER", required = true)]
    pub servers: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
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
        StateCommand::DropIntent(a) => drop_intent(a),
        StateCommand::FleetSecret(a) => fleet_secret(a),
    }
}

fn fleet_secret(args: FleetSecretArgs) -> miette::Result<ExitCode> {
    let secret = if args.stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .into_diagnostic()
            .wrap_err("read the fleet secret from stdin")?;
        text
    } else if let Some(path) = &args.from_file {
        std::fs::read_to_string(path)
            .into_diagnostic()
            .wrap_err_with(|| format!("read the fleet secret from {}", path.display()))?
    } else {
        crate::state::new_fleet_secret()
    };
    // A trailing newline from `echo` or a file is not part of the secret.
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        return Err(miette!(
            help = "give a non-empty secret (e.g. `openssl rand -hex 32`)",
            "the fleet secret is empty"
        ));
    }
    let runtime = crate::cli::runtime()?;
    let target = match args.state.postgres_url() {
        Some(url) => {
            let holder = cli_holder();
            runtime.block_on(async {
                let store =
                    crate::state::pg::PgStore::connect(&url, &args.state.fleet, &holder).await?;
                if store.fleet_secret().await?.is_some() && !args.replace {
                    return Err(already_set());
                }
                // A write like any other: only under the fleet's lease, so a running leader
                // is never raced (stop it, or let a standby's turn come).
                let lease = store.campaign(crate::daemon::seat::LEASE_TTL).await?;
                if let crate::state::pg::Lease::Standby { leader, .. } = &lease {
                    return Err(miette!(
                        help = "stop the daemons of this fleet (or wait for their lease to lapse) and run this again",
                        "replica {} holds the fleet's lease: only the leader may write the fleet secret",
                        escape::line(leader)
                    ));
                }
                let result = store.set_fleet_secret(&secret).await;
                let _ = store.resign().await;
                result?;
                Ok::<_, miette::Report>(store.target().to_string())
            })?
        }
        None => {
            let _lock = args.state.open_locked()?;
            let path = args.state.state_dir.join(crate::state::FLEET_KEY_FILE);
            if path.exists() && !args.replace {
                return Err(already_set());
            }
            crate::state::write_fleet_secret(&path, &secret)?;
            path.display().to_string()
        }
    };
    eprintln!(
        "{}",
        escape::line(&format!(
            "fleet {}: secret stored in {target} (not shown)",
            args.state.fleet
        ))
    );
    Ok(ExitCode::SUCCESS)
}

fn already_set() -> miette::Report {
    miette!(
        help = "keep it, or pass --replace (recorded digests were keyed with the old secret: secret values then cannot be compared until servers are reinstalled or adopted again)",
        "the fleet already has a secret"
    )
}

fn drop_intent(args: DropIntentArgs) -> miette::Result<ExitCode> {
    let store = args.state.open_locked()?;
    let runtime = crate::cli::runtime()?;
    let intents = runtime.block_on(store.intents())?;
    let mut dropping = Vec::new();
    // Every server is checked before anything is removed: all or nothing.
    for name in &args.servers {
        let mine: Vec<_> = intents.iter().filter(|i| &i.server == name).collect();
        if mine.is_empty() {
            return Err(miette!(
                help = "`ovhform state show` lists the records; nothing to do for this server",
                "server {} has no intent in the journal",
                escape::line(name)
            ));
        }
        for intent in mine {
            let IntentState::Unresolved { reason } = &intent.state else {
                return Err(miette!(
                    help = "run `ovhform apply`: it resolves this intent against the API itself",
                    "the intent of {} ({:?}) is not unresolved; removing it by hand could let a second reinstall start",
                    escape::line(name),
                    intent.state
                ));
            };
            dropping.push((intent.clone(), reason.clone()));
        }
    }
    for (intent, reason) in dropping {
        runtime.block_on(store.drop_intent(&intent.id))?;
        eprintln!(
            "{}",
            escape::line(&format!(
                "{}: removed the unresolved intent of {} (reinstall of {}, fingerprint {}; {reason}); run `ovhform plan` to see what the server needs now",
                intent.server, intent.created, intent.os, intent.fingerprint
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The name this command gives itself in a PostgreSQL store's bookkeeping.
fn cli_holder() -> String {
    format!(
        "ovhform-cli@{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
    )
}

fn show(args: ShowArgs) -> miette::Result<ExitCode> {
    let runtime = crate::cli::runtime()?;
    // A PostgreSQL URL is read as the store it names: taken for a directory, it would show
    // no record at all, as if the daemons' records were lost (the chaos soak found it).
    let records = match args.state.postgres_url() {
        Some(url) => runtime.block_on(async {
            crate::state::pg::PgStore::connect(&url, &args.state.fleet, &cli_holder())
                .await?
                .load()
                .await
        })?,
        None => runtime.block_on(args.state.open_read_only().load())?,
    };
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
