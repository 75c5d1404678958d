//! `ovhform doctor`, the real binary against the simulator on 127.0.0.1: a clean pass, and
//! each misconfiguration failing (or warning) on its own line with its fix, the exit code
//! saying whether anything failed, and no secret in any output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ovhform::sim::{SimConfig, SimHandle, SimKey, SimRule};

use crate::cli_support::{Run, demo_sim_with, manifests, repo};

/// The rules a key made for `ovhform apply` has (docs/operations.md "Doctor").
fn apply_rules() -> Vec<SimRule> {
    [
        ("GET", "/dedicated/server"),
        ("GET", "/dedicated/server/*"),
        ("PUT", "/dedicated/server/*"),
        ("POST", "/dedicated/server/*/reboot"),
        ("POST", "/dedicated/server/*/reinstall"),
        ("PUT", "/v2/iam/resource/*"),
    ]
    .into_iter()
    .map(|(m, p)| SimRule::new(m, p))
    .collect()
}

fn plan_rules() -> Vec<SimRule> {
    apply_rules().into_iter().take(2).collect()
}

async fn sim_with_rules(rules: Vec<SimRule>, tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    demo_sim_with(0.0, |c| {
        c.key = SimKey {
            rules,
            ..SimKey::default()
        };
        tweak(c);
    })
    .await
}

/// A working directory with its own HOME (no ovh.conf of the developer).
struct Doctor {
    dir: tempfile::TempDir,
    endpoint: String,
    env: Vec<(String, String)>,
    secrets: Vec<String>,
}

impl Doctor {
    /// Credentials of `sim` in the environment, as an operator would set them.
    fn for_sim(sim: &SimHandle) -> Doctor {
        let c = sim.credentials();
        Doctor {
            dir: tempfile::tempdir().expect("tempdir"),
            endpoint: sim.base_url(),
            env: vec![
                ("OVH_APPLICATION_KEY".into(), c.application_key.clone()),
                (
                    "OVH_APPLICATION_SECRET".into(),
                    c.application_secret.clone(),
                ),
                ("OVH_CONSUMER_KEY".into(), c.consumer_key.clone()),
            ],
            secrets: vec![c.application_secret, c.consumer_key],
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    async fn run(&self, args: &[&str]) -> Run {
        let has_state = args.contains(&"--state");
        let has_manifests = args.contains(&"--manifests");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
        cmd.arg("doctor")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("OVH_ENDPOINT", &self.endpoint)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if !has_state {
            cmd.arg("--state").arg(self.state());
        }
        if !has_manifests {
            cmd.args(["--manifests", &manifests()]);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run ovhform"))
            .await
            .expect("ovhform task");
        let run = Run::from(out);
        for secret in &self.secrets {
            assert!(
                !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
                "a secret was printed:\n{run}"
            );
        }
        run
    }
}

/// The report line of check `name` (`<status> <name> …`).
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` line:\n{run}"))
}

fn status<'a>(run: &'a Run, name: &str) -> &'a str {
    line(run, name).split_whitespace().next().unwrap_or("")
}

/// Lines that change from run to run (ports, paths, timings) made stable for a snapshot.
fn normalised(run: &Run, sim: &SimHandle, dir: &Path) -> String {
    let text = run
        .stdout
        .replace(&sim.base_url(), "http://127.0.0.1:PORT/1.0")
        .replace(&dir.display().to_string(), "TMP")
        .replace(&repo().display().to_string(), "REPO");
    text.lines()
        .map(|l| match l.find(" answered GET /auth/time in ") {
            Some(i) => format!("{} answered GET /auth/time in N ms", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_against_the_simulator() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let d = Doctor::for_sim(&sim);
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(0), "{run}");
    for name in [
        "config",
        "endpoint",
        "clock",
        "credentials",
        "access",
        "budget",
        "state",
        "manifests",
    ] {
        assert_eq!(status(&run, name), "ok", "{name}:\n{run}");
    }
    insta::assert_snapshot!(normalised(&run, &sim, d.dir.path()));
    // Read-only: the consumer key, the time and nothing that changes anything.
    let calls = sim.calls();
    assert!(calls.keys().all(|r| r.starts_with("GET ")), "{calls:?}");
    assert_eq!(
        calls.get("GET /auth/currentCredential"),
        Some(&1),
        "{calls:?}"
    );
    assert!(!d.state().exists(), "doctor created the state directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_fail_the_config_check() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let mut d = Doctor::for_sim(&sim);
    d.env.clear();
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let config = line(&run, "config");
    assert!(
        config.starts_with("fail config") && config.contains("no OVHcloud credentials found"),
        "{run}"
    );
    assert!(config.contains("-- fix: set OVH_APPLICATION_KEY"), "{run}");
    // The endpoint and the clock need no credentials: still checked.
    assert_eq!(status(&run, "endpoint"), "ok", "{run}");
    assert_eq!(status(&run, "clock"), "ok", "{run}");
    assert_eq!(status(&run, "credentials"), "skip", "{run}");
    assert_eq!(status(&run, "access"), "skip", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_application_secret_fails_the_credentials_check() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let mut d = Doctor::for_sim(&sim);
    let wrong = "WRONGSECRETwrongsecretWRONGSECRE";
    d.set("OVH_APPLICATION_SECRET", wrong);
    d.secrets.push(wrong.into());
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "credentials");
    assert!(
        l.starts_with("fail credentials")
            && l.contains("the application secret does not match the application key")
            && l.contains("Invalid signature"),
        "{run}"
    );
    assert!(l.contains("-- fix: check the application secret"), "{run}");
    assert_eq!(status(&run, "access"), "skip", "{run}");

    // A consumer key the API does not know: its own cause and fix.
    let mut d = Doctor::for_sim(&sim);
    let unknown = "UNKNOWNckUNKNOWNckUNKNOWNckUNKNO";
    d.set("OVH_CONSUMER_KEY", unknown);
    d.secrets.push(unknown.into());
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "credentials");
    assert!(
        l.contains("the consumer key is unknown, expired, revoked or was never validated")
            && l.contains("-- fix: create a consumer key"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_warns_then_fails() {
    // The API's clock an hour ahead: signatures still work (the signer corrects for it).
    let sim = sim_with_rules(apply_rules(), |c| c.clock_offset_secs = 3600).await;
    let run = Doctor::for_sim(&sim).run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "clock");
    assert!(
        l.starts_with("fail clock") && l.contains("is 3600 s behind the API's"),
        "{run}"
    );
    assert!(
        l.contains("-- fix: synchronise the clock with NTP"),
        "{run}"
    );
    assert_eq!(status(&run, "credentials"), "ok", "{run}");

    // Two minutes behind: a warning, which does not fail the run.
    let sim = sim_with_rules(apply_rules(), |c| c.clock_offset_secs = -120).await;
    let run = Doctor::for_sim(&sim).run(&[]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "clock");
    assert!(
        l.starts_with("warn clock") && l.contains("ahead of the API's") && l.contains("-- fix:"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_and_skips_what_needs_it() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    // A port nothing listens on: bound, then released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut d = Doctor::for_sim(&sim);
    d.endpoint = format!("http://127.0.0.1:{closed}/1.0");
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "endpoint");
    assert!(
        l.starts_with("fail endpoint")
            && l.contains(&format!("cannot reach http://127.0.0.1:{closed}/1.0"))
            && l.contains("-- fix: check --endpoint / OVH_ENDPOINT"),
        "{run}"
    );
    for name in ["clock", "credentials", "access"] {
        assert_eq!(status(&run, name), "skip", "{name}:\n{run}");
    }
    assert_eq!(status(&run, "config"), "ok", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_state_directory_fails() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let d = Doctor::for_sim(&sim);
    // Where no directory can be made, whoever runs the test (root included): under a file.
    let file = d.dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let under = file.join("state");
    let run = d.run(&["--state", under.to_str().expect("utf-8")]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "state");
    assert!(
        l.starts_with("fail state") && l.contains("cannot be created") && l.contains("-- fix:"),
        "{run}"
    );
    // The state path is the file itself.
    let run = d.run(&["--state", file.to_str().expect("utf-8")]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(line(&run, "state").contains("is not a directory"), "{run}");

    // A directory other users may read: a warning naming the fix.
    let open = d.dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let run = d.run(&["--state", open.to_str().expect("utf-8")]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "state");
    assert!(
        l.starts_with("warn state") && l.contains("-- fix: chmod 700"),
        "{run}"
    );
    // Its probe file is gone.
    assert_eq!(std::fs::read_dir(&open).expect("read").count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_fail_the_state_check() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let d = Doctor::for_sim(&sim);
    std::fs::create_dir(d.state()).expect("mkdir");
    std::fs::write(d.state().join("records.json"), b"{ not json").expect("write");
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        line(&run, "state").contains("the records cannot be read"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_without_showing_its_password() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut d = Doctor::for_sim(&sim);
    d.secrets.push("PGPASSWORD-S3CRET".into());
    let url = format!("postgres://ovhform:PGPASSWORD-S3CRET@127.0.0.1:{closed}/fleet");
    let run = d.run(&["--state", &url]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "state");
    assert!(
        l.starts_with("fail state")
            && l.contains(&format!(
                "PostgreSQL at postgres://ovhform:***@127.0.0.1:{closed}/fleet"
            ))
            && l.contains("-- fix: check the URL"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_fail_with_the_first_error() {
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let d = Doctor::for_sim(&sim);
    let dir = d.dir.path().join("manifests");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("web.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: ns1.ip-1-2-3.eu\nspec:\n  os: debian12_64\n  bogus: 1\n",
    )
    .expect("write");
    let run = d.run(&["--manifests", dir.to_str().expect("utf-8")]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "manifests");
    assert!(
        l.starts_with("fail manifests") && l.contains("web.yaml:") && l.contains("is invalid"),
        "{run}"
    );
    assert!(l.contains("-- fix: `ovhform validate"), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_broader_than_needed_warns() {
    // The simulator's default key may call anything.
    let sim = demo_sim_with(0.0, |_| {}).await;
    let run = Doctor::for_sim(&sim).run(&[]).await;
    assert_eq!(run.code, Some(0), "warnings do not fail:\n{run}");
    let l = line(&run, "access");
    assert!(
        l.starts_with("warn access")
            && l.contains("rules grant more than `apply` uses: GET /*, POST /*, PUT /*, DELETE /*")
            && l.contains("-- fix: a key with only these rules is enough: GET /dedicated/server,"),
        "{run}"
    );
    // An apply key checked for a plan-only use is broader by its writes.
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let run = Doctor::for_sim(&sim).run(&["--for", "plan"]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "access");
    assert!(
        l.starts_with("warn access") && l.contains("POST /dedicated/server/*/reinstall"),
        "{run}"
    );
}

/// Decision (docs/operations.md "Doctor"): a key that lacks a call the purpose makes fails
/// the access check — the command would be refused half-way, after planning, with
/// `NOT_GRANTED_CALL` — while the same key checked `--for plan` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_narrower_than_apply_needs_fails_unless_for_plan() {
    let sim = sim_with_rules(plan_rules(), |_| {}).await;
    let d = Doctor::for_sim(&sim);
    let run = d.run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let l = line(&run, "access");
    assert!(
        l.starts_with("fail access")
            && l.contains("`apply` would be refused: no rule grants PUT /dedicated/server/{serviceName}, POST /dedicated/server/{serviceName}/reboot, POST /dedicated/server/{serviceName}/reinstall, PUT /v2/iam/resource/{resourceURN}")
            && l.contains("(on a plan-only machine use `--for plan`)"),
        "{run}"
    );
    let run = d.run(&["--for", "plan"]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "access");
    assert!(
        l.starts_with("ok   access") && l.contains("(this key cannot apply)"),
        "{run}"
    );
    // The simulator enforces the same rules: a plan works with this key.
    let plan = crate::cli_support::Workdir::new()
        .run(&sim, &["plan", "--manifests", &manifests()])
        .await;
    assert_eq!(plan.code, Some(0), "{plan}");

    // Rules that name servers one by one are judged on the manifests' servers.
    let fleet: Vec<String> = sim.world().servers.keys().cloned().collect();
    let mut rules = vec![SimRule::new("GET", "/dedicated/server")];
    for sn in &fleet {
        rules.push(SimRule::new("GET", &format!("/dedicated/server/{sn}")));
        rules.push(SimRule::new("GET", &format!("/dedicated/server/{sn}/*")));
    }
    sim.set_key(SimKey {
        rules,
        ..SimKey::default()
    });
    let run = d.run(&["--for", "plan"]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        line(&run, "access").contains("for the 6 servers of the manifests"),
        "{run}"
    );
    // Without a rule for one of them, a plan would be refused for it.
    let mut rules = vec![SimRule::new("GET", "/dedicated/server")];
    rules.push(SimRule::new(
        "GET",
        &format!("/dedicated/server/{}/*", fleet[0]),
    ));
    sim.set_key(SimKey {
        rules,
        ..SimKey::default()
    });
    let run = d.run(&["--for", "plan"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        line(&run, "access").contains("`plan` would be refused"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_expiring_keys() {
    let now = jiff::Timestamp::now().as_second();
    let sim = sim_with_rules(apply_rules(), |c| c.key.expiration = Some(now - 60)).await;
    let run = Doctor::for_sim(&sim).run(&[]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        line(&run, "credentials").contains("the consumer key is unknown, expired, revoked"),
        "{run}"
    );
    sim.set_key(SimKey {
        rules: apply_rules(),
        expiration: Some(now + 2 * 86_400),
        ..SimKey::default()
    });
    let run = Doctor::for_sim(&sim).run(&[]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "credentials");
    assert!(
        l.starts_with("warn credentials")
            && l.contains("expires at")
            && l.contains("-- fix: create a new consumer key before then"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rule_paths_are_escaped() {
    let mut rules = apply_rules();
    rules.push(SimRule::new("DELETE", "/x\u{1b}[2J\u{202e}/*"));
    let sim = sim_with_rules(rules, |_| {}).await;
    let run = Doctor::for_sim(&sim).run(&[]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "access");
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{202e}'),
        "{run}"
    );
    assert!(l.contains("DELETE /x\\x1b[2J"), "{run}");
}

/// A reachable database is reported with its schema version, and doctor never migrates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_is_probed_without_being_migrated() {
    let db = crate::pg_support::fresh_db().await;
    let sim = sim_with_rules(apply_rules(), |_| {}).await;
    let d = Doctor::for_sim(&sim);
    let run = d.run(&["--state", &db.url]).await;
    assert_eq!(run.code, Some(0), "{run}");
    let l = line(&run, "state");
    assert!(
        l.starts_with("ok   state") && l.contains("reachable; no ovhform schema yet"),
        "{run}"
    );
    let sql = db.sql().await;
    let created: bool = sql
        .query_one("SELECT to_regclass('ovhform_schema') IS NOT NULL", &[])
        .await
        .expect("query")
        .get(0);
    assert!(!created, "doctor created the schema");
    // Once `run` has migrated it: its version.
    ovhform::state::PgStore::connect(&db.url, "default", "doctor-test")
        .await
        .expect("migrate");
    let run = d.run(&["--state", &db.url]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        line(&run, "state").contains(&format!(
            "schema version {}",
            ovhform::state::pg::SCHEMA_VERSION
        )),
        "{run}"
    );
}

/// The rules doctor asks for are enough in fact: the example fleet's whole apply (a reinstall,
/// boots, settings, reboots, record tags) runs on a simulator that enforces them, and with the
/// plan-only rules the same apply is refused by the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_runs_with_exactly_the_rules_doctor_asks_for() {
    use crate::cli_support::{IGNORE_WEB_WINDOWS, Workdir, reinstalls};
    let m = manifests();
    let mut args = vec![
        "apply",
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe-all",
    ];
    args.extend(IGNORE_WEB_WINDOWS);

    let sim = demo_sim_with(1000.0, |c| {
        c.key = SimKey {
            rules: apply_rules(),
            ..SimKey::default()
        }
    })
    .await;
    let run = Workdir::new().run(&sim, &args).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(reinstalls(&sim), 1, "{run}");
    assert!(run.stdout.contains("Apply complete:"), "{run}");
    assert!(
        !run.stdout.contains("NOT_GRANTED_CALL") && !run.stderr.contains("NOT_GRANTED_CALL"),
        "{run}"
    );
    // Every write route of the table was used, so none of the rules is there for nothing.
    let calls = sim.calls();
    for route in [
        "PUT /dedicated/server/{serviceName}",
        "POST /dedicated/server/{serviceName}/reboot",
        "POST /dedicated/server/{serviceName}/reinstall",
        "PUT /v2/iam/resource/{resourceURN}",
    ] {
        assert!(
            calls.get(route).copied().unwrap_or(0) > 0,
            "{route}: {calls:?}"
        );
    }

    let sim = demo_sim_with(1000.0, |c| {
        c.key = SimKey {
            rules: plan_rules(),
            ..SimKey::default()
        }
    })
    .await;
    let run = Workdir::new().run(&sim, &args).await;
    assert_ne!(run.code, Some(0), "{run}");
    // (The simulator counts a refused call too: the refusal is what says nothing ran.)
    assert!(
        run.stdout.contains("/reinstall: HTTP 403 NOT_GRANTED_CALL"),
        "{run}"
    );
}
