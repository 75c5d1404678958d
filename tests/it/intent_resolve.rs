//! Resolving an earlier run's reinstall intent against the simulator, one regression test per
//! flaw the journal model (src/apply/journal.pml) found in the code: each flawed variant there
//! fails spin's check, and each test here fails on the code as it was before the fix.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ovhform::apply::intent::{self, Resolution};
use ovhform::apply::{TaskEnd, TaskKind, Tracking, TrackingConfig};
use ovhform::model::{Intent, IntentState};
use ovhform::ovh::Client;
use ovhform::sim::{self, Faults, SimConfig, SimHandle};

use crate::sim_support::{HYBRID, fleet, start};

/// Windows in the API's clock; the simulator's clock stands still unless advanced.
fn cfg() -> TrackingConfig {
    TrackingConfig {
        post_lag: Duration::from_secs(60),
        fresh_window: Duration::from_secs(300),
        purge_horizon: Duration::from_secs(3600),
        ..TrackingConfig::default()
    }
}

async fn sim_with(faults: Faults) -> (SimHandle, Client) {
    let sim = start(SimConfig {
        fleet: fleet(),
        faults,
        ..SimConfig::for_tests()
    })
    .await;
    let client = sim::client_for(&sim).unwrap();
    (sim, client)
}

/// The API's time now, and a local clock reading that the client turns into `api + offset`.
async fn api_clock(
    client: &Client,
) -> (
    Timestamp,
    impl Fn(SignedDuration) -> Timestamp + Copy + Sync,
) {
    let delta = SignedDuration::from_secs(client.time_delta().await.unwrap());
    let local = Timestamp::now();
    let api = local.checked_add(delta).unwrap();
    (api, move |offset| local.checked_add(offset).unwrap())
}

fn intent_at(created: Timestamp) -> Intent {
    Intent {
        id: format!("{HYBRID}@{}", created.as_millisecond()),
        server: HYBRID.into(),
        fleet: "default".into(),
        fingerprint: "v2:test".into(),
        request_digest: "sha256:test".into(),
        os: "debian12_64".into(),
        generation: 1,
        created,
        plan_id: None,
        state: IntentState::Journaled,
    }
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

/// journal.pml SKEW_ATTACH: `created` is a lower bound of the API's time when the intent was
/// written, and the POST leaves after that, so a task dated even a second before it is
/// someone else's. The code attached tasks up to 60 s older than the intent.
#[tokio::test]
async fn a_reinstall_task_dated_before_the_intent_is_not_attached() {
    let (sim, client) = sim_with(Faults::default()).await;
    let (api, local_at) = api_clock(&client).await;
    let other = sim.create_task(HYBRID, "reinstallServer").unwrap();
    let intent = intent_at(api.checked_add(secs(30)).unwrap());
    // Inside the window: wait; past it, within the horizon: no task of ours.
    let early = move || local_at(secs(60));
    let r = intent::resolve(&client, &intent, &cfg(), &early)
        .await
        .unwrap();
    assert_eq!(r, Resolution::Wait);
    let later = move || local_at(secs(30 + 60 + 300 + 1));
    let r = intent::resolve(&client, &intent, &cfg(), &later)
        .await
        .unwrap();
    assert_eq!(
        r,
        Resolution::NoTask,
        "task {other} started 30 s before the intent is not the intent's"
    );
}

/// journal.pml UNREADABLE_ATTACH: a listed reinstall task that answers 404 may be a fresh one
/// or an older one; attaching to it on a guess tracks the wrong task. The code attached to
/// the newest unreadable task.
#[tokio::test]
async fn a_listed_task_that_cannot_be_read_is_waited_for_never_attached() {
    let (sim, client) = sim_with(Faults {
        fresh_task_404: 2,
        ..Faults::default()
    })
    .await;
    let (api, local_at) = api_clock(&client).await;
    let older = sim.create_task(HYBRID, "reinstallServer").unwrap();
    let intent = intent_at(api.checked_add(secs(1)).unwrap());
    let past_window = move || local_at(secs(1 + 60 + 300 + 1));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = intent::resolve(&client, &intent, &cfg(), &past_window)
            .await
            .unwrap();
        seen.push(r.clone());
        if r == Resolution::NoTask {
            break;
        }
    }
    assert!(
        !seen.contains(&Resolution::Attached(older)),
        "never attached to the unreadable task {older}: {seen:?}"
    );
    // Past the window an unreadable task is no proof either way; once readable, it is older
    // than the intent and the history proves no task was created.
    assert!(
        seen.iter()
            .all(|r| matches!(r, Resolution::Unresolved(_) | Resolution::NoTask)),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&Resolution::NoTask), "{seen:?}");
}

/// Before the window ends, an unreadable listed task means "wait", not "ours".
#[tokio::test]
async fn an_unreadable_task_inside_the_window_means_wait() {
    let (sim, client) = sim_with(Faults {
        fresh_task_404: 5,
        ..Faults::default()
    })
    .await;
    let (api, local_at) = api_clock(&client).await;
    sim.create_task(HYBRID, "reinstallServer").unwrap();
    let intent = intent_at(api.checked_sub(secs(1)).unwrap());
    let now = move || local_at(secs(10));
    let r = intent::resolve(&client, &intent, &cfg(), &now)
        .await
        .unwrap();
    assert_eq!(r, Resolution::Wait);
}

/// journal.pml HORIZON_CLOCK_BEFORE: "the intent is younger than the purge horizon, so its
/// task would still be listed" must hold when the list was served, so it compares the API
/// time read after the answer. The code compared the time read before the request: a slow
/// answer crossing the horizon dropped an intent whose task may have been purged.
#[tokio::test]
async fn the_purge_horizon_is_judged_by_the_clock_after_the_answer() {
    let (_sim, client) = sim_with(Faults::default()).await;
    let (api, local_at) = api_clock(&client).await;
    let intent = intent_at(api);
    // The first reading (before the list) is past the window and inside the horizon; every
    // later one (after the answer) is past the horizon.
    let reads = Arc::new(AtomicUsize::new(0));
    let r2 = reads.clone();
    let clock = move || {
        if r2.fetch_add(1, Ordering::SeqCst) == 0 {
            local_at(secs(60 + 300 + 1))
        } else {
            local_at(secs(3600 + 1))
        }
    };
    let r = intent::resolve(&client, &intent, &cfg(), &clock)
        .await
        .unwrap();
    // No task at all in the history: nothing proves the reinstall never started.
    assert!(matches!(r, Resolution::Unresolved(_)), "{r:?}");
    assert!(
        reads.load(Ordering::SeqCst) >= 2,
        "the clock is read after the answer"
    );
}

/// journal.pml TRACK_AFTER_ANSWER: a tracked task answering 404 is taken as purged only when
/// the request left after the fresh window; a slow 404 to a request sent inside it is a fresh
/// task's. The code read the time tracked after the answer and gave up on the first slow 404.
#[tokio::test]
async fn a_slow_404_to_a_poll_sent_inside_the_fresh_window_is_not_purged() {
    let (sim, client) = sim_with(Faults {
        latency: Some(Duration::from_millis(300)),
        ..Faults::default()
    })
    .await;
    let cfg = TrackingConfig {
        min_poll: Duration::from_millis(20),
        max_poll: Duration::from_millis(20),
        fresh_window: Duration::from_millis(200),
        timeout: Duration::from_secs(30),
        ..TrackingConfig::default()
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let missing = 999_999;
    sim.reset_calls();
    let end = ovhform::apply::track::track(
        &client,
        HYBRID,
        missing,
        TaskKind::Other,
        &cfg,
        &Tracking::default(),
        &tx,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(end, TaskEnd::Purged);
    let gets = sim.calls()["GET /dedicated/server/{serviceName}/task/{taskId}"];
    assert!(
        gets >= 2,
        "the first 404 (sent at 20 ms, answered at ~320 ms) was inside the window: {gets} GET(s)"
    );
}

/// Regression (found by the 30-minute chaos soak on PostgreSQL): a daemon pass tracks a
/// re-attached reinstall for `--track-for` (seconds), shorter than the fresh window. A task
/// purged after it ended answers 404, which counted as a fresh task's as long as *this*
/// tracking was younger than the window: every pass stopped waiting, the intent was never
/// closed and the server stayed `reinstalling`. The task's known age counts now.
#[tokio::test]
async fn a_purged_task_re_attached_for_a_short_tracking_is_purged_not_fresh_for_ever() {
    let (sim, client) = sim_with(Faults::default()).await;
    let cfg = TrackingConfig {
        min_poll: Duration::from_millis(20),
        max_poll: Duration::from_millis(20),
        fresh_window: Duration::from_secs(300),
        timeout: Duration::from_millis(300),
        ..TrackingConfig::default()
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let missing = 999_999;
    let tracking = Tracking::default();
    let track = |known_age| {
        ovhform::apply::track::track(
            &client,
            HYBRID,
            missing,
            TaskKind::Other,
            &cfg,
            &tracking,
            &tx,
            known_age,
        )
    };
    // Just posted: a 404 is a fresh task's; the short tracking stops waiting.
    let young = track(Duration::ZERO).await;
    assert!(
        matches!(
            young,
            Err(ovhform::apply::ApplyError::StoppedWaiting { .. })
        ),
        "{young:?}"
    );
    // Posted longer ago than the fresh window: the 404 is a purge, whatever the tracking's
    // own length.
    let old = track(Duration::from_secs(301)).await.unwrap();
    assert_eq!(old, TaskEnd::Purged);
    sim.shutdown().await;
}
