//! Two sources of records, one answer: the state store (authoritative: written by apply on
//! the machine that applied, or shared in PostgreSQL) and the servers' IAM tags (a mirror any
//! plan with a read-only key can see — and anyone allowed to write tags can edit, a far weaker
//! right than reinstalling the server).
//!
//! Owns: the merge rule and reading tag records out of an observed fleet. Must not touch: the
//! store's files, the API, planning decisions (the planner reads what the merge says about
//! each record's source and disputes).
//!
//! **Merge rule**, per server:
//! - only in the store → believed, source `store` (a missing tag is a mirror that has not caught
//!   up yet: IAM v2 tags reach the v1 listing eventually, not at once);
//! - only in the tags → believed, source `tags` (a wipe whose only evidence it is never runs
//!   without an explicit approval naming the server);
//! - in both and agreeing on what was installed (owner, algorithm, fingerprint, OS, generation,
//!   secret digests when both have them) → the store's record, source `store`;
//! - in both and disagreeing → neither is believed silently: the store's record is kept (it is
//!   authoritative) and the disagreement is recorded in `disputes`, from which the planner
//!   plans nothing destructive and shows both claims. Times never decide: a forged tag with a
//!   later `finished` looks exactly like an install made from another state directory.
//!
//! Only `installs` come from tags; every other field of [`Records`] is the store's. A server
//! the store has forgotten but whose tags remain comes back from the tags: forgetting a server
//! for good means removing its `ovhform:` tags too (apply's `forget`).

use crate::model::{InstallRecord, Observed, RecordDispute, RecordSource, Records};

use super::StateError;
use super::tags::record_from_tags;

/// Merges `tag_records` into `store` by the rule in the module docs.
pub fn merge_records(store: Records, tag_records: Records) -> Records {
    let mut merged = store;
    merged.sources = merged
        .installs
        .keys()
        .map(|k| (k.clone(), RecordSource::Store))
        .collect();
    for (server, tagged) in tag_records.installs {
        match merged.installs.get(&server) {
            None => {
                merged.sources.insert(server.clone(), RecordSource::Tags);
                merged.installs.insert(server, tagged);
            }
            Some(kept) if agree(kept, &tagged) => {}
            Some(kept) => {
                let dispute = RecordDispute {
                    store: kept.clone(),
                    tags: tagged,
                };
                merged.disputes.insert(server, dispute);
            }
        }
    }
    merged
}

/// Whether two records say the same install happened (times, task and revision may differ:
/// a tag written a moment later, or rounded, is still the same install).
fn agree(a: &InstallRecord, b: &InstallRecord) -> bool {
    let digests = match (&a.secrets, &b.secrets) {
        (Some(x), Some(y)) => x.secrets == y.secrets && x.credentials == y.credentials,
        _ => true,
    };
    a.fleet == b.fleet
        && a.algorithm == b.algorithm
        && a.fingerprint == b.fingerprint
        && a.os == b.os
        && a.generation == b.generation
        && digests
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

    fn rec(fp: &str, finished: Option<&str>) -> InstallRecord {
        InstallRecord {
            server: "s".into(),
            fleet: crate::model::DEFAULT_FLEET.into(),
            algorithm: 2,
            fingerprint: fp.into(),
            os: "debian12_64".into(),
            generation: 0,
            revision: None,
            task_id: None,
            started: None,
            finished: finished.map(|t| t.parse().unwrap()),
            secrets: None,
            request: None,
        }
    }

    fn one(r: InstallRecord) -> Records {
        Records {
            installs: BTreeMap::from([(r.server.clone(), r)]),
            ..Default::default()
        }
    }

    #[test]
    fn the_store_is_believed_and_a_disagreeing_tag_is_a_dispute_whatever_its_time() {
        let store = rec("store", Some("2026-01-01T00:00:00Z"));
        let forged = rec("forged", Some("2026-12-01T00:00:00Z"));
        let m = merge_records(one(store.clone()), one(forged.clone()));
        assert_eq!(m.installs["s"], store);
        assert_eq!(m.sources["s"], RecordSource::Store);
        assert_eq!(
            m.disputes["s"],
            RecordDispute {
                store,
                tags: forged
            }
        );
    }

    #[test]
    fn agreeing_sources_are_no_dispute_even_with_other_times() {
        let store = rec("same", Some("2026-01-01T00:00:00Z"));
        let tag = rec("same", Some("2026-01-01T00:00:05Z"));
        let m = merge_records(one(store.clone()), one(tag));
        assert_eq!(m.installs["s"], store);
        assert!(m.disputes.is_empty());
    }

    #[test]
    fn one_sided_records_are_kept_with_their_source() {
        let only_tagged = InstallRecord {
            server: "t".into(),
            ..rec("b", None)
        };
        let m = merge_records(one(rec("a", None)), one(only_tagged));
        assert_eq!(m.installs["s"].fingerprint, "a");
        assert_eq!(m.installs["t"].fingerprint, "b");
        assert_eq!(m.sources["s"], RecordSource::Store);
        assert_eq!(m.sources["t"], RecordSource::Tags);
        // A store record whose tag has not appeared yet is simply believed.
        let m = merge_records(one(rec("a", None)), Records::default());
        assert_eq!(m.sources["s"], RecordSource::Store);
        assert!(m.disputes.is_empty());
    }
}
