//! `ovhform state`: the way a person settles a store/tag dispute after review. The real binary
//! against the simulator: `state take-tag` reads the server's tags through the API and writes
//! the tag's record into the store; `state show` prints it.

use std::path::Path;
use std::process::Command;

use ovhform::model::{DEFAULT_FLEET, InstallRecord};
use ovhform::sim::SimConfig;
use ovhform::state::{FileStore, RecordStore, record_to_tags};

use crate::sim_support::start;

fn rec(fingerprint_char: char) -> InstallRecord {
    InstallRecord {
        server: "ns6000001.ip-10-2-1.eu".into(),
        fleet: DEFAULT_FLEET.into(),
        algorithm: 2,
        fingerprint: format!("sha256:{}", fingerprint_char.to_string().repeat(64)),
        os: "debian12_64".into(),
        generation: 1,
        revision: None,
        task_id: Some(5),
        started: None,
        finished: Some("2026-11-20T10:00:00Z".parse().unwrap()),
        secrets: None,
        request: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_take_tag_believes_the_tag_after_review() {
    let tagged = rec('a');
    let tags: Vec<String> = record_to_tags(&tagged)
        .unwrap()
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect();
    let fleet_yaml = format!(
        "servers:\n  - {{name: ns6000001.ip-10-2-1.eu, os: debian12_64, tags: {{{}}}}}\n",
        tags.join(", ")
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
    let home = tempfile::tempdir().unwrap();
    let state_dir = home.path().join("state");
    FileStore::open_locked(&state_dir)
        .unwrap()
        .put_install(&rec('b'))
        .await
        .unwrap();

    let creds = sim.credentials().clone();
    let base = sim.base_url();
    let (h, s) = (home.path().to_path_buf(), state_dir.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ovhform"))
            .args(["state", "take-tag", "ns6000001.ip-10-2-1.eu", "--state"])
            .arg(&s)
            .current_dir(&h)
            .env_clear()
            .env("HOME", &h)
            .env("OVH_ENDPOINT", base)
            .env("OVH_APPLICATION_KEY", &creds.application_key)
            .env("OVH_APPLICATION_SECRET", &creds.application_secret)
            .env("OVH_CONSUMER_KEY", &creds.consumer_key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the store now records"), "{stderr}");
    let stored = FileStore::open_read_only(&state_dir).load().await.unwrap();
    assert_eq!(stored.installs["ns6000001.ip-10-2-1.eu"], tagged);

    // `state show` prints it; a server with no tag record is an error, not a silent no-op.
    let shown = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["state", "show", "--state"])
        .arg(&state_dir)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains(&tagged.fingerprint));
    sim.shutdown().await;
}

fn intent(server: &str, state: ovhform::model::IntentState) -> ovhform::model::Intent {
    ovhform::model::Intent {
        id: format!("{server}@1764000000000"),
        server: server.into(),
        fleet: DEFAULT_FLEET.into(),
        fingerprint: format!("sha256:{}", "c".repeat(64)),
        request_digest: format!("sha256:{}", "d".repeat(64)),
        os: "debian12_64".into(),
        generation: 1,
        created: "2026-11-20T10:00:00Z".parse().unwrap(),
        plan_id: None,
        state,
    }
}

fn drop_intent(state_dir: &Path, servers: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["state", "drop-intent"])
        .args(servers)
        .arg("--state")
        .arg(state_dir)
        .env_clear()
        .output()
        .unwrap()
}

/// An unresolved intent stays until a person removes it with `state drop-intent`; one that
/// apply can still resolve (journaled, posted) cannot be removed by hand, and a request that
/// names one of those removes nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_drop_intent_removes_only_unresolved_intents() {
    use ovhform::model::IntentState;
    const A: &str = "ns6000001.ip-10-2-1.eu";
    const B: &str = "ns6000002.ip-10-2-1.eu";
    let home = tempfile::tempdir().unwrap();
    let state_dir = home.path().join("state");
    {
        let store = FileStore::open_locked(&state_dir).unwrap();
        store
            .put_intent(&intent(
                A,
                IntentState::Unresolved {
                    reason: "the history was purged".into(),
                },
            ))
            .await
            .unwrap();
        store
            .put_intent(&intent(B, IntentState::Journaled))
            .await
            .unwrap();
    }
    let servers_with_intents = || async {
        let mut s: Vec<String> = FileStore::open_read_only(&state_dir)
            .intents()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.server)
            .collect();
        s.sort();
        s
    };

    // B's intent is apply's to resolve; naming it refuses the whole request.
    let out = drop_intent(&state_dir, &[A, B]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not unresolved"), "{stderr}");
    assert!(stderr.contains("ovhform apply"), "{stderr}");
    assert_eq!(servers_with_intents().await, vec![A, B]);

    // A server without an intent is an error, not a silent no-op.
    let out = drop_intent(&state_dir, &["ns6000009.ip-10-2-1.eu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no intent in the journal"));

    let out = drop_intent(&state_dir, &[A]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("removed the unresolved intent"), "{stderr}");
    assert!(stderr.contains("ovhform plan"), "{stderr}");
    assert_eq!(servers_with_intents().await, vec![B]);
}

/// `ovhform state fleet-secret --state STATE --fleet prod ARGS` with `stdin` piped in.
pub(crate) fn fleet_secret_cmd(state: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["state", "fleet-secret", "--state", state, "--fleet", "prod"])
        .args(args)
        .env_remove("OVHFORM_SECRET_KEY")
        .env_remove("OVHFORM_STATE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `state fleet-secret` stores the secret (trimmed, owner-only) without showing it, refuses
/// to replace one without `--replace`, and refuses an empty one.
#[test]
fn state_fleet_secret_stores_a_directorys_key_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_s = state.to_str().unwrap();
    let secret = "c0ffee-fleet-secret-NEVER-SHOWN";
    let out = fleet_secret_cmd(state_s, &["--stdin"], &format!("{secret}\n"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("not shown") && !text.contains(secret),
        "{text}"
    );
    let key = state.join("fleet.key");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    // An existing secret stays unless --replace.
    let out = fleet_secret_cmd(state_s, &["--stdin"], "another");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already has a secret") && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret);
    let out = fleet_secret_cmd(state_s, &["--generate", "--replace"], "");
    assert!(out.status.success());
    let generated = std::fs::read_to_string(&key).unwrap();
    assert_eq!(generated.len(), 64, "32 bytes, hex");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&generated));
    // Empty: refused.
    let out = fleet_secret_cmd(state_s, &["--stdin", "--replace"], "  \n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), generated);
}
