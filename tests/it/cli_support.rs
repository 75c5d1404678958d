//! Shared helpers of the tests that run the real `ovhform` binary against an in-process
//! simulator of the demo fleet (`apply_cli`, `kill`): the simulator, a working directory with
//! its own HOME and state directory, a finished run, the example manifests, call counts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ovhform::sim::{self, SimConfig, SimHandle};

use crate::sim_support::start;

pub const REINSTALL: &str = "POST /dedicated/server/{serviceName}/reinstall";
pub const WEB1: &str = "ns3000001.ip-51-68-1.eu";
pub const WEB2: &str = "ns3000002.ip-51-68-1.eu";
pub const WEB3: &str = "ns3000003.ip-51-68-1.eu";
pub const NETBOOT: &str = "ns3000020.ip-51-68-3.eu";
pub const RESCUE: &str = "ns3000030.ip-51-68-3.eu";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo fleet; `speed` 1000 makes a 15-minute installation last about a second.
pub async fn demo_sim(speed: f64) -> SimHandle {
    demo_sim_with(speed, |_| {}).await
}

/// The demo fleet with `tweak` applied to the simulator's configuration.
pub async fn demo_sim_with(speed: f64, tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let text = std::fs::read_to_string(repo().join("demo/fleet.yaml")).expect("demo fleet");
    let fleet = sim::fleet::parse(
        &text,
        Path::new("demo/fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("demo fleet parses");
    let mut config = SimConfig {
        fleet,
        speed,
        ..SimConfig::for_tests()
    };
    tweak(&mut config);
    start(config).await
}

/// A working directory with its own HOME (no developer's ovh.conf) and state directory.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// `ovhform <args>` against `sim`, stdin closed (no terminal), NO_COLOR.
    pub fn command(&self, sim: &SimHandle, args: &[&str]) -> Command {
        let creds = sim.credentials();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
        cmd.args(args)
            .arg("--state")
            .arg(self.state())
            .current_dir(self.path())
            .stdin(Stdio::null())
            .env_clear()
            .env("HOME", self.path())
            .env("NO_COLOR", "1")
            .env("OVHFORM_TIME_SCALE", "1000")
            .env("OVHFORM_POLL_MS", "50")
            .env("OVH_ENDPOINT", sim.base_url())
            .env("OVH_APPLICATION_KEY", &creds.application_key)
            .env("OVH_APPLICATION_SECRET", &creds.application_secret)
            .env("OVH_CONSUMER_KEY", &creds.consumer_key);
        cmd
    }

    pub async fn run(&self, sim: &SimHandle, args: &[&str]) -> Run {
        let mut cmd = self.command(sim, args);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run ovhform"))
            .await
            .expect("ovhform task");
        Run::from(out)
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn manifests() -> String {
    repo().join("manifests").display().to_string()
}

pub fn reinstalls(sim: &SimHandle) -> u64 {
    sim.calls().get(REINSTALL).copied().unwrap_or(0)
}

/// Requests that change something (anything but GET): none may happen before approval.
pub fn writes(sim: &SimHandle) -> u64 {
    sim.calls()
        .iter()
        .filter(|(route, _)| !route.starts_with("GET "))
        .map(|(_, n)| n)
        .sum()
}

/// The example fleet's web servers are bound by weekday-night windows: ignore them for all.
pub const IGNORE_WEB_WINDOWS: [&str; 6] = [
    "--ignore-maintenance-window",
    WEB1,
    "--ignore-maintenance-window",
    WEB2,
    "--ignore-maintenance-window",
    WEB3,
];

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
