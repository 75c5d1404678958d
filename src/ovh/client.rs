//! The client core: authentication (signature with the cached `/auth/time` delta, or an OAuth2
//! bearer token refreshed on expiry), the request budget, bounded concurrency, per-request
//! timeouts, the retry rules and the request counter (plus per-run [`Meter`]s). Routes live in
//! `routes.rs`.
//!
//! Retry rules (why): only a GET is retried on 429/5xx/timeouts/connection errors, with
//! jittered exponential backoff — reading twice is harmless. A PUT (idempotent attributes) is
//! retried only when the connection failed before anything was sent. POST and DELETE are never
//! retried: a reinstall or reboot POST that timed out may have been executed, and blindly
//! sending it again could start a second install; the caller re-observes instead.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use super::routes::Caches;
use super::transport::{HttpRequest, HttpResponse, ReqwestTransport, Transport, TransportError};
use super::{ApiError, Budget, ClientConfig, Credentials, Error, InstallApi, Meter, Secret, sign};

/// An API-call economy mode the client may find unsupported and then stops using.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// `X-Pagination-Mode: CachedObjectList-Pages` on `GET /dedicated/server`.
    ExpandedServers,
    /// The same on `GET /dedicated/server/{sn}/task`.
    ExpandedTasks,
    /// `X-Ovh-Batch: ,` GETs.
    Batch,
    /// The `iamTags` filter on `GET /dedicated/server` (REFERENCE §1.1; not in every region's
    /// schema, and OVH's own CLI does not rely on it for v1).
    IamTagsFilter,
}

/// When a failed attempt may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// GET: 429, 5xx, timeouts, connection errors.
    Safe,
    /// PUT: only when nothing was sent.
    Unsent,
    /// POST, DELETE.
    Never,
}

impl Retry {
    fn allows(self, e: &Error) -> bool {
        match self {
            Retry::Safe => e.is_transient(),
            Retry::Unsent => e.is_unsent(),
            Retry::Never => false,
        }
    }
}

/// One API call as routes describe it.
pub(crate) struct Call {
    pub method: &'static str,
    /// Path under the endpoint, with query string (e.g. `/dedicated/server/x/task?status=doing`).
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub auth: bool,
    pub headers: Vec<(String, String)>,
    pub retry: Retry,
    /// Not sent at all once this instant has passed (checked after the budget and slot
    /// waits, just before signing): the reinstall POST's bound on when it may leave.
    pub send_by: Option<Instant>,
    /// Its budget slot was taken in advance ([`Client::reserve_slot`]): `admit` skips the
    /// budget wait, so the time between the caller's last durable step and the send is
    /// bounded by the concurrency wait alone.
    pub prepaid: bool,
}

/// A request-budget slot taken ahead of the request that will use it (see
/// [`Client::reserve_slot`]). Consumed by that request; not reusable.
#[must_use = "a reserved slot is spent only by the request it is passed to"]
#[derive(Debug)]
pub struct Slot(());

impl Call {
    pub fn get(path: impl Into<String>) -> Call {
        Call {
            method: "GET",
            path: path.into(),
            body: None,
            auth: true,
            headers: vec![],
            retry: Retry::Safe,
            send_by: None,
            prepaid: false,
        }
    }
}

const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Longest time an OAuth2 access token is reused before asking for a new one.
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(24 * 3600);

struct Token {
    access: Secret,
    /// When to fetch a new one (a margin before the announced expiry).
    refresh_at: Instant,
}

struct Inner {
    cfg: ClientConfig,
    transport: Arc<dyn Transport>,
    permits: Semaphore,
    budget: Mutex<Budget>,
    calls: AtomicU64,
    time_delta: OnceCell<i64>,
    token: tokio::sync::Mutex<Option<Token>>,
    /// Which OAuth2 client authentication the token endpoint accepted (`STYLE_*`).
    oauth_style: std::sync::atomic::AtomicU8,
    unsupported: Mutex<BTreeSet<Mode>>,
    caches: Caches,
    /// Wall clock in unix seconds, for signatures (injectable so tests can tie it to paused
    /// tokio time).
    clock: WallClock,
}

/// Unix seconds "now", as the signer sees it.
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The OVHcloud API client. Cheap to clone (shared state behind an `Arc`): clones share the
/// budget, the counter, the caches and the remembered fallbacks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Per-run meters this handle (and its clones) also count into; see [`Client::metered`].
    meters: Vec<Meter>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.inner.cfg.credentials {
            Credentials::ApplicationKey { .. } => "application key",
            Credentials::OAuth2 { .. } => "oauth2",
            Credentials::None => "none",
        };
        f.debug_struct("Client")
            .field("endpoint", &self.inner.cfg.endpoint.base_url)
            .field("auth", &auth)
            .field("calls", &self.calls())
            .finish()
    }
}

impl Client {
    /// A client over the real HTTP transport (reqwest + rustls/ring).
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        let transport = ReqwestTransport::new(cfg.timeout)?;
        Ok(Client::with_transport(cfg, Arc::new(transport)))
    }

    /// A client over any transport (tests use in-memory fakes).
    pub fn with_transport(cfg: ClientConfig, transport: Arc<dyn Transport>) -> Client {
        Client::with_transport_and_clock(cfg, transport, Arc::new(unix_now))
    }

    /// A client over any transport with its own wall clock (tests of signature timing).
    pub fn with_transport_and_clock(
        cfg: ClientConfig,
        transport: Arc<dyn Transport>,
        clock: WallClock,
    ) -> Client {
        let caches = Caches::new(cfg.cache_ttl);
        Client {
            inner: Arc::new(Inner {
                permits: Semaphore::new(cfg.concurrency.max(1)),
                budget: Mutex::new(Budget::per_period(
                    cfg.requests_per_minute,
                    cfg.budget_period,
                )),
                calls: AtomicU64::new(0),
                time_delta: OnceCell::new(),
                token: tokio::sync::Mutex::new(None),
                oauth_style: std::sync::atomic::AtomicU8::new(STYLE_UNKNOWN),
                unsupported: Mutex::new(BTreeSet::new()),
                transport,
                caches,
                cfg,
                clock,
            }),
            meters: Vec::new(),
        }
    }

    /// A handle on the same client (same budget, caches, fallbacks and client-wide counter)
    /// whose requests are also counted into `meter`. Meters stack: a handle made from a metered
    /// handle counts into both.
    pub fn metered(&self, meter: &Meter) -> Client {
        let mut c = self.clone();
        c.meters.push(meter.clone());
        c
    }

    /// Unix seconds now, by the client's wall clock (the one signatures use).
    pub(crate) fn wall_now(&self) -> i64 {
        (self.inner.clock)()
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    pub fn install_api(&self) -> InstallApi {
        self.inner.cfg.install_api
    }

    /// HTTP requests sent so far (every attempt, including `/auth/time` and token requests).
    /// Requests the budget lets go right now (`None`: no budget).
    pub fn budget_left(&self) -> Option<u64> {
        self.inner
            .budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .left(tokio::time::Instant::now())
    }

    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Economy modes found unsupported in this session (then plain GETs are used).
    pub fn fallbacks(&self) -> BTreeSet<Mode> {
        self.inner.unsupported.lock().expect("mode lock").clone()
    }

    pub(crate) fn supports(&self, mode: Mode) -> bool {
        !self
            .inner
            .unsupported
            .lock()
            .expect("mode lock")
            .contains(&mode)
    }

    pub(crate) fn mark_unsupported(&self, mode: Mode) {
        let newly = self
            .inner
            .unsupported
            .lock()
            .expect("mode lock")
            .insert(mode);
        if newly {
            tracing::info!(
                ?mode,
                "the API does not honour this mode; using plain GETs for the rest of the session"
            );
        }
    }

    pub(crate) fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    // -- typed helpers used by routes ----------------------------------------------------

    /// Authenticated GET, JSON-decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let resp = self.execute(Call::get(path)).await?;
        decode("GET", path, &resp)
    }

    /// Unauthenticated GET (catalog routes, `/auth/time`).
    pub async fn get_unauthenticated<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let resp = self
            .execute(Call {
                auth: false,
                ..Call::get(path)
            })
            .await?;
        decode("GET", path, &resp)
    }

    /// PUT a JSON body; the API answers 200 with no useful body.
    pub async fn put<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<(), Error> {
        let call = Call {
            method: "PUT",
            body: Some(to_body(body)),
            retry: Retry::Unsent,
            ..Call::get(path)
        };
        self.execute(call).await.map(|_| ())
    }

    /// POST (never retried), JSON-decoded answer.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let call = Call {
            method: "POST",
            body: body.map(to_body),
            retry: Retry::Never,
            ..Call::get(path)
        };
        let resp = self.execute(call).await?;
        decode("POST", path, &resp)
    }

    /// Wait for one request-budget slot now, for a request sent later with it. A caller that
    /// must send within a bound of some durable step (the reinstall POST after its journal
    /// write) takes the slot first, so the budget queue is behind it before the bound starts.
    pub async fn reserve_slot(&self) -> Slot {
        self.wait_budget().await;
        Slot(())
    }

    /// POST (never retried) on a reserved budget slot that is not sent at all once `send_by`
    /// has passed (it then fails as unsent): for requests whose effect must start within a
    /// known bound.
    pub async fn post_before<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
        send_by: Instant,
        slot: Slot,
    ) -> Result<T, Error> {
        let Slot(()) = slot;
        let call = Call {
            method: "POST",
            body: body.map(to_body),
            retry: Retry::Never,
            send_by: Some(send_by),
            prepaid: true,
            ..Call::get(path)
        };
        let resp = self.execute(call).await?;
        decode("POST", path, &resp)
    }

    /// POST whose answer is void (empty, `null` or ignored).
    pub async fn post_void<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), Error> {
        let call = Call {
            method: "POST",
            body: body.map(to_body),
            retry: Retry::Never,
            ..Call::get(path)
        };
        self.execute(call).await.map(|_| ())
    }

    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let call = Call {
            method: "DELETE",
            retry: Retry::Never,
            ..Call::get(path)
        };
        self.execute(call).await.map(|_| ())
    }

    // -- the request pipeline ----------------------------------------------------------------

    /// Send a call with the retry rules; on 401 with OAuth2, refresh the token once. A path
    /// that URL normalisation would rewrite is refused before anything is sent.
    pub(crate) async fn execute(&self, call: Call) -> Result<HttpResponse, Error> {
        if !is_safe_path(&call.path) {
            return Err(Error::UnsafePath {
                method: call.method.into(),
                path: call.path.clone(),
            });
        }
        let first = self.execute_with_retries(&call).await;
        match first {
            Err(e) if e.status() == Some(401) && call.auth && self.is_oauth2() => {
                // The server rejected the token before doing anything: safe to send again.
                *self.inner.token.lock().await = None;
                self.execute_with_retries(&call).await
            }
            other => other,
        }
    }

    fn is_oauth2(&self) -> bool {
        matches!(self.inner.cfg.credentials, Credentials::OAuth2 { .. })
    }

    fn backoff(&self) -> ExponentialBuilder {
        let c = &self.inner.cfg;
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(c.retry_min_delay)
            .with_max_delay(c.retry_max_delay)
            .with_max_times(c.max_retries)
    }

    async fn execute_with_retries(&self, call: &Call) -> Result<HttpResponse, Error> {
        (|| self.attempt(call))
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(|e| call.retry.allows(e))
            // Honour the API's Retry-After when longer than our backoff (at most 5 minutes).
            .adjust(|e, backoff| {
                let asked = e
                    .api()
                    .and_then(|a| a.retry_after)
                    .map(|d| d.min(MAX_RETRY_AFTER));
                match (backoff, asked) {
                    (Some(b), Some(a)) => Some(b.max(a)),
                    (b, _) => b,
                }
            })
            .notify(
                |e, wait| tracing::warn!(error = %e, ?wait, "retrying a safe OVHcloud API call"),
            )
            .await
    }

    /// One attempt: authenticate, take a budget slot and a concurrency permit, send, classify.
    async fn attempt(&self, call: &Call) -> Result<HttpResponse, Error> {
        let cfg = &self.inner.cfg;
        // Normalise through the URL parser so the string we sign is the one reqwest sends.
        let url = reqwest::Url::parse(&cfg.endpoint.target(&call.path))
            .map_err(|e| Error::Config {
                message: format!("cannot build the URL of {}: {e}", call.path),
                hint: "check the endpoint".into(),
            })?
            .to_string();
        let mut headers: Vec<(String, String)> = vec![("Accept".into(), "application/json".into())];
        if call.body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        headers.extend(call.headers.iter().cloned());
        // Whatever may itself call the API (the /auth/time delta, an OAuth2 token) happens
        // before this request queues for the budget and a concurrency slot; the signature is
        // computed after that wait, so a queued request never leaves with a stale timestamp
        // (the API refuses those: "Query out of time").
        let mut signer = None;
        match &cfg.credentials {
            Credentials::ApplicationKey {
                application_key,
                application_secret,
                consumer_key,
            } => {
                headers.push(("X-Ovh-Application".into(), application_key.clone()));
                if call.auth {
                    let delta = self.time_delta().await?;
                    signer = Some((application_secret, consumer_key, delta));
                }
            }
            Credentials::OAuth2 {
                client_id,
                client_secret,
                token_url,
            } => {
                if call.auth {
                    let token = self.bearer(client_id, client_secret, token_url).await?;
                    headers.push(("Authorization".into(), format!("Bearer {}", token.expose())));
                }
            }
            Credentials::None if call.auth => {
                return Err(Error::Config {
                    message: format!("{} {} needs credentials and none are configured", call.method, call.path),
                    hint: "set OVH_APPLICATION_KEY/OVH_APPLICATION_SECRET/OVH_CONSUMER_KEY or OVH_CLIENT_ID/OVH_CLIENT_SECRET".into(),
                });
            }
            Credentials::None => {}
        }
        let permit = if call.prepaid {
            self.permit().await
        } else {
            self.admit().await
        };
        if let Some(deadline) = call.send_by
            && Instant::now() > deadline
        {
            return Err(Error::Transport {
                method: call.method.into(),
                path: call.path.clone(),
                message: "not sent: its deadline passed while it waited for a request slot".into(),
                sent: false,
            });
        }
        if let Some((application_secret, consumer_key, delta)) = signer {
            let ts = (self.inner.clock)() + delta;
            let body = call.body.as_deref().unwrap_or(b"");
            let sig = sign(
                application_secret.expose(),
                consumer_key.expose(),
                call.method,
                &url,
                body,
                ts,
            );
            headers.push(("X-Ovh-Consumer".into(), consumer_key.expose().to_string()));
            headers.push(("X-Ovh-Timestamp".into(), ts.to_string()));
            headers.push(("X-Ovh-Signature".into(), sig));
        }
        let request = HttpRequest {
            method: call.method.into(),
            url,
            headers,
            body: call.body.clone(),
            timeout: cfg.timeout,
        };
        let resp = self
            .send_admitted(request, permit, &call.path)
            .await
            .map_err(|e| self.transport_error(call.method, &call.path, e))?;
        if (200..300).contains(&resp.status) {
            Ok(resp)
        } else {
            let qid = resp.header("x-ovh-queryid").map(str::to_string);
            let mut e = ApiError::from_body(call.method, &call.path, resp.status, qid, &resp.body);
            e.retry_after = resp
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Err(Error::Api(Box::new(e)))
        }
    }

    /// Wait for the budget, then for a concurrency permit (held until the answer is in).
    async fn admit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.wait_budget().await;
        self.permit().await
    }

    async fn wait_budget(&self) {
        let wait = self
            .inner
            .budget
            .lock()
            .expect("budget lock")
            .reserve(Instant::now());
        if !wait.is_zero() {
            tracing::debug!(?wait, "request budget: waiting");
            tokio::time::sleep(wait).await;
        }
    }

    /// A concurrency permit, held until the answer is in.
    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.inner
            .permits
            .acquire()
            .await
            .expect("semaphore never closed")
    }

    /// The counters, then the wire (the caller holds an admission permit). `path` is the API
    /// path the meters group by (the request URL carries the endpoint too).
    async fn send_admitted(
        &self,
        request: HttpRequest,
        _permit: tokio::sync::SemaphorePermit<'_>,
        path: &str,
    ) -> Result<HttpResponse, TransportError> {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        for m in &self.meters {
            m.record(&request.method, path);
        }
        tracing::debug!(method = %request.method, url = %request.url, "OVHcloud API request");
        // The transport honours `request.timeout`; this outer limit makes the promise hold for
        // any transport (a little later, so the transport's own timeout normally fires first).
        let limit = request.timeout + Duration::from_secs(1);
        let method = request.method.clone();
        let result = match tokio::time::timeout(limit, self.inner.transport.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout),
        };
        if !self.meters.is_empty() {
            let status = match &result {
                Ok(resp) => resp.status.to_string(),
                Err(TransportError::Timeout) => "timeout".to_string(),
                Err(TransportError::Connect(_)) => "connect".to_string(),
                Err(TransportError::Other(_)) => "transport".to_string(),
                Err(TransportError::TooLarge { .. }) => "too-large".to_string(),
            };
            for m in &self.meters {
                m.record_answer(&method, path, status.clone());
            }
        }
        result
    }

    fn transport_error(&self, method: &str, path: &str, e: TransportError) -> Error {
        match e {
            TransportError::Timeout => Error::Timeout {
                method: method.into(),
                path: path.into(),
                timeout: self.inner.cfg.timeout,
            },
            TransportError::Connect(m) => Error::Transport {
                method: method.into(),
                path: path.into(),
                message: m,
                sent: false,
            },
            TransportError::Other(m) => Error::Transport {
                method: method.into(),
                path: path.into(),
                message: m,
                sent: true,
            },
            TransportError::TooLarge { limit } => Error::TooLarge {
                method: method.into(),
                path: path.into(),
                limit,
            },
        }
    }

    /// Server time delta from the unauthenticated `GET /auth/time`, fetched once per client.
    pub async fn time_delta(&self) -> Result<i64, Error> {
        self.inner
            .time_delta
            .get_or_try_init(|| async {
                // Boxed: this is the one place the pipeline calls itself (unauthenticated, so no cycle at
                // run time, but the future type is recursive).
                let call = Call {
                    auth: false,
                    ..Call::get("/auth/time")
                };
                let resp: HttpResponse = Box::pin(self.execute_with_retries(&call)).await?;
                let server: i64 = decode("GET", "/auth/time", &resp)?;
                Ok::<i64, Error>(server - (self.inner.clock)())
            })
            .await
            .copied()
    }

    /// The current bearer token, fetched (client credentials, `scope=all`) when absent or due.
    async fn bearer(
        &self,
        client_id: &str,
        client_secret: &Secret,
        token_url: &str,
    ) -> Result<Secret, Error> {
        let mut guard = self.inner.token.lock().await;
        if let Some(t) = guard.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.access.clone());
        }
        // Like the official clients: HTTP Basic first (python-ovh via requests-oauthlib, go-ovh
        // via x/oauth2 auto-detection); if refused, the credentials in the form body, as
        // x/oauth2 retries. The style that worked is remembered.
        let styles: &[AuthStyle] = match self.inner.oauth_style.load(Ordering::Relaxed) {
            STYLE_BODY => &[AuthStyle::Body],
            STYLE_BASIC => &[AuthStyle::Basic],
            _ => &[AuthStyle::Basic, AuthStyle::Body],
        };
        let mut last = None;
        for style in styles {
            match self
                .fetch_token(client_id, client_secret, token_url, *style)
                .await
            {
                Ok(token) => {
                    self.inner
                        .oauth_style
                        .store(style.code(), Ordering::Relaxed);
                    *guard = Some(token);
                    return Ok(guard
                        .as_ref()
                        .map(|t| t.access.clone())
                        .expect("just stored"));
                }
                Err((e, refused)) => {
                    last = Some(e);
                    if !refused {
                        break;
                    }
                }
            }
        }
        Err(last.expect("at least one token attempt"))
    }

    /// One token request; the error says whether the server refused the client credentials
    /// (400/401: another auth style may work).
    async fn fetch_token(
        &self,
        client_id: &str,
        client_secret: &Secret,
        token_url: &str,
        style: AuthStyle,
    ) -> Result<Token, (Error, bool)> {
        use base64::Engine as _;
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut headers: Vec<(String, String)> = vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Accept".into(), "application/json".into()),
        ];
        let mut form = "grant_type=client_credentials&scope=all".to_string();
        match style {
            AuthStyle::Basic => {
                let raw = format!("{client_id}:{}", client_secret.expose());
                let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
                headers.push(("Authorization".into(), format!("Basic {b64}")));
            }
            AuthStyle::Body => {
                form.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    enc(client_id),
                    enc(client_secret.expose())
                ));
            }
        }
        let request = HttpRequest {
            method: "POST".into(),
            url: token_url.to_string(),
            headers,
            body: Some(form.into_bytes()),
            timeout: self.inner.cfg.timeout,
        };
        let oauth_err = |message: String| Error::OAuth2 {
            url: token_url.to_string(),
            message,
        };
        let permit = self.admit().await;
        // Counted under a fixed route: the token URL is configurable, the route is the same.
        let resp = self
            .send_admitted(request, permit, "/auth/oauth2/token")
            .await
            .map_err(|e| (oauth_err(e.to_string()), false))?;
        let refused = matches!(resp.status, 400 | 401);
        #[derive(serde::Deserialize)]
        struct TokenBody {
            access_token: Option<String>,
            expires_in: Option<u64>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let body: Option<TokenBody> = serde_json::from_slice(&resp.body).ok();
        let Some(body) = body else {
            let msg = format!("HTTP {}: answer is not a token JSON object", resp.status);
            return Err((oauth_err(msg), refused));
        };
        match (resp.status, body.access_token) {
            (200..=299, Some(access)) if !access.is_empty() => {
                // Capped: the lifetime comes from the network, and an absurd one must neither
                // overflow the instant arithmetic below nor keep a token for ever.
                let life = Duration::from_secs(body.expires_in.unwrap_or(3600)).min(MAX_TOKEN_LIFE);
                // Refresh a little before expiry: 10% of the lifetime, at most 60 s.
                let margin = (life / 10).min(Duration::from_secs(60));
                Ok(Token {
                    access: Secret::new(access),
                    refresh_at: Instant::now() + life - margin,
                })
            }
            (status, _) => Err((
                oauth_err(format!(
                    "HTTP {status}: {} {}",
                    body.error.unwrap_or_else(|| "no access_token".into()),
                    body.error_description.unwrap_or_default()
                )),
                refused,
            )),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum AuthStyle {
    Basic,
    Body,
}

const STYLE_UNKNOWN: u8 = 0;
const STYLE_BASIC: u8 = 1;
const STYLE_BODY: u8 = 2;

impl AuthStyle {
    fn code(self) -> u8 {
        match self {
            AuthStyle::Basic => STYLE_BASIC,
            AuthStyle::Body => STYLE_BODY,
        }
    }
}

/// Whether `path` (under the endpoint, query excluded from the check) reaches the route it
/// spells. The URL parser resolves `.` and `..` segments (also written `%2e`) and takes `\`
/// for `/` in http(s) URLs, so a name that makes such a segment (`..` as a server or template
/// name from the API or a manifest) would send the request, signed, to another route.
/// Routes escape `/`, `%`, `\` and `?` in names (`routes::seg`), so only whole-segment
/// dot names and empty names are left to refuse here.
pub(crate) fn is_safe_path(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !path.contains('\\')
        && rest.split('/').all(|seg| {
            let s = seg.to_ascii_lowercase();
            !(s.is_empty() || matches!(s.as_str(), "." | ".." | "%2e" | ".%2e" | "%2e." | "%2e%2e"))
        })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Compact JSON, like python-ovh (`separators=(",", ":")`); these bytes are signed and sent.
fn to_body<B: Serialize + ?Sized>(body: &B) -> Vec<u8> {
    serde_json::to_vec(body).expect("request bodies are plain JSON-serialisable data")
}

pub(crate) fn decode<T: DeserializeOwned>(
    method: &str,
    path: &str,
    resp: &HttpResponse,
) -> Result<T, Error> {
    serde_json::from_slice(&resp.body).map_err(|e| Error::decode(method, path, resp, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovh::Endpoint;

    #[test]
    fn paths_that_url_normalisation_would_rewrite_are_unsafe() {
        for ok in [
            "/dedicated/server",
            "/dedicated/server/ns1.ip-1-2-3.eu/task?status=init",
            "/dedicated/installationTemplate/..%2F..%2Fme",
            "/dedicated/installationTemplate/...",
            "/dedicated/server?iamTags=%7B%22a%22%3A%5B%5D%7D",
            "/v2/iam/resource/urn:v1:eu:resource:dedicatedServer:ns1",
        ] {
            assert!(is_safe_path(ok), "{ok}");
        }
        for bad in [
            "/dedicated/installationTemplate/..",
            "/dedicated/installationTemplate/.",
            "/dedicated/server/%2E%2e/boot",
            "/dedicated/server/.%2E",
            "/dedicated/server/",
            "/dedicated/server//boot",
            "/dedicated/server/a\\..\\me",
            "dedicated/server",
        ] {
            assert!(!is_safe_path(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unsafe_path_is_refused_before_anything_is_sent() {
        let creds = Credentials::OAuth2 {
            client_id: "id".into(),
            client_secret: Secret::new("s"),
            token_url: "http://127.0.0.1:9/auth/oauth2/token".into(),
        };
        let mut cfg = ClientConfig::new(Endpoint::parse("http://127.0.0.1:9/1.0").unwrap(), creds);
        cfg.requests_per_minute = 0;
        let c = Client::with_transport(cfg, Arc::new(Silent));
        let e = c
            .get_unauthenticated::<serde_json::Value>("/dedicated/installationTemplate/..")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
        assert_eq!(c.calls(), 0, "nothing sent");
    }

    /// Without credentials only unauthenticated calls leave (doctor's endpoint probe).
    #[tokio::test(start_paused = true)]
    async fn no_credentials_send_no_signed_call() {
        let mut cfg = ClientConfig::new(
            Endpoint::parse("http://127.0.0.1:9/1.0").unwrap(),
            Credentials::None,
        );
        cfg.requests_per_minute = 0;
        let c = Client::with_transport(cfg, Arc::new(Silent));
        let e = c
            .get::<serde_json::Value>("/dedicated/server")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
        assert_eq!(c.calls(), 0, "nothing sent");
    }

    #[test]
    fn client_new_builds_the_real_transport_without_network() {
        let creds = Credentials::ApplicationKey {
            application_key: "ak".into(),
            application_secret: Secret::new("HIDDEN-AS"),
            consumer_key: Secret::new("HIDDEN-CK"),
        };
        let c = Client::new(ClientConfig::new(Endpoint::parse("ovh-eu").unwrap(), creds)).unwrap();
        assert_eq!(c.calls(), 0);
        let shown = format!("{c:?} {:?}", c.config());
        assert!(shown.contains("https://eu.api.ovh.com/1.0"), "{shown}");
        assert!(!shown.contains("HIDDEN"), "{shown}");
    }

    /// 429 with `Retry-After: 7` once, then 200.
    #[derive(Default)]
    struct SlowDown(std::sync::atomic::AtomicUsize);
    impl Transport for SlowDown {
        fn send(
            &self,
            _: HttpRequest,
        ) -> super::super::BoxFuture<'_, Result<HttpResponse, TransportError>> {
            let first = self.0.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                Ok(if first {
                    HttpResponse {
                        status: 429,
                        headers: vec![("retry-after".into(), "7".into())],
                        body: vec![],
                    }
                } else {
                    HttpResponse {
                        status: 200,
                        headers: vec![],
                        body: b"[]".to_vec(),
                    }
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let creds = Credentials::OAuth2 {
            client_id: "id".into(),
            client_secret: Secret::new("s"),
            token_url: "http://x/t".into(),
        };
        let mut cfg = ClientConfig::new(Endpoint::parse("http://127.0.0.1:9/1.0").unwrap(), creds);
        cfg.requests_per_minute = 0;
        cfg.retry_min_delay = Duration::from_millis(10);
        let c = Client::with_transport(cfg, Arc::new(SlowDown::default()));
        let t0 = Instant::now();
        let v: Vec<String> = c
            .get_unauthenticated("/dedicated/installationTemplate")
            .await
            .unwrap();
        assert!(v.is_empty());
        assert_eq!(c.calls(), 2);
        assert!(t0.elapsed() >= Duration::from_secs(7), "{:?}", t0.elapsed());
    }

    /// A token endpoint announcing an absurd lifetime, then plain 200 answers.
    #[derive(Default)]
    struct EndlessToken(std::sync::atomic::AtomicUsize);
    impl Transport for EndlessToken {
        fn send(
            &self,
            req: HttpRequest,
        ) -> super::super::BoxFuture<'_, Result<HttpResponse, TransportError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let body: &[u8] = if req.url.ends_with("/auth/oauth2/token") {
                br#"{"access_token":"tok","token_type":"Bearer","expires_in":18446744073709551615}"#
            } else {
                b"[]"
            };
            Box::pin(async move {
                Ok(HttpResponse {
                    status: 200,
                    headers: vec![],
                    body: body.to_vec(),
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_absurd_token_lifetime_is_capped_not_a_panic() {
        let creds = Credentials::OAuth2 {
            client_id: "id".into(),
            client_secret: Secret::new("s"),
            token_url: "http://127.0.0.1:9/auth/oauth2/token".into(),
        };
        let mut cfg = ClientConfig::new(Endpoint::parse("http://127.0.0.1:9/1.0").unwrap(), creds);
        cfg.requests_per_minute = 0;
        let transport = Arc::new(EndlessToken::default());
        let c = Client::with_transport(cfg, transport.clone());
        let v: Vec<u64> = c.get("/dedicated/server").await.unwrap();
        assert!(v.is_empty());
        assert_eq!(c.calls(), 2, "one token request, one GET");
        // Past the cap the token is fetched again.
        tokio::time::advance(MAX_TOKEN_LIFE).await;
        let _: Vec<u64> = c.get("/dedicated/server").await.unwrap();
        assert_eq!(transport.0.load(Ordering::SeqCst), 4);
    }

    /// A transport that never answers: the client's own timeout still ends the request.
    struct Silent;
    impl Transport for Silent {
        fn send(
            &self,
            _: HttpRequest,
        ) -> super::super::BoxFuture<'_, Result<HttpResponse, TransportError>> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_request_has_a_timeout_and_post_is_not_retried() {
        let creds = Credentials::OAuth2 {
            client_id: "id".into(),
            client_secret: Secret::new("s"),
            token_url: "http://127.0.0.1:9/auth/oauth2/token".into(),
        };
        let mut cfg = ClientConfig::new(Endpoint::parse("http://127.0.0.1:9/1.0").unwrap(), creds);
        cfg.timeout = Duration::from_secs(5);
        cfg.requests_per_minute = 0;
        let c = Client::with_transport(cfg, Arc::new(Silent));
        let e = c
            .get_unauthenticated::<Vec<String>>("/dedicated/installationTemplate")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert_eq!(c.calls(), 5, "a GET: first attempt + 4 retries");
        let e = c
            .post::<(), serde_json::Value>("/x", None)
            .await
            .unwrap_err();
        // The token request itself times out first: nothing else is sent.
        assert!(matches!(e, Error::OAuth2 { .. }), "{e}");
        assert_eq!(c.calls(), 6);
    }
}
