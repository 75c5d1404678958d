//! Bad input that is not a manifest: saved plans that are truncated, garbled or made for
//! another fleet, and API answers that are huge, malformed, of the wrong type or trickled
//! (slowloris). Each gives a clear error naming what was wrong, and nothing is written to the
//! API. The API answers go through a hostile proxy in front of the simulator, so the real
//! binary, its real transport and its real decoding meet them.
//!
//! (A saved plan whose manifests changed since is refused per server:
//! `apply_cli::a_saved_plan_whose_manifest_changed_refuses_that_server_and_applies_the_rest`.)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::stream;
use ovhform::sim::SimHandle;

use crate::cli_support::{IGNORE_WEB_WINDOWS, Run, WEB2, Workdir, demo_sim, manifests, writes};
use crate::sim_support;

/// What the proxy answers instead of the simulator, for the routes it targets.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// A well-formed JSON array that never ends before 40 MiB.
    Huge,
    /// The start of a JSON document, cut off.
    Malformed,
    /// Valid JSON of the wrong shape: an object where the listing is an array.
    WrongType,
    /// The headers at once, then one byte of body every 300 ms, forever.
    Slowloris,
    /// The simulator's real answer with one field's type changed (`"os": 42`).
    FieldOfWrongType,
}

struct Proxy {
    sim: SocketAddr,
    /// (the path the proxy targets, what it answers there).
    rule: (String, Hostile),
    http: reqwest::Client,
    hits: Mutex<u32>,
    /// Every request that reached the proxy: `METHOD /path`.
    log: Mutex<Vec<String>>,
}

/// A proxy on 127.0.0.1 in front of `sim`, answering `hostile` on GETs of `path` (under
/// `/1.0`). The `Host` header passes through untouched: the simulator checks signatures over
/// the URL the client addressed, which is the proxy's.
async fn hostile_proxy(sim: &SimHandle, path: &str, hostile: Hostile) -> (SocketAddr, Arc<Proxy>) {
    let proxy = Arc::new(Proxy {
        sim: sim.addr(),
        rule: (format!("/1.0{path}"), hostile),
        http: sim_support::http(),
        hits: Mutex::new(0),
        log: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, proxy)
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    p.log
        .lock()
        .unwrap()
        .push(format!("{} {}", parts.method, parts.uri.path()));
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let targeted = parts.method == axum::http::Method::GET && parts.uri.path() == p.rule.0;
    if targeted {
        *p.hits.lock().unwrap() += 1;
        match p.rule.1 {
            Hostile::Huge => return json_stream(huge_array()),
            Hostile::Malformed => return json(Body::from(r#"[{"name":"ns3000001.ip-51-"#)),
            Hostile::WrongType => return json(Body::from(r#"{"servers":3,"next":null}"#)),
            Hostile::Slowloris => return json_stream(trickle()),
            Hostile::FieldOfWrongType => {}
        }
    }
    let url = format!(
        "http://{}{}",
        p.sim,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut out = p
        .http
        .request(parts.method.clone(), url)
        .body(body.to_vec());
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let answer = out.send().await.expect("the simulator answers the proxy");
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.expect("body").to_vec();
    if targeted && status.is_success() {
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("sim JSON");
        v["os"] = serde_json::json!(42);
        bytes = serde_json::to_vec(&v).expect("json");
    }
    let mut resp = Response::builder().status(status);
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            resp = resp.header(k, v);
        }
    }
    resp.body(Body::from(bytes)).expect("response")
}

fn json(body: Body) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-ovh-queryid", "EU.hostile-proxy")
        .body(body)
        .expect("response")
}

fn json_stream(
    s: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    json(Body::from_stream(s))
}

/// 40 MiB of `["ns0.example", "ns0.example", …` in 64 KiB chunks, no declared length.
fn huge_array() -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let item = "\"ns0.example\",";
    let chunk: Bytes = item.repeat(64 * 1024 / item.len()).into();
    let first = Bytes::from_static(b"[");
    stream::iter(
        std::iter::once(first)
            .chain(std::iter::repeat_n(chunk, 40 * 16))
            .map(Ok),
    )
}

fn trickle() -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Some((Ok(Bytes::from_static(b" ")), ()))
    })
}

/// `ovhform <args>` with its API endpoint at the proxy, patient for 2 s a request, 1 retry.
async fn run_through(work: &Workdir, sim: &SimHandle, proxy: SocketAddr, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    // apply's `--timeout` is how long it follows a task; its per-request one is renamed.
    let timeout = if args[0] == "apply" {
        "--request-timeout"
    } else {
        "--timeout"
    };
    all.extend([timeout, "2s", "--retries", "1"]);
    let mut cmd = work.command(sim, &all);
    cmd.env("OVH_ENDPOINT", format!("http://{proxy}/1.0"));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run ovhform"))
        .await
        .expect("ovhform task");
    Run::from(out)
}

/// The words of `s`, one space apart: a message the terminal renderer wrapped, unwrapped.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn apply_args(m: &str) -> Vec<&str> {
    let mut args = vec![
        "apply",
        "--manifests",
        m,
        "--auto-approve",
        "--allow-wipe-all",
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    args
}

/// The listing of servers answered with `hostile`: plan and apply both stop with `expect` in
/// their error, exit 1, and nothing is written.
async fn the_listing_answered(hostile: Hostile, expect: &[&str]) {
    let sim = demo_sim(1000.0).await;
    let (proxy, state) = hostile_proxy(&sim, "/dedicated/server", hostile).await;
    let work = Workdir::new();
    let m = manifests();
    for args in [vec!["plan", "--manifests", &m], apply_args(&m)] {
        let started = Instant::now();
        let run = run_through(&work, &sim, proxy, &args).await;
        assert_eq!(run.code, Some(1), "{hostile:?} {args:?}\n{run}");
        let said = flat(&run.stderr);
        for e in expect {
            assert!(said.contains(e), "{hostile:?}: {e:?} in\n{run}");
        }
        assert!(
            said.contains("GET /dedicated/server"),
            "the error names the request\n{run}"
        );
        assert!(!run.stderr.contains("panicked"), "{run}");
        // Bounded: two 2-s attempts and a backoff at most, whatever the answer does.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{hostile:?} took {:?}",
            started.elapsed()
        );
    }
    assert!(
        *state.hits.lock().unwrap() >= 2,
        "the hostile answer was served"
    );
    assert_eq!(writes(&sim), 0, "nothing written: {:?}", sim.calls());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_api_answer_is_refused_unread() {
    the_listing_answered(
        Hostile::Huge,
        &["larger than 32 MiB", "refused unread", "--endpoint"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_api_answer_is_not_understood() {
    the_listing_answered(
        Hostile::Malformed,
        &["is not understood", "X-Ovh-QueryId: EU.hostile-proxy"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_answer_of_the_wrong_type_is_not_understood() {
    the_listing_answered(Hostile::WrongType, &["is not understood", "invalid type"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_api_answer_times_out() {
    the_listing_answered(Hostile::Slowloris, &["timed out after 2s"]).await;
}

/// One server's details of the wrong type: that server is not acted on (whatever else the
/// run does), and the error names its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_answer_of_the_wrong_type_stops_any_action_on_it() {
    let sim = demo_sim(1000.0).await;
    let path = format!("/dedicated/server/{WEB2}");
    let (proxy, state) = hostile_proxy(&sim, &path, Hostile::FieldOfWrongType).await;
    let work = Workdir::new();
    let m = manifests();
    let run = run_through(&work, &sim, proxy, &apply_args(&m)).await;
    assert!(*state.hits.lock().unwrap() >= 1, "served\n{run}");
    let all = flat(&format!("{}{}", run.stdout, run.stderr));
    assert!(
        all.contains(&format!("GET {path}")) && all.contains("not understood"),
        "the error names the request\n{run}"
    );
    assert!(!run.stderr.contains("panicked"), "{run}");
    // The others went on: the bad answer stopped its own server only.
    assert!(
        run.stdout.contains(&format!("FAILED: {WEB2}")) && run.stdout.contains("converged: "),
        "{run}"
    );
    let written: Vec<String> = state
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.starts_with("GET "))
        .cloned()
        .collect();
    assert!(
        !written.iter().any(|r| r.contains(WEB2)),
        "nothing written for {WEB2}: {written:?}\n{run}"
    );
    sim.shutdown().await;
}

/// Whether the changed byte broke the JSON or only a string, the plan is refused as not what
/// `ovhform plan` wrote.
const GARBLED: &[&str] = &[
    "is not a plan this ovhform can apply",
    "re-run `ovhform plan --out FILE`",
];
const NOT_JSON: &[&str] = &[
    "is not a plan this ovhform can apply",
    "not valid JSON",
    "re-run `ovhform plan --out FILE`",
];

/// A saved plan: the good one, then damaged copies. `apply --plan` refuses each with what is
/// wrong and where, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_foreign_saved_plan_is_refused_and_nothing_runs() {
    let sim = demo_sim(1000.0).await;
    let work = Workdir::new();
    let m = manifests();
    let saved = work.path().join("reviewed.plan.json");
    let saved_s = saved.display().to_string();
    let made = work
        .run(&sim, &["plan", "--manifests", &m, "--out", &saved_s])
        .await;
    assert_eq!(made.code, Some(0), "{made}");
    let good = std::fs::read(&saved).expect("saved plan");
    assert!(good.len() > 200, "a real plan: {} bytes", good.len());
    let mid = good.len() / 2;

    let mut garbled_json = good.clone();
    // A brace in the middle of the document: still UTF-8, maybe still JSON (inside a string).
    garbled_json[mid] = b'}';
    let mut not_utf8 = good.clone();
    not_utf8[mid..mid + 4].copy_from_slice(&[0xff, 0xfe, 0x00, 0xc3]);
    let edited = String::from_utf8(good.clone()).expect("utf8").replacen(
        "\"format_version\": 3",
        "\"format_version\": 99",
        1,
    );
    // (name, the file's bytes, extra flags, what the error says)
    type Case<'a> = (&'a str, Vec<u8>, Vec<&'a str>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        ("truncated", good[..mid].to_vec(), vec![], NOT_JSON),
        ("garbled", garbled_json, vec![], GARBLED),
        ("not-utf8", not_utf8, vec![], &["is not UTF-8 text"]),
        ("empty", Vec::new(), vec![], NOT_JSON),
        (
            "future-format",
            edited.into_bytes(),
            vec![],
            &["format_version"],
        ),
        (
            "other-fleet",
            good.clone(),
            vec!["--fleet", "another-fleet"],
            &["is for fleet default, this run is for fleet another-fleet"],
        ),
    ];
    for (name, bytes, extra, expect) in cases {
        let file = work.path().join(format!("{name}.plan.json"));
        std::fs::write(&file, &bytes).expect("write plan");
        let file_s = file.display().to_string();
        let mut args = vec!["apply", "--manifests", &m, "--auto-approve"];
        args.extend(extra);
        args.extend(["--allow-wipe-all", &file_s]);
        let run = work.run(&sim, &args).await;
        assert_eq!(run.code, Some(1), "{name}\n{run}");
        let said = flat(&run.stderr);
        for e in expect {
            assert!(said.contains(e), "{name}: {e:?} in\n{run}");
        }
        assert!(
            said.contains(&format!("{name}.plan.json")),
            "{name}: the error names the file\n{run}"
        );
        assert!(!run.stderr.contains("panicked"), "{name}\n{run}");
        assert_eq!(writes(&sim), 0, "{name}: nothing written {:?}", sim.calls());
    }
    sim.shutdown().await;
}
