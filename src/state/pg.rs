//! The PostgreSQL record store: the records, the intent journal and the fleet secret of a
//! fleet in a database that several ovhform replicas share, and the leadership lease that lets
//! exactly one of them write.
//!
//! Owns: the connection (TLS choice, the password kept out of every message), the schema and
//! its embedded migrations, the lease (campaign, renewal, resignation, judged by the database's
//! clock) and the fencing of every write. Must not touch: what the records mean (plain serde of
//! [`Records`], as the file store), when to campaign or renew (the daemon's loop), the API.
//!
//! Fencing: a store that has won the lease remembers its token; every write is one
//! transaction that first locks the fleet's lease row (`SELECT … FOR UPDATE`) and goes on only
//! if the row still names this holder with this token and has not expired by the database's
//! clock. A takeover needs the same row lock, so each write is ordered either before the
//! takeover (and was the leader's) or after it (and fails with [`StateError::NotLeader`],
//! changing nothing). All writes go through `PgStore::write`, the one place that opens a
//! write transaction.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

use super::location::redact_url;
use super::{RecordStore, RecordsEdit, StateError, StoreFuture};
use crate::model::{Intent, Records};

mod tls;

/// The schema's migrations, in order; migration `i` brings the schema to version `i + 1`.
/// Append only: a released migration is never edited, a change is a new one.
const MIGRATIONS: &[&str] = &[
    // 1: one JSON document of records per fleet (unknown top-level fields carried through),
    // the intent journal, the fleet secret and the lease.
    r#"
    CREATE TABLE ovhform_records (
        fleet      text PRIMARY KEY,
        doc        jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE ovhform_intents (
        fleet   text NOT NULL,
        id      text NOT NULL,
        created timestamptz NOT NULL,
        doc     jsonb NOT NULL,
        PRIMARY KEY (fleet, id)
    );
    CREATE TABLE ovhform_fleet_secrets (
        fleet  text PRIMARY KEY,
        secret text NOT NULL
    );
    CREATE TABLE ovhform_leases (
        fleet      text PRIMARY KEY,
        holder     text NOT NULL,
        token      bigint NOT NULL CHECK (token >= 0),
        expires_at timestamptz NOT NULL
    );
    "#,
];

/// The schema version this build creates and the newest it accepts.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Key of the advisory lock that serialises migrations, so that replicas starting together do
/// not race to create the same tables ("ovhform" in ASCII).
const MIGRATION_LOCK: i64 = 0x006f_7668_666f_726d;

/// The version table, created outside the numbered migrations since it records them.
const SCHEMA_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS ovhform_schema (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        version   integer NOT NULL
    );
    INSERT INTO ovhform_schema (version) VALUES (0) ON CONFLICT DO NOTHING;
";

/// Session settings of every connection:
/// - `synchronous_commit on`: a committed write is durable (the journal's promise), whatever
///   the server's or the URL's default;
/// - `idle_in_transaction_session_timeout 2s`: a replica paused (SIGSTOP, a frozen VM) inside
///   a write transaction loses its session, so its lock on the lease row cannot hold a
///   takeover back for longer than that, and its write is rolled back;
/// - `lock_timeout 5s`: longer than the above, so a campaign waits out a paused holder
///   instead of failing, but never hangs;
/// - `statement_timeout 30s`: no statement of this store is anywhere near that.
const SESSION_SETTINGS: &str = "
    SET synchronous_commit TO on;
    SET idle_in_transaction_session_timeout TO '2s';
    SET lock_timeout TO '5s';
    SET statement_timeout TO '30s';
";

/// Locks the fleet's lease row; every write and every campaign starts with it.
const LOCK_LEASE: &str =
    "SELECT holder, token, expires_at FROM ovhform_leases WHERE fleet = $1 FOR UPDATE";

/// The longest lease accepted: a lost leader blocks its fleet for up to this long.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);

/// How long a connection attempt may take when the URL sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lease {
    /// This store holds the lease until `until` (database clock) and may write until then.
    /// `token` grows by one at every change of hands and stays the same across renewals.
    Leader { token: u64, until: jiff::Timestamp },
    /// Another holder has a live lease until `until`; this store may not write.
    Standby {
        leader: String,
        until: jiff::Timestamp,
    },
}

impl Lease {
    pub fn is_leader(&self) -> bool {
        matches!(self, Lease::Leader { .. })
    }

    /// When the lease (this store's or the leader's) expires, by the database's clock.
    pub fn until(&self) -> jiff::Timestamp {
        match self {
            Lease::Leader { until, .. } | Lease::Standby { until, .. } => *until,
        }
    }
}

/// Why a write was refused ([`StateError::NotLeader`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceReason {
    /// This store holds no lease: it never won one, resigned, or lost its last campaign.
    NoLease,
    /// The lease has changed hands since this store won it.
    Taken { leader: String, token: u64 },
    /// This store's lease ran out (database clock) and was not renewed in time.
    Expired { at: jiff::Timestamp },
    /// The fleet has no lease row at all (someone deleted it by hand).
    Vacant,
}

impl std::fmt::Display for FenceReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FenceReason::NoLease => f.write_str(
                "this replica holds no lease (it never won one, resigned, or lost its last campaign)",
            ),
            FenceReason::Taken { leader, token } => {
                write!(f, "the lease is now held by {leader} (token {token})")
            }
            FenceReason::Expired { at } => write!(f, "its lease expired at {at}"),
            FenceReason::Vacant => f.write_str("the fleet has no lease row"),
        }
    }
}

/// Records, journal and fleet secret of one fleet in PostgreSQL, written only under the lease.
///
/// One connection, re-opened on the next call after it broke; calls of one store run one at a
/// time. Reads need no lease.
pub struct PgStore {
    fleet: String,
    holder: String,
    /// The URL with its password hidden: what messages and logs show.
    target: String,
    config: Config,
    /// `None`: plain TCP (a loopback host, or `sslmode=disable`).
    tls: Option<tls::MakeRustls>,
    client: tokio::sync::Mutex<Client>,
    /// The token of the lease this store won; `None` until it wins one, after it resigns or
    /// after a campaign that found another leader.
    won: std::sync::Mutex<Option<u64>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("fleet", &self.fleet)
            .field("holder", &self.holder)
            .field("token", &self.won_token())
            .finish_non_exhaustive()
    }
}

/// One write, run by `PgStore::write` inside its fenced transaction.
enum Write<'a> {
    Records(RecordsEdit<'a>),
    PutIntent(&'a Intent),
    DropIntent(&'a str),
    SetSecret(&'a str),
    EnsureSecret,
}

/// What a write returns.
enum Written {
    Records(Records),
    Secret(String),
    Nothing,
}

impl PgStore {
    /// Connects to the database of `url` (a `postgres://` or `postgresql://` URL) for `fleet`,
    /// as `holder` (the name this replica campaigns under: unique per replica, e.g. host and
    /// pid), and brings the schema up to date.
    ///
    /// TLS: a loopback host (or a Unix socket) is reached in plain TCP unless the URL says
    /// `sslmode=require`; any other host only over TLS with a certificate the system trusts
    /// (`sslmode=prefer`, the default, is raised to `require`, so nothing can downgrade it),
    /// unless the URL says `sslmode=disable`.
    pub async fn connect(url: &str, fleet: &str, holder: &str) -> Result<PgStore, StateError> {
        check_name(
            "fleet",
            fleet,
            super::parse_fleet(fleet).is_ok(),
            super::FLEET_RULE,
        )?;
        check_name("holder", holder, is_holder(holder), HOLDER_RULE)?;
        let (config, tls, target) = prepare(url)?;
        let mut client = open(&config, tls.as_ref(), &target).await?;
        migrate(&mut client, &target).await?;
        Ok(PgStore {
            fleet: fleet.to_string(),
            holder: holder.to_string(),
            target,
            config,
            tls,
            client: tokio::sync::Mutex::new(client),
            won: std::sync::Mutex::new(None),
        })
    }

    /// Connects to `url` as [`PgStore::connect`] would (same TLS choice, same session
    /// settings) and reads the schema version, changing nothing: no migration, no lease.
    /// `Ok(None)`: no ovhform schema yet (`ovhform run` creates it).
    pub async fn probe(url: &str) -> Result<Option<i32>, StateError> {
        let (config, tls, target) = prepare(url)?;
        let client = open(&config, tls.as_ref(), &target).await?;
        schema_version(&client, &target).await
    }

    pub fn fleet(&self) -> &str {
        &self.fleet
    }
}

/// The connection settings of `url`, the TLS to use, and the URL as messages show it.
fn prepare(url: &str) -> Result<(Config, Option<tls::MakeRustls>, String), StateError> {
    let target = redact_url(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StateError::PgUrl {
            target,
            reason: "not a postgres:// or postgresql:// URL".into(),
        });
    }
    let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
        // The parser's messages name options and byte offsets, never values.
        StateError::PgUrl {
            target: target.clone(),
            reason: error_chain(&e),
        }
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("ovhform");
    }
    let tls = match choose_tls(&config) {
        TlsChoice::Plain => {
            config.ssl_mode(SslMode::Disable);
            None
        }
        TlsChoice::PlainRemote => {
            tracing::warn!(
                target = %target,
                "sslmode=disable: talking to a remote PostgreSQL without TLS"
            );
            None
        }
        TlsChoice::Verified => {
            config.ssl_mode(SslMode::Require);
            Some(tls::MakeRustls::new().map_err(|source| StateError::PgTls {
                target: target.clone(),
                source,
            })?)
        }
    };
    Ok((config, tls, target))
}

impl PgStore {
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The database URL with its password hidden.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Campaigns for the fleet's lease for `ttl` (at most [`MAX_LEASE_TTL`]), by the database's
    /// clock: renews this holder's live lease (same token), takes a free or expired one (the
    /// token plus one), or reports the live leader. A leader renews well before `until` (every
    /// `ttl / 3`); a standby campaigns at its polling interval.
    pub async fn campaign(&self, ttl: Duration) -> Result<Lease, StateError> {
        let ttl_ms = match i64::try_from(ttl.as_millis()) {
            Ok(ms) if ms > 0 && ttl <= MAX_LEASE_TTL => ms,
            _ => return Err(StateError::InvalidLeaseTtl { ttl }),
        };
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.pg("begin a campaign"))?;
        // A first row for the fleet, long expired, so that the row lock below always has a
        // row to lock; `epoch` rather than -infinity, which no timestamp type can read back.
        tx.execute(
            "INSERT INTO ovhform_leases (fleet, holder, token, expires_at) \
             VALUES ($1, '', 0, 'epoch') ON CONFLICT (fleet) DO NOTHING",
            &[&self.fleet],
        )
        .await
        .map_err(self.pg("create the lease"))?;
        let Some(LeaseRow {
            holder,
            expires_at,
            now,
            ..
        }) = lock_lease(&tx, &self.fleet)
            .await
            .map_err(self.pg("lock the lease"))?
        else {
            return Err(self.unexpected("lock the lease"));
        };
        let live = expires_at > now;
        let increment: i64 = if live && holder == self.holder {
            0
        } else if !live {
            1
        } else {
            tx.commit().await.map_err(self.pg("end a campaign"))?;
            *self.won_slot() = None;
            return Ok(Lease::Standby {
                leader: holder,
                until: expires_at,
            });
        };
        let row = tx
            .query_one(
                "UPDATE ovhform_leases SET holder = $2, token = token + $3::bigint, \
                 expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond' \
                 WHERE fleet = $1 RETURNING token, expires_at",
                &[&self.fleet, &self.holder, &increment, &ttl_ms],
            )
            .await
            .map_err(self.pg("take the lease"))?;
        let token: i64 = row.try_get(0).map_err(self.pg("read the lease"))?;
        let until: jiff::Timestamp = row.try_get(1).map_err(self.pg("read the lease"))?;
        tx.commit().await.map_err(self.pg("commit the lease"))?;
        // Only after the commit: an uncommitted lease must never let a write through.
        let token = u64::try_from(token).unwrap_or_default();
        *self.won_slot() = Some(token);
        Ok(Lease::Leader { token, until })
    }

    /// Gives the lease up at once (a graceful shutdown), so that a standby's next campaign
    /// takes over without waiting for it to expire. From now on this store writes nothing until
    /// it wins again. Returns whether a live lease of this store was released.
    pub async fn resign(&self) -> Result<bool, StateError> {
        // Before anything else: even if the database cannot be reached, no write may follow.
        let Some(token) = self.won_slot().take() else {
            return Ok(false);
        };
        let token = i64::try_from(token).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // Expired now rather than deleted: the token keeps growing across holders.
        let released = client
            .execute(
                "UPDATE ovhform_leases SET expires_at = clock_timestamp() \
                 WHERE fleet = $1 AND holder = $2 AND token = $3 \
                 AND expires_at > clock_timestamp()",
                &[&self.fleet, &self.holder, &token],
            )
            .await
            .map_err(self.pg("resign the lease"))?;
        Ok(released == 1)
    }

    /// The fleet secret, if one was stored. Never logged.
    pub async fn fleet_secret(&self) -> Result<Option<String>, StateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT secret FROM ovhform_fleet_secrets WHERE fleet = $1",
                &[&self.fleet],
            )
            .await
            .map_err(self.pg("read the fleet secret"))?;
        row.map(|r| r.try_get::<_, String>(0))
            .transpose()
            .map_err(self.pg("read the fleet secret"))
    }

    /// The fleet secret, created (32 random bytes, hex) if there is none yet. A write: only the
    /// leader may create it.
    pub async fn ensure_fleet_secret(&self) -> Result<String, StateError> {
        match self
            .write("create the fleet secret", Write::EnsureSecret)
            .await?
        {
            Written::Secret(secret) => Ok(secret),
            _ => Err(self.unexpected("create the fleet secret")),
        }
    }

    /// Stores `secret` as the fleet secret (e.g. an existing `fleet.key` moved into the
    /// database), replacing any other. Only the leader may.
    pub async fn set_fleet_secret(&self, secret: &str) -> Result<(), StateError> {
        if secret.trim().is_empty() {
            return Err(StateError::FleetSecretEmpty {
                fleet: self.fleet.clone(),
            });
        }
        self.write("store the fleet secret", Write::SetSecret(secret))
            .await
            .map(drop)
    }

    fn won_slot(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        // A plain value: a panic elsewhere cannot leave it half written.
        self.won
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn won_token(&self) -> Option<u64> {
        *self.won_slot()
    }

    /// The connection, opened again if it broke (a database restart, a failover, a session
    /// killed for idling in a transaction).
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, StateError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = open(&self.config, self.tls.as_ref(), &self.target).await?;
        }
        Ok(client)
    }

    fn pg(&self, action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StateError + '_ {
        move |source| pg_error(action, &self.target, source)
    }

    fn doc_error(&self, what: String) -> impl FnOnce(serde_json::Error) -> StateError + '_ {
        move |source| StateError::PgDocument {
            fleet: self.fleet.clone(),
            what,
            source,
        }
    }

    fn unexpected(&self, action: &'static str) -> StateError {
        StateError::PgUnexpected {
            target: self.target.clone(),
            action,
        }
    }

    fn not_leader(&self, action: &'static str, reason: FenceReason) -> StateError {
        StateError::NotLeader {
            fleet: self.fleet.clone(),
            holder: self.holder.clone(),
            action,
            reason,
        }
    }

    /// The one way to write: a transaction that locks the lease row, checks that this store
    /// still holds it (holder, token, not expired by the database's clock), runs `op`, and
    /// commits. Refused writes change nothing.
    async fn write(&self, action: &'static str, op: Write<'_>) -> Result<Written, StateError> {
        let Some(token) = self.won_token() else {
            return Err(self.not_leader(action, FenceReason::NoLease));
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(self.pg(action))?;
        let lease = lock_lease(&tx, &self.fleet)
            .await
            .map_err(self.pg("lock the lease"))?;
        let Some(LeaseRow {
            holder,
            token: held,
            expires_at,
            now,
        }) = lease
        else {
            return Err(self.not_leader(action, FenceReason::Vacant));
        };
        if holder != self.holder || held != token {
            return Err(self.not_leader(
                action,
                FenceReason::Taken {
                    leader: holder,
                    token: held,
                },
            ));
        }
        if expires_at <= now {
            return Err(self.not_leader(action, FenceReason::Expired { at: expires_at }));
        }
        let written = match op {
            Write::Records(change) => {
                tx.execute(
                    "INSERT INTO ovhform_records (fleet, doc) VALUES ($1, '{}'::jsonb) \
                     ON CONFLICT (fleet) DO NOTHING",
                    &[&self.fleet],
                )
                .await
                .map_err(self.pg("create the records"))?;
                let row = tx
                    .query_one(
                        "SELECT doc FROM ovhform_records WHERE fleet = $1 FOR UPDATE",
                        &[&self.fleet],
                    )
                    .await
                    .map_err(self.pg("read the records"))?;
                let doc: Value = row.try_get(0).map_err(self.pg("read the records"))?;
                let (mut records, unknown) = self.decode_records(doc)?;
                change(&mut records);
                let doc = self.encode_records(&records, unknown)?;
                tx.execute(
                    "UPDATE ovhform_records SET doc = $2, updated_at = clock_timestamp() \
                     WHERE fleet = $1",
                    &[&self.fleet, &doc],
                )
                .await
                .map_err(self.pg("write the records"))?;
                Written::Records(records)
            }
            Write::PutIntent(intent) => {
                let doc = serde_json::to_value(intent)
                    .map_err(self.doc_error(format!("intent {}", intent.id)))?;
                tx.execute(
                    "INSERT INTO ovhform_intents (fleet, id, created, doc) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (fleet, id) \
                     DO UPDATE SET created = EXCLUDED.created, doc = EXCLUDED.doc",
                    &[&self.fleet, &intent.id, &intent.created, &doc],
                )
                .await
                .map_err(self.pg("journal an intent"))?;
                Written::Nothing
            }
            Write::DropIntent(id) => {
                tx.execute(
                    "DELETE FROM ovhform_intents WHERE fleet = $1 AND id = $2",
                    &[&self.fleet, &id],
                )
                .await
                .map_err(self.pg("drop an intent"))?;
                Written::Nothing
            }
            Write::SetSecret(secret) => {
                tx.execute(
                    "INSERT INTO ovhform_fleet_secrets (fleet, secret) VALUES ($1, $2) \
                     ON CONFLICT (fleet) DO UPDATE SET secret = EXCLUDED.secret",
                    &[&self.fleet, &SecretParam(secret)],
                )
                .await
                .map_err(self.pg("store the fleet secret"))?;
                Written::Nothing
            }
            Write::EnsureSecret => {
                let fresh = super::new_fleet_secret();
                tx.execute(
                    "INSERT INTO ovhform_fleet_secrets (fleet, secret) VALUES ($1, $2) \
                     ON CONFLICT (fleet) DO NOTHING",
                    &[&self.fleet, &SecretParam(&fresh)],
                )
                .await
                .map_err(self.pg("create the fleet secret"))?;
                let row = tx
                    .query_one(
                        "SELECT secret FROM ovhform_fleet_secrets WHERE fleet = $1",
                        &[&self.fleet],
                    )
                    .await
                    .map_err(self.pg("read the fleet secret"))?;
                Written::Secret(row.try_get(0).map_err(self.pg("read the fleet secret"))?)
            }
        };
        // Committed means durable: the session runs with synchronous_commit on.
        tx.commit().await.map_err(self.pg(action))?;
        Ok(written)
    }

    /// The stored document as records, plus its top-level fields this build does not know
    /// (written by a newer ovhform), to be written back untouched. Fields missing from the
    /// document read as their defaults.
    fn decode_records(&self, doc: Value) -> Result<(Records, Map<String, Value>), StateError> {
        let what = || "records".to_string();
        let Value::Object(stored) = doc else {
            return Err(StateError::PgDocument {
                fleet: self.fleet.clone(),
                what: what(),
                source: serde::de::Error::custom("the records document is not a JSON object"),
            });
        };
        let mut known = match serde_json::to_value(Records::default()) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => Map::new(),
            Err(e) => return Err(self.doc_error(what())(e)),
        };
        let mut unknown = Map::new();
        for (key, value) in stored {
            if known.contains_key(&key) {
                known.insert(key, value);
            } else {
                unknown.insert(key, value);
            }
        }
        let records =
            serde_json::from_value(Value::Object(known)).map_err(self.doc_error(what()))?;
        Ok((records, unknown))
    }

    fn encode_records(
        &self,
        records: &Records,
        unknown: Map<String, Value>,
    ) -> Result<Value, StateError> {
        let mut doc =
            serde_json::to_value(records).map_err(self.doc_error("records".to_string()))?;
        if let Value::Object(fields) = &mut doc {
            for (key, value) in unknown {
                fields.entry(key).or_insert(value);
            }
        }
        Ok(doc)
    }
}

impl RecordStore for PgStore {
    fn load(&self) -> StoreFuture<'_, Records> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT doc FROM ovhform_records WHERE fleet = $1",
                    &[&self.fleet],
                )
                .await
                .map_err(self.pg("read the records"))?;
            match row {
                None => Ok(Records::default()),
                Some(row) => {
                    let doc: Value = row.try_get(0).map_err(self.pg("read the records"))?;
                    Ok(self.decode_records(doc)?.0)
                }
            }
        })
    }

    fn update<'a>(&'a self, change: RecordsEdit<'a>) -> StoreFuture<'a, Records> {
        Box::pin(async move {
            match self.write("write records", Write::Records(change)).await? {
                Written::Records(records) => Ok(records),
                _ => Err(self.unexpected("write records")),
            }
        })
    }

    fn intents(&self) -> StoreFuture<'_, Vec<Intent>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, doc FROM ovhform_intents WHERE fleet = $1 ORDER BY created, id",
                    &[&self.fleet],
                )
                .await
                .map_err(self.pg("read the intent journal"))?;
            let mut intents = Vec::with_capacity(rows.len());
            for row in rows {
                let id: String = row.try_get(0).map_err(self.pg("read the intent journal"))?;
                let doc: Value = row.try_get(1).map_err(self.pg("read the intent journal"))?;
                // Never skipped: an unreadable intent could be a reinstall in flight.
                intents.push(
                    serde_json::from_value(doc).map_err(self.doc_error(format!("intent {id}")))?,
                );
            }
            Ok(intents)
        })
    }

    fn put_intent<'a>(&'a self, intent: &'a Intent) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write("journal an intent", Write::PutIntent(intent))
                .await
                .map(drop)
        })
    }

    fn drop_intent<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write("drop an intent", Write::DropIntent(id))
                .await
                .map(drop)
        })
    }
}

/// The fleet secret as a query parameter. tokio-postgres logs every parameter with `Debug`
/// (through `log`, which tracing-subscriber forwards) when debug logging is on (`-vv`): this
/// one shows as a placeholder.
struct SecretParam<'a>(&'a str);

impl std::fmt::Debug for SecretParam<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<fleet secret>")
    }
}

impl tokio_postgres::types::ToSql for SecretParam<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&str as tokio_postgres::types::ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The rule for holder names, shown when one breaks it.
const HOLDER_RULE: &str =
    "a holder name is 1 to 128 characters among letters, digits and _ . : / = + - @";

fn is_holder(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/=+-@".contains(c))
}

fn check_name(
    what: &'static str,
    value: &str,
    ok: bool,
    rule: &'static str,
) -> Result<(), StateError> {
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidName {
            what,
            // Shown in an error: escaped, since it is whatever the caller was given.
            value: crate::escape::line(value).into_owned(),
            rule,
        })
    }
}

enum TlsChoice {
    /// Loopback or a Unix socket, TLS not asked for.
    Plain,
    /// A remote host with `sslmode=disable`: the operator's explicit choice.
    PlainRemote,
    /// Everything else: TLS required, certificate verified.
    Verified,
}

fn choose_tls(config: &Config) -> TlsChoice {
    let local = config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    }) && config.get_hostaddrs().iter().all(|ip| ip.is_loopback());
    match config.get_ssl_mode() {
        SslMode::Disable if local => TlsChoice::Plain,
        SslMode::Disable => TlsChoice::PlainRemote,
        SslMode::Prefer if local => TlsChoice::Plain,
        _ => TlsChoice::Verified,
    }
}

/// A connection with this store's session settings, its I/O driven by a task of its own.
async fn open(
    config: &Config,
    tls: Option<&tls::MakeRustls>,
    target: &str,
) -> Result<Client, StateError> {
    let connect_err = |source| pg_error("connect", target, source);
    let client = match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls.clone()).await.map_err(connect_err)?;
            tokio::spawn(drive(connection, target.to_string()));
            client
        }
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(connect_err)?;
            tokio::spawn(drive(connection, target.to_string()));
            client
        }
    };
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .map_err(|source| pg_error("set up the session", target, source))?;
    Ok(client)
}

/// Runs a connection until it ends; the store notices a broken one at its next call.
async fn drive<F>(connection: F, target: String)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::warn!(target = %target, error = %error_chain(&e), "PostgreSQL connection lost");
    }
}

/// The schema version the database is at; `None` when ovhform never migrated it.
async fn schema_version(client: &Client, target: &str) -> Result<Option<i32>, StateError> {
    let err = |action| move |source| pg_error(action, target, source);
    let exists: bool = client
        .query_one("SELECT to_regclass('ovhform_schema') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(err("look for the schema version table"))?;
    if !exists {
        return Ok(None);
    }
    client
        .query_one("SELECT max(version) FROM ovhform_schema", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(err("read the schema version"))
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, under an advisory lock; refuses
/// a database a newer ovhform has migrated further.
async fn migrate(client: &mut Client, target: &str) -> Result<(), StateError> {
    let err = |action| move |source| pg_error(action, target, source);
    // An up-to-date schema is only read: a database user without the right to create tables
    // (or to write the version table) can run ovhform once the owner has migrated.
    let current = schema_version(client, target).await?;
    match current {
        Some(found) if found > SCHEMA_VERSION => {
            return Err(StateError::SchemaTooNew {
                target: target.to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Some(found) if found == SCHEMA_VERSION => return Ok(()),
        _ => {}
    }
    let tx = client
        .transaction()
        .await
        .map_err(err("begin the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(err("lock the schema for migration"))?;
    tx.batch_execute(SCHEMA_TABLE)
        .await
        .map_err(err("create the schema version table"))?;
    let found: i32 = tx
        .query_one("SELECT version FROM ovhform_schema FOR UPDATE", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(err("read the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StateError::SchemaTooNew {
            target: target.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let start = usize::try_from(found).unwrap_or_default();
    for (done, migration) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.batch_execute(migration)
            .await
            .map_err(err("apply a schema migration"))?;
        let version = i32::try_from(done + 1).unwrap_or(i32::MAX);
        tx.execute("UPDATE ovhform_schema SET version = $1", &[&version])
            .await
            .map_err(err("record the schema version"))?;
        tracing::info!(target = %target, version, "PostgreSQL schema migrated");
    }
    tx.commit().await.map_err(err("commit the migration"))
}

/// The fleet's lease row, locked until the end of `tx`.
struct LeaseRow {
    holder: String,
    token: u64,
    expires_at: jiff::Timestamp,
    /// The database's clock once the lock is held.
    now: jiff::Timestamp,
}

/// Locks the lease row and reads the clock. The clock is read by a second statement: in the
/// locking one it could be evaluated before a wait for the lock, and a lease judged live then
/// may have expired by the time the lock is granted.
async fn lock_lease(
    tx: &tokio_postgres::Transaction<'_>,
    fleet: &str,
) -> Result<Option<LeaseRow>, tokio_postgres::Error> {
    let Some(row) = tx.query_opt(LOCK_LEASE, &[&fleet]).await? else {
        return Ok(None);
    };
    let now = tx
        .query_one("SELECT clock_timestamp()", &[])
        .await?
        .try_get(0)?;
    let token: i64 = row.try_get(1)?;
    Ok(Some(LeaseRow {
        holder: row.try_get(0)?,
        // Never negative (a CHECK constraint).
        token: u64::try_from(token).unwrap_or_default(),
        expires_at: row.try_get(2)?,
        now,
    }))
}

fn pg_error(action: &'static str, target: &str, source: tokio_postgres::Error) -> StateError {
    StateError::Postgres {
        action,
        target: target.to_string(),
        detail: error_chain(&source),
        source,
    }
}

/// The driver's message with its causes: its own `Display` stops at "db error", the server's
/// words are in the source.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(url: &str) -> &'static str {
        match choose_tls(&url.parse().unwrap()) {
            TlsChoice::Plain => "plain",
            TlsChoice::PlainRemote => "plain-remote",
            TlsChoice::Verified => "verified",
        }
    }

    #[test]
    fn tls_is_required_for_remote_hosts_unless_disabled() {
        assert_eq!(choice("postgres://u@127.0.0.1:5432/x"), "plain");
        assert_eq!(choice("postgres://u@localhost/x"), "plain");
        assert_eq!(choice("postgres://u@[::1]:5432/x"), "plain");
        assert_eq!(
            choice("postgres://u@127.0.0.1/x?sslmode=require"),
            "verified"
        );
        assert_eq!(choice("postgres://u@db.example/x"), "verified");
        assert_eq!(
            choice("postgres://u@db.example/x?sslmode=prefer"),
            "verified"
        );
        assert_eq!(
            choice("postgres://u@10.0.0.5/x?sslmode=disable"),
            "plain-remote"
        );
        assert_eq!(choice("postgres://u@127.0.0.1,db.example/x"), "verified");
        assert_eq!(
            choice("postgres://u@localhost/x?hostaddr=192.0.2.1"),
            "verified",
            "hostaddr is where the connection really goes"
        );
    }

    #[test]
    fn migrations_are_numbered_by_position() {
        assert_eq!(SCHEMA_VERSION, 1);
        assert!(MIGRATIONS.iter().all(|m| !m.trim().is_empty()));
    }

    #[test]
    fn the_secret_parameter_never_shows_in_the_drivers_debug_log() {
        // What tokio-postgres formats: the parameter list, each as `Debug`.
        let secret = "0123456789abcdef-fleet-secret";
        let param = SecretParam(secret);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&"prod", &param];
        let logged = format!("{params:?}");
        assert!(!logged.contains(secret), "{logged}");
        assert!(logged.contains("<fleet secret>"), "{logged}");
    }

    #[test]
    fn holder_names_are_checked() {
        assert!(is_holder("host-1.example:4242"));
        assert!(!is_holder(""));
        assert!(!is_holder("a b"));
        assert!(!is_holder(&"x".repeat(129)));
    }

    #[test]
    fn fence_reasons_say_who_holds_the_lease() {
        let r = FenceReason::Taken {
            leader: "b".into(),
            token: 7,
        };
        assert_eq!(r.to_string(), "the lease is now held by b (token 7)");
    }
}
