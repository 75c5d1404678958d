//! The OVHcloud client and `observe` against small in-test fake servers (axum on 127.0.0.1:0)
//! and in-memory fake transports: signing, retry rules, the budget, error mapping, config
//! precedence, OAuth2 tokens, expanded/batch modes and their fallback, secret hygiene.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ovhform::observe::{observe_detail, observe_fleet, observe_templates};
use ovhform::ovh::{
    self, BoxFuture, Client, ClientConfig, ConfigInput, ConfigSources, Credentials, Endpoint,
    HttpRequest, HttpResponse, InstallApi, Meter, Mode, Secret, Transport, TransportError,
};
use serde_json::{Value, json};

const AK: &str = "test-app-key";
const AS: &str = "SECRET-APP-SECRET-0123";
const CK: &str = "SECRET-CONSUMER-KEY-4567";

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query as received.
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
}

/// What the fake answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn ok(v: Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![("X-Ovh-QueryId", "EU.fake.ok".into())],
        body: v.to_string(),
    }
}

fn err(status: u16, v: Value) -> Reply {
    Reply {
        status,
        headers: vec![("X-Ovh-QueryId", format!("EU.fake.{status}"))],
        body: v.to_string(),
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct Fake {
    base: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
    fn count(&self, method: &str, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path() == path)
            .count()
    }
}

/// A fake API on 127.0.0.1:0 that records every request and answers through `handler`.
/// `/1.0/auth/time` answers the real clock unless the handler overrides it.
async fn serve(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let handler: Handler = Arc::new(handler);
    let (log2, h2) = (log.clone(), handler.clone());
    let app = axum::Router::new().fallback(move |req: Request| {
        let (log, handler) = (log2.clone(), h2.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap()
                .to_vec();
            let seen = Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts.headers.clone(),
                body,
            };
            log.lock().unwrap().push(seen.clone());
            let reply = handler(&seen);
            let mut resp = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
            for (k, v) in reply.headers {
                resp = resp.header(k, v);
            }
            resp.header("Content-Type", "application/json")
                .body(Body::from(reply.body))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake {
        base: format!("http://{addr}/1.0"),
        log,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn app_key_creds() -> Credentials {
    Credentials::ApplicationKey {
        application_key: AK.into(),
        application_secret: Secret::new(AS),
        consumer_key: Secret::new(CK),
    }
}

/// Test tuning: no budget, tiny retry delays (no real waiting), small pages.
fn config(base: &str, creds: Credentials) -> ClientConfig {
    let mut cfg = ClientConfig::new(Endpoint::parse(base).unwrap(), creds);
    cfg.requests_per_minute = 0;
    cfg.retry_min_delay = Duration::from_millis(1);
    cfg.retry_max_delay = Duration::from_millis(5);
    cfg.timeout = Duration::from_secs(10);
    cfg
}

fn client(fake: &Fake) -> Client {
    Client::new(config(&fake.base, app_key_creds())).unwrap()
}

/// Verify a request's signature the way the API does: rebuild the URL from the Host header and
/// the path/query as received, hash the body as received.
fn signature_ok(s: &Seen) -> bool {
    let host = s.header("host").unwrap();
    let url = format!("http://{host}{}", s.uri);
    let ts: i64 = s.header("x-ovh-timestamp").unwrap().parse().unwrap();
    s.header("x-ovh-application") == Some(AK)
        && s.header("x-ovh-consumer") == Some(CK)
        && s.header("x-ovh-signature")
            == Some(ovh::sign(AS, CK, &s.method, &url, &s.body, ts).as_str())
}

fn server_json(name: &str, boot_id: Option<u64>, tags: Value) -> Value {
    json!({
        "availabilityZone": "eu-west-gra-a", "bootId": boot_id, "bootScript": if boot_id.is_none() { json!("#!ipxe\nexit") } else { Value::Null },
        "commercialRange": "RISE-3", "datacenter": "gra2", "efiBootloaderPath": null,
        "iam": {"id": "000da00d-00d0-0b00-0000-00000a0000bd", "displayName": name, "tags": tags,
                "urn": format!("urn:v1:eu:resource:dedicatedServer:{name}")},
        "ip": "192.0.2.1", "linkSpeed": 1000, "monitoring": true, "name": name, "newUpgradeSystem": true,
        "noIntervention": false, "os": "debian12_64", "powerState": "poweron", "professionalUse": false,
        "rack": "G000A00", "region": "eu-west-gra", "rescueMail": null, "rescueSshKey": null, "reverse": null,
        "rootDevice": null, "serverId": 1000000, "state": "ok", "supportLevel": "pro"
    })
}

fn task7() -> Value {
    json!({"taskId": 7, "function": "reinstallServer", "status": "done", "comment": "Start bare metal OS installation",
           "startDate": "2026-01-02T10:00:00+01:00", "doneDate": "2026-01-02T10:12:00+01:00", "lastUpdate": null,
           "needSchedule": false, "note": null, "plannedInterventionId": null, "tags": null, "ticketReference": null})
}

fn netboot_json(id: u64) -> Value {
    match id {
        1 => {
            json!({"bootId": 1, "bootType": "harddisk", "description": "Boot to disk", "kernel": "hd"})
        }
        n if n % 2 == 0 => {
            json!({"bootId": n, "bootType": "rescue", "description": "Customer rescue system (Debian-12-based)", "kernel": "rescue12-customer"})
        }
        n => {
            json!({"bootId": n, "bootType": "power", "description": "Power-off server", "kernel": "poweroff"})
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn signs_every_request_with_the_cached_time_delta() {
    let server_time = now() + 1000;
    let fake = serve(move |s| match s.path() {
        "/1.0/auth/time" => ok(json!(server_time)),
        _ if !signature_ok(s) => err(
            400,
            json!({"class": "Client::BadRequest", "message": "Invalid signature"}),
        ),
        "/1.0/dedicated/server" => ok(json!(["ns1.ip-1-2-3.eu"])),
        "/1.0/dedicated/server/ns1.ip-1-2-3.eu" if s.method == "PUT" => ok(Value::Null),
        p if p.starts_with("/1.0/dedicated/server/ns1.ip-1-2-3.eu/task") => ok(json!([])),
        p if p.starts_with("/v2/iam/resource/") => ok(Value::Null),
        _ => err(
            404,
            json!({"class": "Client::NotFound", "message": "not here"}),
        ),
    })
    .await;
    let c = client(&fake);
    assert_eq!(c.list_servers().await.unwrap(), vec!["ns1.ip-1-2-3.eu"]);
    let update = ovh::types::ServerUpdate {
        boot_id: Some(1),
        ..Default::default()
    };
    c.update_server("ns1.ip-1-2-3.eu", &update).await.unwrap();
    c.list_tasks("ns1.ip-1-2-3.eu", Some("reinstallServer"), Some("doing"))
        .await
        .unwrap();
    c.iam_add_tag(
        "urn:v1:eu:resource:dedicatedServer:ns1.ip-1-2-3.eu",
        "ovhform",
        "sha256:abc",
    )
    .await
    .unwrap();

    let seen = fake.seen();
    assert_eq!(
        fake.count("GET", "/1.0/auth/time"),
        1,
        "the time delta is fetched once"
    );
    assert_eq!(c.calls(), seen.len() as u64);
    let put = seen.iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(
        put.body, br#"{"bootId":1}"#,
        "compact JSON, only the keys set"
    );
    assert_eq!(put.header("content-type"), Some("application/json"));
    let ts: i64 = put.header("x-ovh-timestamp").unwrap().parse().unwrap();
    assert!(
        (ts - server_time).abs() <= 2,
        "timestamp corrected by the server delta: {ts} vs {server_time}"
    );
    let tasks = seen.iter().find(|s| s.path().ends_with("/task")).unwrap();
    assert_eq!(
        tasks.uri,
        "/1.0/dedicated/server/ns1.ip-1-2-3.eu/task?function=reinstallServer&status=doing"
    );
    let tag = seen.iter().find(|s| s.path().ends_with("/tag")).unwrap();
    assert_eq!(
        tag.path(),
        "/v2/iam/resource/urn:v1:eu:resource:dedicatedServer:ns1.ip-1-2-3.eu/tag",
        "/v2 replaces /1.0"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&tag.body).unwrap(),
        json!({"key": "ovhform", "value": "sha256:abc"})
    );
}

#[tokio::test]
async fn get_is_retried_on_503_but_post_and_put_are_not() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let fake = serve(move |s| match (s.method.as_str(), s.path()) {
        ("GET", "/1.0/auth/time") => ok(json!(now())),
        ("GET", "/1.0/dedicated/server") => {
            if h.fetch_add(1, Ordering::SeqCst) == 0 {
                err(
                    503,
                    json!({"class": "Server::ServiceUnavailable", "message": "try later"}),
                )
            } else {
                ok(json!(["ns1"]))
            }
        }
        _ => err(
            503,
            json!({"class": "Server::ServiceUnavailable", "message": "try later"}),
        ),
    })
    .await;
    let c = client(&fake);
    assert_eq!(c.list_servers().await.unwrap(), vec!["ns1"]);
    assert_eq!(
        fake.count("GET", "/1.0/dedicated/server"),
        2,
        "one retry after the 503"
    );

    let e = c
        .reinstall("ns1", &json!({"operatingSystem": "debian12_64"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(
        e.to_string()
            .contains("POST /dedicated/server/ns1/reinstall: HTTP 503"),
        "{e}"
    );
    assert!(e.to_string().contains("X-Ovh-QueryId: EU.fake.503"), "{e}");
    assert_eq!(
        fake.count("POST", "/1.0/dedicated/server/ns1/reinstall"),
        1,
        "a reinstall POST is never retried"
    );

    assert!(c.reboot("ns1").await.is_err());
    assert_eq!(fake.count("POST", "/1.0/dedicated/server/ns1/reboot"), 1);
    let update = ovh::types::ServerUpdate {
        monitoring: Some(true),
        ..Default::default()
    };
    assert!(c.update_server("ns1", &update).await.is_err());
    assert_eq!(
        fake.count("PUT", "/1.0/dedicated/server/ns1"),
        1,
        "a PUT that reached the server is not retried"
    );
    assert_eq!(
        c.calls(),
        fake.seen().len() as u64,
        "every attempt is counted"
    );
}

#[tokio::test]
async fn get_gives_up_after_max_retries() {
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        _ => err(
            429,
            json!({"class": "Client::TooManyRequests", "message": "slow down"}),
        ),
    })
    .await;
    let mut cfg = config(&fake.base, app_key_creds());
    cfg.max_retries = 2;
    let c = Client::new(cfg).unwrap();
    let e = c.get_server("ns1").await.unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(
        fake.count("GET", "/1.0/dedicated/server/ns1"),
        3,
        "first attempt + 2 retries"
    );
}

#[tokio::test]
async fn errors_are_typed_from_both_body_forms() {
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        "/1.0/dedicated/server/gone" => err(404, json!({"class": "Client::NotFound", "message": "This service does not exist"})),
        "/1.0/dedicated/server/ns1/install/status" => {
            err(404, json!({"class": "Client::NotFound", "message": "Server is not being installed or reinstalled at the moment"}))
        }
        "/1.0/dedicated/server/ns1/reinstall" => err(
            400,
            json!({"class": "Client::BadRequest::TaskAlreadyExists", "message": "Task 42 of type reinstallServer with status doing is already running on server ns1"}),
        ),
        _ => err(403, json!({"errorCode": "INVALID_CREDENTIAL", "httpCode": "403 Forbidden", "message": "This credential is not valid"})),
    })
    .await;
    let c = client(&fake);
    let e = c.get_server("gone").await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.class(), Some("Client::NotFound"));
    assert_eq!(e.query_id(), Some("EU.fake.404"));
    assert_eq!(
        e.to_string(),
        "OVHcloud API error: GET /dedicated/server/gone: HTTP 404 Client::NotFound: This service does not exist (X-Ovh-QueryId: EU.fake.404)"
    );
    assert_eq!(
        c.install_status("ns1").await.unwrap(),
        None,
        "404 on install/status means idle"
    );
    let e = c
        .reinstall("ns1", &json!({"operatingSystem": "debian12_64"}))
        .await
        .unwrap_err();
    assert!(e.is_task_already_exists(), "{e}");
    let e = c.hardware("ns1").await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert_eq!(
        e.api().unwrap().error_code.as_deref(),
        Some("INVALID_CREDENTIAL")
    );
    assert!(
        e.to_string().contains("This credential is not valid")
            && e.to_string().contains("EU.fake.403"),
        "{e}"
    );
    for shown in [e.to_string(), format!("{e:?}"), format!("{c:?}")] {
        assert!(
            !shown.contains(AS) && !shown.contains(CK) && !shown.contains("$1$"),
            "secret leaked: {shown}"
        );
    }
}

/// An in-memory transport: answers every request at once with `200 []` (or the time), so the
/// budget can be measured on paused tokio time without any I/O.
#[derive(Default)]
struct Instant200 {
    sent: Mutex<Vec<(tokio::time::Instant, HttpRequest)>>,
}

impl Transport for Instant200 {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let body = if request.url.ends_with("/auth/time") {
                b"1700000000".to_vec()
            } else {
                b"[]".to_vec()
            };
            self.sent
                .lock()
                .unwrap()
                .push((tokio::time::Instant::now(), request));
            Ok(HttpResponse {
                status: 200,
                headers: vec![],
                body,
            })
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_request_budget_paces_requests() {
    let transport = Arc::new(Instant200::default());
    let mut cfg = config("http://127.0.0.1:9/1.0", app_key_creds());
    cfg.requests_per_minute = 60;
    let c = Client::with_transport(cfg, transport.clone());
    let t0 = tokio::time::Instant::now();
    // 1 `/auth/time` + 20 listings = 21 requests: a burst of 10, then one per second.
    for _ in 0..20 {
        c.list_boots("ns1", None).await.unwrap();
    }
    let elapsed = t0.elapsed();
    assert_eq!(c.calls(), 21);
    assert!(elapsed >= Duration::from_secs(11), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
    let sent = transport.sent.lock().unwrap();
    let in_first_second = sent
        .iter()
        .filter(|(t, _)| t.duration_since(t0) < Duration::from_secs(1))
        .count();
    assert_eq!(in_first_second, 10, "burst size");
}

/// Requests queued behind the budget are signed when they leave the queue: a timestamp taken
/// before the wait would be refused by the API ("Query out of time") once the queue is longer
/// than its clock tolerance.
#[tokio::test(start_paused = true)]
async fn queued_requests_are_signed_when_sent_not_when_queued() {
    let transport = Arc::new(Instant200::default());
    let mut cfg = config("http://127.0.0.1:9/1.0", app_key_creds());
    cfg.requests_per_minute = 60;
    let t0 = tokio::time::Instant::now();
    // The wall clock follows paused tokio time, so a wait of N seconds shows in the timestamp.
    let clock: ovh::WallClock = Arc::new(move || 1_700_000_000 + t0.elapsed().as_secs() as i64);
    let c = Client::with_transport_and_clock(cfg, transport.clone(), clock);
    // 30 listings at once: a burst of 10, then one per second, so the last waits ~20 s.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let c = c.clone();
        calls.spawn(async move { c.list_boots("ns1", None).await });
    }
    while let Some(r) = calls.join_next().await {
        r.expect("task").expect("listing");
    }
    let sent = transport.sent.lock().unwrap();
    let signed: Vec<_> = sent
        .iter()
        .filter_map(|(at, r)| {
            let ts = r
                .headers
                .iter()
                .find(|(k, _)| k == "X-Ovh-Timestamp")?
                .1
                .parse::<i64>()
                .unwrap();
            Some((at.duration_since(t0).as_secs() as i64, ts))
        })
        .collect();
    assert_eq!(signed.len(), 30);
    assert!(
        signed.iter().any(|(sent_at, _)| *sent_at >= 15),
        "{signed:?}"
    );
    for (sent_at, ts) in &signed {
        // `/auth/time` answered 1700000000 at t0, so the delta is 0: ts = 1700000000 + seconds
        // elapsed when the request went out.
        assert!(
            (ts - (1_700_000_000 + sent_at)).abs() <= 1,
            "sent at +{sent_at}s with timestamp {ts}: {signed:?}"
        );
    }
}

#[tokio::test]
async fn config_precedence_flags_env_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc-ovh.conf");
    let home = dir.path().join("home-ovh.conf");
    let cwd = dir.path().join("cwd-ovh.conf");
    std::fs::write(
        &etc,
        "[default]\nendpoint=ovh-ca\n[ovh-ca]\napplication_key=etc-ak\napplication_secret=etc-as\nconsumer_key=etc-ck\n",
    )
    .unwrap();
    std::fs::write(
        &home,
        "[ovh-ca]\napplication_secret=home-as\nconsumer_key=home-ck\n",
    )
    .unwrap();
    std::fs::write(&cwd, "[ovh-ca]\nconsumer_key=cwd-ck\n").unwrap();
    let files = vec![
        etc.clone(),
        home.clone(),
        cwd.clone(),
        dir.path().join("missing.conf"),
    ];
    let sources = ConfigSources {
        env: BTreeMap::new(),
        files: files.clone(),
    };
    let creds = |cfg: &ClientConfig| match &cfg.credentials {
        Credentials::ApplicationKey {
            application_key,
            application_secret,
            consumer_key,
        } => (
            application_key.clone(),
            application_secret.expose().to_string(),
            consumer_key.expose().to_string(),
        ),
        other => panic!("unexpected {other:?}"),
    };
    // Files only: key by key, ./ovh.conf > ~/.ovh.conf > /etc/ovh.conf; endpoint from [default].
    let cfg = ClientConfig::resolve(&ConfigInput::default(), &sources).unwrap();
    assert_eq!(cfg.endpoint.base_url, "https://ca.api.ovh.com/1.0");
    assert_eq!(
        creds(&cfg),
        ("etc-ak".into(), "home-as".into(), "cwd-ck".into())
    );
    // Env beats files.
    let env: BTreeMap<String, String> = [
        ("OVH_APPLICATION_SECRET", "env-as"),
        ("OVH_CONSUMER_KEY", "env-ck"),
    ]
    .map(|(k, v)| (k.into(), v.into()))
    .into();
    let sources = ConfigSources { env, files };
    let cfg = ClientConfig::resolve(&ConfigInput::default(), &sources).unwrap();
    assert_eq!(
        creds(&cfg),
        ("etc-ak".into(), "env-as".into(), "env-ck".into())
    );
    // Flags beat env.
    let input = ConfigInput {
        consumer_key: Some("flag-ck".into()),
        ..Default::default()
    };
    let cfg = ClientConfig::resolve(&input, &sources).unwrap();
    assert_eq!(
        creds(&cfg),
        ("etc-ak".into(), "env-as".into(), "flag-ck".into())
    );
    // An endpoint given by flag selects another section: nothing there → a clear error.
    let input = ConfigInput {
        endpoint: Some("ovh-eu".into()),
        ..Default::default()
    };
    let e = ClientConfig::resolve(
        &input,
        &ConfigSources {
            env: BTreeMap::new(),
            files: vec![etc.clone()],
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no OVHcloud credentials found for endpoint `ovh-eu`"),
        "{e}"
    );
    // A full URL endpoint is its own section name.
    let sim = dir.path().join("sim.conf");
    std::fs::write(&sim, "[default]\nendpoint=http://127.0.0.1:8080/1.0\n[http://127.0.0.1:8080/1.0]\nclient_id=cid\nclient_secret=csecret\n").unwrap();
    let cfg = ClientConfig::resolve(
        &ConfigInput::default(),
        &ConfigSources {
            env: BTreeMap::new(),
            files: vec![sim],
        },
    )
    .unwrap();
    assert!(
        matches!(&cfg.credentials, Credentials::OAuth2 { token_url, .. } if token_url == "http://127.0.0.1:8080/auth/oauth2/token")
    );
}

#[test]
fn config_errors_are_clear_and_never_show_secrets() {
    let env = |pairs: &[(&str, &str)]| ConfigSources {
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        files: vec![],
    };
    let mixed = env(&[
        ("OVH_APPLICATION_KEY", "ak"),
        ("OVH_APPLICATION_SECRET", "TOPSECRET1"),
        ("OVH_CLIENT_SECRET", "TOPSECRET2"),
    ]);
    let input = ConfigInput {
        client_id: Some("cid".into()),
        ..Default::default()
    };
    let e = ClientConfig::resolve(&input, &mixed)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("can't use multiple authentication methods"),
        "{e}"
    );
    assert!(
        e.contains("OVH_APPLICATION_KEY") && e.contains("--client-id"),
        "names where each came from: {e}"
    );
    assert!(!e.contains("TOPSECRET"), "{e}");
    let e = ClientConfig::resolve(
        &ConfigInput::default(),
        &env(&[("OVH_APPLICATION_KEY", "ak")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("application key and application secret must be given together"),
        "{e}"
    );
    let e = ClientConfig::resolve(&ConfigInput::default(), &env(&[("OVH_CLIENT_ID", "cid")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_secret is missing"), "{e}");
    let e = ClientConfig::resolve(
        &ConfigInput {
            endpoint: Some("kimsufi-eu".into()),
            ..Default::default()
        },
        &env(&[("OVH_CLIENT_ID", "cid"), ("OVH_CLIENT_SECRET", "x")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("OAuth2 authentication is not available on endpoint `kimsufi-eu`"),
        "{e}"
    );
    let cfg = ClientConfig::resolve(
        &ConfigInput::default(),
        &env(&[
            ("OVH_ENDPOINT", "ovh-us"),
            ("OVH_APPLICATION_KEY", "ak"),
            ("OVH_APPLICATION_SECRET", "TOPSECRET1"),
            ("OVH_CONSUMER_KEY", "TOPSECRET3"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.endpoint.name, "ovh-us");
    assert!(!format!("{cfg:?}").contains("TOPSECRET"));
}

#[tokio::test]
async fn oauth2_token_is_fetched_refreshed_on_expiry_and_on_401() {
    let issued = Arc::new(AtomicUsize::new(0));
    let revoked = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let (i2, r2) = (issued.clone(), revoked.clone());
    let fake = serve(move |s| {
        if s.path() == "/auth/oauth2/token" {
            let form = String::from_utf8(s.body.clone()).unwrap();
            let ok_form = form.contains("grant_type=client_credentials")
                && form.contains("client_id=svc%2Daccount")
                && form.contains("client_secret=OAUTH%2DSECRET")
                && form.contains("scope=all");
            if !ok_form || s.method != "POST" {
                return err(401, json!({"error": "invalid_client"}));
            }
            let n = i2.fetch_add(1, Ordering::SeqCst) + 1;
            // The first token is already expired when it arrives; later ones live an hour.
            let expires_in = if n == 1 { 0 } else { 3600 };
            return ok(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in}));
        }
        let auth = s.header("authorization").unwrap_or("").to_string();
        if s.header("x-ovh-signature").is_some() || !auth.starts_with("Bearer tok-") || r2.lock().unwrap().contains(&auth) {
            return err(401, json!({"class": "Client::Unauthorized", "message": "invalid token"}));
        }
        ok(json!(["ns1"]))
    })
    .await;
    let creds = Credentials::OAuth2 {
        client_id: "svc-account".into(),
        client_secret: Secret::new("OAUTH-SECRET"),
        token_url: Endpoint::parse(&fake.base).unwrap().token_url.unwrap(),
    };
    let c = Client::new(config(&fake.base, creds)).unwrap();
    c.list_servers().await.unwrap(); // fetches tok-1 (expires at once)
    c.list_servers().await.unwrap(); // tok-1 expired → tok-2
    c.list_servers().await.unwrap(); // tok-2 reused
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let auths: Vec<String> = fake
        .seen()
        .iter()
        .filter(|s| s.path() == "/1.0/dedicated/server")
        .map(|s| s.header("authorization").unwrap().into())
        .collect();
    assert_eq!(auths, ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]);
    // The server revokes tok-2: one 401, a new token, the call succeeds.
    revoked.lock().unwrap().insert("Bearer tok-2".into());
    c.list_servers().await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 3);
    assert_eq!(
        fake.count("GET", "/1.0/auth/time"),
        0,
        "no signature, no time delta with OAuth2"
    );
    assert!(!format!("{c:?}").contains("OAUTH-SECRET"));
    // This token endpoint only takes credentials in the body: HTTP Basic (what the official
    // clients try first) was refused once, then the body style was remembered.
    let token_reqs: Vec<Seen> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path() == "/auth/oauth2/token")
        .collect();
    assert_eq!(token_reqs.len(), 4);
    assert!(
        token_reqs[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    assert!(
        token_reqs[1..]
            .iter()
            .all(|s| s.header("authorization").is_none())
    );
}

#[tokio::test]
async fn oauth2_uses_http_basic_client_authentication_first() {
    use base64::Engine as _;
    let fake = serve(|s| {
        if s.path() == "/auth/oauth2/token" {
            let basic = s
                .header("authorization")
                .and_then(|h| h.strip_prefix("Basic "))
                .unwrap_or("");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic)
                .unwrap_or_default();
            let form = String::from_utf8(s.body.clone()).unwrap();
            if decoded == b"svc:OAUTH-SECRET-3" && form == "grant_type=client_credentials&scope=all"
            {
                return ok(
                    json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
                );
            }
            return err(401, json!({"error": "invalid_client"}));
        }
        if s.header("authorization") == Some("Bearer tok") {
            ok(json!([]))
        } else {
            err(401, json!({"message": "no"}))
        }
    })
    .await;
    let creds = Credentials::OAuth2 {
        client_id: "svc".into(),
        client_secret: Secret::new("OAUTH-SECRET-3"),
        token_url: Endpoint::parse(&fake.base).unwrap().token_url.unwrap(),
    };
    let c = Client::new(config(&fake.base, creds)).unwrap();
    assert!(c.list_servers().await.unwrap().is_empty());
    assert_eq!(c.calls(), 2, "one token request, one API request");
}

#[tokio::test]
async fn oauth2_refusal_is_reported_without_the_secret() {
    let fake = serve(|_| {
        err(
            401,
            json!({"error": "invalid_client", "error_description": "bad credentials"}),
        )
    })
    .await;
    let creds = Credentials::OAuth2 {
        client_id: "svc".into(),
        client_secret: Secret::new("OAUTH-SECRET-2"),
        token_url: Endpoint::parse(&fake.base).unwrap().token_url.unwrap(),
    };
    let c = Client::new(config(&fake.base, creds)).unwrap();
    let e = c.list_servers().await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        shown.contains("invalid_client") && shown.contains("bad credentials"),
        "{shown}"
    );
    assert!(!shown.contains("OAUTH-SECRET-2"), "{shown}");
}

// -- economy: expanded listings, batch, fallbacks, observe ------------------------------------

/// A fake account of `n` servers named `ns{i}.example`; server i boots on id
/// `[1, 1000, 1001][i % 3]`. `economy` = honour expanded listings and batch GETs.
async fn fleet(n: usize, economy: bool) -> Fake {
    fleet_with(n, economy, economy).await
}

/// [`fleet`] with the two economy modes chosen separately.
async fn fleet_with(n: usize, honour_expanded: bool, honour_batch: bool) -> Fake {
    let names: Vec<String> = (0..n).map(|i| format!("ns{i}.example")).collect();
    let boot_of = move |name: &str| -> u64 {
        let i: usize = name
            .trim_start_matches("ns")
            .trim_end_matches(".example")
            .parse()
            .unwrap();
        [1, 1000, 1001][i % 3]
    };
    let not_found = || {
        err(
            404,
            json!({"class": "Client::NotFound", "message": "This service does not exist"}),
        )
    };
    serve(move |s| {
        let path = s.path().trim_start_matches("/1.0");
        let expanded = honour_expanded && s.header("x-pagination-mode") == Some("CachedObjectList-Pages");
        let batch = honour_batch && s.header("x-ovh-batch") == Some(",");
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["auth", "time"] => ok(json!(now())),
            ["dedicated", "server"] if expanded => {
                let size: usize = s.header("x-pagination-size").unwrap().parse().unwrap();
                let page: usize = s.header("x-pagination-number").unwrap().parse().unwrap();
                let items: Vec<Value> = names
                    .iter()
                    .skip((page - 1) * size)
                    .take(size)
                    .map(|n| server_json(n, Some(boot_of(n)), json!({"ovh:state": "ok", "team": "web"})))
                    .collect();
                let mut r = ok(json!(items));
                r.headers.push(("X-Pagination-Elements", names.len().to_string()));
                r
            }
            ["dedicated", "server"] => ok(json!(names)),
            ["dedicated", "server", ids] if batch => {
                let items: Vec<Value> = ids
                    .split(',')
                    .map(|id| match names.iter().find(|n| n.as_str() == id) {
                        Some(n) => json!({"key": id, "value": server_json(n, Some(boot_of(n)), json!({"team": "web"})), "error": null}),
                        None => json!({"key": id, "value": null, "error": "This service does not exist"}),
                    })
                    .collect();
                ok(json!(items))
            }
            ["dedicated", "server", id] if names.iter().any(|n| n == id) => {
                ok(server_json(id, Some(boot_of(id)), json!({"team": "web"})))
            }
            ["dedicated", "server", _, "boot"] => ok(json!([1, 1000, 1001])),
            ["dedicated", "server", _, "boot", ids] if batch && ids.contains(',') => {
                // Items without `key`: matched by position.
                ok(json!(ids.split(',').map(|i| json!({"value": netboot_json(i.parse().unwrap())})).collect::<Vec<_>>()))
            }
            ["dedicated", "server", _, "boot", id] if !id.contains(',') => ok(netboot_json(id.parse().unwrap())),
            ["dedicated", "server", _, "task"] if expanded => ok(json!([
                {"taskId": 7, "function": "reinstallServer", "status": "done", "comment": "Start bare metal OS installation",
                 "startDate": "2026-01-02T10:00:00+01:00", "doneDate": "2026-01-02T10:12:00+01:00", "lastUpdate": null,
                 "needSchedule": false, "note": null, "plannedInterventionId": null, "tags": null, "ticketReference": null},
                {"taskId": 8, "function": "hardReboot", "status": "done", "comment": null, "startDate": "2026-01-03T10:00:00Z",
                 "doneDate": "2026-01-03T10:01:00Z", "lastUpdate": null, "needSchedule": false, "note": null,
                 "plannedInterventionId": null, "tags": null, "ticketReference": null}
            ])),
            ["dedicated", "server", _, "task"] => {
                if s.uri.contains("function=reinstallServer") {
                    ok(json!([7]))
                } else if s.uri.contains("status=") {
                    ok(json!([]))
                } else {
                    ok(json!([7, 8]))
                }
            }
            ["dedicated", "server", _, "task", ids] if batch && ids.contains(',') => ok(json!(ids
                .split(',')
                .map(|id| if id == "7" {
                    json!({"key": 7, "value": task7(), "error": null})
                } else {
                    json!({"key": id, "value": null, "error": "The requested object does not exist"})
                })
                .collect::<Vec<_>>())),
            ["dedicated", "server", _, "task", "7"] => ok(task7()),
            ["dedicated", "server", _, "install", "status"] => {
                err(404, json!({"class": "Client::NotFound", "message": "Server is not being installed or reinstalled at the moment"}))
            }
            ["dedicated", "server", _, "install", "compatibleTemplates"] => ok(json!({"ovh": ["debian12_64", "win2022-std_64"], "personal": []})),
            ["dedicated", "server", _, "specifications", "hardware"] => ok(json!({
                "bootMode": "uefi", "coresPerProcessor": 8, "defaultHardwareRaidSize": null, "defaultHardwareRaidType": null,
                "description": "RISE-3", "diskGroups": [
                    {"defaultHardwareRaidSize": null, "defaultHardwareRaidType": null, "description": "2 X Disk SSD 480 GB, JBOD",
                     "diskGroupId": 1, "diskSize": {"unit": "GB", "value": 480}, "diskType": "SSD", "numberOfDisks": 2, "raidController": null},
                    {"defaultHardwareRaidSize": null, "defaultHardwareRaidType": null, "description": "2 X Disk NVME 1920 GB, JBOD",
                     "diskGroupId": 2, "diskSize": {"unit": "GB", "value": 1920}, "diskType": "NVME", "numberOfDisks": 2, "raidController": null}],
                "expansionCards": null, "formFactor": "1u", "memorySize": {"unit": "MB", "value": 65536}, "motherboard": "X",
                "numberOfProcessors": 1, "processorArchitecture": "x86_64", "processorName": "Epyc", "threadsPerProcessor": 16, "usbKeys": null
            })),
            ["dedicated", "installationTemplate", "debian12_64"] => ok(json!({
                "bitFormat": 64, "category": "basic", "description": "Debian 12", "distribution": "debian12", "endOfInstall": "2028-06-30",
                "family": "linux", "filesystems": ["ext4", "xfs", "btrfs", "swap"], "inputs": [
                    {"name": "sshKey", "description": "SSH Public Key", "default": "", "mandatory": false, "type": "sshPubKey", "enum": []}],
                "license": null, "lvmReady": true, "noPartitioning": false, "project": null, "rootMountpoint": "/",
                "softRaidOnlyMirroring": false, "subfamily": "debian", "templateName": "debian12_64"
            })),
            _ => not_found(),
        }
    })
    .await
}

#[tokio::test]
async fn observe_fleet_uses_expanded_listing_and_cached_boots() {
    let fake = fleet(1000, true).await;
    let mut cfg = config(&fake.base, app_key_creds());
    cfg.page_size = 400;
    let c = Client::new(cfg).unwrap();
    let names: BTreeSet<String> = (0..1000)
        .map(|i| format!("ns{i}.example"))
        .chain(["absent.example".to_string()])
        .collect();
    let meter = Meter::new();
    let observed = observe_fleet(&c.metered(&meter), &names).await.unwrap();
    assert_eq!(
        observed.servers.len(),
        1000,
        "the absent server is simply absent"
    );
    // /auth/time + 3 pages + one GET per distinct non-disk boot id, through a server using it.
    assert_eq!(
        meter.total(),
        6,
        "{:?}",
        fake.seen().iter().map(|s| &s.uri).collect::<Vec<_>>()
    );
    assert!(c.fallbacks().is_empty());
    let s0 = &observed.servers["ns0.example"];
    assert_eq!(s0.boot.as_ref().unwrap().kernel, "hd");
    assert_eq!(
        s0.tags,
        BTreeMap::from([("team".to_string(), "web".to_string())]),
        "ovh: system tags left out"
    );
    assert_eq!(
        s0.iam_urn.as_deref(),
        Some("urn:v1:eu:resource:dedicatedServer:ns0.example")
    );
    let s1 = &observed.servers["ns1.example"];
    assert_eq!(s1.boot.as_ref().unwrap().kernel, "rescue12-customer");
    assert_eq!(
        observed.servers["ns2.example"]
            .boot
            .as_ref()
            .unwrap()
            .boot_type,
        ovhform::model::BootType::Power
    );
    // A second observation re-reads the servers but not the boots (cached).
    let meter = Meter::new();
    let again = observe_fleet(&c.metered(&meter), &names).await.unwrap();
    assert_eq!(meter.total(), 3);
    assert_eq!(c.calls(), 9, "the client-wide counter counts both runs");
    assert_eq!(again.servers, observed.servers);
}

#[tokio::test]
async fn observe_falls_back_when_the_api_ignores_expanded_and_batch_modes() {
    let fake = fleet(30, false).await;
    let c = client(&fake);
    let names: BTreeSet<String> = [
        "ns0.example",
        "ns1.example",
        "ns2.example",
        "absent.example",
    ]
    .map(String::from)
    .into();
    let observed = observe_fleet(&c, &names).await.unwrap();
    assert_eq!(
        observed.servers.keys().collect::<Vec<_>>(),
        ["ns0.example", "ns1.example", "ns2.example"]
    );
    assert_eq!(
        observed.servers["ns1.example"]
            .boot
            .as_ref()
            .unwrap()
            .kernel,
        "rescue12-customer"
    );
    assert_eq!(
        c.fallbacks(),
        BTreeSet::from([Mode::ExpandedServers, Mode::Batch])
    );
    // The same data as through the economy modes.
    let economic = fleet(30, true).await;
    let c2 = client(&economic);
    let observed2 = observe_fleet(&c2, &names).await.unwrap();
    for (name, s) in &observed2.servers {
        let mut plain = observed.servers[name].clone();
        plain.tags = s.tags.clone(); // the economic fake adds an `ovh:` tag only
        assert_eq!(&plain, s);
    }
    // The fallback is remembered: no second expanded or batch attempt.
    let before = fake.seen().len();
    observe_fleet(&c, &names).await.unwrap();
    let later = &fake.seen()[before..];
    assert!(
        later
            .iter()
            .all(|s| s.header("x-pagination-mode").is_none() && s.header("x-ovh-batch").is_none())
    );
}

#[tokio::test]
async fn observe_detail_reads_only_the_named_servers_and_caches_facts() {
    for economy in [true, false] {
        let fake = fleet(6, economy).await;
        let c = client(&fake);
        let all: BTreeSet<String> = (0..6).map(|i| format!("ns{i}.example")).collect();
        let mut observed = observe_fleet(&c, &all).await.unwrap();
        let fleet_calls = c.calls();
        let detail_names: BTreeSet<String> =
            ["ns1.example".to_string(), "ns4.example".to_string()].into();
        observe_detail(&c, &mut observed, &detail_names)
            .await
            .unwrap();
        let d = observed.servers["ns1.example"]
            .detail
            .as_ref()
            .expect("detail read");
        assert!(observed.servers["ns0.example"].detail.is_none());
        assert_eq!(
            d.boots.iter().map(|b| b.id).collect::<Vec<_>>(),
            [1, 1000, 1001]
        );
        assert_eq!(
            d.tasks.len(),
            1,
            "economy={economy}: pending tasks and reinstallServer history only: {:?}",
            fake.seen().iter().map(|s| &s.uri).collect::<Vec<_>>()
        );
        assert_eq!(d.tasks[0].function, "reinstallServer");
        assert_eq!(
            d.tasks[0].done_date.unwrap().to_string(),
            "2026-01-02T09:12:00Z"
        );
        assert_eq!(d.install_status, None);
        assert_eq!(d.compatible_templates, ["debian12_64", "win2022-std_64"]);
        let hw = d.hardware.as_ref().unwrap();
        assert_eq!(hw.boot_mode, "uefi");
        assert_eq!(hw.disk_groups[1].disk_size_bytes, 1_920_000_000_000);
        assert_eq!(hw.disk_groups[1].disk_type, "NVME");
        let t = &observed.templates["debian12_64"];
        assert_eq!(
            (
                t.family.as_str(),
                t.lvm_ready,
                t.inputs[0].input_type.as_str()
            ),
            ("linux", Some(true), "sshPubKey")
        );
        assert_eq!(
            fake.seen().len() as u64,
            c.calls(),
            "economy={economy}: every request counted"
        );
        assert!(c.calls() > fleet_calls);
        // Hardware, compatibleTemplates and templates are cached: a second detail pass skips them.
        let before = fake.seen().len();
        observe_detail(&c, &mut observed, &detail_names)
            .await
            .unwrap();
        let later = &fake.seen()[before..];
        assert!(
            later.iter().all(|s| !s.uri.contains("hardware")
                && !s.uri.contains("compatibleTemplates")
                && !s.uri.contains("installationTemplate")),
            "{:?}",
            later.iter().map(|s| &s.uri).collect::<Vec<_>>()
        );
        // Unknown templates asked for by name are left out, not errors.
        observe_templates(
            &c,
            &mut observed,
            &BTreeSet::from(["nosuchos_64".to_string()]),
        )
        .await
        .unwrap();
        assert!(!observed.templates.contains_key("nosuchos_64"));
    }
}

#[tokio::test]
async fn catalog_routes_are_unauthenticated() {
    let fake = fleet(1, true).await;
    let c = client(&fake);
    c.installation_template("debian12_64").await.unwrap();
    let s = fake
        .seen()
        .into_iter()
        .find(|s| s.path().contains("installationTemplate"))
        .unwrap();
    assert_eq!(s.header("x-ovh-application"), Some(AK));
    assert!(s.header("x-ovh-signature").is_none() && s.header("x-ovh-consumer").is_none());
    assert_eq!(
        fake.count("GET", "/1.0/auth/time"),
        0,
        "no signature, no time delta"
    );
}

#[tokio::test]
async fn legacy_install_api_maps_the_reinstall_body() {
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        "/1.0/dedicated/server/ns1/install/start" => ok(json!({
            "taskId": 9, "function": "reinstallServer", "status": "init", "comment": "Start dedicated server installation",
            "startDate": "2024-01-26T17:57:10+01:00", "doneDate": null, "lastUpdate": null, "needSchedule": false,
            "note": null, "plannedInterventionId": null, "tags": null, "ticketReference": null})),
        _ => err(404, json!({"class": "Client::NotFound", "message": "no"})),
    })
    .await;
    let mut cfg = config(&fake.base, app_key_creds());
    cfg.install_api = InstallApi::Legacy;
    let c = Client::new(cfg).unwrap();
    let body = json!({"operatingSystem": "debian12_64", "customizations": {"hostname": "web-01", "sshKey": "ssh-ed25519 AAAA"}, "storage": [{"diskGroupId": 2}]});
    let t = c.start_install("ns1", &body).await.unwrap();
    assert_eq!((t.task_id, t.api), (9, InstallApi::Legacy));
    let sent = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "POST")
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap(),
        json!({"templateName": "debian12_64", "details": {"customHostname": "web-01", "diskGroupId": 2},
               "userMetadata": [{"key": "sshKey", "value": "ssh-ed25519 AAAA"}]})
    );
    let layout = json!({"operatingSystem": "debian12_64", "storage": [{"partitioning": {"layout": [{"mountPoint": "/", "fileSystem": "ext4"}]}}]});
    let before = fake.seen().len();
    let e = c.start_install("ns1", &layout).await.unwrap_err();
    assert!(e.to_string().contains("custom partition layout"), "{e}");
    assert_eq!(fake.seen().len(), before, "refused before any request");
}

#[tokio::test]
async fn batch_gets_when_only_batch_mode_is_honoured() {
    let fake = fleet_with(120, false, true).await;
    let c = client(&fake);
    let names: BTreeSet<String> = (0..120).map(|i| format!("ns{i}.example")).collect();
    let observed = observe_fleet(&c, &names).await.unwrap();
    assert_eq!(observed.servers.len(), 120);
    assert_eq!(c.fallbacks(), BTreeSet::from([Mode::ExpandedServers]));
    // /auth/time + expanded attempt (answered by ids) + 3 batches of ≤50 + 2 boot ids.
    assert_eq!(c.calls(), 7);
    let batches = fake
        .seen()
        .into_iter()
        .filter(|s| s.header("x-ovh-batch") == Some(","))
        .count();
    assert_eq!(batches, 3);
    // Batch items without `key` are matched by position.
    let fresh = client(&fake);
    let boots = fresh
        .netboots("ns1.example", &[1001, 1, 1000])
        .await
        .unwrap()
        .found;
    assert_eq!(boots.keys().copied().collect::<Vec<_>>(), [1, 1000, 1001]);
    assert_eq!(boots[&1000].kernel, "rescue12-customer");
    assert_eq!(fresh.calls(), 2, "/auth/time + one batch GET");
    let last = fake.seen().pop().unwrap();
    assert_eq!(
        last.path(),
        "/1.0/dedicated/server/ns1.example/boot/1,1000,1001"
    );
}

/// A batch answer that leaves an id out must not make that object look absent: the client asks
/// for it alone.
#[tokio::test]
async fn an_id_left_out_of_a_batch_answer_is_fetched_alone() {
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        "/1.0/dedicated/server/ns1/task/7,8" => {
            ok(json!([{"key": "7", "value": task7(), "error": null}]))
        }
        "/1.0/dedicated/server/ns1/task/8" => {
            let mut t = task7();
            t["taskId"] = json!(8);
            ok(t)
        }
        _ => err(
            404,
            json!({"class": "Client::NotFound", "message": "This service does not exist"}),
        ),
    })
    .await;
    let c = client(&fake);
    let tasks = c.get_tasks("ns1", &[7, 8]).await.unwrap().found;
    assert_eq!(tasks.keys().copied().collect::<Vec<_>>(), [7, 8]);
    assert_eq!(tasks[&8].task_id, 8);
    assert_eq!(fake.count("GET", "/1.0/dedicated/server/ns1/task/8"), 1);
    assert!(c.fallbacks().is_empty(), "batch mode itself worked");
}

// -- the real API's differences: iamTags, freshness, 403s, unreadable tasks and templates -----

/// A server object as the listing shows it, with `tags` in its `iam` block.
fn tagged(name: &str, tags: Value) -> Value {
    server_json(name, Some(1), tags)
}

#[tokio::test]
async fn the_iam_tags_filter_sends_exists_without_a_value_and_any_4xx_falls_back_to_the_listing() {
    for refusal in [400, 403, 404] {
        let fake = serve(move |s| match s.path() {
            "/1.0/auth/time" => ok(json!(now())),
            "/1.0/dedicated/server" if s.uri.contains("iamTags=") => err(
                refusal,
                json!({"class": "Client::BadRequest", "message": "[iamTags] Unknown parameter"}),
            ),
            "/1.0/dedicated/server" => {
                let mut r = ok(json!([
                    tagged(
                        "ns1",
                        json!({"ovhform:fingerprint": "sha256:x", "ovh:a": "b"})
                    ),
                    tagged("ns2", json!({"team": "web"})),
                    tagged("ns3", Value::Null),
                ]));
                r.headers.push(("X-Pagination-Elements", "3".into()));
                r
            }
            _ => err(404, json!({"class": "Client::NotFound", "message": "no"})),
        })
        .await;
        let c = client(&fake);
        let tagged = c.tagged_servers("ovhform:fingerprint").await.unwrap();
        assert_eq!(
            tagged.names,
            BTreeSet::from(["ns1".to_string()]),
            "{refusal}"
        );
        assert_eq!(tagged.source, ovh::TagSource::Listing);
        assert!(c.fallbacks().contains(&Mode::IamTagsFilter));
        let filter = fake
            .seen()
            .into_iter()
            .find(|s| s.uri.contains("iamTags="))
            .unwrap();
        let query = filter.uri.split_once("iamTags=").unwrap().1;
        let decoded: Value = serde_json::from_str(
            &percent_encoding::percent_decode_str(query)
                .decode_utf8()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            decoded,
            json!({"ovhform:fingerprint": [{"operator": "EXISTS"}]})
        );
        // The listing the fallback read serves the fleet pass: no request.
        let before = fake.seen().len();
        let names = BTreeSet::from(["ns1".to_string(), "ns2".to_string()]);
        let observed = ovhform::observe::observe_fleet_from(&c, &names, tagged.listing)
            .await
            .unwrap();
        assert_eq!(observed.servers.len(), 2);
        assert_eq!(fake.seen().len(), before);
        // Remembered: the filter is not tried again.
        c.tagged_servers("ovhform:fingerprint").await.unwrap();
        assert_eq!(
            fake.seen()
                .iter()
                .filter(|s| s.uri.contains("iamTags="))
                .count(),
            1
        );
    }
    // A 401 (credentials) or a 5xx is no refusal of the filter: the call fails.
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        _ => err(
            401,
            json!({"class": "Client::Unauthorized", "message": "Invalid credentials"}),
        ),
    })
    .await;
    let c = client(&fake);
    assert_eq!(
        c.tagged_servers("ovhform:fingerprint")
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    assert!(c.fallbacks().is_empty());
}

#[tokio::test]
async fn the_iam_tags_filter_when_taken_costs_one_call() {
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        "/1.0/dedicated/server" if s.uri.contains("iamTags=") => ok(json!(["ns1"])),
        _ => err(404, json!({"class": "Client::NotFound", "message": "no"})),
    })
    .await;
    let c = client(&fake);
    let tagged = c.tagged_servers("ovhform:fingerprint").await.unwrap();
    assert_eq!(tagged.names, BTreeSet::from(["ns1".to_string()]));
    assert_eq!(tagged.source, ovh::TagSource::IamTagsFilter);
    assert!(tagged.listing.is_none());
    assert_eq!(c.calls(), 2, "/auth/time and the filtered listing");
}

#[tokio::test]
async fn expanded_listings_ask_for_a_fresh_answer_and_any_4xx_falls_back_to_plain_gets() {
    for refusal in [400, 403, 404, 405] {
        let fake = serve(move |s| {
            let expanded = s.header("x-pagination-mode").is_some();
            match s.path() {
                "/1.0/auth/time" => ok(json!(now())),
                "/1.0/dedicated/server" if expanded => err(
                    refusal,
                    json!({"class": "Client::Forbidden", "message": "no expanded listing here"}),
                ),
                "/1.0/dedicated/server" => ok(json!(["ns1"])),
                "/1.0/dedicated/server/ns1" => ok(server_json("ns1", Some(1), Value::Null)),
                _ => err(404, json!({"class": "Client::NotFound", "message": "no"})),
            }
        })
        .await;
        let c = client(&fake);
        let got = c.servers(None).await.unwrap();
        assert_eq!(got.servers.keys().collect::<Vec<_>>(), ["ns1"], "{refusal}");
        assert_eq!(c.fallbacks(), BTreeSet::from([Mode::ExpandedServers]));
        let expanded: Vec<Seen> = fake
            .seen()
            .into_iter()
            .filter(|s| s.header("x-pagination-mode").is_some())
            .collect();
        assert_eq!(expanded.len(), 1);
        assert_eq!(expanded[0].header("pragma"), Some("no-cache"));
    }
}

/// A fake task `id` of `function` in `status`.
fn task_json(id: u64, function: &str, status: &str) -> Value {
    let mut t = task7();
    t["taskId"] = json!(id);
    t["function"] = json!(function);
    t["status"] = json!(status);
    t
}

#[tokio::test]
async fn a_batch_answered_403_falls_back_to_per_object_gets_and_a_refused_object_is_reported() {
    let fake = serve(|s| {
        let not_granted = || {
            err(
                403,
                json!({"errorCode": "NOT_GRANTED_CALL", "httpCode": "403 Forbidden", "message": "This call has not been granted"}),
            )
        };
        match s.path() {
            "/1.0/auth/time" => ok(json!(now())),
            _ if s.header("x-ovh-batch").is_some() => not_granted(),
            "/1.0/dedicated/server/ns1/task/7" => ok(task_json(7, "hardReboot", "done")),
            "/1.0/dedicated/server/ns1/task/9" => not_granted(),
            _ => err(404, json!({"class": "Client::NotFound", "message": "no"})),
        }
    })
    .await;
    let c = client(&fake);
    let got = c.get_tasks("ns1", &[7, 8, 9]).await.unwrap();
    assert_eq!(got.found.keys().copied().collect::<Vec<_>>(), [7]);
    assert_eq!(got.missing, BTreeSet::from([8]));
    assert_eq!(got.refused.keys().copied().collect::<Vec<_>>(), [9]);
    assert_eq!(got.refused[&9].status(), Some(403));
    assert_eq!(c.fallbacks(), BTreeSet::from([Mode::Batch]));
    // Remembered: no second batch.
    let before = fake.seen().len();
    c.get_tasks("ns1", &[7, 8]).await.unwrap();
    assert!(
        fake.seen()[before..]
            .iter()
            .all(|s| s.header("x-ovh-batch").is_none())
    );
}

/// A listed task whose GET answers 404 is kept as unreadable, with the function the filtered
/// list that named it tells.
#[tokio::test]
async fn a_listed_task_answering_404_is_unreadable_with_the_function_of_its_listing() {
    let fake = serve(|s| match (s.path(), s.uri.split_once('?').map(|(_, q)| q)) {
        ("/1.0/auth/time", _) => ok(json!(now())),
        ("/1.0/dedicated/server/ns1/task", Some("function=reinstallServer")) => ok(json!([7, 9])),
        ("/1.0/dedicated/server/ns1/task", Some("status=init")) => ok(json!([10])),
        ("/1.0/dedicated/server/ns1/task", Some(_)) => ok(json!([])),
        ("/1.0/dedicated/server/ns1/task", None) => ok(json!([7, 8, 9, 10])),
        ("/1.0/dedicated/server/ns1/task/7", _) => ok(task7()),
        _ => err(
            404,
            json!({"class": "Client::NotFound", "message": "The requested object does not exist"}),
        ),
    })
    .await;
    let mut cfg = config(&fake.base, app_key_creds());
    // A long history: the filtered lists are read, not every task.
    cfg.batch_size = 1;
    let c = Client::new(cfg).unwrap();
    let relevant = c.relevant_tasks("ns1").await.unwrap();
    assert_eq!(
        relevant.tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
        [7]
    );
    assert_eq!(
        relevant.unreadable,
        BTreeMap::from([(9, Some("reinstallServer".to_string())), (10, None)])
    );
}

/// An expanded task listing that announces more tasks than it sends (one it cannot read yet)
/// keeps what it sent and reads the rest by id; the mode is not given up.
#[tokio::test]
async fn an_expanded_task_listing_short_of_its_total_reads_the_rest_by_id() {
    let fake = serve(|s| {
        let expanded = s.header("x-pagination-mode").is_some();
        match s.path() {
            "/1.0/auth/time" => ok(json!(now())),
            "/1.0/dedicated/server/ns1/task" if expanded => {
                let first = s.header("x-pagination-number") == Some("1");
                let mut r = ok(if first { json!([task7()]) } else { json!([]) });
                r.headers.push(("X-Pagination-Elements", "2".into()));
                r
            }
            "/1.0/dedicated/server/ns1/task" => ok(json!([7, 11])),
            _ => err(
                404,
                json!({"class": "Client::NotFound", "message": "The requested object does not exist"}),
            ),
        }
    })
    .await;
    let c = client(&fake);
    let relevant = c.relevant_tasks("ns1").await.unwrap();
    assert_eq!(
        relevant.tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
        [7]
    );
    assert_eq!(relevant.unreadable, BTreeMap::from([(11, None)]));
    assert!(c.fallbacks().is_empty());
    assert_eq!(fake.count("GET", "/1.0/dedicated/server/ns1/task/7"), 0);
    assert_eq!(fake.count("GET", "/1.0/dedicated/server/ns1/task/11"), 1);
}

/// Through `observe_detail`: unreadable tasks are in the detail; an install status that answers
/// anything but 404 is unknown, not "nothing installing".
#[tokio::test]
async fn observe_detail_keeps_unreadable_tasks_and_an_unknown_install_status() {
    let fake = serve(|s| match s.path() {
        "/1.0/auth/time" => ok(json!(now())),
        "/1.0/dedicated/server" => ok(json!(["ns1"])),
        "/1.0/dedicated/server/ns1" => ok(server_json("ns1", Some(1), Value::Null)),
        "/1.0/dedicated/server/ns1/boot" => ok(json!([1])),
        "/1.0/dedicated/server/ns1/boot/1" => ok(netboot_json(1)),
        "/1.0/dedicated/server/ns1/task" => ok(json!([7, 12])),
        "/1.0/dedicated/server/ns1/task/7" => ok(task7()),
        "/1.0/dedicated/server/ns1/install/status" => err(
            500,
            json!({"class": "Server::InternalServerError", "message": "boom"}),
        ),
        "/1.0/dedicated/server/ns1/install/compatibleTemplates" => {
            ok(json!({"ovh": ["debian12_64"]}))
        }
        "/1.0/dedicated/server/ns1/specifications/hardware" => {
            ok(json!({"bootMode": "uefi", "diskGroups": []}))
        }
        _ => err(
            404,
            json!({"class": "Client::NotFound", "message": "The requested object does not exist"}),
        ),
    })
    .await;
    let c = client(&fake);
    let names = BTreeSet::from(["ns1".to_string()]);
    let mut observed = observe_fleet(&c, &names).await.unwrap();
    observe_detail(&c, &mut observed, &names).await.unwrap();
    let s = &observed.servers["ns1"];
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    let d = s.detail.as_ref().unwrap();
    assert!(d.install_status_unknown && d.install_status.is_none());
    let tasks: Vec<(u64, ovhform::model::TaskStatus, &str)> = d
        .tasks
        .iter()
        .map(|t| (t.id, t.status, t.function.as_str()))
        .collect();
    assert_eq!(
        tasks,
        [
            (7, ovhform::model::TaskStatus::Done, "reinstallServer"),
            (12, ovhform::model::TaskStatus::Unreadable, "unknown")
        ]
    );
}

/// A template name the API answers with a 4xx other than 404 is not found (the planner says
/// `os-unknown`); a name that is a route is sent percent-encoded, one that URL normalisation
/// would rewrite (`..`) is never sent.
#[tokio::test]
async fn templates_the_api_refuses_are_not_found_and_dot_names_are_never_sent() {
    let fake = serve(|s| match s.path() {
        "/1.0/dedicated/installationTemplate/weird" => err(
            400,
            json!({"class": "Client::BadRequest", "message": "[templateName] is not valid"}),
        ),
        _ => err(404, json!({"class": "Client::NotFound", "message": "no"})),
    })
    .await;
    let c = client(&fake);
    let mut observed = ovhform::model::Observed::default();
    let names: BTreeSet<String> = ["weird", "..", "../../me", "a\\b"].map(String::from).into();
    observe_templates(&c, &mut observed, &names).await.unwrap();
    assert!(observed.templates.is_empty());
    let uris: BTreeSet<String> = fake.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris,
        BTreeSet::from([
            "/1.0/dedicated/installationTemplate/weird".to_string(),
            "/1.0/dedicated/installationTemplate/..%2F..%2Fme".to_string(),
            "/1.0/dedicated/installationTemplate/a%5Cb".to_string(),
        ])
    );
}
