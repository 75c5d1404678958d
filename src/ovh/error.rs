//! The client's error type. Every API error names the HTTP method, the path, the status and
//! the `X-Ovh-QueryId` (what OVH support asks for). Errors are built from response bodies and
//! our own context only: they never carry request headers, signatures, tokens or bodies sent.

use std::fmt;
use std::time::Duration;

/// An error answer of the API, typed from `{class, message}` or the legacy
/// `{errorCode, httpCode, message}` body (REFERENCE §6.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub method: String,
    /// API path (with query string), without the endpoint's host.
    pub path: String,
    pub status: u16,
    /// e.g. `Client::BadRequest::TaskAlreadyExists`.
    pub class: Option<String>,
    /// Legacy auth-layer code, e.g. `INVALID_SIGNATURE`.
    pub error_code: Option<String>,
    pub message: String,
    pub query_id: Option<String>,
    /// `Retry-After` (seconds) of a 429/503 answer, when given.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.method, self.path, self.status)?;
        if let Some(c) = &self.class {
            write!(f, " {c}")?;
        }
        if let Some(c) = &self.error_code {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.message)?;
        write!(
            f,
            " (X-Ovh-QueryId: {})",
            self.query_id.as_deref().unwrap_or("none")
        )
    }
}

impl ApiError {
    /// Parse an error body; unknown shapes keep the raw text (truncated) as the message.
    pub(crate) fn from_body(
        method: &str,
        path: &str,
        status: u16,
        query_id: Option<String>,
        body: &[u8],
    ) -> ApiError {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            class: Option<String>,
            error_code: Option<String>,
            message: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        let (class, error_code, message) = match parsed {
            Some(b) if b.message.is_some() || b.class.is_some() || b.error_code.is_some() => {
                // An error that says nothing still has to say so: an empty message reads as a
                // truncated log line.
                let message = b
                    .message
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| "(no message in the error body)".to_string());
                (b.class, b.error_code, message)
            }
            _ => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.chars().take(200).collect();
                (
                    None,
                    None,
                    if text.trim().is_empty() {
                        "(empty body)".to_string()
                    } else {
                        text
                    },
                )
            }
        };
        ApiError {
            retry_after: None,
            method: method.to_string(),
            path: path.to_string(),
            status,
            class,
            error_code,
            message,
            query_id,
        }
    }
}

/// Errors of the OVHcloud client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad endpoint or credentials configuration.
    #[error("OVHcloud configuration error: {message} (hint: {hint})")]
    Config { message: String, hint: String },
    /// The API answered with an error status.
    #[error("OVHcloud API error: {0}")]
    Api(Box<ApiError>),
    /// No answer: connection refused/reset, DNS, TLS.
    #[error("OVHcloud API request {method} {path} failed: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
        sent: bool,
    },
    /// No answer within the configured timeout.
    #[error("OVHcloud API request {method} {path} timed out after {timeout:?}")]
    Timeout {
        method: String,
        path: String,
        timeout: Duration,
    },
    /// An answer too large to be one the API sends: not read, not retried (the request was
    /// sent, so a write's outcome is unknown, like a reset after sending).
    #[error(
        "OVHcloud API answer to {method} {path} is larger than {} MiB: refused unread (the API's answers are far smaller; check --endpoint and any proxy in between)",
        .limit / (1024 * 1024)
    )]
    TooLarge {
        method: String,
        path: String,
        limit: u64,
    },
    /// A 2xx answer whose body is not what the schema says.
    #[error(
        "OVHcloud API answer to {method} {path} (HTTP {status}, X-Ovh-QueryId: {query_id}) is not understood: {message}"
    )]
    Decode {
        method: String,
        path: String,
        status: u16,
        query_id: String,
        message: String,
    },
    /// The OAuth2 token endpoint refused or could not be reached.
    #[error("OAuth2 token request to {url} failed: {message}")]
    OAuth2 { url: String, message: String },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    /// A reinstall request that the legacy `install/start` API cannot express.
    #[error(transparent)]
    Legacy(#[from] super::LegacyMappingError),
    /// A path the client will not send: a name from the API or a manifest made a segment
    /// that URL normalisation would rewrite (`.`, `..`, an empty segment), so the request
    /// would reach another route than the one meant (`/dedicated/server/..` is
    /// `/dedicated`). Nothing was sent.
    #[error(
        "refusing to send {method} {path}: a name in it is not a path segment (`.`, `..` or empty)"
    )]
    UnsafePath { method: String, path: String },
}

impl Error {
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|e| e.status)
    }
    /// `class` of an API error, e.g. `Client::NotFound`.
    pub fn class(&self) -> Option<&str> {
        self.api().and_then(|e| e.class.as_deref())
    }
    pub fn query_id(&self) -> Option<&str> {
        self.api().and_then(|e| e.query_id.as_deref())
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    /// The reinstall refusal that means "a task is already running": apply re-attaches to it.
    pub fn is_task_already_exists(&self) -> bool {
        self.class()
            .is_some_and(|c| c.ends_with("TaskAlreadyExists"))
    }
    /// 429 and 5xx answers, timeouts and transport failures: the request may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api(e) => e.status == 429 || e.status >= 500,
            Error::Transport { .. } | Error::Timeout { .. } => true,
            _ => false,
        }
    }
    /// The API will not show this one object to this key, or does not take the request for
    /// it: a 4xx other than 401 (credentials: the whole run fails), 404 (the object is
    /// absent) and 429 (throttling says nothing about the object). E.g. a 403 from per-server
    /// access rules of a consumer key, or a 400 for a name it finds malformed. Callers make
    /// it a fact about that object (an anomaly of its server), not a failed run.
    pub fn is_refusal(&self) -> bool {
        matches!(self.status(), Some(s) if (400..500).contains(&s) && !matches!(s, 401 | 404 | 429))
    }
    /// The legacy install route cannot express the request: refused before anything is sent.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Error::Legacy(_))
    }
    /// A 2xx answer that does not decode. The decoder's message quotes the answer (a hostile
    /// string of any length): only its first [`DECODE_MESSAGE_CHARS`] characters are kept.
    pub(crate) fn decode(
        method: &str,
        path: &str,
        resp: &super::HttpResponse,
        message: impl std::fmt::Display,
    ) -> Error {
        let full = message.to_string();
        let mut message: String = full.chars().take(DECODE_MESSAGE_CHARS).collect();
        if message.len() < full.len() {
            message.push('…');
        }
        Error::Decode {
            method: method.into(),
            path: path.into(),
            status: resp.status,
            query_id: resp.header("x-ovh-queryid").unwrap_or("none").to_string(),
            message,
        }
    }
    /// A transport failure that happened before any byte of the request was sent.
    pub fn is_unsent(&self) -> bool {
        matches!(self, Error::Transport { sent: false, .. })
    }

    /// This error with what the API quoted back from a request's secret values taken out of
    /// its message: each value (`secrets`: the texts sent, see `manifest::secret_texts`) as
    /// `<secret>`, and any whole number equal to one's length as `<size>` — the API's
    /// `CustomizationSizeExceeded` names the size of the customization it refused, which for a
    /// script or user data is the length of a secret. The rest (status, class, path, query id)
    /// is kept: it is what support asks for.
    pub fn without_echo(self, secrets: &[String]) -> Error {
        match self {
            Error::Api(mut e) => {
                e.message = scrub(&e.message, secrets);
                Error::Api(e)
            }
            Error::Decode {
                method,
                path,
                status,
                query_id,
                message,
            } => Error::Decode {
                method,
                path,
                status,
                query_id,
                message: scrub(&message, secrets),
            },
            other => other,
        }
    }
}

/// Secrets shorter than this are not searched for verbatim: replacing every `a` of a message
/// would hide it without hiding anything (their length is still scrubbed).
const SHORTEST_SCRUBBED: usize = 3;

/// `text` with every secret replaced by `<secret>` (longest first, so a secret that contains
/// another goes as a whole) and every number equal to a secret's length (in bytes or in
/// characters) by `<size>`.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut by_length: Vec<&String> = secrets
        .iter()
        .filter(|s| s.len() >= SHORTEST_SCRUBBED)
        .collect();
    by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in by_length {
        out = out.replace(s.as_str(), "<secret>");
    }
    let lengths: std::collections::BTreeSet<usize> = secrets
        .iter()
        .flat_map(|s| [s.len(), s.chars().count()])
        .collect();
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, from) = rest.split_at(start);
        result.push_str(before);
        let end = from
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(from.len());
        let (digits, after) = from.split_at(end);
        let glued = before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
        match digits.parse::<usize>() {
            Ok(n) if !glued && lengths.contains(&n) => result.push_str("<size>"),
            _ => result.push_str(digits),
        }
        rest = after;
    }
    result.push_str(rest);
    result
}

/// How much of a decoder's message an error keeps.
const DECODE_MESSAGE_CHARS: usize = 300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_and_error_code_forms() {
        let e = ApiError::from_body(
            "POST",
            "/dedicated/server/ns1/reinstall",
            400,
            Some("EU.ext-1.abc".into()),
            br#"{"class":"Client::BadRequest::TaskAlreadyExists","message":"Task 7 of type reinstallServer with status doing is already running on server ns1"}"#,
        );
        let err = Error::Api(Box::new(e));
        assert!(err.is_task_already_exists());
        let s = err.to_string();
        assert!(s.contains("POST /dedicated/server/ns1/reinstall: HTTP 400 Client::BadRequest::TaskAlreadyExists"), "{s}");
        assert!(s.contains("X-Ovh-QueryId: EU.ext-1.abc"), "{s}");

        let e = ApiError::from_body(
            "GET",
            "/dedicated/server",
            403,
            None,
            br#"{"errorCode":"INVALID_CREDENTIAL","httpCode":"403 Forbidden","message":"This credential is not valid"}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("INVALID_CREDENTIAL"));
        assert_eq!(
            e.to_string(),
            "GET /dedicated/server: HTTP 403 INVALID_CREDENTIAL: This credential is not valid (X-Ovh-QueryId: none)"
        );

        let refused = |status| {
            Error::Api(Box::new(ApiError::from_body(
                "GET", "/x", status, None, b"{}",
            )))
            .is_refusal()
        };
        assert!(refused(403) && refused(400) && refused(409));
        assert!(!refused(401) && !refused(404) && !refused(429) && !refused(500));

        let e = ApiError::from_body("GET", "/x", 502, None, b"<html>bad gateway</html>");
        assert_eq!(e.message, "<html>bad gateway</html>");
        assert!(Error::Api(Box::new(e)).is_transient());
    }

    #[test]
    fn a_decode_error_keeps_only_the_start_of_a_long_message() {
        let resp = crate::ovh::HttpResponse {
            status: 200,
            headers: vec![("x-ovh-queryid".into(), "EU.q".into())],
            body: vec![],
        };
        let hostile = format!("invalid type: string \"{}\"", "é".repeat(10_000));
        let e = Error::decode("GET", "/dedicated/server", &resp, &hostile).to_string();
        assert!(e.contains("X-Ovh-QueryId: EU.q"), "{e}");
        assert!(
            e.ends_with('…') && e.chars().count() < DECODE_MESSAGE_CHARS + 200,
            "{e}"
        );
        let short = Error::decode("GET", "/x", &resp, "expected a string").to_string();
        assert!(short.ends_with("expected a string"), "{short}");
    }

    /// Regression (issue 12, secrets test): the API's `CustomizationSizeExceeded` answer to a
    /// reinstall names the size of the script it refused — the length of a secret — and an
    /// answer may quote a value back; both reached apply's output, `/status` and webhooks.
    #[test]
    fn regression_an_api_answer_cannot_quote_a_secret_or_its_length() {
        let secrets = vec!["IyEvYmluL3NoCg==".to_string(), "hunter22".to_string()];
        let refused = |message: &str| {
            Error::Api(Box::new(ApiError {
                method: "POST".into(),
                path: "/dedicated/server/ns1/reinstall".into(),
                status: 400,
                class: Some("Client::BadRequest::CustomizationSizeExceeded".into()),
                error_code: None,
                message: message.into(),
                query_id: Some("EU.q-16".into()),
                retry_after: None,
            }))
            .without_echo(&secrets)
            .to_string()
        };
        let s = refused("Customization is 16 big, which is exceeding limit of 32768");
        assert!(
            s.contains("Customization is <size> big, which is exceeding limit of 32768"),
            "{s}"
        );
        assert!(
            s.contains("EU.q-16") && s.contains("CustomizationSizeExceeded"),
            "{s}"
        );
        let s = refused("bad value hunter22 (8 characters) in IyEvYmluL3NoCg==");
        assert_eq!(
            s,
            "OVHcloud API error: POST /dedicated/server/ns1/reinstall: HTTP 400 \
             Client::BadRequest::CustomizationSizeExceeded: bad value <secret> (<size> characters) \
             in <secret> (X-Ovh-QueryId: EU.q-16)"
        );
        // Numbers that are part of a word, or of another length, stay.
        let s = refused("disk group sdb8 of 128 GB");
        assert!(s.contains("sdb8 of 128 GB"), "{s}");
    }
}
