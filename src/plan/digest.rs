//! Comparing secrets without publishing them: keyed digests (HMAC-SHA256 with the fleet
//! secret) of an install request's secret values, the publishable form of a request, and the
//! record apply writes for an install.
//!
//! Owns: [`FleetKey`], the digest scheme and its version ([`ALGORITHM`]), which request paths
//! are credentials (`httpHeaders` values: rotating them is not a rebuild), and the
//! field-by-field comparison of two publishable requests. Must not touch: I/O (the key is
//! read by the caller), the clock.
//!
//! Why keyed: an unsalted hash of a secret in a PR comment or an IAM tag lets anyone confirm
//! a guess (a 4-digit token falls in 10,000 tries). Without the key a digest says nothing;
//! without the key a plan compares every non-secret field and says secrets were not compared.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::model::{InstallRecord, InstallSpec, SecretDigests};

/// The fingerprint algorithm this ovhform writes into records (the manifest room computes
/// fingerprints; records and plans must agree with it). 1 was an unsalted SHA-256 over the
/// whole request, secrets included.
pub const ALGORITHM: u32 = crate::manifest::FINGERPRINT_ALGORITHM;

pub use crate::manifest::{CREDENTIAL_PLACEHOLDER, SECRET_PLACEHOLDER};

const CREDENTIALS_PREFIX: &str = "/customizations/httpHeaders/";

/// The fleet secret. Never printed, serialised or compared in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey(Vec<u8>);

impl FleetKey {
    /// A key from its text (e.g. `OVHFORM_SECRET_KEY`). `None` for an empty text.
    pub fn new(text: &str) -> Option<FleetKey> {
        let t = text.trim();
        (!t.is_empty()).then(|| FleetKey(t.as_bytes().to_vec()))
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        format!("hmac-sha256:{}", hex::encode(m.finalize().into_bytes()))
    }
}

impl FleetKey {
    /// Which key this is, as records keep it: a keyed digest of a fixed text. It confirms a
    /// guess of the fleet secret no more than any digest a record already carries (the digest
    /// of a spec without secrets is one of a fixed text too): the fleet secret must be a long
    /// random value (`ovhform state fleet-secret --generate`, `openssl rand -hex 32`).
    pub fn check(&self) -> String {
        self.mac(&[b"ovhform fleet secret check"])
    }

    /// Whether `digests` were made with another fleet secret (`false` when they do not say).
    pub fn is_other_than(&self, digests: &SecretDigests) -> bool {
        digests
            .key_check
            .as_ref()
            .is_some_and(|c| *c != self.check())
    }
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(<redacted>)")
    }
}

/// Whether a secret path is an `httpHeaders` value (a credential).
pub fn is_credential_path(path: &str) -> bool {
    path.starts_with(CREDENTIALS_PREFIX)
}

/// The `httpHeaders` value paths of `spec`: secret, but a change is a credential rotation.
pub fn credential_paths(spec: &InstallSpec) -> BTreeSet<String> {
    spec.secret_paths
        .iter()
        .filter(|p| p.starts_with(CREDENTIALS_PREFIX))
        .cloned()
        .collect()
}

/// Every secret value of `spec` by path, objects under a secret path expanded to their
/// entries (so `httpHeaders` gives one path per header).
fn secret_values(spec: &InstallSpec) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for path in &spec.secret_paths {
        match spec.request.pointer(path) {
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    out.insert(
                        format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")),
                        v.clone(),
                    );
                }
            }
            Some(v) => {
                out.insert(path.clone(), v.clone());
            }
            None => {}
        }
    }
    // Headers are secret whatever the manifest marked.
    if let Some(Value::Object(m)) = spec.request.pointer("/customizations/httpHeaders") {
        for (k, v) in m {
            out.insert(
                format!(
                    "{CREDENTIALS_PREFIX}{}",
                    k.replace('~', "~0").replace('/', "~1")
                ),
                v.clone(),
            );
        }
    }
    out
}

/// JSON with object keys sorted at every level, whatever map order serde_json was built with.
fn canonical(v: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

/// The keyed digests of `spec`'s secrets: what a record keeps and what a plan compares.
pub fn secret_digests(spec: &InstallSpec, key: &FleetKey) -> SecretDigests {
    let values = secret_values(spec);
    let mut fields = BTreeMap::new();
    let (mut secrets, mut credentials): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    for (path, v) in &values {
        let canon = canonical(v);
        fields.insert(path.clone(), key.mac(&[path.as_bytes(), &canon]));
        let into = if path.starts_with(CREDENTIALS_PREFIX) {
            &mut credentials
        } else {
            &mut secrets
        };
        for part in [path.as_bytes(), &canon] {
            into.extend_from_slice(&(part.len() as u64).to_be_bytes());
            into.extend_from_slice(part);
        }
    }
    SecretDigests {
        secrets: key.mac(&[b"secrets", &secrets]),
        credentials: key.mac(&[b"credentials", &credentials]),
        fields,
        key_check: Some(key.check()),
    }
}

/// The publishable, normalised request the fingerprint is computed over (the manifest room's
/// pure function, so records, field diffs and fingerprints agree): secret values as
/// [`SECRET_PLACEHOLDER`], `httpHeaders` values as [`CREDENTIAL_PLACEHOLDER`], values the API
/// assumes anyway dropped. What records keep and field diffs compare.
pub fn public_request(spec: &InstallSpec) -> Value {
    crate::manifest::public_request(spec)
}

/// The record of an install of `spec` (or of a baseline adopted for it): everything later
/// plans compare against. `secrets` only with the fleet key.
pub fn record_for(
    server: &str,
    fleet: &str,
    spec: &InstallSpec,
    key: Option<&FleetKey>,
) -> InstallRecord {
    InstallRecord {
        server: server.to_string(),
        fleet: fleet.to_string(),
        algorithm: ALGORITHM,
        fingerprint: spec.fingerprint.clone(),
        os: spec.os.clone(),
        generation: spec.generation,
        revision: None,
        task_id: None,
        started: None,
        finished: None,
        secrets: key.map(|k| secret_digests(spec, k)),
        request: Some(public_request(spec)),
    }
}

/// The fields of a publishable request a reviewer thinks in: `operatingSystem`, each
/// customization, and per disk group its layout, RAID and whether it is kept.
pub fn request_fields(request: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Value::Object(top) = request else {
        out.insert("request".into(), request.clone());
        return out;
    };
    for (k, v) in top {
        match (k.as_str(), v) {
            ("customizations", Value::Object(c)) => {
                for (ck, cv) in c {
                    out.insert(format!("customizations.{ck}"), cv.clone());
                }
            }
            ("storage", Value::Array(groups)) => {
                for g in groups {
                    let id = g
                        .get("diskGroupId")
                        .map_or_else(|| "default".to_string(), |v| v.to_string());
                    match g {
                        Value::Object(gm) => {
                            for (gk, gv) in gm.iter().filter(|(gk, _)| *gk != "diskGroupId") {
                                out.insert(format!("storage[{id}].{gk}"), gv.clone());
                            }
                            if gm.len() == 1 {
                                out.insert(format!("storage[{id}]"), g.clone());
                            }
                        }
                        other => {
                            out.insert(format!("storage[{id}]"), other.clone());
                        }
                    }
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// The fields that differ between two publishable requests, old → new (compact JSON; `None`
/// where a side lacks the field).
pub fn field_changes(old: &Value, new: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    let (a, b) = (request_fields(old), request_fields(new));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| (n.clone(), a.get(n).map(show), b.get(n).map(show)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testkit::install_spec;

    fn with_secret(value: &str) -> InstallSpec {
        let mut s = install_spec("debian12_64", "web-1");
        s.request["customizations"]["postInstallationScript"] = Value::String(value.into());
        s.request["customizations"]["httpHeaders"] =
            serde_json::json!({"Authorization": "Bearer abc"});
        s.secret_paths
            .insert("/customizations/postInstallationScript".into());
        s.secret_paths.insert("/customizations/httpHeaders".into());
        s
    }

    #[test]
    fn keyed_digests_tell_changed_from_unchanged_and_credentials_from_secrets() {
        let k = FleetKey::new("fleet-secret").unwrap();
        let a = secret_digests(&with_secret("deploy:7391"), &k);
        assert_eq!(a, secret_digests(&with_secret("deploy:7391"), &k));
        let b = secret_digests(&with_secret("deploy:7392"), &k);
        assert_ne!(a.secrets, b.secrets);
        assert_eq!(a.credentials, b.credentials);
        let mut rotated = with_secret("deploy:7391");
        rotated.request["customizations"]["httpHeaders"]["Authorization"] = "Bearer xyz".into();
        let c = secret_digests(&rotated, &k);
        assert_eq!(a.secrets, c.secrets);
        assert_ne!(a.credentials, c.credentials);
        // Another key, other digests: without the key a digest confirms nothing.
        let other = secret_digests(&with_secret("deploy:7391"), &FleetKey::new("x").unwrap());
        assert_ne!(a.secrets, other.secrets);
        assert!(format!("{k:?}").contains("redacted"));
    }

    #[test]
    fn public_request_hides_every_secret_and_credential() {
        let p = public_request(&with_secret("deploy:7391")).to_string();
        assert!(!p.contains("deploy:7391") && !p.contains("Bearer"), "{p}");
        assert!(p.contains(SECRET_PLACEHOLDER) && p.contains(CREDENTIAL_PLACEHOLDER));
    }

    #[test]
    fn field_changes_name_what_differs() {
        let a = public_request(&install_spec("debian12_64", "web-1"));
        let b = public_request(&install_spec("debian12_64", "web-2"));
        let ch = field_changes(&a, &b);
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert_eq!(ch[0].0, "customizations.hostname");
        assert_eq!(
            (ch[0].1.as_deref(), ch[0].2.as_deref()),
            (Some("web-1"), Some("web-2"))
        );
    }
}
