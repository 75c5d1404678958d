//! `ovhform plan` end to end: the real binary against the simulator (started in-process with
//! the demo fleet), on the example manifests. Asserts the JSON plan, the exit codes, the saved
//! plan, and that no secret reaches the output; plus the API-call cost of a 1,000-server plan
//! with no changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ovhform::model::{AppliedState, InstallRecord, Records};
use ovhform::plan::{ActionKind, Plan};
use ovhform::sim::{SimConfig, SimHandle, client_for};
use ovhform::state::MemoryStore;
use serde_json::Value;

use crate::pipeline::plan_with;
use crate::sim_support::start;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn demo_sim() -> SimHandle {
    let text = std::fs::read_to_string(repo().join("demo/fleet.yaml")).expect("demo fleet");
    let fleet = ovhform::sim::fleet::parse(
        &text,
        Path::new("demo/fleet.yaml"),
        &ovhform::sim::catalog::catalogue(),
    )
    .expect("demo fleet parses");
    start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await
}

fn actions(plan: &Value, server: &str) -> Vec<(String, bool)> {
    plan["servers"][server]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("{server} has actions"))
        .iter()
        .map(|a| {
            (
                a["type"].as_str().expect("type").to_string(),
                // Only a reinstall carries `destructive` (always true).
                a["destructive"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn owned(v: &[(&str, bool)]) -> Vec<(String, bool)> {
    v.iter().map(|(t, d)| (t.to_string(), *d)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_on_the_example_manifests_shows_the_expected_actions() {
    let sim = demo_sim().await;
    let keep = tempfile::tempdir().expect("tempdir");
    let out = keep.path().join("plan.json");
    let out_arg = out.to_str().expect("utf-8 path").to_string();
    let (code, stdout, stderr) = run_plan(
        &sim,
        vec![
            "--format".into(),
            "json".into(),
            "--detailed-exitcode".into(),
            "--out".into(),
            out_arg,
        ],
    )
    .await;
    assert_eq!(code, Some(2), "changes → exit 2\n{stderr}");

    let plan: Value = serde_json::from_str(&stdout).expect("JSON plan on stdout");
    assert_eq!(plan["format_version"], 3);
    assert_eq!(
        actions(&plan, "ns3000001.ip-51-68-1.eu"),
        owned(&[("adopt", false)])
    );
    // The web group's reinstalls are bound by its maintenance window (weekday nights), so
    // depending on the hour the wipe is runnable or deferred: a wipe either way.
    let web2 = &plan["servers"]["ns3000002.ip-51-68-1.eu"]["actions"][0];
    let deferred = web2["type"] == "blocked"
        && web2["action"]["type"] == "reinstall"
        && web2["blockers"]
            .as_array()
            .is_some_and(|b| b.iter().all(|x| x["kind"] == "outside-window"));
    assert!(
        deferred || actions(&plan, "ns3000002.ip-51-68-1.eu") == owned(&[("reinstall", true)]),
        "{web2}"
    );
    assert_eq!(
        actions(&plan, "ns3000003.ip-51-68-1.eu"),
        owned(&[("adopt", false), ("update-settings", false)])
    );
    assert_eq!(
        actions(&plan, "ns3000010.ip-51-68-2.eu"),
        owned(&[("adopt", false)])
    );
    assert_eq!(
        actions(&plan, "ns3000020.ip-51-68-3.eu"),
        owned(&[("set-boot", false), ("reboot", false)])
    );
    assert_eq!(
        actions(&plan, "ns3000030.ip-51-68-3.eu"),
        owned(&[("noop", false)])
    );
    // The reinstall says what it erases.
    let reinstall = if deferred { &web2["action"] } else { web2 };
    assert_eq!(reinstall["disk_groups"][0]["fate"], "os-install");
    assert_eq!(
        reinstall["approval"]["flag"],
        "--allow-wipe ns3000002.ip-51-68-1.eu"
    );

    // The saved plan is the same plan, readable back.
    let saved = std::fs::read_to_string(&out).expect("saved plan");
    let reread = Plan::from_json(&saved).expect("saved plan parses");
    let printed = Plan::from_json(&stdout).expect("printed plan parses");
    assert_eq!(reread, printed);

    // No credential or script content leaks into the plan or the logs.
    let creds = sim.credentials();
    for secret in [&creds.application_secret, &creds.consumer_key] {
        assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
    let script = std::fs::read_to_string(repo().join("manifests/scripts/bootstrap.sh"))
        .expect("bootstrap script");
    let first_line = script
        .lines()
        .find(|l| l.len() > 20)
        .expect("a script line");
    assert!(
        !stdout.contains(first_line),
        "script content must be redacted"
    );
    sim.shutdown().await;
}

/// Runs the `ovhform plan` binary with the simulator's credentials in the environment, from an
/// empty working directory and HOME (so no developer's ovh.conf is read).
async fn run_plan(sim: &SimHandle, extra: Vec<String>) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let base_url = sim.base_url();
    let creds = sim.credentials().clone();
    let home_path = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
        cmd.arg("plan");
        if !extra.iter().any(|a| a == "--manifests") {
            cmd.arg("--manifests").arg(repo().join("manifests"));
        }
        // The simulator has no fair-use limit: skip the client-side budget (60/min by default).
        cmd.args(["--requests-per-minute", "0"]);
        cmd.arg("--state")
            .arg(home_path.join("state"))
            .args(&extra)
            .current_dir(&home_path)
            .env_clear()
            .env("HOME", &home_path)
            .env("NO_COLOR", "1")
            .env("OVH_ENDPOINT", base_url)
            .env("OVH_APPLICATION_KEY", &creds.application_key)
            .env("OVH_APPLICATION_SECRET", &creds.application_secret)
            .env("OVH_CONSUMER_KEY", &creds.consumer_key)
            .output()
            .expect("run ovhform plan")
    })
    .await
    .expect("plan task");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_exit_codes() {
    let sim = demo_sim().await;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    // A server already as desired: no changes → 0, with or without --detailed-exitcode.
    let (code, out, err) = run_plan(
        &sim,
        s(&["--target", "ns3000030.ip-51-68-3.eu", "--detailed-exitcode"]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("No changes") || out.contains("no changes"),
        "{out}"
    );

    // Changes without --detailed-exitcode → 0.
    let (code, _, err) = run_plan(&sim, s(&[])).await;
    assert_eq!(code, Some(0), "{err}");

    // Changes with --detailed-exitcode → 2, in every format.
    for format in ["text", "json", "markdown"] {
        let (code, out, err) =
            run_plan(&sim, s(&["--detailed-exitcode", "--format", format])).await;
        assert_eq!(code, Some(2), "{format}: {err}");
        assert!(out.contains("ns3000002.ip-51-68-1.eu"), "{format}");
    }

    // Invalid manifests → 1, with the diagnostics.
    let (code, _, err) = run_plan(&sim, s(&["--manifests", "/nonexistent/manifests"])).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent/manifests"), "{err}");
    sim.shutdown().await;

    // An API that can't be reached → 1, saying so.
    let dead = demo_sim().await;
    let url_of_dead = dead.base_url();
    dead.shutdown().await;
    let home = tempfile::tempdir().expect("tempdir");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ovhform"))
            .args(["plan", "--manifests"])
            .arg(repo().join("manifests"))
            .args(["--timeout", "2s", "--retries", "0"])
            .current_dir(home.path())
            .env_clear()
            .env("HOME", home.path())
            .env("OVH_ENDPOINT", url_of_dead)
            .env("OVH_APPLICATION_KEY", "ak")
            .env("OVH_APPLICATION_SECRET", "as")
            .env("OVH_CONSUMER_KEY", "ck")
            .output()
            .expect("run")
    })
    .await
    .expect("task");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GET /auth/time failed"), "{err}");

    // A usage error is an error (1), never mistaken for "changes present" (2).
    let bad = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["plan", "--format", "yaml"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(1));
}

/// 1,000 servers, all already as their manifests want them and recorded: the plan has only
/// `noop`s and the whole observation costs ≤ 40 API calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planning_1000_unchanged_servers_costs_at_most_40_calls() {
    const N: usize = 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet_yaml = String::from("servers:\n");
    let mut manifests = String::new();
    for i in 0..N {
        let name = format!("ns{:07}.ip-10-0-{}.eu", 4_000_000 + i, i % 200);
        fleet_yaml.push_str(&format!(
            "  - {{name: {name}, os: debian12_64, monitoring: true}}\n"
        ));
        manifests.push_str(&format!(
            "---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  install:\n    os: debian12_64\n    customizations: {{hostname: node-{i}}}\n  boot: {{mode: disk}}\n  settings: {{monitoring: true}}\n"
        ));
    }
    std::fs::write(dir.path().join("fleet.yaml"), &manifests).expect("write manifests");
    let loaded = ovhform::manifest::load(&[dir.path().join("fleet.yaml")])
        .expect("generated manifests load");
    let desired = loaded.desired;
    assert_eq!(desired.servers.len(), N);

    let mut records = Records::default();
    for (name, s) in &desired.servers {
        let install = s.install.as_ref().expect("install spec");
        records.installs.insert(
            name.clone(),
            InstallRecord {
                server: name.clone(),
                fleet: ovhform::model::DEFAULT_FLEET.into(),
                algorithm: 2,
                secrets: None,
                request: None,
                fingerprint: install.fingerprint.clone(),
                os: install.os.clone(),
                generation: install.generation,
                revision: None,
                task_id: Some(1),
                started: None,
                finished: None,
            },
        );
        records.applied.insert(
            name.clone(),
            AppliedState {
                lease: None,
                boot: s.boot.as_ref().map(|b| b.mode.clone()),
                settings: s.settings.clone(),
            },
        );
    }
    let fleet = ovhform::sim::fleet::parse(
        &fleet_yaml,
        Path::new("fleet.yaml"),
        &ovhform::sim::catalog::catalogue(),
    )
    .expect("fleet parses");
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let client = client_for(&sim).expect("client");
    let store = MemoryStore::new(records);
    sim.reset_calls();
    let planned = plan_with(&client, &store, desired).await;

    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for sp in planned.plan.servers.values() {
        for a in &sp.actions {
            *kinds.entry(format!("{:?}", a.kind())).or_default() += 1;
            assert_eq!(a.kind(), ActionKind::Noop, "{}: {:?}", sp.server, a);
        }
    }
    assert_eq!(kinds.values().sum::<usize>(), N, "{kinds:?}");
    assert!(planned.stats.calls <= 40, "{:?}", planned.stats);
    assert_eq!(sim.total_calls(), planned.stats.calls);
    sim.shutdown().await;
}

/// A plan with no state directory (CI, read-only key) still knows what ovhform installed, from
/// the servers' IAM tags: a recorded server as its manifest wants it is `noop` (not adopt, not
/// reinstall), and a tagged server whose manifest was removed is `forget`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_tags_are_read_without_a_state_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = "ns5000001.ip-10-1-1.eu";
    let removed = "ns5000002.ip-10-1-1.eu";
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {kept}}}\nspec:\n  install:\n    os: debian12_64\n    customizations: {{hostname: kept}}\n"
        ),
    )
    .expect("write manifest");
    let desired = ovhform::manifest::load(&[dir.path().to_path_buf()])
        .expect("manifest loads")
        .desired;
    let install = desired.servers[kept].install.clone().expect("install");
    let record = |server: &str, fingerprint: &str| InstallRecord {
        server: server.to_string(),
        fleet: ovhform::model::DEFAULT_FLEET.into(),
        algorithm: 2,
        secrets: None,
        request: None,
        fingerprint: fingerprint.to_string(),
        os: "debian12_64".into(),
        generation: 1,
        revision: None,
        task_id: Some(7),
        started: Some("2026-11-01T10:00:00Z".parse().expect("time")),
        finished: Some("2026-11-01T10:15:00Z".parse().expect("time")),
    };
    let tags_yaml = |r: &InstallRecord| {
        let tags = ovhform::state::record_to_tags(r).expect("tags");
        let inner: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("\"{k}\": \"{v}\""))
            .collect();
        format!("{{{}}}", inner.join(", "))
    };
    let fleet_yaml = format!(
        "servers:\n  - {{name: {kept}, os: debian12_64, tags: {}}}\n  - {{name: {removed}, os: debian12_64, tags: {}}}\n  - {{name: ns5000003.ip-10-1-1.eu, os: debian12_64}}\n",
        tags_yaml(&record(kept, &install.fingerprint)),
        tags_yaml(&record(
            removed,
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        )),
    );
    let fleet = ovhform::sim::fleet::parse(
        &fleet_yaml,
        Path::new("fleet.yaml"),
        &ovhform::sim::catalog::catalogue(),
    )
    .expect("fleet parses");
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let client = client_for(&sim).expect("client");
    let planned = plan_with(&client, &MemoryStore::default(), desired).await;
    let kinds = |s: &str| -> Vec<ActionKind> {
        planned.plan.servers[s]
            .actions
            .iter()
            .map(|a| a.kind())
            .collect()
    };
    assert_eq!(kinds(kept), [ActionKind::Noop]);
    assert_eq!(kinds(removed), [ActionKind::Forget]);
    // A server ovhform never managed is not in the plan at all.
    assert!(!planned.plan.servers.contains_key("ns5000003.ip-10-1-1.eu"));
    sim.shutdown().await;
}
