//! The executor: one attempt at making reality match a reviewed plan (omicron's habit: the
//! executor reports what it did; the caller — `ovhform apply`, later the daemon — loops).
//!
//! Owns: turning each typed [`Action`] into API calls, in order per server, servers in
//! parallel within limits; approvals (`--allow-wipe`, `--replace`, `--ignore-maintenance-window`);
//! the freshness re-check before destructive, boot and adopt actions; the intent journal
//! around every reinstall ([`intent`]); task tracking ([`track`]); writing records and their
//! tag mirror. Progress goes out as [`ApplyEvent`]s on a channel. Must not touch: planning
//! (it runs what the plan says, and refuses what moved), rendering, parsing JSON or text to
//! decide (it matches on the plan's enums).
//!
//! Safety rules enforced here (docs/apply.md says why):
//! - a reinstall runs only for a server named by `--allow-wipe`/`--allow-wipe-all`/`--replace`;
//!   policy `never` and every other blocker stay blocked (a deferred wipe runs only with
//!   `--ignore-maintenance-window SERVER` *and* an approval);
//! - the manifest's spec must still have the reviewed fingerprint ("manifest changed since the
//!   plan" otherwise), and the server is re-read with direct GETs just before a reinstall, a
//!   boot change or an adopt: if what the action depended on moved, that server is skipped;
//! - an intent is journaled before every reinstall POST, which is never retried blindly;
//!   earlier runs' intents are resolved first, and a server with an unresolved intent gets
//!   nothing;
//! - after the first failed reinstall no new destructive work starts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedSender;

use crate::model::{BootMode, Desired, InstallRecord, InstallSpec, Intent, IntentState, Settings};
use crate::ovh::{self, types::ServerUpdate};
use crate::plan::digest::{self, FleetKey};
use crate::plan::{Action, ActionKind, Blocker, BootTarget, Plan, ServerPlan};
use crate::state::{self, RecordStore};

pub mod crash;
mod error;
pub mod intent;
pub mod track;

pub use error::ApplyError;
pub use track::{TaskEnd, TaskKind, Tracking, TrackingConfig};

/// Who approved what, as given on the command line (or by the daemon's policy).
#[derive(Clone, Debug, Default)]
pub struct Approvals {
    /// `--allow-wipe SERVER…`.
    pub allow_wipe: BTreeSet<String>,
    /// `--allow-wipe-all`.
    pub allow_wipe_all: bool,
    /// `--ignore-maintenance-window SERVER…`: a reinstall deferred only by its window runs.
    pub ignore_window: BTreeSet<String>,
    /// `--replace SERVER…`: approves the wipe (the plan already forced the rebuild).
    pub replace: BTreeSet<String>,
}

impl Approvals {
    fn wipe(&self, server: &str) -> bool {
        self.allow_wipe_all || self.allow_wipe.contains(server) || self.replace.contains(server)
    }
}

/// How much runs at once.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Servers worked on at once.
    pub servers: usize,
    /// Reinstalls running at once, whole run (`--max-concurrent-reinstalls`).
    pub reinstalls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            servers: 8,
            reinstalls: 5,
        }
    }
}

/// Everything one attempt needs besides the plan.
pub struct ApplyContext<'a> {
    pub client: &'a ovh::Client,
    pub store: &'a dyn RecordStore,
    /// The manifests, loaded again: the unredacted requests, iPXE scripts, groups.
    pub desired: &'a Desired,
    pub fleet: String,
    pub fleet_key: Option<FleetKey>,
    pub approvals: Approvals,
    pub limits: Limits,
    pub tracking: TrackingConfig,
    /// The saved plan's id (its digest), written into intents.
    pub plan_id: Option<String>,
    /// Local wall clock (tests inject one).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Asked before every action and right before every API write: `Some(why)` and nothing
    /// more is sent (the daemon: shutting down, or its leader lease has run out — checked on
    /// the monotonic clock, so a replica resumed after SIGSTOP stops here).
    pub halt: Option<Halt>,
}

/// See [`ApplyContext::halt`].
pub type Halt = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// What happens, as it happens. The CLI draws it; the daemon will count it.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyEvent {
    /// An earlier run's intent was found in the journal.
    IntentFound {
        server: String,
        state: String,
    },
    ActionStarted {
        server: String,
        action: ActionKind,
    },
    ActionDone {
        server: String,
        action: ActionKind,
    },
    /// A reinstall POST was answered with this task.
    Reinstalling {
        server: String,
        task: u64,
    },
    InstallProgress {
        server: String,
        task: u64,
        step: usize,
        steps: usize,
        comment: String,
        elapsed: Duration,
    },
    Stalled {
        server: String,
        task: u64,
        step: String,
        for_: Duration,
    },
    Recorded {
        server: String,
    },
    TagsWritten {
        server: String,
    },
    /// The record is in the store but its tag mirror could not be written.
    TagsFailed {
        server: String,
        error: String,
    },
    ServerDone {
        server: String,
        outcome: Outcome,
    },
}

/// How one server ended in this attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every action ran.
    Converged,
    /// Nothing to do.
    Unchanged,
    /// A reinstall is planned but not approved for this server.
    PendingApproval,
    /// Blocked as the plan showed (policy `never`, window, invalid spec, …).
    Blocked(Vec<String>),
    /// An OVH task runs on it; nothing was done.
    Waiting,
    /// Skipped because something it depended on moved since the plan, or the manifest
    /// changed, or an earlier failure stopped destructive work.
    Skipped(String),
    /// Failed (the error says where); for a reinstall the server may be degraded.
    Failed(String),
    /// Tracking stopped waiting for a task (`--timeout`): not a failure, the task goes on at
    /// OVHcloud; a reinstall's intent stays in the journal and the next run re-attaches.
    StoppedWaiting(String),
    /// An intent cannot be resolved: nothing is done until a person resolves it.
    Degraded(String),
}

/// The result of one attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub servers: BTreeMap<String, Outcome>,
}

impl ApplyReport {
    pub fn failed(&self) -> bool {
        self.servers
            .values()
            .any(|o| matches!(o, Outcome::Failed(_) | Outcome::Degraded(_)))
    }
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.servers.values().filter(|o| f(o)).count()
    }
}

/// Shared by the servers of one attempt.
struct Run<'a> {
    ctx: &'a ApplyContext<'a>,
    plan: &'a Plan,
    events: &'a UnboundedSender<ApplyEvent>,
    reinstalls: Semaphore,
    groups: BTreeMap<String, Arc<Semaphore>>,
    /// Set by the first failed reinstall: no new destructive work starts.
    stop_destructive: AtomicBool,
    tracking: Tracking,
    /// Servers with an intent from an earlier run (resolved first, plan actions skipped).
    intents: BTreeMap<String, Intent>,
    /// The records as this run found them (it holds the writer's lock: they only change by
    /// its own hand), to tell whether a server's record moved since the plan.
    records_at_start: crate::model::Records,
}

/// One attempt: resolve earlier intents, then run every server's actions. Never panics on
/// API answers; every outcome is in the report.
pub async fn apply(
    plan: &Plan,
    ctx: &ApplyContext<'_>,
    events: &UnboundedSender<ApplyEvent>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let intents = match ctx.store.intents().await {
        Ok(v) => v,
        Err(e) => {
            // Without the journal nothing destructive may run: a pending intent could be lost.
            for name in plan.servers.keys() {
                report.servers.insert(
                    name.clone(),
                    Outcome::Failed(format!("the intent journal cannot be read: {e}")),
                );
            }
            return report;
        }
    };
    crash::point("apply:start");
    let records_at_start = match ctx.store.load().await {
        Ok(r) => r,
        Err(e) => {
            for name in plan.servers.keys() {
                report.servers.insert(
                    name.clone(),
                    Outcome::Failed(format!("the records cannot be read: {e}")),
                );
            }
            return report;
        }
    };
    let groups = ctx
        .desired
        .groups
        .values()
        .filter_map(|g| {
            g.max_concurrent_reinstalls
                .map(|n| (g.name.clone(), Arc::new(Semaphore::new(n.max(1) as usize))))
        })
        .collect();
    let run = Run {
        ctx,
        plan,
        events,
        reinstalls: Semaphore::new(ctx.limits.reinstalls.max(1)),
        groups,
        stop_destructive: AtomicBool::new(false),
        tracking: Tracking::default(),
        intents: intents
            .into_iter()
            .filter(|i| i.fleet == ctx.fleet)
            .map(|i| (i.server.clone(), i))
            .collect(),
        records_at_start,
    };
    let mut names: BTreeSet<&String> = plan.servers.keys().collect();
    names.extend(run.intents.keys());
    // At most `limits.servers` servers in flight, started in name order as earlier ones end:
    // only that many server futures exist at once (each holds the state of a whole reinstall
    // and its tracking), not one per server of the plan.
    let limit = ctx.limits.servers.max(1);
    let mut names = names.into_iter();
    let mut running = futures_util::stream::FuturesUnordered::new();
    loop {
        while running.len() < limit
            && let Some(name) = names.next()
        {
            running.push(run.server_done(name));
        }
        let Some((name, outcome)) = running.next().await else {
            break;
        };
        report.servers.insert(name, outcome);
    }
    report
}

impl Run<'_> {
    fn now(&self) -> Timestamp {
        (self.ctx.clock)()
    }

    fn event(&self, e: ApplyEvent) {
        let _ = self.events.send(e);
    }

    /// [`Run::server`], then its `ServerDone` event.
    async fn server_done(&self, name: &str) -> (String, Outcome) {
        let outcome = self.server(name).await;
        self.event(ApplyEvent::ServerDone {
            server: name.to_string(),
            outcome: outcome.clone(),
        });
        (name.to_string(), outcome)
    }

    async fn server(&self, name: &str) -> Outcome {
        if let Some(intent) = self.intents.get(name) {
            return self.finish_intent(intent.clone()).await;
        }
        let Some(sp) = self.plan.servers.get(name) else {
            return Outcome::Unchanged;
        };
        match self.run_actions(sp).await {
            Ok(o) => o,
            Err(e) => outcome_of(e),
        }
    }

    /// An earlier run journaled a reinstall for this server: finish it (or say why not)
    /// before anything else; the plan's actions for it are stale.
    async fn finish_intent(&self, mut intent: Intent) -> Outcome {
        self.event(ApplyEvent::IntentFound {
            server: intent.server.clone(),
            state: format!("{:?}", intent.state),
        });
        crash::point("resolve:before");
        loop {
            let r = intent::resolve(
                self.ctx.client,
                &intent,
                &self.ctx.tracking,
                &*self.ctx.clock,
            )
            .await;
            match r {
                Err(e) => return Outcome::Failed(e.to_string()),
                Ok(intent::Resolution::Wait) => {
                    tokio::time::sleep(self.ctx.tracking.min_poll).await;
                }
                Ok(intent::Resolution::NoTask) => {
                    return match self.ctx.store.drop_intent(&intent.id).await {
                        Ok(()) => Outcome::Skipped(
                            "an earlier run's reinstall never started (the API proves no task was created); re-run `ovhform plan`".into(),
                        ),
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                }
                Ok(intent::Resolution::Unresolved(reason)) => {
                    if !matches!(intent.state, IntentState::Unresolved { .. }) {
                        intent.state = IntentState::Unresolved {
                            reason: reason.clone(),
                        };
                        if let Err(e) = self.ctx.store.put_intent(&intent).await {
                            return Outcome::Failed(e.to_string());
                        }
                    }
                    return Outcome::Degraded(format!(
                        "unresolved intent: {reason}; check the server, then `ovhform state drop-intent {}`",
                        intent.server
                    ));
                }
                Ok(intent::Resolution::Attached(task)) => {
                    if intent.state != (IntentState::Posted { task_id: task }) {
                        intent.state = IntentState::Posted { task_id: task };
                        if let Err(e) = self.ctx.store.put_intent(&intent).await {
                            return Outcome::Failed(e.to_string());
                        }
                    }
                    crash::point("resolve:after-attach");
                    self.event(ApplyEvent::Reinstalling {
                        server: intent.server.clone(),
                        task,
                    });
                    let spec = self
                        .ctx
                        .desired
                        .servers
                        .get(&intent.server)
                        .and_then(|d| d.install.clone());
                    return match self.finish_install(&intent, task, spec.as_ref()).await {
                        Ok(()) => Outcome::Skipped(
                            "finished an earlier run's reinstall; re-run `ovhform plan` for the rest".into(),
                        ),
                        Err(e) => outcome_of(e),
                    };
                }
            }
        }
    }

    fn halted(&self) -> Option<String> {
        self.ctx.halt.as_ref().and_then(|h| h())
    }

    async fn run_actions(&self, sp: &ServerPlan) -> Result<Outcome, ApplyError> {
        let name = sp.server.as_str();
        let mut outcome = Outcome::Unchanged;
        let mut ran_any = false;
        for action in &sp.actions {
            if !matches!(action, Action::Noop(_))
                && let Some(why) = self.halted()
            {
                return Ok(Outcome::Skipped(format!("{why}: not started")));
            }
            match action {
                Action::Noop(_) => {}
                Action::Wait(_) => return Ok(Outcome::Waiting),
                Action::Blocked(b) => {
                    let deferred = action.deferred_wipe().is_some();
                    // A wipe waiting only for its window runs when the window is explicitly
                    // ignored for this server *and* the wipe is approved.
                    if deferred
                        && self.ctx.approvals.ignore_window.contains(name)
                        && let Some(Action::Reinstall(r)) = b.action.as_deref()
                    {
                        if !self.ctx.approvals.wipe(name) {
                            return Ok(Outcome::PendingApproval);
                        }
                        if let Some(skip) = self.reinstall(sp, r).await? {
                            return Ok(skip);
                        }
                        ran_any = true;
                        continue;
                    }
                    let why: Vec<String> = b.blockers.iter().map(Blocker::to_string).collect();
                    // What follows a blocked reinstall was planned assuming it ran.
                    if action.effective_kind() == ActionKind::Reinstall {
                        return Ok(Outcome::Blocked(why));
                    }
                    outcome = Outcome::Blocked(why);
                }
                Action::Adopt(a) => {
                    self.started(name, ActionKind::Adopt);
                    if let Some(skip) = self.recheck_adopt(sp).await? {
                        return Ok(Outcome::Skipped(skip));
                    }
                    crash::point("adopt:before-record");
                    self.record(name, &a.record).await?;
                    self.done(name, ActionKind::Adopt);
                    ran_any = true;
                }
                Action::Reinstall(r) => {
                    if !self.ctx.approvals.wipe(name) {
                        // Nothing after it runs either: it was planned on top of the wipe.
                        return Ok(Outcome::PendingApproval);
                    }
                    if let Some(skip) = self.reinstall(sp, r).await? {
                        return Ok(skip);
                    }
                    ran_any = true;
                }
                Action::SetBoot(s) => {
                    self.started(name, ActionKind::SetBoot);
                    if let Some(skip) = self.recheck_boot(sp).await? {
                        return Ok(Outcome::Skipped(skip));
                    }
                    let update = match &s.target {
                        BootTarget::Ipxe { script_digest } => {
                            let script = self.desired_script(name).ok_or_else(|| {
                                ApplyError::Refused {
                                    server: name.into(),
                                    message: "the manifest no longer sets an iPXE script: manifest changed since the plan".into(),
                                }
                            })?;
                            if &digest_of(&script) != script_digest {
                                return Ok(Outcome::Skipped(
                                    "the iPXE script changed since the plan (manifest changed since the plan)".into(),
                                ));
                            }
                            // Never bootId and bootScript in one PUT: the API answers 403.
                            ServerUpdate {
                                boot_script: Some(script),
                                ..ServerUpdate::default()
                            }
                        }
                        BootTarget::Unresolved { wanted } => {
                            return Err(ApplyError::Refused {
                                server: name.into(),
                                message: format!("the boot {wanted} is unresolved"),
                            });
                        }
                        t => ServerUpdate {
                            boot_id: t.boot_id(),
                            ..ServerUpdate::default()
                        },
                    };
                    crash::point("boot:before-put");
                    if let Some(why) = self.halted() {
                        return Ok(Outcome::Skipped(format!("{why}: boot not set")));
                    }
                    self.ctx
                        .client
                        .update_server(name, &update)
                        .await
                        .map_err(|source| ApplyError::Api {
                            server: name.into(),
                            step: "set the boot",
                            source,
                        })?;
                    crash::point("boot:after-put");
                    self.done(name, ActionKind::SetBoot);
                    ran_any = true;
                }
                Action::Reboot(_) => {
                    self.started(name, ActionKind::Reboot);
                    crash::point("reboot:before-post");
                    if let Some(why) = self.halted() {
                        return Ok(Outcome::Skipped(format!("{why}: not rebooted")));
                    }
                    let t =
                        self.ctx
                            .client
                            .reboot(name)
                            .await
                            .map_err(|source| ApplyError::Api {
                                server: name.into(),
                                step: "reboot",
                                source,
                            })?;
                    crash::point("reboot:after-post");
                    // Wait for it: a boot change not waited for is how servers reboot
                    // mid-install later.
                    match self
                        .track(name, t.task_id, TaskKind::Other, Duration::ZERO)
                        .await?
                    {
                        TaskEnd::Done | TaskEnd::Purged => {}
                        TaskEnd::Failed { status, .. } => {
                            return Err(ApplyError::TaskFailed {
                                server: name.into(),
                                task: t.task_id,
                                function: t.function,
                                status,
                            });
                        }
                    }
                    self.done(name, ActionKind::Reboot);
                    ran_any = true;
                }
                Action::UpdateSettings(u) => {
                    self.started(name, ActionKind::UpdateSettings);
                    crash::point("settings:before-put");
                    if let Some(why) = self.halted() {
                        return Ok(Outcome::Skipped(format!("{why}: settings not updated")));
                    }
                    self.ctx
                        .client
                        .update_server(name, &settings_update(&u.fields))
                        .await
                        .map_err(|source| ApplyError::Api {
                            server: name.into(),
                            step: "update the settings",
                            source,
                        })?;
                    crash::point("settings:after-put");
                    self.done(name, ActionKind::UpdateSettings);
                    ran_any = true;
                }
                Action::Forget(_) => {
                    self.started(name, ActionKind::Forget);
                    self.forget(name).await?;
                    self.done(name, ActionKind::Forget);
                    ran_any = true;
                }
            }
        }
        if matches!(outcome, Outcome::Unchanged) {
            if let Some(ds) = self.ctx.desired.servers.get(name) {
                // Converged: remember what boot and settings were applied, so later plans tell
                // drift from an intended change.
                let lease = self.plan.servers.get(name).and_then(|sp| sp.lease.as_ref());
                let applied = crate::plan::applied_after(ds, lease, self.now());
                // Already what the store says (every pass of the daemon over a converged
                // fleet): no write, so an idle pass does not rewrite the records per server.
                if self.records_at_start.applied.get(name) != Some(&applied) || ran_any {
                    let server = name.to_string();
                    crash::point("applied:before-write");
                    self.ctx
                        .store
                        .update(Box::new(move |r| {
                            r.applied.insert(server, applied);
                        }))
                        .await
                        .map_err(|source| ApplyError::State {
                            server: name.into(),
                            step: "record the applied boot and settings",
                            source,
                        })?;
                }
            }
            if ran_any {
                outcome = Outcome::Converged;
            }
        }
        Ok(outcome)
    }

    fn started(&self, server: &str, action: ActionKind) {
        self.event(ApplyEvent::ActionStarted {
            server: server.into(),
            action,
        });
    }

    fn done(&self, server: &str, action: ActionKind) {
        self.event(ApplyEvent::ActionDone {
            server: server.into(),
            action,
        });
    }

    fn desired_script(&self, server: &str) -> Option<String> {
        match &self.ctx.desired.servers.get(server)?.boot.as_ref()?.mode {
            BootMode::Ipxe { script } => Some(script.clone()),
            _ => None,
        }
    }

    async fn track(
        &self,
        server: &str,
        task: u64,
        kind: TaskKind,
        known_age: Duration,
    ) -> Result<TaskEnd, ApplyError> {
        track::track(
            self.ctx.client,
            server,
            task,
            kind,
            &self.ctx.tracking,
            &self.tracking,
            self.events,
            known_age,
        )
        .await
    }

    /// The live facts the plan was based on, read again with direct GETs (never a cached
    /// listing). `None` when they still hold, else what moved.
    async fn moved(&self, sp: &ServerPlan) -> Result<Option<String>, ApplyError> {
        Ok(self.reread(sp).await?.0)
    }

    /// [`Run::moved`], with the tasks it read (an adopt's re-check needs them too).
    async fn reread(
        &self,
        sp: &ServerPlan,
    ) -> Result<(Option<String>, Option<ovh::RelevantTasks>), ApplyError> {
        let name = sp.server.as_str();
        let api = |step| {
            move |source| ApplyError::Api {
                server: name.to_string(),
                step,
                source,
            }
        };
        let live = self
            .ctx
            .client
            .get_server(name)
            .await
            .map_err(api("re-read the server"))?;
        let b = &sp.based_on;
        if let Some(os) = &b.live_os
            && &live.os != os
        {
            return Ok((
                Some(format!("the live OS moved from {os} to {}", live.os)),
                None,
            ));
        }
        if b.live_boot_id != live.boot_id {
            return Ok((
                Some(format!(
                    "the boot moved from {:?} to {:?}",
                    b.live_boot_id, live.boot_id
                )),
                None,
            ));
        }
        let script = live
            .boot_script
            .as_ref()
            .map(|s| crate::plan::redact::hash_len(s.as_bytes()));
        if script != b.live_boot_script {
            return Ok((Some("the live iPXE script changed".into()), None));
        }
        let tasks = self
            .ctx
            .client
            .relevant_tasks(name)
            .await
            .map_err(api("re-read the tasks"))?;
        if let Some(t) = tasks
            .tasks
            .iter()
            .find(|t| matches!(t.status.as_str(), "init" | "todo" | "doing"))
        {
            let m = format!("task {} ({}) is now running on it", t.task_id, t.function);
            return Ok((Some(m), Some(tasks)));
        }
        if let Some(id) = tasks.unreadable.keys().max() {
            let m = format!("task {id} is listed but cannot be read yet (a fresh task?)");
            return Ok((Some(m), Some(tasks)));
        }
        let records = &self.records_at_start;
        let recorded = records.installs.get(name).map(|r| r.fingerprint.clone());
        if recorded != b.recorded_fingerprint
            && records
                .installs
                .get(name)
                .is_some_and(|r| r.fleet == self.ctx.fleet)
        {
            return Ok((
                Some("the server's record changed since the plan".into()),
                Some(tasks),
            ));
        }
        Ok((None, Some(tasks)))
    }

    /// Before an adopt: the plan may not have read the server's tasks (first-plan economy);
    /// no running or failed task, no installation in progress, and nothing moved.
    async fn recheck_adopt(&self, sp: &ServerPlan) -> Result<Option<String>, ApplyError> {
        let name = sp.server.as_str();
        let tasks = match self.reread(sp).await? {
            (Some(m), _) => return Ok(Some(m)),
            (None, Some(tasks)) => tasks,
            // Never the case (a re-read that finds nothing moved has read the tasks); said
            // rather than assumed.
            (None, None) => return Ok(Some("the tasks could not be re-read".into())),
        };
        if let Some(last) = tasks
            .tasks
            .iter()
            .filter(|t| t.function == "reinstallServer")
            .max_by_key(|t| t.task_id)
            && matches!(
                last.status.as_str(),
                "customerError" | "ovhError" | "cancelled"
            )
        {
            return Ok(Some(format!(
                "its last reinstall (task {}) ended {}: degraded, not adopted",
                last.task_id, last.status
            )));
        }
        let installing = self
            .ctx
            .client
            .install_status(name)
            .await
            .map_err(|source| ApplyError::Api {
                server: name.into(),
                step: "re-check the install status before adopting",
                source,
            })?;
        if installing.is_some() {
            return Ok(Some("an installation is in progress: not adopted".into()));
        }
        Ok(None)
    }

    async fn recheck_boot(&self, sp: &ServerPlan) -> Result<Option<String>, ApplyError> {
        self.moved(sp).await
    }

    /// The reinstall itself: spec check, freshness, limits, journal, POST, track, record.
    /// `Some(outcome)` when it did not run (skipped), `None` when it ran to the end.
    async fn reinstall(
        &self,
        sp: &ServerPlan,
        r: &crate::plan::Reinstall,
    ) -> Result<Option<Outcome>, ApplyError> {
        let name = sp.server.as_str();
        let Some(spec) = self
            .ctx
            .desired
            .servers
            .get(name)
            .and_then(|d| d.install.as_ref())
        else {
            return Ok(Some(Outcome::Skipped(
                "the manifest no longer has an install spec: manifest changed since the plan"
                    .into(),
            )));
        };
        // What runs is what was reviewed.
        if spec.fingerprint != r.fingerprint || spec.os != r.os || spec.generation != r.generation {
            return Ok(Some(Outcome::Skipped(
                "manifest changed since the plan (its fingerprint is not the reviewed one); re-run `ovhform plan`".into(),
            )));
        }
        if self.stop_destructive.load(Ordering::SeqCst) {
            return Ok(Some(Outcome::Skipped(
                "an earlier reinstall of this run failed: no new destructive work starts".into(),
            )));
        }
        let _global = self
            .reinstalls
            .acquire()
            .await
            .expect("semaphore never closed");
        let mut _groups = Vec::new();
        if let Some(ds) = self.ctx.desired.servers.get(name) {
            for g in &ds.groups {
                if let Some(sem) = self.groups.get(g) {
                    _groups.push(sem.clone().acquire_owned().await.expect("never closed"));
                }
            }
        }
        // Checked again after waiting for a slot: a failure may have happened meanwhile.
        if self.stop_destructive.load(Ordering::SeqCst) {
            return Ok(Some(Outcome::Skipped(
                "an earlier reinstall of this run failed: no new destructive work starts".into(),
            )));
        }
        self.started(name, ActionKind::Reinstall);
        if let Some(m) = self.moved(sp).await? {
            return Ok(Some(Outcome::Skipped(format!(
                "{m} since the plan; not reinstalled"
            ))));
        }
        if let Some(why) = self.halted() {
            return Ok(Some(Outcome::Skipped(format!("{why}: not reinstalled"))));
        }
        let posted = intent::post_reinstall(
            self.ctx.client,
            self.ctx.store,
            name,
            &self.ctx.fleet,
            spec,
            self.ctx.plan_id.clone(),
            &*self.ctx.clock,
            &self.ctx.tracking,
        )
        .await?;
        let task = match posted {
            intent::Posted::Task(t) => t,
            intent::Posted::Refused(e) => {
                // A refusal says something about this plan or this fleet: stop starting more.
                // A POST that never left (its slot deadline passed, no connection) proves
                // nothing about the other servers; they go on.
                if !e.is_unsent() {
                    self.stop_destructive.store(true, Ordering::SeqCst);
                }
                return Err(ApplyError::Api {
                    server: name.into(),
                    step: "start the reinstall",
                    source: e,
                });
            }
            intent::Posted::Unresolved(reason) => {
                self.stop_destructive.store(true, Ordering::SeqCst);
                return Ok(Some(Outcome::Degraded(format!(
                    "unresolved intent: {reason}; check the server, then `ovhform state drop-intent {name}`"
                ))));
            }
        };
        self.event(ApplyEvent::Reinstalling {
            server: name.into(),
            task,
        });
        let intents = self
            .ctx
            .store
            .intents()
            .await
            .map_err(|source| ApplyError::State {
                server: name.into(),
                step: "re-read the journal",
                source,
            })?;
        let journaled = intents
            .into_iter()
            .find(|i| i.server == name && i.state == (IntentState::Posted { task_id: task }))
            .ok_or_else(|| ApplyError::Refused {
                server: name.into(),
                message: format!("the intent of task {task} vanished from the journal"),
            })?;
        if let Err(e) = self.finish_install(&journaled, task, Some(spec)).await {
            if !matches!(e, ApplyError::StoppedWaiting { .. }) {
                self.stop_destructive.store(true, Ordering::SeqCst);
            }
            return Err(e);
        }
        self.done(name, ActionKind::Reinstall);
        Ok(None)
    }

    /// Tracks an install task to its end; on success records the install (store, then tags)
    /// and drops the intent. On failure the intent goes (the task ended; the server is
    /// degraded); when tracking stops waiting, the intent stays for the next run.
    async fn finish_install(
        &self,
        intent: &Intent,
        task: u64,
        spec: Option<&InstallSpec>,
    ) -> Result<(), ApplyError> {
        let name = intent.server.as_str();
        let state_err = |step| {
            move |source| ApplyError::State {
                server: name.to_string(),
                step,
                source,
            }
        };
        let known_age = intent::surely_existed_for(
            self.ctx.client,
            intent,
            self.ctx.tracking.post_lag,
            (self.ctx.clock)(),
        )
        .await;
        match self.track(name, task, TaskKind::Install, known_age).await? {
            TaskEnd::Done => {}
            TaskEnd::Purged => {
                // The task left the history: how it ended is unknown. Only a record of this
                // very task (written before a crash kept us from dropping the intent) says it
                // succeeded; anything else is for a person to decide — never a second POST.
                let records = self
                    .ctx
                    .store
                    .load()
                    .await
                    .map_err(state_err("read the records"))?;
                if records.installs.get(name).and_then(|r| r.task_id) == Some(task) {
                    self.ctx
                        .store
                        .drop_intent(&intent.id)
                        .await
                        .map_err(state_err("drop the recorded intent"))?;
                    return Ok(());
                }
                let reason = format!(
                    "task {task} left the history before ovhform saw it end; check the server and resolve by hand"
                );
                let mut unresolved = intent.clone();
                unresolved.state = IntentState::Unresolved {
                    reason: reason.clone(),
                };
                self.ctx
                    .store
                    .put_intent(&unresolved)
                    .await
                    .map_err(state_err("mark the intent unresolved"))?;
                return Err(ApplyError::Unresolved {
                    server: name.into(),
                    reason,
                });
            }
            TaskEnd::Failed {
                status,
                step,
                error,
                comment,
            } => {
                // Kept in the store: the task history that shows the failure is purged in time,
                // and a degraded server must never look healthy.
                let failure = crate::model::FailedInstall {
                    task,
                    status: status.clone(),
                    step: step.clone(),
                    error: error.clone(),
                    at: intent::api_now(self.ctx.client, self.now()).await,
                };
                let server = name.to_string();
                self.ctx
                    .store
                    .update(Box::new(move |r| {
                        r.failed.insert(server, failure);
                    }))
                    .await
                    .map_err(state_err("record the failed install"))?;
                self.ctx
                    .store
                    .drop_intent(&intent.id)
                    .await
                    .map_err(state_err("drop the intent of the failed task"))?;
                let side = if status == "customerError" {
                    "the customer's side (the request or the server's configuration)"
                } else if status == "ovhError" {
                    "OVHcloud's side"
                } else {
                    "cancelled"
                };
                let mut detail = format!(" ({side})");
                if let Some(s) = step {
                    detail.push_str(&format!(" at step {s:?}"));
                }
                if let Some(e) = error {
                    detail.push_str(&format!(": {e}"));
                }
                if let Some(c) = comment {
                    detail.push_str(&format!("; task comment: {c}"));
                }
                return Err(ApplyError::InstallFailed {
                    server: name.into(),
                    task,
                    status,
                    detail: crate::escape::line(&detail).into_owned(),
                });
            }
        }
        let mut rec = match spec {
            // The spec installed is the intent's (same fingerprint), so its digests apply.
            Some(s) if s.fingerprint == intent.fingerprint => {
                digest::record_for(name, &self.ctx.fleet, s, self.ctx.fleet_key.as_ref())
            }
            _ => InstallRecord {
                server: name.into(),
                fleet: self.ctx.fleet.clone(),
                algorithm: digest::ALGORITHM,
                fingerprint: intent.fingerprint.clone(),
                os: intent.os.clone(),
                generation: intent.generation,
                revision: None,
                task_id: None,
                started: None,
                finished: None,
                secrets: None,
                request: None,
            },
        };
        rec.revision = self.plan.revision.clone();
        rec.task_id = Some(task);
        rec.started = Some(intent.created);
        rec.finished = Some(intent::api_now(self.ctx.client, self.now()).await);
        crash::point("install:before-record");
        self.store_record(name, &rec).await?;
        // Recorded: the intent has done its job. Tags come after — they are a mirror, and a
        // failure to write them must not keep an intent whose install is known.
        self.ctx
            .store
            .drop_intent(&intent.id)
            .await
            .map_err(state_err("drop the intent"))?;
        crash::point("install:after-drop-intent");
        self.mirror_record(name, &rec).await;
        crash::point("install:after-tags");
        Ok(())
    }

    /// The record goes to the store, then to the server's tags (this fleet's keys only).
    async fn record(&self, name: &str, rec: &InstallRecord) -> Result<(), ApplyError> {
        self.store_record(name, rec).await?;
        self.mirror_record(name, rec).await;
        Ok(())
    }

    /// The record's tag mirror: best effort. A failure is reported (the record stays in the
    /// store; a later apply rewrites the tags), never a reason to undo or redo the install.
    async fn mirror_record(&self, name: &str, rec: &InstallRecord) {
        if let Err(e) = self
            .write_tags(name, |existing| state::replace_record_tags(existing, rec))
            .await
        {
            self.event(ApplyEvent::TagsFailed {
                server: name.into(),
                error: e.to_string(),
            });
        }
    }

    async fn store_record(&self, name: &str, rec: &InstallRecord) -> Result<(), ApplyError> {
        let installed = rec.clone();
        let succeeded = rec.task_id.is_some();
        self.ctx
            .store
            .update(Box::new(move |r| {
                // A successful install ends a degraded state.
                if succeeded {
                    r.failed.remove(&installed.server);
                }
                r.installs.insert(installed.server.clone(), installed);
            }))
            .await
            .map_err(|source| ApplyError::State {
                server: name.into(),
                step: "write the record",
                source,
            })?;
        crash::point(if rec.task_id.is_some() {
            "install:after-store-record"
        } else {
            "adopt:after-store-record"
        });
        self.event(ApplyEvent::Recorded {
            server: name.into(),
        });
        Ok(())
    }

    async fn write_tags(
        &self,
        name: &str,
        make: impl FnOnce(
            &BTreeMap<String, String>,
        ) -> Result<BTreeMap<String, String>, state::StateError>,
    ) -> Result<(), ApplyError> {
        let api = |step| {
            move |source| ApplyError::Api {
                server: name.to_string(),
                step,
                source,
            }
        };
        let live = self
            .ctx
            .client
            .get_server(name)
            .await
            .map_err(api("read the server's IAM resource"))?;
        let Some(iam) = live.iam else {
            // No IAM resource on this server: the store holds the record; say so.
            tracing::warn!(
                server = name,
                "no IAM resource: the record is not mirrored into tags"
            );
            return Ok(());
        };
        let existing: BTreeMap<String, String> = iam
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("ovh:"))
            .collect();
        let tags = match make(&existing) {
            Ok(t) => t,
            Err(e) => {
                // Too long for a tag: the store keeps the record; the mirror is skipped.
                tracing::warn!(server = name, error = %e, "record not mirrored into tags");
                return Ok(());
            }
        };
        crash::point("tags:before-put");
        if let Some(why) = self.halted() {
            // The store holds the record; the mirror waits for a replica that may write.
            tracing::warn!(server = name, why, "record not mirrored into tags");
            return Ok(());
        }
        self.ctx
            .client
            .iam_set_tags(&iam.urn, &tags)
            .await
            .map_err(api("write the record's IAM tags"))?;
        self.event(ApplyEvent::TagsWritten {
            server: name.into(),
        });
        Ok(())
    }

    /// Drops the record from the store and this fleet's record tags from the server.
    async fn forget(&self, name: &str) -> Result<(), ApplyError> {
        crash::point("forget:before");
        self.ctx
            .store
            .forget(name)
            .await
            .map_err(|source| ApplyError::State {
                server: name.into(),
                step: "forget the record",
                source,
            })?;
        crash::point("forget:after-store");
        let fleet = self.ctx.fleet.clone();
        let result = self
            .write_tags(name, move |existing| {
                let theirs = existing
                    .get(state::tags::TAG_FLEET)
                    .is_some_and(|f| f != &fleet);
                Ok(existing
                    .iter()
                    .filter(|(k, _)| theirs || !state::tags::RECORD_TAG_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect())
            })
            .await;
        match result {
            // A server gone from the account has no tags left to remove.
            Err(ApplyError::Api { ref source, .. }) if source.is_not_found() => Ok(()),
            other => other,
        }
    }
}

/// A server's error as its outcome: a timeout of tracking is never reported as a failure.
fn outcome_of(e: ApplyError) -> Outcome {
    match e {
        ApplyError::StoppedWaiting { .. } => Outcome::StoppedWaiting(e.to_string()),
        ApplyError::Unresolved { .. } => Outcome::Degraded(e.to_string()),
        e => Outcome::Failed(e.to_string()),
    }
}

/// `sha256:<64 hex>` of an iPXE script (as the planner digests it).
fn digest_of(script: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(script.as_bytes())))
}

/// One PUT of the managed settings that differ; `false` values are sent explicitly.
fn settings_update(s: &Settings) -> ServerUpdate {
    ServerUpdate {
        efi_bootloader_path: s.efi_bootloader_path.clone(),
        monitoring: s.monitoring,
        no_intervention: s.no_intervention,
        rescue_mail: s.rescue_mail.clone(),
        rescue_ssh_key: s.rescue_ssh_key.clone(),
        root_device: s.root_device.clone(),
        ..ServerUpdate::default()
    }
}
