//! The chaos soak (issue 12): `ovhform run` (the real binary) over a generated fleet while the
//! simulator injects every fault it has, the manifests change under it, and the daemon is
//! SIGKILLed and restarted at random moments; in the PostgreSQL mode two replicas share one
//! store and the leader is killed too. At the end, with the faults off, the fleet must
//! converge and the simulator's install log and the store must show that nothing went wrong.
//!
//! The fleet: `N` servers running Debian 12, one Server manifest each, alternately
//! `policy.reinstall: auto` (the daemon reinstalls on its own) and `manual` (a wipe waits for
//! a person's `apply --allow-wipe`). The chaos, every `tick` (a seeded RNG drives it all):
//! - the simulator's faults: 10 % 5xx, 5 % 429, 2 % connection resets, the first two GETs of a
//!   fresh task 404, finished tasks purged after two simulated hours (2.4 min), 10 % of installs failing
//!   at a random step, and latency spikes (every response delayed for a tick or two);
//! - one manifest edit: a monitoring flip (approved: a settings PUT), an OS change of an
//!   `auto` server (an approved reinstall), an OS change of a `manual` server (a wipe nobody
//!   approves), an invalid file (restored at the next tick), or a git-sync swap (a new
//!   revision directory, the `current` symlink replaced atomically by `rename`);
//! - at random moments (every `kill_every` on average) SIGKILL of the daemon (of the leader,
//!   mostly, in the PostgreSQL mode) and a restart; a quarter of the restarts arm a crash point
//!   of the executor (`OVHFORM_CRASH_AT`: just after a reinstall POST, a journal write, …) so
//!   that some kills land at the most delicate instants.
//!
//! The invariants, once the faults stop and the fleet settles (from the simulator's install
//! log, which survives task purges, its call log, `/status` and the store):
//! - every approved change converged: each `auto` server runs the OS of its manifest (or its
//!   one install failed: it is `degraded`, never wiped again without a person), each server's
//!   monitoring is its manifest's;
//! - exactly one installation per approved reinstall; none on a `manual` or unchanged server;
//!   the reinstall POSTs that reached the API equal the installations;
//! - no record lost: `ovhform state show` reads the store and has a record of every server;
//!   no intent is left in the journal;
//! - no daemon log says `panicked`.
//!
//! Short form (CI, both modes at once, about 2 minutes):
//! `cargo test --test it soak::short`. Long form, documented in docs/benchmarks.md:
//! `OVHFORM_SOAK_MINUTES=30 OVHFORM_SOAK_SERVERS=200 cargo test --test it soak::long --
//! --ignored --nocapture` (`OVHFORM_SOAK_PG=0|1` runs only the file or the PostgreSQL mode;
//! `OVHFORM_SOAK_SEED` replays a seed, which every run prints).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ovhform::daemon::{ServerStatus, StatusDoc};
use ovhform::sim::{self, FaultCounts, Faults, SimConfig, SimHandle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli_support::REINSTALL;
use crate::pg_support::{TestDb, fresh_db};

/// The OS every server runs at the start, and the one an OS change asks for.
const FIRST_OS: &str = "debian12_64";
const NEXT_OS: &str = "ubuntu2404-server_64";
/// Simulated time runs this much faster (a 15-minute installation lasts 18 s); the daemon
/// is told the same (`OVHFORM_TIME_SCALE`). Not faster: the client's retry backoff runs on
/// the real clock, and at 200× a task's fresh-task 404s, retried after 429s and 5xx, reach
/// past the 5-minute fresh window, where a 404 means "purged" (the intent then waits for a
/// person: safe, but no convergence to check).
const SPEED: u32 = 50;

/// The executor's crash points a restart may arm (`src/apply/crash.rs`).
const CRASH_POINTS: &[&str] = &[
    "intent:after-journal",
    "intent:after-post",
    "intent:after-posted-journal",
    "track:poll",
    "install:before-record",
    "install:after-store-record",
    "adopt:after-store-record",
    "settings:after-put",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// One daemon on a state directory.
    Dir,
    /// Two replicas on one PostgreSQL database.
    Postgres,
}

#[derive(Clone, Debug)]
struct Params {
    store: Store,
    servers: usize,
    /// How long the chaos lasts (faults, edits, kills).
    chaos: Duration,
    /// One manifest edit and one fault change per tick.
    tick: Duration,
    /// Mean time between two SIGKILLs.
    kill_every: Duration,
    /// How long the fleet may take to settle once the chaos stops.
    settle: Duration,
    seed: u64,
}

/// What one server's manifest says.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    auto: bool,
    os: &'static str,
    monitoring: bool,
}

impl Spec {
    fn yaml(&self) -> String {
        format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: {}\nspec:\n  install:\n    os: {}\n  settings:\n    monitoring: {}\n  policy:\n    reinstall: {}\n",
            self.name,
            self.os,
            self.monitoring,
            if self.auto { "auto" } else { "manual" }
        )
    }
    fn file(&self) -> String {
        format!("servers/{}.yaml", self.name)
    }
}

/// What happened, and the figures the summary prints.
#[derive(Debug, Default)]
struct Tally {
    approved_reinstalls: usize,
    unapproved_reinstalls: usize,
    settings_changes: usize,
    invalid_edits: usize,
    swaps: usize,
    latency_spikes: usize,
    kills: usize,
    leader_kills: usize,
    crash_point_kills: usize,
    failovers: usize,
    slowest_takeover: Duration,
    peak_rss_kib: u64,
}

/// How the servers ended, from the leader's `/status`.
#[derive(Debug)]
struct Ends {
    /// Approved reinstalls that ran and converged.
    converged: usize,
    synced: usize,
    pending: usize,
    /// Degraded by an intent whose task was purged while no daemon ran.
    unresolved: usize,
    degraded: usize,
    /// Failed installs shown `outOfSync` (the open status bug, docs/daemon.md "Chaos soak").
    failed_shown_out_of_sync: usize,
}

/// The manifests: `root/rev-N/servers/*.yaml`, reached through the symlink `root/current`
/// the daemon watches.
struct Manifests {
    root: PathBuf,
    rev: usize,
    specs: Vec<Spec>,
    /// A file currently holding an invalid edit.
    broken: Option<usize>,
}

impl Manifests {
    fn new(root: &Path, specs: Vec<Spec>) -> Manifests {
        let mut m = Manifests {
            root: root.to_path_buf(),
            rev: 0,
            specs,
            broken: None,
        };
        m.swap();
        m
    }
    fn current(&self) -> PathBuf {
        self.root.join("current")
    }
    /// A new revision directory with every file, then `current` pointed at it atomically
    /// (a new symlink renamed over the old one, as git-sync does); the revision before the
    /// previous one is removed.
    fn swap(&mut self) {
        self.rev += 1;
        let dir = self.root.join(format!("rev-{}", self.rev));
        std::fs::create_dir_all(dir.join("servers")).unwrap();
        for s in &self.specs {
            std::fs::write(dir.join(s.file()), s.yaml()).unwrap();
        }
        let tmp = self.root.join("current.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("rev-{}", self.rev), &tmp).unwrap();
        std::fs::rename(&tmp, self.current()).unwrap();
        self.broken = None;
        if self.rev > 2 {
            let _ = std::fs::remove_dir_all(self.root.join(format!("rev-{}", self.rev - 2)));
        }
    }
    /// Rewrites one server's file in place (through the symlink), by a rename as editors do.
    fn write(&self, i: usize, text: &str) {
        let path = self.current().join(self.specs[i].file());
        let tmp = path.with_extension("yaml.tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    fn restore(&mut self) {
        if let Some(i) = self.broken.take() {
            self.write(i, &self.specs[i].yaml());
        }
    }
}

/// One `ovhform run` process.
struct Daemon {
    child: Child,
    name: &'static str,
    log: PathBuf,
    addr: String,
    crash_at: Option<&'static str>,
}

/// What every daemon of one soak shares.
struct Bench {
    sim: SimHandle,
    dir: PathBuf,
    manifests: PathBuf,
    state: String,
    started: usize,
}

impl Bench {
    /// Starts `ovhform run` as replica `name`, reaching the simulator as `host`; stderr goes
    /// to a log file of its own.
    async fn spawn(
        &mut self,
        name: &'static str,
        host: &str,
        crash_at: Option<&'static str>,
    ) -> Daemon {
        self.started += 1;
        let log = self.dir.join(format!("{name}-{}.log", self.started));
        let home = self.dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let creds = self.sim.credentials();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
        cmd.args(["run", "--manifests"])
            .arg(&self.manifests)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--interval",
                "5s",
                "--track-for",
                "3s",
                "--debounce",
                "100ms",
                "--requests-per-minute",
                "6000",
                "--replica",
                name,
                "--state",
                &self.state,
            ])
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .env_clear()
            .env("HOME", &home)
            .env("NO_COLOR", "1")
            .env("OVHFORM_TIME_SCALE", SPEED.to_string())
            .env("OVHFORM_POLL_MS", "200")
            .env(
                "OVH_ENDPOINT",
                self.sim.base_url().replace("127.0.0.1", host),
            )
            .env("OVH_APPLICATION_KEY", &creds.application_key)
            .env("OVH_APPLICATION_SECRET", &creds.application_secret)
            .env("OVH_CONSUMER_KEY", &creds.consumer_key);
        if let Some(point) = crash_at {
            cmd.env("OVHFORM_CRASH_AT", point);
        }
        let child = cmd.spawn().expect("spawn ovhform run");
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(a) = text
                .split("http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
            {
                break a.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{name} printed no address:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Daemon {
            child,
            name,
            log,
            addr,
            crash_at,
        }
    }
}

impl Daemon {
    async fn status(&self) -> Option<StatusDoc> {
        self.try_status().await.ok()
    }
    /// `/status`, or why it could not be read (for the messages of a soak that fails).
    async fn try_status(&self) -> Result<StatusDoc, String> {
        let answer = crate::sim_support::http()
            .get(format!("http://{}/status", self.addr))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("{}: GET /status: {e}", self.name))?;
        let text = answer
            .text()
            .await
            .map_err(|e| format!("{}: /status body: {e}", self.name))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: /status: {e}: {text}", self.name))
    }
    /// The process's peak resident set so far (KiB), from `/proc/<pid>/status`.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }
    /// SIGKILL; whether it had reached its armed crash point.
    fn kill(mut self, tally: &mut Tally) {
        tally.peak_rss_kib = tally.peak_rss_kib.max(self.peak_rss_kib());
        let _ = self.child.kill();
        let _ = self.child.wait();
        tally.kills += 1;
        if let Some(point) = self.crash_at {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(&format!("ovhform: crash point {point} reached")) {
                tally.crash_point_kills += 1;
            }
        }
    }
}

/// A soak that fails leaves no daemon running behind it.
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn params(store: Store, servers: usize, chaos: Duration) -> Params {
    let seed: u64 = std::env::var("OVHFORM_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    Params {
        store,
        servers,
        chaos,
        tick: Duration::from_secs(2),
        kill_every: Duration::from_secs(12),
        // Enough for a pass over the fleet after the last restart, at the budget's pace.
        settle: Duration::from_secs(150.max(servers as u64 * 3 / 2)),
        // The two modes of one run differ by their seeds' last bit.
        seed: seed ^ (store == Store::Postgres) as u64,
    }
}

/// The simulator's fleet: `n` servers running [`FIRST_OS`], monitoring off.
fn fleet(n: usize) -> Vec<sim::Server> {
    let mut yaml = String::from("servers:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - {{name: {}, os: {FIRST_OS}}}\n", name(i)));
    }
    sim::fleet::parse(
        &yaml,
        Path::new("soak-fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("soak fleet")
}

fn name(i: usize) -> String {
    format!("ns{:07}.ip-10-9-{}.eu", 9_000_000 + i, i % 250)
}

fn chaos_faults() -> Faults {
    Faults {
        latency: None,
        error_5xx_rate: 0.10,
        rate_429: 0.05,
        reset_rate: 0.02,
        purge_tasks_after: Some(Duration::from_secs(2 * 3600)),
        fresh_task_404: 2,
        install_failure_rate: 0.10,
        fair_use_per_minute: None,
    }
}

/// A renamed crash point would leave the soak's restarts armed at nothing, silently.
#[test]
fn the_soaks_crash_points_are_the_executors() {
    for p in CRASH_POINTS {
        assert!(
            ovhform::apply::crash::POINTS.contains(p),
            "{p} is not a crash point of src/apply/crash.rs"
        );
    }
}

/// Runs one soak and checks every invariant; the summary is printed and returned.
async fn soak(p: Params) -> String {
    let started = Instant::now();
    eprintln!(
        "soak {:?}: seed {} (OVHFORM_SOAK_SEED={} replays it), {} servers, {:?} of chaos",
        p.store,
        p.seed,
        p.seed ^ (p.store == Store::Postgres) as u64,
        p.servers,
        p.chaos
    );
    let mut rng = StdRng::seed_from_u64(p.seed);
    let sim = crate::sim_support::start(SimConfig {
        fleet: fleet(p.servers),
        speed: f64::from(SPEED),
        seed: p.seed,
        ..SimConfig::for_tests()
    })
    .await;
    // Kept when the soak fails (its logs are the evidence), removed when it passes.
    let tmp = tempfile::Builder::new()
        .prefix("ovhform-soak-")
        .tempdir()
        .unwrap()
        .keep();
    eprintln!(
        "soak {:?}: daemon logs in {} (kept if it fails, or with OVHFORM_SOAK_KEEP=1)",
        p.store,
        tmp.display()
    );
    let specs: Vec<Spec> = (0..p.servers)
        .map(|i| Spec {
            name: name(i),
            auto: i % 2 == 0,
            os: FIRST_OS,
            monitoring: false,
        })
        .collect();
    let mut manifests = Manifests::new(&tmp.join("manifests"), specs);
    let db: Option<TestDb> = match p.store {
        Store::Dir => None,
        Store::Postgres => Some(fresh_db().await),
    };
    let mut bench = Bench {
        state: match &db {
            Some(db) => db.url.clone(),
            None => tmp.join("state").display().to_string(),
        },
        manifests: manifests.current(),
        dir: tmp.clone(),
        sim,
        started: 0,
    };
    // Replicas and the host names they reach the simulator by (its per-host call log).
    let replicas: &[(&'static str, &str)] = match p.store {
        Store::Dir => &[("daemon", "127.0.0.1")],
        Store::Postgres => &[("replica-a", "127.0.0.1"), ("replica-b", "localhost")],
    };
    let mut daemons = Vec::new();
    for (name, host) in replicas {
        daemons.push(Some(bench.spawn(name, host, None).await));
    }
    let mut tally = Tally::default();
    // The first pass adopts the fleet without faults: the chaos starts on a running daemon.
    wait_ready(&daemons, Duration::from_secs(120)).await;
    bench.sim.set_faults(chaos_faults());

    // Enough OS changes to reach every candidate (a quarter of the fleet) by the chaos's end.
    let ticks = p.chaos.as_secs_f64() / p.tick.as_secs_f64();
    let os_share = (1.5 * p.servers as f64 / 4.0 / ticks).clamp(0.05, 0.35);
    let chaos_end = Instant::now() + p.chaos;
    let mut next_kill = Instant::now() + jitter(&mut rng, p.kill_every);
    let mut spike_left = 0;
    while Instant::now() < chaos_end {
        tokio::time::sleep(p.tick).await;
        // Latency spikes: one tick or two of every response delayed.
        if spike_left > 0 {
            spike_left -= 1;
        } else if rng.random_bool(0.15) {
            spike_left = rng.random_range(1..=2);
            tally.latency_spikes += 1;
        }
        bench.sim.set_faults(Faults {
            latency: (spike_left > 0).then(|| Duration::from_millis(rng.random_range(200..1500))),
            ..chaos_faults()
        });
        edit(&mut rng, &mut manifests, &mut tally, os_share);
        if Instant::now() >= next_kill {
            next_kill = Instant::now() + jitter(&mut rng, p.kill_every);
            let mut leader_killed = false;
            let slot = match p.store {
                Store::Dir => 0,
                Store::Postgres => {
                    let lead = leader(&daemons).await;
                    let pick = daemons
                        .iter()
                        .position(|d| d.as_ref().is_some_and(|d| Some(d.name) == lead));
                    // Every other kill at least is the leader's (the first one too).
                    match pick {
                        Some(i) if tally.kills % 2 == 0 || rng.random_bool(0.5) => {
                            leader_killed = true;
                            i
                        }
                        _ => rng.random_range(0..daemons.len()),
                    }
                }
            };
            if let Some(d) = daemons[slot].take() {
                d.kill(&mut tally);
            }
            if leader_killed {
                // The other replica takes over before the killed one comes back (restarted
                // at once under the same name, it could win its own lease back).
                tally.leader_kills += 1;
                let killed = Instant::now();
                let other = &daemons[1 - slot];
                loop {
                    if let Some(o) = other
                        && o.status().await.is_some_and(|d| d.leader)
                    {
                        tally.failovers += 1;
                        tally.slowest_takeover = tally.slowest_takeover.max(killed.elapsed());
                        break;
                    }
                    assert!(
                        killed.elapsed() < Duration::from_secs(30),
                        "soak {:?} (seed {}): no takeover within 30 s of the leader's SIGKILL:\n{}",
                        p.store,
                        p.seed,
                        tail(&daemons)
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } else if p.store == Store::Postgres {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..3000))).await;
            }
            let crash_at = rng
                .random_bool(0.25)
                .then(|| CRASH_POINTS[rng.random_range(0..CRASH_POINTS.len())]);
            let (name, host) = replicas[slot];
            daemons[slot] = Some(bench.spawn(name, host, crash_at).await);
        }
    }

    // The chaos stops: faults off, the last invalid file repaired, every replica restarted
    // without a crash point armed (one may be stuck at it).
    bench.sim.set_faults(Faults::default());
    manifests.restore();
    for (slot, (name, host)) in replicas.iter().enumerate() {
        if let Some(d) = daemons[slot].take_if(|d| d.crash_at.is_some()) {
            d.kill(&mut tally);
            daemons[slot] = Some(bench.spawn(name, host, None).await);
        }
    }
    let chaos_took = started.elapsed();
    let settled = settle(&bench.sim, &manifests.specs, &daemons, p.settle).await;
    let logs = logs(&bench.dir);
    let end = match settled {
        Ok(doc) => doc,
        Err(problems) => panic!(
            "soak {:?} (seed {}) did not settle within {:?}:\n{}\n--- the last log:\n{}",
            p.store,
            p.seed,
            p.settle,
            problems.join("\n"),
            tail(&daemons)
        ),
    };
    let count = |label: &str, why: &str| {
        end.servers
            .values()
            .filter(|s| s.status.label() == label && format!("{:?}", s.status).contains(why))
            .count()
    };
    let converged = manifests
        .specs
        .iter()
        .filter(|s| s.auto && s.os != FIRST_OS)
        .filter(|s| {
            end.servers
                .get(&s.name)
                .is_some_and(|st| st.status == ServerStatus::Synced)
        })
        .count();
    let ends = Ends {
        converged,
        synced: count("Synced", ""),
        pending: count("PendingApproval", ""),
        unresolved: count("Degraded", "unresolved intent"),
        degraded: count("Degraded", ""),
        failed_shown_out_of_sync: count("OutOfSync", ""),
    };
    let settle_took = started.elapsed() - chaos_took;
    for d in daemons.iter_mut().filter_map(Option::take) {
        d.kill(&mut tally);
    }
    tally.kills -= replicas.len(); // the final stop is no chaos

    // Invariants from the simulator's install and call logs.
    let installs = bench.sim.installs();
    let mut per_server: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &installs {
        *per_server.entry(i.server.as_str()).or_default() += 1;
    }
    let mut wrong = Vec::new();
    for s in &manifests.specs {
        let n = per_server.get(s.name.as_str()).copied().unwrap_or(0);
        let want = usize::from(s.auto && s.os != FIRST_OS);
        // An intent the API could not settle either way is left to a person (the server
        // degraded, "unresolved intent"): none installed is then right; more than one never.
        let left_to_a_person = n == 0
            && want == 1
            && end.servers.get(&s.name).is_some_and(|st| {
                matches!(&st.status, ServerStatus::Degraded { reason } if reason.contains("unresolved intent"))
            });
        if n != want && !left_to_a_person {
            wrong.push(format!(
                "{} ({}, os {}): {n} installation(s), {want} approved",
                s.name,
                if s.auto { "auto" } else { "manual" },
                s.os
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "soak {:?} (seed {}): installations that were not approved exactly once:\n{}",
        p.store,
        p.seed,
        wrong.join("\n")
    );
    let posts = bench.sim.calls().get(REINSTALL).copied().unwrap_or(0);
    assert_eq!(
        posts as usize,
        installs.len(),
        "soak {:?} (seed {}): reinstall POSTs that reached the API vs installations",
        p.store,
        p.seed
    );
    // No record lost, the store readable, no intent left.
    let records = store_records(&bench).await;
    let missing: Vec<&str> = manifests
        .specs
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !records.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "soak {:?} (seed {}): servers without a record in the store: {missing:?}",
        p.store,
        p.seed
    );
    // The journal keeps only the intents no one can resolve but a person: those of the
    // servers `/status` calls degraded by an unresolved intent.
    let docs: Vec<serde_json::Value> = match &db {
        Some(db) => db
            .sql()
            .await
            .query("SELECT doc FROM ovhform_intents", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect(),
        None => std::fs::read_dir(tmp.join("state/journal"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let left: BTreeSet<String> = docs
        .iter()
        .map(|d| {
            d["server"]
                .as_str()
                .expect("an intent names its server")
                .to_string()
        })
        .collect();
    let unresolved: BTreeSet<String> = end
        .servers
        .iter()
        .filter(|(_, s)| format!("{:?}", s.status).contains("unresolved intent"))
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        (docs.len(), &left),
        (unresolved.len(), &unresolved),
        "soak {:?}: intents left in the journal vs servers degraded by an unresolved intent",
        p.store
    );
    // No panic in any log.
    let panics: Vec<&String> = logs
        .iter()
        .filter(|(_, text)| text.contains("panicked"))
        .map(|(name, _)| name)
        .collect();
    assert!(
        panics.is_empty(),
        "soak {:?} (seed {}): a daemon panicked, see {panics:?}:\n{}",
        p.store,
        p.seed,
        logs.iter()
            .filter(|(n, _)| panics.contains(&n))
            .map(|(_, t)| t.as_str())
            .collect::<String>()
    );

    assert_eq!(
        (
            ends.pending,
            ends.synced + ends.pending + ends.degraded + ends.failed_shown_out_of_sync
        ),
        (tally.unapproved_reinstalls, p.servers),
        "soak {:?}: every unapproved wipe pending, every other server synced or degraded: {ends:?}",
        p.store
    );
    let faults = bench.sim.injected();
    let failed = installs
        .iter()
        .filter(|i| i.fails_at_step.is_some())
        .count();
    // The chaos must have happened for the invariants to mean anything.
    assert!(tally.kills >= 2, "{tally:?}");
    assert!(
        tally.approved_reinstalls >= 1 && tally.unapproved_reinstalls >= 1,
        "{tally:?}"
    );
    assert!(
        faults.server_errors > 0 && faults.too_many_requests > 0,
        "{faults:?}"
    );
    if p.store == Store::Postgres {
        assert!(tally.failovers >= 1, "no failover observed: {tally:?}");
    }
    let summary = summary(
        &p,
        &tally,
        &faults,
        &ends,
        failed,
        installs.len(),
        posts,
        [chaos_took, settle_took, started.elapsed()],
        logs.len(),
    );
    eprintln!("{summary}");
    bench.sim.shutdown().await;
    drop(db);
    if std::env::var_os("OVHFORM_SOAK_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    summary
}

#[allow(clippy::too_many_arguments)]
fn summary(
    p: &Params,
    t: &Tally,
    f: &FaultCounts,
    e: &Ends,
    failed: usize,
    installs: usize,
    posts: u64,
    [chaos, settle, total]: [Duration; 3],
    processes: usize,
) -> String {
    format!(
        "soak {store:?} summary (seed {seed}, {servers} servers)\n\
         \x20 duration: {total:.0?} ({chaos:.0?} of chaos, settled in {settle:.0?})\n\
         \x20 approved reinstalls: {ar} ({conv} converged; the others degraded, left to a person, never re-sent: {failed} installs failed by injection, {un} intents unresolved after their task left the history)\n\
         \x20 reinstalls not approved (manual policy): {ur}, installations on them: 0\n\
         \x20 settings changes: {sc} (every server's converged but on those left to a person)\n\
         \x20 end state: {sy} synced, {pa} pending approval, {dg} degraded, {oo} failed installs shown outOfSync\n\
         \x20 installations: {installs}, reinstall POSTs: {posts}\n\
         \x20 invalid edits: {ie}, git-sync swaps: {sw}\n\
         \x20 faults: {e5} 5xx, {e4} 429, {rs} resets, {sp} latency spikes ({dl} responses delayed), {f404} fresh-task 404s, {pg} tasks purged, {fi} installs failed\n\
         \x20 SIGKILLs: {k} ({lk} of the leader, {ck} at an armed crash point), failovers: {fo} (slowest takeover {to:.1?}), daemon processes: {processes}\n\
         \x20 peak RSS of a daemon process: {rss:.1} MiB",
        store = p.store,
        seed = p.seed,
        servers = p.servers,
        ar = t.approved_reinstalls,
        conv = e.converged,
        un = e.unresolved,
        sy = e.synced,
        pa = e.pending,
        dg = e.degraded,
        oo = e.failed_shown_out_of_sync,
        ur = t.unapproved_reinstalls,
        sc = t.settings_changes,
        ie = t.invalid_edits,
        sw = t.swaps,
        e5 = f.server_errors,
        e4 = f.too_many_requests,
        rs = f.resets,
        sp = t.latency_spikes,
        dl = f.delayed,
        f404 = f.fresh_task_404,
        pg = f.purged_tasks,
        fi = f.install_failures,
        k = t.kills,
        lk = t.leader_kills,
        ck = t.crash_point_kills,
        fo = t.failovers,
        to = t.slowest_takeover,
        rss = t.peak_rss_kib as f64 / 1024.0,
    )
}

/// `mean` ± 50 %.
fn jitter(rng: &mut StdRng, mean: Duration) -> Duration {
    mean.mul_f64(rng.random_range(0.5..1.5))
}

/// One manifest edit (and the repair of the last invalid one).
/// `os_share`: the chance that an edit is an OS change (half of them of an `auto` server),
/// so that a long soak spreads its reinstalls over its whole length.
fn edit(rng: &mut StdRng, m: &mut Manifests, tally: &mut Tally, os_share: f64) {
    m.restore();
    let n = m.specs.len();
    // The first two edits: one OS change of each policy, so that both invariants always
    // have something to bite on.
    let roll = if tally.approved_reinstalls == 0 {
        40
    } else if tally.unapproved_reinstalls == 0 {
        69
    } else if rng.random_bool(os_share) {
        rng.random_range(40..70)
    } else {
        [rng.random_range(0..40), rng.random_range(75..100)][usize::from(rng.random_bool(0.4))]
    };
    // Only every other server may change its OS, so that the end checks also see `auto`
    // servers that must not have been reinstalled.
    let unchanged = |m: &Manifests, auto: bool| -> Vec<usize> {
        (0..n)
            .filter(|&i| i % 4 < 2 && m.specs[i].auto == auto && m.specs[i].os == FIRST_OS)
            .collect()
    };
    if roll < 40 {
        let i = rng.random_range(0..n);
        m.specs[i].monitoring = !m.specs[i].monitoring;
        m.write(i, &m.specs[i].yaml());
        tally.settings_changes += 1;
    } else if roll < 70 {
        let auto = roll < 55;
        let candidates = unchanged(m, auto);
        if candidates.is_empty() {
            return;
        }
        let i = candidates[rng.random_range(0..candidates.len())];
        m.specs[i].os = NEXT_OS;
        m.write(i, &m.specs[i].yaml());
        if auto {
            tally.approved_reinstalls += 1;
        } else {
            tally.unapproved_reinstalls += 1;
        }
    } else if roll < 88 {
        let i = rng.random_range(0..n);
        let text = format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: {}\nspec:\n  install: [os: {NEXT_OS}\n  policy: {{reinstall: auto\n",
            m.specs[i].name
        );
        m.write(i, &text);
        m.broken = Some(i);
        tally.invalid_edits += 1;
    } else {
        // A swap that also carries a settings change, as a git commit would.
        let i = rng.random_range(0..n);
        m.specs[i].monitoring = !m.specs[i].monitoring;
        tally.settings_changes += 1;
        m.swap();
        tally.swaps += 1;
    }
}

/// The replica that says it leads, if one answers.
async fn leader(daemons: &[Option<Daemon>]) -> Option<&'static str> {
    for d in daemons.iter().flatten() {
        if let Some(doc) = d.status().await
            && doc.leader
        {
            return Some(d.name);
        }
    }
    None
}

async fn wait_ready(daemons: &[Option<Daemon>], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut ready = false;
        for d in daemons.iter().flatten() {
            if let Some(doc) = d.status().await
                && doc.leader
                && doc.ready
                && doc.last_pass.as_ref().is_some_and(|p| p.error.is_none())
            {
                ready = true;
            }
        }
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no daemon finished a first pass within {within:?}:\n{}",
            tail(daemons)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the simulator and the leader's `/status` show the end state every spec asks
/// for; `Err` lists what is still wrong at the deadline.
async fn settle(
    sim: &SimHandle,
    specs: &[Spec],
    daemons: &[Option<Daemon>],
    within: Duration,
) -> Result<StatusDoc, Vec<String>> {
    let deadline = Instant::now() + within;
    loop {
        let failed: BTreeSet<String> = sim
            .installs()
            .into_iter()
            .filter(|i| i.fails_at_step.is_some())
            .map(|i| i.server)
            .collect();
        let mut doc = None;
        let mut unread = Vec::new();
        for d in daemons.iter().flatten() {
            match d.try_status().await {
                Ok(s) if s.leader => doc = Some(s),
                Ok(_) => {}
                Err(e) => unread.push(e),
            }
        }
        let mut problems = Vec::new();
        match &doc {
            None => problems.push(format!("no replica leads ({unread:?})")),
            Some(doc) if doc.manifest_errors.is_some() => {
                problems.push(format!("manifest errors: {:?}", doc.manifest_errors));
            }
            _ => {}
        }
        for s in specs {
            let Some(live) = sim.server(&s.name) else {
                problems.push(format!("{} is gone", s.name));
                continue;
            };
            let status = doc
                .as_ref()
                .and_then(|d| d.servers.get(&s.name))
                .map(|st| st.status.clone());
            let changed = s.os != FIRST_OS;
            let degraded = |why: &str| matches!(&status, Some(ServerStatus::Degraded { reason }) if reason.contains(why));
            let want = if failed.contains(&s.name) {
                // Its one install failed: degraded, and left alone. OPEN (docs/daemon.md "Chaos
                // soak"): a few passes later the daemon plans the reinstall again and shows
                // `outOfSync` instead of `degraded`; it sends nothing (the installation count
                // below holds it to one).
                degraded("") || matches!(&status, Some(ServerStatus::OutOfSync { .. }))
            } else if changed && s.auto && degraded("unresolved intent") {
                // Its reinstall task was purged while no daemon ran: only a person can say
                // whether it happened (docs/apply.md); nothing is sent for it meanwhile.
                true
            } else if changed && !s.auto {
                // The wipe waits for a person, and the settings planned on top of it with it
                // (apply runs nothing after an unapproved reinstall).
                live.os == FIRST_OS && matches!(status, Some(ServerStatus::PendingApproval { .. }))
            } else {
                live.os == s.os
                    && live.monitoring == s.monitoring
                    && matches!(status, Some(ServerStatus::Synced))
            };
            if !want {
                problems.push(format!(
                    "{}: wants os {} monitoring {} ({}), runs {} monitoring {}, status {:?}",
                    s.name,
                    s.os,
                    s.monitoring,
                    if s.auto { "auto" } else { "manual" },
                    live.os,
                    live.monitoring,
                    status
                ));
            }
        }
        if problems.is_empty()
            && let Some(doc) = doc
        {
            return Ok(doc);
        }
        if Instant::now() >= deadline {
            return Err(problems);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The names of the servers with a record, from `ovhform state show` (the store read as a
/// person would).
async fn store_records(bench: &Bench) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["state", "show", "--state", &bench.state])
        .current_dir(&bench.dir)
        .env_clear()
        .env("HOME", bench.dir.join("home"))
        .env("NO_COLOR", "1")
        .output()
        .expect("ovhform state show");
    assert!(
        out.status.success(),
        "the store is not readable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "state show is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    records_in(&doc)
}

/// Server names of `state show`'s JSON: a list of install records, each naming its server.
fn records_in(doc: &serde_json::Value) -> BTreeSet<String> {
    let records = doc
        .as_array()
        .unwrap_or_else(|| panic!("state show: not a list: {doc}"));
    records
        .iter()
        .map(|r| {
            r["server"]
                .as_str()
                .unwrap_or_else(|| panic!("a record without a server: {r}"))
                .to_string()
        })
        .collect()
}

/// Every daemon log of the soak: file name and text.
fn logs(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The last 60 lines of each running daemon's log.
fn tail(daemons: &[Option<Daemon>]) -> String {
    daemons
        .iter()
        .flatten()
        .map(|d| {
            let text = std::fs::read_to_string(&d.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "=== {}\n{}",
                d.log.display(),
                lines[lines.len().saturating_sub(60)..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn env_usize(key: &str) -> Option<usize> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

/// The stores a run covers: both, or the one `OVHFORM_SOAK_PG` names.
fn stores() -> Vec<Store> {
    match std::env::var("OVHFORM_SOAK_PG").ok().as_deref() {
        Some("1") => vec![Store::Postgres],
        Some("0") => vec![Store::Dir],
        _ => vec![Store::Dir, Store::Postgres],
    }
}

async fn run_all(servers: usize, minutes: f64, pg_share: f64) {
    let chaos = Duration::from_secs_f64(minutes * 60.0);
    let runs = stores().into_iter().map(|store| {
        let chaos = if store == Store::Postgres {
            chaos.mul_f64(pg_share)
        } else {
            chaos
        };
        soak(params(store, servers, chaos))
    });
    futures_util::future::join_all(runs).await;
}

/// The short form CI runs: both stores at once, 40 servers for a minute of chaos on the
/// state directory, 20 servers and 45 s on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_chaos_soak_keeps_every_invariant() {
    let servers = env_usize("OVHFORM_SOAK_SERVERS");
    let minutes = std::env::var("OVHFORM_SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse::<f64>().ok());
    let runs = stores().into_iter().map(|store| {
        let (n, chaos) = match store {
            Store::Dir => (40, Duration::from_secs(60)),
            Store::Postgres => (20, Duration::from_secs(45)),
        };
        let chaos = minutes.map_or(chaos, |m| Duration::from_secs_f64(m * 60.0));
        soak(params(store, servers.unwrap_or(n), chaos))
    });
    futures_util::future::join_all(runs).await;
}

/// The long form (docs/benchmarks.md "Chaos soak"): `OVHFORM_SOAK_MINUTES` (30) of chaos on
/// `OVHFORM_SOAK_SERVERS` (200) servers, both stores at once unless `OVHFORM_SOAK_PG` picks
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "30 minutes: run by hand, see docs/benchmarks.md"]
async fn long_chaos_soak() {
    let servers = env_usize("OVHFORM_SOAK_SERVERS").unwrap_or(200);
    let minutes = std::env::var("OVHFORM_SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(30.0);
    run_all(servers, minutes, 1.0).await;
}
