//! Secret redaction for everything a plan shows: a secret value becomes a placeholder
//! (`<secret>`, or `<credential>` for an `httpHeaders` value). No hash and no length: anything
//! derived from a secret without a key lets a reader confirm a guess of it. Whether a secret
//! changed is decided through keyed digests (`digest`) and shown as "changed"/"unchanged".
//!
//! Owns: the redacted form and which request keys are always secret. Must not touch: the
//! fingerprint (the manifest room computes it over the publishable request).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::digest::{CREDENTIAL_PLACEHOLDER, SECRET_PLACEHOLDER};

/// Customization keys whose values are secret whatever the manifest marked
/// ([`crate::model::ALWAYS_SECRET`]).
pub const ALWAYS_SECRET: &[&str] = crate::model::ALWAYS_SECRET;

/// `sha256:<first 12 hex> (N bytes)` of text that is NOT secret (a live iPXE script), to tell
/// two values of one length apart. Never used on a secret.
pub fn hash_len(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!(
        "sha256:{} ({} bytes)",
        &hex::encode(digest)[..12],
        bytes.len()
    )
}

/// A copy of `request` with every secret path (the manifest's `secret_paths` plus
/// [`ALWAYS_SECRET`]) replaced by its placeholder. Objects under a secret path (such as
/// `httpHeaders`) keep their keys, so a reviewer sees *which* header is set.
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
        let placeholder = if path.starts_with("/customizations/httpHeaders") {
            CREDENTIAL_PLACEHOLDER
        } else {
            SECRET_PLACEHOLDER
        };
        let hide = serde_json::Value::String(placeholder.into());
        if let Some(v) = out.pointer_mut(path) {
            match v {
                serde_json::Value::Object(map) => {
                    for inner in map.values_mut() {
                        *inner = hide.clone();
                    }
                }
                other => *other = hide,
            }
        }
    }
    out
}

/// True when `value` is a placeholder (used by the lint).
pub fn is_redacted(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s == SECRET_PLACEHOLDER || s == CREDENTIAL_PLACEHOLDER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_and_always_secret_keys_are_placeholders_without_hash_or_length() {
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
        assert_eq!(out["customizations"]["imageURL"], SECRET_PLACEHOLDER);
        assert_eq!(
            out["customizations"]["httpHeaders"]["Authorization"],
            CREDENTIAL_PLACEHOLDER
        );
    }
}
