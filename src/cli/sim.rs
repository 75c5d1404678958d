//! `ovhform sim`: run the OVHcloud API simulator on a loopback address.
//!
//! Owns: the simulator's flags and start-up output (shell `export` lines for one
//! authentication method, or an env file written with mode 0600, and the servers' names).
//! Must not touch: simulator behaviour (that is `sim/`). Generated credentials are printed
//! once, so that a demo can use them; credentials given by flags are never echoed. Everything
//! printed on stdout is valid shell (comments and quoted assignments), so that pasting it,
//! `eval`, or sourcing a copy cannot run anything else.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

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
    /// Refuse the iamTags filter on GET /dedicated/server with a 400 (as regions whose schema
    /// lacks it may), to exercise a client's fallback.
    #[arg(long)]
    pub no_iam_tags_filter: bool,
    /// Serve expanded listings from a cache: without `Pragma: no-cache` they show the state
    /// from before the last change.
    #[arg(long)]
    pub stale_listing: bool,
    /// Answer every batch GET 403 (per-server access rules), to exercise a client's fallback.
    #[arg(long)]
    pub batch_forbidden: bool,
    /// An access rule of the consumer key, `METHOD /path` (`*` matches anything);
    /// repeatable. Default: every method on `/*`. Signed calls no rule grants answer 403
    /// `NOT_GRANTED_CALL`; `GET /auth/currentCredential` shows the rules.
    #[arg(long = "access-rule", value_name = "RULE", value_parser = parse_rule)]
    pub access_rules: Vec<sim::SimRule>,
    /// Seconds the simulated API's wall clock is ahead of this machine's (negative: behind),
    /// for `GET /auth/time` and the signature check: clock skew, as `ovhform doctor` sees it.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset: i64,
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
    /// Which credentials the printed `export` lines (or --env-file) hold; the simulator
    /// accepts both methods, ovhform uses one at a time.
    #[arg(long, value_enum, default_value_t = Auth::ApplicationKey)]
    pub auth: Auth,
    /// Write the `export` lines to FILE (mode 0600, replaced atomically) instead of stdout,
    /// for `. ./FILE` in another shell; stdout then only says where they are.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Print the name of every server of the fleet, one per line, and exit without listening.
    #[arg(long)]
    pub list_servers: bool,
}

/// The authentication method of the printed credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Auth {
    /// OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET, OVH_CONSUMER_KEY (signed requests).
    ApplicationKey,
    /// OVH_CLIENT_ID, OVH_CLIENT_SECRET (OAuth2 client credentials).
    Oauth2,
}

/// Beyond this many servers the start-up output names the first ones only: a 1,000-server
/// fleet would push the credentials out of the terminal.
const SERVERS_SHOWN: usize = 20;

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

/// `value` as one single-quoted shell word: nothing inside is expanded, and a `'` is written
/// as `'\''` (close, escaped quote, reopen).
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A path as a shell word for `.`: bare names get `./` (`.` would search PATH for them), and
/// anything beyond plain path characters is quoted.
fn source_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = if text.contains('/') {
        text.into_owned()
    } else {
        format!("./{text}")
    };
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c));
    if plain { text } else { shell_quote(&text) }
}

/// A shell comment line. Fleet files may hold any server name: control characters (a newline
/// would end the comment and make the rest a command) are escaped.
fn comment(text: &str) -> String {
    if text.chars().any(char::is_control) {
        format!("# {}", text.escape_debug())
    } else {
        format!("# {text}")
    }
}

/// The `export` lines for one authentication method. Generated values are printed; a value
/// that was given is never echoed (one given secret must not be printed just because the
/// others were generated): a comment stands in for it. The other method's variables are
/// unset because ovhform refuses to choose between two methods.
fn export_lines(endpoint: &str, c: &SimCredentials, given: &Given, auth: Auth) -> Vec<String> {
    let (vars, other): (Vec<(&str, &String, bool)>, &str) = match auth {
        Auth::ApplicationKey => (
            vec![
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
            ],
            "OVH_CLIENT_ID OVH_CLIENT_SECRET",
        ),
        Auth::Oauth2 => (
            vec![
                ("OVH_CLIENT_ID", &c.client_id, given.client_id),
                ("OVH_CLIENT_SECRET", &c.client_secret, given.client_secret),
            ],
            "OVH_APPLICATION_KEY OVH_APPLICATION_SECRET OVH_CONSUMER_KEY",
        ),
    };
    let mut lines = vec![format!("export OVH_ENDPOINT={}", shell_quote(endpoint))];
    for (name, value, was_given) in vars {
        lines.push(if was_given {
            format!("# {name}: as given to the simulator (not echoed; export it yourself)")
        } else {
            format!("export {name}={}", shell_quote(value))
        });
    }
    lines.push(format!("unset {other}"));
    lines
}

/// The servers' names as comment lines: all of them up to [`SERVERS_SHOWN`], else the first
/// ones and how to list the rest.
fn server_lines(names: &[&str]) -> Vec<String> {
    let mut lines = vec![format!(
        "# {} server{}:",
        names.len(),
        if names.len() == 1 { "" } else { "s" }
    )];
    for name in names.iter().take(SERVERS_SHOWN) {
        lines.push(comment(&format!("  {name}")));
    }
    if names.len() > SERVERS_SHOWN {
        lines.push(format!(
            "#   … and {} more: the same flags plus --list-servers print them all (or GET /dedicated/server)",
            names.len() - SERVERS_SHOWN
        ));
    }
    lines
}

fn auth_label(auth: Auth) -> &'static str {
    match auth {
        Auth::ApplicationKey => "application key",
        Auth::Oauth2 => "OAuth2 client credentials",
    }
}

/// Replace `path` atomically with `bytes`, readable by the owner only from the first byte on
/// (a chmod after writing would leave a window in which the secrets are world-readable).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "env".to_string());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Until Ctrl-C, or SIGTERM: a simulator started with `&` from a script ignores SIGINT, and
/// `kill` sends SIGTERM; both should stop it the same way.
async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let templates = sim::catalog::catalogue();
    let fleet = match &args.fleet {
        Some(path) => sim::fleet::load(path, &templates).into_diagnostic()?,
        None => sim::fleet::generate(args.servers, args.seed, &templates),
    };
    if args.list_servers {
        let mut out = std::io::stdout().lock();
        for server in &fleet {
            // A closed stdout (e.g. `| head`) is not an error.
            if writeln!(out, "{}", server.name.escape_debug()).is_err() {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
        return Err(SimError::NonLoopback { addr: args.listen }).into_diagnostic();
    }
    let names: Vec<String> = fleet.iter().map(|s| s.name.clone()).collect();
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
        iam_tags_filter: !args.no_iam_tags_filter,
        stale_listing: args.stale_listing,
        batch_forbidden: args.batch_forbidden,
        key: if args.access_rules.is_empty() {
            sim::SimKey::default()
        } else {
            sim::SimKey {
                rules: args.access_rules.clone(),
                ..sim::SimKey::default()
            }
        },
        clock_offset_secs: args.clock_offset,
        timings: sim::Timings {
            install: args.install_duration,
            ..sim::Timings::default()
        },
        ..SimConfig::default()
    };
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
        // The base URL carries the bound port, so `--listen 127.0.0.1:0` reports the real one.
        let endpoint = handle.base_url();
        let exports = export_lines(&endpoint, &credentials, &given, args.auth);
        let mut out = vec![format!(
            "# OVHcloud API simulator on {endpoint} (speed x{}; hooks {}); Ctrl-C stops it.",
            args.speed,
            if args.hooks { "on" } else { "off" }
        )];
        match &args.env_file {
            Some(path) => {
                let mut text = vec![
                    format!("# ovhform sim on {endpoint}, {}.", auth_label(args.auth)),
                    format!(
                        "# Load into the shell that runs ovhform: . {}",
                        source_word(path)
                    ),
                ];
                text.extend(exports);
                text.push(String::new());
                if let Err(e) = write_private(path, text.join("\n").as_bytes()) {
                    handle.shutdown().await;
                    return Err(e)
                        .into_diagnostic()
                        .wrap_err_with(|| format!("cannot write the env file {}", path.display()));
                }
                out.push(comment(&format!(
                    "Endpoint and credentials ({}) written to {} (mode 0600); load them with: . {}",
                    auth_label(args.auth),
                    path.display(),
                    source_word(path)
                )));
            }
            None => {
                out.push(format!(
                    "# For the shell that runs ovhform ({}; --auth picks the other method):",
                    auth_label(args.auth)
                ));
                out.extend(exports);
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        out.extend(server_lines(&names));
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", out.join("\n"));
        let _ = stdout.flush();
        drop(stdout);
        stop_requested().await.into_diagnostic()?;
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `METHOD /path`, e.g. `GET /dedicated/server/*`.
fn parse_rule(s: &str) -> Result<sim::SimRule, String> {
    let (method, path) = s.trim().split_once(' ').ok_or_else(|| {
        "an access rule is `METHOD /path`, e.g. `GET /dedicated/server/*`".to_string()
    })?;
    let method = method.to_ascii_uppercase();
    if !["GET", "POST", "PUT", "DELETE"].contains(&method.as_str()) || !path.trim().starts_with('/')
    {
        return Err(
            "an access rule is `METHOD /path` with METHOD one of GET, POST, PUT, DELETE".into(),
        );
    }
    Ok(sim::SimRule::new(&method, path.trim()))
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

    fn given() -> Given {
        Given {
            application_key: false,
            application_secret: true,
            consumer_key: false,
            client_id: false,
            client_secret: true,
        }
    }

    const ENDPOINT: &str = "http://127.0.0.1:8080/1.0";

    #[test]
    fn given_secrets_are_never_echoed_generated_ones_are_printed() {
        let out = export_lines(ENDPOINT, &creds(), &given(), Auth::ApplicationKey).join("\n");
        assert!(!out.contains("GIVEN"), "{out}");
        for shown in [
            "export OVH_ENDPOINT='http://127.0.0.1:8080/1.0'",
            "export OVH_APPLICATION_KEY='GEN-AK'",
            "export OVH_CONSUMER_KEY='GEN-CK'",
            "# OVH_APPLICATION_SECRET: as given",
            "unset OVH_CLIENT_ID OVH_CLIENT_SECRET",
        ] {
            assert!(out.contains(shown), "{out}");
        }
        // One method only.
        assert!(!out.contains("GEN-ID"), "{out}");

        let out = export_lines(ENDPOINT, &creds(), &given(), Auth::Oauth2).join("\n");
        assert!(!out.contains("GIVEN"), "{out}");
        assert!(out.contains("export OVH_CLIENT_ID='GEN-ID'"), "{out}");
        assert!(out.contains("# OVH_CLIENT_SECRET: as given"), "{out}");
        assert!(!out.contains("GEN-AK") && !out.contains("GEN-CK"), "{out}");
        assert!(out.contains("unset OVH_APPLICATION_KEY OVH_APPLICATION_SECRET OVH_CONSUMER_KEY"));
    }

    /// What a shell makes of `script` (after the exports, the variables are printed NUL-separated).
    fn shell_values(script: &str, vars: &[&str]) -> Vec<String> {
        let mut full = format!("{script}\n");
        for v in vars {
            full.push_str(&format!("printf '%s\\0' \"${{{v}-UNSET}}\"\n"));
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(full)
            .env_clear()
            .env("OVH_CLIENT_ID", "left over")
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn output_is_shell_safe() {
        let hostile = SimCredentials {
            application_key: "it's $(exit 7) `x` \\ \"q\" \n$HOME;'".into(),
            application_secret: "'".into(),
            consumer_key: "''\\''".into(),
            ..creds()
        };
        let none = Given {
            application_key: false,
            application_secret: false,
            consumer_key: false,
            client_id: false,
            client_secret: false,
        };
        let mut lines = export_lines(ENDPOINT, &hostile, &none, Auth::ApplicationKey);
        lines.extend(server_lines(&["ns1.example\necho INJECTED", "plain"]));
        let script = lines.join("\n");
        let values = shell_values(
            &script,
            &[
                "OVH_ENDPOINT",
                "OVH_APPLICATION_KEY",
                "OVH_APPLICATION_SECRET",
                "OVH_CONSUMER_KEY",
                "OVH_CLIENT_ID",
            ],
        );
        assert_eq!(
            values,
            vec![
                ENDPOINT.to_string(),
                hostile.application_key.clone(),
                hostile.application_secret.clone(),
                hostile.consumer_key.clone(),
                "UNSET".to_string(),
            ],
            "{script}"
        );
        assert!(!script.contains("\necho INJECTED"), "{script}");
    }

    #[test]
    fn server_names_beyond_twenty_are_summarised() {
        let names: Vec<String> = (1..=25).map(|i| format!("ns{i}.example")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let lines = server_lines(&refs);
        assert_eq!(lines[0], "# 25 servers:");
        assert_eq!(lines.len(), 1 + 20 + 1, "{lines:#?}");
        assert_eq!(lines[20], "#   ns20.example");
        assert!(lines[21].contains("… and 5 more") && lines[21].contains("--list-servers"));

        let lines = server_lines(&refs[..20]);
        assert_eq!(lines.len(), 21, "{lines:#?}");
        assert!(!lines.join("\n").contains("more"));
        assert_eq!(server_lines(&["a"]), vec!["# 1 server:", "#   a"]);
    }

    #[test]
    fn source_words() {
        assert_eq!(source_word(Path::new("sim.env")), "./sim.env");
        assert_eq!(source_word(Path::new("/tmp/x/sim.env")), "/tmp/x/sim.env");
        assert_eq!(source_word(Path::new("my sim.env")), "'./my sim.env'");
    }

    #[test]
    fn env_file_is_private_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.env");
        std::fs::write(&path, "old").unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("sim.env")]);
    }

    #[test]
    fn access_rules_parse() {
        assert_eq!(
            parse_rule("get /dedicated/server/*").unwrap(),
            sim::SimRule::new("GET", "/dedicated/server/*")
        );
        for bad in ["GET", "PATCH /x", "GET x", ""] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
    }
}
