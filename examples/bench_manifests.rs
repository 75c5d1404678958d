//! Benchmark: generate N server manifests (default 10,000) in a temporary directory, then load
//! and validate them with `ovhform::manifest::load`, and report the time.
//!
//! `cargo run --release --example bench_manifests [-- N [RUNS]]`
//!
//! The fleet is realistic: 10 files of N/10 servers each would be unusual, so every server
//! gets its own file (the worst case for I/O), a customized install with a storage layout,
//! and the servers are split over 10 ServerGroups whose templates share a post-install script.

use std::path::Path;
use std::time::Instant;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNtXYuPwxcCK174vy6JaPpL0xp7VdERNtnmwx6DVvx0 ops@example";

fn generate(dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("servers"))?;
    std::fs::create_dir_all(dir.join("scripts"))?;
    std::fs::write(
        dir.join("scripts/bootstrap.sh"),
        "#!/bin/sh\napt-get update\n",
    )?;
    std::fs::write(
        dir.join("windows.yaml"),
        "apiVersion: ovhform/v1\nkind: MaintenanceWindow\nmetadata: {name: nights}\nspec: {schedule: \"0 2 * * *\", duration: 3h, timeZone: Europe/Paris}\n",
    )?;
    for g in 0..10 {
        std::fs::write(
            dir.join(format!("group-{g}.yaml")),
            format!(
                "apiVersion: ovhform/v1\nkind: ServerGroup\nmetadata: {{name: tier-{g}}}\nspec:\n  selector:\n    matchLabels: {{tier: \"t{g}\"}}\n  maxConcurrentReinstalls: 5\n  template:\n    install:\n      os: debian12_64\n      customizations:\n        sshKey: \"{KEY}\"\n        postInstallationScript: {{file: scripts/bootstrap.sh}}\n    boot: {{mode: disk}}\n    policy:\n      maintenanceWindow: nights\n"
            ),
        )?;
    }
    for i in 0..n {
        let name = format!("ns{}.ip-51-68-{}.eu", 4_000_000 + i, i % 250);
        std::fs::write(
            dir.join(format!("servers/{name}.yaml")),
            format!(
                "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: {name}\n  labels: {{tier: \"t{}\", env: prod}}\nspec:\n  install:\n    customizations:\n      hostname: host-{i}\n    storage:\n      diskGroupId: 1\n      partitioning:\n        layout:\n          - {{mountPoint: /boot, fileSystem: ext4, size: 1GiB}}\n          - {{mountPoint: swap, fileSystem: swap, size: 4GiB}}\n          - {{mountPoint: /, fileSystem: ext4, raidLevel: 1, size: 0}}\n      keepDiskGroups: [2]\n    generation: 1\n  settings:\n    monitoring: true\n",
                i % 10
            ),
        )?;
    }
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("temporary directory");
    if let Ok(keep) = std::env::var("BENCH_KEEP_DIR") {
        generate(std::path::Path::new(&keep), n).expect("generate");
    }
    let t = Instant::now();
    generate(dir.path(), n).expect("generate manifests");
    println!(
        "generated {n} server manifests in {:.2?} under {}",
        t.elapsed(),
        dir.path().display()
    );
    let mut times = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        let loaded = match ovhform::manifest::load(&[dir.path().to_path_buf()]) {
            Ok(l) => l,
            Err(d) => {
                eprintln!("{}", d.render(false));
                std::process::exit(1);
            }
        };
        let took = t.elapsed();
        assert_eq!(loaded.desired.servers.len(), n);
        println!("run {run}: loaded and validated {n} servers in {took:.3?}");
        times.push(took);
    }
    times.sort();
    println!(
        "min {:.3?}  median {:.3?}  max {:.3?}  (threads available: {})",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
}
