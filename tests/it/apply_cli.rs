//! `ovhform apply` end to end: the real binary against an in-process simulator on a fast clock
//! (`speed: 1000`, polls every 50 ms through the `OVHFORM_POLL_MS` test hook). The example
//! fleet converges and plans again to nothing; confirmation, approvals, policy `never` and
//! maintenance windows hold; a saved plan runs exactly its actions, refuses a server whose
//! manifest changed and skips one that moved behind it; a failure says where and whose side it
//! is; a timeout is "stopped waiting", never "failed"; a second apply names the lock holder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovhform::sim::SimHandle;
use serde_json::json;

use crate::cli_support::{
    IGNORE_WEB_WINDOWS, NETBOOT, RESCUE, Run, WEB1, WEB2, WEB3, Workdir, copy_dir, demo_sim,
    manifests, reinstalls, repo, writes,
};
use crate::sim_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_the_example_fleet_converges_and_a_second_plan_has_no_changes() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let mut args = vec![
        "apply",
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe-all",
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    let run = work.run(&sim, &args).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(reinstalls(&sim), 1, "{run}");
    // The plan is shown before it runs, then how every server ended.
    assert!(run.stdout.contains("WIPE"), "{run}");
    assert!(run.stdout.contains("Apply complete:"), "{run}");
    for s in [WEB1, WEB2, WEB3, NETBOOT] {
        assert!(
            run.stdout.contains(&format!("converged: {s}")),
            "{s} converged\n{run}"
        );
    }
    // Without a terminal: plain progress lines, the installation step by step.
    assert!(
        run.stderr.contains(&format!("{WEB2}: installation task")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!("{WEB2}: step ")) && run.stderr.contains("/21 "),
        "{run}"
    );
    assert!(
        !run.stdout.contains("Apply with:"),
        "no hint inside apply\n{run}"
    );
    // No credential reaches the output.
    let creds = sim.credentials();
    for secret in [&creds.application_secret, &creds.consumer_key] {
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
    }

    let again = work
        .run(&sim, &["plan", "--manifests", &m, "--detailed-exitcode"])
        .await;
    assert_eq!(again.code, Some(0), "the second plan is all noop\n{again}");
    // And apply itself says there is nothing to do.
    let nothing = work.run(&sim, &["apply", "--manifests", &m]).await;
    assert_eq!(nothing.code, Some(0), "{nothing}");
    assert!(nothing.stdout.contains("No changes"), "{nothing}");
    assert_eq!(reinstalls(&sim), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_or_auto_approve_apply_refuses_and_changes_nothing() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let run = work
        .run(&sim, &["apply", "--manifests", &m, "--allow-wipe-all"])
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("--auto-approve"), "{run}");
    assert!(run.stderr.contains("interactively"), "{run}");
    // The plan was shown, then nothing was written.
    assert!(run.stdout.contains(WEB2), "{run}");
    assert_eq!(writes(&sim), 0, "{:?}", sim.calls());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_without_allow_wipe_does_not_happen() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let mut args = vec![
        "apply",
        "--manifests",
        &m,
        "--auto-approve",
        "--log-format",
        "json",
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    let run = work.run(&sim, &args).await;
    // Pending approval is what the plan showed: not an error.
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(reinstalls(&sim), 0, "{run}");
    // --log-format json: the progress is structured events on stderr, one JSON object a line.
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["fields"]["server"] == WEB2 && e["fields"]["outcome"] == "pending-approval"),
        "{run}"
    );
    assert!(run.stdout.contains("1 pending approval"), "{run}");
    assert!(
        run.stdout
            .contains(&format!("To wipe them, add: --allow-wipe {WEB2}")),
        "the exact flag to add\n{run}"
    );
    // The rest of the fleet was applied.
    assert!(run.stdout.contains(&format!("converged: {WEB3}")), "{run}");
    assert!(
        run.stdout.contains(&format!("converged: {NETBOOT}")),
        "{run}"
    );
    sim.shutdown().await;
}

/// Manifests for one server of the demo fleet (`ns3000002`, on Debian 11) that want Debian 12,
/// with the given policy lines, plus two windows: `closed` (it opens 12 hours from now, for
/// one hour) and `open` (it opened at the start of this hour, for two hours).
fn one_server_manifests(dir: &Path, policy: &str) -> String {
    let hour = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .hour();
    let closed_hour = (hour + 12) % 24;
    let window = |name: &str, hour: i8, duration: &str| {
        format!(
            "apiVersion: ovhform/v1\nkind: MaintenanceWindow\nmetadata: {{name: {name}}}\nspec:\n  schedule: \"0 {hour} * * *\"\n  duration: {duration}\n  timeZone: UTC\n---\n"
        )
    };
    std::fs::create_dir_all(dir).expect("manifest dir");
    std::fs::write(
        dir.join("servers.yaml"),
        format!(
            "{}{}apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {WEB2}}}\nspec:\n  install:\n    os: debian12_64\n    customizations: {{hostname: web-02}}\n  policy:\n{policy}",
            window("closed", closed_hour, "1h"),
            window("open", hour, "2h"),
        ),
    )
    .expect("write manifests");
    dir.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_never_blocks_whatever_the_flags() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = one_server_manifests(&work.path().join("m"), "    reinstall: never\n");
    let run = work
        .run(
            &sim,
            &[
                "apply",
                "--manifests",
                &m,
                "--auto-approve",
                "--allow-wipe-all",
                "--replace",
                WEB2,
                "--ignore-maintenance-window",
                WEB2,
            ],
        )
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("reinstall-never"), "{run}");
    assert!(run.stderr.contains("error finding"), "{run}");
    assert_eq!(reinstalls(&sim), 0);
    assert_eq!(writes(&sim), 0, "{:?}", sim.calls());
    // A plan that cannot be applied suggests no apply command, in no form.
    let out = work.path().join("never.json");
    let o = out.display().to_string();
    let plan = work
        .run(
            &sim,
            &["plan", "--manifests", &m, "--format", "json", "--out", &o],
        )
        .await;
    assert_eq!(plan.code, Some(1), "{plan}");
    let saved = std::fs::read_to_string(&out).expect("saved plan");
    assert!(
        !plan.stdout.contains("apply_command") && !saved.contains("apply_command"),
        "{plan}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_window_a_wipe_waits_unless_the_window_is_ignored() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = one_server_manifests(
        &work.path().join("m"),
        "    reinstall: manual\n    maintenanceWindow: closed\n",
    );
    let base = [
        "apply",
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe",
        WEB2,
    ];
    let run = work.run(&sim, &base).await;
    // Blocked as the plan showed: exit 0, no reinstall.
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(reinstalls(&sim), 0, "{run}");
    assert!(run.stdout.contains("Deferred until"), "{run}");
    assert!(run.stdout.contains("1 blocked"), "{run}");
    assert!(
        run.stdout.contains("outside maintenance window closed"),
        "{run}"
    );

    let mut ignored = base.to_vec();
    ignored.extend(["--ignore-maintenance-window", WEB2]);
    let run = work.run(&sim, &ignored).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(reinstalls(&sim), 1, "{run}");
    assert!(run.stdout.contains(&format!("converged: {WEB2}")), "{run}");
    assert!(
        run.stdout.contains("outside their maintenance window"),
        "the override is said before it runs\n{run}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_wipe_whose_window_is_closed_at_apply_time_waits() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let dir = work.path().join("m");
    let m = one_server_manifests(&dir, "    reinstall: manual\n    maintenanceWindow: open\n");
    let saved = save_plan(&work, &sim, &m).await;
    let file = saved.display().to_string();
    // After the review the server is bound to a window that is closed now (a saved plan
    // applied after its window closed looks the same to apply).
    let path = dir.join("servers.yaml");
    let text = std::fs::read_to_string(&path).expect("manifests");
    std::fs::write(
        &path,
        text.replace("maintenanceWindow: open", "maintenanceWindow: closed"),
    )
    .expect("write");
    let base = [
        "apply",
        &file,
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe",
        WEB2,
    ];
    let run = work.run(&sim, &base).await;
    assert_eq!(run.code, Some(1), "not what the plan showed\n{run}");
    assert_eq!(reinstalls(&sim), 0, "{run}");
    assert!(
        run.stdout.contains("outside maintenance window closed"),
        "{run}"
    );
    assert!(run.stdout.contains("its window is closed now"), "{run}");
    let mut ignored = base.to_vec();
    ignored.extend(["--ignore-maintenance-window", WEB2]);
    let run = work.run(&sim, &ignored).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(reinstalls(&sim), 1, "{run}");
    sim.shutdown().await;
}

/// Saves a plan of the example manifests (`manifests`: where they are read from).
async fn save_plan(work: &Workdir, sim: &SimHandle, manifests: &str) -> PathBuf {
    let out = work.path().join("plan.json");
    let o = out.display().to_string();
    let run = work
        .run(sim, &["plan", "--manifests", manifests, "--out", &o])
        .await;
    assert_eq!(run.code, Some(0), "{run}");
    // The hint is the exact command, naming the file (and the manifests, not the default).
    assert!(
        run.stdout.contains(&format!(
            "Apply with: ovhform apply {o} --manifests {manifests}"
        )),
        "{run}"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_applies_exactly_its_actions() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let saved = save_plan(&work, &sim, &m).await;
    let file = saved.display().to_string();
    // After the review, the rescue box (noop in the plan) has its monitoring switched on by
    // hand: a fresh plan would turn it off again; the saved plan must not touch it.
    sim.update_server(RESCUE, |s| s.monitoring = true);
    let mut args = vec![
        "apply",
        &file,
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe",
        WEB2,
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    let run = work.run(&sim, &args).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("saved plan"), "{run}");
    assert_eq!(reinstalls(&sim), 1, "{run}");
    assert!(run.stdout.contains(&format!("converged: {WEB3}")), "{run}");
    assert!(
        sim.server(WEB3).expect("web-03").monitoring,
        "web-03 applied"
    );
    assert!(
        sim.server(RESCUE).expect("rescue").monitoring,
        "a server the saved plan left alone is untouched"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_refuses_what_would_change_it() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let saved = save_plan(&work, &sim, &m).await;
    let file = saved.display().to_string();
    for (flag, value) in [("--replace", WEB1), ("--target", WEB1), ("--refresh", "")] {
        let mut args = vec!["apply", &file, "--auto-approve", flag];
        if !value.is_empty() {
            args.push(value);
        }
        let run = work.run(&sim, &args).await;
        assert_eq!(run.code, Some(1), "{run}");
        assert!(
            run.stderr.contains("the plan is what was reviewed"),
            "{run}"
        );
    }
    // Another fleet's plan.
    let run = work
        .run(
            &sim,
            &["apply", &file, "--auto-approve", "--fleet", "other"],
        )
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("for fleet default"), "{run}");
    // Garbage, and a plan of another format version.
    let garbage = work.path().join("garbage.json");
    std::fs::write(&garbage, "not a plan\x1b[2J").expect("write");
    let g = garbage.display().to_string();
    let run = work.run(&sim, &["apply", &g, "--auto-approve"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("not a plan this ovhform can apply"),
        "{run}"
    );
    let text = std::fs::read_to_string(&saved).expect("saved plan");
    let old = work.path().join("old.json");
    std::fs::write(
        &old,
        text.replacen("\"format_version\": 3", "\"format_version\": 1", 1),
    )
    .expect("write");
    let o = old.display().to_string();
    let run = work.run(&sim, &["apply", &o, "--auto-approve"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("format_version"), "{run}");
    assert_eq!(writes(&sim), 0, "{:?}", sim.calls());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_whose_manifest_changed_refuses_that_server_and_applies_the_rest() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let dir = work.path().join("manifests-copy");
    copy_dir(&repo().join("manifests"), &dir);
    let m = dir.display().to_string();
    let saved = save_plan(&work, &sim, &m).await;
    let file = saved.display().to_string();
    // After the review, web-02's hostname changes in the manifests.
    let web = dir.join("servers/web.yaml");
    let text = std::fs::read_to_string(&web).expect("web.yaml");
    std::fs::write(
        &web,
        text.replace("hostname: web-02", "hostname: web-02-renamed"),
    )
    .expect("write");
    let mut args = vec![
        "apply",
        &file,
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe-all",
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    let run = work.run(&sim, &args).await;
    assert_eq!(
        run.code,
        Some(1),
        "a refused server is work not done\n{run}"
    );
    assert_eq!(reinstalls(&sim), 0, "{run}");
    assert!(
        run.stdout
            .contains(&format!("skipped: {WEB2}: manifest changed since the plan")),
        "{run}"
    );
    assert!(run.stdout.contains(&format!("converged: {WEB1}")), "{run}");
    assert!(
        run.stdout.contains(&format!("converged: {NETBOOT}")),
        "{run}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_whose_server_moved_behind_it_skips_that_server_and_applies_the_rest() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let saved = save_plan(&work, &sim, &m).await;
    let file = saved.display().to_string();
    // Someone reinstalls web-02 by hand after the review (the simulator's test hook).
    let patched = sim_support::http()
        .patch(format!("{}/_sim/server/{WEB2}", sim.root_url()))
        .json(&json!({"os": "ubuntu2404-server_64"}))
        .send()
        .await
        .expect("hook");
    assert_eq!(patched.status().as_u16(), 200);
    let mut args = vec![
        "apply",
        &file,
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe-all",
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    let run = work.run(&sim, &args).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(reinstalls(&sim), 0, "{run}");
    assert!(
        run.stdout.contains(&format!(
            "skipped: {WEB2}: the live OS moved from debian11_64 to ubuntu2404-server_64"
        )),
        "says what moved\n{run}"
    );
    assert!(run.stdout.contains(&format!("converged: {WEB3}")), "{run}");
    assert!(
        run.stdout.contains(&format!("converged: {NETBOOT}")),
        "{run}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_says_which_step_and_whose_side() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let hook = sim_support::http()
        .post(format!(
            "{}/_sim/server/{WEB2}/fail-next-install",
            sim.root_url()
        ))
        .json(
            &json!({"step": 9, "status": "customerError", "error": "partition / too small\x1b[2J"}),
        )
        .send()
        .await
        .expect("hook");
    assert_eq!(hook.status().as_u16(), 200);
    let m = one_server_manifests(&work.path().join("m"), "    reinstall: manual\n");
    let run = work
        .run(
            &sim,
            &[
                "apply",
                "--manifests",
                &m,
                "--auto-approve",
                "--allow-wipe",
                WEB2,
            ],
        )
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    let failed = run
        .stdout
        .lines()
        .find(|l| l.contains("FAILED"))
        .unwrap_or_else(|| panic!("a FAILED line\n{run}"));
    assert!(failed.contains("customerError"), "{failed}");
    assert!(failed.contains("the customer's side"), "{failed}");
    assert!(failed.contains("partition / too small"), "{failed}");
    assert!(failed.contains("\\x1b[2J"), "escaped: {failed}");
    assert!(
        !run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'),
        "{run}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_stopped_waiting_never_failed() {
    // A frozen clock: the installation never ends.
    let sim = demo_sim(0.0).await;
    let work = Workdir::new();
    let m = one_server_manifests(&work.path().join("m"), "    reinstall: manual\n");
    let run = work
        .run(
            &sim,
            &[
                "apply",
                "--manifests",
                &m,
                "--auto-approve",
                "--allow-wipe",
                WEB2,
                "--timeout",
                "1s",
            ],
        )
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(reinstalls(&sim), 1, "{run}");
    assert!(run.stdout.contains("stopped waiting (not failed)"), "{run}");
    assert!(run.stdout.contains("0 failed"), "{run}");
    assert!(
        !run.stdout.contains("FAILED") && !run.stderr.contains("FAILED"),
        "{run}"
    );
    // The intent stays: the next apply re-attaches to the task instead of POSTing again.
    let journal = work.state().join("journal");
    let intents = std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0);
    assert_eq!(intents, 1, "the intent is kept in {}", journal.display());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_apply_fails_naming_the_lock_holder() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    // The first apply stops for good at its first crash point, holding the lock.
    let mut first = work.command(&sim, &["apply", "--manifests", &m, "--auto-approve"]);
    first
        .env("OVHFORM_CRASH_AT", "apply:start")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = first.spawn().expect("first apply");
    let lock = work.state().join("lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&holder.id().to_string())) {
        assert!(
            Instant::now() < deadline,
            "the first apply never took the lock"
        );
        assert!(
            holder.try_wait().expect("wait").is_none(),
            "first apply exited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = work
        .run(&sim, &["apply", "--manifests", &m, "--auto-approve"])
        .await;
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(second.code, Some(1), "{second}");
    assert!(
        second
            .stderr
            .contains(&format!("locked by pid {} on host", holder.id())),
        "{second}"
    );
    sim.shutdown().await;
}

/// `ovhform demo` plans, applies on the simulator's fast clock and plans again to nothing,
/// offline, writing nothing outside memory and suggesting no command that names its
/// simulator (gone when the demo ends).
#[test]
fn the_demo_applies_and_a_second_plan_has_no_changes() {
    let work = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["demo", "--text-only", "--manifests"])
        .arg(repo().join("manifests"))
        .current_dir(work.path())
        .stdin(Stdio::null())
        .env_clear()
        .env("HOME", work.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let run = Run::from(out);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(started.elapsed() < Duration::from_secs(60), "{run}");
    assert!(
        run.stdout.contains("--allow-wipe ns3000002.ip-51-68-1.eu"),
        "said plainly\n{run}"
    );
    assert!(run.stdout.contains("Apply complete:"), "{run}");
    assert!(run.stdout.contains(&format!("converged: {WEB2}")), "{run}");
    assert!(run.stdout.contains("a second plan has no changes"), "{run}");
    assert!(
        run.stderr.contains(&format!("{WEB2}: step ")),
        "progress shown\n{run}"
    );
    assert!(!run.stdout.contains("Apply with:"), "{run}");
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.contains("ovhform ") && l.contains("127.0.0.1")),
        "no suggested command names the simulator\n{run}"
    );
    let left: Vec<_> = std::fs::read_dir(work.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "the demo wrote {left:?}");
}

/// docs/apply.md documents every `apply` flag, and the README's exit-code table mentions
/// apply.
#[test]
fn docs_apply_md_documents_every_flag() {
    use clap::CommandFactory;
    let docs = std::fs::read_to_string(repo().join("docs/apply.md")).expect("docs/apply.md");
    let cli = ovhform::cli::Cli::command();
    let apply = cli.find_subcommand("apply").expect("apply subcommand");
    for arg in apply.get_arguments() {
        if let Some(long) = arg.get_long()
            && long != "help"
        {
            assert!(
                docs.contains(&format!("`--{long}")),
                "docs/apply.md does not document `apply --{long}`"
            );
        }
    }
    for hook in ["OVHFORM_CRASH_AT", "OVHFORM_POLL_MS", "OVHFORM_TIME_SCALE"] {
        assert!(
            docs.contains(hook),
            "docs/apply.md does not document {hook}"
        );
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    assert!(
        readme.contains("ovhform apply"),
        "README usage mentions apply"
    );
}
