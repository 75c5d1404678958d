//! Per-run request counting: a [`Meter`] is handed to [`super::Client::metered`], and the
//! returned client counts every HTTP request it sends into it — total and per route template
//! (`GET /dedicated/server/{serviceName}/task`) — on top of the client-wide counter.
//!
//! Why not diff [`super::Client::calls`]: apply, plan and the daemon will share one client (one
//! budget, one set of caches), so a difference of the shared counter would charge one run with
//! the requests of another running at the same time.
//!
//! Owns: the meter and the normalisation of request paths into route templates. Must not
//! touch: budgets, retries, anything that changes what is sent.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counts requests: cheap to clone (clones count into the same counters).
#[derive(Clone, Default)]
pub struct Meter {
    inner: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    total: AtomicU64,
    routes: Mutex<BTreeMap<String, u64>>,
    /// Answers per (route template, HTTP status or `timeout`/`connect`/`transport`).
    answers: Mutex<BTreeMap<(String, String), u64>>,
}

impl Meter {
    pub fn new() -> Meter {
        Meter::default()
    }

    /// Requests counted so far (every attempt: retries, `/auth/time` and token requests too).
    pub fn total(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// Requests per route template, e.g. `"GET /dedicated/server/{serviceName}/task"`.
    pub fn routes(&self) -> BTreeMap<String, u64> {
        self.lock().clone()
    }

    /// Requests to one route template (0 when none was sent).
    pub fn route(&self, template: &str) -> u64 {
        self.lock().get(template).copied().unwrap_or(0)
    }

    pub(crate) fn record(&self, method: &str, path: &str) {
        self.inner.total.fetch_add(1, Ordering::Relaxed);
        *self.lock().entry(route_template(method, path)).or_default() += 1;
    }

    /// Answers per route template and status (`200`, `429`, … or `timeout`, `connect`,
    /// `transport` when there was no HTTP answer): the daemon's
    /// `ovhform_api_requests_total{route,status}`.
    pub fn answers(&self) -> BTreeMap<(String, String), u64> {
        self.inner
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn record_answer(&self, method: &str, path: &str, status: String) {
        *self
            .inner
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((route_template(method, path), status))
            .or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        // A counter map is consistent after any panic between two increments.
        self.inner
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter")
            .field("total", &self.total())
            .field("routes", &self.routes())
            .finish()
    }
}

/// `METHOD /path/{placeholder}…` for a request path (query string dropped, ids replaced by the
/// names OVH's schemas give them), so counts group by route rather than by server. A batch GET
/// (`/dedicated/server/a,b,c`) counts as the route of one object, as the API sees it.
pub fn route_template(method: &str, path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out = String::with_capacity(path.len() + method.len() + 1);
    out.push_str(method);
    out.push(' ');
    // The collection a segment sits under decides whether it is an id. `prev` is `None` after
    // a replaced id, so an id that happens to spell a collection name ("task") is not taken
    // for one.
    let mut prev: Option<&str> = None;
    let mut empty = true;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        empty = false;
        out.push('/');
        let placeholder = match prev {
            Some("server") => Some("{serviceName}"),
            Some("boot") => Some("{bootId}"),
            Some("task") => Some("{taskId}"),
            Some("installationTemplate") if seg != "templateInfos" => Some("{templateName}"),
            Some("resource") => Some("{resourceURN}"),
            Some("tag") => Some("{key}"),
            _ => None,
        };
        match placeholder {
            Some(p) => {
                out.push_str(p);
                prev = None;
            }
            None => {
                out.push_str(seg);
                prev = Some(seg);
            }
        }
    }
    if empty {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_the_simulators_route_templates() {
        let cases = [
            ("GET", "/auth/time", "GET /auth/time"),
            (
                "GET",
                "/dedicated/server?iamTags=%7B%22x%22%7D",
                "GET /dedicated/server",
            ),
            (
                "GET",
                "/dedicated/server/ns1.ip-1-2-3.eu",
                "GET /dedicated/server/{serviceName}",
            ),
            (
                "GET",
                "/dedicated/server/a.eu,b.eu,c.eu",
                "GET /dedicated/server/{serviceName}",
            ),
            (
                "GET",
                "/dedicated/server/ns1.eu/boot?bootType=rescue",
                "GET /dedicated/server/{serviceName}/boot",
            ),
            (
                "GET",
                "/dedicated/server/ns1.eu/boot/1,22,23",
                "GET /dedicated/server/{serviceName}/boot/{bootId}",
            ),
            (
                "GET",
                "/dedicated/server/ns1.eu/task?status=doing",
                "GET /dedicated/server/{serviceName}/task",
            ),
            (
                "POST",
                "/dedicated/server/ns1.eu/task/77/cancel",
                "POST /dedicated/server/{serviceName}/task/{taskId}/cancel",
            ),
            (
                "GET",
                "/dedicated/server/ns1.eu/specifications/hardware",
                "GET /dedicated/server/{serviceName}/specifications/hardware",
            ),
            (
                "GET",
                "/dedicated/server/ns1.eu/install/compatibleTemplates",
                "GET /dedicated/server/{serviceName}/install/compatibleTemplates",
            ),
            (
                "GET",
                "/dedicated/installationTemplate/templateInfos",
                "GET /dedicated/installationTemplate/templateInfos",
            ),
            (
                "GET",
                "/dedicated/installationTemplate/debian12_64",
                "GET /dedicated/installationTemplate/{templateName}",
            ),
            (
                "DELETE",
                "/v2/iam/resource/urn:v1:eu:resource:dedicatedServer:ns1/tag/ovhform%3Afp",
                "DELETE /v2/iam/resource/{resourceURN}/tag/{key}",
            ),
            ("POST", "/auth/oauth2/token", "POST /auth/oauth2/token"),
            ("GET", "", "GET /"),
        ];
        for (method, path, want) in cases {
            assert_eq!(route_template(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn an_id_spelling_a_collection_name_is_still_an_id() {
        assert_eq!(
            route_template("GET", "/dedicated/server/task/task"),
            "GET /dedicated/server/{serviceName}/task"
        );
    }

    #[test]
    fn clones_count_together() {
        let m = Meter::new();
        let c = m.clone();
        m.record("GET", "/dedicated/server/a/task");
        c.record("GET", "/dedicated/server/b/task");
        assert_eq!(m.total(), 2);
        assert_eq!(m.route("GET /dedicated/server/{serviceName}/task"), 2);
        assert_eq!(m.route("GET /nothing"), 0);
    }
}
