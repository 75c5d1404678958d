//! Two sources of records, one answer: the state store (complete, but only on the machine that
//! applied) and the servers' IAM tags (visible to any plan with a read-only key).
//!
//! Owns: the merge rule and reading tag records out of an observed fleet. Must not touch: the
//! store's files, the API.
//!
//! **Merge rule**, per server:
//! - a record in only one source is taken as it is;
//! - in both, the more recent install wins, "recent" being `finished`, else `started`, and a
//!   record with a time beating one without (an adopted baseline has no times);
//! - on a tie (same time, or both without) the store wins: it is written first and holds
//!   exactly what apply meant, while tags are a mirror that may lag or be edited by hand.
//!
//! Only `installs` come from tags; every other field of [`Records`] is the store's.
//! A server the store has forgotten but whose tags remain comes back from the tags: forgetting
//! a server for good means removing its `ovhform:` tags too (apply's `forget`).

use crate::model::{InstallRecord, Observed, Records};

use super::StateError;
use super::tags::record_from_tags;

/// Merges `tag_records` into `store` by the rule in the module docs.
pub fn merge_records(store: Records, tag_records: Records) -> Records {
    let mut merged = store;
    for (server, tagged) in tag_records.installs {
        match merged.installs.get(&server) {
            Some(kept) if recency(&tagged) <= recency(kept) => {}
            _ => {
                merged.installs.insert(server, tagged);
            }
        }
    }
    merged
}

/// `Option` orders `None` first, which is the "a time beats no time" part of the rule.
fn recency(rec: &InstallRecord) -> Option<jiff::Timestamp> {
    rec.finished.or(rec.started)
}

/// The records found in the observed servers' tags, and the servers whose `ovhform:` tags could
/// not be read (a plan shows those as warnings and goes on without their record).
pub fn records_from_observed(observed: &Observed) -> (Records, Vec<StateError>) {
    let mut records = Records::default();
    let mut problems = Vec::new();
    for (name, server) in &observed.servers {
        match record_from_tags(name, &server.tags) {
            Ok(Some(rec)) => {
                records.installs.insert(name.clone(), rec);
            }
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    (records, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rec(fp: &str, started: Option<&str>, finished: Option<&str>) -> InstallRecord {
        InstallRecord {
            server: "s".into(),
            fingerprint: fp.into(),
            os: "debian12_64".into(),
            generation: 0,
            revision: None,
            task_id: None,
            started: started.map(|t| t.parse().unwrap()),
            finished: finished.map(|t| t.parse().unwrap()),
        }
    }

    fn one(r: InstallRecord) -> Records {
        Records {
            installs: BTreeMap::from([("s".to_string(), r)]),
            ..Default::default()
        }
    }

    fn winner(store: InstallRecord, tags: InstallRecord) -> String {
        merge_records(one(store), one(tags)).installs["s"]
            .fingerprint
            .clone()
    }

    #[test]
    fn later_finish_wins_either_way() {
        let old = rec("old", None, Some("2026-01-01T00:00:00Z"));
        let new = rec("new", None, Some("2026-02-01T00:00:00Z"));
        assert_eq!(winner(old.clone(), new.clone()), "new");
        assert_eq!(winner(new, old), "new");
    }

    #[test]
    fn started_counts_when_not_finished() {
        let finished = rec("done", None, Some("2026-01-01T00:00:00Z"));
        let running = rec("running", Some("2026-01-02T00:00:00Z"), None);
        assert_eq!(winner(finished, running), "running");
    }

    #[test]
    fn a_time_beats_no_time() {
        let adopted = rec("adopted", None, None);
        let installed = rec("installed", None, Some("2026-01-01T00:00:00Z"));
        assert_eq!(winner(adopted.clone(), installed.clone()), "installed");
        assert_eq!(winner(installed, adopted), "installed");
    }

    #[test]
    fn store_wins_ties() {
        let t = Some("2026-01-01T00:00:00Z");
        assert_eq!(winner(rec("store", None, t), rec("tags", None, t)), "store");
        assert_eq!(
            winner(rec("store", None, None), rec("tags", None, None)),
            "store"
        );
    }

    #[test]
    fn one_sided_records_are_kept() {
        let store = one(rec("a", None, None));
        let only_tagged = InstallRecord {
            server: "t".into(),
            ..rec("b", None, None)
        };
        let tags = Records {
            installs: BTreeMap::from([("t".to_string(), only_tagged)]),
            ..Default::default()
        };
        let merged = merge_records(store, tags);
        assert_eq!(merged.installs["s"].fingerprint, "a");
        assert_eq!(merged.installs["t"].fingerprint, "b");
    }
}
