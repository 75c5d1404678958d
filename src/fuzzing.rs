//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` call them; so does the stable
//! replay in `tests/it/fuzz_replay.rs`): every decoder of hostile bytes, driven from one
//! `&[u8]`, with the properties each must keep. A broken property panics, which is what a
//! fuzzer reports; a clean error for bad input is the expected outcome, never a failure.
//!
//! Owns: how fuzz bytes become each decoder's input, and the properties checked on the result.
//! Must not touch: any decoding logic itself (it calls the rooms' public functions, so what
//! is fuzzed is what runs), the network (the API client gets an in-memory transport, the
//! simulator is driven without a socket).
//!
//! Targets: [`manifest`], [`api_response`], [`saved_plan`], [`records`], [`sim_request`]
//! (listed in [`TARGETS`]; docs/fuzzing.md says what each asserts).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::escape;
use crate::ovh::{
    BoxFuture, Client, ClientConfig, Credentials, Endpoint, Error as OvhError, HttpRequest,
    HttpResponse, Secret, Transport, TransportError,
};

/// A target: any bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `cargo fuzz` and the replay test know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("api_response", api_response),
    ("saved_plan", saved_plan),
    ("records", records),
    ("sim_request", sim_request),
];

/// No character that could move a terminal's cursor, recolour, reorder or hide text; line
/// breaks only where `lines` allows them.
fn assert_printable(what: &str, text: &str, lines: bool) {
    if let Some(c) = text
        .chars()
        .find(|&c| escape::is_unsafe(c) && !(lines && c == '\n'))
    {
        panic!("{what} holds the unsafe character {c:?}: {text:?}");
    }
}

/// An error and its causes, each as displayed (what `miette` prints as "Caused by").
fn error_chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    chain
}

/// A current-thread runtime per thread, built once: the client and the simulator are async,
/// the targets are not.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime without I/O builds");
    }
    RT.with(|rt| rt.block_on(f))
}

// --- manifest --------------------------------------------------------------------------------

/// Files the examples reference (`../scripts/bootstrap.sh`, …), so that `{file: …}` resolves
/// for seeds taken from `manifests/`.
const SIDE_FILES: &[(&str, &str)] = &[
    ("scripts/bootstrap.sh", "#!/bin/sh\necho bootstrap\n"),
    (
        "ipxe/netboot.ipxe",
        "#!ipxe\ndhcp\nchain http://boot.example/x\n",
    ),
    (
        "cloud-init/web-user-data.txt",
        "#cloud-config\npackages: [nginx]\n",
    ),
    ("secret.txt", "s3cr3t-value\n"),
];

/// This thread's scratch tree: `servers/fuzz.yaml` plus [`SIDE_FILES`].
fn manifest_dir() -> PathBuf {
    thread_local! {
        static DIR: PathBuf = {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("ovhform-fuzz-{}-{n}", std::process::id()));
            for (rel, text) in SIDE_FILES {
                let p = dir.join(rel);
                std::fs::create_dir_all(p.parent().unwrap_or(&dir))
                    .and_then(|()| std::fs::write(&p, text))
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
            }
            std::fs::create_dir_all(dir.join("servers"))
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            dir
        };
    }
    DIR.with(Clone::clone)
}

/// Manifest loading: YAML bytes (one file, any number of documents) → validated desired state.
///
/// - errors: at least one; each has a message, names this file (or a file it references)
///   with a line inside it, and is one printable line; the rendered report is printable;
/// - success: loading again gives the same state (no dependence on thread scheduling); the
///   state survives a JSON round trip; every fingerprint is the one its request hashes to,
///   and the publishable request holds a placeholder at every secret path.
pub fn manifest(data: &[u8]) {
    let dir = manifest_dir();
    let file = dir.join("servers/fuzz.yaml");
    std::fs::write(&file, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    let first = crate::manifest::load(std::slice::from_ref(&file));
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    match first {
        Err(diags) => {
            assert!(diags.error_count() > 0, "Err without an error: {diags:?}");
            for d in diags.iter() {
                assert!(!d.message.trim().is_empty(), "empty message: {d:?}");
                // Messages keep the raw values; what reaches a terminal is their Display.
                assert_printable("diagnostic", &d.to_string(), false);
                let path = d
                    .file
                    .as_ref()
                    .unwrap_or_else(|| panic!("diagnostic names no file: {d:?}"));
                assert!(path.starts_with(&dir), "names {}: {d:?}", path.display());
                if *path == file {
                    assert!(
                        d.line as usize <= lines,
                        "line {} of {lines}: {d:?}",
                        d.line
                    );
                }
            }
            assert_printable("rendered diagnostics", &diags.render(false), true);
        }
        Ok(loaded) => {
            let again = crate::manifest::load(std::slice::from_ref(&file))
                .map(|l| l.desired)
                .map_err(|d| d.render(false));
            assert_eq!(again.as_ref(), Ok(&loaded.desired), "a second load differs");
            let json = serde_json::to_value(&loaded.desired).expect("desired state serialises");
            let back: crate::model::Desired =
                serde_json::from_value(json).expect("desired state reads back");
            assert_eq!(back, loaded.desired, "JSON round trip of the desired state");
            let specs = loaded
                .desired
                .servers
                .values()
                .chain(loaded.desired.tag_selectors.values().map(|t| &t.prototype));
            for s in specs {
                let Some(spec) = &s.install else { continue };
                assert_eq!(
                    spec.fingerprint,
                    crate::manifest::fingerprint(&spec.request, &spec.secret_paths),
                    "{}: fingerprint is not its request's",
                    s.name
                );
                let public = crate::manifest::public_request(spec);
                for p in &spec.secret_paths {
                    if let Some(v) = public.pointer(p) {
                        assert!(
                            only_placeholders(v),
                            "{}: secret {p} shows {v} in the public request",
                            s.name
                        );
                    }
                }
            }
        }
    }
}

fn only_placeholders(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            s == crate::manifest::SECRET_PLACEHOLDER || s == crate::manifest::CREDENTIAL_PLACEHOLDER
        }
        Value::Object(m) => m.values().all(only_placeholders),
        Value::Array(a) => a.iter().all(only_placeholders),
        _ => false,
    }
}

// --- api_response ------------------------------------------------------------------------------

/// Answers every request with one canned response (and `/auth/time` with a time).
struct Canned(HttpResponse);

impl Transport for Canned {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let answer = if request.url.ends_with("/auth/time") {
            HttpResponse {
                status: 200,
                headers: vec![],
                body: b"1700000000".to_vec(),
            }
        } else {
            self.0.clone()
        };
        Box::pin(async move { Ok(answer) })
    }
}

const STATUSES: [u16; 10] = [200, 200, 200, 200, 400, 403, 404, 409, 429, 503];
const SN: &str = "ns1.ip-1-2-3.eu";

/// A typed answer: it must survive a JSON round trip unchanged (what the client keeps is
/// what it read).
fn round_trip<T>(what: &str, v: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(v).unwrap_or_else(|e| panic!("{what}: cannot encode: {e}"));
    let back: T =
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{what}: cannot re-read: {e}"));
    assert_eq!(&back, v, "{what}: JSON round trip");
}

/// API response decoding: byte 0 picks a client call, byte 1 the status, then header lines
/// (`name: value`) up to an empty line, then the body, answered to every request of the call.
///
/// - a 2xx answer gives a value or a decode error, never an API or transport error;
/// - a decode error names the method, a path under the route and what failed;
/// - an API error carries the status answered (≥ 400) and a message;
/// - typed values survive a JSON round trip.
pub fn api_response(data: &[u8]) {
    let [route, status, rest @ ..] = data else {
        return;
    };
    let status = STATUSES[*status as usize % STATUSES.len()];
    let (head, body) = split_head(rest);
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let response = HttpResponse {
        status,
        headers,
        body: body.to_vec(),
    };
    let mut cfg = ClientConfig::new(
        Endpoint::parse("http://127.0.0.1:9/1.0").expect("a valid endpoint"),
        Credentials::ApplicationKey {
            application_key: "fuzz-ak".into(),
            application_secret: Secret::new("fuzz-as"),
            consumer_key: Secret::new("fuzz-ck"),
        },
    );
    cfg.requests_per_minute = 0;
    cfg.max_retries = 0;
    cfg.batch_size = 3;
    cfg.page_size = 3;
    let client = Client::with_transport(cfg, Arc::new(Canned(response)));
    let check = |call: &str, r: Result<(), OvhError>| match r {
        Ok(()) => {}
        Err(OvhError::Decode {
            method,
            path,
            status: s,
            message,
            ..
        }) => {
            assert!((200..300).contains(&s), "{call}: decode error on a {s}");
            assert_eq!(s, status, "{call}: status");
            assert!(
                !method.is_empty() && path.starts_with('/'),
                "{call}: {path}"
            );
            assert!(!message.trim().is_empty(), "{call}: empty decode message");
        }
        Err(OvhError::Api(e)) => {
            assert!(status >= 400, "{call}: API error on a {status}: {e:?}");
            assert_eq!(e.status, status, "{call}: status");
            assert!(!e.message.is_empty(), "{call}: empty API error message");
        }
        Err(other) => {
            // Some calls refuse an answer that contradicts the request (a listing that is
            // not a listing): that is fine as long as it is an error and says so.
            assert!(
                !other.to_string().trim().is_empty(),
                "{call}: error without a message"
            );
            assert!(
                status >= 400 || !matches!(other, OvhError::Transport { .. }),
                "{call}: transport error on an answer: {other}"
            );
        }
    };
    block_on(async {
        let ids = [1u64, 2, 3];
        match route % 16 {
            0 => check(
                "get_server",
                client
                    .get_server(SN)
                    .await
                    .map(|v| round_trip("server", &v)),
            ),
            1 => check("list_servers", client.list_servers().await.map(drop)),
            2 => check(
                "servers",
                client.servers(None).await.map(|v| {
                    for s in v.servers.values() {
                        round_trip("listed server", s);
                    }
                }),
            ),
            3 => check(
                "list_tasks",
                client
                    .list_tasks(SN, Some("reinstallServer"), None)
                    .await
                    .map(drop),
            ),
            4 => check(
                "get_task",
                client.get_task(SN, 7).await.map(|v| round_trip("task", &v)),
            ),
            5 => check(
                "get_tasks",
                client.get_tasks(SN, &ids).await.map(|v| {
                    for t in v.found.values() {
                        round_trip("batched task", t);
                    }
                }),
            ),
            6 => check(
                "installation_template",
                client
                    .installation_template("debian12_64")
                    .await
                    .map(|v| round_trip("template", &v)),
            ),
            7 => check(
                "compatible_templates",
                client
                    .compatible_templates(SN)
                    .await
                    .map(|v| round_trip("compatible templates", &v)),
            ),
            8 => check(
                "hardware",
                client
                    .hardware(SN)
                    .await
                    .map(|v| round_trip("hardware", &v)),
            ),
            9 => check(
                "install_status",
                client
                    .install_status(SN)
                    .await
                    .map(|v| round_trip("install status", &v)),
            ),
            10 => check(
                "iam_resource",
                client
                    .iam_resource("urn:v1:eu:resource:dedicatedServer:ns1")
                    .await
                    .map(|v| round_trip("IAM resource", &v)),
            ),
            11 => check(
                "template_infos",
                client
                    .template_infos()
                    .await
                    .map(|v| round_trip("template infos", &v)),
            ),
            12 => check(
                "get_planned_intervention",
                client
                    .get_planned_intervention(SN, 3)
                    .await
                    .map(|v| round_trip("planned intervention", &v)),
            ),
            13 => check(
                "netboots",
                client.netboots(SN, &ids).await.map(|v| {
                    for b in v.found.values() {
                        round_trip("netboot", b);
                    }
                }),
            ),
            14 => check(
                "tagged_servers",
                client.tagged_servers("ovhform:fingerprint").await.map(drop),
            ),
            _ => check(
                "relevant_tasks",
                client.relevant_tasks(SN).await.map(|v| {
                    for t in &v.tasks {
                        round_trip("relevant task", t);
                    }
                }),
            ),
        }
    });
}

/// Bytes up to the first empty line, and the rest.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&[], data),
    }
}

// --- saved_plan --------------------------------------------------------------------------------

/// Saved-plan loading (`ovhform apply FILE`): the bytes of the file, through
/// [`crate::cli::apply::parse_saved_plan`] for the default fleet.
///
/// - an error names the file (or, for another fleet, both fleets), and neither it nor any of
///   its causes holds a character a terminal would act on;
/// - an accepted plan passes the lint, is for this fleet, carries the id of these bytes,
///   survives `to_json` → `from_json` unchanged, and renders (text, Markdown) printable.
pub fn saved_plan(data: &[u8]) {
    use crate::cli::apply::{ApplyCliError, parse_saved_plan};
    let path = Path::new("fuzz-plan.json");
    let fleet = crate::model::DEFAULT_FLEET;
    match parse_saved_plan(path, data, fleet) {
        Err(e) => {
            let chain = error_chain(&e);
            match &e {
                ApplyCliError::FleetMismatch { .. } => assert!(chain[0].contains(fleet)),
                _ => assert!(chain[0].contains("fuzz-plan.json"), "{chain:?}"),
            }
            for c in &chain {
                assert_printable("saved-plan error", c, false);
            }
            // A mutated plan rarely keeps its checksum: the same plan with its checksum made
            // right still goes through the acceptance checks below.
            if let ApplyCliError::BadPlan {
                source: crate::plan::PlanError::Checksum { .. },
                ..
            } = &e
                && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data)
            {
                if let Some(m) = v.as_object_mut() {
                    m.remove("checksum");
                }
                if let Ok(plan) = serde_json::from_value::<crate::plan::Plan>(v) {
                    let fixed = plan.to_json();
                    if let Ok((plan, id)) = parse_saved_plan(path, fixed.as_bytes(), fleet) {
                        accepted_plan(&plan, &id, fixed.as_bytes(), fleet);
                    }
                }
            }
        }
        Ok((plan, id)) => accepted_plan(&plan, &id, data, fleet),
    }
}

/// What holds of every saved plan `apply` accepts.
fn accepted_plan(plan: &crate::plan::Plan, id: &str, data: &[u8], fleet: &str) {
    use crate::cli::apply::plan_id;
    use crate::cli::render::{PlanFormat, render};
    assert_eq!(id, plan_id(data));
    assert!(
        crate::plan::lint(plan).is_empty(),
        "accepted a plan the lint refuses"
    );
    assert_eq!(plan.fleet, fleet);
    let json = plan.to_json();
    let back = crate::plan::Plan::from_json(&json)
        .unwrap_or_else(|e| panic!("a plan's own JSON does not read back: {e}"));
    assert_eq!(&back, plan, "to_json → from_json changed the plan");
    assert_eq!(back.to_json(), json, "to_json is not stable");
    assert_printable(
        "text rendering",
        &render(plan, PlanFormat::Text, false),
        true,
    );
    assert_printable(
        "Markdown rendering",
        &render(plan, PlanFormat::Markdown, false),
        true,
    );
}

// --- records -----------------------------------------------------------------------------------

/// Tag and record decoding: byte 0 picks what the rest is —
/// 0: IAM tags, one `key=value` per line (`record_from_tags`); 1: a records file
/// (`state::file::decode_records`); 2: an intent journal entry.
///
/// - tags: no record key ⇔ no record; a record re-encodes to valid tags that decode to it
///   again, and every value escapes and unescapes to itself; an error names the server and the
///   tag, printable;
/// - records file: what decodes, re-encoded as the store writes it, decodes to the same
///   records; an error names the file;
/// - intent: what decodes survives a JSON round trip.
pub fn records(data: &[u8]) {
    use crate::state::tags;
    let [kind, rest @ ..] = data else { return };
    match kind % 3 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            let map: BTreeMap<String, String> = text
                .lines()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (l.to_string(), String::new()),
                })
                .collect();
            for v in map.values() {
                let escaped = tags::escape_value(v);
                assert!(escaped.chars().all(tags::is_tag_char), "{escaped:?}");
                assert_eq!(
                    tags::unescape_value(&escaped).as_ref(),
                    Ok(v),
                    "escape round trip"
                );
            }
            let server = "ns1.ip-1-2-3.eu";
            let has_key = tags::RECORD_TAG_KEYS.iter().any(|k| map.contains_key(*k));
            match tags::record_from_tags(server, &map) {
                Ok(None) => assert!(!has_key, "record keys ignored"),
                Ok(Some(rec)) => {
                    assert!(has_key);
                    assert_eq!(rec.server, server);
                    if let Ok(encoded) = tags::record_to_tags(&rec) {
                        for (k, v) in &encoded {
                            assert!(tags::is_valid_tag_key(k), "key {k:?}");
                            assert!(tags::is_valid_tag_value(v), "{k} = {v:?}");
                        }
                        let again = tags::record_from_tags(server, &encoded)
                            .unwrap_or_else(|e| panic!("own tags refused: {e}"));
                        assert_eq!(again.as_ref(), Some(&rec), "tags round trip");
                        let replaced = tags::replace_record_tags(&map, &rec)
                            .unwrap_or_else(|e| panic!("replace refused: {e}"));
                        for (k, v) in &map {
                            if !tags::RECORD_TAG_KEYS.contains(&k.as_str()) {
                                assert_eq!(replaced.get(k), Some(v), "foreign tag {k} lost");
                            }
                        }
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(server), "{msg}");
                    assert!(msg.contains(tags::TAG_PREFIX), "names no tag: {msg}");
                    assert_printable("tag record error", &msg, false);
                }
            }
        }
        1 => {
            let path = Path::new("fuzz-records.json");
            match crate::state::file::decode_records(path, rest) {
                Ok(records) => {
                    let bytes =
                        crate::state::file::encode_records(&records).expect("records encode");
                    let again = crate::state::file::decode_records(path, &bytes)
                        .unwrap_or_else(|e| panic!("own records file refused: {e}"));
                    assert_eq!(again, records, "records file round trip");
                }
                Err(e) => {
                    let chain = error_chain(&e);
                    assert!(
                        chain[0].contains("fuzz-records.json"),
                        "names no file: {chain:?}"
                    );
                    for c in &chain {
                        assert_printable("records file error", c, false);
                    }
                }
            }
        }
        _ => {
            if let Ok(intent) = serde_json::from_slice::<crate::model::Intent>(rest) {
                round_trip("intent", &intent);
            }
        }
    }
}

// --- sim_request -------------------------------------------------------------------------------

/// Fixed credentials of the fuzzed simulator: fuzz inputs may carry them (a fuzzer learns
/// compared strings), the signature over each request they cannot forge.
fn sim_credentials() -> crate::sim::SimCredentials {
    crate::sim::SimCredentials {
        application_key: "fuzzAppKey".into(),
        application_secret: "fuzzAppSecret".into(),
        consumer_key: "fuzzConsumerKey".into(),
        client_id: "fuzz-client".into(),
        client_secret: "fuzz-client-secret".into(),
    }
}

thread_local! {
    static SIM_CONFIG: RefCell<Option<crate::sim::SimConfig>> = const { RefCell::new(None) };
}

fn sim_config() -> crate::sim::SimConfig {
    SIM_CONFIG.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| crate::sim::SimConfig {
                credentials: sim_credentials(),
                speed: 0.0,
                delivery_history: true,
                ..crate::sim::SimConfig::default().with_generated_fleet(3, 7)
            })
            .clone()
    })
}

/// One parsed fuzz request and what the simulator made of it.
struct Exchange {
    signed: bool,
    parts: axum::http::request::Parts,
    before: BTreeMap<String, crate::sim::Server>,
    after: BTreeMap<String, crate::sim::Server>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses `data` as [`sim_request`] does and answers it from a fresh world; `None` for what
/// hyper would refuse before any handler runs (not the simulator's to parse).
fn exchange(data: &[u8]) -> Option<Exchange> {
    let [flags, rest @ ..] = data else {
        return None;
    };
    let signed = flags & 1 == 1;
    let (head, body) = split_head(rest);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let first = lines.next()?;
    let (method, target) = first.split_once(' ').unwrap_or(("GET", first));
    let mut builder = axum::http::Request::builder()
        .method(method.trim())
        .uri(target.trim());
    let mut has_host = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            has_host |= k.trim().eq_ignore_ascii_case("host");
            builder = builder.header(k.trim(), v.trim());
        }
    }
    if !has_host {
        builder = builder.header("host", "127.0.0.1");
    }
    let (mut parts, ()) = builder.body(()).ok()?.into_parts();
    if signed {
        sign_request(&mut parts, body);
    }
    let sim = crate::sim::InProcess::new(&sim_config());
    let before = sim.servers();
    let (status, headers, answer) = block_on(sim.answer(&parts, body));
    Some(Exchange {
        signed,
        parts,
        before,
        after: sim.servers(),
        status,
        headers,
        body: answer,
    })
}

/// The simulator's answer to a [`sim_request`] input (status, headers, body): how the
/// checked-in corpus of `api_response` was seeded with real answers.
pub fn sim_answer(data: &[u8]) -> Option<crate::sim::RawAnswer> {
    exchange(data).map(|e| (e.status, e.headers, e.body))
}

/// The simulator's request handling, without a socket: byte 0 says whether the harness signs
/// the request (bit 0) with the simulator's credentials; then a request line
/// `METHOD PATH[?QUERY]`, header lines up to an empty line, and the body. A fresh world per
/// input.
///
/// - every answer has a valid status, an `X-Ovh-QueryId` and a JSON body; an error answer
///   is an object with a message;
/// - a request the harness did not sign, with no bearer token, never changes the world.
pub fn sim_request(data: &[u8]) {
    let Some(e) = exchange(data) else { return };
    let status = e.status;
    assert!((100..600).contains(&status), "status {status}");
    assert!(
        e.headers.iter().any(|(k, _)| k == "x-ovh-queryid"),
        "no query id: {:?}",
        e.headers
    );
    let json: serde_json::Value = serde_json::from_slice(&e.body).unwrap_or_else(|err| {
        panic!(
            "{status} answer is not JSON ({err}): {:?}",
            String::from_utf8_lossy(&e.body)
        )
    });
    if status >= 400 {
        let said = |key: &str| {
            json.get(key)
                .and_then(|m| m.as_str())
                .is_some_and(|m| !m.is_empty())
        };
        // OAuth2's token endpoint answers RFC 6749's `{error, error_description}`.
        let oauth2 = e.parts.uri.path() == "/auth/oauth2/token";
        assert!(
            said("message") || (oauth2 && said("error")),
            "{status} error without a message: {json}"
        );
    }
    if !e.signed && !e.parts.headers.contains_key("authorization") {
        assert!(
            e.after == e.before,
            "an unsigned {} {} changed the world ({status} {json})",
            e.parts.method,
            e.parts.uri
        );
    }
}

/// Signs `parts` as the client does: over the URL the request addressed (Host header + path
/// and query), the body and the current time.
fn sign_request(parts: &mut axum::http::request::Parts, body: &[u8]) {
    let creds = sim_credentials();
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let url = format!("http://{host}{pq}");
    let ts = jiff::Timestamp::now().as_second().to_string();
    let sig = crate::sim::auth::signature(
        &creds.application_secret,
        &creds.consumer_key,
        parts.method.as_str(),
        &url,
        body,
        &ts,
    );
    for (k, v) in [
        ("x-ovh-application", creds.application_key),
        ("x-ovh-consumer", creds.consumer_key),
        ("x-ovh-timestamp", ts),
        ("x-ovh-signature", sig),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            parts.headers.insert(k, v);
        }
    }
}
