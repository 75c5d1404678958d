//! Issue 11, "OVH's own tags select servers": a ServerGroup `selector.matchTags` takes its
//! members from the servers' IAM tags (set in the OVH console), read from the listing every
//! plan makes. The real binary against a simulated fleet: tagged servers are planned from the
//! group's template (adopted when they run its OS), untagged ones are not planned, and a wipe
//! of a server selected by tags is never automatic, whatever the policy.

use std::path::Path;

use ovhform::sim::{self, SimConfig};

use crate::cli_support::Workdir;

const FLEET: &str = r#"
servers:
  - name: ns3000101.ip-51-68-1.eu
    os: debian12_64
    tags: {role: batch, env: prod}
  - name: ns3000102.ip-51-68-1.eu
    os: debian11_64
    tags: {role: batch}
  - name: ns3000103.ip-51-68-1.eu
    os: debian12_64
    tags: {role: web}
"#;

const GROUP: &str = r#"
apiVersion: ovhform/v1
kind: ServerGroup
metadata:
  name: batch
spec:
  selector:
    matchTags: {role: batch}
  template:
    install:
      os: debian12_64
    policy:
      reinstall: auto
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_tags_select_a_groups_servers_and_never_decide_a_wipe_alone() {
    let fleet = sim::fleet::parse(FLEET, Path::new("fleet.yaml"), &sim::catalog::catalogue())
        .expect("fleet");
    let sim = crate::sim_support::start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await;
    let work = Workdir::new();
    std::fs::create_dir_all(work.path().join("m")).unwrap();
    std::fs::write(work.path().join("m/batch.yaml"), GROUP).unwrap();
    let out = work
        .run(&sim, &["plan", "--manifests", "m", "--format", "json"])
        .await;
    // Exit 0: a plan without errors (the wipe waits for a person).
    assert_eq!(out.code, Some(0), "{out}");
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let servers = plan["servers"].as_object().unwrap();
    let names: Vec<&String> = servers.keys().collect();
    assert_eq!(
        names,
        ["ns3000101.ip-51-68-1.eu", "ns3000102.ip-51-68-1.eu"],
        "only the servers tagged role=batch"
    );
    let first = &servers["ns3000101.ip-51-68-1.eu"]["actions"][0];
    assert_eq!(first["type"], "adopt", "{first:#}");
    // Debian 11 → 12 under policy auto: still needs --allow-wipe, and says why.
    let wipe = servers["ns3000102.ip-51-68-1.eu"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "reinstall")
        .unwrap_or_else(|| panic!("{out}"));
    let approval = wipe["approval"].to_string();
    assert!(approval.contains("allow"), "{approval}");
    assert!(approval.contains("IAM tags"), "{approval}");

    // The daemon's approval rule agrees: nothing automatic.
    let text = work.run(&sim, &["plan", "--manifests", "m"]).await;
    assert!(text.stdout.contains("never automatic"), "{}", text.stdout);
    assert_eq!(crate::cli_support::reinstalls(&sim), 0);
}

#[test]
fn a_match_tags_group_loads_with_its_prototype() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("batch.yaml"), GROUP).unwrap();
    let loaded = ovhform::manifest::load(&[dir.path().to_path_buf()]).expect("valid");
    let d = loaded.desired;
    assert!(d.servers.is_empty(), "{:?}", d.servers.keys());
    let sel = &d.tag_selectors["batch"];
    assert_eq!(
        sel.match_tags.get("role").map(String::as_str),
        Some("batch")
    );
    assert_eq!(
        sel.prototype.install.as_ref().map(|i| i.os.as_str()),
        Some("debian12_64")
    );
    // Expanded: a copy per matching server, never over a server's own manifest.
    let mut d2 = d.clone();
    let tags = [("a.eu", [("role", "batch")]), ("b.eu", [("role", "web")])]
        .into_iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                t.into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(d2.select_by_tags(&tags), ["a.eu"]);
    assert_eq!(
        d2.servers["a.eu"].selected_by_tags.as_deref(),
        Some("batch")
    );
    assert!(d2.groups["batch"].members.contains("a.eu"));
}
