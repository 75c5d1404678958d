//! `ovhform run`'s loop end to end against the simulator (library API; the binary has its
//! own test at the end): triggers (file watch, bursts, SIGHUP, interval, a window opening),
//! the last valid manifests kept across an invalid edit, drift per policy, wipes only inside
//! their window, the HTTP surface (`/metrics` through the official Prometheus parser,
//! `/status` against its documented schema, the bearer token) and graceful shutdown.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ovhform::apply::TrackingConfig;
use ovhform::daemon::{
    Daemon, DaemonConfig, Pacing, PassStats, Reason, ServerStatus, SharedSeat, StatusDoc,
    TriggerSender,
};
use ovhform::sim::{self, SimHandle};
use ovhform::state::{MemoryFacts, MemoryStore, RecordStore};
use tokio::sync::watch;

use crate::cli_support::{NETBOOT, RESCUE, WEB1, WEB2, WEB3, copy_dir, demo_sim, reinstalls, repo};

const PUT_SERVER: &str = "PUT /dedicated/server/{serviceName}";

/// A wall clock the test sets: `base` plus the real time elapsed since it was set.
#[derive(Clone)]
pub(crate) struct TestClock(Arc<Mutex<(Timestamp, Instant)>>);

impl TestClock {
    pub(crate) fn at(t: Timestamp) -> TestClock {
        TestClock(Arc::new(Mutex::new((t, Instant::now()))))
    }
    pub(crate) fn now(&self) -> Timestamp {
        let (base, since) = *self.0.lock().unwrap();
        base + since.elapsed()
    }
}

pub(crate) struct Running {
    pub(crate) sim: SimHandle,
    _dir: tempfile::TempDir,
    pub(crate) manifests: PathBuf,
    pub(crate) triggers: TriggerSender,
    passes: watch::Receiver<PassStats>,
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ovhform::daemon::DaemonError>>,
    store: Arc<MemoryStore>,
}

fn fast_tracking() -> TrackingConfig {
    TrackingConfig {
        timeout: Duration::from_secs(10),
        ..crate::apply_e2e::fast_tracking()
    }
}

/// The example manifests (edited by `edit`) in a temp dir, the demo fleet at 1000× speed,
/// and a daemon over both; `tweak` adjusts its configuration.
pub(crate) async fn start(
    edit: impl FnOnce(&Path),
    tweak: impl FnOnce(&mut DaemonConfig),
) -> Running {
    start_with_budget(edit, tweak, 0).await
}

/// As [`start`], the client limited to `requests_per_minute` (0: unlimited).
async fn start_with_budget(
    edit: impl FnOnce(&Path),
    tweak: impl FnOnce(&mut DaemonConfig),
    requests_per_minute: u32,
) -> Running {
    start_at_speed(edit, tweak, requests_per_minute, 1000.0).await
}

/// As [`start_with_budget`], the simulator at `speed` × real time.
async fn start_at_speed(
    edit: impl FnOnce(&Path),
    tweak: impl FnOnce(&mut DaemonConfig),
    requests_per_minute: u32,
    speed: f64,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    copy_dir(&repo().join("manifests"), &manifests);
    edit(&manifests);
    let sim = demo_sim(speed).await;
    let client = ovhform::ovh::Client::new(ovhform::ovh::ClientConfig {
        requests_per_minute,
        ..sim::client_config(&sim).unwrap()
    })
    .unwrap();
    let store = Arc::new(MemoryStore::default());
    let mut cfg = DaemonConfig {
        pacing: Pacing {
            interval: Duration::from_secs(3600),
            debounce: Duration::from_millis(100),
            debounce_max: Duration::from_secs(1),
        },
        tracking: fast_tracking(),
        task_requeue: Duration::from_millis(500),
        ..DaemonConfig::new(&manifests, ovhform::model::DEFAULT_FLEET)
    };
    tweak(&mut cfg);
    let seat = Arc::new(SharedSeat(store.clone() as Arc<dyn RecordStore>));
    let daemon = Daemon::new(cfg, client, seat, Arc::new(MemoryFacts::default()));
    let triggers = daemon.triggers();
    let passes = daemon.passes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(listener, async move {
        let _ = stopped.await;
    }));
    Running {
        sim,
        _dir: dir,
        manifests,
        triggers,
        passes,
        addr,
        stop: Some(stop),
        task,
        store,
    }
}

impl Running {
    /// Waits for pass `n` to finish (at most `within`).
    pub(crate) async fn pass(&mut self, n: u64, within: Duration) -> PassStats {
        tokio::time::timeout(within, self.passes.wait_for(|p| p.number >= n))
            .await
            .unwrap_or_else(|_| panic!("pass {n} did not finish within {within:?}"))
            .expect("daemon alive")
            .clone()
    }
    pub(crate) fn last(&self) -> PassStats {
        self.passes.borrow().clone()
    }
    /// No pass beyond `n` during `quiet`.
    async fn no_pass_after(&mut self, n: u64, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        assert_eq!(
            self.last().number,
            n,
            "an extra pass ran: {:?}",
            self.last()
        );
    }
    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = crate::sim_support::http().get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
    pub(crate) async fn status(&self) -> StatusDoc {
        self.get("/status", None).await.json().await.unwrap()
    }
    pub(crate) async fn stop(mut self) -> Duration {
        let at = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the daemon stops within 10 s")
            .unwrap()
            .unwrap();
        at.elapsed()
    }
}

pub(crate) fn state_of(doc: &StatusDoc, server: &str) -> ServerStatus {
    doc.servers
        .get(server)
        .unwrap_or_else(|| panic!("{server} not in /status: {doc:#?}"))
        .status
        .clone()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

pub(crate) fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    write(path, &text.replacen(from, to, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_pass_applies_what_needs_no_approval_and_leaves_the_wipe_pending() {
    // Inside the web tier's window (Monday 02:30 in Paris): only the approval is missing.
    let clock = TestClock::at("2026-11-30T01:30:00Z".parse().unwrap());
    let mut d = start(|_| {}, move |cfg| cfg.clock = Arc::new(move || clock.now())).await;
    let first = d.pass(1, Duration::from_secs(30)).await;
    assert_eq!(first.reason, Some(Reason::Start));
    let doc = d.status().await;
    assert!(doc.ready && doc.leader, "{doc:#?}");
    // web-02 needs a wipe under policy manual: a person approves it, never the daemon.
    assert!(
        matches!(state_of(&doc, WEB2), ServerStatus::PendingApproval { .. }),
        "{:?}",
        state_of(&doc, WEB2)
    );
    assert_eq!(reinstalls(&d.sim), 0);
    // web-03's monitoring was put back; the rescue box was already right.
    assert!(d.sim.server(WEB3).unwrap().monitoring);
    assert_eq!(state_of(&doc, WEB3), ServerStatus::Synced);
    assert_eq!(state_of(&doc, RESCUE), ServerStatus::Synced);
    assert!(doc.servers.contains_key(NETBOOT) && doc.servers.contains_key(WEB1));
    assert_eq!(d.get("/readyz", None).await.status(), 200);
    assert!(d.stop().await < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_edit_leads_to_exactly_one_pass_and_its_calls_within_a_second() {
    let mut d = start(|_| {}, |_| {}).await;
    let settled = d.pass(1, Duration::from_secs(30)).await.number;
    // Passes the first one requeued (tasks it left running) are allowed to finish first.
    d.no_pass_after_settling(settled).await;
    let before = d.last().number;
    let rescue = d.manifests.join("servers/rescue.yaml");
    let edited = Instant::now();
    replace_in(&rescue, "noIntervention: true", "noIntervention: false");
    let pass = d.pass(before + 1, Duration::from_secs(5)).await;
    let took = edited.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the pass ended {took:?} after the edit"
    );
    assert!(
        matches!(pass.reason, Some(Reason::Manifests { .. })),
        "{pass:?}"
    );
    assert_eq!(pass.routes.get(PUT_SERVER), Some(&1), "{:?}", pass.routes);
    assert!(!d.sim.server(RESCUE).unwrap().no_intervention);
    d.no_pass_after(pass.number, Duration::from_millis(700))
        .await;
    d.stop().await;
}

impl Running {
    /// Lets the passes the first one scheduled (task requeues) run out.
    pub(crate) async fn no_pass_after_settling(&mut self, mut n: u64) {
        loop {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let now = self.last().number;
            if now == n {
                return;
            }
            n = now;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_file_events_is_one_pass() {
    let mut d = start(|_| {}, |_| {}).await;
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    d.no_pass_after_settling(first).await;
    let before = d.last().number;
    // 50 writes, 5 ms apart (a `git checkout` touching many files).
    for i in 0..50 {
        write(
            &d.manifests.join(format!("notes-{i}.txt")),
            "not a manifest\n",
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pass = d.pass(before + 1, Duration::from_secs(5)).await;
    match pass.reason {
        Some(Reason::Manifests { events }) => assert!(events >= 50, "{events} events"),
        other => panic!("{other:?}"),
    }
    d.no_pass_after(pass.number, Duration::from_millis(800))
        .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_last_good_state_of_its_servers_only() {
    let mut d = start(|_| {}, |_| {}).await;
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    d.no_pass_after_settling(first).await;
    let before = d.last().number;
    // The rescue manifest breaks; the netboot one changes validly in the same burst.
    write(
        &d.manifests.join("servers/rescue.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns3000030.ip-51-68-3.eu}\nspec:\n  boot: {mode: rescue, rescue: [broken\n",
    );
    let netboot = d.manifests.join("servers/netboot.yaml");
    let text = std::fs::read_to_string(&netboot).unwrap();
    let flipped = if text.contains("monitoring: false") {
        text.replacen("monitoring: false", "monitoring: true", 1)
    } else {
        text.replacen("monitoring: true", "monitoring: false", 1)
    };
    assert_ne!(text, flipped, "netboot.yaml sets monitoring");
    let want = flipped.contains("monitoring: true");
    write(&netboot, &flipped);
    let pass = d.pass(before + 1, Duration::from_secs(5)).await;
    assert!(matches!(pass.reason, Some(Reason::Manifests { .. })));
    let doc = d.status().await;
    let errors = doc
        .manifest_errors
        .clone()
        .expect("manifest errors reported");
    assert!(
        errors
            .files
            .iter()
            .any(|f| f.ends_with("servers/rescue.yaml")),
        "{errors:?}"
    );
    assert_eq!(errors.servers_kept, vec![RESCUE.to_string()]);
    // The rescue server is still managed from its last valid manifest (not forgotten), and
    // the valid change went through.
    assert_eq!(state_of(&doc, RESCUE), ServerStatus::Synced);
    assert!(d.store.load().await.unwrap().applied.contains_key(RESCUE));
    assert_eq!(d.sim.server(NETBOOT).unwrap().monitoring, want);
    let metrics = d.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("ovhform_manifest_errors 1"), "{metrics}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_the_interval_run_passes() {
    let mut d = start(|_| {}, |cfg| cfg.pacing.interval = Duration::from_secs(2)).await;
    d.pass(1, Duration::from_secs(30)).await;
    d.triggers.send(Reason::Hangup);
    let mut saw_hangup = false;
    let mut saw_interval = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = d.last().number;
    while !(saw_hangup && saw_interval) && Instant::now() < deadline {
        let p = d.pass(n + 1, Duration::from_secs(10)).await;
        n = p.number;
        saw_hangup |= p.reason == Some(Reason::Hangup);
        saw_interval |= p.reason == Some(Reason::Interval);
    }
    assert!(
        saw_hangup && saw_interval,
        "hangup {saw_hangup}, interval {saw_interval}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected_or_only_reported_as_policy_says() {
    // The web tier corrects settings drift (groups/web.yaml); the rescue box only warns.
    let mut d = start(|_| {}, |_| {}).await;
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    d.no_pass_after_settling(first).await;
    assert!(d.sim.update_server(WEB3, |s| s.monitoring = false));
    assert!(d.sim.update_server(RESCUE, |s| s.monitoring = true));
    let before = d.last().number;
    d.triggers.send(Reason::Hangup);
    let pass = d.pass(before + 1, Duration::from_secs(10)).await;
    assert_eq!(pass.routes.get(PUT_SERVER), Some(&1), "{:?}", pass.routes);
    assert!(d.sim.server(WEB3).unwrap().monitoring, "web-03 corrected");
    assert!(
        d.sim.server(RESCUE).unwrap().monitoring,
        "the rescue box is not touched"
    );
    let doc = d.status().await;
    assert_eq!(state_of(&doc, WEB3), ServerStatus::Synced);
    match state_of(&doc, RESCUE) {
        ServerStatus::Drifted { fields } => {
            assert!(
                fields.iter().any(|f| f.contains("monitoring")),
                "{fields:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_opening_runs_the_auto_reinstall_without_waiting_for_the_interval() {
    // Monday 2026-11-30, 01:59:57 in Paris: the prod-nights window opens in 3 s.
    let opens: Timestamp = "2026-11-30T01:00:00Z".parse().unwrap();
    let clock = TestClock::at(opens - Duration::from_secs(3));
    let c = clock.clone();
    let mut d = start(
        |m| {
            replace_in(
                &m.join("groups/web.yaml"),
                "reinstall: manual",
                "reinstall: auto",
            )
        },
        move |cfg| cfg.clock = Arc::new(move || c.now()),
    )
    .await;
    d.pass(1, Duration::from_secs(30)).await;
    let doc = d.status().await;
    match state_of(&doc, WEB2) {
        ServerStatus::Blocked { reasons } => {
            assert!(reasons.iter().any(|r| r.contains("window")), "{reasons:?}")
        }
        other => panic!("before the window: {other:?}"),
    }
    assert_eq!(reinstalls(&d.sim), 0, "no wipe outside the window");
    // The requeue, not the one-hour interval, runs the pass that reinstalls.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = d.last().number;
    let mut reasons = Vec::new();
    while reinstalls(&d.sim) == 0 && Instant::now() < deadline {
        let p = d.pass(n + 1, Duration::from_secs(10)).await;
        n = p.number;
        reasons.push(p.reason);
    }
    assert_eq!(reinstalls(&d.sim), 1, "{reasons:?}");
    assert!(clock.now() >= opens);
    assert!(
        reasons.iter().any(|r| matches!(
            r,
            Some(Reason::Requeue {
                why: ovhform::daemon::Requeue::WindowOpens,
                ..
            })
        )),
        "{reasons:?}"
    );
    // web-01 and web-03 need no reinstall: still exactly one wipe after the fleet settles.
    d.no_pass_after_settling(n).await;
    assert_eq!(reinstalls(&d.sim), 1);
    assert!(d.store.intents().await.unwrap().is_empty());
    d.stop().await;
}

/// `/status` follows a reinstall step by step while the pass tracks it (`Reinstalling`
/// with the step running and the step count from the install status), not only once the
/// pass ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_reinstalls_steps_while_the_pass_follows_it() {
    // Inside the web tier's window (Monday 02:30 in Paris), web-02 on `reinstall: auto`.
    let clock = TestClock::at("2026-11-30T01:30:00Z".parse().unwrap());
    let c = clock.clone();
    let d = start_at_speed(
        |m| {
            replace_in(
                &m.join("groups/web.yaml"),
                "reinstall: manual",
                "reinstall: auto",
            )
        },
        move |cfg| {
            cfg.clock = Arc::new(move || c.now());
            cfg.tracking.timeout = Duration::from_secs(60);
        },
        0,
        100.0,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        if let Some(entry) = d.status().await.servers.get(WEB2)
            && let ServerStatus::Reinstalling {
                step: Some(step),
                steps: Some(steps),
                task: Some(_),
            } = entry.status
        {
            assert!(step >= 1 && step <= steps, "{step}/{steps}");
            seen.insert((step, steps));
        }
        if d.last().number >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        d.last().number >= 1,
        "the first pass (tracking the reinstall) ended"
    );
    assert!(
        seen.len() >= 2,
        "steps seen in /status during the pass: {seen:?}"
    );
    assert_eq!(reinstalls(&d.sim), 1);
    d.stop().await;
}

/// Issue 10, "Rescue is a lease": the rescue box on a 3-second lease is returned to disk
/// (and rebooted, `reboot: onChange`) by a pass the lease's end triggers, not the one-hour
/// interval; `/status` shows the lease's end while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescue_lease_returns_the_server_to_disk_when_it_ends() {
    let mut d = start(
        |m| {
            replace_in(
                &m.join("servers/rescue.yaml"),
                "reboot: onChange",
                "reboot: onChange\n    for: 3s",
            )
        },
        |_| {},
    )
    .await;
    d.pass(1, Duration::from_secs(30)).await;
    let doc = d.status().await;
    let entry = &doc.servers[RESCUE];
    assert_eq!(entry.status, ServerStatus::Synced, "{entry:#?}");
    let ends = entry.boot_lease_ends.expect("the lease's end in /status");
    let reboots = |sim: &SimHandle| {
        sim.calls()
            .get("POST /dedicated/server/{serviceName}/reboot")
            .copied()
            .unwrap_or(0)
    };
    let reboots_before = reboots(&d.sim);
    assert_ne!(
        d.sim.server(RESCUE).unwrap().boot_id,
        Some(1),
        "still in rescue"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = d.last().number;
    let mut reasons = Vec::new();
    while d.sim.server(RESCUE).unwrap().boot_id != Some(1) && Instant::now() < deadline {
        let p = d.pass(n + 1, Duration::from_secs(10)).await;
        n = p.number;
        reasons.push(p.reason);
    }
    assert_eq!(
        d.sim.server(RESCUE).unwrap().boot_id,
        Some(1),
        "back to disk: {reasons:?}"
    );
    assert!(jiff::Timestamp::now() >= ends);
    assert!(
        reasons.iter().any(|r| matches!(
            r,
            Some(Reason::Requeue {
                why: ovhform::daemon::Requeue::LeaseEnds,
                ..
            })
        )),
        "{reasons:?}"
    );
    d.no_pass_after_settling(n).await;
    // Back on disk and settled: the ended lease is not started again, and one reboot ran.
    assert_eq!(d.sim.server(RESCUE).unwrap().boot_id, Some(1));
    assert_eq!(reboots(&d.sim), reboots_before + 1);
    let doc = d.status().await;
    assert_eq!(doc.servers[RESCUE].boot_lease_ends, None);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_matches_its_documented_schema_and_metrics_parse() {
    let mut d = start(|_| {}, |_| {}).await;
    d.pass(1, Duration::from_secs(30)).await;
    let status: serde_json::Value = d.get("/status", None).await.json().await.unwrap();
    let path = repo().join("docs/status.schema.json");
    let generated = ovhform::daemon::status::schema();
    if std::env::var_os("OVHFORM_UPDATE_STATUS_SCHEMA").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/status.schema.json"))
            .unwrap();
    assert_eq!(
        schema, generated,
        "docs/status.schema.json is stale: re-run this test with OVHFORM_UPDATE_STATUS_SCHEMA=1"
    );
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&status)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{status:#}");

    let resp = d.get("/metrics", None).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().await.unwrap();
    for family in [
        "ovhform_reconcile_passes_total",
        "ovhform_reconcile_pass_duration_seconds",
        "ovhform_actions_total",
        "ovhform_servers",
        "ovhform_api_requests_total",
        "ovhform_api_budget_left",
        "ovhform_tasks_in_flight",
        "ovhform_leader",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    crate::daemon_support::parse_openmetrics(&text);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_guards_every_route_but_healthz() {
    let mut d = start(|_| {}, |cfg| cfg.http_token = Some("s3cret-token".into())).await;
    d.pass(1, Duration::from_secs(30)).await;
    assert_eq!(d.get("/healthz", None).await.status(), 200);
    for path in ["/readyz", "/metrics", "/status"] {
        assert_eq!(d.get(path, None).await.status(), 401, "{path}");
        assert_eq!(d.get(path, Some("wrong")).await.status(), 401, "{path}");
        assert_eq!(
            d.get(path, Some("s3cret-token")).await.status(),
            200,
            "{path}"
        );
    }
    let client = crate::sim_support::http();
    let post = client
        .post(format!("http://{}/status", d.addr))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405, "read-only");
    d.stop().await;
}

/// `ovhform healthcheck` (the image's HEALTHCHECK): exit 0 only on HTTP 200; a 401, a daemon
/// that is gone and one that never answers each exit 1 with the reason on stderr. The token
/// comes from the daemon's own variable and is sent to a loopback address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_command_exits_0_only_on_http_200() {
    let mut d = start(|_| {}, |cfg| cfg.http_token = Some("s3cret-token".into())).await;
    let base = format!("http://{}", d.addr);
    let check = |url: String, token: Option<&'static str>, timeout: &'static str| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ovhform"));
            cmd.args(["healthcheck", "--timeout", timeout])
                .env("OVHFORM_HEALTHCHECK_URL", url)
                .env_remove("OVHFORM_HTTP_TOKEN")
                // A proxy must not be used for the daemon's own address.
                .env("HTTP_PROXY", "http://127.0.0.1:9")
                .env("http_proxy", "http://127.0.0.1:9");
            if let Some(t) = token {
                cmd.env("OVHFORM_HTTP_TOKEN", t);
            }
            let out = cmd.output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let (code, stdout, _) = check(format!("{base}/healthz"), None, "3s").await.unwrap();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("healthy: "), "{stdout}");
    d.pass(1, Duration::from_secs(30)).await;
    let (code, _, stderr) = check(format!("{base}/readyz"), None, "3s").await.unwrap();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("answered HTTP 401"), "{stderr}");
    let (code, _, stderr) = check(format!("{base}/readyz"), Some("s3cret-token"), "3s")
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    d.stop().await;
    let (code, _, stderr) = check(format!("{base}/healthz"), None, "3s").await.unwrap();
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot reach") && !stderr.contains("panicked"),
        "{stderr}"
    );

    // Accepts the connection, never answers: the probe gives up after its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let started = Instant::now();
    let (code, _, stderr) = check(url, None, "500ms").await.unwrap();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("did not answer within 500ms"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

/// The real binary: SIGHUP re-plans, SIGTERM stops it with exit 0 within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_replans_on_sighup_and_stops_cleanly_on_sigterm() {
    use std::process::Stdio;

    let sim = demo_sim(1000.0).await;
    let work = crate::cli_support::Workdir::new();
    let manifests = crate::cli_support::manifests();
    let mut cmd = work.command(
        &sim,
        &[
            "run",
            "--manifests",
            &manifests,
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1h",
        ],
    );
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ovhform run");
    let pid = child.id().to_string();
    let lines = crate::daemon_support::collect_lines(child.stderr.take().unwrap());
    let addr = crate::daemon_support::announced_address(&lines, "ovhform run");
    let http = crate::sim_support::http();
    let status = |http: reqwest::Client, addr: String| async move {
        http.get(format!("http://{addr}/status"))
            .send()
            .await
            .ok()?
            .json::<StatusDoc>()
            .await
            .ok()
    };
    let wait_for = |want: &'static str| {
        let http = http.clone();
        let addr = addr.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(doc) = status(http.clone(), addr.clone()).await
                    && let Some(p) = &doc.last_pass
                    && p.reason == want
                {
                    return p.number;
                }
                assert!(Instant::now() < deadline, "no pass for {want}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let first = wait_for("start").await;
    assert_eq!(first, 1);
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    assert!(wait_for("SIGHUP").await > first);
    let stopping = Instant::now();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "{:?}", lines.lock().unwrap());
    assert!(
        lines.lock().unwrap().iter().any(|l| l.contains("stopped")),
        "{:?}",
        lines.lock().unwrap()
    );
}

/// Issue 10, "apply's calls and task polling come before refresh reads": in a pass that
/// both applies a manifest edit and verifies the fleet, the PUT goes before the round
/// robin's detail reads (the details the plan itself needs come first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passs_apply_goes_before_its_verification_reads() {
    // A budget so large that every server is verified every pass.
    let mut d = start_with_budget(|_| {}, |cfg| cfg.verify_share = 0.9, 60_000).await;
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    d.no_pass_after_settling(first).await;
    let n = d.last().number;
    d.sim.record_arrivals();
    replace_in(
        &d.manifests.join("servers/rescue.yaml"),
        "noIntervention: true",
        "noIntervention: false",
    );
    let pass = d.pass(n + 1, Duration::from_secs(10)).await;
    assert!(
        matches!(pass.reason, Some(Reason::Manifests { .. })),
        "{pass:?}"
    );
    let routes: Vec<String> = d.sim.arrivals().into_iter().map(|(_, r)| r).collect();
    let put = routes
        .iter()
        .position(|r| r == PUT_SERVER)
        .unwrap_or_else(|| panic!("no PUT: {routes:?}"));
    let tasks = |rs: &[String]| {
        rs.iter()
            .filter(|r| *r == "GET /dedicated/server/{serviceName}/task")
            .count()
    };
    // Before it: only the details the plan needs (the edited server's, and web-02's, whose
    // pending reinstall is re-checked every pass); the four others are refresh reads.
    assert!(
        tasks(&routes[..put]) <= 2,
        "refresh reads before the PUT: {routes:?}"
    );
    assert!(
        tasks(&routes[put..]) >= 4,
        "the other servers were verified after it: {routes:?}"
    );
    assert!(!d.sim.server(RESCUE).unwrap().no_intervention);
    d.stop().await;
}

/// A wipe that only a verification read shows the need for (a reinstall made outside
/// ovhform, install drift under `correct`, policy `auto`, inside the window) is not approved in
/// the verification phase but runs in a pass of its own, right away — regression: the pass's
/// end used to clear that requeue, leaving the wipe to the next interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_a_verification_calls_for_runs_in_a_pass_of_its_own_at_once() {
    // The web tier on `auto` with no window (the test's clock stays the simulator's), install
    // drift corrected, every server verified each pass.
    let mut d = start_with_budget(
        |m| {
            let web = m.join("groups/web.yaml");
            replace_in(&web, "reinstall: manual", "reinstall: auto");
            replace_in(&web, "install: warn", "install: correct");
            replace_in(&web, "      maintenanceWindow: prod-nights\n", "");
        },
        |cfg| cfg.verify_share = 0.9,
        60_000,
    )
    .await;
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    d.no_pass_after_settling(first).await;
    let before = reinstalls(&d.sim);
    d.sim.create_task(WEB1, "reinstallServer").expect("task");
    // Let the foreign task finish on the simulator's fast clock.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = d.last().number;
    d.triggers.send(Reason::Hangup);
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut m = n;
    while reinstalls(&d.sim) == before && Instant::now() < deadline {
        let p = d.pass(m + 1, Duration::from_secs(10)).await;
        m = p.number;
        reasons.push(p.reason);
    }
    assert_eq!(reinstalls(&d.sim), before + 1, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| matches!(
            r,
            Some(Reason::Requeue {
                why: ovhform::daemon::Requeue::Verified,
                ..
            })
        )),
        "{reasons:?}"
    );
    d.stop().await;
}

/// Round-robin verification: every server's detail is read within `ceil(servers / per pass)`
/// intervals, so a reinstall made outside ovhform is reported within that bound, and
/// `/status` says when each server was last verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_made_outside_ovhform_is_detected_within_the_verification_bound() {
    let interval = Duration::from_secs(2);
    let mut d = start_with_budget(
        |_| {},
        |cfg| {
            cfg.pacing.interval = interval;
            cfg.verify_share = 0.75;
        },
        600,
    )
    .await;
    // 600 requests a minute: 15 for verification per 2-second interval, 2 servers a pass.
    let per_pass = ovhform::daemon::verify_per_pass(interval, 10.0, 0.75);
    assert_eq!(per_pass, 2);
    let servers = 6;
    let bound = interval * (servers / per_pass as u32);
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    // Every server gets verified within the bound (plus one pass of slack).
    d.pass(first + 3, bound + Duration::from_secs(5)).await;
    let doc = d.status().await;
    let unverified: Vec<&String> = doc
        .servers
        .iter()
        .filter(|(_, s)| s.last_verified.is_none())
        .map(|(n, _)| n)
        .collect();
    assert!(unverified.is_empty(), "never verified: {unverified:?}");

    let task = d.sim.create_task(WEB1, "reinstallServer").expect("task");
    let made = Instant::now();
    loop {
        let doc = d.status().await;
        if let ServerStatus::Drifted { fields } = state_of(&doc, WEB1) {
            assert!(fields.iter().any(|f| f == "install"), "{fields:?}");
            break;
        }
        assert!(
            made.elapsed() < bound + Duration::from_secs(5),
            "reinstall task {task} not detected within {bound:?}: {:?}",
            state_of(&doc, WEB1)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop().await;
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first request (to prove retries)
/// and records every body it accepts.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    use axum::http::StatusCode;
    let got = Arc::new(Mutex::new(Vec::new()));
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            let first = first.clone();
            async move {
                if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                sink.lock().unwrap().push(body);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_hears_of_approvals_and_drift_once_each_with_retries() {
    let (url, got) = webhook_receiver().await;
    let clock = TestClock::at("2026-11-30T01:30:00Z".parse().unwrap());
    let mut d = start(
        |_| {},
        move |cfg| {
            cfg.clock = Arc::new(move || clock.now());
            cfg.webhook = Some(url);
        },
    )
    .await;
    let first = d.pass(1, Duration::from_secs(30)).await.number;
    d.no_pass_after_settling(first).await;
    assert!(d.sim.update_server(RESCUE, |s| s.monitoring = true));
    let before = d.last().number;
    d.triggers.send(Reason::Hangup);
    d.pass(before + 1, Duration::from_secs(10)).await;
    d.triggers.send(Reason::Hangup);
    d.pass(before + 2, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = got.lock().unwrap().clone();
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
        if kinds.contains(&"drift") && kinds.contains(&"approvalNeeded") {
            break events;
        }
        assert!(Instant::now() < deadline, "events so far: {events:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let of = |kind: &str, server: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["server"] == server)
            .count()
    };
    // Three passes saw web-02 pending; one event. The first POST failed and was retried.
    assert_eq!(of("approvalNeeded", WEB2), 1, "{events:#?}");
    assert_eq!(of("drift", RESCUE), 1, "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| e["fleet"] == "default" && e["at"].is_string())
    );
    d.stop().await;
}

/// The deployment examples stay in line with what the daemon serves: the Kubernetes manifest
/// parses, probes `/healthz` and `/readyz` and runs `run`; the systemd unit runs `ovhform run`
/// and reloads with SIGHUP; the Dockerfile's default command is `run`, its health check the
/// daemon's `/healthz` on the port it listens on, its user Kubernetes' user; the container
/// section of docs/operations.md says how to mount what the image expects.
#[test]
fn the_deployment_examples_probe_the_daemons_routes() {
    let k8s = std::fs::read_to_string(repo().join("docs/deploy/kubernetes.yaml")).unwrap();
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&k8s).expect("kubernetes.yaml parses");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let daemon = &spec["template"]["spec"]["containers"][0];
    assert_eq!(daemon["args"][0], "run");
    assert_eq!(daemon["livenessProbe"]["httpGet"]["path"], "/healthz");
    let unit = std::fs::read_to_string(repo().join("docs/deploy/ovhform.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/ovhform run "));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(unit.contains("DynamicUser=yes") && unit.contains("ProtectSystem=strict"));
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(r#"CMD ["run", "#));
    // The image's health check is the daemon's /healthz through `ovhform healthcheck`, whose
    // default URL is the port the image's command listens on and exposes.
    assert!(
        dockerfile.contains(r#"CMD ["ovhform", "healthcheck"]"#),
        "HEALTHCHECK"
    );
    assert_eq!(
        ovhform::cli::healthcheck::DEFAULT_URL,
        "http://127.0.0.1:9090/healthz"
    );
    assert!(
        dockerfile.contains(r#""--listen", "0.0.0.0:9090"]"#) && dockerfile.contains("EXPOSE 9090")
    );
    assert_eq!(daemon["ports"][0]["containerPort"], 9090);
    // The same non-root user everywhere: the image's USER, Kubernetes' runAsUser and fsGroup.
    assert!(dockerfile.contains("\nUSER 10001:10001\n"));
    let pod = &spec["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsUser"], 10001);
    assert_eq!(pod["fsGroup"], 10001);
    assert_eq!(pod["runAsNonRoot"], true);
    // Kubernetes' readiness probe runs the same command on /readyz: it sends the daemon's
    // token (OVHFORM_HTTP_TOKEN, set from the same Secret) to the loopback address.
    let ready = &daemon["readinessProbe"]["exec"]["command"];
    assert_eq!(ready[0], "ovhform");
    assert_eq!(ready[1], "healthcheck");
    assert_eq!(ready[3], "http://127.0.0.1:9090/readyz");
    // The state's volume is where the image points OVHFORM_STATE, and what the docs mount.
    assert!(dockerfile.contains("ENV OVHFORM_STATE=/var/lib/ovhform\n"));
    assert!(dockerfile.contains(r#"VOLUME ["/var/lib/ovhform"]"#));
    let ops = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    for needle in [
        "ovhform-state:/var/lib/ovhform",
        "/work/manifests:ro",
        "ovhform healthcheck",
        "OVHFORM_HEALTHCHECK_URL",
        "scripts/dockerfile-steps.sh",
    ] {
        assert!(ops.contains(needle), "docs/operations.md lacks {needle}");
    }
}
