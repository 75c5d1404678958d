//! A generated fleet shared by the benchmark examples: `n` servers running `live_os` in the
//! simulator, and one manifest each asking for Debian 12 (plus `extra_spec` lines), written to
//! a temporary directory and loaded as the desired state.

use std::path::Path;

use ovhform::model::Desired;
use ovhform::sim;

pub fn generate(
    n: usize,
    first: usize,
    live_os: &str,
    extra_spec: &str,
) -> (tempfile::TempDir, Desired, Vec<sim::Server>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet_yaml = String::from("servers:\n");
    let mut manifests = String::new();
    for i in 0..n {
        let name = format!(
            "ns{:07}.ip-10-{}-{}.eu",
            first + i,
            first / 1_000_000,
            i % 200
        );
        fleet_yaml.push_str(&format!(
            "  - {{name: {name}, os: {live_os}, monitoring: true}}\n"
        ));
        manifests.push_str(&format!(
            "---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  install:\n    os: debian12_64\n    customizations: {{hostname: node-{i}}}\n{extra_spec}"
        ));
    }
    std::fs::write(dir.path().join("fleet.yaml"), &manifests).expect("write");
    let desired = ovhform::manifest::load(&[dir.path().join("fleet.yaml")])
        .expect("manifests")
        .desired;
    let fleet = sim::fleet::parse(
        &fleet_yaml,
        Path::new("fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("fleet");
    (dir, desired, fleet)
}
