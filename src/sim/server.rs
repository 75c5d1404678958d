//! HTTP plumbing of the simulator: the accept loop (with connection resets on demand), the
//! single dispatcher (version prefixes, faults, call counting, authentication, batch GET),
//! `X-Ovh-QueryId` on every answer, OAuth2 token issuing and the `/_sim` test hooks.
//!
//! Owns: bytes in, bytes out. Must not touch: API semantics (in `routes.rs`). The world lock
//! is a std mutex, taken only in synchronous sections, never across an `.await`.
//!
//! Shutdown: `SimHandle::shutdown` (or drop) notifies `App::shutdown`; axum's graceful
//! shutdown then stops accepting, lets in-flight requests finish and closes idle connections.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::SimConfig;
use super::auth::{self, SimCredentials, SimKey, Tokens};
use super::faults::{Faults, Injected};
use super::http::{Answer, ApiError, Outcome};
use super::routes::{self, Modes, Req, Version};
use super::world::{InstallFailure, TaskStatus, World};

pub(crate) struct App {
    pub world: Mutex<World>,
    pub modes: Mutex<Modes>,
    pub credentials: SimCredentials,
    tokens: Mutex<Tokens>,
    hooks: bool,
    token_ttl: Duration,
    max_skew: Duration,
    /// The consumer key's state (`/auth/currentCredential`, access rules).
    pub key: Mutex<SimKey>,
    /// Seconds this API's wall clock is ahead of the machine's (negative: behind).
    clock_offset: i64,
    query_seq: AtomicU64,
    pub shutdown: Notify,
}

impl App {
    pub fn new(world: World, config: &SimConfig) -> Self {
        App {
            world: Mutex::new(world),
            modes: Mutex::new(Modes {
                expanded_listing: config.expanded_listing,
                batch: config.batch,
                legacy_install: config.legacy_install,
                iam_tags_filter: config.iam_tags_filter,
                stale_listing: config.stale_listing,
                batch_forbidden: config.batch_forbidden,
            }),
            credentials: config.credentials.clone(),
            tokens: Mutex::new(Tokens::default()),
            hooks: config.hooks,
            token_ttl: config.oauth2_token_ttl,
            max_skew: config.max_clock_skew,
            key: Mutex::new(config.key.clone()),
            clock_offset: config.clock_offset_secs,
            query_seq: AtomicU64::new(1),
            shutdown: Notify::new(),
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The API's wall clock (unix seconds): what `/auth/time` answers and signatures are
    /// checked against.
    fn now_unix(&self) -> i64 {
        now_unix().saturating_add(self.clock_offset)
    }

    fn key(&self) -> SimKey {
        self.key.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn modes(&self) -> Modes {
        *self.modes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Call just before the world changes (a write through the API, a hook): with the
    /// stale-listing mode on, cached expanded listings keep serving the state from before it.
    pub fn before_change(&self, w: &mut World) {
        if self.modes().stale_listing {
            w.tick();
            w.listing_snapshot = Some(w.servers.clone());
        } else {
            // A change made without the cache: a cache switched on later starts fresh.
            w.listing_snapshot = None;
        }
    }
}

// --- Accept loop with per-connection reset switch -------------------------------------------

/// Per-connection handle given to handlers: setting `reset` makes the connection die with a
/// TCP RST instead of delivering the answer (the "connection reset" fault).
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    reset: Arc<AtomicBool>,
    peer: SocketAddr,
}

struct SimListener(TcpListener);

pub(crate) struct SimIo {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl SimIo {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::SeqCst) {
            // Zero linger turns the close into an RST; it does not block (the reason tokio
            // deprecates set_linger is the blocking non-zero case).
            #[allow(deprecated)]
            let _ = self.stream.set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "simulated connection reset",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Listener for SimListener {
    type Io = SimIo;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let reset = Arc::new(AtomicBool::new(false));
                    return (
                        SimIo {
                            stream,
                            reset: reset.clone(),
                        },
                        Conn { reset, peer },
                    );
                }
                // Transient accept errors (e.g. too many open files): back off a little.
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            reset: Arc::new(AtomicBool::new(false)),
            peer: self.0.local_addr()?,
        })
    }
}

impl Connected<IncomingStream<'_, SimListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) {
    let router = Router::new().fallback(handle).with_state(app.clone());
    let shutdown = async move { app.shutdown.notified().await };
    let served = axum::serve(
        SimListener(listener),
        router.into_make_service_with_connect_info::<Conn>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "simulator stopped");
    }
}

// --- Dispatcher -------------------------------------------------------------------------------

async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let resp = match axum::body::to_bytes(body, 4 << 20).await {
        Ok(bytes) => dispatch(&app, &conn, &parts, &bytes).await,
        Err(_) => error_response(&ApiError::new(
            400,
            "Client::BadRequest",
            "Request body too large or unreadable",
        )),
    };
    with_query_id(&app, resp)
}

fn with_query_id(app: &App, mut resp: Response) -> Response {
    let seq = app.query_seq.fetch_add(1, Ordering::Relaxed);
    // Shaped like the real ids (`EU.ext-99.…`), unique per answer, quoted in support tickets.
    let query_id = format!("SIM.ws-1.{:08x}.{seq}", std::process::id());
    if let Ok(v) = HeaderValue::from_str(&query_id) {
        resp.headers_mut().insert("x-ovh-queryid", v);
    }
    resp
}

/// [`handle`] without a connection: the body already read, no reset possible (a "connection
/// reset" fault still answers its 500). See `sim::InProcess`.
pub(crate) async fn answer_in_process(app: &App, parts: &Parts, body: &[u8]) -> super::RawAnswer {
    let conn = Conn {
        reset: Arc::new(AtomicBool::new(false)),
        peer: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let resp = with_query_id(
        app,
        dispatch(app, &conn, parts, &Bytes::copy_from_slice(body)).await,
    );
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // The simulator's bodies are built in memory: reading one back cannot fail.
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, headers, body)
}

fn json_response(status: StatusCode, body: &Value, headers: &[(&'static str, String)]) -> Response {
    let mut resp = (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            resp.headers_mut().insert(*k, v);
        }
    }
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.body,
        &[],
    )
}

fn render(outcome: Outcome) -> Response {
    match outcome {
        Ok(a) => json_response(StatusCode::OK, &a.body, &a.headers),
        Err(e) => error_response(&e),
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn dispatch(app: &App, conn: &Conn, parts: &Parts, body: &Bytes) -> Response {
    let path = parts.uri.path();
    if path == "/_sim" || path.starts_with("/_sim/") {
        // Not part of OVH's API: invisible (an unknown URL) unless hooks are enabled.
        return if app.hooks {
            render(hook(app, parts, body))
        } else {
            error_response(&ApiError::invalid_url())
        };
    }
    if path == "/auth/oauth2/token" && parts.method == Method::POST {
        return oauth2_token(app, body);
    }
    let (version, rest) = if let Some(r) = path
        .strip_prefix("/1.0")
        .or_else(|| path.strip_prefix("/v1"))
    {
        (Version::V1, r)
    } else if let Some(r) = path.strip_prefix("/v2") {
        (Version::V2, r)
    } else {
        return error_response(&ApiError::invalid_url());
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return error_response(&ApiError::invalid_url());
    }

    // Faults come first, like a proxy in front of the API would produce them.
    let (latency, injected) = {
        let mut w = app.world();
        let faults: Faults = w.faults.clone();
        let mut injected = faults.draw(&mut w.rng);
        if injected == Injected::None
            && !w.fair_use.admit(faults.fair_use_per_minute, Instant::now())
        {
            injected = Injected::TooManyRequests;
        }
        w.injected.count(injected);
        if faults.latency.is_some() {
            w.injected.delayed += 1;
        }
        (faults.latency, injected)
    };
    if let Some(l) = latency {
        tokio::time::sleep(l).await;
    }
    match injected {
        Injected::Reset => {
            conn.reset.store(true, Ordering::SeqCst);
            return error_response(&ApiError::new(
                500,
                "Server::InternalServerError",
                "connection reset",
            ));
        }
        // No published body or Retry-After for 429 (REFERENCE §6.7) [inferred].
        Injected::TooManyRequests => {
            return error_response(&ApiError::new(
                429,
                "Client::TooManyRequests",
                "Too many requests",
            ));
        }
        Injected::ServerError => {
            return error_response(&ApiError::new(
                500,
                "Server::InternalServerError",
                "Internal server error",
            ));
        }
        Injected::None => {}
    }

    let modes = app.modes();
    let mut segs = segments(rest);
    // Batch GET: `X-Ovh-Batch: <sep>` and ids joined by <sep> in the last path segment.
    let batch_sep = parts
        .headers
        .get("x-ovh-batch")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && modes.batch && parts.method == Method::GET)
        .map(str::to_string);
    let batch_ids: Option<Vec<String>> = batch_sep.as_ref().and_then(|sep| {
        let last = segs.last()?;
        last.contains(sep.as_str())
            .then(|| last.split(sep.as_str()).map(str::to_string).collect())
    });
    if let Some(ids) = &batch_ids
        && let Some(last) = segs.last_mut()
    {
        *last = ids[0].clone();
    }
    let Some((pattern, needs_auth)) = routes::classify(version, &parts.method, &segs) else {
        return error_response(&ApiError::invalid_url());
    };
    tracing::debug!(peer = %conn.peer, route = %pattern, batch = batch_ids.is_some(), "simulator request");
    {
        let mut w = app.world();
        let now = w.now();
        if let Some(arrivals) = w.arrivals.as_mut() {
            arrivals.push((now, pattern.clone()));
        }
        let host = parts
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        *w.calls_by_host
            .entry(host)
            .or_default()
            .entry(pattern.clone())
            .or_default() += 1;
        *w.calls.entry(pattern).or_default() += 1;
    }

    if needs_auth {
        let host = parts
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(path);
        // The URL the client signed: what it addressed (Host header), not our bind address.
        let url = format!("http://{host}{pq}");
        let tokens = app.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = auth::verify(
            &app.credentials,
            &tokens,
            &parts.headers,
            parts.method.as_str(),
            &url,
            body,
            app.now_unix(),
            app.max_skew,
        ) {
            return error_response(&e);
        }
        // A bearer token's rights are IAM policies, which the simulator does not model; a
        // consumer key's are its status, expiry and access rules.
        if !parts.headers.contains_key("authorization") {
            let rule_path = match version {
                Version::V1 => rest.to_string(),
                Version::V2 => format!("/v2{rest}"),
            };
            if let Err(e) = app
                .key()
                .admit(parts.method.as_str(), &rule_path, app.now_unix())
            {
                return error_response(&e);
            }
        }
        if version == Version::V1
            && parts.method == Method::GET
            && segs == ["auth", "currentCredential"]
        {
            let now = app.now_unix();
            // Created a year ago, in use now.
            return render(Ok(Answer::json(app.key().to_json(now - 365 * 86_400, now))));
        }
    }

    // Access rules are checked once the signature is: a batch GET when they name servers one
    // by one, and any request addressing a server they leave out [inferred: the shape of
    // these refusals; python-ovh maps `NOT_GRANTED_CALL` to its 403 exception].
    let not_granted = || {
        error_response(&ApiError::legacy(
            403,
            "NOT_GRANTED_CALL",
            "This call has not been granted",
        ))
    };
    if batch_ids.is_some() && modes.batch_forbidden {
        return not_granted();
    }
    if version == Version::V1 && segs.len() >= 3 && segs[0] == "dedicated" && segs[1] == "server" {
        let addressed: Vec<&String> = match &batch_ids {
            Some(ids) if segs.len() == 3 => ids.iter().collect(),
            _ => vec![&segs[2]],
        };
        let w = app.world();
        if addressed
            .iter()
            .any(|sn| w.servers.get(sn.as_str()).is_some_and(|s| s.access_denied))
        {
            return not_granted();
        }
        // The planned-intervention routes have their own IAM action
        // (`dedicatedServer:apiovh:plannedIntervention/get`, a beta route): a policy can leave
        // them out while granting the rest.
        if segs.get(3).is_some_and(|s| s == "plannedIntervention")
            && addressed.iter().any(|sn| {
                w.servers
                    .get(sn.as_str())
                    .is_some_and(|s| s.interventions_denied)
            })
        {
            return not_granted();
        }
    }

    let query = parse_query(parts.uri.query());
    let mut world = app.world();
    if parts.method != Method::GET {
        app.before_change(&mut world);
    }
    let Some(ids) = batch_ids else {
        let req = Req {
            version,
            method: &parts.method,
            segs,
            query,
            headers: &parts.headers,
            body,
        };
        return render(routes::execute(&mut world, &modes, &req, app.now_unix()));
    };
    // Item shape `{key, value, error}`: `value` is confirmed (OVH console), the other keys are
    // [unverified] (REFERENCE §6.8).
    let items: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut s = segs.clone();
            if let Some(last) = s.last_mut() {
                last.clone_from(id);
            }
            let req = Req { version, method: &parts.method, segs: s, query: query.clone(), headers: &parts.headers, body };
            match routes::execute(&mut world, &modes, &req, app.now_unix()) {
                Ok(a) => json!({"key": id, "value": a.body, "error": null}),
                Err(e) => json!({"key": id, "value": null, "error": e.body.get("message").cloned().unwrap_or(Value::Null)}),
            }
        })
        .collect();
    render(Ok(Answer::json(json!(items))))
}

/// `POST /auth/oauth2/token`, client-credentials grant (form or JSON body).
fn oauth2_token(app: &App, body: &Bytes) -> Response {
    let text = String::from_utf8_lossy(body);
    let form: Vec<(String, String)> = if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Map<String, Value>>(&text)
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        parse_query(Some(&text))
    };
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        json_response(
            status,
            &json!({"error": error, "error_description": description}),
            &[],
        )
    };
    if get("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    if get("client_id") != Some(app.credentials.client_id.as_str())
        || get("client_secret") != Some(app.credentials.client_secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let token = app
        .tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .issue(app.token_ttl);
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": app.token_ttl.as_secs(), "scope": get("scope").unwrap_or("all")}),
        &[],
    )
}

// --- Test hooks -------------------------------------------------------------------------------

fn hook_error(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "Sim::BadRequest", message)
}

/// `/_sim/…`: inspect and steer the world. Bodies and answers are plain JSON.
fn hook(app: &App, parts: &Parts, body: &Bytes) -> Outcome {
    let segs = segments(parts.uri.path());
    let s: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    let parse = || -> Result<Value, ApiError> {
        if body.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(body).map_err(|e| hook_error(e.to_string()))
        }
    };
    let mut w = app.world();
    w.tick();
    match (parts.method.as_str(), s.as_slice()) {
        ("GET", ["world"]) => Ok(Answer::json(json!({
            "now": super::world::fmt_ts(w.now()),
            "speed": w.clock.speed(),
            "servers": w.servers,
            "modes": app.modes(),
            "faults": w.faults,
        }))),
        ("GET", ["calls"]) => Ok(Answer::json(
            json!({"total": w.total_calls(), "routes": w.calls}),
        )),
        ("DELETE", ["calls"]) => {
            w.calls.clear();
            w.calls_by_host.clear();
            Ok(Answer::void())
        }
        ("GET", ["server", sn]) => w
            .servers
            .get(*sn)
            .map(|s| Answer::json(json!(s)))
            .ok_or_else(ApiError::not_found_service),
        // Shallow merge of the given keys into the server's state (names as in GET /_sim/server).
        ("PATCH", ["server", sn]) => {
            let patch = parse()?;
            let patch = patch
                .as_object()
                .ok_or_else(|| hook_error("body must be an object"))?;
            if !w.servers.contains_key(*sn) {
                return Err(ApiError::not_found_service());
            }
            app.before_change(&mut w);
            let srv = w
                .servers
                .get_mut(*sn)
                .ok_or_else(ApiError::not_found_service)?;
            let mut cur = serde_json::to_value(&*srv).map_err(|e| hook_error(e.to_string()))?;
            if let Some(obj) = cur.as_object_mut() {
                for (k, v) in patch {
                    if !obj.contains_key(k) {
                        return Err(hook_error(format!("unknown server field {k}")));
                    }
                    obj.insert(k.clone(), v.clone());
                }
            }
            *srv = serde_json::from_value(cur).map_err(|e| hook_error(e.to_string()))?;
            Ok(Answer::json(json!(srv)))
        }
        ("POST", ["server", sn, "fail-next-install"]) => {
            let f: InstallFailure =
                serde_json::from_value(parse()?).map_err(|e| hook_error(e.to_string()))?;
            if !matches!(f.status, TaskStatus::CustomerError | TaskStatus::OvhError) {
                return Err(hook_error(
                    "status must be customerError or ovhError (how a failed install ends)",
                ));
            }
            let srv = w
                .servers
                .get_mut(*sn)
                .ok_or_else(ApiError::not_found_service)?;
            srv.fail_next_install = Some(f);
            Ok(Answer::void())
        }
        // A task someone else started (status `init`; no install status, no effect):
        // `{"function": "hardReboot"}`. The `freshTask404` fault applies to it.
        ("POST", ["server", sn, "task"]) => {
            let body = parse()?;
            let function = body
                .get("function")
                .and_then(Value::as_str)
                .ok_or_else(|| hook_error("body: {\"function\": \"hardReboot\"}"))?;
            if !routes::TASK_FUNCTIONS.contains(&function) {
                return Err(hook_error(format!(
                    "function {function:?} is not a dedicated.TaskFunctionEnum value"
                )));
            }
            if !w.servers.contains_key(*sn) {
                return Err(ApiError::not_found_service());
            }
            app.before_change(&mut w);
            let t = w
                .create_bare_task(sn, function)
                .ok_or_else(ApiError::not_found_service)?;
            Ok(Answer::json(t.to_json()))
        }
        // A planned intervention as OVH would schedule it: `{"status": "todo",
        // "wantedStartDate": RFC 3339, "expectedEndDate": RFC 3339, "type": …}`, each key
        // optional (todo, now, now + 2 h, HARDWARE_UPGRADE_ON_ACTIVE_SERVER).
        ("POST", ["server", sn, "planned-intervention"]) => {
            let body = parse()?;
            let text = |k: &str| body.get(k).and_then(Value::as_str);
            let status = text("status").unwrap_or("todo");
            if !super::world::INTERVENTION_STATUSES.contains(&status) {
                return Err(hook_error(format!(
                    "status {status:?} is not a dedicated.PlannedInterventionStatusEnum value"
                )));
            }
            let date = |k: &str, default: jiff::Timestamp| match text(k) {
                Some(t) => t
                    .parse::<jiff::Timestamp>()
                    .map_err(|e| hook_error(format!("{k}: {e}"))),
                None => Ok(default),
            };
            let now = w.now();
            let wanted = date("wantedStartDate", now)?;
            let end = date(
                "expectedEndDate",
                now.saturating_add(jiff::SignedDuration::from_hours(2))
                    .unwrap_or(now),
            )?;
            let kind = text("type").unwrap_or(super::world::INTERVENTION_TYPE);
            if !w.servers.contains_key(*sn) {
                return Err(ApiError::not_found_service());
            }
            app.before_change(&mut w);
            let pi = w
                .plan_intervention(sn, kind, status, wanted, end)
                .ok_or_else(ApiError::not_found_service)?;
            Ok(Answer::json(pi.to_json()))
        }
        // `{"status": "done"}`: OVH moved the intervention along (or finished it).
        ("PUT", ["server", sn, "planned-intervention", id]) => {
            let status = parse()?
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| hook_error("body: {\"status\": \"done\"}"))?;
            if !super::world::INTERVENTION_STATUSES.contains(&status.as_str()) {
                return Err(hook_error(format!(
                    "status {status:?} is not a dedicated.PlannedInterventionStatusEnum value"
                )));
            }
            let id: u64 = id
                .parse()
                .map_err(|_| hook_error(format!("intervention id {id:?} is not a number")))?;
            if !w.servers.contains_key(*sn) {
                return Err(ApiError::not_found_service());
            }
            app.before_change(&mut w);
            if !w.set_intervention_status(sn, id, &status) {
                return Err(ApiError::new(
                    404,
                    "Sim::NotFound",
                    format!("no planned intervention {id} on {sn}"),
                ));
            }
            Ok(Answer::void())
        }
        ("POST", ["clock", "advance"]) => {
            let secs = parse()?
                .get("seconds")
                .and_then(Value::as_f64)
                .ok_or_else(|| hook_error("body: {\"seconds\": N}"))?;
            let by = Duration::try_from_secs_f64(secs)
                .map_err(|e| hook_error(format!("seconds: {e}")))?;
            w.advance(by);
            Ok(Answer::json(json!({"now": super::world::fmt_ts(w.now())})))
        }
        ("POST", ["clock", "speed"]) => {
            let speed = parse()?
                .get("speed")
                .and_then(Value::as_f64)
                .ok_or_else(|| hook_error("body: {\"speed\": F}"))?;
            w.clock.set_speed(speed);
            Ok(Answer::void())
        }
        ("GET", ["key"]) => Ok(Answer::json(json!(app.key()))),
        // The consumer key's state: `{"status": "expired", "rules": [{"method": "GET",
        // "path": "/*"}], "expiration": 1700000000, …}` (every field, as `GET /_sim/key`).
        ("PUT", ["key"]) => {
            let key: SimKey =
                serde_json::from_value(parse()?).map_err(|e| hook_error(e.to_string()))?;
            *app.key.lock().unwrap_or_else(|p| p.into_inner()) = key;
            Ok(Answer::void())
        }
        ("GET", ["faults"]) => Ok(Answer::json(json!(w.faults))),
        ("PUT", ["faults"]) => {
            w.faults = serde_json::from_value(parse()?).map_err(|e| hook_error(e.to_string()))?;
            Ok(Answer::void())
        }
        ("PUT", ["modes"]) => {
            let m: Modes =
                serde_json::from_value(parse()?).map_err(|e| hook_error(e.to_string()))?;
            *app.modes.lock().unwrap_or_else(|p| p.into_inner()) = m;
            Ok(Answer::void())
        }
        _ => Err(ApiError::new(
            404,
            "Sim::NotFound",
            "unknown hook; see docs/operations.md \"Simulator\"",
        )),
    }
}
