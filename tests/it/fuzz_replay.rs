//! The fuzz targets on stable, in CI: every checked-in input of `fuzz/corpus/<target>/`
//! replayed through the same `ovhform::fuzzing` functions the nightly fuzzer calls, then a
//! short seeded mutation run per target (bit flips, byte values, truncation, deletion,
//! duplication, splicing, dictionary tokens). The seed is printed; `OVHFORM_FUZZ_SEED=<n>`
//! replays a run, `OVHFORM_FUZZ_SECS=<s>` lengthens it (default 3 s per target).
//! Crashes the long runs found are the named `regression_*` tests below. docs/fuzzing.md.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ovhform::fuzzing::{self, TARGETS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn target_fn(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Runs one input; a broken property comes back as the panic's message.
fn run(f: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| f(input))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

#[test]
fn every_checked_in_input_replays_clean() {
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, f) in TARGETS {
        let files = corpus(name);
        assert!(
            !files.is_empty(),
            "fuzz/corpus/{name} is empty: the corpus is missing"
        );
        total += files.len();
        for (path, bytes) in files {
            if let Err(why) = run(*f, &bytes) {
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!("fuzz replay: {total} inputs clean");
}

// --- regressions: what the fuzzers found --------------------------------------------------------

fn printable_chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    for c in &chain {
        assert!(
            !c.chars().any(ovhform::escape::is_unsafe),
            "raw control character in {c:?}"
        );
    }
    chain
}

/// Found by `saved_plan` (stable mutation run, before the first long run): serde's message
/// quotes the file's text (`unknown variant `os-in\x1b[2Jstall``) and reached the terminal
/// raw, in the error and again as its cause.
#[test]
fn regression_saved_plan_error_escapes_the_text_it_quotes() {
    let input = br#"{"format_version": 3, "fleet": "default", "servers": {"a": {"actions": [{"type": "\u001b[2Jreinstall"}]}}}"#;
    fuzzing::saved_plan(input);
    let e = ovhform::cli::apply::parse_saved_plan(Path::new("plan.json"), input, "default")
        .expect_err("not a plan");
    let chain = printable_chain(&e);
    assert!(chain[0].contains("plan.json"), "{chain:?}");
    assert!(
        chain.iter().any(|c| c.contains("\\x1b[2Jreinstall")),
        "the quoted text is shown, escaped: {chain:?}"
    );
}

/// Found by `records` once its errors were held to the same rule: a corrupt records file's
/// message quoted its text raw.
#[test]
fn regression_records_file_error_escapes_the_text_it_quotes() {
    let input =
        br#"{"formatVersion": 1, "applied": {"ns1": {"boot": {"mode": "\u001b]0;owned\u0007"}}}}"#;
    let mut framed = vec![1u8];
    framed.extend_from_slice(input);
    fuzzing::records(&framed);
    let e = ovhform::state::file::decode_records(Path::new("records.json"), input)
        .expect_err("not records");
    let chain = printable_chain(&e);
    assert!(
        chain[0].contains("records.json") && chain[0].contains("\\x1b]0;owned"),
        "{chain:?}"
    );
}

/// Found by `api_response`: an error body with a class and no message gave an API error
/// with an empty message ("OVHcloud API error: GET … 404 Client::NotFound: ").
#[test]
fn regression_api_error_without_a_message_says_so() {
    fuzzing::api_response(b"\x00\x06\n\n{\"class\":\"Client::NotFound\"}");
    fuzzing::api_response(b"\x00\x04\n\n{\"errorCode\":\"INVALID_SIGNATURE\",\"message\":\"  \"}");
}

/// Found by `manifest` (stable mutation run): the YAML parser breaks lines at a lone CR too,
/// so a syntax error after one was reported at `fuzz.yaml:10:14` in a 9-line file — a line
/// no editor, snippet or CI annotation shows. Lines are now counted as the snippet counts them.
#[test]
fn regression_manifest_line_after_a_lone_cr_stays_inside_the_file() {
    let input = "# expe: nights\nspec:\n  schedule: \"0 0 2ct: E0605 line 7\napiVersiZ\ron: ovhform/v1\nkind: MaintenanceWindow\nmetadata:\n  name: nights\nspec:\n  schedule: \"0 0 2";
    fuzzing::manifest(input.as_bytes());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("w.yaml");
    std::fs::write(&file, input).expect("write the manifest");
    let diags = ovhform::manifest::load(&[file]).expect_err("not a valid manifest");
    let lines = input.lines().count() as u32;
    for d in diags.iter() {
        assert!(
            d.line >= 1 && d.line <= lines,
            "line {} of {lines}: {d}",
            d.line
        );
    }
}

// --- the short stable mutation run ------------------------------------------------------------

/// Byte strings that mean something to one decoder or another; libFuzzer learns them from
/// comparisons, a short run needs them handed over.
const TOKENS: &[&[u8]] = &[
    b"ovhform:",
    b"ovhform:format",
    b"ovhform:fingerprint",
    b"@",
    b"@1B",
    b"@ZZ",
    b"\x1b[31m",
    "\u{202e}".as_bytes(),
    "\u{200b}".as_bytes(),
    b"\\u001b",
    b"\\ud800",
    b"{file: ",
    b"{env: HOME}",
    b"{base64: ",
    b"&a ",
    b"*a",
    b"<<: ",
    b"!!str ",
    b"---\n",
    b"\"",
    b"null",
    b"[]",
    b"{}",
    b"-1",
    b"0",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1e999",
    b"9999-12-31T23:59:59Z",
    b"\"type\": \"reinstall\"",
    b"\"format_version\": 3",
    b"\"formatVersion\": 1",
    b"X-Ovh-Batch: ,\n",
    b"X-Pagination-Mode: CachedObjectList-Pages\n",
    b"Authorization: Bearer x\n",
    b"x-pagination-elements: 99999999999\n",
    b"retry-after: 99999999999\n",
    b"%00",
    b"%2e%2e",
    b"/",
    b",",
    b"\n\n",
];

fn mutate(rng: &mut StdRng, input: &[u8], others: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] = *[0u8, 0xff, 0x7f, 0x80, b'\n', b'"', b'{', b':', b' ', b'-']
                    .get(rng.random_range(0..10))
                    .unwrap_or(&0);
            }
            2 if len > 0 => out.truncate(rng.random_range(0..len)),
            3 if len > 1 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                out.drain(a..b);
            }
            4 if len > 1 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                let piece = out[a..b].to_vec();
                let at = rng.random_range(0..=len);
                out.splice(at..at, piece);
            }
            5 if !others.is_empty() => {
                let other = &others[rng.random_range(0..others.len())].1;
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let b = rng.random_range(a..=other.len());
                    let at = rng.random_range(0..=len);
                    out.truncate(at);
                    out.extend_from_slice(&other[a..b]);
                }
            }
            6 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                let at = rng.random_range(0..=len);
                out.splice(at..at, token.iter().copied());
            }
            _ => {
                let at = rng.random_range(0..=len);
                let n = rng.random_range(1..8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                out.splice(at..at, bytes);
            }
        }
    }
    out
}

fn seed() -> u64 {
    match std::env::var("OVHFORM_FUZZ_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("OVHFORM_FUZZ_SEED={s:?} is not a whole number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

fn budget() -> Duration {
    let secs = std::env::var("OVHFORM_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Mutates the target's corpus for the time budget; the first broken property fails the test
/// with the seed, the input and what broke.
fn mutation_run(name: &str) {
    let f = target_fn(name);
    let files = corpus(name);
    assert!(!files.is_empty(), "fuzz/corpus/{name} is empty");
    let seed = seed();
    eprintln!("fuzz {name}: seed {seed} (OVHFORM_FUZZ_SEED={seed} replays this run)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let budget = budget();
    let mut execs = 0u64;
    while started.elapsed() < budget {
        let base = &files[rng.random_range(0..files.len())].1;
        let input = mutate(&mut rng, base, &files);
        execs += 1;
        if let Err(why) = run(f, &input) {
            panic!(
                "fuzz {name}: property broken (OVHFORM_FUZZ_SEED={seed}, input {execs}): {why}\n\
                 input: {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
    assert!(execs > 0, "no input ran in {budget:?}");
    eprintln!(
        "fuzz {name}: {execs} mutated inputs in {:.1} s, all properties held",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn mutation_run_manifest() {
    mutation_run("manifest");
}

#[test]
fn mutation_run_api_response() {
    mutation_run("api_response");
}

#[test]
fn mutation_run_saved_plan() {
    mutation_run("saved_plan");
}

#[test]
fn mutation_run_records() {
    mutation_run("records");
}

#[test]
fn mutation_run_sim_request() {
    mutation_run("sim_request");
}

/// The mutation loop can fail: an input that breaks a property is reported, not swallowed.
#[test]
fn a_broken_property_is_reported() {
    let broken: fn(&[u8]) = |d| assert!(!d.starts_with(b"boom"), "boom");
    assert_eq!(run(broken, b"fine"), Ok(()));
    assert!(run(broken, b"boom!").unwrap_err().contains("boom"));
}

// --- seeding the corpus -------------------------------------------------------------------------

/// Writes the seed inputs (`seed-*`) of every target into `fuzz/corpus/`: the example and
/// fixture manifests, the simulator's real answers, saved plans, records and tags. Run once
/// before the first fuzzing run: `cargo test --test it fuzz_replay::write_seed_corpus --
/// --ignored`; `cargo fuzz cmin` then keeps what adds coverage.
#[test]
#[ignore = "writes fuzz/corpus; run by hand when seeding (docs/fuzzing.md)"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("create the corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
    };

    // manifest: every example and fixture file, and the examples as one stream.
    let mut all = Vec::new();
    for dir in ["manifests", "tests/fixtures/invalid", "tests/fixtures/ci"] {
        for p in walk(&root.join(dir)) {
            if p.extension().is_some_and(|e| e == "yaml") {
                let bytes = std::fs::read(&p).expect("read a manifest");
                let name = p.strip_prefix(root).expect("under the root").display();
                write("manifest", &name.to_string().replace('/', "_"), &bytes);
                if dir == "manifests" {
                    all.extend_from_slice(b"---\n");
                    all.extend_from_slice(&bytes);
                }
            }
        }
    }
    write("manifest", "all-examples.yaml", &all);

    // sim_request and api_response: requests to the simulator, and its answers.
    let sn = "ns3000001.ip-51-68-1.eu";
    let ask = |name: &str, signed: bool, request: &str| -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut input = vec![u8::from(signed)];
        input.extend_from_slice(request.as_bytes());
        write("sim_request", name, &input);
        fuzzing::sim_answer(&input).expect("a well-formed request")
    };
    let (_, _, listing) = ask("list", true, "GET /1.0/dedicated/server\n\n");
    let names: Vec<String> = serde_json::from_slice(&listing).expect("a listing");
    let sn = names.first().map(String::as_str).unwrap_or(sn).to_string();
    let (_, _, tasks) = ask(
        "tasks",
        true,
        &format!("GET /1.0/dedicated/server/{sn}/task\n\n"),
    );
    let task_ids: Vec<u64> = serde_json::from_slice(&tasks).unwrap_or_default();
    let task = task_ids.first().copied().unwrap_or(1);
    let (_, _, boots) = ask(
        "boots",
        true,
        &format!("GET /1.0/dedicated/server/{sn}/boot\n\n"),
    );
    let boot_ids: Vec<u64> = serde_json::from_slice(&boots).unwrap_or_default();
    let joined = |ids: &[u64]| {
        ids.iter()
            .take(3)
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let (_, _, server) = ask(
        "server",
        true,
        &format!("GET /1.0/dedicated/server/{sn}\n\n"),
    );
    let urn = serde_json::from_slice::<serde_json::Value>(&server)
        .ok()
        .and_then(|v| v["iam"]["urn"].as_str().map(str::to_string))
        .unwrap_or_default();
    let reinstall = serde_json::json!({
        "operatingSystem": "debian12_64",
        "customizations": {"hostname": "web-01", "sshKey": "ssh-ed25519 AAAA x"},
    })
    .to_string();
    // (route byte of `api_response`, seed name, signed, request)
    let requests: Vec<(Option<u8>, &str, bool, String)> = vec![
        (Some(0), "get-server", true, format!("GET /1.0/dedicated/server/{sn}\n\n")),
        (Some(1), "list-servers", true, "GET /1.0/dedicated/server\n\n".into()),
        (
            Some(2),
            "expanded-listing",
            true,
            "GET /1.0/dedicated/server\nX-Pagination-Mode: CachedObjectList-Pages\nX-Pagination-Size: 3\n\n".into(),
        ),
        (Some(3), "list-tasks", true, format!("GET /1.0/dedicated/server/{sn}/task?function=reinstallServer\n\n")),
        (Some(4), "get-task", true, format!("GET /1.0/dedicated/server/{sn}/task/{task}\n\n")),
        (
            Some(5),
            "batch-tasks",
            true,
            format!("GET /1.0/dedicated/server/{sn}/task/{}\nX-Ovh-Batch: ,\n\n", joined(&task_ids)),
        ),
        (Some(6), "template", false, "GET /1.0/dedicated/installationTemplate/debian12_64\n\n".into()),
        (Some(7), "compatible", true, format!("GET /1.0/dedicated/server/{sn}/install/compatibleTemplates\n\n")),
        (Some(8), "hardware", true, format!("GET /1.0/dedicated/server/{sn}/specifications/hardware\n\n")),
        (Some(9), "install-status", true, format!("GET /1.0/dedicated/server/{sn}/install/status\n\n")),
        (Some(10), "iam-resource", true, format!("GET /v2/iam/resource/{urn}\n\n")),
        (Some(11), "template-infos", false, "GET /1.0/dedicated/installationTemplate/templateInfos\n\n".into()),
        (Some(12), "interventions", true, format!("GET /1.0/dedicated/server/{sn}/plannedIntervention\n\n")),
        (
            Some(13),
            "batch-boots",
            true,
            format!("GET /1.0/dedicated/server/{sn}/boot/{}\nX-Ovh-Batch: ,\n\n", joined(&boot_ids)),
        ),
        (Some(14), "tag-filter", true, "GET /1.0/dedicated/server?iamTags=%7B%22ovhform%3Afingerprint%22%3A%5B%7B%22operator%22%3A%22EXISTS%22%7D%5D%7D\n\n".into()),
        (
            Some(15),
            "expanded-tasks",
            true,
            format!("GET /1.0/dedicated/server/{sn}/task\nX-Pagination-Mode: CachedObjectList-Pages\n\n"),
        ),
        (None, "reinstall", true, format!("POST /1.0/dedicated/server/{sn}/reinstall\ncontent-type: application/json\n\n{reinstall}")),
        (None, "reinstall-unsigned", false, format!("POST /1.0/dedicated/server/{sn}/reinstall\n\n{reinstall}")),
        (None, "put-server", true, format!("PUT /1.0/dedicated/server/{sn}\n\n{{\"monitoring\":false,\"bootId\":1}}")),
        (None, "reboot", true, format!("POST /1.0/dedicated/server/{sn}/reboot\n\n")),
        (None, "iam-put", true, format!("PUT /v2/iam/resource/{urn}\n\n{{\"tags\":{{\"ovhform:format\":\"2\",\"env\":\"prod\"}}}}")),
        (None, "iam-add-tag", true, format!("POST /v2/iam/resource/{urn}/tag\n\n{{\"key\":\"team\",\"value\":\"db\"}}")),
        (None, "cancel-task", true, format!("POST /1.0/dedicated/server/{sn}/task/{task}/cancel\n\n")),
        (None, "auth-time", false, "GET /1.0/auth/time\n\n".into()),
        (None, "credential", true, "GET /1.0/auth/currentCredential\n\n".into()),
        (None, "oauth2", false, "POST /auth/oauth2/token\ncontent-type: application/x-www-form-urlencoded\n\ngrant_type=client_credentials&client_id=fuzz-client&client_secret=fuzz-client-secret&scope=all".into()),
        (None, "unknown", false, "GET /1.0/nowhere?x=%zz&y\n\n".into()),
    ];
    for (route, name, signed, request) in &requests {
        let (status, headers, body) = ask(name, *signed, request);
        eprintln!("seed {name}: {status}");
        let Some(route) = route else { continue };
        let status_byte = match status {
            400 => 4,
            403 => 5,
            404 => 6,
            409 => 7,
            429 => 8,
            s if s >= 500 => 9,
            _ => 0,
        };
        let mut input = vec![*route, status_byte];
        let kept: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.starts_with("x-pagination") || k == "x-ovh-queryid")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        input.extend_from_slice(kept.join("\n").as_bytes());
        input.extend_from_slice(b"\n\n");
        input.extend_from_slice(&body);
        write("api_response", name, &input);
    }
    // The error bodies' two shapes, on a route that decodes an object.
    write(
        "api_response",
        "error-class",
        b"\x00\x06\n\n{\"class\":\"Client::NotFound\",\"message\":\"The requested object (serviceName = ns1) does not exist\"}",
    );
    write(
        "api_response",
        "error-legacy",
        b"\x04\x05\n\n{\"errorCode\":\"INVALID_SIGNATURE\",\"httpCode\":\"400 Bad Request\",\"message\":\"Invalid signature\"}",
    );
    write("api_response", "retry-after", b"\x01\x08retry-after: 7\n\n");

    // saved_plan: the scenario plan of the render snapshots, and plans of the test kit.
    let snap = std::fs::read_to_string(
        root.join("tests/it/snapshots/it__plan_render__scenario_json.snap"),
    )
    .expect("the scenario snapshot");
    let json = snap
        .splitn(3, "---\n")
        .nth(2)
        .expect("an insta snapshot body");
    write("saved_plan", "scenario.json", json.as_bytes());
    let now: jiff::Timestamp = "2026-11-23T12:00:00Z".parse().expect("a time");
    for (n, with_detail) in [(1, true), (3, true), (2, false)] {
        let (desired, observed, records) = ovhform::plan::testkit::fleet(n, now, with_detail);
        let plan = ovhform::plan::plan(
            &desired,
            &observed,
            &records,
            &ovhform::plan::PlanInput::new(now),
        );
        write(
            "saved_plan",
            &format!("fleet-{n}-{with_detail}.json"),
            plan.to_json().as_bytes(),
        );
        // records: the test kit's records as the store writes them, and as tags.
        let bytes = ovhform::state::file::encode_records(&records).expect("records encode");
        let mut input = vec![1u8];
        input.extend_from_slice(&bytes);
        write(
            "records",
            &format!("records-{n}-{with_detail}.json"),
            &input,
        );
        for rec in records.installs.values().take(1) {
            let tags = ovhform::state::record_to_tags(rec).expect("a record as tags");
            let mut input = vec![0u8];
            for (k, v) in &tags {
                input.extend_from_slice(format!("{k}={v}\n").as_bytes());
            }
            input.extend_from_slice(b"env=prod\n");
            write("records", &format!("tags-{n}-{with_detail}"), &input);
        }
    }
    write(
        "records",
        "tags-format-1",
        b"\x00ovhform:format=1\novhform:fingerprint=sha256:00\novhform:os=debian12_64\novhform:generation=3\novhform:task=12\novhform:started=2026-01-01T00:00:00Z\n",
    );
    write(
        "records",
        "tags-partial",
        b"\x00ovhform:format=2\novhform:os=deb@20ian\n",
    );
    write(
        "records",
        "records-empty.json",
        b"\x01{\"formatVersion\":1,\"installs\":{}}",
    );
    for (name, state) in [
        ("intent-journaled.json", r#"{"state":"journaled"}"#),
        ("intent-posted.json", r#"{"state":"posted","task_id":42}"#),
    ] {
        let text = format!(
            r#"{{"id":"ns1@1700000000000","server":"ns1","fleet":"default","fingerprint":"sha256:00","requestDigest":"sha256:11","os":"debian12_64","generation":1,"created":"2026-01-01T00:00:00Z","planId":null,"state":{state}}}"#
        );
        let mut input = vec![2u8];
        input.extend_from_slice(text.as_bytes());
        write("records", name, &input);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
