//! Manifest loading and validation, end to end: the example fleet, the invalid corpus, hostile
//! inputs, rendered diagnostics, the fingerprint's invariants, the JSON Schema, the docs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ovhform::manifest::{self, Code, Diagnostics};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ovhform(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ovhform")
}

fn load_err(paths: &[PathBuf]) -> Diagnostics {
    match manifest::load(paths) {
        Ok(l) => panic!(
            "expected errors, got a valid desired state with {} servers",
            l.desired.servers.len()
        ),
        Err(d) => d,
    }
}

// ---------------------------------------------------------------------------------------------
// The example fleet.
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_example_manifests_exits_0() {
    let out = ovhform(&["validate", "manifests/"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "validate manifests/ failed:\n{stderr}"
    );
    assert!(
        stderr.contains("valid: 6 servers, 1 groups, 1 maintenance windows"),
        "{stderr}"
    );
    // No path: defaults to manifests/.
    let out = ovhform(&["validate"]);
    assert!(out.status.success());
}

#[test]
fn example_fleet_desired_state() {
    let loaded = manifest::load(&[root().join("manifests")]).expect("examples are valid");
    assert!(
        loaded.warnings.is_empty(),
        "{}",
        loaded.warnings.render(false)
    );
    let d = loaded.desired;
    let names: Vec<&str> = d.servers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ns3000001.ip-51-68-1.eu",
            "ns3000002.ip-51-68-1.eu",
            "ns3000003.ip-51-68-1.eu",
            "ns3000010.ip-51-68-2.eu",
            "ns3000020.ip-51-68-3.eu",
            "ns3000030.ip-51-68-3.eu"
        ]
    );
    assert_eq!(d.groups["web"].members.len(), 3);
    assert_eq!(d.groups["web"].max_concurrent_reinstalls, Some(1));
    assert_eq!(d.windows["prod-nights"].duration_secs, 3 * 3600);
    assert_eq!(d.windows["prod-nights"].time_zone, "Europe/Paris");

    // A web server: template merged under its own manifest, scripts base64-encoded.
    let web = &d.servers["ns3000002.ip-51-68-1.eu"];
    let install = web.install.as_ref().expect("install from the template");
    let c = &install.request["customizations"];
    assert_eq!(c["hostname"], "web-02");
    assert_eq!(install.request["operatingSystem"], "debian12_64");
    use base64::Engine;
    let script = base64::engine::general_purpose::STANDARD
        .decode(c["postInstallationScript"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        script,
        std::fs::read(root().join("manifests/scripts/bootstrap.sh")).unwrap()
    );
    let layout = &install.request["storage"][0]["partitioning"]["layout"];
    assert_eq!(
        layout[0],
        serde_json::json!({"mountPoint": "/boot", "fileSystem": "ext4", "raidLevel": 1, "size": 1024})
    );
    assert_eq!(layout[2]["size"], 0);
    assert!(
        install
            .secret_paths
            .contains("/customizations/postInstallationScript")
    );
    // configDriveUserData is a BYOLinux/BYOI input: debian12_64 refuses it (the planner's
    // catalog check says so), so the example web tier does not send it.
    assert!(install.request["customizations"]["configDriveUserData"].is_null());
    assert_eq!(web.groups, ["web"]);
    assert_eq!(
        web.policy.maintenance_window.as_deref(),
        Some("prod-nights")
    );
    // Field origins name the file each value came from.
    assert!(
        web.origin_of("spec.install.os")
            .file
            .ends_with("groups/web.yaml")
    );
    assert!(
        web.origin_of("spec.install.customizations.hostname")
            .file
            .ends_with("servers/web.yaml")
    );
    // All three web servers share the template but differ by hostname.
    let fps: std::collections::BTreeSet<_> = (1..=3)
        .map(|i| {
            d.servers[&format!("ns300000{i}.ip-51-68-1.eu")]
                .install
                .as_ref()
                .unwrap()
                .fingerprint
                .clone()
        })
        .collect();
    assert_eq!(fps.len(), 3);

    // The database server: hardware RAID, LVM layout, a kept data disk group.
    let db = d.servers["ns3000010.ip-51-68-2.eu"]
        .install
        .as_ref()
        .unwrap();
    assert_eq!(db.os_disk_group, Some(1));
    assert_eq!(db.keep_disk_groups.iter().copied().collect::<Vec<_>>(), [2]);
    let storage = db.request["storage"].as_array().unwrap();
    assert_eq!(storage.len(), 2);
    assert_eq!(
        storage[0]["hardwareRaid"],
        serde_json::json!([{"raidLevel": 1}])
    );
    assert_eq!(
        storage[1],
        serde_json::json!({"diskGroupId": 2, "erase": false})
    );
    assert_eq!(
        storage[0]["partitioning"]["layout"][2]["extras"]["lv"]["name"],
        "root"
    );
    assert_eq!(storage[0]["partitioning"]["layout"][2]["size"], 102400);
    assert!(db.fingerprint.starts_with("sha256:") && db.fingerprint.len() == 71);
    assert_eq!(db.algorithm, manifest::FINGERPRINT_ALGORITHM);
    assert_eq!(
        db.fingerprint,
        manifest::fingerprint(&db.request, &db.secret_paths)
    );

    // Netboot and rescue.
    let net = &d.servers["ns3000020.ip-51-68-3.eu"];
    match &net.boot.as_ref().unwrap().mode {
        ovhform::model::BootMode::Ipxe { script } => assert!(script.starts_with("#!ipxe\n")),
        other => panic!("netboot server boots {other:?}"),
    }
    assert!(net.install.is_none());
    let rescue = &d.servers["ns3000030.ip-51-68-3.eu"];
    assert_eq!(
        rescue.boot.as_ref().unwrap().mode,
        ovhform::model::BootMode::Rescue {
            kernel: "rescue-customer".into()
        }
    );
    assert_eq!(
        rescue.policy.reinstall,
        ovhform::model::ReinstallPolicy::Never
    );
}

// ---------------------------------------------------------------------------------------------
// The invalid corpus: every entry declares `# expect: CODE line N` on its first line (for a
// directory, in the file that must carry the error).
// ---------------------------------------------------------------------------------------------

struct Expect {
    entry: PathBuf,
    file: PathBuf,
    code: String,
    line: u32,
}

fn parse_expect(file: &Path) -> Option<Expect> {
    let bytes = std::fs::read(file).ok()?;
    let first = bytes.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    let rest = first.strip_prefix("# expect: ")?;
    let mut parts = rest.split_whitespace();
    let code = parts.next()?.to_owned();
    (parts.next()? == "line").then_some(())?;
    let line = parts.next()?.parse().ok()?;
    Some(Expect {
        entry: file.to_path_buf(),
        file: file.to_path_buf(),
        code,
        line,
    })
}

fn corpus() -> Vec<Expect> {
    let dir = PathBuf::from("tests/fixtures/invalid");
    let mut entries: Vec<_> = std::fs::read_dir(root().join(&dir))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for name in entries {
        let rel = dir.join(&name);
        let abs = root().join(&rel);
        if abs.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&abs)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            let found: Vec<Expect> = files.iter().filter_map(|f| parse_expect(f)).collect();
            assert_eq!(
                found.len(),
                1,
                "{} must have exactly one `# expect:` header",
                rel.display()
            );
            let e = found.into_iter().next().unwrap();
            let file = rel.join(e.file.file_name().unwrap());
            out.push(Expect {
                entry: rel,
                file,
                ..e
            });
        } else {
            let e = parse_expect(&abs).unwrap_or_else(|| {
                panic!("{} has no `# expect: CODE line N` header", rel.display())
            });
            out.push(Expect {
                entry: rel.clone(),
                file: rel,
                ..e
            });
        }
    }
    out
}

#[test]
fn invalid_corpus_reports_expected_code_at_expected_line() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "only {} invalid fixtures", corpus.len());
    let mut failures = Vec::new();
    let mut seen_codes = std::collections::BTreeSet::new();
    for e in &corpus {
        // Relative paths, as a user would type them (cargo runs tests from the crate root).
        let entry = e.entry.clone();
        let result = finishes(move || manifest::load(std::slice::from_ref(&entry)));
        let diags = match result {
            Ok(_) => {
                failures.push(format!("{}: loaded without error", e.entry.display()));
                continue;
            }
            Err(d) => d,
        };
        let hit = diags.iter().any(|d| {
            d.code.id() == e.code && d.line == e.line && d.file.as_deref() == Some(&e.file)
        });
        if !hit {
            let got: Vec<String> = diags.iter().map(|d| format!("{:?}", d)).collect();
            failures.push(format!(
                "{}: want {} at line {}; got:\n    {}",
                e.entry.display(),
                e.code,
                e.line,
                got.join("\n    ")
            ));
        }
        for d in &diags {
            assert!(!d.hint.is_empty(), "{d:?} has no hint");
            assert!(d.file.is_some(), "{d:?} has no file");
        }
        seen_codes.insert(e.code.clone());
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every error code that a manifest file can trigger has at least one fixture.
    let untested: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !c.is_warning())
        .map(|c| c.id())
        .filter(|id| !seen_codes.contains(*id))
        // Covered by the generated hostile-input tests below (files, links, FIFOs).
        .filter(|id| !["E0101", "E0102", "E0104", "E0107", "E0108"].contains(id))
        .collect();
    assert!(untested.is_empty(), "codes without a fixture: {untested:?}");
}

#[test]
fn invalid_corpus_exits_1_through_the_binary() {
    for e in corpus() {
        let path = e.entry.to_string_lossy().into_owned();
        let out = ovhform(&["validate", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{path}: exit {:?}\n{stderr}",
            out.status.code()
        );
        assert!(
            stderr.contains(&e.code),
            "{path}: {} not in output:\n{stderr}",
            e.code
        );
        assert!(
            stderr.contains(&format!("{}:{}:", e.file.display(), e.line)),
            "{path}: line {} not in output:\n{stderr}",
            e.line
        );
        assert!(!stderr.contains("panicked"), "{path} panicked");
    }
}

#[test]
fn all_errors_are_reported_at_once_across_files() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("a.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns1.ip-1-2-3.eu}\nspec:\n  install:\n    os: debian12_64\n    customizations: {hostname: 9bad}\n  policy: {maintenanceWindow: nope}\n---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns2.ip-1-2-3.eu}\nspec:\n  boot: {mode: ipxe}\n",
    )
    .unwrap();
    std::fs::write(
        t.path().join("b.yml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns3.ip-1-2-3.eu, colour: red}\n",
    )
    .unwrap();
    let d = load_err(&[t.path().to_path_buf()]);
    let codes: Vec<&str> = d.iter().map(|d| d.code.id()).collect();
    assert_eq!(
        codes,
        ["E0301", "E0601", "E0501", "E0204"],
        "{}",
        d.render(false)
    );
    assert_eq!(d.len(), 4);
    assert_eq!(d.error_count(), 4);
}

#[test]
fn group_member_without_own_manifest_gets_the_template_alone() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("g.yaml"),
        "apiVersion: ovhform/v1\nkind: ServerGroup\nmetadata: {name: cache}\nspec:\n  members: [ns7.ip-1-2-3.eu, ns8.ip-1-2-3.eu]\n  template:\n    install: {os: debian12_64}\n    boot: {mode: disk}\n---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns8.ip-1-2-3.eu}\nspec:\n  install: {os: ubuntu2404-server_64}\n",
    )
    .unwrap();
    let d = manifest::load(&[t.path().to_path_buf()])
        .unwrap_or_else(|d| panic!("{}", d.render(false)))
        .desired;
    let alone = &d.servers["ns7.ip-1-2-3.eu"];
    assert_eq!(alone.install.as_ref().unwrap().os, "debian12_64");
    assert_eq!(
        alone.origin.line, 1,
        "a template-only server points at its group"
    );
    assert_eq!(alone.groups, ["cache"]);
    // The server's own value wins over the template's.
    let own = &d.servers["ns8.ip-1-2-3.eu"];
    assert_eq!(own.install.as_ref().unwrap().os, "ubuntu2404-server_64");
    assert_eq!(
        own.boot.as_ref().unwrap().mode,
        ovhform::model::BootMode::Disk
    );
    assert_eq!(d.groups["cache"].members.len(), 2);
}

#[test]
fn selector_matching_nothing_is_a_warning_not_an_error() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("g.yaml"),
        "apiVersion: ovhform/v1\nkind: ServerGroup\nmetadata: {name: gpu}\nspec:\n  selector:\n    matchLabels: {role: gpu}\n",
    )
    .unwrap();
    let loaded = manifest::load(&[t.path().to_path_buf()]).expect("a warning does not block");
    let w: Vec<_> = loaded.warnings.iter().collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].code, Code::SelectorEmpty);
    assert_eq!(w[0].line, 5);
    let out = ovhform(&["validate", &t.path().to_string_lossy()]);
    assert!(out.status.success());
    let out = ovhform(&["validate", "--deny-warnings", &t.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs, generated at test time (no huge files in git).
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a thread and returns its result, failing the test if it has not finished
/// within a minute: a guard against hanging (a FIFO read, an alias bomb), not a benchmark —
/// wall-clock limits tight enough to measure speed fail on a loaded 2-core machine. Speed is
/// measured in docs/benchmarks.md.
fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the loader hung (no result within 60 s)")
}

fn assert_fast_error(path: &Path, code: Code) -> Diagnostics {
    let p = path.to_path_buf();
    let d = finishes(move || load_err(&[p]));
    assert!(
        d.iter().any(|x| x.code == code),
        "want {code} for {}; got {}",
        path.display(),
        d.render(false)
    );
    d
}

#[test]
fn file_of_50_mb_is_refused_quickly() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("huge.yaml");
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    let chunk = line.repeat(1024 * 1024 / line.len() + 1);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    use std::io::Write;
    for _ in 0..50 {
        f.write_all(chunk.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    assert!(std::fs::metadata(&p).unwrap().len() >= 50 * 1024 * 1024);
    assert_fast_error(&p, Code::FileTooLarge);
    // The same cap applies to files a manifest references.
    let m = t.path().join("m");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(
        m.join("s.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns1.ip-1-2-3.eu}\nspec:\n  install:\n    os: debian12_64\n    customizations:\n      postInstallationScript: {file: ../huge.yaml}\n",
    )
    .unwrap();
    let d = assert_fast_error(&m, Code::FileTooLarge);
    assert_eq!(d.iter().next().unwrap().line, 8);
}

#[test]
fn billion_laughs_is_bounded() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("lol.yaml");
    let mut y = String::from(
        "a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        y.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    std::fs::write(&p, y).unwrap();
    assert_fast_error(&p, Code::YamlBudget);
}

#[test]
fn deep_nesting_is_bounded() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("deep.yaml");
    std::fs::write(
        &p,
        format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    assert_fast_error(&p, Code::YamlBudget);
}

#[test]
fn node_and_document_budgets_stop_huge_files() {
    let t = tempfile::tempdir().unwrap();
    // 260,000 nodes of plain YAML: over the per-file node budget.
    let p = t.path().join("wide.yaml");
    let body: String = (0..130_000).map(|i| format!("k{i}: v\n")).collect();
    std::fs::write(&p, body).unwrap();
    assert_fast_error(&p, Code::YamlBudget);
    // The same with values whose type only the serde path decides (`yes`).
    let p = t.path().join("wide-yes.yaml");
    let body: String = (0..130_000).map(|i| format!("k{i}: yes\n")).collect();
    std::fs::write(&p, body).unwrap();
    assert_fast_error(&p, Code::YamlBudget);
    // A storm of document separators.
    let p = t.path().join("docs.yaml");
    std::fs::write(&p, "---\na: 1\n".repeat(30_000)).unwrap();
    assert_fast_error(&p, Code::YamlBudget);
}

#[test]
fn non_utf8_names_the_line() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("latin1.yaml");
    std::fs::write(
        &p,
        b"apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: caf\xe9\n",
    )
    .unwrap();
    let d = assert_fast_error(&p, Code::NotUtf8);
    let e = d.iter().next().unwrap();
    assert_eq!((e.line, e.column), (4, 12));
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_detected() {
    let t = tempfile::tempdir().unwrap();
    // A link to itself.
    let selfloop = t.path().join("self");
    std::fs::create_dir(&selfloop).unwrap();
    std::os::unix::fs::symlink("loop.yaml", selfloop.join("loop.yaml")).unwrap();
    assert_fast_error(&selfloop, Code::SymlinkLoop);
    // A directory linking to its parent.
    let up = t.path().join("up");
    std::fs::create_dir_all(up.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", up.join("sub/parent")).unwrap();
    std::fs::write(
        up.join("ok.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns1.ip-1-2-3.eu}\n",
    )
    .unwrap();
    assert_fast_error(&up, Code::SymlinkLoop);
    // A referenced file that is a loop.
    let r = t.path().join("ref");
    std::fs::create_dir(&r).unwrap();
    std::os::unix::fs::symlink("a.sh", r.join("b.sh")).unwrap();
    std::os::unix::fs::symlink("b.sh", r.join("a.sh")).unwrap();
    std::fs::write(
        r.join("s.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\nmetadata: {name: ns1.ip-1-2-3.eu}\nspec:\n  install:\n    os: debian12_64\n    customizations:\n      postInstallationScript: {file: a.sh}\n",
    )
    .unwrap();
    assert_fast_error(&r, Code::SymlinkLoop);
}

#[test]
fn missing_path_and_empty_directory() {
    let t = tempfile::tempdir().unwrap();
    assert_fast_error(&t.path().join("nope"), Code::FileUnreadable);
    assert_fast_error(t.path(), Code::NoManifests);
}

// ---------------------------------------------------------------------------------------------
// Rendered diagnostics (plain, for stable snapshots).
// ---------------------------------------------------------------------------------------------

fn rendered(entry: &str) -> String {
    let out = ovhform(&["validate", "--color", "never", entry]);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn snapshot_unknown_field() {
    insta::assert_snapshot!(rendered(
        "tests/fixtures/invalid/unknown-field-customizations.yaml"
    ));
}

#[test]
fn snapshot_storage_rule() {
    insta::assert_snapshot!(rendered("tests/fixtures/invalid/keep-os-disk-group.yaml"));
}

#[test]
fn snapshot_template_error_points_at_the_group_file() {
    insta::assert_snapshot!(rendered("tests/fixtures/invalid/template-error"));
}

#[test]
fn snapshot_yaml_syntax() {
    insta::assert_snapshot!(rendered("tests/fixtures/invalid/yaml-unclosed-flow.yaml"));
}

// ---------------------------------------------------------------------------------------------
// Diagnostics for machines: `--format json` and `--format github` (stdout; summary on stderr).
// ---------------------------------------------------------------------------------------------

const CI_FIXTURE: &str = "tests/fixtures/ci";
const MORE_CHECKS: &str =
    "some checks did not run where these errors are: more checks run once they are fixed";

fn validate_as(format: &str, entry: &str) -> (Option<i32>, String, String) {
    let out = ovhform(&["validate", "--format", format, entry]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn snapshot_validate_json() {
    let (code, stdout, stderr) = validate_as("json", CI_FIXTURE);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("invalid: 3 errors, 1 warning in 1 file\n{MORE_CHECKS}\n")
    );
    // The same diagnostics as the loader's, in its order, every field where it belongs.
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("a JSON array");
    let loaded = load_err(&[root().join(CI_FIXTURE)]);
    assert_eq!(parsed.len(), loaded.len());
    for (j, d) in parsed.iter().zip(loaded.iter()) {
        assert_eq!(j["code"], d.code.id());
        assert_eq!(j["line"], d.line);
        assert_eq!(j["column"], d.column);
        assert_eq!(
            j["severity"],
            if d.is_error() { "error" } else { "warning" }
        );
    }
    assert!(
        !stdout.contains("\\u001b"),
        "a control character in a value reaches JSON consumers escaped for display"
    );
    insta::assert_snapshot!(stdout);
}

#[test]
fn snapshot_validate_github_annotations() {
    let (code, stdout, stderr) = validate_as("github", CI_FIXTURE);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.ends_with(&format!("{MORE_CHECKS}\n")), "{stderr}");
    // One workflow command per line: no value may end a command or start one of its own.
    for line in stdout.lines() {
        assert!(
            ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line}"
        );
        assert!(!line.contains('\x1b') && !line.contains('\r'), "{line:?}");
        let (props, _) = line[2..].split_once("::").expect("properties::message");
        // `title=…` is the last property: a `,` or `:` from a value would have split it.
        assert_eq!(
            props.matches(',').count(),
            props.matches('=').count() - 1,
            "{line}"
        );
    }
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    insta::assert_snapshot!(stdout);
}

/// A file name with the characters that end a property is escaped in `file=`, and a
/// diagnostic with no line gives no `line=`/`col=` (and `null` in JSON).
#[test]
fn github_escapes_the_file_property_and_omits_unknown_lines() {
    let t = tempfile::tempdir().unwrap();
    let name = t.path().join("web,01:a%b.yaml");
    std::fs::write(&name, b"kind: Server\n\xff\n").unwrap();
    let (code, stdout, _) = validate_as("github", &name.to_string_lossy());
    assert_eq!(code, Some(1));
    let first = stdout.lines().next().expect("an annotation");
    assert!(
        first.starts_with("::error file=") && first.contains("web%2C01%3Aa%25b.yaml,"),
        "{first}"
    );
    let (_, json, _) = validate_as("json", &name.to_string_lossy());
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["code"], "E0103", "{json}");
    assert!(
        parsed[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("web,01:a%b.yaml")
    );
    let line_known = !parsed[0]["line"].is_null();
    assert_eq!(first.contains(",line="), line_known, "{first}\n{json}");
}

#[test]
fn validate_json_of_valid_manifests_is_an_empty_array() {
    let (code, stdout, stderr) = validate_as("json", "manifests/");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "[]\n");
    let (code, stdout, _) = validate_as("github", "manifests/");
    assert_eq!(code, Some(0));
    assert_eq!(stdout, "");
}

/// `validate` says when fixing the reported errors may reveal more (a later check was
/// skipped), and only then.
#[test]
fn validate_says_when_more_checks_run_after_the_fixes() {
    for (fixture, skipped) in [
        // Resolving values is the last step: every check ran.
        ("tests/fixtures/invalid/env-unset.yaml", false),
        ("tests/fixtures/invalid/cron-garbage.yaml", false),
        // A rule broken: the values (files, environment) were not resolved.
        ("tests/fixtures/invalid/hostname-invalid.yaml", true),
        // Not parsed, or not a known kind: nothing in it was checked.
        ("tests/fixtures/invalid/yaml-unclosed-flow.yaml", true),
        ("tests/fixtures/invalid/unknown-kind.yaml", true),
        ("tests/fixtures/invalid/wrong-type-bool.yaml", true),
    ] {
        let (code, _, stderr) = validate_as("text", fixture);
        assert_eq!(code, Some(1), "{fixture}: {stderr}");
        assert_eq!(
            stderr.contains(MORE_CHECKS),
            skipped,
            "{fixture}:\n{stderr}"
        );
        let loaded = load_err(&[root().join(fixture)]);
        assert_eq!(loaded.checks_skipped(), skipped, "{fixture}");
    }
}

// ---------------------------------------------------------------------------------------------
// The fingerprint.
// ---------------------------------------------------------------------------------------------

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNtXYuPwxcCK174vy6JaPpL0xp7VdERNtnmwx6DVvx0 ops@example";

/// Writes a group (template) and a server manifest plus a script into a fresh directory and
/// returns the server's install fingerprint (and the whole install spec).
fn fingerprint_of(
    group_template: &str,
    server_spec: &str,
    script: &str,
) -> ovhform::model::InstallSpec {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("scripts")).unwrap();
    std::fs::write(t.path().join("scripts/boot.sh"), script).unwrap();
    std::fs::write(
        t.path().join("group.yaml"),
        format!("apiVersion: ovhform/v1\nkind: ServerGroup\nmetadata: {{name: web}}\nspec:\n  members: [ns1.ip-1-2-3.eu]\n  template:\n{group_template}"),
    )
    .unwrap();
    std::fs::write(
        t.path().join("server.yaml"),
        format!("apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: ns1.ip-1-2-3.eu}}\nspec:\n{server_spec}"),
    )
    .unwrap();
    match manifest::load(&[t.path().to_path_buf()]) {
        Ok(l) => l.desired.servers["ns1.ip-1-2-3.eu"]
            .install
            .clone()
            .expect("install"),
        Err(d) => panic!("{}", d.render(false)),
    }
}

fn base_template() -> String {
    format!(
        "    install:\n      os: debian12_64\n      customizations:\n        sshKey: \"{KEY}\"\n        postInstallationScript: {{file: scripts/boot.sh}}\n      storage:\n        diskGroupId: 1\n        partitioning:\n          layout:\n            - {{mountPoint: /, fileSystem: ext4, size: 0}}\n            - {{mountPoint: swap, fileSystem: swap, size: 4GiB}}\n        keepDiskGroups: [2, 3]\n"
    )
}

const BASE_SERVER: &str = "  install:\n    customizations:\n      hostname: web-01\n";
const SCRIPT: &str = "#!/bin/sh\necho hello\n";

#[test]
fn fingerprint_ignores_formatting_order_and_provenance() {
    let base = fingerprint_of(&base_template(), BASE_SERVER, SCRIPT);

    // Reformatted: block style, quotes, comments, other key order, sizes in other units.
    let reformatted = format!(
        "    # the template\n    install:\n      storage:\n        keepDiskGroups:\n          - 3\n          - 2\n        partitioning:\n          layout:\n            - fileSystem: \"ext4\"\n              size: 0\n              mountPoint: '/'\n              raidLevel: 1\n            - size: 4096\n              mountPoint: swap\n              fileSystem: swap\n        diskGroupId: 1\n      customizations:\n        postInstallationScript:\n          file: ./scripts/boot.sh\n        sshKey: >-\n          {KEY}\n      os: \"debian12_64\"\n"
    );
    let server2 = "  install: {customizations: {hostname: \"web-01\"}}  # flow style\n";
    assert_eq!(
        fingerprint_of(&reformatted, server2, SCRIPT).fingerprint,
        base.fingerprint
    );

    // Moved: the SSH key and the OS from the template to the server manifest.
    let template_without = base_template()
        .replace(&format!("        sshKey: \"{KEY}\"\n"), "")
        .replace("      os: debian12_64\n", "");
    let server_with = format!(
        "  install:\n    os: debian12_64\n    customizations:\n      hostname: web-01\n      sshKey: \"{KEY}\"\n"
    );
    assert_eq!(
        fingerprint_of(&template_without, &server_with, SCRIPT).fingerprint,
        base.fingerprint
    );

    // Pre-encoded base64 of the same script is the same request.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(SCRIPT);
    let inline =
        base_template().replace("{file: scripts/boot.sh}", &format!("{{base64: \"{b64}\"}}"));
    assert_eq!(
        fingerprint_of(&inline, BASE_SERVER, SCRIPT).fingerprint,
        base.fingerprint
    );

    // generation is not part of the request.
    let generation = format!("{BASE_SERVER}    generation: 7\n");
    let g = fingerprint_of(&base_template(), &generation, SCRIPT);
    assert_eq!(g.fingerprint, base.fingerprint);
    assert_eq!(g.generation, 7);
}

#[test]
fn fingerprint_changes_with_every_sent_value() {
    let base = fingerprint_of(&base_template(), BASE_SERVER, SCRIPT).fingerprint;
    let t = base_template();
    let variants: Vec<(&str, String, String, &str)> = vec![
        ("os", t.replace("debian12_64", "debian13_64"), BASE_SERVER.into(), SCRIPT),
        ("hostname", t.clone(), BASE_SERVER.replace("web-01", "web-99"), SCRIPT),
        ("ssh key comment", t.replace("ops@example", "ops@elsewhere"), BASE_SERVER.into(), SCRIPT),
        ("script removed", t.replace("        postInstallationScript: {file: scripts/boot.sh}\n", ""), BASE_SERVER.into(), SCRIPT),
        ("disk group", t.replace("diskGroupId: 1", "diskGroupId: 4"), BASE_SERVER.into(), SCRIPT),
        ("size", t.replace("size: 4GiB", "size: 8GiB"), BASE_SERVER.into(), SCRIPT),
        ("raid level", t.replace("size: 0}", "size: 0, raidLevel: 0}"), BASE_SERVER.into(), SCRIPT),
        ("file system", t.replace("fileSystem: ext4", "fileSystem: xfs"), BASE_SERVER.into(), SCRIPT),
        ("kept disk groups", t.replace("[2, 3]", "[2]"), BASE_SERVER.into(), SCRIPT),
        ("mount point", t.replace("{mountPoint: /, fileSystem: ext4, size: 0}", "{mountPoint: /, fileSystem: ext4, size: 0}\n            - {mountPoint: /srv, fileSystem: ext4, size: 1GiB}"), BASE_SERVER.into(), SCRIPT),
        ("new customization", t.clone(), format!("{BASE_SERVER}      language: fr-fr\n"), SCRIPT),
    ];
    let mut seen = std::collections::BTreeSet::from([base.clone()]);
    for (what, template, server, script) in variants {
        let fp = fingerprint_of(&template, &server, script).fingerprint;
        assert_ne!(
            fp, base,
            "changing the {what} did not change the fingerprint"
        );
        assert!(
            seen.insert(fp),
            "changing the {what} collided with another change"
        );
    }
}

#[test]
fn fingerprint_is_stable_across_releases() {
    // The public form and its hashing are part of the state format (algorithm 2): records
    // written by one version must match the next. Changing this value means every server
    // would show a reinstall — bump FINGERPRINT_ALGORITHM instead.
    assert_eq!(manifest::FINGERPRINT_ALGORITHM, 2);
    let req = serde_json::json!({
        "operatingSystem": "debian12_64",
        "customizations": {"hostname": "web-01", "postInstallationScript": "c2VjcmV0",
                           "httpHeaders": {"Authorization": "Basic c2VjcmV0"}},
        "storage": [{"diskGroupId": 1, "hardwareRaid": [{"raidLevel": 1}],
                     "partitioning": {"layout": [{"mountPoint": "/", "fileSystem": "ext4", "raidLevel": 1, "size": 0}]}},
                    {"diskGroupId": 2, "erase": false}]
    });
    let secrets = [
        "/customizations/postInstallationScript",
        "/customizations/httpHeaders/Authorization",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        manifest::fingerprint(&req, &secrets),
        format!("sha256:{}", {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(
                br#"{"customizations":{"hostname":"web-01","httpHeaders":{"Authorization":"<credential>"},"postInstallationScript":"<secret>"},"operatingSystem":"debian12_64","storage":[{"hardwareRaid":[{}],"partitioning":{"layout":[{"fileSystem":"ext4","mountPoint":"/"}]}},{"diskGroupId":2,"erase":false}]}"#,
            ))
        })
    );
}

/// One `Server` manifest (plus `key.pub`, `boot.sh` and `token.txt` beside it) → its install.
fn server_install(spec: &str) -> ovhform::model::InstallSpec {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("key.pub"), format!("{KEY}\n")).unwrap();
    std::fs::write(t.path().join("boot.sh"), SCRIPT).unwrap();
    std::fs::write(t.path().join("token.txt"), "Bearer from-a-file").unwrap();
    std::fs::write(
        t.path().join("server.yaml"),
        format!("apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: ns1.ip-1-2-3.eu}}\nspec:\n  install:\n{spec}"),
    )
    .unwrap();
    match manifest::load(&[t.path().to_path_buf()]) {
        Ok(l) => l.desired.servers["ns1.ip-1-2-3.eu"]
            .install
            .clone()
            .expect("install"),
        Err(d) => panic!("{}\n{spec}", d.render(false)),
    }
}

/// Writing out what the API assumes anyway (REFERENCE.md §3.1) must not plan a reinstall:
/// every manifest of a group installs the same thing and has the same fingerprint.
#[test]
fn written_out_api_defaults_do_not_change_the_fingerprint() {
    let groups: &[(&str, &[&str])] = &[
        (
            "no storage at all",
            &[
                "    os: debian12_64\n",
                "    os: debian12_64\n    storage: {}\n",
                "    os: debian12_64\n    storage: {diskGroupId: 1}\n",
                "    os: debian12_64\n    storage: {diskGroupId: 0}\n",
                "    os: debian12_64\n    storage: {partitioning: {}}\n",
                "    os: debian12_64\n    storage: {diskGroupId: 1, partitioning: {}}\n",
                "    os: debian12_64\n    customizations: {}\n",
                "    os: debian12_64\n    customizations: {configDriveMetadata: {}, nutanixConfiguration: {}}\n",
            ],
        ),
        (
            "hardware RAID 1",
            &[
                "    os: debian12_64\n    storage: {hardwareRaid: {}}\n",
                "    os: debian12_64\n    storage: {hardwareRaid: {raidLevel: 1}}\n",
                "    os: debian12_64\n    storage: {hardwareRaid: {raidLevel: 1, arrays: 1, spares: 0}}\n",
                "    os: debian12_64\n    storage: {diskGroupId: 1, hardwareRaid: [{arrays: 1}], partitioning: {}}\n",
            ],
        ),
        (
            "a layout",
            &[
                "    os: debian12_64\n    storage:\n      partitioning:\n        layout:\n          - {mountPoint: /, fileSystem: ext4}\n          - {mountPoint: swap, fileSystem: swap, size: 4GiB}\n",
                "    os: debian12_64\n    storage:\n      diskGroupId: 1\n      partitioning:\n        layout:\n          - {mountPoint: /, fileSystem: ext4, size: 0, raidLevel: 1, extras: {}}\n          - {mountPoint: swap, fileSystem: swap, size: 4096, raidLevel: 1}\n",
            ],
        ),
        (
            "kept disk group 2",
            &[
                "    os: debian12_64\n    storage: {keepDiskGroups: [2]}\n",
                "    os: debian12_64\n    storage: {diskGroupId: 1, keepDiskGroups: [2]}\n",
                "    os: debian12_64\n    storage: {diskGroupId: 0, partitioning: {}, keepDiskGroups: [2]}\n",
            ],
        ),
        (
            "an image with no headers",
            &[
                "    os: byolinux_64\n    customizations: {imageURL: \"https://images.example.net/d.qcow2\"}\n",
                "    os: byolinux_64\n    customizations: {imageURL: \"https://images.example.net/d.qcow2\", httpHeaders: {}}\n",
            ],
        ),
    ];
    let mut by_group = std::collections::BTreeSet::new();
    for (what, specs) in groups {
        let first = server_install(specs[0]);
        for spec in &specs[1..] {
            let other = server_install(spec);
            assert_eq!(
                other.fingerprint,
                first.fingerprint,
                "{what}: written-out defaults changed the fingerprint:\n{spec}\npublic: {}\nvs {}",
                manifest::public_request(&other),
                manifest::public_request(&first)
            );
        }
        assert!(
            by_group.insert(first.fingerprint),
            "{what} equals another group"
        );
    }
}

/// Values that look like defaults but change what is installed keep their own fingerprint.
#[test]
fn real_storage_differences_change_the_fingerprint() {
    let specs = [
        "    os: debian12_64\n",
        // JBOD vs hardware RAID 1: the raidLevel default applies once hardwareRaid is given.
        "    os: debian12_64\n    storage: {hardwareRaid: {}}\n",
        "    os: debian12_64\n    storage: {hardwareRaid: {raidLevel: 0}}\n",
        "    os: debian12_64\n    storage: {hardwareRaid: {arrays: 2}}\n",
        "    os: debian12_64\n    storage: {hardwareRaid: {spares: 1}}\n",
        "    os: debian12_64\n    storage: {hardwareRaid: {disks: 2}}\n",
        "    os: debian12_64\n    storage: {diskGroupId: 2}\n",
        "    os: debian12_64\n    storage: {partitioning: {disks: 2}}\n",
        "    os: debian12_64\n    storage: {partitioning: {schemeName: default}}\n",
        "    os: debian12_64\n    storage: {partitioning: {layout: [{mountPoint: /, fileSystem: ext4}]}}\n",
        "    os: debian12_64\n    storage: {partitioning: {layout: [{mountPoint: /, fileSystem: ext4, raidLevel: 0}]}}\n",
        "    os: debian12_64\n    storage: {partitioning: {layout: [{mountPoint: /, fileSystem: xfs}]}}\n",
        "    os: debian12_64\n    storage: {partitioning: {layout: [{mountPoint: /, fileSystem: ext4, extras: {lv: {name: root}}}]}}\n",
        "    os: debian12_64\n    storage: {keepDiskGroups: [2]}\n",
        "    os: debian12_64\n    storage: {keepDiskGroups: [2, 3]}\n",
        "    os: debian12_64\n    storage: {diskGroupId: 2, keepDiskGroups: [1]}\n",
        "    os: debian13_64\n",
        "    os: debian12_64\n    customizations: {hostname: web-01}\n",
        "    os: debian12_64\n    customizations: {language: en-us}\n",
    ];
    let mut seen = std::collections::BTreeMap::new();
    for spec in specs {
        let fp = server_install(spec).fingerprint;
        if let Some(before) = seen.insert(fp, spec) {
            panic!("same fingerprint for\n{before}and\n{spec}");
        }
    }
}

const IMAGE: &str = "    os: byolinux_64\n    customizations:\n      hostname: web-01\n      imageURL: https://images.example.net/deb12.qcow2\n      imageType: qcow2\n";

/// Rotating an image credential or editing a secret is not a rebuild as far as the public
/// fingerprint goes (the planner compares those through a keyed digest); a header's name,
/// the hostname or a plain customization are.
#[test]
fn secrets_and_credentials_stay_out_of_the_fingerprint() {
    let var = "OVHFORM_TEST_FP_SECRET_31C9";
    let with = |value: &str, spec: &str| {
        // SAFETY of intent: a variable name unique to this test; no other test reads it.
        unsafe { std::env::set_var(var, value) };
        server_install(spec)
    };
    let headers = |name: &str| {
        format!(
            "{IMAGE}      httpHeaders:\n        {name}: {{env: {var}}}\n        X-Other: {{file: token.txt, sensitive: true}}\n      postInstallationScript: {{file: boot.sh}}\n"
        )
    };
    let base = with("Bearer one", &headers("Authorization"));
    assert_eq!(base.algorithm, manifest::FINGERPRINT_ALGORITHM);
    let paths: Vec<&str> = base.credential_paths.iter().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/customizations/httpHeaders/Authorization",
            "/customizations/httpHeaders/X-Other"
        ]
    );
    assert!(base.credential_paths.is_subset(&base.secret_paths));
    // The request is what is POSTed: real values, not placeholders.
    assert_eq!(
        base.request["customizations"]["httpHeaders"]["Authorization"],
        "Bearer one"
    );
    let rotated = with("Bearer two", &headers("Authorization"));
    assert_eq!(
        rotated.fingerprint, base.fingerprint,
        "header value rotated"
    );
    let renamed = with("Bearer one", &headers("Proxy-Authorization"));
    assert_ne!(renamed.fingerprint, base.fingerprint, "header key changed");

    // A secret script or imageURL from the environment: only its presence is public.
    let secret_script = format!("{IMAGE}      postInstallationScript: {{env: {var}}}\n");
    let a = with("echo one", &secret_script);
    let b = with("echo two", &secret_script);
    assert_eq!(a.fingerprint, b.fingerprint);
    let secret_url = "    os: byolinux_64\n    customizations:\n      imageURL: {env: VAR}\n"
        .replace("VAR", var);
    let a = with("https://a.example.net/x.qcow2", &secret_url);
    let b = with("https://b.example.net/y.qcow2", &secret_url);
    assert_eq!(a.fingerprint, b.fingerprint);
    let public = manifest::public_request(&a);
    assert_eq!(
        public["customizations"]["imageURL"],
        manifest::SECRET_PLACEHOLDER
    );
    assert!(!public.to_string().contains("a.example.net"));
}

/// Under algorithm 1, a 4-digit secret (`deploy:7391`) was recovered from a published
/// fingerprint in 10,000 guesses. Loaded from `{env:}` into a script and into imageURL, every
/// candidate must now give the published fingerprint.
#[test]
fn four_digit_secret_cannot_be_recovered_from_the_fingerprint() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let script_var = "OVHFORM_TEST_FP_PIN_SCRIPT_5D21";
    let url_var = "OVHFORM_TEST_FP_PIN_URL_5D21";
    let script =
        |pin: &str| format!("#!/bin/sh\ncurl -u deploy:{pin} https://deploy.example.net/\n");
    let url = |pin: &str| format!("https://deploy:{pin}@images.example.net/deb12.qcow2");
    // SAFETY of intent: variable names unique to this test; no other test reads them.
    unsafe {
        std::env::set_var(script_var, script("7391"));
        std::env::set_var(url_var, url("7391"));
    }
    let spec = server_install(&format!(
        "    os: byolinux_64\n    customizations:\n      hostname: web-01\n      imageURL: {{env: {url_var}}}\n      postInstallationScript: {{env: {script_var}}}\n"
    ));
    let published = spec.fingerprint.clone();
    let public = manifest::public_request(&spec).to_string();
    assert!(
        !public.contains("7391") && !public.contains(&b64(&script("7391"))),
        "{public}"
    );

    let candidate = |pin: &str| {
        let mut r = spec.request.clone();
        r["customizations"]["postInstallationScript"] = b64(&script(pin)).into();
        r["customizations"]["imageURL"] = url(pin).into();
        r
    };
    assert_eq!(
        candidate("7391"),
        spec.request,
        "the attacker's model of the request"
    );
    let v1 = |r: &serde_json::Value| {
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(manifest::canonical_json(r)))
        )
    };
    let published_v1 = v1(&spec.request);
    let mut v1_hits = Vec::new();
    for n in 0..10_000 {
        let pin = format!("{n:04}");
        let r = candidate(&pin);
        assert_eq!(
            manifest::fingerprint(&r, &spec.secret_paths),
            published,
            "candidate {pin} is distinguishable"
        );
        if v1(&r) == published_v1 {
            v1_hits.push(pin);
        }
    }
    // Against algorithm 1 the same search finds the secret: the test would catch a regression.
    assert_eq!(v1_hits, ["7391"]);
}

#[test]
fn env_values_are_secret_and_resolved() {
    let t = tempfile::tempdir().unwrap();
    let var = "OVHFORM_TEST_IMAGE_TOKEN_7F3A";
    // SAFETY of intent: a variable name unique to this test; no other test reads it.
    unsafe { std::env::set_var(var, "Bearer s3cr3t") };
    std::fs::write(
        t.path().join("s.yaml"),
        format!("apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: ns1.ip-1-2-3.eu}}\nspec:\n  install:\n    os: byolinux_64\n    customizations:\n      imageURL: https://images.example.net/deb.qcow2\n      httpHeaders:\n        Authorization: {{env: {var}}}\n        X-Plain/Header: {{file: hdr.txt}}\n      sshKey: {{file: key.pub, sensitive: true}}\n"),
    )
    .unwrap();
    std::fs::write(t.path().join("key.pub"), format!("{KEY}\n")).unwrap();
    std::fs::write(t.path().join("hdr.txt"), "visible").unwrap();
    let l =
        manifest::load(&[t.path().to_path_buf()]).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let i = l.desired.servers["ns1.ip-1-2-3.eu"]
        .install
        .clone()
        .unwrap();
    assert_eq!(
        i.request["customizations"]["httpHeaders"]["Authorization"],
        "Bearer s3cr3t"
    );
    // The key file's final newline is not part of the key.
    assert_eq!(i.request["customizations"]["sshKey"], KEY);
    let paths: Vec<&str> = i.secret_paths.iter().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/customizations/httpHeaders/Authorization",
            "/customizations/httpHeaders/X-Plain~1Header",
            "/customizations/sshKey"
        ]
    );
    let credentials: Vec<&str> = i.credential_paths.iter().map(String::as_str).collect();
    assert_eq!(
        credentials,
        [
            "/customizations/httpHeaders/Authorization",
            "/customizations/httpHeaders/X-Plain~1Header"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The JSON Schema.
// ---------------------------------------------------------------------------------------------

fn schema_from_binary() -> serde_json::Value {
    let out = ovhform(&["schema"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("schema is JSON")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

#[test]
fn schema_validates_every_example_document() {
    let schema = schema_from_binary();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut files = Vec::new();
    yaml_files(&root().join("manifests"), &mut files);
    let mut docs = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let values: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        for v in values {
            let errors: Vec<String> = validator
                .iter_errors(&v)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{} does not match the schema:\n{}",
                f.display(),
                errors.join("\n")
            );
            docs += 1;
        }
    }
    assert!(docs >= 8, "only {docs} documents checked");
    // And the schema is not vacuous: a misspelt field and a wrong kind are refused.
    let bad = serde_json::json!({"apiVersion": "ovhform/v1", "kind": "Server", "metadata": {"name": "x"}, "spec": {"boot": {"mode": "disk", "reboots": "never"}}});
    assert!(!validator.is_valid(&bad));
    let bad = serde_json::json!({"apiVersion": "ovhform/v1", "kind": "Servers", "metadata": {"name": "x"}});
    assert!(!validator.is_valid(&bad));
}

/// Every property name in the schema, recursively.
fn schema_properties(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|x| schema_properties(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| schema_properties(x, out)),
        _ => {}
    }
}

#[test]
fn docs_mention_every_schema_field_and_every_code() {
    let docs = std::fs::read_to_string(root().join("docs/manifest.md")).expect("docs/manifest.md");
    let mut props = std::collections::BTreeSet::new();
    schema_properties(&manifest::schema(), &mut props);
    assert!(props.len() > 50, "{props:?}");
    let missing: Vec<&String> = props
        .iter()
        .filter(|p| !docs.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/manifest.md does not document: {missing:?}"
    );
    let missing: Vec<String> = Code::ALL
        .iter()
        .filter(|c| !docs.contains(&format!("| {} | `{}` |", c.id(), c.slug())))
        .map(|c| c.to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/manifest.md error table lacks: {missing:?}"
    );
}

#[test]
fn help_explains_every_flag() {
    use clap::CommandFactory;
    fn check(cmd: &clap::Command, path: &str) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.len() > 10, "`{path}` flag `{id}` has no help text");
        }
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "subcommand `{path} {}` has no description",
                sub.get_name()
            );
            check(sub, &format!("{path} {}", sub.get_name()));
        }
    }
    check(&ovhform::cli::Cli::command(), "ovhform");
    let out = ovhform(&["validate", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--color",
        "--deny-warnings",
        "--log-format",
        "--verbose",
        "--quiet",
        "[PATH]",
    ] {
        assert!(text.contains(flag), "validate --help lacks {flag}:\n{text}");
    }
}

#[cfg(unix)]
#[test]
fn fifo_is_not_read() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("pipe.yaml");
    // Needs coreutils' mkfifo: said loudly rather than passing without testing anything.
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("this test needs `mkfifo` (coreutils) on PATH");
    assert!(made.success(), "mkfifo {} failed", fifo.display());
    // Reading a FIFO would block forever; the loader must refuse it up front.
    assert_fast_error(t.path(), Code::NotAFile);
}

/// An inline credential is refused, and neither its diagnostic nor a neighbouring one prints it.
#[test]
fn inline_http_header_is_refused_without_printing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("byo.yaml");
    std::fs::write(
        &path,
        "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: ns4000001.ip-1-2-3.eu\nspec:\n  install:\n    os: byolinux_64\n    customizations:\n      hostname: 1-starts-with-a-digit\n      imageURL: https://images.example.net/deb12.qcow2\n      httpHeaders:\n        Authorization: \"Basic TOPSECRET-HEADER\"\n",
    )
    .expect("write manifest");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .arg("validate")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run validate");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("E0315"), "{all}");
    assert!(
        all.contains("E0301"),
        "the hostname error is still reported: {all}"
    );
    assert!(!all.contains("TOPSECRET"), "{all}");
}
