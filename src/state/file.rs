//! The default record store: a state directory on the local file system.
//!
//! Owns: the directory layout, atomic writes and the writer's lock. Must not touch: what the
//! records mean (plain serde of [`Records`]), the intent journal (apply writes it, with
//! [`write_atomic`], into the place reserved below).
//!
//! Layout of the state directory (default `.ovhform/`):
//! - `records.json` — all records: `{"formatVersion": 1, "installs": {...}, ...}`. One file,
//!   because writes are rare (after an install) and one atomic rename then updates any number
//!   of servers consistently; a 1,000-server file is a few hundred KiB.
//! - `lock` — an OS file lock (`flock`) held by the one writer for its whole run; it contains
//!   the holder's pid, host and start time so that a second writer can say who holds it.
//! - `journal/` — apply's intent journal: one `<intent id>.json` per reinstall about to be, or
//!   being, installed; written (atomically, fsynced) before the reinstall POST and removed once
//!   the install is recorded or the API proved no task was created.
//!
//! Readers (`plan`) take no lock: every write is a rename of a complete, fsynced file, so a
//! reader sees the old or the new records, never half of them. The directory is created 0700
//! and every file 0600: records and intents say what is installed where.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RecordStore, RecordsEdit, StateError, StoreFuture};
use crate::model::{Intent, Records};

/// Name of the records file inside the state directory.
pub const RECORDS_FILE: &str = "records.json";
/// Name of the lock file inside the state directory.
pub const LOCK_FILE: &str = "lock";
/// Apply's intent journal.
pub const JOURNAL_DIR: &str = "journal";
/// The records file format this build writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// The records file on disk: a version number next to the flattened records, so that fields
/// added to [`Records`] appear as new top-level keys.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordsFile {
    format_version: u64,
    #[serde(flatten)]
    records: Records,
}

/// Only the version, read first so that a newer file is refused with a clear message instead
/// of a confusing shape error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionProbe {
    format_version: u64,
}

/// Who holds the writer's lock, as written into the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub since: jiff::Timestamp,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} since {}",
            self.pid, self.host, self.since
        )
    }
}

impl LockHolder {
    fn current() -> Self {
        LockHolder {
            pid: std::process::id(),
            host: host_name(),
            since: jiff::Timestamp::now(),
        }
    }
}

/// The state directory. Opened either read-only (no lock, may not exist) or as the writer
/// (directory created, lock held until this value is dropped).
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    /// `Some` for the writer: the open, locked lock file. Dropping it releases the lock.
    lock: Option<File>,
}

impl FileStore {
    /// For `plan`: takes no lock and creates nothing. A missing directory or records file reads
    /// as empty records; writes are refused with [`StateError::ReadOnly`].
    pub fn open_read_only(dir: impl Into<PathBuf>) -> FileStore {
        FileStore {
            dir: dir.into(),
            lock: None,
        }
    }

    /// For `apply`: creates the directory if needed and takes the writer's lock without
    /// waiting. A second writer gets [`StateError::Locked`] naming the holder.
    pub fn open_locked(dir: impl Into<PathBuf>) -> Result<FileStore, StateError> {
        let dir = dir.into();
        if dir.exists() && !dir.is_dir() {
            return Err(StateError::NotADirectory { path: dir });
        }
        create_private_dir(&dir).map_err(|source| StateError::Io {
            action: "create state directory",
            path: dir.clone(),
            source,
        })?;
        let lock_path = dir.join(LOCK_FILE);
        let io_err = |action| {
            let path = lock_path.clone();
            move |source| StateError::Io {
                action,
                path,
                source,
            }
        };
        // No truncate on open: until we hold the lock, the contents belong to the holder.
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        private_file(&mut opts);
        let mut file = opts.open(&lock_path).map_err(io_err("open lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Best effort: the holder may be between taking the lock and writing its name.
                let _ = file.read_to_string(&mut text);
                let holder = match serde_json::from_str::<LockHolder>(&text) {
                    Ok(h) => h.to_string(),
                    Err(_) => "another process (it has not written its name yet)".to_string(),
                };
                return Err(StateError::Locked {
                    dir,
                    lock: lock_path,
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(io_err("lock")(source));
            }
        }
        let holder =
            serde_json::to_vec(&LockHolder::current()).map_err(|source| StateError::Encode {
                path: lock_path.clone(),
                source,
            })?;
        file.set_len(0).map_err(io_err("truncate lock file"))?;
        file.rewind().map_err(io_err("rewind lock file"))?;
        file.write_all(&holder)
            .map_err(io_err("write holder into lock file"))?;
        file.sync_data().map_err(io_err("sync lock file"))?;
        Ok(FileStore {
            dir,
            lock: Some(file),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the records file.
    pub fn records_path(&self) -> PathBuf {
        self.dir.join(RECORDS_FILE)
    }

    /// Whether this store holds the writer's lock.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    fn read_records(&self) -> Result<Records, StateError> {
        if self.dir.exists() && !self.dir.is_dir() {
            return Err(StateError::NotADirectory {
                path: self.dir.clone(),
            });
        }
        let path = self.records_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Records::default()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read state file",
                    path,
                    source,
                });
            }
        };
        decode_records(&path, &bytes)
    }

    fn write_records(&self, records: &Records) -> Result<(), StateError> {
        let path = self.records_path();
        let bytes = encode_records(records).map_err(|source| StateError::Encode {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    }
}

/// The records file's bytes as [`FileStore`] writes them (pretty JSON, final newline).
pub fn encode_records(records: &Records) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(&RecordsFile {
        format_version: FORMAT_VERSION,
        records: records.clone(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The records of a records file's bytes (`path` only names it in errors): a syntax or shape
/// error, or a newer format, is an error; fields the file predates read as their defaults.
/// Pure: the fuzz target `records` drives it.
pub fn decode_records(path: &Path, bytes: &[u8]) -> Result<Records, StateError> {
    let path = path.to_path_buf();
    let corrupt = |error| StateError::Corrupt {
        path: path.clone(),
        error,
    };
    // Syntax first: these errors carry the line and column.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    let probe = VersionProbe::deserialize(&value).map_err(corrupt)?;
    if probe.format_version > FORMAT_VERSION {
        return Err(StateError::UnsupportedFormat {
            path: path.clone(),
            found: probe.format_version,
            supported: FORMAT_VERSION,
        });
    }
    // Fields added to `Records` after the file was written are absent from it: start from
    // the JSON of empty records so that they read as their defaults instead of failing.
    let mut merged = serde_json::to_value(Records::default()).map_err(corrupt)?;
    if let (serde_json::Value::Object(base), serde_json::Value::Object(file)) = (&mut merged, value)
    {
        base.extend(file.into_iter().filter(|(k, _)| k != "formatVersion"));
    }
    match serde_json::from_value::<Records>(merged) {
        Ok(records) => Ok(records),
        // A shape error from a `Value` has no position; parsing the bytes again gives one.
        Err(e) => Err(corrupt(
            serde_json::from_slice::<RecordsFile>(bytes)
                .err()
                .unwrap_or(e),
        )),
    }
}

impl FileStore {
    fn journal_dir(&self) -> PathBuf {
        self.dir.join(JOURNAL_DIR)
    }

    fn intent_path(&self, id: &str) -> PathBuf {
        // Ids are `<server>@<ms>`; anything outside a safe file-name set is replaced, so an
        // id can never name a path outside the journal.
        let name: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.journal_dir().join(format!("{name}.json"))
    }

    fn writable(&self, action: &'static str) -> Result<(), StateError> {
        if self.lock.is_none() {
            return Err(StateError::ReadOnly {
                dir: self.dir.clone(),
                action,
            });
        }
        Ok(())
    }

    fn read_intents(&self) -> Result<Vec<Intent>, StateError> {
        let dir = self.journal_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read the intent journal",
                    path: dir,
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StateError::Io {
                action: "read the intent journal",
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let is_intent = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_intent {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| StateError::Io {
                action: "read an intent",
                path: path.clone(),
                source,
            })?;
            // A journal entry is never skipped: an unreadable one could be a reinstall in
            // flight, and forgetting it could wipe a server twice.
            let intent: Intent =
                serde_json::from_slice(&bytes).map_err(|error| StateError::Corrupt {
                    path: path.clone(),
                    error,
                })?;
            out.push(intent);
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

impl RecordStore for FileStore {
    fn load(&self) -> StoreFuture<'_, Records> {
        Box::pin(async move { self.read_records() })
    }

    fn update<'a>(&'a self, change: RecordsEdit<'a>) -> StoreFuture<'a, Records> {
        Box::pin(async move {
            self.writable("write records")?;
            let mut records = self.read_records()?;
            change(&mut records);
            self.write_records(&records)?;
            Ok(records)
        })
    }

    fn intents(&self) -> StoreFuture<'_, Vec<Intent>> {
        Box::pin(async move { self.read_intents() })
    }

    fn put_intent<'a>(&'a self, intent: &'a Intent) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.writable("journal an intent")?;
            let dir = self.journal_dir();
            create_private_dir(&dir).map_err(|source| StateError::Io {
                action: "create the intent journal",
                path: dir.clone(),
                source,
            })?;
            let path = self.intent_path(&intent.id);
            let mut bytes =
                serde_json::to_vec_pretty(intent).map_err(|source| StateError::Encode {
                    path: path.clone(),
                    source,
                })?;
            bytes.push(b'\n');
            write_atomic(&path, &bytes)
        })
    }

    fn drop_intent<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.writable("drop an intent")?;
            let path = self.intent_path(id);
            match std::fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.journal_dir()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StateError::Io {
                    action: "remove an intent",
                    path,
                    source,
                }),
            }
        })
    }
}

/// Creates `dir` (and its parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// New files readable and writable by their owner only.
fn private_file(opts: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = opts;
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(file) = &self.lock {
            // Still locked here, so clearing the holder's name cannot race another writer;
            // closing the file right after releases the lock.
            let _ = file.set_len(0);
        }
    }
}

/// Replaces `path` with `bytes` so that a reader (or a crash) sees the old or the new contents,
/// never a mix: write a temp file in the same directory, fsync it, rename it over `path`, fsync
/// the directory so the rename itself is durable. For the records file and apply's journal.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_string());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let io_err = |action: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    };
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        private_file(&mut opts);
        let mut file = opts.open(&tmp).map_err(io_err("create temp file", &tmp))?;
        file.write_all(bytes)
            .map_err(io_err("write temp file", &tmp))?;
        file.sync_all().map_err(io_err("sync temp file", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io_err("replace", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Leave no temp file behind; the error already names what failed.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StateError::Io {
            action: "sync directory",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StateError> {
    // Directories cannot be opened as files here; the rename is as durable as the OS makes it.
    Ok(())
}

/// The host name for the lock file, without a crate: Linux exposes it in /proc, containers
/// and shells usually set `HOSTNAME`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
    }

    #[test]
    fn write_atomic_into_missing_dir_names_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("f.json");
        let err = write_atomic(&path, b"x").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("create temp file"), "{msg}");
        assert!(msg.contains("missing"), "{msg}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn state_files_are_private_and_the_journal_survives_reopening() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let store = FileStore::open_locked(&state).unwrap();
        let intent = Intent {
            id: "ns1.eu@1700000000000".into(),
            server: "ns1.eu".into(),
            fleet: "default".into(),
            fingerprint: format!("sha256:{}", "a".repeat(64)),
            request_digest: format!("sha256:{}", "b".repeat(64)),
            os: "debian12_64".into(),
            generation: 1,
            created: "2026-11-29T10:00:00Z".parse().unwrap(),
            plan_id: None,
            state: crate::model::IntentState::Journaled,
        };
        store.put_intent(&intent).await.unwrap();
        store.update(Box::new(|_| {})).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join(JOURNAL_DIR)), 0o700);
        assert_eq!(mode(&state.join(RECORDS_FILE)), 0o600);
        assert_eq!(mode(&state.join(LOCK_FILE)), 0o600);
        assert_eq!(
            mode(&state.join(JOURNAL_DIR).join("ns1.eu@1700000000000.json")),
            0o600
        );
        drop(store);
        // Another run (or a reader) sees it.
        let reader = FileStore::open_read_only(&state);
        assert_eq!(reader.intents().await.unwrap(), vec![intent.clone()]);
        assert!(reader.drop_intent(&intent.id).await.is_err(), "read-only");
        let store = FileStore::open_locked(&state).unwrap();
        store.drop_intent(&intent.id).await.unwrap();
        store.drop_intent(&intent.id).await.unwrap();
        assert!(store.intents().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_intent_is_an_error_not_a_forgotten_reinstall() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open_locked(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join(JOURNAL_DIR)).unwrap();
        std::fs::write(dir.path().join(JOURNAL_DIR).join("x.json"), b"{trunc").unwrap();
        assert!(matches!(
            store.intents().await,
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn lock_file_names_the_holder_and_is_cleared_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open_locked(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        let holder: LockHolder = serde_json::from_str(&text).unwrap();
        assert_eq!(holder.pid, std::process::id());
        drop(store);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            ""
        );
    }
}
