//! `ovhform run`: the reconcile daemon. It watches the manifests, re-plans on change, on an
//! interval, on SIGHUP and when a plan says something will change (a window opens, a task
//! ends), applies what policy allows, and tells operators what it does (`/status`,
//! `/metrics`, logs).
//!
//! Owns: the loop (kube-runtime's controller shape: one stream of typed trigger reasons, a
//! pass per reason, requeue times from the plan's blockers, a separate error policy with
//! backoff), the right to act ([`Seat`]: the state directory's lock for one pass, later a
//! PostgreSQL lease), the last valid desired state ([`desired`]), the per-server status
//! ([`status`]), metrics ([`metrics`]), the HTTP surface ([`http`]), graceful shutdown. Must
//! not touch: planning (the shared pipeline does it), what apply runs for an action (the
//! executor), rendering plans.
//!
//! Safety: the daemon approves nothing a person would have to approve ([`policy`]): only
//! unblocked `policy.reinstall: auto` reinstalls, which the planner already limits to their
//! window, their group limits and records that are not tag-only. Every pass re-plans from
//! the API and the records; a crash or a shutdown in the middle of a pass is what apply's
//! intent journal is built for (the next pass resolves intents before anything else).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::apply::{self, ApplyContext, ApplyReport, Limits, Outcome, TrackingConfig};
use crate::ovh::{self, Meter};
use crate::pipeline::{self, Context, DETAIL_CALLS_PER_SERVER, NoProgress, PipelineError};
use crate::plan::digest::FleetKey;
use crate::plan::{Action, Blocker, InstallRoute, InterventionReads, LeaseState, Plan, PlanInput};
use crate::state::{FactsCache, StateError};

pub mod desired;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod seat;
pub mod status;
pub mod trigger;
pub mod watch;
pub mod webhook;

pub use seat::{DirSeat, PgSeat, Role, Seat, SharedSeat};
pub use status::{ServerState, ServerStatus, StatusDoc};
pub use trigger::{Pacing, Reason, Requeue, TriggerSender, Triggers};

/// How the daemon runs.
#[derive(Clone)]
pub struct DaemonConfig {
    pub manifests: PathBuf,
    pub pacing: Pacing,
    /// Watch the manifests for changes (tests inject triggers instead).
    pub watch: bool,
    pub fleet: String,
    pub fleet_key: Option<FleetKey>,
    pub install_route: InstallRoute,
    pub limits: Limits,
    /// Task tracking; `timeout` is how long one pass follows a task before it lets the next
    /// pass re-attach (the intent stays in the journal).
    pub tracking: TrackingConfig,
    pub facts_ttl: Duration,
    /// Bearer token required by every HTTP route but `/healthz`.
    pub http_token: Option<String>,
    /// The longest backoff between failed passes.
    pub retry_max: Duration,
    /// A server waiting for a task is planned again after this.
    pub task_requeue: Duration,
    /// A standby tries for the leadership this often.
    pub campaign_every: Duration,
    /// On shutdown, a running pass gets this long to finish its current actions.
    pub shutdown_grace: Duration,
    /// The share of one interval's request budget spent on round-robin verification (detail
    /// reads of servers with nothing planned); the rest is left to apply and task polling.
    pub verify_share: f64,
    /// Where notifications are POSTed (JSON), if anywhere.
    pub webhook: Option<String>,
    /// Local wall clock (tests inject one).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

/// Servers whose detail a pass reads for verification: the pass's share of the request
/// budget over one interval, less the fleet listing, at [`DETAIL_CALLS_PER_SERVER`] requests
/// each (an upper bound: cached hardware and catalog facts make it fewer). Every server is
/// then verified at least every `ceil(servers / this)` intervals — the bound on detecting a
/// reinstall made outside ovhform (docs/operations.md). Unlimited budget: all of them.
pub fn verify_per_pass(interval: Duration, requests_per_second: f64, share: f64) -> usize {
    if requests_per_second <= 0.0 {
        return usize::MAX;
    }
    let budget = interval.as_secs_f64() * requests_per_second * share.clamp(0.0, 1.0);
    let per_server = DETAIL_CALLS_PER_SERVER as f64;
    (((budget - FLEET_PASS_CALLS) / per_server).floor() as usize).max(1)
}

/// Requests of a pass's fleet listing (tagged servers, listing pages, templates), rounded up.
const FLEET_PASS_CALLS: f64 = 5.0;

impl DaemonConfig {
    pub fn new(manifests: impl Into<PathBuf>, fleet: impl Into<String>) -> DaemonConfig {
        DaemonConfig {
            manifests: manifests.into(),
            pacing: Pacing::default(),
            watch: true,
            fleet: fleet.into(),
            fleet_key: None,
            install_route: InstallRoute::Reinstall,
            limits: Limits::default(),
            tracking: TrackingConfig {
                timeout: Duration::from_secs(60),
                ..TrackingConfig::default()
            },
            facts_ttl: Duration::from_secs(24 * 3600),
            http_token: None,
            retry_max: Duration::from_secs(300),
            task_requeue: Duration::from_secs(60),
            campaign_every: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(8),
            verify_share: 0.5,
            webhook: None,
            clock: Arc::new(Timestamp::now),
        }
    }
}

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("cannot take the right to act ({seat}): {source}")]
    Seat {
        seat: String,
        #[source]
        source: StateError,
    },
    #[error("the manifests are invalid and no earlier version was valid: {summary}")]
    NoValidManifests { summary: String },
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// What the HTTP handlers read; the loop writes it after every pass.
pub struct Shared {
    status: RwLock<StatusDoc>,
    pub metrics: metrics::Metrics,
    token: Option<String>,
    client: ovh::Client,
}

impl Shared {
    pub fn status(&self) -> StatusDoc {
        self.status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    /// Reads the status in place (no copy of the whole document).
    fn read<T>(&self, f: impl FnOnce(&StatusDoc) -> T) -> T {
        f(&self.status.read().unwrap_or_else(PoisonError::into_inner))
    }
    fn edit(&self, f: impl FnOnce(&mut StatusDoc)) {
        f(&mut self.status.write().unwrap_or_else(PoisonError::into_inner));
    }
    /// Gauges read at scrape time.
    fn refresh_gauges(&self) {
        if let Some(left) = self.client.budget_left() {
            self.metrics.budget_left.set(left as i64);
        }
    }
}

/// Statistics a pass leaves behind (tests read them).
#[derive(Clone, Debug, Default)]
pub struct PassStats {
    pub number: u64,
    pub reason: Option<Reason>,
    pub api_calls: u64,
    pub routes: BTreeMap<String, u64>,
    pub applied: bool,
}

pub struct Daemon {
    cfg: DaemonConfig,
    client: ovh::Client,
    seat: Arc<dyn Seat>,
    facts: Arc<dyn FactsCache>,
    shared: Arc<Shared>,
    triggers: Triggers,
    sender: TriggerSender,
    manifests: desired::Manifests,
    passes: u64,
    failures: u32,
    stop: Arc<AtomicBool>,
    last: tokio::sync::watch::Sender<PassStats>,
    /// Where the round-robin verification goes on (index into the sorted server names).
    verify_cursor: usize,
    /// Servers read in detail by the last pass.
    verified_last: usize,
    /// Servers whose verification called for a wipe: read in detail in the next pass's first
    /// phase, where wipes may be approved.
    verify_next: BTreeSet<String>,
    webhook: Option<webhook::Webhook>,
}

impl Daemon {
    pub fn new(
        cfg: DaemonConfig,
        client: ovh::Client,
        seat: Arc<dyn Seat>,
        facts: Arc<dyn FactsCache>,
    ) -> Daemon {
        let (triggers, sender) = Triggers::new(cfg.pacing);
        let shared = Arc::new(Shared {
            status: RwLock::new(StatusDoc {
                fleet: cfg.fleet.clone(),
                ..StatusDoc::default()
            }),
            metrics: metrics::Metrics::new(),
            token: cfg.http_token.clone(),
            client: client.clone(),
        });
        let manifests = desired::Manifests::new(cfg.manifests.clone());
        Daemon {
            cfg,
            client,
            seat,
            facts,
            shared,
            triggers,
            sender,
            manifests,
            passes: 0,
            failures: 0,
            stop: Arc::new(AtomicBool::new(false)),
            last: tokio::sync::watch::Sender::new(PassStats::default()),
            verify_cursor: 0,
            verified_last: 0,
            verify_next: BTreeSet::new(),
            webhook: None,
        }
    }

    /// Where to send extra triggers (SIGHUP, tests).
    pub fn triggers(&self) -> TriggerSender {
        self.sender.clone()
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Every finished pass, latest first (tests wait on it).
    pub fn passes(&self) -> tokio::sync::watch::Receiver<PassStats> {
        self.last.subscribe()
    }

    /// Serves HTTP on `listener` and reconciles until `shutdown` completes; then stops
    /// starting actions, lets a running pass finish its journal writes (at most
    /// `shutdown_grace`), leaves the seat and returns. OVH tasks keep running; the next
    /// start re-attaches to them through the journal.
    pub async fn run(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), DaemonError> {
        let (http_stop, mut http_stopped) = tokio::sync::watch::channel(false);
        let app = http::router(self.shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = http_stopped.wait_for(|s| *s).await;
                })
                .await
        });
        let watch = if self.cfg.watch {
            Some(watch::ManifestWatch::start(
                &self.cfg.manifests,
                self.sender.clone(),
            )?)
        } else {
            None
        };
        self.webhook = self
            .cfg
            .webhook
            .clone()
            .map(|url| webhook::Webhook::start(url, Duration::from_secs(10), 5));
        self.sender.send(Reason::Start);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let reason = tokio::select! {
                _ = &mut shutdown => break,
                r = self.triggers.next() => r,
            };
            if let Some(w) = &watch
                && let Err(e) = w.refresh()
            {
                tracing::warn!(error = %e, "manifest watch");
            }
            let stop = self.stop.clone();
            let grace = self.cfg.shutdown_grace;
            let finished = {
                let pass = std::pin::pin!(self.pass(&reason));
                tokio::select! {
                    _ = pass => true,
                    _ = async {
                        (&mut shutdown).await;
                        stop.store(true, Ordering::SeqCst);
                        tokio::time::sleep(grace).await;
                    } => false,
                }
            };
            if !finished || self.stop.load(Ordering::SeqCst) {
                break;
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.seat.leave().await {
            tracing::warn!(error = %e, "leaving the seat");
        }
        let _ = http_stop.send(true);
        match server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DaemonError::Http(e)),
            Err(_) => Ok(()),
        }
    }

    /// One pass: take the seat, load the manifests, plan, apply what policy allows, update
    /// status and metrics, schedule requeues or a retry.
    async fn pass(&mut self, reason: &Reason) {
        self.passes += 1;
        let number = self.passes;
        let started_at = (self.cfg.clock)();
        let started = Instant::now();
        let meter = Meter::new();
        tracing::debug!(pass = number, reason = %reason, "reconcile pass");
        let result = self.pass_inner(&meter).await;
        let elapsed = started.elapsed();
        let m = &self.shared.metrics;
        m.pass_seconds.observe(elapsed.as_secs_f64());
        m.add_answers(&meter.answers());
        m.last_pass
            .set(((self.cfg.clock)()).as_millisecond() as f64 / 1000.0);
        let outcome = match &result {
            Ok(Some(_)) => "ok",
            Ok(None) => "standby",
            Err(_) => "error",
        };
        m.passes
            .get_or_create(&metrics::PassLabels {
                reason: reason.label().into(),
                outcome: outcome.into(),
            })
            .inc();
        let error = match &result {
            Err(e) => {
                self.failures += 1;
                let wait = trigger::backoff(self.failures, self.cfg.retry_max);
                tracing::warn!(pass = number, error = %crate::escape::line(&e.to_string()), retry_in = ?wait, "pass failed");
                self.triggers.schedule(
                    Instant::now() + wait,
                    Reason::Retry {
                        attempt: self.failures,
                    },
                );
                Some(crate::escape::line(&e.to_string()).into_owned())
            }
            Ok(None) => {
                self.triggers
                    .schedule(Instant::now() + self.cfg.campaign_every, Reason::Campaign);
                None
            }
            Ok(Some(_)) => {
                self.failures = 0;
                self.triggers.clear_retries();
                None
            }
        };
        let applied = matches!(result, Ok(Some(true)));
        if outcome != "standby" {
            tracing::info!(
                pass = number,
                calls = meter.total(),
                duration_ms = elapsed.as_millis() as u64,
                verified = self.verified_last,
                outcome,
                "pass done"
            );
        }
        self.shared.edit(|doc| {
            doc.last_pass = Some(status::PassSummary {
                number,
                reason: reason.to_string(),
                started: started_at,
                duration_ms: elapsed.as_millis() as u64,
                api_calls: meter.total(),
                error,
            });
        });
        self.triggers.pass_done();
        self.last.send_replace(PassStats {
            number,
            reason: Some(reason.clone()),
            api_calls: meter.total(),
            routes: meter.routes(),
            applied,
        });
    }

    /// `Ok(None)`: a standby; `Ok(Some(applied))`: planned (and applied when `applied`).
    async fn pass_inner(&mut self, meter: &Meter) -> Result<Option<bool>, PassError> {
        let role = self.seat.take().await.map_err(|source| PassError::Seat {
            seat: self.seat.describe(),
            source,
        })?;
        let store = match role {
            Role::Leader { store } => store,
            Role::Standby { leader } => {
                self.shared.metrics.leader.set(0);
                // A standby is ready once it knows it is one.
                self.shared.edit(|doc| {
                    doc.leader = false;
                    doc.ready = true;
                });
                tracing::debug!(leader = %crate::escape::line(&leader), "standby");
                return Ok(None);
            }
        };
        self.shared.metrics.leader.set(1);
        self.shared.edit(|doc| doc.leader = true);
        tracing::info!(pass = self.passes, "reconcile pass");

        let (desired, outcome) = self.manifests.load();
        let now = (self.cfg.clock)();
        let manifest_errors = match outcome {
            desired::LoadOutcome::Valid => None,
            desired::LoadOutcome::Invalid {
                summary,
                rendered,
                files,
                kept,
            } => {
                tracing::error!(
                    summary = %summary,
                    kept = kept.len(),
                    "invalid manifests: the last valid state is kept for the servers they affect\n{rendered}"
                );
                let since = self
                    .shared
                    .status()
                    .manifest_errors
                    .map(|e| e.since)
                    .unwrap_or(now);
                Some(status::ManifestErrors {
                    since,
                    summary,
                    files: files.iter().map(|f| f.display().to_string()).collect(),
                    servers_kept: kept.into_iter().collect(),
                })
            }
        };
        self.shared
            .metrics
            .manifest_errors
            .set(i64::from(manifest_errors.is_some()));
        self.shared
            .edit(|doc| doc.manifest_errors = manifest_errors.clone());
        let Some(desired) = desired else {
            return Err(PassError::NoValidManifests {
                summary: manifest_errors.map(|e| e.summary).unwrap_or_default(),
            });
        };

        let client = self.client.metered(meter);
        let revision = crate::state::manifests_revision(&self.cfg.manifests);
        let verify = self.next_to_verify(&desired);
        let carried = std::mem::take(&mut self.verify_next);
        // Phase 1: plan from the listing (and the detail of the servers that need it), apply.
        // Apply's calls and its task polling come before the round robin's refresh reads, so
        // a manifest edit is not queued behind a verification's worth of requests.
        let first = self
            .plan_and_apply(
                &desired,
                &client,
                &*store,
                now,
                &revision,
                Phase::Act { carried },
            )
            .await?;
        // Published, and dropped, before the second phase: a pass holds one plan at a time
        // (docs/benchmarks.md "Daemon at rest").
        let mut read = first.detail_read.len();
        self.count_actions(&first.plan, &first.report);
        self.publish(&first, Merge::Replace, now, &revision);
        self.requeue(&first.plan, &first.report, now, Merge::Replace);
        // Phase 2: the refresh reads, then those servers re-planned with their detail.
        let verify: BTreeSet<String> = verify.difference(&first.detail_read).cloned().collect();
        drop(first);
        if !verify.is_empty() && !self.stop.load(Ordering::SeqCst) && self.seat.halted().is_none() {
            let second = self
                .plan_and_apply(
                    &desired,
                    &client,
                    &*store,
                    now,
                    &revision,
                    Phase::Verify(verify),
                )
                .await?;
            read += second.detail_read.len();
            self.count_actions(&second.plan, &second.report);
            self.publish(&second, Merge::Update, now, &revision);
            self.requeue(&second.plan, &second.report, now, Merge::Update);
        }
        self.verified_last = read;
        Ok(Some(true))
    }

    /// Plans (all servers, or the ones verified) and applies what policy allows.
    async fn plan_and_apply(
        &mut self,
        desired: &crate::model::Desired,
        client: &ovh::Client,
        store: &dyn crate::state::RecordStore,
        now: Timestamp,
        revision: &Option<String>,
        phase: Phase,
    ) -> Result<PhaseResult, PassError> {
        let (verify, targets) = match &phase {
            Phase::Act { carried } => (carried.clone(), BTreeSet::new()),
            Phase::Verify(servers) => (servers.clone(), servers.clone()),
        };
        let input = PlanInput {
            verify,
            targets,
            revision: revision.clone(),
            fleet: self.cfg.fleet.clone(),
            fleet_key: self.cfg.fleet_key.clone(),
            install_route: self.cfg.install_route,
            // The daemon approves automatic wipes only: no planned-intervention reads for the
            // reinstalls that wait for a person.
            intervention_reads: InterventionReads::Automatic,
            ..PlanInput::new(now)
        };
        let ctx = Context {
            client,
            store,
            facts: &*self.facts,
            facts_ttl: self.cfg.facts_ttl,
            progress: &NoProgress,
            input,
        };
        // The desired state is the one `manifests` keeps (shared, not copied); the observed
        // fleet and the records the plan was made from are dropped here, before apply (which
        // reads the records again under its own rules): a pass never holds two copies of the
        // desired state or of the records at once (docs/benchmarks.md "Daemon at rest").
        let pipeline::PlannedFor {
            mut plan,
            expanded,
            coverage,
            ..
        } = pipeline::plan_for(desired, &ctx).await?;
        // With the servers the tag selectors brought in, when there are any.
        let desired = expanded.as_ref().unwrap_or(desired);
        let held = policy::with_errors(&plan);
        // Servers with an error finding are left out of apply, not out of the status.
        let held_plans: Vec<(String, crate::plan::ServerPlan)> = held
            .iter()
            .filter_map(|name| plan.servers.remove_entry(name))
            .collect();

        let approvals = match &phase {
            Phase::Act { .. } => policy::approvals(&plan),
            Phase::Verify(_) => {
                // No wipe from a verification re-plan: the group limits were counted for the
                // whole fleet in phase 1. A wipe the detail calls for runs in a pass of its
                // own, right away, with these servers' detail read in its first phase.
                let wipes = policy::approvals(&plan).allow_wipe;
                if !wipes.is_empty() {
                    for server in &wipes {
                        self.triggers.schedule(
                            Instant::now(),
                            Reason::Requeue {
                                server: server.clone(),
                                why: Requeue::Verified,
                            },
                        );
                    }
                    self.verify_next.extend(wipes);
                }
                apply::Approvals::default()
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let apply_ctx = ApplyContext {
            client,
            store,
            desired,
            fleet: plan.fleet.clone(),
            fleet_key: self.cfg.fleet_key.clone(),
            approvals,
            limits: self.cfg.limits.clone(),
            tracking: self.cfg.tracking.clone(),
            plan_id: Some(plan_digest(&plan)),
            clock: self.cfg.clock.clone(),
            halt: Some({
                let stop = self.stop.clone();
                let seat = self.seat.clone();
                Arc::new(move || {
                    if stop.load(Ordering::SeqCst) {
                        Some("shutting down".to_string())
                    } else {
                        seat.halted()
                    }
                })
            }),
        };
        // Events are read while apply runs: `/status` follows a reinstall step by step.
        let shared = self.shared.clone();
        let follow = async move {
            let mut events = Vec::new();
            while let Some(event) = rx.recv().await {
                live_status(&shared, &event, now);
                events.push(event);
            }
            events
        };
        let (plan_ref, ctx_ref) = (&plan, &apply_ctx);
        let run = async move {
            let tx = tx;
            apply::apply(plan_ref, ctx_ref, &tx).await
        };
        let (report, events) = tokio::join!(run, follow);
        for event in events {
            log_event(&event);
            if let apply::ApplyEvent::Stalled { server, step, .. } = &event {
                self.notify(
                    server,
                    webhook::EventKind::StalledStep,
                    format!("installation step stalled: {}", crate::escape::line(step)),
                    now,
                );
            }
        }
        plan.servers.extend(held_plans);
        Ok(PhaseResult {
            plan,
            report,
            detail_read: coverage.detail_read,
        })
    }

    fn notify(&self, server: &str, kind: webhook::EventKind, message: String, at: Timestamp) {
        if let Some(w) = &self.webhook {
            w.send(webhook::Event {
                kind,
                fleet: self.cfg.fleet.clone(),
                server: server.to_string(),
                message,
                at,
            });
        }
    }

    /// The next servers of the round robin (manifest order, wrapping).
    fn next_to_verify(&mut self, desired: &crate::model::Desired) -> BTreeSet<String> {
        let names: Vec<&String> = desired.servers.keys().collect();
        if names.is_empty() {
            return BTreeSet::new();
        }
        let k = verify_per_pass(
            self.cfg.pacing.interval,
            self.client.config().requests_per_second(),
            self.cfg.verify_share,
        )
        .min(names.len());
        let start = self.verify_cursor % names.len();
        self.verify_cursor = (start + k) % names.len();
        (0..k)
            .map(|i| names[(start + i) % names.len()].clone())
            .collect()
    }

    fn count_actions(&self, plan: &Plan, report: &ApplyReport) {
        for (name, sp) in &plan.servers {
            let outcome = match report.servers.get(name) {
                Some(Outcome::Converged) => "done",
                Some(Outcome::Unchanged) => "unchanged",
                Some(Outcome::PendingApproval) => "pending_approval",
                Some(Outcome::Blocked(_)) => "blocked",
                Some(Outcome::Waiting) => "waiting",
                Some(Outcome::Skipped(_)) => "skipped",
                Some(Outcome::Failed(_)) => "failed",
                Some(Outcome::StoppedWaiting(_)) => "tracking",
                Some(Outcome::Degraded(_)) => "degraded",
                None => "not_run",
            };
            for a in &sp.actions {
                if matches!(a, Action::Noop(_)) {
                    continue;
                }
                self.shared
                    .metrics
                    .actions
                    .get_or_create(&metrics::ActionLabels {
                        action: a.kind().as_str().into(),
                        outcome: outcome.into(),
                    })
                    .inc();
            }
        }
    }

    fn publish(
        &self,
        phase: &PhaseResult,
        merge: Merge,
        now: Timestamp,
        revision: &Option<String>,
    ) {
        let (plan, report, verified) = (&phase.plan, &phase.report, &phase.detail_read);
        let statuses: BTreeMap<String, ServerStatus> = self.shared.read(|before| {
            status::derive_all(plan, Some(report))
                .into_iter()
                .map(|(name, st)| {
                    let previous = before.servers.get(&name).map(|s| &s.status);
                    let st = status::keep_degraded(previous, st);
                    (name, st)
                })
                .collect()
        });
        if self.webhook.is_some() {
            let before = self.shared.status();
            for (server, kind, message) in
                webhook::transitions(|s| before.servers.get(s).map(|st| &st.status), &statuses)
            {
                self.notify(&server, kind, message, now);
            }
        }
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut in_flight = 0;
        self.shared.edit(|doc| {
            let mut previous = std::mem::take(&mut doc.servers);
            for (name, st) in statuses {
                let before = previous.get(&name);
                let last_error = match report.servers.get(&name) {
                    Some(Outcome::Failed(e) | Outcome::Degraded(e)) => {
                        Some(crate::escape::line(e).into_owned())
                    }
                    _ => before.and_then(|b| b.last_error.clone()),
                };
                let revision = if matches!(st, ServerStatus::Synced | ServerStatus::Drifted { .. })
                {
                    revision.clone()
                } else {
                    before.and_then(|b| b.revision.clone())
                };
                let last_verified = if verified.contains(&name) {
                    Some(now)
                } else {
                    before.and_then(|b| b.last_verified)
                };
                let boot_lease_ends = plan
                    .servers
                    .get(&name)
                    .and_then(|sp| sp.lease.as_ref())
                    .filter(|l| l.state == LeaseState::Active)
                    .and_then(|l| l.ends);
                doc.servers.insert(
                    name,
                    ServerState {
                        boot_lease_ends,
                        status: st,
                        revision,
                        last_error,
                        last_verified,
                        last_planned: now,
                    },
                );
            }
            if merge == Merge::Update {
                // The servers this phase did not plan keep what the first phase said.
                previous.retain(|name, _| !doc.servers.contains_key(name));
                doc.servers.append(&mut previous);
            }
            for s in doc.servers.values() {
                *counts.entry(s.status.label()).or_default() += 1;
                if matches!(
                    s.status,
                    ServerStatus::Reinstalling { .. } | ServerStatus::Rebooting { .. }
                ) {
                    in_flight += 1;
                }
            }
            doc.revision = revision.clone();
            doc.ready = true;
        });
        self.shared.metrics.set_servers(&counts);
        self.shared.metrics.tasks_in_flight.set(in_flight);
    }

    /// Requeues from the plan: a window opening, a task expected to end, a boot lease running
    /// out.
    fn requeue(&mut self, plan: &Plan, report: &ApplyReport, now: Timestamp, merge: Merge) {
        if merge == Merge::Replace {
            self.triggers.clear_requeues();
        }
        for (name, sp) in &plan.servers {
            // A time already past (an intervention OVH has not finished by its expected end)
            // is no requeue: the interval passes look again, not a pass every second.
            let next = sp
                .actions
                .iter()
                .flat_map(|a| a.blockers())
                .filter_map(|b| {
                    let why = match b {
                        Blocker::PlannedIntervention { .. } => Requeue::InterventionEnds,
                        _ => Requeue::WindowOpens,
                    };
                    b.requeue_at().filter(|at| *at > now).map(|at| (at, why))
                })
                .min();
            if let Some((at, why)) = next {
                let wait = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
                // Just past the time: the plan must see the window open, the intervention over.
                self.triggers.schedule(
                    Instant::now() + wait + Duration::from_secs(1),
                    Reason::Requeue {
                        server: name.clone(),
                        why,
                    },
                );
            }
            if let Some(ends) = sp
                .lease
                .as_ref()
                .filter(|l| l.state == LeaseState::Active)
                .and_then(|l| l.ends)
            {
                let wait = Duration::try_from(ends.duration_since(now)).unwrap_or(Duration::ZERO);
                self.triggers.schedule(
                    Instant::now() + wait + Duration::from_secs(1),
                    Reason::Requeue {
                        server: name.clone(),
                        why: Requeue::LeaseEnds,
                    },
                );
            }
            let waiting = sp.actions.iter().any(|a| matches!(a, Action::Wait(_)))
                || matches!(
                    report.servers.get(name),
                    Some(Outcome::Waiting | Outcome::StoppedWaiting(_))
                );
            if waiting {
                self.triggers.schedule(
                    Instant::now() + self.cfg.task_requeue,
                    Reason::Requeue {
                        server: name.clone(),
                        why: Requeue::TaskEnds,
                    },
                );
            }
        }
    }
}

/// A reinstall's progress while apply follows it (`--track-for`), before the pass ends.
fn live_status(shared: &Shared, event: &apply::ApplyEvent, now: Timestamp) {
    let (server, status) = match event {
        apply::ApplyEvent::Reinstalling { server, task } => (
            server,
            ServerStatus::Reinstalling {
                task: Some(*task),
                step: None,
                steps: None,
            },
        ),
        apply::ApplyEvent::InstallProgress {
            server,
            task,
            step,
            steps,
            ..
        } => (
            server,
            ServerStatus::Reinstalling {
                task: Some(*task),
                step: Some(*step),
                steps: Some(*steps),
            },
        ),
        _ => return,
    };
    shared.edit(|doc| {
        doc.servers
            .entry(server.clone())
            .and_modify(|s| s.status = status.clone())
            .or_insert_with(|| ServerState {
                status,
                revision: None,
                last_error: None,
                last_verified: None,
                last_planned: now,
                boot_lease_ends: None,
            });
    });
}

/// Whether a phase's results replace the last pass's (the first phase) or update them for the
/// servers it planned (the second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merge {
    Replace,
    Update,
}

/// The two phases of a pass.
enum Phase {
    /// Every server; `carried`: read in detail (verifications that called for a wipe).
    Act { carried: BTreeSet<String> },
    /// The round robin's servers only, their detail read.
    Verify(BTreeSet<String>),
}

struct PhaseResult {
    plan: Plan,
    report: ApplyReport,
    detail_read: BTreeSet<String>,
}

/// `sha256:<hex>` of the plan's JSON: the id written into the pass's intents (as `apply`
/// writes a saved plan's).
fn plan_digest(plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    /// Hashes what serde writes, so a 1,000-server plan is never held as one string.
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    // Serialising plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut w, plan);
    format!("sha256:{}", hex::encode(w.0.finalize()))
}

fn log_event(event: &apply::ApplyEvent) {
    use apply::ApplyEvent as E;
    match event {
        E::Reinstalling { server, task } => {
            tracing::info!(server = %crate::escape::line(server), task, "reinstall started")
        }
        E::ServerDone { server, outcome } => {
            tracing::info!(server = %crate::escape::line(server), outcome = ?outcome, "server done")
        }
        E::Stalled {
            server, task, step, ..
        } => tracing::warn!(
            server = %crate::escape::line(server),
            task,
            step = %crate::escape::line(step),
            "installation step stalled"
        ),
        E::TagsFailed { server, error } => tracing::warn!(
            server = %crate::escape::line(server),
            error = %crate::escape::line(error),
            "record tags not written"
        ),
        other => tracing::debug!(event = ?other, "apply"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_takes_half_an_interval_of_budget() {
        let five_min = Duration::from_secs(300);
        // 60 requests a minute: 150 requests for verification, 5 for the listing, 5 each.
        assert_eq!(verify_per_pass(five_min, 1.0, 0.5), 29);
        assert_eq!(verify_per_pass(five_min, 1.0, 1.0), 59);
        assert_eq!(verify_per_pass(Duration::from_secs(1), 1.0, 0.5), 1);
        assert_eq!(verify_per_pass(five_min, 0.0, 0.5), usize::MAX);
    }
}
