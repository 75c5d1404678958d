//! The OVHcloud API simulator: the same HTTP surface as the real API (REFERENCE.md), over an
//! in-memory world, so every ovhform test and demo runs offline and against the real API's
//! shapes, errors and timings rather than against our own client's assumptions.
//!
//! Owns: `src/sim/**`. Must not touch: the client (`ovh/`), the planner, manifests. It shares
//! no types with the client on purpose: responses are built from the published schemas.
//!
//! # Layout
//! - [`clock`]: simulated time with a speed factor.
//! - [`catalog`]: installation templates. [`fleet`]: fleet file and generated fleets.
//! - [`world`]: servers, tasks, installs; the lazy task engine.
//! - [`reinstall`]: reinstall/install-start validation with the real error classes.
//! - [`auth`]: signatures, consumer keys, OAuth2 bearer tokens.
//! - [`faults`]: fault injection. [`routes`]: the API routes. `server`: HTTP plumbing, test
//!   hooks under `/_sim`, connection resets.
//! - [`client`]: the one bridge the other way — an ovhform client configured for a running
//!   simulator ([`client_for`]), for the demo and tests; the simulator never uses it.
//!
//! # Use from a test
//! ```no_run
//! # async fn demo() {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let sim = ovhform::sim::spawn(listener, ovhform::sim::SimConfig::default());
//! let base = sim.base_url(); // http://127.0.0.1:PORT/1.0
//! sim.advance(std::time::Duration::from_secs(3600)); // finish every task
//! sim.shutdown().await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

pub mod auth;
pub mod catalog;
pub mod client;
pub mod clock;
pub mod faults;
pub mod fleet;
pub mod http;
pub mod reinstall;
pub mod routes;
mod server;
pub mod world;

pub use auth::{SimCredentials, SimKey, SimRule};
pub use client::{client_config, client_for};
pub use faults::{FaultCounts, Faults};
pub use routes::Modes;
pub use world::{InstallFailure, InstallStarted, Server, TaskStatus, Timings, World};

/// Errors of the simulator room.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("fleet file {path}: {message}")]
    Fleet { path: String, message: String },
    #[error(
        "refusing to listen on non-loopback address {addr}: the simulator has no TLS and weak credentials; pass --allow-non-loopback if you really mean it"
    )]
    NonLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How to build a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The servers of the world (see [`fleet::load`] and [`fleet::generate`]).
    pub fleet: Vec<Server>,
    pub credentials: SimCredentials,
    /// Simulated-time speed factor (1 = real time, 0 = frozen; tests advance by hand).
    pub speed: f64,
    /// Seeds fault dice and random install failures.
    pub seed: u64,
    pub faults: Faults,
    /// Enable the `/_sim/…` test hooks (off by default: they are not part of OVH's API).
    pub hooks: bool,
    /// Honour `X-Pagination-Mode: CachedObjectList-Pages` on `GET /dedicated/server`.
    pub expanded_listing: bool,
    /// Honour `X-Ovh-Batch` on GETs.
    pub batch: bool,
    /// Serve the legacy `POST …/install/start`.
    pub legacy_install: bool,
    /// Take the `iamTags` filter on `GET /dedicated/server` (off: 400, as regions whose
    /// schema lacks it may answer).
    pub iam_tags_filter: bool,
    /// Expanded listings without `Pragma: no-cache` serve the state from before the last
    /// change (the API caches them).
    pub stale_listing: bool,
    /// Batch GETs answer 403 (per-server access rules).
    pub batch_forbidden: bool,
    pub timings: Timings,
    /// Every server starts with its delivery in the task history: one finished
    /// `reinstallServer` task thirty days old, as OVHcloud shows for a delivered server.
    pub delivery_history: bool,
    /// Lifetime of OAuth2 access tokens (real time; short so clients exercise refresh).
    pub oauth2_token_ttl: Duration,
    /// Tolerated difference between `X-Ovh-Timestamp` and the server's clock.
    pub max_clock_skew: Duration,
    /// The consumer key's status, expiry and access rules (`GET /auth/currentCredential`),
    /// enforced on every signed call. Default: validated, never expires, every route.
    pub key: SimKey,
    /// Seconds the API's wall clock is ahead of this machine's (negative: behind): what
    /// `/auth/time` answers and signatures are checked against, to exercise clock skew.
    pub clock_offset_secs: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        let templates = catalog::catalogue();
        SimConfig {
            fleet: fleet::generate(4, 0, &templates),
            credentials: SimCredentials::generate(),
            speed: 1.0,
            seed: 0,
            faults: Faults::default(),
            hooks: false,
            expanded_listing: true,
            batch: true,
            legacy_install: true,
            iam_tags_filter: true,
            stale_listing: false,
            batch_forbidden: false,
            timings: Timings::default(),
            delivery_history: false,
            oauth2_token_ttl: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(300),
            key: SimKey::default(),
            clock_offset_secs: 0,
        }
    }
}

impl SimConfig {
    /// A generated fleet of `count` servers, deterministic for `seed`.
    pub fn with_generated_fleet(mut self, count: usize, seed: u64) -> Self {
        self.fleet = fleet::generate(count, seed, &catalog::catalogue());
        self.seed = seed;
        self
    }

    /// The test setup: hooks on, simulated time frozen (advance it by hand), fixed seed.
    pub fn for_tests() -> Self {
        SimConfig {
            hooks: true,
            speed: 0.0,
            ..SimConfig::default()
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    app: Arc<server::App>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Start the simulator on an already bound listener (tests bind `127.0.0.1:0`). Must be called
/// inside a tokio runtime; the server runs as a task of that runtime.
pub fn spawn(listener: tokio::net::TcpListener, config: SimConfig) -> SimHandle {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = Arc::new(build_app(&config));
    let task = tokio::spawn(server::serve(listener, app.clone()));
    SimHandle {
        addr,
        app,
        task: Some(task),
    }
}

fn build_app(config: &SimConfig) -> server::App {
    let templates = catalog::catalogue();
    let mut world = World::new(
        config.fleet.clone(),
        templates,
        clock::SimClock::new(jiff::Timestamp::now(), config.speed),
        config.faults.clone(),
        StdRng::seed_from_u64(config.seed),
    );
    world.timings = config.timings.clone();
    if config.delivery_history {
        world.add_delivery_history(jiff::SignedDuration::from_hours(30 * 24));
    }
    server::App::new(world, config)
}

/// An answer as bytes: status, headers (names lower-case), body.
pub type RawAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// A simulator without a socket: requests go straight to the dispatcher, through the same
/// parsing (path, query, batch header), authentication and routing as over TCP. For the fuzz
/// targets (`crate::fuzzing`), which must not bind ports and want thousands of worlds a second.
#[doc(hidden)]
pub struct InProcess {
    app: server::App,
}

impl InProcess {
    pub fn new(config: &SimConfig) -> InProcess {
        InProcess {
            app: build_app(config),
        }
    }

    /// A copy of the world's servers (what the API's writes change).
    pub fn servers(&self) -> BTreeMap<String, Server> {
        self.app
            .world
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .servers
            .clone()
    }

    /// The answer to one request: status, headers (names lower-case) and body bytes.
    pub async fn answer(&self, parts: &axum::http::request::Parts, body: &[u8]) -> RawAnswer {
        server::answer_in_process(&self.app, parts, body).await
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT/1.0`.
    pub fn base_url(&self) -> String {
        format!("http://{}/1.0", self.addr)
    }

    /// `http://127.0.0.1:PORT` (for `/v2/…`, `/auth/oauth2/token`, `/_sim/…`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn credentials(&self) -> SimCredentials {
        self.app.credentials.clone()
    }

    /// Lock the world for inspection or changes behind the client's back. Tasks are brought
    /// up to date first. Do not hold the guard across an `.await`.
    pub fn world(&self) -> MutexGuard<'_, World> {
        let mut w = self.app.world.lock().unwrap_or_else(|p| p.into_inner());
        w.tick();
        w
    }

    /// A copy of one server's state.
    pub fn server(&self, name: &str) -> Option<Server> {
        self.world().servers.get(name).cloned()
    }

    /// Change a server behind the client's back (a change: with the stale-listing mode on,
    /// cached listings keep showing the state from before it).
    pub fn update_server(&self, name: &str, change: impl FnOnce(&mut Server)) -> bool {
        let mut w = self.world();
        if !w.servers.contains_key(name) {
            return false;
        }
        self.app.before_change(&mut w);
        w.servers.get_mut(name).map(change).is_some()
    }

    /// Create a task of `function` on `server` now, as someone else would have: `init`, then
    /// its lifecycle, no install status, no effect (see [`World::create_bare_task`]). Returns
    /// its id, `None` when the server does not exist.
    pub fn create_task(&self, server: &str, function: &str) -> Option<u64> {
        let mut w = self.world();
        if !w.servers.contains_key(server) {
            return None;
        }
        self.app.before_change(&mut w);
        w.create_bare_task(server, function).map(|t| t.id)
    }

    /// Schedule a planned intervention (`HARDWARE_UPGRADE_ON_ACTIVE_SERVER`) on `server` with
    /// `status` (`todo`, `doing`, `done`), as OVH would have. Returns its id, `None` when the
    /// server does not exist.
    pub fn plan_intervention(
        &self,
        server: &str,
        status: &str,
        wanted_start: jiff::Timestamp,
        expected_end: jiff::Timestamp,
    ) -> Option<u64> {
        let mut w = self.world();
        if !w.servers.contains_key(server) {
            return None;
        }
        self.app.before_change(&mut w);
        w.plan_intervention(
            server,
            world::INTERVENTION_TYPE,
            status,
            wanted_start,
            expected_end,
        )
        .map(|p| p.id)
    }

    /// Set a planned intervention's status (`done`: OVH finished it). `false` when the server
    /// or the intervention does not exist.
    pub fn set_intervention_status(&self, server: &str, id: u64, status: &str) -> bool {
        let mut w = self.world();
        self.app.before_change(&mut w);
        w.set_intervention_status(server, id, status)
    }

    /// Requests per route pattern, e.g. `"GET /dedicated/server/{serviceName}"`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.world().calls.clone()
    }

    /// Requests per route pattern from clients whose `Host` header starts with `host`.
    pub fn calls_from(&self, host: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (h, routes) in &self.world().calls_by_host {
            if h.starts_with(host) {
                for (route, n) in routes {
                    *out.entry(route.clone()).or_default() += n;
                }
            }
        }
        out
    }

    pub fn total_calls(&self) -> u64 {
        self.world().total_calls()
    }

    /// Start recording the arrival time (simulated clock) of every request from now on.
    pub fn record_arrivals(&self) {
        self.world().arrivals = Some(Vec::new());
    }

    /// The arrival times (and routes) recorded since [`SimHandle::record_arrivals`] (empty
    /// when off).
    pub fn arrivals(&self) -> Vec<(jiff::Timestamp, String)> {
        self.world().arrivals.clone().unwrap_or_default()
    }

    pub fn reset_calls(&self) {
        let mut w = self.world();
        w.calls.clear();
        w.calls_by_host.clear();
    }

    /// Move simulated time forward (tasks progress accordingly).
    pub fn advance(&self, by: Duration) {
        self.world().advance(by);
    }

    pub fn set_speed(&self, speed: f64) {
        self.world().clock.set_speed(speed);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.world().faults = faults;
    }

    /// The faults injected so far, per kind.
    pub fn injected(&self) -> FaultCounts {
        self.world().injected
    }

    /// Every installation started so far, purged tasks included.
    pub fn installs(&self) -> Vec<InstallStarted> {
        self.world().installs.clone()
    }

    pub fn modes(&self) -> Modes {
        *self.app.modes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The consumer key's state from now on (status, expiry, access rules).
    pub fn set_key(&self, key: SimKey) {
        *self.app.key.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    pub fn set_modes(&self, modes: Modes) {
        *self.app.modes.lock().unwrap_or_else(|p| p.into_inner()) = modes;
    }

    /// Make the next install on `server` fail at a step.
    pub fn fail_next_install(&self, server: &str, failure: InstallFailure) -> bool {
        self.update_server(server, |s| s.fail_next_install = Some(failure))
    }

    /// Stop accepting requests and wait for the server task to end.
    pub async fn shutdown(mut self) {
        self.app.shutdown.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.app.shutdown.notify_one();
    }
}
