//! End-to-end benchmark of issues 4 and 7: a full `ovhform plan` (the real release binary, as a
//! child process) of a simulated fleet, next to `benches/python_plan_reads.py` (python-ovh doing
//! the same reads) against the same in-process simulator, in the same run.
//!
//! Run (the example measures the `ovhform` binary next to it and `cargo run --example` does
//! not rebuild that binary, so build both first):
//!
//! ```sh
//! cargo build --release --bin ovhform --example bench_plan_e2e
//! cargo run --release --example bench_plan_e2e -- [--servers 1000] [--latency-ms 30] \
//!     [--runs 5] [--python-runs 3] [--python PATH] [--first-plan]
//! ```
//!
//! Two scenarios:
//!
//! - default (issue 4): a fleet where nothing changes and ovhform's records are in the IAM tags;
//!   described below.
//! - `--first-plan` (issue 7): a team's first plan over an existing fleet — the same manifests
//!   and servers, but no records anywhere (no tags, no state directory), so every server plans
//!   exactly `adopt` (exit 2 with `--detailed-exitcode`). `ovhform plan` runs with
//!   `--requests-per-minute 60`, the default budget for a real endpoint, and the whole
//!   measurement is made twice in the same run: against a simulator with the expanded listing,
//!   then against one without it but with batch GETs (python-ovh's expanded mode is skipped
//!   there: it needs the listing). Targets: ≤ 40 calls and ≤ 1 s with the expanded listing,
//!   ≤ 40 calls without.
//!
//! Set-up of the default scenario: N Server manifests (one file each: debian12_64, hostname, sshKey, disk boot,
//! monitoring and rescueMail) in a temp dir; a simulator fleet whose servers already match them
//! and carry the install-record IAM tags (`ovhform:*`) of exactly those manifests, so the plan is
//! all `noop` with no state directory (the CI case: read-only key, records from tags). The
//! simulator adds `--latency-ms` to every API response. Targets (issue 4): < 1 s and ≤ 40 API
//! calls for 1,000 servers; this program reports them, it does not enforce timing.
//!
//! It exits non-zero if the plan is not all `noop` (or the exit code with
//! `--detailed-exitcode` is not 0), so it can never silently measure the wrong thing.
//! Everything runs on 127.0.0.1; the children get a temp HOME and working directory so no
//! `ovh.conf` of the machine is read. `RUST_LOG` is passed to the `ovhform` child and its
//! log is shown (e.g. `RUST_LOG=ovhform=debug`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use ovhform::model::InstallRecord;
use ovhform::sim::{self, Faults, SimConfig, SimHandle};
use serde_json::{Value, json};

const OS: &str = "debian12_64";
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNtXYuPwxcCK174vy6JaPpL0xp7VdERNtnmwx6DVvx0 ops@example";
const RESCUE_MAIL: &str = "ops@example.com";
const DATACENTERS: [&str; 3] = ["gra3", "rbx8", "sbg5"];

#[derive(Debug, Parser)]
#[command(about = "Full `ovhform plan` vs python-ovh reads against the simulator (issue 4)")]
struct Args {
    /// Servers in the fleet (and manifests).
    #[arg(long, default_value_t = 1000)]
    servers: usize,
    /// Latency the simulator adds to every API response, in milliseconds.
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// Measured `ovhform plan` runs (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Runs of the python-ovh script per mode (sequential, threaded); 0 skips python-ovh
    /// (e.g. to profile ovhform alone).
    #[arg(long, default_value_t = 3)]
    python_runs: usize,
    /// Threads of the threaded python-ovh run.
    #[arg(long, default_value_t = 10)]
    python_threads: usize,
    /// Python interpreter with `ovh` installed. Default: $OVHFORM_TEST_PYTHON, else
    /// target/test-venv/bin/python (made by scripts/test.sh), else python3.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Simulate an API that ignores the expanded listing (ovhform falls back to the id list and
    /// batch GETs); use with --python-runs 0, the python expanded mode needs the listing.
    #[arg(long)]
    no_expanded_listing: bool,
    /// Simulate an API without batch GETs (`X-Ovh-Batch`) too.
    #[arg(long)]
    no_batch: bool,
    /// The ovhform binary to measure. Default: `ovhform` in this example's profile directory.
    #[arg(long)]
    ovhform: Option<PathBuf>,
    /// Measure a first plan (issue 7): no records, every server adopts; both with and without
    /// the expanded listing, in this one run.
    #[arg(long, conflicts_with_all = ["no_expanded_listing", "no_batch"])]
    first_plan: bool,
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Nothing changes; records in the IAM tags (issue 4).
    NoChanges,
    /// No records; every server already runs the desired OS → all `adopt` (issue 7).
    FirstPlan,
}

/// Which call-economy features the simulator honours in one measurement.
#[derive(Clone, Copy, Debug)]
struct Variant {
    expanded_listing: bool,
    batch: bool,
}

impl Variant {
    fn label(self) -> &'static str {
        match (self.expanded_listing, self.batch) {
            (true, true) => "expanded listing and batch GETs",
            (true, false) => "expanded listing, no batch GETs",
            (false, true) => "no expanded listing (ids + batch GETs of 50)",
            (false, false) => "no expanded listing, no batch GETs",
        }
    }
}

/// A failure of the benchmark set-up or of a measured run: printed, exit 1.
type Fail = String;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_plan_e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Fail> {
    if args.servers == 0 || args.runs == 0 {
        return Err("--servers and --runs must be at least 1".into());
    }
    let ovhform = match &args.ovhform {
        Some(p) => p.clone(),
        None => default_ovhform()?,
    };
    if !ovhform.is_file() {
        return Err(format!(
            "the ovhform binary {} does not exist; build it first: \
             cargo build --release --bin ovhform --example bench_plan_e2e",
            ovhform.display()
        ));
    }
    let python = match &args.python {
        Some(p) => p.clone(),
        None => default_python(),
    };
    if args.python_runs > 0 {
        check_python(&python)?;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_plan_reads.py");

    let work = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let manifests = work.path().join("manifests");
    let home = work.path().join("home");
    let state = work.path().join("state-empty");
    for d in [&manifests, &home] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }

    let scenario = if args.first_plan {
        Scenario::FirstPlan
    } else {
        Scenario::NoChanges
    };
    let t = Instant::now();
    let names = write_manifests(&manifests, args.servers)?;
    let loaded = ovhform::manifest::load(std::slice::from_ref(&manifests))
        .map_err(|d| format!("generated manifests are invalid:\n{}", d.render(false)))?;
    let fleet = build_fleet(&names, &loaded.desired, scenario == Scenario::NoChanges)?;
    eprintln!(
        "generated {} manifests and the matching fleet in {:.2?}",
        names.len(),
        t.elapsed()
    );

    let variants = match scenario {
        Scenario::FirstPlan => vec![
            Variant {
                expanded_listing: true,
                batch: true,
            },
            Variant {
                expanded_listing: false,
                batch: true,
            },
        ],
        Scenario::NoChanges => vec![Variant {
            expanded_listing: !args.no_expanded_listing,
            batch: !args.no_batch,
        }],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let bench = Bench {
        args: &args,
        scenario,
        ovhform: &ovhform,
        python: &python,
        script: &script,
        manifests: &manifests,
        state: &state,
        home: &home,
    };
    let mut results = Vec::new();
    for variant in variants {
        let (ov, py) = bench.measure(&runtime, variant, fleet.clone())?;
        results.push((variant, ov, py));
    }
    for (variant, ov, py) in &results {
        print_report(&args, scenario, *variant, ov, py);
    }
    println!("machine: {}", machine());
    Ok(())
}

/// What every measurement shares.
struct Bench<'a> {
    args: &'a Args,
    scenario: Scenario,
    ovhform: &'a Path,
    python: &'a Path,
    script: &'a Path,
    manifests: &'a Path,
    state: &'a Path,
    home: &'a Path,
}

impl Bench<'_> {
    /// One simulator with `variant`'s features: ovhform's runs, then python-ovh's.
    fn measure(
        &self,
        runtime: &tokio::runtime::Runtime,
        variant: Variant,
        fleet: Vec<sim::Server>,
    ) -> Result<(Samples, Vec<(PyMode, Samples)>), Fail> {
        let args = self.args;
        let handle = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("cannot bind the simulator on 127.0.0.1: {e}"))?;
            Ok::<_, Fail>(sim::spawn(
                listener,
                SimConfig {
                    fleet,
                    faults: Faults {
                        latency: Some(Duration::from_millis(args.latency_ms)),
                        ..Faults::default()
                    },
                    expanded_listing: variant.expanded_listing,
                    batch: variant.batch,
                    ..SimConfig::default()
                },
            ))
        })?;
        eprintln!(
            "simulator on {} with {} ms latency per response, {}",
            handle.base_url(),
            args.latency_ms,
            variant.label()
        );

        let child = ChildEnv {
            home: self.home.to_path_buf(),
            handle: &handle,
        };

        // ovhform: one warm-up run (page cache, first-exec costs), then the measured runs.
        let mut ov = Samples::default();
        for i in 0..=args.runs {
            handle.reset_calls();
            let took = run_ovhform(
                self.ovhform,
                self.manifests,
                self.state,
                &child,
                args.servers,
                self.scenario,
            )?;
            let calls = handle.total_calls();
            let routes = handle.calls();
            if i == 0 {
                eprintln!(
                    "ovhform warm-up: {:.3} s, {calls} calls",
                    took.as_secs_f64()
                );
                continue;
            }
            eprintln!(
                "ovhform run {i}: {:.3} s, {calls} API calls {}",
                took.as_secs_f64(),
                route_summary(&routes)
            );
            ov.push(took, calls, None);
        }

        // python-ovh: per-object GETs sequential, then threaded; then the expanded listing
        // (only where the simulator has one).
        let mut py = Vec::new();
        let mut modes = Vec::new();
        if args.python_runs > 0 {
            modes.push(PyMode::PerObject { threads: 1 });
            modes.push(PyMode::PerObject {
                threads: args.python_threads,
            });
            if variant.expanded_listing {
                modes.push(PyMode::Expanded);
            }
        }
        for mode in modes {
            let mut s = Samples::default();
            for i in 1..=args.python_runs {
                handle.reset_calls();
                let (took, own) = run_python(self.python, self.script, mode, &child, args.servers)?;
                let calls = handle.total_calls();
                eprintln!(
                    "python-ovh {} run {i}: {:.3} s (reads {:.3} s), {calls} API calls",
                    mode.label(),
                    took.as_secs_f64(),
                    own.as_secs_f64()
                );
                s.push(took, calls, Some(own));
            }
            py.push((mode, s));
        }
        runtime.block_on(handle.shutdown());
        Ok((ov, py))
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture: manifests and the matching simulator fleet.
// ---------------------------------------------------------------------------------------------

/// One manifest file per server (as a repository of manifests usually looks). Returns the
/// service names in order.
fn write_manifests(dir: &Path, n: usize) -> Result<Vec<String>, Fail> {
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("ns{}.ip-51-68-{}.eu", 5_000_000 + i, i % 250);
        let text = format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: {name}\n  labels: {{role: web, env: prod}}\nspec:\n  install:\n    os: {OS}\n    customizations:\n      hostname: web-{i:04}\n      sshKey: \"{SSH_KEY}\"\n    generation: 1\n  boot:\n    mode: disk\n  settings:\n    monitoring: true\n    rescueMail: {RESCUE_MAIL}\n"
        );
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        names.push(name);
    }
    Ok(names)
}

/// Simulator servers already in the desired state (OS, disk boot, settings); with `records`,
/// each carries the IAM tags of an install record with its manifest's fingerprint and
/// generation (without, ovhform has no record of any of them: a first plan).
fn build_fleet(
    names: &[String],
    desired: &ovhform::model::Desired,
    records: bool,
) -> Result<Vec<sim::Server>, Fail> {
    let finished: jiff::Timestamp = "2026-11-02T02:30:00Z"
        .parse()
        .map_err(|e| format!("bad fixture time: {e}"))?;
    let mut servers = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let install = desired
            .servers
            .get(name)
            .and_then(|s| s.install.as_ref())
            .ok_or_else(|| format!("server {name}: no install spec after loading"))?;
        let rec = InstallRecord {
            server: name.clone(),
            fleet: ovhform::model::DEFAULT_FLEET.into(),
            algorithm: 2,
            secrets: None,
            request: None,
            fingerprint: install.fingerprint.clone(),
            os: install.os.clone(),
            generation: install.generation,
            revision: Some("4f2a9c1d0e8b7a6f5c4d3e2f1a0b9c8d7e6f5a4b".into()),
            task_id: Some(700_000 + i as u64),
            started: Some(finished - jiff::SignedDuration::from_mins(20)),
            finished: Some(finished),
        };
        let mut tags: BTreeMap<String, Value> = BTreeMap::new();
        if records {
            let encoded = ovhform::state::record_to_tags(&rec)
                .map_err(|e| format!("server {name}: cannot encode the record as tags: {e}"))?;
            tags.extend(encoded.into_iter().map(|(k, v)| (k, Value::String(v))));
        }
        tags.insert("env".into(), json!("prod"));
        servers.push(json!({
            "name": name,
            "os": OS,
            "datacenter": DATACENTERS[i % DATACENTERS.len()],
            "boot": "hd",
            "monitoring": true,
            "rescueMail": RESCUE_MAIL,
            "tags": tags,
        }));
    }
    let text = serde_json::to_string(&json!({ "servers": servers }))
        .map_err(|e| format!("cannot encode the fleet: {e}"))?;
    sim::fleet::parse(
        &text,
        Path::new("bench-fleet.json"),
        &sim::catalog::catalogue(),
    )
    .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// The measured children.
// ---------------------------------------------------------------------------------------------

/// What every child gets: a clean environment (no OVH_* of the caller, no ovh.conf), the
/// simulator's credentials.
struct ChildEnv<'a> {
    home: PathBuf,
    handle: &'a SimHandle,
}

impl ChildEnv<'_> {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // git (manifest revision) and the interpreter may need PATH; nothing else is passed.
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd
    }
}

fn run_ovhform(
    bin: &Path,
    manifests: &Path,
    state: &Path,
    env: &ChildEnv<'_>,
    servers: usize,
    scenario: Scenario,
) -> Result<Duration, Fail> {
    let creds = env.handle.credentials();
    let mut cmd = env.command(bin);
    cmd.args(["plan", "--format", "json", "--detailed-exitcode"])
        // The budget a user of the real API gets: without the flag, a loopback endpoint (this
        // simulator) is not throttled at all, which would measure something no user sees.
        .args(["--requests-per-minute", "60"])
        .arg("--manifests")
        .arg(manifests)
        .arg("--state")
        .arg(state)
        .env("OVH_ENDPOINT", env.handle.base_url())
        .env("OVH_APPLICATION_KEY", &creds.application_key)
        .env("OVH_APPLICATION_SECRET", &creds.application_secret)
        .env("OVH_CONSUMER_KEY", &creds.consumer_key);
    let log = std::env::var_os("RUST_LOG");
    if let Some(l) = &log {
        cmd.env("RUST_LOG", l);
    }
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if log.is_some() {
        eprint!("{stderr}");
    }
    let (want_code, want_kind) = match scenario {
        Scenario::NoChanges => (0, "noop"),
        Scenario::FirstPlan => (2, "adopt"),
    };
    if out.status.code() != Some(want_code) {
        return Err(format!(
            "`ovhform plan --detailed-exitcode` exited with {} ({want_code} expected: every server `{want_kind}`); stderr:\n{stderr}",
            out.status
        ));
    }
    match scenario {
        Scenario::NoChanges => check_all_noop(&out.stdout, servers),
        Scenario::FirstPlan => check_all_adopt(&out.stdout, servers),
    }
    .map_err(|e| format!("the plan is not what this benchmark measures: {e}"))?;
    Ok(took)
}

/// Every server of the plan has exactly one action, `adopt`, with no drift and no findings,
/// and nothing was recorded before (a first plan).
fn check_all_adopt(stdout: &[u8], servers: usize) -> Result<(), String> {
    let plan: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("the JSON plan does not parse: {e}"))?;
    let list = plan["servers"]
        .as_object()
        .ok_or("the JSON plan has no `servers` object")?;
    if list.len() != servers {
        return Err(format!(
            "the plan has {} servers, expected {servers}",
            list.len()
        ));
    }
    for (name, sp) in list {
        let kinds: Vec<&str> = sp["actions"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["type"].as_str()).collect())
            .unwrap_or_default();
        if kinds != ["adopt"] {
            return Err(format!(
                "server {name} plans {kinds:?}, expected [\"adopt\"]: {}",
                sp["actions"]
            ));
        }
        for field in ["drift", "findings"] {
            if sp[field].as_array().is_some_and(|a| !a.is_empty()) {
                return Err(format!("server {name} has {field}: {}", sp[field]));
            }
        }
        if !sp["based_on"]["recorded_fingerprint"].is_null() {
            return Err(format!(
                "server {name} has a record; a first plan has none: {}",
                sp["based_on"]
            ));
        }
    }
    if plan["findings"].as_array().is_some_and(|f| !f.is_empty()) {
        return Err(format!("the plan has findings: {}", plan["findings"]));
    }
    Ok(())
}

/// Every server of the plan has exactly one action, `noop`, and nothing is blocked or wrong.
fn check_all_noop(stdout: &[u8], servers: usize) -> Result<(), String> {
    let plan: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("the JSON plan does not parse: {e}"))?;
    let list = plan["servers"]
        .as_object()
        .ok_or("the JSON plan has no `servers` object")?;
    if list.len() != servers {
        return Err(format!(
            "the plan has {} servers, expected {servers}",
            list.len()
        ));
    }
    for (name, sp) in list {
        let kinds: Vec<&str> = sp["actions"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["type"].as_str()).collect())
            .unwrap_or_default();
        if kinds != ["noop"] {
            return Err(format!(
                "server {name} plans {kinds:?}, expected [\"noop\"]: {}",
                sp["actions"]
            ));
        }
        // In sync, not merely quiet: no drift, no findings, and the install record (read back
        // from the IAM tags, there is no state dir) is the manifest's.
        for field in ["drift", "findings"] {
            if sp[field].as_array().is_some_and(|a| !a.is_empty()) {
                return Err(format!("server {name} has {field}: {}", sp[field]));
            }
        }
        let based_on = &sp["based_on"];
        if based_on["recorded_fingerprint"].is_null()
            || based_on["recorded_fingerprint"] != based_on["desired_fingerprint"]
        {
            return Err(format!(
                "server {name}: the plan did not read the install record from the tags: {based_on}"
            ));
        }
    }
    if plan["findings"].as_array().is_some_and(|f| !f.is_empty()) {
        return Err(format!("the plan has findings: {}", plan["findings"]));
    }
    Ok(())
}

/// How the python-ovh script reads the servers.
#[derive(Clone, Copy, Debug)]
enum PyMode {
    /// The plain listing, then one GET per server on `threads` threads.
    PerObject { threads: usize },
    /// Whole objects by pages of the expanded listing (what ovhform's client does).
    Expanded,
}

impl PyMode {
    fn label(self) -> String {
        match self {
            PyMode::PerObject { threads: 1 } => "per-server GETs, sequential".into(),
            PyMode::PerObject { threads } => format!("per-server GETs, {threads} threads"),
            PyMode::Expanded => "expanded listing (ovhform's API trick)".into(),
        }
    }
}

fn run_python(
    python: &Path,
    script: &Path,
    mode: PyMode,
    env: &ChildEnv<'_>,
    servers: usize,
) -> Result<(Duration, Duration), Fail> {
    let creds = env.handle.credentials();
    let mut cmd = env.command(python);
    cmd.arg(script)
        .arg("--url")
        .arg(env.handle.base_url())
        .args(["--application-key", &creds.application_key])
        .args(["--application-secret", &creds.application_secret])
        .args(["--consumer-key", &creds.consumer_key]);
    match mode {
        PyMode::PerObject { threads } => cmd.args(["--threads", &threads.to_string()]),
        PyMode::Expanded => cmd.arg("--expanded"),
    };
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{} exited with {}; stderr:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{} printed no JSON line ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    if line["servers"].as_u64() != Some(servers as u64) {
        return Err(format!(
            "python-ovh read {} servers, expected {servers}",
            line["servers"]
        ));
    }
    let own = line["seconds"]
        .as_f64()
        .ok_or("the python script's line has no `seconds`")?;
    Ok((took, Duration::from_secs_f64(own)))
}

// ---------------------------------------------------------------------------------------------
// Locating the tools.
// ---------------------------------------------------------------------------------------------

/// `target/<profile>/ovhform`, this example being `target/<profile>/examples/bench_plan_e2e`.
fn default_ovhform() -> Result<PathBuf, Fail> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this example: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory from this example's path")?;
    Ok(profile_dir.join(format!("ovhform{}", std::env::consts::EXE_SUFFIX)))
}

fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("OVHFORM_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn check_python(python: &Path) -> Result<(), Fail> {
    let ok = Command::new(python)
        .args(["-c", "import ovh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} cannot `import ovh`: the baseline needs the official python-ovh client. \
             Make the venv with `bash scripts/test.sh` (or `python3 -m venv target/test-venv && \
             target/test-venv/bin/pip install -r tests/python/requirements.txt`), or pass \
             --python PATH",
            python.display()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Figures.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Samples {
    wall: Vec<Duration>,
    calls: Vec<u64>,
    /// The script's own clock (reads only, no interpreter start-up), python only.
    own: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, wall: Duration, calls: u64, own: Option<Duration>) {
        self.wall.push(wall);
        self.calls.push(calls);
        self.own.extend(own);
    }
    fn median(v: &[Duration]) -> Duration {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    }
    fn min(v: &[Duration]) -> Duration {
        v.iter().copied().min().unwrap_or_default()
    }
    /// All runs made the same number of calls in practice; show the range if not.
    fn calls(&self) -> String {
        let (lo, hi) = (
            self.calls.iter().min().copied().unwrap_or(0),
            self.calls.iter().max().copied().unwrap_or(0),
        );
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn route_summary(routes: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = routes.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    format!("({})", parts.join(", "))
}

fn print_report(
    args: &Args,
    scenario: Scenario,
    variant: Variant,
    ov: &Samples,
    py: &[(PyMode, Samples)],
) {
    let ov_med = Samples::median(&ov.wall);
    let ov_calls = ov.calls.iter().max().copied().unwrap_or(0);
    let what = match scenario {
        Scenario::NoChanges => "no changes, records in IAM tags",
        Scenario::FirstPlan => {
            "first plan: no records, every server adopts, --requests-per-minute 60"
        }
    };
    println!();
    println!(
        "{} servers, {what}; simulator: {}, {} ms latency per response; {} measured ovhform runs \
         (after 1 warm-up), {} python-ovh runs per mode",
        args.servers,
        variant.label(),
        args.latency_ms,
        args.runs,
        args.python_runs
    );
    println!();
    println!(
        "| tool | wall time, median | wall time, min | reads only (script's own clock), median | API calls | time ÷ ovhform | calls ÷ ovhform |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| `ovhform plan` (release binary, whole process) | {} | {} | — | {} | 1× | 1× |",
        secs(ov_med),
        secs(Samples::min(&ov.wall)),
        ov.calls()
    );
    for (mode, s) in py {
        let med = Samples::median(&s.wall);
        let calls = s.calls.iter().max().copied().unwrap_or(0);
        println!(
            "| python-ovh, {} | {} | {} | {} | {} | {:.1}× | {:.1}× |",
            mode.label(),
            secs(med),
            secs(Samples::min(&s.wall)),
            secs(Samples::median(&s.own)),
            s.calls(),
            med.as_secs_f64() / ov_med.as_secs_f64(),
            calls as f64 / ov_calls.max(1) as f64
        );
    }
    println!();
    let under = |ok: bool| if ok { "met" } else { "MISSED" };
    // Without the expanded listing the budget, not the API, sets the time: only calls count.
    let timed = variant.expanded_listing;
    println!(
        "targets for 1,000 servers: {}API calls ≤ 40: {} ({})",
        if timed {
            format!(
                "wall < 1 s: {} (median {}); ",
                under(ov_med < Duration::from_secs(1)),
                secs(ov_med)
            )
        } else {
            String::new()
        },
        under(ov_calls <= 40),
        ov_calls
    );
}

/// `nproc`, CPU model and memory, for the figures' caption.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("unknown memory".to_string(), |kb| {
            format!("{:.1} GiB RAM", kb / 1024.0 / 1024.0)
        });
    format!("{cpus} CPUs available, {model}, {mem_gib}")
}
