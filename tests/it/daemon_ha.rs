//! High availability: two `ovhform run` replicas (the real binary) on one PostgreSQL database
//! (`pg_support.rs`) and the simulator. Exactly one acts; SIGKILL the leader in the middle of
//! a reinstall and the standby takes over within 15 s, re-attaches to the task through the
//! journal, and the simulator sees exactly one reinstall POST; a leader frozen (SIGSTOP) just
//! before a write and resumed after the takeover writes nothing.
//!
//! The replicas reach the simulator under different host names (`127.0.0.1` and `localhost`),
//! so the simulator's per-host call log says which replica sent what.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ovhform::daemon::{ServerStatus, StatusDoc};
use ovhform::sim::SimHandle;

use crate::cli_support::{REINSTALL, RESCUE, WEB2, copy_dir, demo_sim, reinstalls, repo};
use crate::pg_support::{TestDb, fresh_db};

struct Replica {
    child: Child,
    pid: String,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

/// Manifests where the web tier reinstalls on its own, with no window (web-02 gets wiped as
/// soon as a leader plans it).
fn auto_manifests(dir: &Path) -> PathBuf {
    let m = dir.join("manifests");
    copy_dir(&repo().join("manifests"), &m);
    let web = m.join("groups/web.yaml");
    let text = std::fs::read_to_string(&web).unwrap();
    let text = text
        .replace("reinstall: manual", "reinstall: auto")
        .replace("      maintenanceWindow: prod-nights\n", "");
    std::fs::write(&web, text).unwrap();
    m
}

fn spawn(
    sim: &SimHandle,
    host: &str,
    db: &TestDb,
    manifests: &Path,
    name: &str,
    env: &[(&str, &str)],
) -> Replica {
    let home = tempfile::tempdir().unwrap().keep();
    let creds = sim.credentials();
    let endpoint = sim.base_url().replace("127.0.0.1", host);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
    cmd.args(["run", "--manifests"])
        .arg(manifests)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1h",
            "--track-for",
            "3s",
            "--replica",
            name,
            "--state",
            &db.url,
        ])
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_clear()
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .env("OVHFORM_TIME_SCALE", "50")
        .env("OVHFORM_POLL_MS", "200")
        .env("OVH_ENDPOINT", endpoint)
        .env("OVH_APPLICATION_KEY", &creds.application_key)
        .env("OVH_APPLICATION_SECRET", &creds.application_secret)
        .env("OVH_CONSUMER_KEY", &creds.consumer_key);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("ovhform run");
    let pid = child.id().to_string();
    let lines = crate::daemon_support::collect_lines(child.stderr.take().unwrap());
    let addr = crate::daemon_support::announced_address(&lines, name);
    Replica {
        child,
        pid,
        addr,
        lines,
    }
}

impl Replica {
    async fn status(&self) -> Option<StatusDoc> {
        crate::sim_support::http()
            .get(format!("http://{}/status", self.addr))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }
    /// Waits (at most `within`) until `f` holds for this replica's status.
    async fn until(&self, within: Duration, what: &str, f: impl Fn(&StatusDoc) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(doc) = self.status().await
                && f(&doc)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what} not within {within:?}: {:#?}\n{}",
                self.status().await,
                self.lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {}", self.pid);
    }
    /// Whether the process is stopped (SIGSTOP): state `T` in /proc.
    fn stopped(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next().map(str::to_string))
            })
            .is_some_and(|state| state == "T")
    }
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn writes(calls: &std::collections::BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(route, _)| !route.starts_with("GET "))
        .map(|(_, n)| n)
        .sum()
}

async fn intents_in_db(db: &TestDb) -> i64 {
    db.sql()
        .await
        .query_one("SELECT count(*) FROM ovhform_intents", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_killed_leader_mid_reinstall_with_one_reinstall() {
    let db = fresh_db().await;
    // 50×: web-02's 15-minute installation lasts about 18 s.
    let sim = demo_sim(50.0).await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = auto_manifests(dir.path());
    let a = spawn(&sim, "127.0.0.1", &db, &manifests, "replica-a", &[]);
    a.until(Duration::from_secs(30), "a leads", |d| d.leader && d.ready)
        .await;
    let b = spawn(&sim, "localhost", &db, &manifests, "replica-b", &[]);
    b.until(Duration::from_secs(30), "b stands by", |d| {
        !d.leader && d.last_pass.is_some()
    })
    .await;
    // The leader POSTs web-02's reinstall; kill it while the installation runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while reinstalls(&sim) == 0 {
        assert!(Instant::now() < deadline, "no reinstall POST");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sim.calls_from("127.0.0.1").get(REINSTALL),
        Some(&1),
        "the leader posted it"
    );
    let killed = Instant::now();
    a.signal("-KILL");
    b.until(Duration::from_secs(15), "b takes over", |d| d.leader)
        .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(15), "takeover after {took:?}");
    // b re-attaches through the journal, records the install when it ends.
    b.until(Duration::from_secs(90), "web-02 synced", |d| {
        d.servers
            .get(WEB2)
            .is_some_and(|s| s.status == ServerStatus::Synced)
    })
    .await;
    assert_eq!(reinstalls(&sim), 1, "{:?}", sim.calls());
    assert_eq!(sim.calls_from("localhost").get(REINSTALL), None);
    assert_eq!(intents_in_db(&db).await, 0);
    eprintln!("takeover after {took:?}");
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_before_a_write_and_resumed_after_the_takeover_writes_nothing() {
    let db = fresh_db().await;
    let sim = demo_sim(1000.0).await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    copy_dir(&repo().join("manifests"), &manifests);
    // a freezes itself just before its first settings PUT (web-03's monitoring, in the first
    // pass); b then takes over and makes every write.
    let a = spawn(
        &sim,
        "127.0.0.1",
        &db,
        &manifests,
        "replica-a",
        &[("OVHFORM_PAUSE_AT", "settings:before-put")],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.stopped() {
        assert!(
            Instant::now() < deadline,
            "a never paused: {}",
            a.lines.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a_writes = writes(&sim.calls_from("127.0.0.1"));
    let b = spawn(&sim, "localhost", &db, &manifests, "replica-b", &[]);
    let paused = Instant::now();
    b.until(Duration::from_secs(20), "b takes over", |d| {
        d.leader && d.ready
    })
    .await;
    assert!(paused.elapsed() <= Duration::from_secs(15));
    b.until(Duration::from_secs(30), "b converged web-03", |d| {
        d.servers
            .get(crate::cli_support::WEB3)
            .is_some_and(|s| s.status == ServerStatus::Synced)
    })
    .await;
    assert!(sim.server(crate::cli_support::WEB3).unwrap().monitoring);
    // a resumes exactly before its PUT: its lease ran out on the monotonic clock.
    a.signal("-CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A change only the leader may make: a edits nothing, b makes it.
    let rescue = manifests.join("servers/rescue.yaml");
    let text = std::fs::read_to_string(&rescue).unwrap();
    std::fs::write(
        &rescue,
        text.replacen("noIntervention: true", "noIntervention: false", 1),
    )
    .unwrap();
    b.until(Duration::from_secs(15), "b applied the edit", |_| {
        !sim.server(RESCUE).unwrap().no_intervention
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = a.lines.lock().unwrap().join("\n");
    assert_eq!(
        writes(&sim.calls_from("127.0.0.1")),
        a_writes,
        "the resumed ex-leader wrote: {:?}\n{log}",
        sim.calls_from("127.0.0.1"),
    );
    let a_doc = a.status().await.expect("a still serves");
    assert!(!a_doc.leader, "{a_doc:#?}");
    assert!(
        a.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("no longer the leader") || l.contains("standby")),
        "{}",
        a.lines.lock().unwrap().join("\n")
    );
    a.stop();
    b.stop();
}
