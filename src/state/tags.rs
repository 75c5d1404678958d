//! An install record as IAM tags on the server, so that a plan with a read-only key and no state
//! store still knows what ovhform installed.
//!
//! Owns: the tag keys and the value encoding, both ways. Must not touch: the API calls that
//! read and write tags (observe reads them into `ObservedServer.tags`, apply writes them).
//!
//! The API accepts keys matching `^[a-zA-Z0-9_.:/=+@-]{1,128}$` and values matching
//! `^[a-zA-Z0-9_.:/=+@-]{0,256}$`, and reserves keys starting with `ovh:`. Our keys all start
//! with `ovhform:` (not `ovh:`) and are plain ASCII from that set:
//!
//! | key                   | value                                              |
//! |-----------------------|----------------------------------------------------|
//! | `ovhform:format`      | `2` (the encoding version; `1` is still read)      |
//! | `ovhform:fleet`       | the fleet that owns the record (format 2)          |
//! | `ovhform:algorithm`   | fingerprint algorithm version, decimal (format 2)  |
//! | `ovhform:fingerprint` | `sha256:<64 hex>` (publishable: no secret in it)   |
//! | `ovhform:secrets`     | `hmac-sha256:<64 hex>`, keyed digest (optional)    |
//! | `ovhform:credentials` | same, of the `httpHeaders` values (optional)       |
//! | `ovhform:os`          | the template name, e.g. `debian12_64`              |
//! | `ovhform:generation`  | decimal                                            |
//! | `ovhform:revision`    | manifests' git commit (`<hex>` or `<hex>-dirty`)   |
//! | `ovhform:task`        | the reinstall task id, decimal                     |
//! | `ovhform:started`     | RFC 3339 UTC, e.g. `2026-11-23T08:43:48Z`          |
//! | `ovhform:finished`    | same                                               |
//!
//! Optional fields are omitted when unknown. A format-1 record (no owner, no algorithm) reads
//! as owned by the default fleet with algorithm 1. Per-field digests and the publishable
//! request stay in the store: they do not fit in tags. Timestamps need no escaping: RFC 3339 in UTC uses
//! only digits, `-`, `:`, `T`, `Z`, `.` and (for extreme years) `+`, all in the value set.
//! Every value still goes through one reversible escape so that any string fits the set: a
//! character outside `[a-zA-Z0-9_.:/=+-]`, and `@` itself, becomes `@XX` per UTF-8 byte
//! (upper-case hex). `@` never occurs in fingerprints, template names, revisions or times, so
//! real values read as themselves.

use std::collections::BTreeMap;

use super::StateError;
use crate::model::InstallRecord;

pub const TAG_PREFIX: &str = "ovhform:";
pub const TAG_FORMAT: &str = "ovhform:format";
pub const TAG_FLEET: &str = "ovhform:fleet";
pub const TAG_ALGORITHM: &str = "ovhform:algorithm";
pub const TAG_FINGERPRINT: &str = "ovhform:fingerprint";
pub const TAG_SECRETS: &str = "ovhform:secrets";
pub const TAG_CREDENTIALS: &str = "ovhform:credentials";
pub const TAG_KEY_CHECK: &str = "ovhform:keycheck";
pub const TAG_OS: &str = "ovhform:os";
pub const TAG_GENERATION: &str = "ovhform:generation";
pub const TAG_REVISION: &str = "ovhform:revision";
pub const TAG_TASK: &str = "ovhform:task";
pub const TAG_STARTED: &str = "ovhform:started";
pub const TAG_FINISHED: &str = "ovhform:finished";

/// Every key that belongs to the install record. Other `ovhform:` keys are left alone.
pub const RECORD_TAG_KEYS: [&str; 13] = [
    TAG_FORMAT,
    TAG_FLEET,
    TAG_ALGORITHM,
    TAG_FINGERPRINT,
    TAG_SECRETS,
    TAG_CREDENTIALS,
    TAG_KEY_CHECK,
    TAG_OS,
    TAG_GENERATION,
    TAG_REVISION,
    TAG_TASK,
    TAG_STARTED,
    TAG_FINISHED,
];

/// The encoding version written in `ovhform:format`.
pub const TAG_FORMAT_VERSION: &str = "2";

/// Longest tag key the API accepts.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Longest tag value the API accepts.
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// The escape character of the value encoding (in the API's set, absent from real values).
const ESCAPE: u8 = b'@';

/// Whether `c` is in the API's tag charset `[a-zA-Z0-9_.:/=+@-]` (keys and values alike).
pub fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '@' | '-')
}

/// Whether `key` is one the API accepts for a user tag (charset, length, not `ovh:`).
pub fn is_valid_tag_key(key: &str) -> bool {
    (1..=MAX_TAG_KEY_LEN).contains(&key.len())
        && key.chars().all(is_tag_char)
        && !key.starts_with("ovh:")
}

/// Whether `value` is one the API accepts for a tag value.
pub fn is_valid_tag_value(value: &str) -> bool {
    value.len() <= MAX_TAG_VALUE_LEN && value.chars().all(is_tag_char)
}

/// Escapes `raw` into the tag value charset (see the module docs).
pub fn escape_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if is_tag_char(c) && c != ESCAPE as char {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push(ESCAPE as char);
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    out
}

/// Reverses [`escape_value`]; the error says what is wrong with the value.
pub fn unescape_value(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == ESCAPE {
            let hex = value
                .get(i + 1..i + 3)
                .filter(|h| h.len() == 2 && h.bytes().all(|c| c.is_ascii_hexdigit()));
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(decoded) => out.push(decoded),
                None => return Err(format!("broken escape at character {}", i + 1)),
            }
            i += 3;
        } else if b.is_ascii() && is_tag_char(b as char) {
            out.push(b);
            i += 1;
        } else {
            return Err(format!(
                "character {} is outside the tag charset [a-zA-Z0-9_.:/=+@-]",
                i + 1
            ));
        }
    }
    String::from_utf8(out).map_err(|_| "escapes do not decode to UTF-8 text".to_string())
}

/// The tags that mirror `rec` on its server. Fails only when a value, once escaped, is longer
/// than the API allows (then the record stays in the store and the tag mirror is skipped).
pub fn record_to_tags(rec: &InstallRecord) -> Result<BTreeMap<String, String>, StateError> {
    let mut raw: Vec<(&str, String)> = vec![
        (TAG_FORMAT, TAG_FORMAT_VERSION.to_string()),
        (TAG_FLEET, rec.fleet.clone()),
        (TAG_ALGORITHM, rec.algorithm.to_string()),
        (TAG_FINGERPRINT, rec.fingerprint.clone()),
        (TAG_OS, rec.os.clone()),
        (TAG_GENERATION, rec.generation.to_string()),
    ];
    if let Some(rev) = &rec.revision {
        raw.push((TAG_REVISION, rev.clone()));
    }
    if let Some(task) = rec.task_id {
        raw.push((TAG_TASK, task.to_string()));
    }
    if let Some(t) = rec.started {
        raw.push((TAG_STARTED, t.to_string()));
    }
    if let Some(t) = rec.finished {
        raw.push((TAG_FINISHED, t.to_string()));
    }
    if let Some(d) = &rec.secrets {
        raw.push((TAG_SECRETS, d.secrets.clone()));
        raw.push((TAG_CREDENTIALS, d.credentials.clone()));
        if let Some(c) = &d.key_check {
            raw.push((TAG_KEY_CHECK, c.clone()));
        }
    }
    let mut tags = BTreeMap::new();
    for (key, value) in raw {
        let value = escape_value(&value);
        if value.len() > MAX_TAG_VALUE_LEN {
            return Err(StateError::TagValueTooLong {
                server: rec.server.clone(),
                key: key.to_string(),
                len: value.len(),
                max: MAX_TAG_VALUE_LEN,
            });
        }
        tags.insert(key.to_string(), value);
    }
    Ok(tags)
}

/// The full user tag map to PUT on the server (`PUT /iam/resource/{urn}` replaces all user
/// tags): the server's `existing` tags with the old record's keys replaced by `rec`'s.
/// Tags that are not the record's, including other `ovhform:` keys, are kept.
pub fn replace_record_tags(
    existing: &BTreeMap<String, String>,
    rec: &InstallRecord,
) -> Result<BTreeMap<String, String>, StateError> {
    let mut tags: BTreeMap<String, String> = existing
        .iter()
        .filter(|(k, _)| !RECORD_TAG_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(record_to_tags(rec)?);
    Ok(tags)
}

/// Reads back the record of `server` from its tags.
///
/// - no record key present → `Ok(None)` (ovhform never tagged this server);
/// - a complete, well-formed set → `Ok(Some(record))`;
/// - some keys present but the set is partial, garbled or of an unknown format version →
///   [`StateError::TagRecord`] with the reason. Never panics, whatever the tags hold.
pub fn record_from_tags(
    server: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<InstallRecord>, StateError> {
    if !RECORD_TAG_KEYS.iter().any(|k| tags.contains_key(*k)) {
        return Ok(None);
    }
    let fail = |reason: String| StateError::TagRecord {
        server: server.to_string(),
        reason,
    };
    let get = |key: &str| -> Result<Option<String>, StateError> {
        match tags.get(key) {
            None => Ok(None),
            Some(v) => unescape_value(v)
                .map(Some)
                .map_err(|why| fail(format!("tag {key} = {v:?}: {why}"))),
        }
    };
    let require = |key: &str| -> Result<String, StateError> {
        get(key)?.ok_or_else(|| {
            let present: Vec<&str> = RECORD_TAG_KEYS
                .iter()
                .copied()
                .filter(|k| tags.contains_key(*k))
                .collect();
            fail(format!(
                "tag {key} is missing (present: {}); the tags are partial",
                present.join(", ")
            ))
        })
    };
    let number = |key: &str, text: &str| -> Result<u64, StateError> {
        text.parse::<u64>()
            .map_err(|_| fail(format!("tag {key} = {text:?} is not a whole number")))
    };
    let time = |key: &str, text: &str| -> Result<jiff::Timestamp, StateError> {
        text.parse::<jiff::Timestamp>()
            .map_err(|e| fail(format!("tag {key} = {text:?} is not an RFC 3339 time: {e}")))
    };

    let format = require(TAG_FORMAT)?;
    if format != TAG_FORMAT_VERSION && format != "1" {
        return Err(fail(format!(
            "tag {TAG_FORMAT} = {format:?}: this ovhform reads formats 1 and \
             {TAG_FORMAT_VERSION} only (a newer ovhform wrote it?)"
        )));
    }
    let (fleet, algorithm) = if format == "1" {
        (crate::model::DEFAULT_FLEET.to_string(), 1)
    } else {
        let algorithm_text = require(TAG_ALGORITHM)?;
        let algorithm = u32::try_from(number(TAG_ALGORITHM, &algorithm_text)?).map_err(|_| {
            fail(format!(
                "tag {TAG_ALGORITHM} = {algorithm_text:?} is too large"
            ))
        })?;
        (require(TAG_FLEET)?, algorithm)
    };
    let secrets = match (get(TAG_SECRETS)?, get(TAG_CREDENTIALS)?) {
        (Some(secrets), Some(credentials)) => Some(crate::model::SecretDigests {
            secrets,
            credentials,
            fields: Default::default(),
            key_check: get(TAG_KEY_CHECK)?,
        }),
        (None, None) => None,
        _ => {
            return Err(fail(format!(
                "tags {TAG_SECRETS} and {TAG_CREDENTIALS} come together; one is missing"
            )));
        }
    };
    let fingerprint = require(TAG_FINGERPRINT)?;
    let os = require(TAG_OS)?;
    let generation_text = require(TAG_GENERATION)?;
    let generation = number(TAG_GENERATION, &generation_text)?;
    let revision = get(TAG_REVISION)?;
    let task_id = match get(TAG_TASK)? {
        Some(t) => Some(number(TAG_TASK, &t)?),
        None => None,
    };
    let started = match get(TAG_STARTED)? {
        Some(t) => Some(time(TAG_STARTED, &t)?),
        None => None,
    };
    let finished = match get(TAG_FINISHED)? {
        Some(t) => Some(time(TAG_FINISHED, &t)?),
        None => None,
    };
    Ok(Some(InstallRecord {
        server: server.to_string(),
        fleet,
        algorithm,
        fingerprint,
        os,
        generation,
        revision,
        task_id,
        started,
        finished,
        secrets,
        request: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> InstallRecord {
        InstallRecord {
            server: "ns3012345.ip-51-68-1.eu".into(),
            fleet: crate::model::DEFAULT_FLEET.into(),
            algorithm: 2,
            secrets: None,
            request: None,
            fingerprint: format!("sha256:{}", "0123456789abcdef".repeat(4)),
            os: "debian12_64".into(),
            generation: 3,
            revision: Some("9f8e7d6c5b4a39281706f5e4d3c2b1a098765432-dirty".into()),
            task_id: Some(123456789),
            started: Some("2026-11-23T08:43:48.123Z".parse().unwrap()),
            finished: Some("2026-11-23T09:01:02Z".parse().unwrap()),
        }
    }

    #[test]
    fn real_values_are_written_unescaped() {
        let tags = record_to_tags(&sample()).unwrap();
        assert_eq!(tags[TAG_FINGERPRINT], sample().fingerprint);
        assert_eq!(tags[TAG_OS], "debian12_64");
        assert_eq!(tags[TAG_GENERATION], "3");
        assert_eq!(tags[TAG_TASK], "123456789");
        assert_eq!(tags[TAG_STARTED], "2026-11-23T08:43:48.123Z");
        assert_eq!(tags[TAG_FINISHED], "2026-11-23T09:01:02Z");
        assert_eq!(
            tags[TAG_REVISION],
            "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432-dirty"
        );
        assert_eq!(tags[TAG_FLEET], "default");
        assert_eq!(tags[TAG_ALGORITHM], "2");
        assert_eq!(tags.len(), 10);
    }

    #[test]
    fn format_1_tags_read_as_the_default_fleet_and_algorithm_1() {
        let mut tags = record_to_tags(&sample()).unwrap();
        tags.remove(TAG_FLEET);
        tags.remove(TAG_ALGORITHM);
        tags.insert(TAG_FORMAT.into(), "1".into());
        let rec = record_from_tags("ns3012345.ip-51-68-1.eu", &tags)
            .unwrap()
            .unwrap();
        assert_eq!((rec.fleet.as_str(), rec.algorithm), ("default", 1));
    }

    #[test]
    fn secret_digests_travel_in_tags_but_not_the_per_field_ones() {
        let rec = InstallRecord {
            secrets: Some(crate::model::SecretDigests {
                secrets: format!("hmac-sha256:{}", "a".repeat(64)),
                credentials: format!("hmac-sha256:{}", "b".repeat(64)),
                fields: [("/customizations/x".to_string(), "hmac-sha256:c".to_string())].into(),
                key_check: Some(format!("hmac-sha256:{}", "d".repeat(64))),
            }),
            ..sample()
        };
        let back = record_from_tags(&rec.server, &record_to_tags(&rec).unwrap())
            .unwrap()
            .unwrap();
        let d = back.secrets.unwrap();
        assert_eq!(d.secrets, rec.secrets.as_ref().unwrap().secrets);
        assert_eq!(d.key_check, rec.secrets.as_ref().unwrap().key_check);
        assert!(d.fields.is_empty());
    }

    #[test]
    fn charset_is_exactly_the_apis() {
        // The API's class `[a-zA-Z0-9_.:/=+@-]`, spelled out by hand.
        let allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/=+@-";
        for c in (0u8..=0x7F).map(char::from) {
            assert_eq!(is_tag_char(c), allowed.contains(c), "{c:?}");
        }
        for c in ['é', 'ß', '٣', '\u{a0}'] {
            assert!(!is_tag_char(c), "{c:?}");
        }
        assert!(!is_valid_tag_key(""));
        assert!(!is_valid_tag_key("ovh:reserved"));
        assert!(is_valid_tag_key(&"k".repeat(128)));
        assert!(!is_valid_tag_key(&"k".repeat(129)));
        assert!(is_valid_tag_value(""));
        assert!(!is_valid_tag_value(&"v".repeat(257)));
    }

    #[test]
    fn sample_tags_are_all_valid() {
        for (k, v) in record_to_tags(&sample()).unwrap() {
            assert!(is_valid_tag_key(&k) && k.starts_with(TAG_PREFIX), "{k}");
            assert!(is_valid_tag_value(&v), "{k} = {v}");
        }
    }

    #[test]
    fn optional_fields_are_omitted() {
        let rec = InstallRecord {
            revision: None,
            task_id: None,
            started: None,
            finished: None,
            ..sample()
        };
        let tags = record_to_tags(&rec).unwrap();
        assert_eq!(
            tags.keys().map(String::as_str).collect::<Vec<_>>(),
            vec![
                TAG_ALGORITHM,
                TAG_FINGERPRINT,
                TAG_FLEET,
                TAG_FORMAT,
                TAG_GENERATION,
                TAG_OS
            ]
        );
        assert_eq!(
            record_from_tags(&rec.server, &tags).unwrap(),
            Some(rec.clone())
        );
    }

    #[test]
    fn escape_handles_outside_characters() {
        assert_eq!(escape_value("a b@c,é"), "a@20b@40c@2C@C3@A9");
        assert_eq!(unescape_value("a@20b@40c@2C@C3@A9").unwrap(), "a b@c,é");
    }

    #[test]
    fn garbled_escapes_are_errors() {
        for bad in ["@", "@4", "@zz", "a@4g", "@FF", "a b", "é"] {
            assert!(unescape_value(bad).is_err(), "{bad:?} should not decode");
        }
    }

    #[test]
    fn no_record_keys_is_none_even_with_other_ovhform_tags() {
        let tags = BTreeMap::from([
            ("team".to_string(), "infra".to_string()),
            ("ovhform:owner".to_string(), "x".to_string()),
        ]);
        assert_eq!(record_from_tags("s", &tags).unwrap(), None);
    }

    #[test]
    fn partial_tags_name_the_missing_key() {
        let mut tags = record_to_tags(&sample()).unwrap();
        tags.remove(TAG_OS);
        let err = record_from_tags("srv1", &tags).unwrap_err().to_string();
        assert!(err.contains("srv1"), "{err}");
        assert!(err.contains("ovhform:os is missing"), "{err}");
    }

    #[test]
    fn garbled_values_name_the_key() {
        let cases = [
            (TAG_GENERATION, "three", "not a whole number"),
            (TAG_TASK, "-1", "not a whole number"),
            (TAG_STARTED, "yesterday", "not an RFC 3339 time"),
            (TAG_FORMAT, "3", "formats 1 and 2 only"),
            (TAG_ALGORITHM, "two", "not a whole number"),
            (TAG_FINGERPRINT, "sha256:@x1", "broken escape"),
        ];
        for (key, value, expect) in cases {
            let mut tags = record_to_tags(&sample()).unwrap();
            tags.insert(key.to_string(), value.to_string());
            let err = record_from_tags("srv", &tags).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
            assert!(err.contains(expect), "{err}");
        }
    }

    #[test]
    fn too_long_value_is_an_error_not_a_truncation() {
        let rec = InstallRecord {
            os: "x".repeat(MAX_TAG_VALUE_LEN + 1),
            ..sample()
        };
        match record_to_tags(&rec) {
            Err(StateError::TagValueTooLong { key, len, .. }) => {
                assert_eq!(key, TAG_OS);
                assert_eq!(len, MAX_TAG_VALUE_LEN + 1);
            }
            other => panic!("expected TagValueTooLong, got {other:?}"),
        }
    }

    #[test]
    fn replace_keeps_foreign_tags_and_drops_stale_record_keys() {
        let existing = BTreeMap::from([
            ("team".to_string(), "infra".to_string()),
            ("ovhform:owner".to_string(), "x".to_string()),
            (TAG_TASK.to_string(), "1".to_string()),
        ]);
        let rec = InstallRecord {
            task_id: None,
            ..sample()
        };
        let tags = replace_record_tags(&existing, &rec).unwrap();
        assert_eq!(tags["team"], "infra");
        assert_eq!(tags["ovhform:owner"], "x");
        assert!(!tags.contains_key(TAG_TASK));
        assert_eq!(record_from_tags(&rec.server, &tags).unwrap(), Some(rec));
    }

    fn timestamp() -> impl Strategy<Value = Option<jiff::Timestamp>> {
        proptest::option::of(
            (
                jiff::Timestamp::MIN.as_second()..=jiff::Timestamp::MAX.as_second() - 1,
                0i32..1_000_000_000,
            )
                .prop_map(|(s, n)| jiff::Timestamp::new(s, n).unwrap()),
        )
    }

    fn record() -> impl Strategy<Value = InstallRecord> {
        (
            // Any text, including characters outside the tag set and the escape itself.
            ".{0,20}",
            ".{0,20}",
            any::<u64>(),
            proptest::option::of(".{0,20}"),
            proptest::option::of(any::<u64>()),
            timestamp(),
            timestamp(),
        )
            .prop_map(
                |(fingerprint, os, generation, revision, task_id, started, finished)| {
                    InstallRecord {
                        server: "srv".into(),
                        fleet: crate::model::DEFAULT_FLEET.into(),
                        algorithm: 2,
                        secrets: None,
                        request: None,
                        fingerprint,
                        os,
                        generation,
                        revision,
                        task_id,
                        started,
                        finished,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn tags_round_trip_and_match_the_api_charset(rec in record()) {
            // 20 chars * 4 UTF-8 bytes * 3 = 240 escaped characters at most: always fits.
            let tags = record_to_tags(&rec).unwrap();
            for (k, v) in &tags {
                prop_assert!(is_valid_tag_key(k), "key {k:?}");
                prop_assert!(k.starts_with(TAG_PREFIX));
                prop_assert!(is_valid_tag_value(v), "value {v:?} of {k}");
            }
            prop_assert_eq!(record_from_tags("srv", &tags).unwrap(), Some(rec));
        }

        #[test]
        fn arbitrary_tags_never_panic(tags in proptest::collection::btree_map(
            proptest::sample::select(RECORD_TAG_KEYS.to_vec()).prop_map(String::from),
            ".{0,12}",
            0..8,
        )) {
            match record_from_tags("srv", &tags) {
                // Only record keys are generated, so "no record" means no tags at all.
                Ok(None) => prop_assert!(tags.is_empty()),
                // Whatever was accepted must encode back to the same record.
                Ok(Some(rec)) => {
                    let again = record_to_tags(&rec).unwrap();
                    prop_assert_eq!(record_from_tags("srv", &again).unwrap(), Some(rec));
                }
                Err(e) => prop_assert!(matches!(e, StateError::TagRecord { .. }), "{e:?}"),
            }
        }

        #[test]
        fn escape_round_trips(s in ".{0,40}") {
            let e = escape_value(&s);
            prop_assert!(e.chars().all(is_tag_char));
            prop_assert_eq!(unescape_value(&e).unwrap(), s);
        }
    }
}
