//! `ovhform sim`: run the OVHcloud API simulator on a loopback address.
//!
//! Owns: the simulator's flags and start-up output. Must not touch: simulator behaviour
//! (that is `sim/`). Generated credentials are printed once on stdout so a demo can use them;
//! credentials given by flags are never echoed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use miette::IntoDiagnostic;

use crate::sim::{self, Faults, SimConfig, SimCredentials, SimError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on. Only loopback addresses unless --allow-non-loopback.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Allow a non-loopback --listen address (the simulator has no TLS; think twice).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Fleet file (YAML, or JSON with a .json extension); see docs/operations.md "Simulator".
    #[arg(long, value_name = "FILE", conflicts_with = "servers")]
    pub fleet: Option<PathBuf>,
    /// Generate a varied fleet of N servers instead of reading a file.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub servers: usize,
    /// Seed for the generated fleet and the fault dice (same seed, same run).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Application key clients must sign with (generated and printed when absent).
    #[arg(long, env = "OVHFORM_SIM_APPLICATION_KEY", requires_all = ["application_secret", "consumer_key"])]
    pub application_key: Option<String>,
    /// Application secret (generated and printed when absent; never echoed when given).
    #[arg(long, env = "OVHFORM_SIM_APPLICATION_SECRET", hide_env_values = true)]
    pub application_secret: Option<String>,
    /// Consumer key accepted by the simulator (generated and printed when absent).
    #[arg(long, env = "OVHFORM_SIM_CONSUMER_KEY", hide_env_values = true)]
    pub consumer_key: Option<String>,
    /// OAuth2 client id accepted at /auth/oauth2/token (generated when absent).
    #[arg(long, env = "OVHFORM_SIM_CLIENT_ID", requires = "client_secret")]
    pub client_id: Option<String>,
    /// OAuth2 client secret paired with --client-id (generated when absent).
    #[arg(long, env = "OVHFORM_SIM_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Simulated-time speed factor (60 = a 15-minute install takes 15 seconds).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Duration of a reinstall in simulated time.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15m")]
    pub install_duration: Duration,
    /// Enable the /_sim test hooks (inspect the world, call counts, change servers).
    #[arg(long)]
    pub hooks: bool,
    /// Ignore X-Pagination-Mode (plain id lists only), to exercise a client's fallback.
    #[arg(long)]
    pub no_expanded_listing: bool,
    /// Ignore X-Ovh-Batch, to exercise a client's fallback.
    #[arg(long)]
    pub no_batch: bool,
    /// Do not serve the legacy POST …/install/start (as on the EU API since 2025-10-07).
    #[arg(long)]
    pub no_legacy_install: bool,
    /// Added latency per API request (e.g. 200ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency: Option<Duration>,
    /// Fraction (0..1) of API requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction (0..1) of API requests answered 429.
    #[arg(long, default_value_t = 0.0)]
    pub rate_429: f64,
    /// Fraction (0..1) of API requests whose connection is reset.
    #[arg(long, default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Purge finished tasks (GET → 404) this long after completion, in simulated time.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub purge_tasks_after: Option<Duration>,
    /// The first N GETs of a new task answer 404.
    #[arg(long, default_value_t = 0)]
    pub fresh_task_404: u32,
    /// Fraction (0..1) of installs that fail at a random step with ovhError.
    #[arg(long, default_value_t = 0.0)]
    pub install_failure_rate: f64,
    /// Answer 429 beyond this many API requests per minute (OVH's fair use is about 60).
    #[arg(long, value_name = "N")]
    pub fair_use_per_minute: Option<u32>,
}

fn rate(name: &str, v: f64) -> miette::Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(miette::miette!("--{name} {v} must be between 0 and 1"))
    }
}

/// Which credentials were given (by flag or `OVHFORM_SIM_*` environment variable).
struct Given {
    application_key: bool,
    application_secret: bool,
    consumer_key: bool,
    client_id: bool,
    client_secret: bool,
}

/// The start-up lines about credentials. Generated values are printed once, as `OVH_*`
/// assignments a demo can paste; a value that was given is never echoed (one given secret
/// must not be printed just because the others were generated).
fn credential_lines(endpoint: &str, c: &SimCredentials, given: &Given) -> Vec<String> {
    let mut lines = vec![format!("OVH_ENDPOINT={endpoint}")];
    for (name, value, was_given) in [
        (
            "OVH_APPLICATION_KEY",
            &c.application_key,
            given.application_key,
        ),
        (
            "OVH_APPLICATION_SECRET",
            &c.application_secret,
            given.application_secret,
        ),
        ("OVH_CONSUMER_KEY", &c.consumer_key, given.consumer_key),
        ("OVH_CLIENT_ID", &c.client_id, given.client_id),
        ("OVH_CLIENT_SECRET", &c.client_secret, given.client_secret),
    ] {
        lines.push(if was_given {
            format!("# {name}: as given")
        } else {
            format!("{name}={value}")
        });
    }
    lines
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
        return Err(SimError::NonLoopback { addr: args.listen }).into_diagnostic();
    }
    let templates = sim::catalog::catalogue();
    let fleet = match &args.fleet {
        Some(path) => sim::fleet::load(path, &templates).into_diagnostic()?,
        None => sim::fleet::generate(args.servers, args.seed, &templates),
    };
    let generated = SimCredentials::generate();
    let given = Given {
        application_key: args.application_key.is_some(),
        application_secret: args.application_secret.is_some(),
        consumer_key: args.consumer_key.is_some(),
        client_id: args.client_id.is_some(),
        client_secret: args.client_secret.is_some(),
    };
    let credentials = SimCredentials {
        application_key: args.application_key.unwrap_or(generated.application_key),
        application_secret: args
            .application_secret
            .unwrap_or(generated.application_secret),
        consumer_key: args.consumer_key.unwrap_or(generated.consumer_key),
        client_id: args.client_id.unwrap_or(generated.client_id),
        client_secret: args.client_secret.unwrap_or(generated.client_secret),
    };
    let config = SimConfig {
        fleet,
        credentials: credentials.clone(),
        speed: args.speed,
        seed: args.seed,
        faults: Faults {
            latency: args.latency,
            error_5xx_rate: rate("error-rate", args.error_rate)?,
            rate_429: rate("rate-429", args.rate_429)?,
            reset_rate: rate("reset-rate", args.reset_rate)?,
            purge_tasks_after: args.purge_tasks_after,
            fresh_task_404: args.fresh_task_404,
            install_failure_rate: rate("install-failure-rate", args.install_failure_rate)?,
            fair_use_per_minute: args.fair_use_per_minute,
        },
        hooks: args.hooks,
        expanded_listing: !args.no_expanded_listing,
        batch: !args.no_batch,
        legacy_install: !args.no_legacy_install,
        timings: sim::Timings {
            install: args.install_duration,
            ..sim::Timings::default()
        },
        ..SimConfig::default()
    };
    let servers = config.fleet.len();
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: args.listen,
                source,
            })
            .into_diagnostic()?;
        let handle = sim::spawn(listener, config);
        println!(
            "OVHcloud API simulator listening: endpoint {}",
            handle.base_url()
        );
        println!(
            "servers: {servers}; speed x{}; hooks {}",
            args.speed,
            if args.hooks { "on" } else { "off" }
        );
        for line in credential_lines(&handle.base_url(), &credentials, &given) {
            println!("{line}");
        }
        tokio::signal::ctrl_c().await.into_diagnostic()?;
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> SimCredentials {
        SimCredentials {
            application_key: "GEN-AK".into(),
            application_secret: "GIVEN-AS".into(),
            consumer_key: "GEN-CK".into(),
            client_id: "GEN-ID".into(),
            client_secret: "GIVEN-CS".into(),
        }
    }

    #[test]
    fn given_secrets_are_never_echoed_generated_ones_are_printed() {
        let given = Given {
            application_key: false,
            application_secret: true,
            consumer_key: false,
            client_id: false,
            client_secret: true,
        };
        let out = credential_lines("http://127.0.0.1:8080/1.0", &creds(), &given).join("\n");
        assert!(!out.contains("GIVEN"), "{out}");
        for shown in [
            "OVH_APPLICATION_KEY=GEN-AK",
            "OVH_CONSUMER_KEY=GEN-CK",
            "OVH_CLIENT_ID=GEN-ID",
        ] {
            assert!(out.contains(shown), "{out}");
        }
        assert!(out.contains("# OVH_APPLICATION_SECRET: as given"), "{out}");
    }
}
