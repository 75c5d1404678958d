//! The PostgreSQL state store against a real server (`pg_support.rs`): records and journal
//! semantics (the same contract as the file store), updates from two replicas that lose
//! nothing, schema migrations, the lease (database clock, renewal, takeover, resignation), the
//! fencing of every write kind, and URLs whose password never shows.

use std::sync::Arc;
use std::time::Duration;

use ovhform::model::{AppliedState, BootMode, InstallRecord, Intent, IntentState, Records};
use ovhform::state::pg::SCHEMA_VERSION;
use ovhform::state::{FenceReason, Lease, PgStore, RecordStore, StateError};
use serde_json::{Value, json};

use crate::pg_support::{TestDb, fresh_db};

const FLEET: &str = "prod";
const LONG: Duration = Duration::from_secs(60);

async fn store(db: &TestDb, holder: &str) -> PgStore {
    PgStore::connect(&db.url, FLEET, holder)
        .await
        .unwrap_or_else(|e| panic!("connect as {holder}: {e:?}"))
}

/// A store that has just won the lease; returns its token.
async fn leader(db: &TestDb, holder: &str, ttl: Duration) -> (PgStore, u64) {
    let s = store(db, holder).await;
    match s.campaign(ttl).await.expect("campaign") {
        Lease::Leader { token, .. } => (s, token),
        other => panic!("{holder} should lead a free lease, got {other:?}"),
    }
}

fn rec(server: &str, generation: u64) -> InstallRecord {
    InstallRecord {
        server: server.to_string(),
        fleet: FLEET.into(),
        algorithm: 2,
        secrets: None,
        request: Some(json!({"operatingSystem": "debian12_64"})),
        fingerprint: format!("sha256:{}", "a".repeat(64)),
        os: "debian12_64".into(),
        generation,
        revision: None,
        task_id: Some(7),
        started: Some("2026-11-29T10:00:00Z".parse().unwrap()),
        finished: None,
    }
}

fn intent(server: &str, created: &str) -> Intent {
    let created: jiff::Timestamp = created.parse().unwrap();
    Intent {
        id: format!("{server}@{}", created.as_millisecond()),
        server: server.into(),
        fleet: FLEET.into(),
        fingerprint: format!("sha256:{}", "a".repeat(64)),
        request_digest: format!("sha256:{}", "b".repeat(64)),
        os: "debian12_64".into(),
        generation: 1,
        created,
        plan_id: None,
        state: IntentState::Journaled,
    }
}

/// What the database holds for the fleet, read behind the store's back.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: Option<Value>,
    intents: Vec<Value>,
    secret: Option<String>,
}

async fn snapshot(db: &TestDb) -> Snapshot {
    let sql = db.sql().await;
    let records = sql
        .query_opt(
            "SELECT doc FROM ovhform_records WHERE fleet = $1",
            &[&FLEET],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    let intents = sql
        .query(
            "SELECT doc FROM ovhform_intents WHERE fleet = $1 ORDER BY id",
            &[&FLEET],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let secret = sql
        .query_opt(
            "SELECT secret FROM ovhform_fleet_secrets WHERE fleet = $1",
            &[&FLEET],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    Snapshot {
        records,
        intents,
        secret,
    }
}

/// Every kind of write a store offers, each tried once.
async fn every_write(
    s: &PgStore,
    existing_intent: &str,
) -> Vec<(&'static str, Result<(), StateError>)> {
    let new_intent = intent("ns9.eu", "2026-11-29T12:00:00Z");
    vec![
        (
            "update",
            s.update(Box::new(|r: &mut Records| {
                r.installs.clear();
            }))
            .await
            .map(drop),
        ),
        ("put_install", s.put_install(&rec("ns9.eu", 1)).await),
        ("forget", s.forget("ns1.eu").await.map(drop)),
        ("put_intent", s.put_intent(&new_intent).await),
        ("drop_intent", s.drop_intent(existing_intent).await),
        (
            "set_fleet_secret",
            s.set_fleet_secret("stolen-secret-value").await,
        ),
        (
            "ensure_fleet_secret",
            s.ensure_fleet_secret().await.map(drop),
        ),
    ]
}

fn assert_all_fenced(
    results: Vec<(&'static str, Result<(), StateError>)>,
    expected: &FenceReason,
    holder: &str,
) {
    assert_eq!(results.len(), 7);
    for (kind, result) in results {
        match result {
            Err(StateError::NotLeader {
                reason,
                holder: h,
                fleet,
                ..
            }) => {
                assert_eq!(&reason, expected, "{kind}");
                assert_eq!(h, holder, "{kind}");
                assert_eq!(fleet, FLEET, "{kind}");
            }
            other => panic!("{kind} from {holder} should be fenced, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn records_round_trip_and_unknown_fields_are_carried_through() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    a.put_install(&rec("ns1.eu", 1)).await.unwrap();
    let written = a
        .update(Box::new(|r: &mut Records| {
            r.applied.insert(
                "ns1.eu".into(),
                AppliedState {
                    lease: None,
                    boot: Some(BootMode::Rescue {
                        kernel: "rescue64".into(),
                    }),
                    settings: Default::default(),
                },
            );
        }))
        .await
        .unwrap();
    assert_eq!(written.installs["ns1.eu"], rec("ns1.eu", 1));

    // Another replica (never a leader) reads exactly what was written.
    let reader = store(&db, "reader").await;
    assert_eq!(reader.load().await.unwrap(), written);

    // A newer ovhform added a top-level field; this one writes the records and keeps it.
    let sql = db.sql().await;
    sql.execute(
        "UPDATE ovhform_records SET doc = doc || '{\"futureField\": {\"ns1.eu\": {\"k\": [1, 2]}}}'::jsonb \
         WHERE fleet = $1",
        &[&FLEET],
    )
    .await
    .unwrap();
    a.put_install(&rec("ns2.eu", 3)).await.unwrap();
    let doc = snapshot(&db).await.records.expect("records row");
    assert_eq!(doc["futureField"], json!({"ns1.eu": {"k": [1, 2]}}));
    assert_eq!(doc["installs"]["ns2.eu"]["generation"], 3);
    assert_eq!(doc["applied"]["ns1.eu"]["boot"]["kernel"], "rescue64");
    let loaded = reader.load().await.unwrap();
    assert_eq!(
        loaded.installs.keys().collect::<Vec<_>>(),
        vec!["ns1.eu", "ns2.eu"]
    );

    // Fields an older writer did not know read as their defaults.
    sql.execute(
        "UPDATE ovhform_records SET doc = doc - 'applied' - 'failed' WHERE fleet = $1",
        &[&FLEET],
    )
    .await
    .unwrap();
    let loaded = reader.load().await.unwrap();
    assert!(loaded.applied.is_empty());
    assert_eq!(loaded.installs.len(), 2);

    // forget goes through the same write path.
    assert!(a.forget("ns1.eu").await.unwrap());
    assert!(!a.forget("ns1.eu").await.unwrap());
    let doc = snapshot(&db).await.records.unwrap();
    assert_eq!(doc["futureField"], json!({"ns1.eu": {"k": [1, 2]}}));
    assert!(doc["installs"].get("ns1.eu").is_none());

    // Fleets sharing a database do not see each other.
    let other = PgStore::connect(&db.url, "staging", "a").await.unwrap();
    assert_eq!(other.load().await.unwrap(), Records::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_from_two_stores_lose_nothing() {
    let db = fresh_db().await;
    // Two connections of the same replica identity: both pass the fence, so only the records
    // row lock keeps their read-modify-writes apart.
    let (a, token) = leader(&db, "replica-1", LONG).await;
    let b = store(&db, "replica-1").await;
    match b.campaign(LONG).await.unwrap() {
        Lease::Leader { token: t, .. } => assert_eq!(t, token, "the same holder renews"),
        other => panic!("{other:?}"),
    }
    a.put_install(&rec("counter", 0)).await.unwrap();

    const N: u64 = 50;
    let run = |s: Arc<PgStore>, prefix: &'static str| {
        tokio::spawn(async move {
            for i in 0..N {
                s.update(Box::new(move |r: &mut Records| {
                    r.installs
                        .insert(format!("{prefix}-{i}"), rec(&format!("{prefix}-{i}"), i));
                    if let Some(c) = r.installs.get_mut("counter") {
                        c.generation += 1;
                    }
                }))
                .await
                .expect("update");
            }
        })
    };
    let (ra, rb) = tokio::join!(run(Arc::new(a), "a"), run(Arc::new(b), "b"));
    ra.unwrap();
    rb.unwrap();

    let records = store(&db, "reader").await.load().await.unwrap();
    assert_eq!(
        records.installs["counter"].generation,
        2 * N,
        "no increment lost"
    );
    assert_eq!(records.installs.len() as u64, 2 * N + 1, "no insert lost");
}

#[tokio::test]
async fn put_intent_is_visible_to_a_second_connection_when_it_returns() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    let reader = store(&db, "reader").await;
    let i = intent("ns1.eu", "2026-11-29T10:00:00Z");
    a.put_intent(&i).await.unwrap();
    // No wait, no retry: committed before the future completed.
    assert_eq!(reader.intents().await.unwrap(), vec![i.clone()]);
    let sql = db.sql().await;
    let n: i64 = sql
        .query_one(
            "SELECT count(*) FROM ovhform_intents WHERE fleet = $1 AND id = $2",
            &[&FLEET, &i.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Rewriting an intent (its task is known now) replaces it.
    let posted = Intent {
        state: IntentState::Posted { task_id: 42 },
        ..i.clone()
    };
    a.put_intent(&posted).await.unwrap();
    assert_eq!(reader.intents().await.unwrap(), vec![posted]);
}

#[tokio::test]
async fn intents_are_listed_oldest_first() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    let late = intent("ns1.eu", "2026-11-29T12:00:00Z");
    let early = intent("ns2.eu", "2026-11-29T08:00:00Z");
    let middle_b = intent("ns3.eu", "2026-11-29T10:00:00Z");
    let middle_a = Intent {
        id: "ns0.eu@same-instant".into(),
        server: "ns0.eu".into(),
        ..middle_b.clone()
    };
    for i in [&late, &early, &middle_b, &middle_a] {
        a.put_intent(i).await.unwrap();
    }
    let ids: Vec<String> = a
        .intents()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        ids,
        vec![
            early.id.clone(),
            middle_a.id.clone(),
            middle_b.id.clone(),
            late.id.clone()
        ],
        "by creation time, then id"
    );
}

#[tokio::test]
async fn drop_intent_is_idempotent() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    let keep = intent("ns1.eu", "2026-11-29T10:00:00Z");
    let gone = intent("ns2.eu", "2026-11-29T11:00:00Z");
    a.put_intent(&keep).await.unwrap();
    a.put_intent(&gone).await.unwrap();
    a.drop_intent(&gone.id).await.unwrap();
    a.drop_intent(&gone.id).await.unwrap();
    a.drop_intent("never@0").await.unwrap();
    assert_eq!(a.intents().await.unwrap(), vec![keep]);
}

#[tokio::test]
async fn migrations_run_twice_are_idempotent() {
    let db = fresh_db().await;
    // Replicas starting together: the advisory lock serialises their migrations.
    let (x, y, z) = tokio::join!(
        PgStore::connect(&db.url, FLEET, "x"),
        PgStore::connect(&db.url, FLEET, "y"),
        PgStore::connect(&db.url, FLEET, "z"),
    );
    let (x, _y, _z) = (x.unwrap(), y.unwrap(), z.unwrap());
    assert!(x.campaign(LONG).await.unwrap().is_leader());
    x.put_install(&rec("ns1.eu", 1)).await.unwrap();
    drop(x);

    let again = store(&db, "x").await;
    assert_eq!(
        again.load().await.unwrap().installs["ns1.eu"],
        rec("ns1.eu", 1)
    );
    let sql = db.sql().await;
    let rows = sql
        .query("SELECT version FROM ovhform_schema", &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![SCHEMA_VERSION]);
    let tables: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ovhform\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 5, "schema, records, intents, fleet secrets, leases");

    // Once migrated, a user that may only read and write rows can run ovhform: an up-to-date
    // schema is not touched. (Only on the throwaway server, which trusts any local role.)
    if !db.external {
        let role = format!("{}_rw", db.name());
        sql.batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        ))
        .await
        .unwrap();
        let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
        // Another fleet: x's lease on this one is still live.
        let rw = PgStore::connect(&url, "other-fleet", "rw")
            .await
            .unwrap_or_else(|e| panic!("a row-only user connects: {e}"));
        assert!(rw.campaign(LONG).await.unwrap().is_leader());
        rw.put_install(&rec("ns2.eu", 1)).await.unwrap();
        let create = sql
            .batch_execute(&format!(
                "SET ROLE {role}; CREATE TABLE ovhform_probe (x int)"
            ))
            .await;
        assert!(create.is_err(), "the role really cannot create tables");
    }
}

#[tokio::test]
async fn a_newer_schema_version_is_refused_with_a_clear_error() {
    let db = fresh_db().await;
    drop(store(&db, "x").await);
    let sql = db.sql().await;
    sql.execute(
        "UPDATE ovhform_schema SET version = $1",
        &[&(SCHEMA_VERSION + 1)],
    )
    .await
    .unwrap();
    let err = PgStore::connect(&db.url, FLEET, "x").await.unwrap_err();
    match &err {
        StateError::SchemaTooNew {
            found, supported, ..
        } => {
            assert_eq!(*found, SCHEMA_VERSION + 1);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("upgrade ovhform"), "{msg}");
    assert!(
        msg.contains(&db.name().to_string()),
        "names the database: {msg}"
    );
    // Refusing changed nothing.
    let v: i32 = sql
        .query_one("SELECT version FROM ovhform_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn an_expired_leader_is_fenced_out_and_changes_nothing() {
    let db = fresh_db().await;
    let ttl = Duration::from_secs(1);
    let (a, token_a) = leader(&db, "a", ttl).await;
    a.put_install(&rec("ns1.eu", 1)).await.unwrap();
    let journaled = intent("ns1.eu", "2026-11-29T10:00:00Z");
    a.put_intent(&journaled).await.unwrap();
    let secret = a.ensure_fleet_secret().await.unwrap();

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    // Expired and nobody took over yet: still no write.
    let expired = a.put_install(&rec("ns2.eu", 1)).await;
    assert!(
        matches!(
            expired,
            Err(StateError::NotLeader {
                reason: FenceReason::Expired { .. },
                ..
            })
        ),
        "{expired:?}"
    );

    let b = store(&db, "b").await;
    let token_b = match b.campaign(LONG).await.unwrap() {
        Lease::Leader { token, .. } => token,
        other => panic!("b should take over an expired lease, got {other:?}"),
    };
    assert!(token_b > token_a, "{token_b} > {token_a}");

    // A resumes (as a paused process would) and tries everything: all fenced, nothing changed.
    let before = snapshot(&db).await;
    assert_eq!(before.secret.as_deref(), Some(secret.as_str()));
    assert_all_fenced(
        every_write(&a, &journaled.id).await,
        &FenceReason::Taken {
            leader: "b".into(),
            token: token_b,
        },
        "a",
    );
    assert_eq!(snapshot(&db).await, before);

    // A campaigning again is a standby, and then holds no lease at all.
    match a.campaign(ttl).await.unwrap() {
        Lease::Standby { leader, .. } => assert_eq!(leader, "b"),
        other => panic!("a should be a standby, got {other:?}"),
    }
    assert_all_fenced(
        every_write(&a, &journaled.id).await,
        &FenceReason::NoLease,
        "a",
    );
    assert_eq!(snapshot(&db).await, before);

    // B's writes go through, every kind.
    for (kind, result) in every_write(&b, &journaled.id).await {
        result.unwrap_or_else(|e| panic!("{kind} from the leader: {e:?}"));
    }
    let after = snapshot(&db).await;
    assert_eq!(after.secret.as_deref(), Some("stolen-secret-value"));
    assert_eq!(after.intents.len(), 1, "journaled dropped, ns9.eu's added");
    assert_eq!(after.intents[0]["server"], "ns9.eu");
    assert_eq!(
        after.records.unwrap()["installs"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["ns9.eu"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_inside_a_write_loses_its_session_and_writes_nothing() {
    let db = fresh_db().await;
    let (a, token_a) = leader(&db, "a", Duration::from_secs(1)).await;
    a.put_install(&rec("ns1.eu", 1)).await.unwrap();
    let before = snapshot(&db).await;
    let a = Arc::new(a);
    // The edit runs inside the fenced transaction, after the lease check, holding the lease
    // row's lock: stalling there for 3 s is a SIGSTOP at the worst moment.
    let paused = tokio::spawn({
        let a = a.clone();
        async move {
            a.update(Box::new(|r: &mut Records| {
                std::thread::sleep(Duration::from_secs(3));
                r.installs.clear();
            }))
            .await
        }
    });
    let b = store(&db, "b").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let asked = std::time::Instant::now();
    match b.campaign(LONG).await.unwrap() {
        Lease::Leader { token, .. } => assert_eq!(token, token_a + 1),
        other => panic!("b should take over once a's session is gone, got {other:?}"),
    }
    // The server ended a's session 2 s into its stall (t ≈ 2 s); b did not wait for a to
    // resume (t ≈ 3 s).
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "b waited {:?}",
        asked.elapsed()
    );
    let result = paused.await.unwrap();
    assert!(result.is_err(), "the stalled write must fail: {result:?}");
    assert_eq!(snapshot(&db).await, before, "and change nothing");
    // Back from its stall, a reconnects and finds the lease gone.
    let again = a.put_install(&rec("ns2.eu", 1)).await;
    assert!(
        matches!(
            again,
            Err(StateError::NotLeader {
                reason: FenceReason::Taken { .. },
                ..
            })
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_store_that_never_campaigned_cannot_write() {
    let db = fresh_db().await;
    let s = store(&db, "a").await;
    assert_all_fenced(every_write(&s, "x@1").await, &FenceReason::NoLease, "a");
    assert_eq!(
        snapshot(&db).await,
        Snapshot {
            records: None,
            intents: vec![],
            secret: None
        }
    );
    // Reads need no lease.
    assert_eq!(s.load().await.unwrap(), Records::default());
    assert!(s.intents().await.unwrap().is_empty());
    assert_eq!(s.fleet_secret().await.unwrap(), None);
    // The lease is not taken by writing: nobody holds it.
    let b = store(&db, "b").await;
    assert!(b.campaign(LONG).await.unwrap().is_leader());
}

#[tokio::test]
async fn renewing_keeps_the_token_and_a_takeover_increments_it() {
    let db = fresh_db().await;
    let (a, token) = leader(&db, "a", LONG).await;
    let first_until = match a.campaign(LONG).await.unwrap() {
        Lease::Leader { token: t, until } => {
            assert_eq!(t, token, "renewal keeps the token");
            until
        }
        other => panic!("{other:?}"),
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    match a.campaign(LONG).await.unwrap() {
        Lease::Leader { token: t, until } => {
            assert_eq!(t, token);
            assert!(until > first_until, "a renewal moves the expiry on");
        }
        other => panic!("{other:?}"),
    }
    // A standby sees who leads and until when.
    let b = store(&db, "b").await;
    match b.campaign(LONG).await.unwrap() {
        Lease::Standby { leader, until } => {
            assert_eq!(leader, "a");
            assert!(until > first_until);
        }
        other => panic!("b must not lead while a's lease is live: {other:?}"),
    }
    // A lease that ran out is a new lease, even for its last holder: a new token fences out
    // anything that still carries the old one.
    assert!(
        a.campaign(Duration::from_millis(1))
            .await
            .unwrap()
            .is_leader()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    match a.campaign(LONG).await.unwrap() {
        Lease::Leader { token: t, .. } => assert_eq!(t, token + 1),
        other => panic!("{other:?}"),
    }
    a.put_install(&rec("ns1.eu", 1)).await.unwrap();
}

#[tokio::test]
async fn a_stale_token_is_fenced_even_under_the_same_holder_name() {
    let db = fresh_db().await;
    // A replica restarted under the same name while its old process was paused: the name is
    // the same, the token is not.
    let (old, token) = leader(&db, "a", Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (new, new_token) = leader(&db, "a", LONG).await;
    assert_eq!(new_token, token + 1);
    let before = snapshot(&db).await;
    assert_all_fenced(
        every_write(&old, "x@1").await,
        &FenceReason::Taken {
            leader: "a".into(),
            token: new_token,
        },
        "a",
    );
    assert_eq!(snapshot(&db).await, before);
    new.put_install(&rec("ns1.eu", 1)).await.unwrap();
}

#[tokio::test]
async fn resign_lets_a_standby_take_over_at_once() {
    let db = fresh_db().await;
    let (a, token_a) = leader(&db, "a", LONG).await;
    let b = store(&db, "b").await;
    assert!(!b.campaign(LONG).await.unwrap().is_leader());
    assert!(a.resign().await.unwrap(), "a live lease was released");
    assert!(!a.resign().await.unwrap(), "nothing left to release");
    // No waiting for the 60 s lease to run out.
    match b.campaign(LONG).await.unwrap() {
        Lease::Leader { token, .. } => assert_eq!(token, token_a + 1),
        other => panic!("b should lead at once, got {other:?}"),
    }
    assert_all_fenced(every_write(&a, "x@1").await, &FenceReason::NoLease, "a");
    b.put_install(&rec("ns1.eu", 1)).await.unwrap();
}

#[tokio::test]
async fn fleet_secret_is_created_once_and_kept() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    assert_eq!(a.fleet_secret().await.unwrap(), None);
    let secret = a.ensure_fleet_secret().await.unwrap();
    assert_eq!(secret.len(), 64);
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        a.ensure_fleet_secret().await.unwrap(),
        secret,
        "created once"
    );
    let reader = store(&db, "reader").await;
    assert_eq!(
        reader.fleet_secret().await.unwrap().as_deref(),
        Some(secret.as_str())
    );
    assert!(!format!("{a:?}").contains(&secret));
    assert!(matches!(
        a.set_fleet_secret("  ").await,
        Err(StateError::FleetSecretEmpty { .. })
    ));
    a.set_fleet_secret("imported-from-fleet.key").await.unwrap();
    assert_eq!(
        reader.fleet_secret().await.unwrap().as_deref(),
        Some("imported-from-fleet.key")
    );
}

#[tokio::test]
async fn a_broken_connection_is_reopened() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    let sql = db.sql().await;
    let killed: i64 = sql
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'ovhform'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // Give the driver a moment to see the connection close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.put_install(&rec("ns1.eu", 1)).await.unwrap();
    assert_eq!(a.load().await.unwrap().installs.len(), 1);
}

#[tokio::test]
async fn the_url_password_never_appears_in_errors() {
    const PASSWORD: &str = "PaSsW0rd-9f3c";
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let urls = [
        format!("postgres://ovhform:{PASSWORD}@127.0.0.1:{closed_port}/ovhform"),
        format!("postgresql://ovhform@127.0.0.1:{closed_port}/ovhform?password={PASSWORD}"),
        format!("postgres://ovhform:{PASSWORD}@127.0.0.1:not-a-port/ovhform"),
        format!("postgres://ovhform:{PASSWORD}@127.0.0.1:{closed_port}/ovhform?sslmode=bogus"),
    ];
    for url in &urls {
        let err = PgStore::connect(url, FLEET, "a").await.unwrap_err();
        let shown = [
            err.to_string(),
            format!("{err:?}"),
            format!("{:?}", miette::Report::new(err)),
        ];
        for text in shown {
            assert!(!text.contains(PASSWORD), "{url}: {text}");
            assert!(text.contains("127.0.0.1"), "the target is named: {text}");
        }
    }

    // A store connected with a password in its URL does not show it either.
    let db = fresh_db().await;
    let with_password = db
        .url
        .replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(with_password.contains(PASSWORD), "{with_password}");
    let s = PgStore::connect(&with_password, FLEET, "a").await.unwrap();
    assert!(!format!("{s:?}").contains(PASSWORD));
    assert!(!s.target().contains(PASSWORD));
    let fenced = s.put_install(&rec("ns1.eu", 1)).await.unwrap_err();
    assert!(!format!("{fenced} {fenced:?}").contains(PASSWORD));
}

#[tokio::test]
async fn a_remote_host_is_never_reached_without_tls() {
    let db = fresh_db().await;
    // A host name that is not loopback, connected (through hostaddr) to the test server,
    // which speaks no TLS: `sslmode=prefer` would fall back to plain text; the store refuses.
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let url = format!(
        "postgres://postgres@db.example:{port}/{}?hostaddr=127.0.0.1&sslmode=prefer",
        db.name()
    );
    let err = PgStore::connect(&url, FLEET, "a").await.unwrap_err();
    match &err {
        StateError::Postgres { action, detail, .. } => {
            assert_eq!(*action, "connect");
            assert!(detail.contains("TLS"), "{detail}");
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
    // The same server as loopback is fine without TLS.
    store(&db, "a").await;
}

#[tokio::test]
async fn tls_is_negotiated_and_an_untrusted_certificate_is_refused() {
    let db = fresh_db().await;
    let ssl: String = db
        .sql()
        .await
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get(0);
    if ssl != "on" {
        assert!(
            db.external,
            "the throwaway server should accept TLS with a certificate made by openssl: \
             install openssl (Debian: apt-get install openssl)"
        );
        eprintln!("OVHFORM_TEST_PG_URL's server has ssl off: the TLS handshake is not tested");
        return;
    }
    // Loopback, but TLS asked for: the store's rustls connector runs the handshake and the
    // platform verifier rejects the certificate, valid for both names but signed by no
    // trusted authority.
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    for host in ["127.0.0.1", "localhost"] {
        let url = format!(
            "postgres://postgres@{host}:{port}/{}?sslmode=require",
            db.name()
        );
        let err = PgStore::connect(&url, FLEET, "a").await.unwrap_err();
        match &err {
            StateError::Postgres { action, detail, .. } => {
                assert_eq!(*action, "connect");
                assert!(
                    detail.contains("invalid peer certificate"),
                    "{host}: {detail}"
                );
                assert!(detail.contains("UnknownIssuer"), "{host}: {detail}");
            }
            other => panic!("{host}: expected a refused certificate, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_arguments_are_errors_not_panics() {
    let db = fresh_db().await;
    for (fleet, holder) in [
        ("", "a"),
        ("prod", ""),
        ("has space", "a"),
        ("prod", "a\nb"),
    ] {
        let err = PgStore::connect(&db.url, fleet, holder).await.unwrap_err();
        assert!(
            matches!(err, StateError::InvalidName { .. }),
            "{fleet:?}/{holder:?}: {err:?}"
        );
        assert!(!err.to_string().contains('\n'), "escaped: {err}");
    }
    let s = store(&db, "a").await;
    for ttl in [Duration::ZERO, Duration::from_secs(7200)] {
        assert!(matches!(
            s.campaign(ttl).await,
            Err(StateError::InvalidLeaseTtl { .. })
        ));
    }
    let err = PgStore::connect("host=127.0.0.1 password=x", FLEET, "a")
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::PgUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("password=x"), "{err}");
}

/// `ovhform state fleet-secret` against PostgreSQL: stored for `ovhform run` to read, never
/// shown, refused while a daemon holds the fleet's lease and without `--replace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_stores_the_fleet_secret_in_postgres_only_as_the_leader() {
    let db = fresh_db().await;
    assert_eq!(FLEET, "prod", "the shared helper names fleet prod");
    let run = |args: &[&str], stdin: &str| crate::state_cli::fleet_secret_cmd(&db.url, args, stdin);
    let secret = "pg-fleet-secret-NEVER-SHOWN";
    let args = ["--stdin"];
    let out = tokio::task::block_in_place(|| run(&args, secret));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(!err.contains(secret) && err.contains("not shown"), "{err}");
    let reader = store(&db, "reader").await;
    assert_eq!(
        reader.fleet_secret().await.unwrap().as_deref(),
        Some(secret)
    );

    // A daemon leads: the CLI may not write, even with --replace.
    let (_daemon, _) = leader(&db, "daemon-1", LONG).await;
    let out = tokio::task::block_in_place(|| run(&["--stdin", "--replace"], "other"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("daemon-1") && err.contains("lease"), "{err}");
    assert_eq!(
        reader.fleet_secret().await.unwrap().as_deref(),
        Some(secret)
    );
    // Without --replace it is refused before any lease is asked for.
    let out = tokio::task::block_in_place(|| run(&["--stdin"], "other"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has a secret"));
}

/// Regression (found by the chaos soak, `tests/it/soak.rs`): `ovhform state show --state
/// postgres://…` took the URL for a directory and printed `[]` with exit 0, as if every
/// record of the daemons' store were lost. It reads the store the URL names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_show_reads_the_postgres_store_its_url_names() {
    let db = fresh_db().await;
    let (a, _) = leader(&db, "a", LONG).await;
    a.put_install(&rec("ns1.eu", 4)).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let url = db.url.clone();
        let home = home.path().to_path_buf();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_ovhform"))
                .args(["state", "show", "--fleet", FLEET, "--state", &url])
                .current_dir(&home)
                .env_clear()
                .env("HOME", &home)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Vec<InstallRecord> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(shown, vec![rec("ns1.eu", 4)]);
    // Nothing was created beside it: no directory named like the URL.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}
