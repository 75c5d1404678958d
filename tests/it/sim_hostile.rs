//! The simulator under hostile or malformed input: it must answer API errors (with an
//! `X-Ovh-QueryId`), never panic or drop the connection — malformed JSON, wrong JSON types,
//! oversized bodies, bad percent-encoding, unknown servers, non-numeric or huge ids, overflowing
//! counts and cursors — and it verifies signatures over the URL the client addressed (the
//! `Host` header), not over its own bind address.

use ovhform::sim::SimHandle;
use reqwest::Method;
use serde_json::{Value, json};

use super::sim_support::{self, HYBRID, RAID};

/// One signed request with a raw body; returns status, QueryId presence and the JSON body.
async fn raw(
    sim: &SimHandle,
    method: Method,
    path: &str,
    body: &[u8],
    host: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, bool, Value) {
    let c = sim.credentials();
    let signed_host = host.map_or_else(|| sim.addr().to_string(), str::to_string);
    let signed_url = format!("http://{signed_host}{path}");
    let ts = jiff::Timestamp::now().as_second().to_string();
    let sig = ovhform::sim::auth::signature(
        &c.application_secret,
        &c.consumer_key,
        method.as_str(),
        &signed_url,
        body,
        &ts,
    );
    let mut req = sim_support::http()
        .request(method.clone(), format!("{}{path}", sim.root_url()))
        .header("X-Ovh-Application", &c.application_key)
        .header("X-Ovh-Consumer", &c.consumer_key)
        .header("X-Ovh-Timestamp", &ts)
        .header("X-Ovh-Signature", sig)
        .body(body.to_vec());
    if let Some(h) = host {
        req = req.header("Host", h);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer ({e}): did the simulator panic?"));
    let status = resp.status().as_u16();
    let qid = resp.headers().contains_key("x-ovh-queryid");
    let bytes = resp.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, qid, body)
}

/// method, path, raw body, extra headers, expected status.
type Case = (
    Method,
    String,
    Vec<u8>,
    Vec<(&'static str, &'static str)>,
    u16,
);

fn srv(sn: &str) -> String {
    format!("/1.0/dedicated/server/{sn}")
}

#[tokio::test]
async fn malformed_requests_get_api_errors_not_panics() {
    let sim = sim_support::start_default().await;
    let reinstall = format!("{}/reinstall", srv(HYBRID));
    // Hardware RAID bodies go to the server with a RAID controller, so they reach the count
    // checks instead of stopping at "no controller".
    let raid_reinstall = format!("{}/reinstall", srv(RAID));
    let big_counts = json!({"operatingSystem": "debian12_64", "storage": [{"hardwareRaid": [
        {"disks": i64::MAX, "spares": 1, "raidLevel": 1}]}]});
    let negative = json!({"operatingSystem": "debian12_64", "storage": [{"hardwareRaid": [
        {"disks": -4, "raidLevel": 1}]}]});
    let cases: Vec<Case> = vec![
        (Method::PUT, srv(HYBRID), b"{not json".to_vec(), vec![], 400),
        (Method::PUT, srv(HYBRID), b"[1,2]".to_vec(), vec![], 400),
        (Method::PUT, srv(HYBRID), b"null".to_vec(), vec![], 400),
        (
            Method::PUT,
            srv(HYBRID),
            br#"{"bootId": "one"}"#.to_vec(),
            vec![],
            400,
        ),
        (
            Method::PUT,
            srv(HYBRID),
            br#"{"bootId": -1}"#.to_vec(),
            vec![],
            400,
        ),
        (
            Method::PUT,
            srv(HYBRID),
            br#"{"bootId": 1e300}"#.to_vec(),
            vec![],
            400,
        ),
        (
            Method::PUT,
            srv(HYBRID),
            b"\xff\xfe{}".to_vec(),
            vec![],
            400,
        ),
        (
            Method::POST,
            reinstall.clone(),
            b"{\"operatingSystem\":".to_vec(),
            vec![],
            400,
        ),
        (
            Method::POST,
            reinstall.clone(),
            br#"{"operatingSystem": 12}"#.to_vec(),
            vec![],
            400,
        ),
        (
            Method::POST,
            reinstall.clone(),
            br#"{"operatingSystem": "debian12_64", "storage": {"a": 1}}"#.to_vec(),
            vec![],
            400,
        ),
        (
            Method::POST,
            raid_reinstall.clone(),
            big_counts.to_string().into_bytes(),
            vec![],
            409,
        ),
        (
            Method::POST,
            raid_reinstall.clone(),
            negative.to_string().into_bytes(),
            vec![],
            400,
        ),
        // Unknown servers on every kind of route, including badly percent-encoded names.
        (Method::GET, srv("nope.example"), vec![], vec![], 404),
        (Method::GET, srv("%ZZ%ff%00"), vec![], vec![], 404),
        (
            Method::GET,
            format!("{}/boot", srv("nope")),
            vec![],
            vec![],
            404,
        ),
        (
            Method::POST,
            format!("{}/reboot", srv("nope")),
            vec![],
            vec![],
            404,
        ),
        (
            Method::POST,
            format!("{}/reinstall", srv("nope")),
            b"{}".to_vec(),
            vec![],
            404,
        ),
        (
            Method::GET,
            format!("{}/install/status", srv("nope")),
            vec![],
            vec![],
            404,
        ),
        (
            Method::GET,
            format!("{}/task/1", srv("nope")),
            vec![],
            vec![],
            404,
        ),
        // Non-numeric, negative and overflowing ids.
        (
            Method::GET,
            format!("{}/boot/abc", srv(HYBRID)),
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            format!("{}/task/-1", srv(HYBRID)),
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            format!("{}/task/99999999999999999999999", srv(HYBRID)),
            vec![],
            vec![],
            400,
        ),
        (
            Method::POST,
            format!("{}/task/x/cancel", srv(HYBRID)),
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            format!("{}/boot?bootType=%ZZ", srv(HYBRID)),
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            format!("{}/task?status=nope", srv(HYBRID)),
            vec![],
            vec![],
            400,
        ),
        // Bad listing headers and filters.
        (
            Method::GET,
            "/1.0/dedicated/server?iamTags=%7B".into(),
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            "/1.0/dedicated/server".into(),
            vec![],
            vec![
                ("X-Pagination-Mode", "CachedObjectList-Pages"),
                ("X-Pagination-Size", "-3"),
            ],
            400,
        ),
        (
            Method::GET,
            "/1.0/dedicated/server".into(),
            vec![],
            vec![
                ("X-Pagination-Mode", "CachedObjectList-Pages"),
                ("X-Pagination-Number", "18446744073709551615"),
            ],
            200,
        ),
        (
            Method::GET,
            "/v2/iam/resource".into(),
            vec![],
            vec![
                ("X-Pagination-Size", "18446744073709551615"),
                ("X-Pagination-Cursor", "MTg0NDY3NDQwNzM3MDk1NTE2MTU="),
            ],
            200,
        ),
        (
            Method::GET,
            "/v2/iam/resource".into(),
            vec![],
            vec![
                ("X-Pagination-Size", "2"),
                ("X-Pagination-Cursor", "!!not base64"),
            ],
            400,
        ),
        (
            Method::PUT,
            "/v2/iam/resource/urn%3Anope".into(),
            b"{}".to_vec(),
            vec![],
            404,
        ),
        (
            Method::POST,
            format!("/v2/iam/resource/urn:v1:eu:resource:dedicatedServer:{RAID}/tag"),
            br#"{"key": 1}"#.to_vec(),
            vec![],
            400,
        ),
        // Batch GETs with empty and unknown ids answer per item.
        (
            Method::GET,
            format!("/1.0/dedicated/server/,{RAID},"),
            vec![],
            vec![("X-Ovh-Batch", ",")],
            200,
        ),
        // Routes the API does not describe.
        (Method::GET, "/1.0/nope".into(), vec![], vec![], 404),
        (Method::DELETE, srv(HYBRID), vec![], vec![], 404),
        (
            Method::GET,
            "/2.0/dedicated/server".into(),
            vec![],
            vec![],
            404,
        ),
    ];
    for (method, path, body, headers, want) in cases {
        let (status, qid, answer) = raw(&sim, method.clone(), &path, &body, None, &headers).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        assert!(qid, "{method} {path}: no X-Ovh-QueryId");
        if status >= 400 {
            assert!(
                answer["class"].is_string() && answer["message"].is_string(),
                "{method} {path}: error body {answer}"
            );
        }
    }
    // An oversized body is refused with an API error too.
    let huge = vec![b' '; 5 << 20];
    let (status, qid, answer) = raw(&sim, Method::PUT, &srv(HYBRID), &huge, None, &[]).await;
    assert_eq!((status, qid), (400, true), "{answer}");
    // Still serving after all that.
    let (status, _, answer) = raw(&sim, Method::GET, &srv(HYBRID), b"", None, &[]).await;
    assert_eq!((status, &answer["name"]), (200, &json!(HYBRID)));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failure_hook_with_an_absurd_step_or_status_is_refused_or_clamped() {
    let sim = sim_support::start_default().await;
    let http = sim_support::http();
    let hook = format!("{}/_sim/server/{HYBRID}/fail-next-install", sim.root_url());
    let refused = http
        .post(&hook)
        .json(&json!({"step": 3, "status": "init", "error": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let accepted = http
        .post(&hook)
        .json(&json!({"step": u64::MAX, "status": "customerError", "error": "disk on fire"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    let body = br#"{"operatingSystem": "debian12_64"}"#;
    let (status, _, task) = raw(
        &sim,
        Method::POST,
        &format!("{}/reinstall", srv(HYBRID)),
        body,
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{task}");
    // Past the failing step but within the 30 minutes a failed install's status stays readable.
    sim.advance(std::time::Duration::from_secs(1200));
    let (status, _, st) = raw(
        &sim,
        Method::GET,
        &format!("{}/install/status", srv(HYBRID)),
        b"",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{st}");
    let progress = st["progress"].as_array().unwrap();
    assert_eq!(progress.last().unwrap()["status"], "error", "{st}");
    assert_eq!(progress.last().unwrap()["error"], "disk on fire");
    let (_, _, t) = raw(
        &sim,
        Method::GET,
        &format!("{}/task/{}", srv(HYBRID), task["taskId"]),
        b"",
        None,
        &[],
    )
    .await;
    assert_eq!(t["status"], "customerError");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_signed_url_is_rebuilt_from_the_host_header() {
    let sim = sim_support::start_default().await;
    // Behind a proxy the client addressed another host name: that is what it signed.
    let (status, qid, answer) = raw(
        &sim,
        Method::GET,
        &srv(HYBRID),
        b"",
        Some("eu.api.example.test"),
        &[],
    )
    .await;
    assert_eq!((status, qid), (200, true), "{answer}");
    // Signed for the bind address but sent with another Host: refused like the real API.
    let c = sim.credentials();
    let ts = jiff::Timestamp::now().as_second().to_string();
    let path = srv(HYBRID);
    let sig = ovhform::sim::auth::signature(
        &c.application_secret,
        &c.consumer_key,
        "GET",
        &format!("{}{path}", sim.root_url()),
        b"",
        &ts,
    );
    let resp = sim_support::http()
        .get(format!("{}{path}", sim.root_url()))
        .header("Host", "eu.api.example.test")
        .header("X-Ovh-Application", &c.application_key)
        .header("X-Ovh-Consumer", &c.consumer_key)
        .header("X-Ovh-Timestamp", &ts)
        .header("X-Ovh-Signature", sig)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.headers().contains_key("x-ovh-queryid"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"class": "Client::BadRequest", "message": "Invalid signature"})
    );
    sim.shutdown().await;
}
