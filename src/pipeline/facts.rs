//! The persisted facts cache around a detail read: load it, seed the client's in-memory caches
//! with what is still fresh, and after the read store what the client then holds.
//!
//! Owns: the conversion between the state room's opaque [`state::Facts`] and the client's typed
//! [`ovh::FactsSnapshot`], and the rule that nothing here ever fails a run (it is a cache).
//! Must not touch: HTTP (the client reads facts; this only fills and drains its caches).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ovh::{self, FactsSnapshot, Fetched};
use crate::state::{self, Fact, FactsCache, StateError};

/// The persisted facts as loaded for one run.
pub(super) struct Loaded {
    /// Everything the cache held (fresh or not); merged with the new answers on save.
    facts: state::Facts,
    /// `false` when the file must not be overwritten (a newer ovhform wrote it).
    may_save: bool,
}

/// Loads the cache (`None` when disabled by a zero TTL) and seeds `client` with its fresh
/// entries.
pub(super) fn load_and_seed(
    cache: &dyn FactsCache,
    ttl: Duration,
    now: jiff::Timestamp,
    client: &ovh::Client,
) -> Option<Loaded> {
    if ttl.is_zero() {
        return None;
    }
    let (facts, may_save) = match cache.load() {
        Ok(f) => (f, true),
        Err(e @ StateError::UnsupportedFormat { .. }) => {
            tracing::warn!("{e}; the facts cache is not used and left as it is");
            (state::Facts::default(), false)
        }
        Err(e) => {
            tracing::warn!("{e}; the facts cache is ignored (it is only a cache) and rewritten");
            (state::Facts::default(), true)
        }
    };
    let mut fresh = facts.clone();
    fresh.retain_fresh(now, ttl);
    let (snapshot, skipped) = from_state(fresh);
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "facts cache entries that are not API answers ovhform understands were ignored"
        );
    }
    let seeded = client.seed_facts(snapshot, &|at| state::facts::remaining(at, now, ttl));
    tracing::debug!(seeded, "facts seeded from the cache");
    Some(Loaded { facts, may_save })
}

/// Stores the facts `client` now holds next to what was loaded, dropping expired entries;
/// writes only when something changed. Failures are logged at debug: a read-only state
/// directory is a normal place to plan from.
pub(super) fn save(
    cache: &dyn FactsCache,
    loaded: Option<Loaded>,
    ttl: Duration,
    now: jiff::Timestamp,
    client: &ovh::Client,
) {
    let Some(Loaded { facts, may_save }) = loaded else {
        return;
    };
    if !may_save {
        return;
    }
    let mut merged = facts.clone();
    merged.merge(to_state(client.facts()));
    merged.retain_fresh(now, ttl);
    if merged == facts {
        return;
    }
    match cache.save(&merged) {
        Ok(()) => tracing::debug!(facts = merged.len(), "facts cache saved"),
        Err(e) => tracing::debug!("facts cache not saved: {e}"),
    }
}

fn to_state(s: FactsSnapshot) -> state::Facts {
    state::Facts {
        hardware: encode(s.hardware),
        compatible_templates: encode(s.compatible_templates),
        installation_templates: encode(s.installation_templates),
    }
}

fn encode<T: Serialize>(m: BTreeMap<String, Fetched<T>>) -> BTreeMap<String, Fact> {
    m.into_iter()
        .filter_map(|(k, f)| {
            let value = serde_json::to_value(&f.value).ok()?;
            Some((
                k,
                Fact {
                    fetched_at: f.fetched_at,
                    value,
                },
            ))
        })
        .collect()
}

/// The typed snapshot, and how many entries did not decode (a hand-edited or hostile file).
fn from_state(f: state::Facts) -> (FactsSnapshot, usize) {
    let mut skipped = 0;
    let snapshot = FactsSnapshot {
        hardware: decode(f.hardware, &mut skipped),
        compatible_templates: decode(f.compatible_templates, &mut skipped),
        installation_templates: decode(f.installation_templates, &mut skipped),
    };
    (snapshot, skipped)
}

fn decode<T: DeserializeOwned>(
    m: BTreeMap<String, Fact>,
    skipped: &mut usize,
) -> BTreeMap<String, Fetched<T>> {
    m.into_iter()
        .filter_map(|(k, f)| match serde_json::from_value(f.value) {
            Ok(value) => Some((
                k,
                Fetched {
                    fetched_at: f.fetched_at,
                    value,
                },
            )),
            Err(_) => {
                *skipped += 1;
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_that_do_not_decode_are_skipped_not_fatal() {
        let at: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let mut f = state::Facts::default();
        f.compatible_templates.insert(
            "ns1".into(),
            Fact {
                fetched_at: at,
                value: serde_json::json!({"ovh": ["debian12_64"]}),
            },
        );
        f.hardware.insert(
            "ns2".into(),
            Fact {
                fetched_at: at,
                value: serde_json::json!("not hardware"),
            },
        );
        let (s, skipped) = from_state(f);
        assert_eq!(skipped, 1);
        assert_eq!(
            s.compatible_templates["ns1"].value.ovh.as_deref(),
            Some(&["debian12_64".to_string()][..])
        );
        // And back: the same JSON.
        let back = to_state(s);
        assert_eq!(
            back.compatible_templates["ns1"].value["ovh"],
            serde_json::json!(["debian12_64"])
        );
    }
}
