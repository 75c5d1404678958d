//! Notifications: an optional webhook that receives one JSON POST per event worth a person's
//! attention — a task failed, drift, a wipe waiting for approval, a reinstall held by its
//! window, an installation step stalled.
//!
//! Owns: which status transitions notify ([`transitions`], pure: only a change into such a
//! state, not every pass), the event body, delivery off the loop (a bounded queue drained by
//! its own task; retried with exponential backoff; dropped with a warning when the queue is
//! full or the retries run out). Must not touch: the loop's pace (sending never blocks a pass),
//! anything secret: bodies carry ovhform's statuses and reasons, never a manifest value.
//! The URL may hold a token: it is never logged.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::mpsc;

use super::status::ServerStatus;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    TaskFailed,
    Drift,
    ApprovalNeeded,
    BlockedByWindow,
    StalledStep,
}

/// One webhook body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub kind: EventKind,
    pub fleet: String,
    pub server: String,
    pub message: String,
    pub at: Timestamp,
}

/// Events for the servers whose status changed into a notifying state since the last pass.
pub fn transitions<'a>(
    before: impl Fn(&str) -> Option<&'a ServerStatus>,
    after: &'a std::collections::BTreeMap<String, ServerStatus>,
) -> Vec<(String, EventKind, String)> {
    let mut out = Vec::new();
    for (server, now) in after {
        let was = before(server);
        if was == Some(now) {
            continue;
        }
        let same_kind = was.is_some_and(|w| w.label() == now.label());
        let event = match now {
            ServerStatus::Degraded { reason } => Some((EventKind::TaskFailed, reason.clone())),
            ServerStatus::Drifted { fields } if !same_kind => Some((
                EventKind::Drift,
                format!("changed outside ovhform: {}", fields.join(", ")),
            )),
            ServerStatus::PendingApproval { reason } if !same_kind => {
                Some((EventKind::ApprovalNeeded, reason.clone()))
            }
            ServerStatus::Blocked { reasons } if !same_kind => reasons
                .iter()
                .find(|r| r.contains("maintenance window"))
                .map(|r| (EventKind::BlockedByWindow, r.clone())),
            _ => None,
        };
        if let Some((kind, message)) = event {
            out.push((server.clone(), kind, message));
        }
    }
    out
}

/// The sending half; cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    tx: mpsc::Sender<Event>,
}

/// Events waiting for delivery before new ones are dropped.
const QUEUE: usize = 1000;

impl Webhook {
    /// Starts the delivery task for `url`.
    pub fn start(url: String, timeout: Duration, retries: usize) -> Webhook {
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
        // reqwest is built without a default crypto provider: ring, as the API client does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("ovhform/", env!("CARGO_PKG_VERSION")))
            .build();
        tokio::spawn(async move {
            let http = match http {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "webhook disabled: cannot build its HTTP client");
                    return;
                }
            };
            while let Some(event) = rx.recv().await {
                let send = || async {
                    let resp = http.post(&url).json(&event).send().await?;
                    resp.error_for_status().map(|_| ())
                };
                let delivered = send
                    .retry(
                        ExponentialBuilder::default()
                            .with_jitter()
                            .with_min_delay(Duration::from_millis(200))
                            .with_max_delay(Duration::from_secs(30))
                            .with_max_times(retries),
                    )
                    .await;
                if let Err(e) = delivered {
                    // The error may quote the URL: say only its kind.
                    let why = if e.is_timeout() {
                        "timeout".to_string()
                    } else if let Some(s) = e.status() {
                        format!("HTTP {s}")
                    } else {
                        "connection".to_string()
                    };
                    tracing::warn!(kind = ?event.kind, why, "webhook event not delivered");
                }
            }
        });
        Webhook { tx }
    }

    /// Queues `event`; never waits.
    pub fn send(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            tracing::warn!("webhook queue full: event dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn only_changes_into_a_notifying_state_notify() {
        let pending = ServerStatus::PendingApproval {
            reason: "needs --allow-wipe".into(),
        };
        let window = ServerStatus::Blocked {
            reasons: vec!["outside maintenance window w".into()],
        };
        let limit = ServerStatus::Blocked {
            reasons: vec!["group limit".into()],
        };
        let before: BTreeMap<String, ServerStatus> = [
            ("a".to_string(), ServerStatus::Synced),
            ("b".to_string(), pending.clone()),
            ("c".to_string(), ServerStatus::Synced),
            ("d".to_string(), ServerStatus::Synced),
        ]
        .into();
        let after: BTreeMap<String, ServerStatus> = [
            ("a".to_string(), pending.clone()),
            ("b".to_string(), pending.clone()),
            ("c".to_string(), window),
            ("d".to_string(), limit),
            (
                "e".to_string(),
                ServerStatus::Degraded {
                    reason: "task 9 failed".into(),
                },
            ),
        ]
        .into();
        let events = transitions(|s| before.get(s), &after);
        let kinds: Vec<(&str, EventKind)> =
            events.iter().map(|(s, k, _)| (s.as_str(), *k)).collect();
        assert_eq!(
            kinds,
            [
                ("a", EventKind::ApprovalNeeded),
                ("c", EventKind::BlockedByWindow),
                ("e", EventKind::TaskFailed),
            ]
        );
    }
}
