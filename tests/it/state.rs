//! The state room from outside: the file store on a real directory (records, lock, read-only
//! mode, bad files), tag records read from an observed fleet and merged with the store, the
//! manifests' git revision on a real repository, and the `--state` argument.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use clap::{CommandFactory, Parser};
use ovhform::model::{InstallRecord, Observed, ObservedServer, Records};
use ovhform::state::{
    FileStore, RecordStore, StateArgs, StateError, manifests_revision, merge_records,
    record_to_tags, records_from_observed,
};

/// Runs a store future to completion (the store is async; these tests are not).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn rec(server: &str, fp_char: char, finished: Option<&str>) -> InstallRecord {
    InstallRecord {
        server: server.to_string(),
        fleet: ovhform::model::DEFAULT_FLEET.into(),
        algorithm: 2,
        secrets: None,
        request: None,
        fingerprint: format!("sha256:{}", fp_char.to_string().repeat(64)),
        os: "debian12_64".into(),
        generation: 1,
        revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
        task_id: Some(42),
        started: Some("2026-11-23T08:00:00Z".parse().unwrap()),
        finished: finished.map(|t| t.parse().unwrap()),
    }
}

#[test]
fn records_survive_a_reopen_and_forget_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let store = FileStore::open_locked(&state).unwrap();
        block(store.put_install(&rec("a", 'a', None))).unwrap();
        block(store.put_install(&rec("b", 'b', Some("2026-11-23T09:00:00Z")))).unwrap();
        assert!(block(store.forget("a")).unwrap());
        assert!(!block(store.forget("zzz")).unwrap());
    }
    let loaded = block(FileStore::open_read_only(&state).load()).unwrap();
    assert_eq!(
        loaded.installs.keys().collect::<Vec<_>>(),
        vec!["b"],
        "a was forgotten"
    );
    assert_eq!(
        loaded.installs["b"],
        rec("b", 'b', Some("2026-11-23T09:00:00Z"))
    );

    // The documented layout: one versioned JSON file next to the lock, no temp files left.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("records.json")).unwrap()).unwrap();
    assert_eq!(json["formatVersion"], 1);
    assert_eq!(json["installs"]["b"]["taskId"], 42);
    let mut names: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["lock", "records.json"]);
}

#[test]
fn a_second_writer_is_refused_with_the_holder_named() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open_locked(dir.path()).unwrap();
    let err = FileStore::open_locked(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StateError::Locked { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("on host "), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");

    // Readers are not blocked by the writer.
    block(first.put_install(&rec("a", 'a', None))).unwrap();
    let reader = FileStore::open_read_only(dir.path());
    assert_eq!(block(reader.load()).unwrap().installs.len(), 1);

    drop(first);
    let again = FileStore::open_locked(dir.path()).expect("lock released on drop");
    assert!(again.is_locked());
}

#[test]
fn a_lock_held_by_another_process_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    // util-linux `flock` holds an exclusive flock(2) on the file until its shell exits; it does
    // not write a holder, which exercises the "name not written yet" message too.
    let mut child = Command::new("flock")
        .arg("--exclusive")
        .arg(&lock)
        .arg("-c")
        .arg("echo ready; read _; exit 0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux flock is installed");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let err = FileStore::open_locked(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("has not written its name yet"),
        "{err}"
    );

    drop(child.stdin.take()); // EOF ends `read`, the shell exits, the OS drops the lock.
    assert!(child.wait().unwrap().success());
    FileStore::open_locked(dir.path()).expect("free once the other process is gone");
}

#[test]
fn read_only_mode_needs_no_directory_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-created");
    let store = FileStore::open_read_only(&missing);
    assert_eq!(block(store.load()).unwrap(), Records::default());
    assert!(!store.is_locked());
    let err = block(store.put_install(&rec("a", 'a', None))).unwrap_err();
    assert!(matches!(err, StateError::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("never-created"), "{err}");
    assert!(!missing.exists(), "read-only mode creates nothing");
}

#[test]
fn corrupted_records_name_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records.json"),
        "{\"formatVersion\": 1,\n \"installs\": {\"a\": ",
    )
    .unwrap();
    for store in [
        FileStore::open_read_only(dir.path()),
        FileStore::open_locked(dir.path()).unwrap(),
    ] {
        let err = block(store.load()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        assert!(msg.contains("records.json"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        // A writer must not paper over the damage by writing fresh records.
        assert!(block(store.put_install(&rec("a", 'a', None))).is_err());
    }

    // A file without its version is not ovhform's.
    std::fs::write(dir.path().join("records.json"), "{\"installs\": {}}").unwrap();
    let err = block(FileStore::open_read_only(dir.path()).load()).unwrap_err();
    assert!(err.to_string().contains("formatVersion"), "{err}");

    // Valid JSON of the wrong shape: still named with its position.
    let wrong_shape = "{\"formatVersion\": 1,\n \"installs\": {\"a\": {\"generation\": \"x\"}}}";
    std::fs::write(dir.path().join("records.json"), wrong_shape).unwrap();
    let err = block(FileStore::open_read_only(dir.path()).load()).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn fields_missing_from_an_older_file_read_as_their_defaults() {
    // A file written before a field of `Records` existed (here: all of them) still loads.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("records.json"), "{\"formatVersion\": 1}").unwrap();
    assert_eq!(
        block(FileStore::open_read_only(dir.path()).load()).unwrap(),
        Records::default()
    );
}

#[test]
fn a_newer_format_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let body = "{\"formatVersion\": 2, \"somethingNew\": true}";
    std::fs::write(dir.path().join("records.json"), body).unwrap();
    let store = FileStore::open_locked(dir.path()).unwrap();
    let err = block(store.put_install(&rec("a", 'a', None))).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::UnsupportedFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("records.json")).unwrap(),
        body
    );
}

#[test]
fn a_file_in_place_of_the_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state");
    std::fs::write(&file, "not a dir").unwrap();
    for err in [
        FileStore::open_locked(&file).unwrap_err(),
        block(FileStore::open_read_only(&file).load()).unwrap_err(),
    ] {
        assert!(matches!(err, StateError::NotADirectory { .. }), "{err:?}");
        assert!(err.to_string().contains("state"), "{err}");
    }
    // A state dir below a file: the I/O error names the path it failed on.
    let err = FileStore::open_locked(file.join("sub")).unwrap_err();
    assert!(matches!(err, StateError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("sub"), "{err}");
}

fn observed_server(name: &str, tags: BTreeMap<String, String>) -> ObservedServer {
    ObservedServer {
        name: name.to_string(),
        os: "debian12_64".into(),
        state: "ok".into(),
        power_state: "poweron".into(),
        datacenter: "gra3".into(),
        boot_id: Some(1),
        boot: None,
        boot_script: None,
        efi_bootloader_path: None,
        monitoring: true,
        no_intervention: false,
        rescue_mail: None,
        rescue_ssh_key: None,
        root_device: None,
        iam_urn: Some(format!("urn:v1:eu:resource:dedicatedServer:{name}")),
        tags,
        detail: None,
        anomalies: Vec::new(),
    }
}

#[test]
fn a_plan_without_a_store_still_knows_installs_from_tags() {
    let tagged = rec("tagged", 't', Some("2026-11-23T10:00:00Z"));
    let newer_in_tags = rec("both", 'n', Some("2026-11-23T12:00:00Z"));
    let mut garbled = record_to_tags(&rec("garbled", 'g', None)).unwrap();
    garbled.insert("ovhform:generation".into(), "two".into());
    let mut user_tags = BTreeMap::from([("team".to_string(), "infra".to_string())]);
    user_tags.extend(record_to_tags(&tagged).unwrap());

    let mut observed = Observed::default();
    for (name, tags) in [
        ("tagged", user_tags),
        ("both", record_to_tags(&newer_in_tags).unwrap()),
        ("garbled", garbled),
        ("untagged", BTreeMap::new()),
    ] {
        observed
            .servers
            .insert(name.to_string(), observed_server(name, tags));
    }

    let (from_tags, problems) = records_from_observed(&observed);
    assert_eq!(
        from_tags.installs.keys().collect::<Vec<_>>(),
        vec!["both", "tagged"]
    );
    assert_eq!(problems.len(), 1);
    let problem = problems[0].to_string();
    assert!(
        problem.contains("garbled") && problem.contains("ovhform:generation"),
        "{problem}"
    );

    // CI: no state directory at all.
    let dir = tempfile::tempdir().unwrap();
    let empty = block(FileStore::open_read_only(dir.path().join(".ovhform")).load()).unwrap();
    let merged = merge_records(empty, from_tags.clone());
    assert_eq!(merged.installs["tagged"], tagged);

    // With a store: the store is authoritative. A tag disagreeing with it is not believed
    // silently, however recent (a forged tag looks like that): the store's record stays and
    // the disagreement is a dispute. The store-only record is kept.
    let store = FileStore::open_locked(dir.path().join(".ovhform")).unwrap();
    let older_in_store = rec("both", 'o', Some("2026-11-23T11:00:00Z"));
    block(store.put_install(&older_in_store)).unwrap();
    block(store.put_install(&rec("stored", 's', None))).unwrap();
    let merged = merge_records(block(store.load()).unwrap(), from_tags);
    assert_eq!(merged.installs["both"], older_in_store);
    assert_eq!(merged.disputes["both"].tags, newer_in_tags);
    assert_eq!(merged.installs["stored"], rec("stored", 's', None));
    assert_eq!(merged.installs.len(), 3);
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=ovhform-test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdout(Stdio::null())
        .status()
        .expect("git is installed");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn manifests_revision_follows_the_checkout() {
    let repo = tempfile::tempdir().unwrap();
    let manifests = repo.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("web.yaml"), "kind: Server\n").unwrap();
    std::fs::write(repo.path().join("README"), "x\n").unwrap();

    assert_eq!(manifests_revision(&manifests), None, "not a repository");
    git(repo.path(), &["init", "-q"]);
    assert_eq!(manifests_revision(&manifests), None, "no commit yet");
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "first"]);

    let head = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    assert_eq!(head.len(), 40);
    assert_eq!(manifests_revision(&manifests), Some(head.clone()));

    // A change outside the manifests directory does not make them dirty…
    std::fs::write(repo.path().join("README"), "changed\n").unwrap();
    assert_eq!(manifests_revision(&manifests), Some(head.clone()));
    // …a modified or an untracked manifest does.
    std::fs::write(manifests.join("web.yaml"), "kind: Server # edited\n").unwrap();
    assert_eq!(
        manifests_revision(&manifests),
        Some(format!("{head}-dirty"))
    );
    git(repo.path(), &["checkout", "-q", "--", "manifests"]);
    std::fs::write(manifests.join("new.yaml"), "kind: Server\n").unwrap();
    assert_eq!(
        manifests_revision(&manifests),
        Some(format!("{head}-dirty"))
    );

    // The revision is recorded in a tag, so it must fit the tag charset.
    let dirty = manifests_revision(&manifests).unwrap();
    assert!(ovhform::state::tags::is_valid_tag_value(&dirty));
}

#[derive(Debug, Parser)]
struct Harness {
    #[command(flatten)]
    state: StateArgs,
}

#[test]
fn state_args_default_flag_and_env() {
    // OVHFORM_STATE would override the default; this test parses no environment it controls,
    // so it only runs its default check when the variable is unset.
    if std::env::var_os("OVHFORM_STATE").is_none() {
        let h = Harness::try_parse_from(["t"]).unwrap();
        assert_eq!(h.state.state_dir, Path::new(".ovhform"));
    }
    let h = Harness::try_parse_from(["t", "--state", "/var/lib/ovhform"]).unwrap();
    assert_eq!(h.state.state_dir, Path::new("/var/lib/ovhform"));

    let cmd = Harness::command();
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some("state"))
        .unwrap();
    assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new("OVHFORM_STATE")));
}
