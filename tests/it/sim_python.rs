//! Conformance with the official python-ovh client: `tests/python/conformance.py` drives an
//! in-process simulator (signatures, PUT semantics, reinstall, task and install/status polling,
//! reboot, IAM tags, and the real auth errors as python-ovh's exception types).

use std::process::Command;

use ovhform::sim::SimConfig;

use super::sim_support::{self, HYBRID};

/// The interpreter with `ovh` installed. Never skipped silently: the suite must prove this.
fn python() -> String {
    let hint = "run scripts/test.sh (it creates a venv with the pinned python-ovh and exports OVHFORM_TEST_PYTHON)";
    let py = std::env::var("OVHFORM_TEST_PYTHON")
        .unwrap_or_else(|_| panic!("OVHFORM_TEST_PYTHON is not set: {hint}"));
    let ok = Command::new(&py)
        .args(["-c", "import ovh"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "`{py} -c 'import ovh'` failed: {hint}");
    py
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_conforms() {
    let py = python();
    let sim = sim_support::start(SimConfig {
        fleet: sim_support::fleet(),
        ..SimConfig::for_tests()
    })
    .await;
    let creds = sim.credentials();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/conformance.py");
    let (endpoint, root) = (sim.base_url(), sim.root_url());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .env("SIM_ENDPOINT", endpoint)
            .env("SIM_ROOT", root)
            .env("SIM_AK", creds.application_key)
            .env("SIM_AS", creds.application_secret)
            .env("SIM_CK", creds.consumer_key)
            .env("SIM_SERVER", HYBRID)
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "conformance.py failed:\n{stderr}\n{stdout}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary JSON");
    assert_eq!(
        summary["statuses"],
        serde_json::json!(["init", "todo", "doing", "done"])
    );
    assert_eq!(summary["tampered"], "BadParametersError");
    assert_eq!(summary["wrong_consumer_key"], "InvalidCredential");
    assert!(summary["steps_done_seen"].as_u64().unwrap() > 0);
    // The kept NVMe group survived, the OS group holds the new OS.
    let srv = sim.server(HYBRID).unwrap();
    assert_eq!(srv.disk_groups[1].content.as_deref(), Some("postgres data"));
    assert!(
        srv.disk_groups[0]
            .content
            .as_deref()
            .unwrap()
            .starts_with("os:debian12_64:task")
    );
    sim.shutdown().await;
}
