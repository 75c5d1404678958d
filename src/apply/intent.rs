//! The intent journal protocol: how a reinstall is POSTed so that a crash at any instant never
//! wipes a server twice, and how an earlier run's intents are resolved. The protocol is
//! model-checked in `journal.pml` (next to this file); keep the two in step.
//!
//! Owns: journaling before the POST, recording the task right after, classifying the POST's
//! failures (refused: no task; not sent: no task; unknown: resolve), and resolving a journaled
//! intent against the API. Must not touch: approvals and limits (the caller decided), tracking
//! and recording (the caller does them once it has a task).
//!
//! Resolution of a `Journaled` intent (the POST may or may not have reached the API):
//! 1. a `reinstallServer` task created at or after the intent (API clock; `created` is a lower
//!    bound of the API's time at the journal write, so the intent's own task is never older)
//!    → attach to it;
//! 2. a listed task that cannot be read yet and is newer than every readable one (fresh tasks
//!    answer 404; it may be ours or an older one) → wait, never attach on a guess; none, and the
//!    fresh window since the intent has not passed → wait: tasks can be missing from the list
//!    for minutes;
//! 3. none, the window has passed, and the history provably covers the intent's time — a task
//!    older than the intent is still listed, or the intent is younger than the purge horizon
//!    (OVHcloud keeps finished tasks far longer than that) — → the API proves no task was
//!    created: drop the intent;
//! 4. otherwise (the history may have been purged while ovhform was down) → `Unresolved`:
//!    nothing is POSTed for the server until a person resolves it.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::ApplyError;
use crate::model::{InstallSpec, Intent, IntentState};
use crate::ovh;
use crate::state::RecordStore;

/// Error bound of the API clock estimate (`/auth/time` is in whole seconds, the local clock
/// reads between two ticks): `created` is taken this much early so it is a lower bound of the
/// API's time at the journal write — the intent's own task can never look older than it.
const CLOCK_ERROR: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

/// Now in the API's clock: local time corrected by the `/auth/time` delta (times in the
/// journal are compared with task dates, which the API writes).
pub async fn api_now(client: &ovh::Client, local: Timestamp) -> Timestamp {
    let delta = client.time_delta().await.unwrap_or(0);
    local
        .checked_add(jiff::SignedDuration::from_secs(delta))
        .unwrap_or(local)
}

/// A new intent for reinstalling `server` with `spec` at `created` (API clock).
pub fn new_intent(
    server: &str,
    fleet: &str,
    spec: &InstallSpec,
    created: Timestamp,
    plan_id: Option<String>,
) -> Intent {
    let public = crate::manifest::public_request(spec);
    let digest = Sha256::digest(crate::manifest::canonical_json(&public));
    Intent {
        id: format!("{server}@{}", created.as_millisecond()),
        server: server.to_string(),
        fleet: fleet.to_string(),
        fingerprint: spec.fingerprint.clone(),
        request_digest: format!("sha256:{}", hex::encode(digest)),
        os: spec.os.clone(),
        generation: spec.generation,
        created,
        plan_id,
        state: IntentState::Journaled,
    }
}

/// What the API says about a journaled intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The intent's task: track it.
    Attached(u64),
    /// Too early to tell: tasks can be missing from the list for the fresh window.
    Wait,
    /// The API proves no task was created: the intent can go.
    NoTask,
    /// Cannot be told: the server is degraded until a person resolves it.
    Unresolved(String),
}

fn parse_date(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(|d| d.parse::<Timestamp>().ok())
}

/// Resolves `intent` against the API. `local_now` is read before the task list is requested
/// (the waits compare a lower bound of when the answer was served) and again after its answer
/// (the purge-horizon proof compares an upper bound): journal.pml, HORIZON_CLOCK_BEFORE and
/// CLOCK_AFTER_ANSWER are the flaws each order avoids.
pub async fn resolve(
    client: &ovh::Client,
    intent: &Intent,
    cfg: &super::TrackingConfig,
    local_now: &(dyn Fn() -> Timestamp + Sync),
) -> Result<Resolution, ApplyError> {
    let (fresh_window, purge_horizon) = (cfg.fresh_window, cfg.purge_horizon);
    match &intent.state {
        IntentState::Posted { task_id } => return Ok(Resolution::Attached(*task_id)),
        IntentState::Unresolved { reason } => return Ok(Resolution::Unresolved(reason.clone())),
        IntentState::Journaled => {}
    }
    let api = |source| ApplyError::Api {
        server: intent.server.clone(),
        step: "resolve an earlier reinstall intent",
        source,
    };
    // Exact: a task dated before `created` cannot be the intent's (journal.pml SKEW_ATTACH).
    let since = intent.created;
    let before = api_now(client, local_now()).await;
    let ids = client
        .list_tasks(&intent.server, Some("reinstallServer"), None)
        .await
        .map_err(api)?;
    let got = client.get_tasks(&intent.server, &ids).await.map_err(api)?;
    let newest_readable = got.found.keys().max().copied();
    // 1. Ours: created at or after the intent.
    let ours = got
        .found
        .values()
        .filter(|t| parse_date(&t.start_date).is_some_and(|d| d >= since))
        .map(|t| t.task_id)
        .max();
    if let Some(task) = ours {
        return Ok(Resolution::Attached(task));
    }
    let fresh_unreadable = got
        .missing
        .iter()
        .copied()
        .filter(|id| newest_readable.is_none_or(|n| *id > n))
        .max();
    // 2. A task the POST started can be invisible until the fresh window has passed since
    // the API started it — at the latest `post_lag` after the intent (the POST is never sent
    // later than its deadline).
    let window = jiff::SignedDuration::try_from(cfg.post_lag + fresh_window)
        .unwrap_or(jiff::SignedDuration::MAX);
    let window_end = intent.created.checked_add(window).unwrap_or(Timestamp::MAX);
    // A listed task that cannot be read may be ours, fresh, or an older one: wait until it
    // can be read (journal.pml UNREADABLE_ATTACH: attaching on a guess tracks the wrong task).
    // Past the window every task not purged is readable; one that still is not contradicts
    // what the proof assumes, and a person decides.
    if let Some(task) = fresh_unreadable {
        if before < window_end {
            return Ok(Resolution::Wait);
        }
        return Ok(Resolution::Unresolved(format!(
            "reinstall task {task} is listed but cannot be read, long after the intent of {}: the reinstall may or may not have started",
            intent.created
        )));
    }
    if before < window_end {
        return Ok(Resolution::Wait);
    }
    // 3. The history covers the intent's time while the intent is younger than the purge
    // horizon, or when a task older than it is still listed. The clock is read after the
    // answer: the list must have been served while the intent was younger than the horizon.
    let horizon = jiff::SignedDuration::try_from(purge_horizon).unwrap_or(window);
    let after = api_now(client, local_now()).await;
    if intent
        .created
        .checked_add(horizon)
        .is_ok_and(|end| after < end)
    {
        return Ok(Resolution::NoTask);
    }
    let all = client
        .list_tasks(&intent.server, None, None)
        .await
        .map_err(api)?;
    let oldest = all.iter().min().copied();
    if let Some(oldest) = oldest {
        let t = client
            .get_tasks(&intent.server, &[oldest])
            .await
            .map_err(api)?;
        if t.found
            .values()
            .any(|t| parse_date(&t.start_date).is_some_and(|d| d < since))
        {
            return Ok(Resolution::NoTask);
        }
    }
    // 4. Nothing proves it either way.
    Ok(Resolution::Unresolved(format!(
        "no reinstall task found for the intent of {} and the server's task history does not reach back to it (purged?): the reinstall may or may not have started",
        intent.created
    )))
}

/// How long the intent's task has surely existed: its POST left at most `post_lag` after the
/// intent was journaled (`created`, a lower bound of the API's time then, at most twice
/// [`CLOCK_ERROR`] early), so the task is at least `now - created - post_lag - 2·CLOCK_ERROR`
/// old (zero for a task just posted). Tracking counts it toward the fresh window.
pub async fn surely_existed_for(
    client: &ovh::Client,
    intent: &Intent,
    post_lag: std::time::Duration,
    local_now: Timestamp,
) -> std::time::Duration {
    let now = api_now(client, local_now).await;
    let age = now.duration_since(intent.created);
    let margin = jiff::SignedDuration::try_from(post_lag)
        .unwrap_or(jiff::SignedDuration::MAX)
        .saturating_add(CLOCK_ERROR.saturating_mul(2));
    std::time::Duration::try_from(age.saturating_sub(margin)).unwrap_or_default()
}

/// How a reinstall POST went.
#[derive(Debug)]
pub enum Posted {
    /// The task to track (the intent is journaled as `Posted`).
    Task(u64),
    /// No task was created (the API refused, or nothing was sent); the intent is dropped.
    Refused(ovh::Error),
    /// The outcome could not be told within the fresh window: the intent stays, `Unresolved`.
    Unresolved(String),
}

/// Journals an intent, POSTs the reinstall of `spec` (never retried), and records the task:
/// the one way ovhform starts an installation.
#[allow(clippy::too_many_arguments)]
pub async fn post_reinstall(
    client: &ovh::Client,
    store: &dyn RecordStore,
    server: &str,
    fleet: &str,
    spec: &InstallSpec,
    plan_id: Option<String>,
    local_now: &(dyn Fn() -> Timestamp + Sync),
    tracking: &super::TrackingConfig,
) -> Result<Posted, ApplyError> {
    let state_err = |step| {
        move |source| ApplyError::State {
            server: server.to_string(),
            step,
            source,
        }
    };
    // The budget queue is waited out before the intent exists, so the deadline below bounds
    // only the journal write and the concurrency wait (a full fleet of reinstalls queued on
    // the fair-use budget would otherwise outlive it and go unsent).
    let slot = client.reserve_slot().await;
    // The deadline runs from before the clock read `created` comes from, never after it
    // (journal.pml SEND_BY_LATE: api_now may wait for /auth/time).
    let send_by = tokio::time::Instant::now() + tracking.post_deadline;
    let local = local_now();
    let now = api_now(client, local).await;
    let created = now.checked_sub(CLOCK_ERROR).unwrap_or(now);
    // The POST leaves within `post_deadline` of `created`, or not at all.
    let mut intent = new_intent(server, fleet, spec, created, plan_id);
    super::crash::point("intent:before-journal");
    // Durable before anything is sent.
    store
        .put_intent(&intent)
        .await
        .map_err(state_err("journal the reinstall intent"))?;
    super::crash::point("intent:after-journal");
    // An answer may quote the request back (a value, the size of a script): its message
    // reaches the terminal, `/status` and webhooks, so the secrets sent are taken out of it.
    let sent = client
        .start_install_before(server, &spec.request, send_by, slot)
        .await
        .map_err(|e| e.without_echo(&crate::manifest::secret_texts(spec)));
    match sent {
        Ok(started) => {
            // The answer is in, not yet journaled: a crash here is a lost answer.
            super::crash::point("intent:after-post");
            intent.state = IntentState::Posted {
                task_id: started.task_id,
            };
            store
                .put_intent(&intent)
                .await
                .map_err(state_err("journal the reinstall task"))?;
            super::crash::point("intent:after-posted-journal");
            Ok(Posted::Task(started.task_id))
        }
        // Refused before anything happened (validation, a task already running, rights), or
        // never sent: the API proves no task was created.
        Err(e) if e.is_unsent() || (e.is_refusal() && !e.is_transient()) || e.is_legacy() => {
            store
                .drop_intent(&intent.id)
                .await
                .map_err(state_err("drop the refused intent"))?;
            Ok(Posted::Refused(e))
        }
        // Unknown: it may have reached the API. Resolve, never re-send.
        Err(e) => {
            tracing::warn!(server, error = %e, "reinstall POST outcome unknown; resolving against the task history");
            loop {
                match resolve(client, &intent, tracking, local_now).await? {
                    Resolution::Attached(task) => {
                        intent.state = IntentState::Posted { task_id: task };
                        store
                            .put_intent(&intent)
                            .await
                            .map_err(state_err("journal the reinstall task"))?;
                        return Ok(Posted::Task(task));
                    }
                    Resolution::NoTask => {
                        store
                            .drop_intent(&intent.id)
                            .await
                            .map_err(state_err("drop the intent"))?;
                        return Ok(Posted::Refused(e));
                    }
                    Resolution::Unresolved(reason) => {
                        intent.state = IntentState::Unresolved {
                            reason: reason.clone(),
                        };
                        store
                            .put_intent(&intent)
                            .await
                            .map_err(state_err("mark the intent unresolved"))?;
                        return Ok(Posted::Unresolved(reason));
                    }
                    Resolution::Wait => tokio::time::sleep(tracking.min_poll).await,
                }
            }
        }
    }
}
