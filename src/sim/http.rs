//! Error and response shapes of the simulated API.
//!
//! Owns: `ApiError` (the `{class, message}` body and the legacy `{errorCode, httpCode, message}`
//! auth-layer body) and how answers become HTTP responses. Must not touch: routing or state.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    /// The modern error model: `{"class": …, "message": …}`.
    pub fn new(status: u16, class: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({"class": class, "message": message.into()}),
        }
    }

    /// The auth layer's older shape, still what the SDKs key on (python-ovh maps
    /// `errorCode` to exception types).
    pub fn legacy(status: u16, code: &str, message: &str) -> Self {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        ApiError {
            status,
            body: json!({"errorCode": code, "httpCode": format!("{status} {reason}"), "message": message}),
        }
    }

    pub fn not_found_service() -> Self {
        ApiError::new(404, "Client::NotFound", "This service does not exist")
    }

    /// The real API's answer to a path it does not describe.
    pub fn invalid_url() -> Self {
        ApiError::new(404, "Client::NotFound", "Got an invalid (or empty) URL")
    }

    pub fn class(&self) -> Option<&str> {
        self.body.get("class").and_then(Value::as_str)
    }
}

/// A successful answer: status 200, a JSON body, extra headers.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(body: Value) -> Self {
        Answer {
            body,
            headers: Vec::new(),
        }
    }

    /// Void operations (PUT, tag add/remove, cancel) answer 200 with a JSON `null`.
    pub fn void() -> Self {
        Answer::json(Value::Null)
    }
}

pub type Outcome = Result<Answer, ApiError>;
