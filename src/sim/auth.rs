//! Request authentication as the real API does it: application key + consumer key +
//! `$1$` SHA-1 signature over the URL the client addressed, a timestamp skew check, and
//! (optionally) OAuth2 client-credentials bearer tokens.
//!
//! Owns: deciding whether a request is authenticated, with the real error answers. Must not
//! touch: routing or world state. Secrets are compared, never logged or echoed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::http::ApiError;

/// The credentials the simulator accepts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCredentials {
    pub application_key: String,
    pub application_secret: String,
    pub consumer_key: String,
    /// OAuth2 client-credentials pair accepted at `POST /auth/oauth2/token`.
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for SimCredentials {
    /// Secrets stay out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCredentials")
            .field("application_key", &self.application_key)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn token(rng: &mut impl Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl SimCredentials {
    /// Fresh random credentials, shaped like real ones (16/32/32 alphanumerics).
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        SimCredentials {
            application_key: token(&mut rng, 16),
            application_secret: token(&mut rng, 32),
            consumer_key: token(&mut rng, 32),
            client_id: format!("EU.{}", token(&mut rng, 16)),
            client_secret: token(&mut rng, 32),
        }
    }
}

impl Default for SimCredentials {
    fn default() -> Self {
        SimCredentials::generate()
    }
}

/// One access rule of the consumer key (`auth.AccessRule`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRule {
    pub method: String,
    pub path: String,
}

impl SimRule {
    pub fn new(method: &str, path: &str) -> SimRule {
        SimRule {
            method: method.to_string(),
            path: path.to_string(),
        }
    }
}

/// The consumer key's state as `GET /auth/currentCredential` shows it (`auth.Credential`:
/// REFERENCE §6.3 for `rules` and `status`, OVH's published `auth` schema for the other
/// names), and what the simulator enforces from it: a key that is not `validated` or whose
/// `expiration` has passed is refused on every signed call, and a signed call no rule grants
/// is refused `NOT_GRANTED_CALL` [inferred: the shapes of these refusals].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimKey {
    /// `expired`, `pendingValidation`, `refused` or `validated`.
    pub status: String,
    /// Default: every method on `/*` (what a key made for "everything" has), so a simulator
    /// nobody configured refuses nothing.
    pub rules: Vec<SimRule>,
    /// Unix seconds; `None`: never expires.
    pub expiration: Option<i64>,
    pub credential_id: u64,
    pub application_id: u64,
    pub allowed_ips: Option<Vec<String>>,
}

impl Default for SimKey {
    fn default() -> Self {
        SimKey {
            status: "validated".into(),
            rules: ["GET", "POST", "PUT", "DELETE"]
                .into_iter()
                .map(|m| SimRule::new(m, "/*"))
                .collect(),
            expiration: None,
            credential_id: 421_337,
            application_id: 123_456,
            allowed_ips: None,
        }
    }
}

/// `*` in a rule path matches any run of characters, `/` included.
fn rule_matches(glob: &[u8], path: &[u8]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((b'*', rest)) => (0..=path.len()).any(|i| rule_matches(rest, &path[i..])),
        Some((c, rest)) => path.first() == Some(c) && rule_matches(rest, &path[1..]),
    }
}

impl SimKey {
    /// Whether a signed call may go on. `path` is what rules are written against: the path
    /// below `/1.0` (`/dedicated/server/x`), or `/v2/…` for the v2 API, without the query.
    pub fn admit(&self, method: &str, path: &str, now: i64) -> Result<(), ApiError> {
        let expired = self.expiration.is_some_and(|e| e <= now);
        if self.status != "validated" || expired {
            return Err(ApiError::legacy(
                403,
                "INVALID_CREDENTIAL",
                "This credential is not valid",
            ));
        }
        // Every valid key may read itself [inferred].
        if method == "GET" && path == "/auth/currentCredential" {
            return Ok(());
        }
        let granted = self.rules.iter().any(|r| {
            r.method.eq_ignore_ascii_case(method)
                && rule_matches(r.path.as_bytes(), path.as_bytes())
        });
        if granted {
            Ok(())
        } else {
            Err(ApiError::legacy(
                403,
                "NOT_GRANTED_CALL",
                "This call has not been granted",
            ))
        }
    }

    /// The `auth.Credential` answer; `created` and `last_use` are the simulator's wall clock.
    pub fn to_json(&self, created: i64, last_use: i64) -> serde_json::Value {
        let ts = |s: i64| {
            jiff::Timestamp::from_second(s)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string())
                .ok()
        };
        serde_json::json!({
            "credentialId": self.credential_id,
            "applicationId": self.application_id,
            "status": self.status,
            "rules": self.rules,
            "creation": ts(created),
            "expiration": self.expiration.and_then(ts),
            "lastUse": ts(last_use),
            "allowedIPs": self.allowed_ips,
            "ovhSupport": false,
        })
    }
}

/// `"$1$" + sha1_hex(AS+CK+METHOD+URL+BODY+TS)` (REFERENCE §0.9).
pub fn signature(
    secret: &str,
    consumer: &str,
    method: &str,
    url: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    let mut h = Sha1::new();
    for part in [
        secret.as_bytes(),
        consumer.as_bytes(),
        method.as_bytes(),
        url.as_bytes(),
        body,
        timestamp.as_bytes(),
    ]
    .iter()
    .enumerate()
    {
        if part.0 > 0 {
            h.update(b"+");
        }
        h.update(part.1);
    }
    format!("$1${}", hex::encode(h.finalize()))
}

/// Issued OAuth2 access tokens and their expiry.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: HashMap<String, Instant>,
}

impl Tokens {
    pub fn issue(&mut self, ttl: Duration) -> String {
        let t = token(&mut rand::rng(), 40);
        let now = Instant::now();
        self.issued.retain(|_, exp| *exp > now);
        self.issued.insert(t.clone(), now + ttl);
        t
    }

    fn valid(&self, t: &str) -> bool {
        self.issued.get(t).is_some_and(|exp| *exp > Instant::now())
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Check one request. `url` is the absolute URL the client addressed (scheme + Host header +
/// path + query exactly as received), `now` real unix seconds.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    creds: &SimCredentials,
    tokens: &Tokens,
    headers: &HeaderMap,
    method: &str,
    url: &str,
    body: &[u8],
    now: i64,
    max_skew: Duration,
) -> Result<(), ApiError> {
    if let Some(auth) = header(headers, "authorization") {
        let bearer = auth.strip_prefix("Bearer ").unwrap_or("");
        // Class and message of a rejected token are not published [inferred].
        return if tokens.valid(bearer) {
            Ok(())
        } else {
            Err(ApiError::new(
                401,
                "Client::Unauthorized",
                "The access token is invalid or expired",
            ))
        };
    }
    // The errorCode answers below are the auth layer's (php-ovh/python-ovh issues,
    // REFERENCE §6.6); the application-key and missing-credential messages are [inferred].
    match header(headers, "x-ovh-application") {
        Some(ak) if ak == creds.application_key => {}
        _ => {
            return Err(ApiError::legacy(
                403,
                "INVALID_KEY",
                "This application key is invalid",
            ));
        }
    }
    match header(headers, "x-ovh-consumer") {
        None => {
            return Err(ApiError::legacy(
                403,
                "NOT_CREDENTIAL",
                "This call has not been granted",
            ));
        }
        Some(ck) if ck != creds.consumer_key => {
            return Err(ApiError::legacy(
                403,
                "INVALID_CREDENTIAL",
                "This credential is not valid",
            ));
        }
        Some(_) => {}
    }
    let ts = header(headers, "x-ovh-timestamp").unwrap_or("");
    let Ok(ts_num) = ts.parse::<i64>() else {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            "Invalid timestamp",
        ));
    };
    if (now - ts_num).unsigned_abs() > max_skew.as_secs() {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            "Query out of time",
        ));
    }
    let expected = signature(
        &creds.application_secret,
        &creds.consumer_key,
        method,
        url,
        body,
        ts,
    );
    match header(headers, "x-ovh-signature") {
        Some(sig) if sig == expected => Ok(()),
        _ => Err(ApiError::new(
            400,
            "Client::BadRequest",
            "Invalid signature",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> SimCredentials {
        SimCredentials {
            application_key: "ak".into(),
            application_secret: "as".into(),
            consumer_key: "ck".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
        }
    }

    #[test]
    fn signature_is_sha1_over_plus_joined_fields() {
        // sha1("as+ck+GET+http://h/1.0/x++1700000000"), computed independently with python's hashlib.
        let s = signature("as", "ck", "GET", "http://h/1.0/x", b"", "1700000000");
        assert_eq!(s, "$1$de7f2d51079d06ea19378e2fa43c2c50cdbdc398");
    }

    fn signed(c: &SimCredentials, ck: &str, sig_body: &[u8], ts: i64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-ovh-application", c.application_key.parse().unwrap());
        h.insert("x-ovh-consumer", ck.parse().unwrap());
        h.insert("x-ovh-timestamp", ts.to_string().parse().unwrap());
        let sig = signature(
            &c.application_secret,
            ck,
            "PUT",
            "http://h/1.0/x",
            sig_body,
            &ts.to_string(),
        );
        h.insert("x-ovh-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn real_error_answers() {
        let c = creds();
        let t = Tokens::default();
        let skew = Duration::from_secs(300);
        let ok = signed(&c, "ck", b"{}", 1000);
        assert!(verify(&c, &t, &ok, "PUT", "http://h/1.0/x", b"{}", 1000, skew).is_ok());
        let tampered = verify(
            &c,
            &t,
            &ok,
            "PUT",
            "http://h/1.0/x",
            b"{\"a\":1}",
            1000,
            skew,
        )
        .unwrap_err();
        assert_eq!(
            (tampered.status, tampered.class()),
            (400, Some("Client::BadRequest"))
        );
        assert_eq!(tampered.body["message"], "Invalid signature");
        let wrong_ck = verify(
            &c,
            &t,
            &signed(&c, "nope", b"{}", 1000),
            "PUT",
            "http://h/1.0/x",
            b"{}",
            1000,
            skew,
        )
        .unwrap_err();
        assert_eq!(wrong_ck.status, 403);
        assert_eq!(
            wrong_ck.body,
            serde_json::json!({"errorCode": "INVALID_CREDENTIAL", "httpCode": "403 Forbidden", "message": "This credential is not valid"})
        );
        let late = verify(&c, &t, &ok, "PUT", "http://h/1.0/x", b"{}", 5000, skew).unwrap_err();
        assert_eq!(late.body["message"], "Query out of time");
    }

    #[test]
    fn the_key_state_is_enforced() {
        let mut key = SimKey::default();
        assert!(key.admit("DELETE", "/dedicated/server/x", 0).is_ok());
        key.rules = vec![
            SimRule::new("GET", "/dedicated/server"),
            SimRule::new("GET", "/dedicated/server/*"),
        ];
        assert!(key.admit("GET", "/dedicated/server", 0).is_ok());
        assert!(key.admit("GET", "/dedicated/server/a/task/1", 0).is_ok());
        let refused = key
            .admit("POST", "/dedicated/server/a/reboot", 0)
            .unwrap_err();
        assert_eq!(refused.body["errorCode"], "NOT_GRANTED_CALL");
        assert!(key.admit("GET", "/auth/currentCredential", 0).is_ok());
        key.expiration = Some(100);
        assert!(key.admit("GET", "/dedicated/server", 99).is_ok());
        let expired = key.admit("GET", "/dedicated/server", 100).unwrap_err();
        assert_eq!(expired.body["errorCode"], "INVALID_CREDENTIAL");
        key.expiration = None;
        key.status = "pendingValidation".into();
        assert_eq!(
            key.admit("GET", "/auth/currentCredential", 0)
                .unwrap_err()
                .status,
            403
        );
        assert!(rule_matches(b"/*", b"/v2/iam/resource/urn:x"));
        assert!(!rule_matches(b"/dedicated/server/*", b"/dedicated/server"));
    }

    #[test]
    fn bearer_tokens_expire() {
        let c = creds();
        let mut t = Tokens::default();
        let live = t.issue(Duration::from_secs(60));
        let dead = t.issue(Duration::ZERO);
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {live}").parse().unwrap());
        assert!(verify(&c, &t, &h, "GET", "u", b"", 0, Duration::ZERO).is_ok());
        h.insert("authorization", format!("Bearer {dead}").parse().unwrap());
        assert_eq!(
            verify(&c, &t, &h, "GET", "u", b"", 0, Duration::ZERO)
                .unwrap_err()
                .status,
            401
        );
    }
}
