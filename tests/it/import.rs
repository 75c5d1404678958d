//! Issue 11, `ovhform import`: a simulated fleet of 50 varied servers (UEFI and legacy, rescue,
//! network and iPXE boots, hybrid disk groups, odd settings) imported by the real binary;
//! `plan` over the imported manifests reports zero reinstalls and zero boot/settings changes,
//! and `apply` only adopts.

use std::path::Path;
use std::process::{Command, Stdio};

use ovhform::sim::{self, SimConfig, SimHandle};

use crate::cli_support::{Run, Workdir};

const IPXE: &str = "#!ipxe\ndhcp\nchain http://boot.example/fleet.ipxe\n";

/// `ovhform <args>` against `sim` in `dir` (no state flag: import takes none).
fn ovhform(dir: &Path, sim: &SimHandle, args: &[&str]) -> Run {
    let creds = sim.credentials();
    let out = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_clear()
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("OVH_ENDPOINT", sim.base_url())
        .env("OVH_APPLICATION_KEY", &creds.application_key)
        .env("OVH_APPLICATION_SECRET", &creds.application_secret)
        .env("OVH_CONSUMER_KEY", &creds.consumer_key)
        .output()
        .expect("run ovhform");
    Run::from(out)
}

/// 50 generated servers, bent so every kind of boot and setting import must carry is there.
async fn varied_fleet() -> SimHandle {
    let config = SimConfig {
        ..SimConfig::for_tests().with_generated_fleet(50, 7)
    };
    let sim = crate::sim_support::start(config).await;
    let names: Vec<String> = sim.world().servers.keys().cloned().collect();
    for (i, name) in names.iter().enumerate() {
        sim.update_server(name, |s| {
            let of = |ty: &str, kernel: &str| {
                s.boots
                    .iter()
                    .find(|b| b.boot_type == ty && b.kernel == kernel)
                    .map(|b| b.id)
            };
            match i % 10 {
                1 => s.boot_id = of("rescue", "rescue-customer"),
                2 => s.boot_id = of("rescue", "rescue12-customer"),
                3 => s.boot_id = of("network", "ipxe-shell"),
                4 => {
                    s.boot_id = None;
                    s.boot_script = Some(IPXE.into());
                }
                _ => {}
            }
            if i % 3 == 0 {
                s.efi_bootloader_path = Some("\\efi\\debian\\grubx64.efi".into());
            }
            if i % 4 == 0 {
                s.no_intervention = true;
                s.rescue_mail = Some("ops@example.com".into());
            }
            if i % 7 == 0 {
                // A hostile value must come through as data, not YAML.
                s.root_device = Some("/dev/sda\"\n  evil: true".into());
            }
        });
    }
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_fleet_plans_only_adoptions_and_apply_only_adopts() {
    let sim = varied_fleet().await;
    {
        let w = sim.world();
        let servers: Vec<&sim::Server> = w.servers.values().collect();
        assert_eq!(servers.len(), 50);
        assert!(servers.iter().any(|s| s.hardware.boot_mode == "legacy"));
        assert!(servers.iter().any(|s| s.hardware.boot_mode == "uefi"));
        assert!(servers.iter().any(|s| s.disk_groups.len() == 2), "hybrid");
    }
    let work = Workdir::new();
    let dir = work.path();
    let out = tokio::task::block_in_place(|| {
        ovhform(dir, &sim, &["import", "--all", "--out", "imported"])
    });
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Imported 50 servers"), "{out}");
    assert!(out.stdout.contains("ServerGroup"), "{out}");
    assert!(out.stdout.contains("placeholders"), "{out}");
    let calls: u64 = out
        .stdout
        .split(" API calls")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("call count in {out}"));
    assert_eq!(
        calls,
        sim.total_calls(),
        "the count shown is the count made"
    );
    // The expanded listing, then one read per distinct boot in use (rescue, network kernels
    // by region): nothing per server.
    assert!(calls <= 16, "{calls} calls for 50 servers");
    let imported = dir.join("imported");
    // iPXE scripts in their own files, byte-exact; boots by kernel, never by id.
    let scripts: Vec<_> = std::fs::read_dir(imported.join("ipxe")).unwrap().collect();
    assert_eq!(scripts.len(), 5);
    for s in scripts {
        assert_eq!(std::fs::read_to_string(s.unwrap().path()).unwrap(), IPXE);
    }
    let mut all = String::new();
    for entry in walk(&imported) {
        all.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    assert!(!all.contains("bootId"), "no region-specific ids");
    assert!(all.contains("rescue: rescue12-customer"));
    assert!(all.contains("network: ipxe-shell"));
    assert!(!all.contains("\n  evil: true"), "hostile value escaped");

    // plan: adoptions only — zero reinstalls, zero boot or settings changes.
    sim.reset_calls();
    let plan = tokio::task::block_in_place(|| {
        work.command(
            &sim,
            &["plan", "--manifests", "imported", "--format", "json"],
        )
        .output()
        .unwrap()
    });
    let plan = Run::from(plan);
    assert_eq!(plan.code, Some(0), "{plan}");
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for sp in json["servers"].as_object().unwrap().values() {
        for a in sp["actions"].as_array().unwrap() {
            *kinds
                .entry(a["type"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        assert!(
            sp["drift"].as_array().is_none_or(|d| d.is_empty()),
            "{sp:#}"
        );
    }
    assert_eq!(
        kinds,
        [("adopt".to_string(), 50)].into_iter().collect(),
        "{}",
        plan.stdout
    );

    // apply: only adopts — no write to any server (the record's tag mirror aside).
    let applied = work
        .run(
            &sim,
            &["apply", "--manifests", "imported", "--auto-approve"],
        )
        .await;
    assert_eq!(applied.code, Some(0), "{applied}");
    let writes: Vec<String> = sim
        .calls()
        .into_iter()
        .filter(|(route, _)| !route.starts_with("GET ") && !route.contains("/v2/iam/"))
        .map(|(route, n)| format!("{route}: {n}"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}\n{applied}");
    // And after the apply, nothing is left to do.
    let again = work
        .run(
            &sim,
            &["plan", "--manifests", "imported", "--detailed-exitcode"],
        )
        .await;
    assert_eq!(again.code, Some(0), "{again}");
}

/// Import refuses to overwrite and names what it would have overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_never_overwrites_without_force() {
    let sim = varied_fleet().await;
    let work = Workdir::new();
    let dir = work.path();
    let first = tokio::task::block_in_place(|| {
        ovhform(
            dir,
            &sim,
            &["import", "--servers", "ns3000001.ip-51-68-1.eu"],
        )
    });
    assert_eq!(first.code, Some(0), "{first}");
    let again = tokio::task::block_in_place(|| {
        ovhform(
            dir,
            &sim,
            &["import", "--servers", "ns3000001.ip-51-68-1.eu"],
        )
    });
    assert_eq!(again.code, Some(1), "{again}");
    assert!(again.stderr.contains("already exist"), "{again}");
    assert!(again.stderr.contains("--force"), "{again}");
    let forced = tokio::task::block_in_place(|| {
        ovhform(
            dir,
            &sim,
            &["import", "--servers", "ns3000001.ip-51-68-1.eu", "--force"],
        )
    });
    assert_eq!(forced.code, Some(0), "{forced}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
