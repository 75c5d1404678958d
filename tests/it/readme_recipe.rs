//! README.md's "Plan against the simulator" recipe, run verbatim: its two shell blocks, each in
//! its own `bash` as in two terminals, from a copy of the files the recipe names, with
//! `ovhform` on PATH resolving to the binary under test. A recipe that drifts from the CLI fails
//! here instead of in a reader's terminal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TERMINAL_1: &str = "<!-- readme-recipe: sim-terminal-1";
const TERMINAL_2: &str = "<!-- readme-recipe: sim-terminal-2";

/// How long the simulator may take to write its env file (a debug build on a busy machine).
const STARTUP: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The body of the ```sh block right after the line starting with `marker`.
fn block(readme: &str, marker: &str) -> String {
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(marker));
    assert!(lines.next().is_some(), "README.md has no `{marker}` line");
    assert_eq!(
        lines.next().map(str::trim),
        Some("```sh"),
        "`{marker}` must be followed by a ```sh block"
    );
    let body: Vec<&str> = lines.take_while(|l| l.trim() != "```").collect();
    assert!(!body.is_empty(), "the block after `{marker}` is empty");
    body.join("\n") + "\n"
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// `bash -e -c block` as a terminal would run it: in `dir`, with an empty HOME (no developer's
/// ovh.conf), no inherited `OVH_*` variable, and the tested binary first on PATH.
fn terminal(block: &str, dir: &Path, home: &Path) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_ovhform"));
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(bin.parent().expect("binary directory").to_path_buf())
            .chain(std::env::split_paths(&inherited)),
    )
    .expect("PATH");
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-c", block])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("NO_COLOR", "1");
    cmd
}

/// Whether any process of the group is still alive (`kill -0` on the group).
fn group_alive(pgid: u32) -> bool {
    Command::new("bash")
        .args(["-c", &format!("kill -0 -- -{pgid} 2>/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("bash")
        .args(["-c", &format!("kill -{signal} -- -{pgid} 2>/dev/null")])
        .status();
}

/// Terminal 1: a process group of its own, so that stopping it stops the simulator whether
/// bash forked it or exec'd it, and whatever way the test ends (Drop runs on panics too).
struct Simulator {
    child: Child,
}

impl Simulator {
    /// SIGTERM (what `kill` sends; the simulator stops on it), then SIGKILL if the group is
    /// still there after a bounded wait. True when SIGTERM was enough.
    fn stop(&mut self) -> bool {
        let pgid = self.child.id();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let _ = self.child.try_wait();
            if !group_alive(pgid) {
                let _ = self.child.wait();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(pgid, "KILL");
        let _ = self.child.wait();
        false
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if group_alive(self.child.id()) {
            self.stop();
        }
    }
}

/// The value of `export NAME='value'` in an env file written by `ovhform sim`.
fn exported(env: &str, name: &str) -> String {
    let prefix = format!("export {name}='");
    let line = env
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in the env file:\n{env}"));
    line.strip_suffix('\'')
        .expect("single-quoted value")
        .to_string()
}

#[test]
fn plan_against_the_simulator_recipe_works_verbatim() {
    use std::os::unix::process::CommandExt;

    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let (first, second) = (block(&readme, TERMINAL_1), block(&readme, TERMINAL_2));

    let tmp = tempfile::tempdir().expect("tempdir");
    let (work, home) = (tmp.path().join("ovhform"), tmp.path().join("home"));
    std::fs::create_dir_all(&home).expect("home");
    copy_dir(&repo().join("manifests"), &work.join("manifests"));
    copy_dir(&repo().join("demo"), &work.join("demo"));

    let sim_out = tmp.path().join("terminal-1.out");
    let mut sim = Simulator {
        child: terminal(&first, &work, &home)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&sim_out).expect("sim stdout"))
            .stderr(Stdio::from(
                std::fs::File::create(tmp.path().join("terminal-1.err")).expect("sim stderr"),
            ))
            .process_group(0)
            .spawn()
            .expect("start terminal 1"),
    };
    let terminal_1 = || {
        let out = std::fs::read_to_string(&sim_out).unwrap_or_default();
        let err = std::fs::read_to_string(tmp.path().join("terminal-1.err")).unwrap_or_default();
        format!("terminal 1 stdout:\n{out}\nterminal 1 stderr:\n{err}")
    };

    // The env file is renamed into place complete, so its existence means it is ready.
    let env_file = work.join("sim.env");
    let deadline = Instant::now() + STARTUP;
    while !env_file.exists() {
        if let Ok(Some(status)) = sim.child.try_wait() {
            panic!(
                "the simulator exited ({status}) before writing sim.env\n{}",
                terminal_1()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no sim.env after {STARTUP:?}\n{}",
            terminal_1()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let env = std::fs::read_to_string(&env_file).expect("sim.env");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).expect("stat").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "sim.env must be private");
    let endpoint = exported(&env, "OVH_ENDPOINT");
    assert!(
        endpoint.starts_with("http://127.0.0.1:") && !endpoint.contains(":0/"),
        "the env file must name the port actually bound: {endpoint}"
    );

    let started = Instant::now();
    let plans = terminal(&second, &work, &home)
        .stdin(Stdio::null())
        .output()
        .expect("run terminal 2");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&plans.stdout),
        String::from_utf8_lossy(&plans.stderr),
    );
    assert!(
        plans.status.success(),
        "terminal 2 failed ({}) after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\n{}",
        plans.status,
        started.elapsed(),
        terminal_1()
    );

    assert!(
        sim.stop(),
        "the simulator did not stop on SIGTERM\n{}",
        terminal_1()
    );
    let shown = terminal_1();
    for secret in ["OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY"] {
        let value = exported(&env, secret);
        assert!(!shown.contains(&value), "{secret} printed by the simulator");
    }
    assert!(shown.contains("sim.env"), "{shown}");
    assert!(shown.contains("# 6 servers:"), "{shown}");
    assert!(shown.contains("ns3000030.ip-51-68-3.eu"), "{shown}");

    // Two plans: the whole fleet, then the --target one.
    let starts: Vec<usize> = stdout
        .match_indices("ovhform plan")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || stdout[..i].ends_with('\n'))
        .collect();
    assert_eq!(starts.len(), 2, "expected two plans:\n{stdout}");
    let (whole, targeted) = (&stdout[..starts[1]], &stdout[starts[1]..]);
    let section = |plan: &str, server: &str| -> String {
        let from = plan
            .find(&format!("  {server}\n"))
            .unwrap_or_else(|| panic!("{server} is not in the plan:\n{plan}"));
        plan[from..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (server, actions) in [
        ("ns3000001.ip-51-68-1.eu", &["adopt"][..]),
        ("ns3000002.ip-51-68-1.eu", &["reinstall"]),
        ("ns3000003.ip-51-68-1.eu", &["adopt", "update-settings"]),
        ("ns3000010.ip-51-68-2.eu", &["adopt"]),
        ("ns3000020.ip-51-68-3.eu", &["set-boot", "reboot"]),
    ] {
        let shown = section(whole, server);
        for action in actions {
            assert!(
                shown.contains(action),
                "{server}: no {action} in\n{shown}\n\nwhole plan:\n{whole}"
            );
        }
    }
    assert!(
        section(targeted, "ns3000002.ip-51-68-1.eu").contains("reinstall"),
        "{targeted}"
    );
    for other in ["ns3000001.ip-51-68-1.eu", "ns3000020.ip-51-68-3.eu"] {
        assert!(
            !targeted.contains(other),
            "--target leaked {other}:\n{targeted}"
        );
    }
}

/// README.md's "A 5-minute tour", run verbatim: the demo, then a simulator in terminal 1 and,
/// in terminal 2, import, a first manifest written by hand, validate, plan, apply and the
/// daemon's `/status`.
#[test]
fn the_tour_runs_verbatim() {
    use std::os::unix::process::CommandExt;

    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let demo = block(&readme, "<!-- readme-recipe: tour-demo");
    let first = block(&readme, "<!-- readme-recipe: tour-terminal-1");
    let second = block(&readme, "<!-- readme-recipe: tour-terminal-2");

    let tmp = tempfile::tempdir().expect("tempdir");
    let (work, home) = (tmp.path().join("ovhform"), tmp.path().join("home"));
    std::fs::create_dir_all(&home).expect("home");
    copy_dir(&repo().join("manifests"), &work.join("manifests"));
    copy_dir(&repo().join("demo"), &work.join("demo"));

    let shown = terminal(&demo, &work, &home)
        .stdin(Stdio::null())
        .output()
        .expect("run the demo");
    let demo_out = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{demo_out}");
    assert!(
        demo_out.contains("a second plan has no changes"),
        "{demo_out}"
    );

    let err_path = tmp.path().join("terminal-1.err");
    let mut sim = Simulator {
        child: terminal(&first, &work, &home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&err_path).expect("sim stderr"),
            ))
            .process_group(0)
            .spawn()
            .expect("start terminal 1"),
    };
    let env_file = work.join("tour.env");
    let deadline = Instant::now() + STARTUP;
    while !env_file.exists() {
        assert!(
            Instant::now() < deadline && sim.child.try_wait().ok().flatten().is_none(),
            "no tour.env: {}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = terminal(&second, &work, &home)
        .stdin(Stdio::null())
        .output()
        .expect("run terminal 2");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "terminal 2 failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(sim.stop(), "the simulator did not stop on SIGTERM");

    assert!(stdout.contains("Imported 1 servers"), "{stdout}");
    assert!(stdout.contains("Boot leases:"), "{stdout}");
    // The daemon's /status, the last thing printed: both servers synced, the lease running.
    let status = &stdout[stdout.rfind("{\"fleet\"").expect("the /status JSON")..];
    let doc: serde_json::Value = serde_json::from_str(status.trim()).expect("JSON");
    for server in ["ns3000010.ip-51-68-2.eu", "ns3000030.ip-51-68-3.eu"] {
        assert_eq!(doc["servers"][server]["state"], "synced", "{doc:#}");
    }
    assert!(
        doc["servers"]["ns3000010.ip-51-68-2.eu"]["bootLeaseEnds"].is_string(),
        "{doc:#}"
    );
}
