//! The state room: what ovhform remembers about the installs it made (or adopted), where that
//! memory lives, and the lock that keeps two writers apart.
//!
//! Owns: the [`RecordStore`] trait and its backends ([`FileStore`], the default state directory;
//! [`PgStore`], PostgreSQL shared by the daemon's replicas, with its leadership lease; and
//! [`MemoryStore`] for tests), where `--state` points ([`StateLocation`]), the encoding of an install record as IAM tags on the server
//! ([`tags`]), the rule that merges records from the store with records read back from tags
//! ([`merge`]), the manifests' git revision ([`revision`]), the cache of rarely changing API
//! facts kept next to the records ([`facts`]) and the `--state` argument.
//! Must not touch: HTTP (apply writes the tags this room encodes), planning decisions, the
//! intent journal (apply's; it gets a reserved place in the state directory, see
//! `docs/operations.md` "State").
//!
//! Records are persisted generically: the whole [`Records`] value goes through serde, so fields
//! that other rooms add to it travel without this room knowing them. The one assumption made
//! about such fields is that each top-level field of `Records` is a map keyed by server name
//! (that is what lets [`forget_server`] drop a server from all of them).

use std::path::PathBuf;

use crate::model::{InstallRecord, Intent, Records};

pub mod facts;
pub mod file;
pub mod location;
pub mod merge;
pub mod pg;
pub mod revision;
pub mod tags;

pub use facts::{Fact, Facts, FactsCache, FileFacts, MemoryFacts};
pub use file::{FileStore, LockHolder, write_atomic};
pub use location::{StateLocation, redact_url};
pub use merge::{merge_records, records_from_observed};
pub use pg::{FenceReason, Lease, PgStore};
pub use revision::manifests_revision;
pub use tags::{record_from_tags, record_to_tags, replace_record_tags};

/// Default state directory, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = ".ovhform";

/// Everything that can go wrong in the state room. Every variant names the file or server it is
/// about and says how to get out of it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("`{command}` cannot use a PostgreSQL state store yet (--state {target})")]
    #[diagnostic(
        code(ovhform::state::postgres_not_here),
        help(
            "only `ovhform run` uses a PostgreSQL store for now; give `{command}` a state \
             directory, or let the daemon apply"
        )
    )]
    PostgresNotHere {
        command: &'static str,
        target: String,
    },

    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(
        code(ovhform::state::io),
        help("check that the state directory (--state / OVHFORM_STATE) exists and is writable")
    )]
    Io {
        /// What ovhform was doing, e.g. "read state file", "create state directory".
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("state path {} is not a directory", path.display())]
    #[diagnostic(
        code(ovhform::state::not_a_directory),
        help("point --state (or OVHFORM_STATE) at a directory, or remove the file in the way")
    )]
    NotADirectory { path: PathBuf },

    // The parser's message quotes the file's text: escaped, and not a `source` (a report
    // would print it again, raw, as the cause).
    #[error(
        "state file {} is corrupted: {}",
        path.display(),
        crate::escape::line(&error.to_string())
    )]
    #[diagnostic(
        code(ovhform::state::corrupt),
        help(
            "the file is not valid ovhform state JSON; restore it from a backup, or move it \
             away and let the next plan read the records back from the servers' IAM tags"
        )
    )]
    Corrupt {
        path: PathBuf,
        error: serde_json::Error,
    },

    #[error(
        "state file {} has format version {found}, this ovhform understands up to {supported}",
        path.display()
    )]
    #[diagnostic(
        code(ovhform::state::format),
        help("a newer ovhform wrote it; upgrade ovhform rather than risk losing records")
    )]
    UnsupportedFormat {
        path: PathBuf,
        found: u64,
        supported: u64,
    },

    // The parser's message quotes the file's text: escaped, and not a `source` (a report
    // would print it again, raw, as the cause).
    #[error(
        "cache file {} is corrupted: {}",
        path.display(),
        crate::escape::line(&error.to_string())
    )]
    #[diagnostic(
        code(ovhform::state::cache_corrupt),
        help("it is only a cache of API answers: it is ignored and rewritten by the next plan")
    )]
    CacheCorrupt {
        path: PathBuf,
        error: serde_json::Error,
    },

    #[error("cache file {} is larger than {max} bytes", path.display())]
    #[diagnostic(
        code(ovhform::state::too_large),
        help("it is only a cache of API answers: delete it and the next plan rebuilds it")
    )]
    CacheTooLarge { path: PathBuf, max: u64 },

    #[error("cannot encode the records for {}: {source}", path.display())]
    #[diagnostic(code(ovhform::state::encode))]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("state directory {} is locked by {holder} (lock file {})", dir.display(), lock.display())]
    #[diagnostic(
        code(ovhform::state::locked),
        help(
            "another ovhform is applying with this state directory; wait for it to finish. \
             The lock is an OS file lock, so it is released as soon as that process exits: \
             there is no stale lock to delete"
        )
    )]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        /// Who holds it, as written into the lock file by the holder.
        holder: String,
    },

    #[error("state directory {} was opened read-only (as `plan` does); cannot {action}", dir.display())]
    #[diagnostic(
        code(ovhform::state::read_only),
        help(
            "only `apply` and `run` write records; a read-only command trying to is a bug, please report it"
        )
    )]
    ReadOnly { dir: PathBuf, action: &'static str },

    #[error("the ovhform IAM tags on server {server} are unusable: {reason}")]
    #[diagnostic(
        code(ovhform::state::tags),
        help(
            "the record is ignored for this plan; the next successful apply rewrites the \
             tags, or remove the `ovhform:` tags on the server to clear them"
        )
    )]
    TagRecord { server: String, reason: String },

    #[error(
        "the record of server {server} does not fit in IAM tags: tag {key} would be {len} \
         characters (the API allows {max})"
    )]
    #[diagnostic(
        code(ovhform::state::tag_too_long),
        help("the record is still kept in the state store; only its tag mirror is skipped")
    )]
    TagValueTooLong {
        server: String,
        key: String,
        len: usize,
        max: usize,
    },

    #[error("PostgreSQL state store {target}: cannot {action}: {detail}")]
    #[diagnostic(
        code(ovhform::state::postgres),
        help(
            "check that the database is reachable, that the URL's user, password and database \
             are right, and that the user may create tables in it (the schema is migrated on \
             start)"
        )
    )]
    Postgres {
        action: &'static str,
        /// The URL, password hidden.
        target: String,
        /// The driver's message with its causes (the server's own words).
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("PostgreSQL state URL {target} is not usable: {reason}")]
    #[diagnostic(
        code(ovhform::state::postgres_url),
        help("write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require")
    )]
    PgUrl { target: String, reason: String },

    #[error("cannot set up TLS for the PostgreSQL state store {target}: {source}")]
    #[diagnostic(
        code(ovhform::state::postgres_tls),
        help("the system's CA certificates are used to verify the database's certificate")
    )]
    PgTls {
        target: String,
        #[source]
        source: rustls::Error,
    },

    #[error(
        "PostgreSQL state store {target} has schema version {found}, newer than the {supported} \
         this ovhform knows: upgrade ovhform to use it"
    )]
    #[diagnostic(
        code(ovhform::state::schema_too_new),
        help(
            "a newer ovhform migrated this database; an older one could misread or drop what \
             it wrote, so it refuses to touch it"
        )
    )]
    SchemaTooNew {
        target: String,
        found: i32,
        supported: i32,
    },

    #[error("{holder} may not {action} for fleet {fleet}: it is not the leader: {reason}")]
    #[diagnostic(
        code(ovhform::state::not_leader),
        help(
            "only the replica holding the fleet's lease writes; this one must stop acting and \
             campaign again (nothing was written)"
        )
    )]
    NotLeader {
        fleet: String,
        holder: String,
        action: &'static str,
        reason: pg::FenceReason,
    },

    #[error(
        "a lease time to live of {ttl:?} is out of range (more than 0, at most {:?})",
        pg::MAX_LEASE_TTL
    )]
    #[diagnostic(code(ovhform::state::lease_ttl))]
    InvalidLeaseTtl { ttl: std::time::Duration },

    #[error("invalid {what} name `{value}`: {rule}")]
    #[diagnostic(code(ovhform::state::invalid_name))]
    InvalidName {
        what: &'static str,
        /// As given, escaped.
        value: String,
        rule: &'static str,
    },

    #[error("the {what} of fleet {fleet} in the PostgreSQL state store is unusable: {source}")]
    #[diagnostic(
        code(ovhform::state::postgres_document),
        help(
            "the row was not written by this ovhform (or was edited by hand); restore it from \
             a backup rather than risk losing records"
        )
    )]
    PgDocument {
        fleet: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("PostgreSQL state store {target}: {action} returned nothing usable")]
    #[diagnostic(
        code(ovhform::state::postgres_unexpected),
        help("the database answered in a way this ovhform cannot explain; please report it")
    )]
    PgUnexpected {
        target: String,
        action: &'static str,
    },

    #[error("refusing an empty fleet secret for fleet {fleet}")]
    #[diagnostic(
        code(ovhform::state::fleet_secret_empty),
        help("a fleet secret keys the digests of secret values: give a long random one")
    )]
    FleetSecretEmpty { fleet: String },
}

/// What a store call returns: a boxed future, so that [`RecordStore`] stays object-safe
/// (`&dyn RecordStore`) and backends may do real I/O (files now, PostgreSQL later).
pub type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StateError>> + Send + 'a>>;

/// An edit of the records, run under the store's write lock.
pub type RecordsEdit<'a> = Box<dyn FnOnce(&mut Records) + Send + 'a>;

/// A place where records and the intent journal live. Writers hold whatever lock the backend
/// needs for as long as the store value lives, so that a whole apply is one writer.
///
/// `update` is the one primitive for records (read, change, write back, atomically as far as
/// the backend can); `put_install` and `forget` are built on it. The journal calls are durable
/// when their future completes: apply POSTs a reinstall only after `put_intent` returned.
pub trait RecordStore: Send + Sync {
    /// All records. A store that has never been written holds empty records.
    fn load(&self) -> StoreFuture<'_, Records>;

    /// Reads the records, lets `change` edit them, writes them back, and returns what was
    /// written. Fields of [`Records`] this room does not know are carried through unchanged.
    fn update<'a>(&'a self, change: RecordsEdit<'a>) -> StoreFuture<'a, Records>;

    /// Records (or replaces) the install record of `rec.server`.
    fn put_install<'a>(&'a self, rec: &'a InstallRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.update(Box::new(move |records: &mut Records| {
                records.installs.insert(rec.server.clone(), rec.clone());
            }))
            .await?;
            Ok(())
        })
    }

    /// Drops everything remembered about `server` (all per-server maps of [`Records`]).
    /// Returns whether anything was there.
    fn forget<'a>(&'a self, server: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let outcome = std::sync::Mutex::new(Ok(false));
            self.update(Box::new(|records: &mut Records| {
                *outcome
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    forget_server(records, server);
            }))
            .await?;
            outcome
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
    }

    /// Every intent in the journal, oldest first.
    fn intents(&self) -> StoreFuture<'_, Vec<Intent>>;

    /// Writes (or rewrites) `intent`, durably, before the future completes.
    fn put_intent<'a>(&'a self, intent: &'a Intent) -> StoreFuture<'a, ()>;

    /// Removes the intent `id` (its install is recorded, its task ended, or the API proved no
    /// task was created). Removing an absent intent is not an error.
    fn drop_intent<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
}

/// Removes `server` from every top-level map of `records` — including maps added to
/// [`Records`] after this function was written — by going through its JSON form.
/// Returns whether anything was removed.
pub fn forget_server(records: &mut Records, server: &str) -> Result<bool, StateError> {
    let encode_err = |source| StateError::Encode {
        path: PathBuf::from("<records in memory>"),
        source,
    };
    let mut value = serde_json::to_value(&*records).map_err(encode_err)?;
    let mut removed = false;
    if let serde_json::Value::Object(fields) = &mut value {
        for field in fields.values_mut() {
            if let serde_json::Value::Object(per_server) = field {
                removed |= per_server.remove(server).is_some();
            }
        }
    }
    if removed {
        *records = serde_json::from_value(value).map_err(encode_err)?;
    }
    Ok(removed)
}

/// An in-memory store: for tests of other rooms and for `demo`, where nothing may be written
/// outside a temp dir.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: std::sync::Mutex<Records>,
    intents: std::sync::Mutex<std::collections::BTreeMap<String, Intent>>,
}

impl MemoryStore {
    pub fn new(records: Records) -> Self {
        MemoryStore {
            records: std::sync::Mutex::new(records),
            intents: Default::default(),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic inside `change` leaves the records as they were before it or after it; both
        // are consistent values, so a poisoned lock is safe to keep using.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Intent>> {
        self.intents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RecordStore for MemoryStore {
    fn load(&self) -> StoreFuture<'_, Records> {
        let records = self.records().clone();
        Box::pin(async move { Ok(records) })
    }

    fn update<'a>(&'a self, change: RecordsEdit<'a>) -> StoreFuture<'a, Records> {
        Box::pin(async move {
            let mut guard = self.records();
            change(&mut guard);
            Ok(guard.clone())
        })
    }

    fn intents(&self) -> StoreFuture<'_, Vec<Intent>> {
        let mut v: Vec<Intent> = self.journal().values().cloned().collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Box::pin(async move { Ok(v) })
    }

    fn put_intent<'a>(&'a self, intent: &'a Intent) -> StoreFuture<'a, ()> {
        self.journal().insert(intent.id.clone(), intent.clone());
        Box::pin(async move { Ok(()) })
    }

    fn drop_intent<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.journal().remove(id);
        Box::pin(async move { Ok(()) })
    }
}

/// `--state DIR` for the subcommands that read or write records (`plan`, `apply`, `run`).
#[derive(Clone, Debug, clap::Args)]
pub struct StateArgs {
    /// Directory of ovhform's state: records of past installs, the writer's lock, the facts
    /// cache and the fleet secret (`fleet.key`). `plan` reads the records (a missing directory
    /// means no records) and writes only its facts cache.
    #[arg(
        long = "state",
        value_name = "DIR",
        env = "OVHFORM_STATE",
        default_value = DEFAULT_STATE_DIR
    )]
    pub state_dir: PathBuf,
    /// The fleet (one repository of manifests) this run is for: every record names the fleet
    /// that wrote it, and a plan acts only on its own fleet's servers.
    #[arg(long, value_name = "NAME", env = "OVHFORM_FLEET", default_value = crate::model::DEFAULT_FLEET, value_parser = parse_fleet)]
    pub fleet: String,
}

impl Default for StateArgs {
    fn default() -> Self {
        StateArgs {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            fleet: crate::model::DEFAULT_FLEET.to_string(),
        }
    }
}

/// What a fleet name may be, for messages.
pub(crate) const FLEET_RULE: &str =
    "a fleet name is 1 to 64 characters among letters, digits and _ . : / = + -";

/// A fleet name is written as an IAM tag value: 1 to 64 characters of the tag charset, no `@`
/// (the escape character).
pub(crate) fn parse_fleet(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len()) && s.chars().all(|c| tags::is_tag_char(c) && c != '@');
    if ok {
        Ok(s.to_string())
    } else {
        Err(FLEET_RULE.into())
    }
}

/// File in the state directory holding the fleet secret, when `OVHFORM_SECRET_KEY` is unset.
pub const FLEET_KEY_FILE: &str = "fleet.key";

/// A new fleet secret: 32 random bytes, hex.
pub fn new_fleet_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Writes a state directory's `fleet.key` (owner-only, atomically).
pub fn write_fleet_secret(path: &std::path::Path, secret: &str) -> Result<(), StateError> {
    file::write_atomic(path, secret.as_bytes())
}

impl StateArgs {
    /// For `plan`: no lock, nothing created.
    pub fn open_read_only(&self) -> FileStore {
        FileStore::open_read_only(&self.state_dir)
    }

    /// The facts cache of this state directory (a plan may write it; see [`facts`]).
    pub fn facts(&self) -> FileFacts {
        FileFacts::in_state_dir(&self.state_dir)
    }

    /// The fleet secret's text: `OVHFORM_SECRET_KEY` when set, else the state directory's
    /// `fleet.key` when it exists. `None`: secrets cannot be compared.
    pub fn fleet_secret(&self) -> Result<Option<String>, StateError> {
        self.dir_only("this command")?;
        if let Some(v) = std::env::var_os("OVHFORM_SECRET_KEY").filter(|v| !v.is_empty()) {
            return Ok(Some(v.to_string_lossy().into_owned()));
        }
        let path = self.state_dir.join(FLEET_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                action: "read the fleet secret",
                path,
                source,
            }),
        }
    }

    /// For `apply`/`run`: creates the directory and takes the writer's lock.
    pub fn open_locked(&self) -> Result<FileStore, StateError> {
        self.dir_only("apply")?;
        FileStore::open_locked(&self.state_dir)
    }

    /// `--state` as a PostgreSQL URL, if it is one.
    pub fn postgres_url(&self) -> Option<String> {
        match StateLocation::parse(&self.state_dir.to_string_lossy()) {
            Ok(StateLocation::Postgres(url)) => Some(url),
            _ => None,
        }
    }

    /// Refuses a PostgreSQL URL for `command` (only `run` takes one): otherwise the URL would
    /// be taken for a directory and created.
    pub fn dir_only(&self, command: &'static str) -> Result<(), StateError> {
        match self.postgres_url() {
            Some(url) => Err(StateError::PostgresNotHere {
                command,
                target: redact_url(&url),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rec(server: &str) -> InstallRecord {
        InstallRecord {
            server: server.to_string(),
            fleet: crate::model::DEFAULT_FLEET.into(),
            algorithm: 2,
            secrets: None,
            request: None,
            fingerprint: format!("sha256:{}", "a".repeat(64)),
            os: "debian12_64".into(),
            generation: 1,
            revision: None,
            task_id: Some(7),
            started: None,
            finished: None,
        }
    }

    #[test]
    fn forget_server_removes_only_that_server() {
        let mut records = Records {
            installs: BTreeMap::from([("a".into(), rec("a")), ("b".into(), rec("b"))]),
            ..Default::default()
        };
        assert!(forget_server(&mut records, "a").unwrap());
        assert_eq!(records.installs.keys().collect::<Vec<_>>(), vec!["b"]);
        assert!(!forget_server(&mut records, "a").unwrap());
    }

    #[tokio::test]
    async fn memory_store_put_forget() {
        let store = MemoryStore::default();
        store.put_install(&rec("a")).await.unwrap();
        assert_eq!(store.load().await.unwrap().installs["a"], rec("a"));
        assert!(store.forget("a").await.unwrap());
        assert!(!store.forget("a").await.unwrap());
        assert!(store.load().await.unwrap().installs.is_empty());
    }
}
