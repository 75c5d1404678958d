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
