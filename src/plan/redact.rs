//! Secret redaction for everything a plan shows: a secret value becomes
//! `sha256:<first 12 hex> (N bytes)`, enough to see that it changed, never what it is.
//!
//! Owns: the redacted form and which request keys are always secret. Must not touch: the
//! fingerprint (that hashes the real request, in `manifest/`).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

/// Customization keys whose values are secret whatever the manifest marked: they carry
/// credentials (`httpHeaders`) or whole scripts and user data that routinely embed them.
pub const ALWAYS_SECRET: &[&str] = &[
    "/customizations/httpHeaders",
    "/customizations/configDriveUserData",
    "/customizations/postInstallationScript",
];

/// The shown form of a secret value.
pub fn hash_len(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!(
        "sha256:{} ({} bytes)",
        &hex::encode(digest)[..12],
        bytes.len()
    )
}

fn redact_value(v: &serde_json::Value) -> serde_json::Value {
    // A path listed twice (by the manifest and in ALWAYS_SECRET) must not hash the hash.
    if is_redacted(v) {
        return v.clone();
    }
    let shown = match v {
        serde_json::Value::String(s) => hash_len(s.as_bytes()),
        other => hash_len(other.to_string().as_bytes()),
    };
    serde_json::Value::String(shown)
}

/// A copy of `request` with every secret path (the manifest's `secret_paths` plus
/// [`ALWAYS_SECRET`]) replaced by its hash and length. Objects under a secret path (such as
/// `httpHeaders`) keep their keys, so a reviewer sees *which* header changed.
pub fn redact_request(
    request: &serde_json::Value,
    secret_paths: &BTreeSet<String>,
) -> serde_json::Value {
    let mut out = request.clone();
    let paths = secret_paths
        .iter()
        .map(String::as_str)
        .chain(ALWAYS_SECRET.iter().copied());
    for path in paths {
        if let Some(v) = out.pointer_mut(path) {
            match v {
                serde_json::Value::Object(map) => {
                    for inner in map.values_mut() {
                        *inner = redact_value(inner);
                    }
                }
                other => *other = redact_value(other),
            }
        }
    }
    out
}

/// True when `value` is the redacted form (used by the lint).
pub fn is_redacted(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.starts_with("sha256:") && s.ends_with(" bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_and_always_secret_keys_are_hashed() {
        let req = serde_json::json!({
            "operatingSystem": "debian12_64",
            "customizations": {
                "hostname": "web-01",
                "httpHeaders": {"Authorization": "Basic c2VjcmV0"},
                "imageURL": "https://example.invalid/img?token=hunter2",
            }
        });
        let secret: BTreeSet<String> = ["/customizations/imageURL".to_string()].into();
        let out = redact_request(&req, &secret);
        let text = out.to_string();
        assert!(!text.contains("c2VjcmV0"));
        assert!(!text.contains("hunter2"));
        assert_eq!(out["customizations"]["hostname"], "web-01");
        assert!(is_redacted(
            &out["customizations"]["httpHeaders"]["Authorization"]
        ));
        assert_eq!(
            out["customizations"]["imageURL"],
            serde_json::Value::String(hash_len(b"https://example.invalid/img?token=hunter2"))
        );
    }
}
