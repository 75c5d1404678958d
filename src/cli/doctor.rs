//! `ovhform doctor`: checks everything a `plan` or `apply` depends on before it runs —
//! configuration, the endpoint, the clock, the credentials and their access rules, the
//! request budget, the state store, the manifests — and prints one line per check: `ok`,
//! `warn`, `fail` (with how to fix it) or `skip` (a check that depends on one that failed).
//!
//! Owns: the checks' order, their verdicts and thresholds, the output and the exit code (1
//! when a check fails; warnings do not fail). Must not touch: HTTP details (`ovh/`), how the
//! stores open (`state/`), validation rules (`manifest/`). Read-only everywhere: the only
//! thing it writes is a probe file in the state directory, removed at once; it never
//! migrates a database. Secrets are never shown; every line is escaped (API answers, rule
//! paths, manifest messages and paths are hostile text).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::api::{ApiArgs, requests_per_minute};
use crate::cli::{EXIT_ERROR, EXIT_OK, runtime};
use crate::escape;
use crate::manifest;
use crate::ovh::{
    self, ClientConfig, ConfigSources, Credentials, Endpoint, InstallApi, Purpose,
    types::CurrentCredential,
};
use crate::state::{self, FileStore, RecordStore, StateArgs, StateLocation};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 1 when a check fails, 0 otherwise (warnings included).\n\
    docs/operations.md \"Doctor\" explains every check, its thresholds and its fixes."
)]
pub struct Args {
    /// Directory (or file) of manifests to validate.
    #[arg(long, value_name = "DIR", default_value = "manifests")]
    pub manifests: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// What the credentials are for: `plan` (reads only: a CI key) or `apply` (reads and
    /// writes; `run` needs the same). Rules missing a call this purpose makes fail the check;
    /// rules granting calls ovhform never makes for it are a warning.
    #[arg(long = "for", value_enum, default_value_t = Purpose::Apply)]
    pub purpose: Purpose,
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not run: a check it depends on failed.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
    /// How to fix it (warnings and failures).
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            message: message.into(),
            hint: None,
        }
    }
    fn warn(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    fn fail(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    fn skip(name: &'static str, why: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            message: why.into(),
            hint: None,
        }
    }

    /// One terminal line, escaped as a whole: any part may come from the API or a file.
    pub fn render(&self) -> String {
        let mut line = format!(
            "{:<4} {:<12} {}",
            self.status.label(),
            self.name,
            self.message
        );
        if let Some(hint) = &self.hint {
            line.push_str(" -- fix: ");
            line.push_str(hint);
        }
        escape::line(&line).into_owned()
    }
}

/// Clock skew up to this is fine.
pub const SKEW_OK: Duration = Duration::from_secs(30);
/// Beyond this the skew fails: records and facts this machine writes would look implausible
/// to another (the planner allows 10 minutes in the future, the facts cache
/// `state::facts::MAX_CLOCK_SKEW`), and maintenance windows open at the wrong time.
pub const SKEW_FAIL: Duration = state::facts::MAX_CLOCK_SKEW;
/// A key expiring sooner than this is a warning.
pub const EXPIRY_WARN: Duration = Duration::from_secs(7 * 24 * 3600);
/// OVH's fair use per consumer key (REFERENCE §6.7).
const FAIR_USE_PER_MINUTE: u32 = 60;
/// Requests per server of a plan that reads every server (`--refresh`; the pipeline's
/// estimate).
const CALLS_PER_SERVER: u64 = 5;
/// The probes' patience: a doctor answers in seconds, not after a minute of retries.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let checks = runtime()?.block_on(diagnose(&args, &ConfigSources::from_process()));
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let mut out = std::io::stdout().lock();
    for c in &checks {
        let _ = writeln!(out, "{}", c.render());
    }
    let _ = writeln!(
        out,
        "doctor: {} checks, {failed} failed, {warned} warnings",
        checks.len()
    );
    Ok(ExitCode::from(if failed > 0 {
        EXIT_ERROR
    } else {
        EXIT_OK
    }))
}

/// Every check, in report order.
pub async fn diagnose(args: &Args, sources: &ConfigSources) -> Vec<Check> {
    let (manifests, servers) = check_manifests(&args.manifests);
    let config = args.api.client_config_from(sources);
    let endpoint = match &config {
        Ok(cfg) => Some(cfg.endpoint.clone()),
        Err(_) => ClientConfig::resolve_endpoint(&args.api.config_input(), sources).ok(),
    };
    let mut checks = vec![check_config(&config, endpoint.as_ref())];

    let reached = match &endpoint {
        Some(ep) => probe_time(ep, args.api.timeout).await,
        None => Err(Check::skip("endpoint", "no usable endpoint configured")),
    };
    match reached {
        Ok((ok, skew)) => {
            checks.push(ok);
            checks.push(check_clock(skew));
        }
        Err(failed) => {
            checks.push(failed);
            checks.push(Check::skip("clock", "needs the endpoint's /auth/time"));
        }
    }
    let endpoint_ok = checks[1].status != Status::Fail && checks[1].status != Status::Skip;

    let (credentials, access) = match (&config, endpoint_ok) {
        (Err(_), _) => (
            Check::skip("credentials", "no credentials configured"),
            Check::skip("access", "needs the credentials"),
        ),
        (Ok(_), false) => (
            Check::skip("credentials", "the endpoint is unreachable"),
            Check::skip("access", "needs the credentials"),
        ),
        (Ok(cfg), true) => check_credentials(cfg, args, &servers).await,
    };
    checks.push(credentials);
    checks.push(access);
    checks.push(check_budget(args, endpoint.as_ref(), servers.len()));
    checks.push(check_state(&args.state).await);
    checks.push(manifests);
    checks
}

fn check_manifests(path: &Path) -> (Check, BTreeSet<String>) {
    const NAME: &str = "manifests";
    let shown = path.display();
    match manifest::load(&[path.to_path_buf()]) {
        Ok(loaded) => {
            let d = &loaded.desired;
            let servers = d.servers.keys().cloned().collect();
            let summary = format!(
                "{shown}: {} servers, {} groups, {} maintenance windows",
                d.servers.len(),
                d.groups.len(),
                d.windows.len()
            );
            let check = if loaded.warnings.is_empty() {
                Check::ok(NAME, summary)
            } else {
                Check::warn(
                    NAME,
                    format!("{summary}; {}", loaded.warnings.summary()),
                    format!("`ovhform validate {shown}` shows each warning with its line"),
                )
            };
            (check, servers)
        }
        Err(diags) => {
            let first = diags
                .errors()
                .next()
                .map(|d| format!(" (first: {}: {} {})", d.location(), d.code.id(), d.message))
                .unwrap_or_default();
            (
                Check::fail(
                    NAME,
                    format!("{shown} is invalid: {}{first}", diags.summary()),
                    format!(
                        "`ovhform validate {shown}` lists every problem with file:line and a hint"
                    ),
                ),
                BTreeSet::new(),
            )
        }
    }
}

fn check_config(config: &Result<ClientConfig, ovh::Error>, endpoint: Option<&Endpoint>) -> Check {
    const NAME: &str = "config";
    match config {
        Ok(cfg) => {
            let method = match &cfg.credentials {
                Credentials::ApplicationKey { .. } => "application key credentials",
                Credentials::OAuth2 { .. } => "OAuth2 client credentials",
                Credentials::None => "no credentials",
            };
            let summary = format!("endpoint {}, {method}", cfg.endpoint.base_url);
            if cfg.endpoint.base_url.starts_with("http://") && !cfg.endpoint.is_loopback() {
                Check::warn(
                    NAME,
                    format!(
                        "{summary}; plain HTTP to a remote host: the consumer key and signatures travel in clear"
                    ),
                    "use an https:// endpoint or a region name (ovh-eu, ovh-ca, ovh-us, …)",
                )
            } else {
                Check::ok(NAME, summary)
            }
        }
        Err(ovh::Error::Config { message, hint }) => {
            let at = match endpoint {
                Some(e) if !message.contains(&e.name) => format!(" (endpoint {})", e.base_url),
                _ => String::new(),
            };
            Check::fail(NAME, format!("{message}{at}"), hint.clone())
        }
        Err(other) => Check::fail(
            NAME,
            other.to_string(),
            "check the endpoint and credentials settings",
        ),
    }
}

/// `GET /auth/time`, unauthenticated, as the signer fetches its delta: the endpoint check and
/// the skew (API clock minus local clock, seconds).
async fn probe_time(endpoint: &Endpoint, timeout: Duration) -> Result<(Check, i64), Check> {
    const NAME: &str = "endpoint";
    let cfg = ClientConfig {
        requests_per_minute: 0,
        timeout: timeout.min(PROBE_TIMEOUT),
        max_retries: 1,
        retry_min_delay: Duration::from_millis(200),
        retry_max_delay: Duration::from_millis(500),
        ..ClientConfig::new(endpoint.clone(), Credentials::None)
    };
    let client = ovh::Client::new(cfg)
        .map_err(|e| Check::fail(NAME, e.to_string(), "check the endpoint setting"))?;
    let started = Instant::now();
    match client.time_delta().await {
        Ok(delta) => Ok((
            Check::ok(
                NAME,
                format!(
                    "{} answered GET /auth/time in {} ms",
                    endpoint.base_url,
                    started.elapsed().as_millis()
                ),
            ),
            delta,
        )),
        Err(e @ (ovh::Error::Transport { .. } | ovh::Error::Timeout { .. })) => Err(Check::fail(
            NAME,
            format!("cannot reach {}: {e}", endpoint.base_url),
            "check --endpoint / OVH_ENDPOINT / `[default] endpoint` in ovh.conf, then DNS, proxy and firewall",
        )),
        Err(e) => Err(Check::fail(
            NAME,
            format!(
                "{} does not answer as the OVHcloud API: {e}",
                endpoint.base_url
            ),
            "the endpoint is a region name (ovh-eu, ovh-ca, ovh-us, …) or the API's base URL ending in /1.0",
        )),
    }
}

/// `skew`: API clock minus local clock, in seconds.
pub fn check_clock(skew: i64) -> Check {
    const NAME: &str = "clock";
    let size = skew.unsigned_abs();
    let direction = if skew > 0 { "behind" } else { "ahead of" };
    let said = format!("the local clock is {size} s {direction} the API's (GET /auth/time)");
    let fix = "synchronise the clock with NTP (e.g. `timedatectl set-ntp true`, chrony)";
    if size <= SKEW_OK.as_secs() {
        Check::ok(
            NAME,
            format!(
                "the local clock is within {} s of the API's",
                SKEW_OK.as_secs()
            ),
        )
    } else if size <= SKEW_FAIL.as_secs() {
        Check::warn(
            NAME,
            format!("{said}; signatures correct for it, maintenance windows do not"),
            fix,
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "{said}: maintenance windows open at the wrong time and this machine's records look implausible to others (more than {} s)",
                SKEW_FAIL.as_secs()
            ),
            fix,
        )
    }
}

/// The credentials (one signed call) and, for a consumer key, its status, expiry and rules.
async fn check_credentials(
    cfg: &ClientConfig,
    args: &Args,
    servers: &BTreeSet<String>,
) -> (Check, Check) {
    const NAME: &str = "credentials";
    const ACCESS: &str = "access";
    let cfg = ClientConfig {
        requests_per_minute: 0,
        timeout: cfg.timeout.min(PROBE_TIMEOUT),
        max_retries: 1,
        retry_min_delay: Duration::from_millis(200),
        retry_max_delay: Duration::from_millis(500),
        ..cfg.clone()
    };
    let oauth2 = matches!(cfg.credentials, Credentials::OAuth2 { .. });
    let client = match ovh::Client::new(cfg.clone()) {
        Ok(c) => c,
        Err(e) => {
            return (
                Check::fail(NAME, e.to_string(), "check the credentials settings"),
                Check::skip(ACCESS, "needs the credentials"),
            );
        }
    };
    let answer = client.current_credential().await;
    if oauth2 {
        let check = match answer {
            Ok(_) => Check::ok(NAME, "OAuth2 token obtained and accepted"),
            Err(e) if e.api().is_some_and(|a| a.status == 403) => Check::ok(
                NAME,
                "OAuth2 token obtained and accepted (GET /auth/currentCredential not granted)",
            ),
            Err(e) => credentials_failure(&e),
        };
        let access = if check.status == Status::Ok {
            Check::skip(
                ACCESS,
                "OAuth2: the service account's IAM policies decide, not access rules",
            )
        } else {
            Check::skip(ACCESS, "needs the credentials")
        };
        return (check, access);
    }
    match answer {
        Ok(key) => judge_key(&key, jiff::Timestamp::now(), args, servers),
        Err(e)
            if e.api()
                .is_some_and(|a| a.error_code.as_deref() == Some("NOT_GRANTED_CALL")) =>
        {
            (
                Check::ok(NAME, "the consumer key is accepted"),
                Check::warn(
                    ACCESS,
                    "the key may not read GET /auth/currentCredential: its rules cannot be checked",
                    "nothing to fix if plan and apply work; to let doctor check the rules, add GET /auth/currentCredential",
                ),
            )
        }
        Err(e) => (
            credentials_failure(&e),
            Check::skip(ACCESS, "needs the credentials"),
        ),
    }
}

/// What a refused signed call says about the credentials.
fn credentials_failure(e: &ovh::Error) -> Check {
    const NAME: &str = "credentials";
    let Some(api) = e.api() else {
        return match e {
            ovh::Error::OAuth2 { .. } => Check::fail(
                NAME,
                format!("the OAuth2 token request was refused: {e}"),
                "check OVH_CLIENT_ID / OVH_CLIENT_SECRET (or client_id / client_secret in ovh.conf)",
            ),
            _ => Check::fail(
                NAME,
                e.to_string(),
                "run again; if it persists, check the endpoint and the network",
            ),
        };
    };
    let code = api.error_code.as_deref().unwrap_or("");
    let said = format!("the API answered {api}");
    let (hint, what) = match (api.status, code, api.message.as_str()) {
        (400, _, m) if m.contains("signature") => (
            "check the application secret (--application-secret, OVH_APPLICATION_SECRET or application_secret in ovh.conf): it must be the one created with this application key",
            "the application secret does not match the application key",
        ),
        (400, _, m) if m.contains("out of time") => (
            "synchronise the clock with NTP",
            "the request's timestamp was refused",
        ),
        (403, "INVALID_KEY", _) => (
            "check the application key (--application-key, OVH_APPLICATION_KEY or application_key in ovh.conf) and that it belongs to this endpoint's region",
            "the application key is unknown",
        ),
        (403, "INVALID_CREDENTIAL" | "NOT_CREDENTIAL", _) => (
            "create a consumer key for this application (e.g. https://eu.api.ovh.com/createToken/ with the rules of `ovhform doctor`'s access check) and set OVH_CONSUMER_KEY",
            "the consumer key is unknown, expired, revoked or was never validated",
        ),
        (401, _, _) => (
            "check OVH_CLIENT_ID / OVH_CLIENT_SECRET; a token that expires is refreshed by ovhform",
            "the access token was refused",
        ),
        _ => (
            "check the credentials for this endpoint",
            "the credentials were refused",
        ),
    };
    Check::fail(NAME, format!("{what}: {said}"), hint)
}

/// The consumer key's status and expiry, and its rules against what ovhform calls.
pub fn judge_key(
    key: &CurrentCredential,
    now: jiff::Timestamp,
    args: &Args,
    servers: &BTreeSet<String>,
) -> (Check, Check) {
    const NAME: &str = "credentials";
    let id = key
        .credential_id
        .map(|i| format!(" {i}"))
        .unwrap_or_default();
    let credentials = if key.status != "validated" {
        Check::fail(
            NAME,
            format!("consumer key{id} is `{}`, not `validated`", key.status),
            "create a new consumer key and validate it (open its validation URL, or use the createToken page)",
        )
    } else {
        match key.expiration {
            Some(at) if at <= now => Check::fail(
                NAME,
                format!("consumer key{id} expired at {at}"),
                "create a new consumer key",
            ),
            Some(at) if at.duration_since(now).unsigned_abs() < EXPIRY_WARN => {
                let hours = at.duration_since(now).as_secs() / 3600;
                Check::warn(
                    NAME,
                    format!("consumer key{id} expires at {at} (in {hours} h)"),
                    "create a new consumer key before then (or one without expiry) and switch to it",
                )
            }
            Some(at) => Check::ok(NAME, format!("consumer key{id} validated, expires at {at}")),
            None => Check::ok(NAME, format!("consumer key{id} validated, never expires")),
        }
    };
    (
        credentials,
        judge_rules(&key.rules, args.purpose, args.api.install_api, servers),
    )
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::Plan => "plan",
        Purpose::Apply => "apply",
    }
}

/// Missing calls fail (the command would be refused half-way: `NOT_GRANTED_CALL`); rules
/// granting more than ovhform uses warn (a leaked key could do more than ovhform does).
pub fn judge_rules(
    rules: &[ovh::AccessRule],
    purpose: Purpose,
    install_api: InstallApi,
    servers: &BTreeSet<String>,
) -> Check {
    const NAME: &str = "access";
    let a = ovh::assess(rules, purpose, install_api, servers);
    let minimal = ovh::minimal_rules(purpose, install_api)
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let used = purpose_name(purpose);
    let broader = a
        .broader
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if !a.missing.is_empty() {
        let mut message = format!(
            "`{used}` would be refused: no rule grants {}",
            a.missing.join(", ")
        );
        if !a.broader.is_empty() {
            message.push_str(&format!("; rules broader than needed: {broader}"));
        }
        let hint = if purpose == Purpose::Apply && a.missing.iter().all(|m| !m.starts_with("GET "))
        {
            format!("a key for apply needs: {minimal} (on a plan-only machine use `--for plan`)")
        } else {
            format!("create a key with the rules: {minimal}")
        };
        return Check::fail(NAME, message, hint);
    }
    if !a.broader.is_empty() {
        return Check::warn(
            NAME,
            format!("rules grant more than `{used}` uses: {broader}"),
            format!("a key with only these rules is enough: {minimal}"),
        );
    }
    let scope = if servers.is_empty() {
        String::new()
    } else {
        format!(" for the {} servers of the manifests", servers.len())
    };
    let mut message = format!(
        "{} rules grant what `{used}` calls{scope}, nothing more",
        rules.len()
    );
    if purpose == Purpose::Plan && !a.missing_for_apply.is_empty() {
        message.push_str(" (this key cannot apply)");
    }
    Check::ok(NAME, message)
}

fn check_budget(args: &Args, endpoint: Option<&Endpoint>, servers: usize) -> Check {
    const NAME: &str = "budget";
    let Some(endpoint) = endpoint else {
        return Check::skip(NAME, "no usable endpoint configured");
    };
    let rpm = requests_per_minute(args.api.requests_per_minute, endpoint);
    let calls = CALLS_PER_SERVER * servers as u64;
    if rpm == 0 {
        if endpoint.is_loopback() {
            return Check::ok(NAME, "unlimited (a loopback endpoint: not OVHcloud)");
        }
        return Check::warn(
            NAME,
            format!(
                "unlimited against {}: OVHcloud's fair use is about {FAIR_USE_PER_MINUTE} requests per minute per key, bursts end in HTTP 429",
                endpoint.base_url
            ),
            format!("drop `--requests-per-minute 0` (the default is {FAIR_USE_PER_MINUTE})"),
        );
    }
    let minutes = calls.div_ceil(u64::from(rpm));
    let summary = format!(
        "{rpm} requests per minute; a plan reading all {servers} servers (--refresh) makes about {calls} requests, {minutes} min at this budget"
    );
    if rpm > FAIR_USE_PER_MINUTE && !endpoint.is_loopback() {
        Check::warn(
            NAME,
            format!(
                "{summary}; above OVHcloud's fair use of about {FAIR_USE_PER_MINUTE} per minute per key"
            ),
            format!(
                "use --requests-per-minute {FAIR_USE_PER_MINUTE} or less unless OVHcloud granted more"
            ),
        )
    } else {
        Check::ok(NAME, summary)
    }
}

async fn check_state(args: &StateArgs) -> Check {
    const NAME: &str = "state";
    let given = args.state_dir.to_string_lossy().into_owned();
    match StateLocation::parse(&given) {
        Err(message) => Check::fail(
            NAME,
            message,
            "give --state a directory or a postgres:// URL",
        ),
        Ok(StateLocation::Postgres(url)) => check_postgres(&url).await,
        Ok(StateLocation::Dir(dir)) => check_dir(&dir).await,
    }
}

async fn check_postgres(url: &str) -> Check {
    const NAME: &str = "state";
    let target = state::redact_url(url);
    let only_run = "only `ovhform run` takes a database";
    match tokio::time::timeout(
        PROBE_TIMEOUT + Duration::from_secs(1),
        state::PgStore::probe(url),
    )
    .await
    {
        Err(_) => Check::fail(
            NAME,
            format!(
                "PostgreSQL at {target} did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ),
            "check the host and port, that PostgreSQL listens there, and the firewall",
        ),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("PostgreSQL at {target}: {e}"),
            "check the URL (host, port, database, user, password, sslmode) and that PostgreSQL runs",
        ),
        Ok(Ok(None)) => Check::ok(
            NAME,
            format!(
                "PostgreSQL at {target} reachable; no ovhform schema yet (`ovhform run` creates it; {only_run})"
            ),
        ),
        Ok(Ok(Some(v))) if v > state::pg::SCHEMA_VERSION => Check::fail(
            NAME,
            format!(
                "PostgreSQL at {target} has schema version {v}, newer than this ovhform's {}",
                state::pg::SCHEMA_VERSION
            ),
            "upgrade ovhform to the version the other replicas run",
        ),
        Ok(Ok(Some(v))) => Check::ok(
            NAME,
            format!("PostgreSQL at {target} reachable, schema version {v} ({only_run})"),
        ),
    }
}

/// The state directory: writable (a probe file created and removed), private, and its records
/// readable. A missing directory is fine when its parent is writable: apply creates it.
async fn check_dir(dir: &Path) -> Check {
    const NAME: &str = "state";
    let shown = dir.display();
    let fix_perm = format!(
        "run as the user that owns {shown}, or `chown` it to that user, or give --state a directory that user can write"
    );
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            return match probe_write(&parent) {
                Ok(()) => Check::ok(
                    NAME,
                    format!(
                        "{shown} does not exist yet; its parent is writable (apply creates it)"
                    ),
                ),
                Err(e) => Check::fail(
                    NAME,
                    format!(
                        "{shown} does not exist and cannot be created in {}: {e}",
                        parent.display()
                    ),
                    fix_perm,
                ),
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Check::fail(
                NAME,
                format!("{shown} cannot be created: a part of its path is a file"),
                "give --state a path whose parents are directories",
            );
        }
        Err(e) => {
            return Check::fail(NAME, format!("{shown}: {e}"), fix_perm);
        }
        Ok(m) if !m.is_dir() => {
            return Check::fail(
                NAME,
                format!("{shown} is not a directory"),
                "give --state a directory (or a postgres:// URL for `ovhform run`)",
            );
        }
        Ok(_) => {}
    }
    if let Err(e) = probe_write(dir) {
        return Check::fail(NAME, format!("{shown} is not writable: {e}"), fix_perm);
    }
    let records = match FileStore::open_read_only(dir).load().await {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{shown}: the records cannot be read: {e}"),
                "restore records.json from a backup, or see docs/operations.md \"State\"",
            );
        }
    };
    let summary = format!(
        "{shown} writable; {} install records",
        records.installs.len()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(dir)
            && m.permissions().mode() & 0o077 != 0
        {
            return Check::warn(
                NAME,
                format!(
                    "{summary}; mode {:o}: other users may read records and the fleet secret",
                    m.permissions().mode() & 0o777
                ),
                format!("chmod 700 {shown}"),
            );
        }
    }
    Check::ok(NAME, summary)
}

/// Creates and removes a file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".ovhform-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_thresholds() {
        assert_eq!(check_clock(0).status, Status::Ok);
        assert_eq!(check_clock(-30).status, Status::Ok);
        assert_eq!(check_clock(31).status, Status::Warn);
        assert_eq!(check_clock(-300).status, Status::Warn);
        let late = check_clock(3600);
        assert_eq!(late.status, Status::Fail);
        assert!(late.message.contains("3600 s behind"), "{late:?}");
        assert!(check_clock(-301).message.contains("301 s ahead of"));
    }

    #[test]
    fn lines_are_escaped() {
        let c = Check::warn("access", "rules: GET /\u{1b}[2Jx\u{202e}", "fix\r\nit");
        let line = c.render();
        assert!(
            !line.contains('\u{1b}') && !line.contains('\n') && !line.contains('\u{202e}'),
            "{line}"
        );
        assert!(line.starts_with("warn access "), "{line}");
    }

    fn args(argv: &[&str]) -> Args {
        use clap::Parser;
        let mut full = vec!["ovhform", "doctor"];
        full.extend(argv);
        match crate::cli::Cli::try_parse_from(full)
            .expect("parse")
            .command
        {
            crate::cli::Command::Doctor(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    fn key(status: &str, expiration: Option<jiff::Timestamp>) -> CurrentCredential {
        CurrentCredential {
            credential_id: Some(7),
            application_id: None,
            status: status.into(),
            rules: ovh::minimal_rules(Purpose::Apply, InstallApi::Reinstall),
            creation: None,
            expiration,
            last_use: None,
            allowed_ips: None,
        }
    }

    #[test]
    fn key_status_and_expiry() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let a = args(&[]);
        let none = BTreeSet::new();
        let (c, r) = judge_key(&key("validated", None), now, &a, &none);
        assert_eq!(
            (c.status, r.status),
            (Status::Ok, Status::Ok),
            "{c:?} {r:?}"
        );
        for status in ["expired", "pendingValidation", "refused", "anything"] {
            assert_eq!(
                judge_key(&key(status, None), now, &a, &none).0.status,
                Status::Fail
            );
        }
        let soon = now
            .checked_add(jiff::SignedDuration::from_hours(48))
            .unwrap();
        let (c, _) = judge_key(&key("validated", Some(soon)), now, &a, &none);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("in 48 h"), "{c:?}");
        let later = now
            .checked_add(jiff::SignedDuration::from_hours(24 * 30))
            .unwrap();
        assert_eq!(
            judge_key(&key("validated", Some(later)), now, &a, &none)
                .0
                .status,
            Status::Ok
        );
        let past = now
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap();
        assert_eq!(
            judge_key(&key("validated", Some(past)), now, &a, &none)
                .0
                .status,
            Status::Fail
        );
    }

    #[test]
    fn rules_verdicts() {
        let none = BTreeSet::new();
        let api = InstallApi::Reinstall;
        let plan_key = ovh::minimal_rules(Purpose::Plan, api);
        let c = judge_rules(&plan_key, Purpose::Apply, api, &none);
        assert_eq!(c.status, Status::Fail);
        assert!(c.hint.as_deref().unwrap().contains("--for plan"), "{c:?}");
        let c = judge_rules(&plan_key, Purpose::Plan, api, &none);
        assert_eq!(c.status, Status::Ok);
        assert!(c.message.contains("cannot apply"), "{c:?}");
        let all = vec![
            ovh::AccessRule::new("GET", "/*"),
            ovh::AccessRule::new("DELETE", "/*"),
        ];
        let c = judge_rules(&all, Purpose::Apply, api, &none);
        // GET /* covers every read but not the writes: refused, and broader.
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message.contains("broader than needed: GET /*, DELETE /*"),
            "{c:?}"
        );
        let mut wide = ovh::minimal_rules(Purpose::Apply, api);
        wide.push(ovh::AccessRule::new("DELETE", "/dedicated/server/*"));
        let c = judge_rules(&wide, Purpose::Apply, api, &none);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("DELETE /dedicated/server/*"), "{c:?}");
    }
}
