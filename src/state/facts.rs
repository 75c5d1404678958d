//! The facts cache: API answers that change rarely (hardware specifications, compatible
//! templates, installation templates), kept between runs with the wall-clock time each was
//! fetched, so repeated plans and the daemon do not read them again within a TTL.
//!
//! Owns: the [`FactsCache`] trait, its file backend ([`FileFacts`], `<state dir>/cache/facts.json`)
//! and in-memory backend ([`MemoryFacts`]), the expiry rule ([`remaining`]). Must not touch:
//! HTTP or the shape of the answers — values are opaque JSON here; the pipeline converts them
//! to and from the client's typed caches.
//!
//! It is only a cache: every failure here is something a caller logs and carries on from. That
//! is also why a plan, which otherwise opens the state directory read-only, may write this
//! file (docs/operations.md "State").

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{StateError, write_atomic};

/// Directory of caches inside the state directory.
pub const CACHE_DIR: &str = "cache";
/// Name of the facts file inside [`CACHE_DIR`].
pub const FACTS_FILE: &str = "facts.json";
/// The facts file format this build writes and the newest it reads.
pub const FACTS_FORMAT_VERSION: u64 = 1;
/// A larger facts file is not read: 1,000 servers take a few MiB, and a cache must never cost
/// more memory than it saves in requests.
pub const MAX_FACTS_BYTES: u64 = 32 * 1024 * 1024;
/// Default time a fact is reused (`plan --facts-ttl`).
pub const DEFAULT_FACTS_TTL: Duration = Duration::from_secs(24 * 3600);
/// How far in the future a fetch time may lie (clock skew between machines sharing a state
/// directory) before the entry is distrusted as if expired.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// One cached answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    /// When the API gave this answer (wall clock).
    pub fetched_at: jiff::Timestamp,
    /// The answer, as the API's JSON.
    pub value: serde_json::Value,
}

/// Everything the cache holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Hardware specifications, by service name.
    #[serde(default)]
    pub hardware: BTreeMap<String, Fact>,
    /// Compatible templates, by service name.
    #[serde(default)]
    pub compatible_templates: BTreeMap<String, Fact>,
    /// Installation templates of the catalog, by template name.
    #[serde(default)]
    pub installation_templates: BTreeMap<String, Fact>,
}

/// How much longer a fact fetched at `fetched_at` may be used at `now` with `ttl`: `None` once
/// expired, for a zero TTL, and for a fetch time further in the future than clock skew explains
/// (a hostile or broken file must not pin an answer for ever).
pub fn remaining(
    fetched_at: jiff::Timestamp,
    now: jiff::Timestamp,
    ttl: Duration,
) -> Option<Duration> {
    let age = now.duration_since(fetched_at);
    if age.is_negative() {
        let ahead = age.unsigned_abs();
        return (ahead <= MAX_CLOCK_SKEW && !ttl.is_zero()).then_some(ttl);
    }
    ttl.checked_sub(age.unsigned_abs()).filter(|d| !d.is_zero())
}

impl Facts {
    pub fn len(&self) -> usize {
        self.hardware.len() + self.compatible_templates.len() + self.installation_templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the entries [`remaining`] says are expired at `now`.
    pub fn retain_fresh(&mut self, now: jiff::Timestamp, ttl: Duration) {
        for map in self.maps_mut() {
            map.retain(|_, f| remaining(f.fetched_at, now, ttl).is_some());
        }
    }

    /// Adds `other`'s entries; for a key both hold, the later fetch wins.
    pub fn merge(&mut self, other: Facts) {
        let Facts {
            hardware,
            compatible_templates,
            installation_templates,
        } = other;
        for (mine, theirs) in self.maps_mut().into_iter().zip([
            hardware,
            compatible_templates,
            installation_templates,
        ]) {
            for (k, f) in theirs {
                match mine.get(&k) {
                    Some(old) if old.fetched_at >= f.fetched_at => {}
                    _ => {
                        mine.insert(k, f);
                    }
                }
            }
        }
    }

    fn maps_mut(&mut self) -> [&mut BTreeMap<String, Fact>; 3] {
        [
            &mut self.hardware,
            &mut self.compatible_templates,
            &mut self.installation_templates,
        ]
    }
}

/// A place where facts live between runs. Neither method is expected to be fatal to its caller:
/// errors say what went wrong so the caller can log it at the right level.
pub trait FactsCache: Send + Sync {
    /// Everything stored, expired or not (the caller filters with [`Facts::retain_fresh`]).
    /// Nothing stored yet is empty facts, not an error.
    fn load(&self) -> Result<Facts, StateError>;
    /// Replaces what is stored.
    fn save(&self, facts: &Facts) -> Result<(), StateError>;
}

/// The file on disk: a version next to the flattened facts.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FactsFile {
    format_version: u64,
    #[serde(flatten)]
    facts: Facts,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionProbe {
    format_version: u64,
}

/// `<state dir>/cache/facts.json`, written atomically with [`write_atomic`].
#[derive(Clone, Debug)]
pub struct FileFacts {
    path: PathBuf,
}

impl FileFacts {
    /// The facts file of the state directory `state_dir`. Nothing is created until a save.
    pub fn in_state_dir(state_dir: &Path) -> FileFacts {
        FileFacts {
            path: state_dir.join(CACHE_DIR).join(FACTS_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl FactsCache for FileFacts {
    fn load(&self) -> Result<Facts, StateError> {
        let io = |action: &'static str| {
            let path = self.path.clone();
            move |source| StateError::Io {
                action,
                path,
                source,
            }
        };
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Facts::default()),
            Err(e) => return Err(io("open facts cache")(e)),
        };
        // Read one byte past the cap so an oversized file is told apart from one at the cap.
        let mut bytes = Vec::new();
        file.take(MAX_FACTS_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io("read facts cache"))?;
        if bytes.len() as u64 > MAX_FACTS_BYTES {
            return Err(StateError::CacheTooLarge {
                path: self.path.clone(),
                max: MAX_FACTS_BYTES,
            });
        }
        let corrupt = |error| StateError::CacheCorrupt {
            path: self.path.clone(),
            error,
        };
        let probe: VersionProbe = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if probe.format_version > FACTS_FORMAT_VERSION {
            return Err(StateError::UnsupportedFormat {
                path: self.path.clone(),
                found: probe.format_version,
                supported: FACTS_FORMAT_VERSION,
            });
        }
        let file: FactsFile = serde_json::from_slice(&bytes).map_err(corrupt)?;
        Ok(file.facts)
    }

    fn save(&self, facts: &Facts) -> Result<(), StateError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
                action: "create cache directory",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Compact: nobody reads this file but ovhform, and it is the largest one we write.
        let bytes = serde_json::to_vec(&FactsFile {
            format_version: FACTS_FORMAT_VERSION,
            facts: facts.clone(),
        })
        .map_err(|source| StateError::Encode {
            path: self.path.clone(),
            source,
        })?;
        write_atomic(&self.path, &bytes)
    }
}

/// Facts in memory: for tests, the demo, and a daemon that keeps them in its own process.
#[derive(Debug, Default)]
pub struct MemoryFacts {
    facts: Mutex<Facts>,
}

impl MemoryFacts {
    pub fn new(facts: Facts) -> MemoryFacts {
        MemoryFacts {
            facts: Mutex::new(facts),
        }
    }
}

impl FactsCache for MemoryFacts {
    fn load(&self) -> Result<Facts, StateError> {
        Ok(self
            .facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }

    fn save(&self, facts: &Facts) -> Result<(), StateError> {
        *self
            .facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = facts.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn fact(at: &str) -> Fact {
        Fact {
            fetched_at: ts(at),
            value: serde_json::json!({"bootMode": "uefi"}),
        }
    }

    #[test]
    fn expiry_against_the_given_now() {
        let day = Duration::from_secs(24 * 3600);
        let fetched = ts("2026-11-01T00:00:00Z");
        assert_eq!(
            remaining(fetched, ts("2026-11-01T06:00:00Z"), day),
            Some(Duration::from_secs(18 * 3600))
        );
        assert_eq!(remaining(fetched, ts("2026-11-02T00:00:00Z"), day), None);
        assert_eq!(remaining(fetched, ts("2026-11-03T00:00:00Z"), day), None);
        assert_eq!(
            remaining(fetched, fetched, Duration::ZERO),
            None,
            "0 disables"
        );
        // A little in the future is skew; far in the future is not trusted.
        assert_eq!(
            remaining(fetched, ts("2026-10-31T23:58:00Z"), day),
            Some(day)
        );
        assert_eq!(remaining(fetched, ts("2026-10-31T00:00:00Z"), day), None);
    }

    #[test]
    fn retain_and_merge() {
        let mut a = Facts::default();
        a.hardware
            .insert("old".into(), fact("2026-10-01T00:00:00Z"));
        a.hardware
            .insert("both".into(), fact("2026-11-01T00:00:00Z"));
        let mut b = Facts::default();
        b.hardware
            .insert("both".into(), fact("2026-11-01T05:00:00Z"));
        b.installation_templates
            .insert("debian12_64".into(), fact("2026-11-01T05:00:00Z"));
        a.merge(b);
        assert_eq!(a.hardware["both"].fetched_at, ts("2026-11-01T05:00:00Z"));
        assert_eq!(a.len(), 3);
        a.retain_fresh(ts("2026-11-01T12:00:00Z"), DEFAULT_FACTS_TTL);
        assert_eq!(a.hardware.keys().collect::<Vec<_>>(), ["both"]);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn file_round_trip_missing_corrupt_oversized_and_newer() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileFacts::in_state_dir(&dir.path().join("state"));
        assert_eq!(cache.load().unwrap(), Facts::default(), "missing is empty");
        let mut facts = Facts::default();
        facts
            .hardware
            .insert("ns1".into(), fact("2026-11-01T00:00:00Z"));
        cache.save(&facts).unwrap();
        assert_eq!(cache.load().unwrap(), facts);

        std::fs::write(cache.path(), b"{\"formatVersion\": 1, \"hardware\": [").unwrap();
        assert!(matches!(cache.load(), Err(StateError::CacheCorrupt { .. })));

        std::fs::write(cache.path(), br#"{"formatVersion": 9}"#).unwrap();
        assert!(matches!(
            cache.load(),
            Err(StateError::UnsupportedFormat { found: 9, .. })
        ));

        let f = std::fs::File::create(cache.path()).unwrap();
        f.set_len(MAX_FACTS_BYTES + 10).unwrap();
        assert!(matches!(
            cache.load(),
            Err(StateError::CacheTooLarge { .. })
        ));
    }
}
