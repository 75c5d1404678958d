//! The daemon's Prometheus metrics (`/metrics`, OpenMetrics text), documented in
//! docs/operations.md "Metrics".
//!
//! Owns: the registry and every family's name, labels and meaning. Must not touch: deciding
//! anything. Label values are ovhform's own words (reasons, action kinds, statuses, route
//! templates, HTTP statuses) — never a server name, a tag value or an API message, so nothing
//! hostile or secret reaches a scrape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    pub reason: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    pub passes: Family<PassLabels, Counter>,
    pub pass_seconds: Histogram,
    pub actions: Family<ActionLabels, Counter>,
    pub servers: Family<StatusLabels, Gauge>,
    pub api_requests: Family<RouteLabels, Counter>,
    pub budget_left: Gauge<i64, AtomicI64>,
    pub tasks_in_flight: Gauge,
    pub leader: Gauge,
    pub manifest_errors: Gauge,
    pub last_pass: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ovhform");
        let passes = Family::<PassLabels, Counter>::default();
        registry.register(
            "reconcile_passes",
            "Reconcile passes by trigger reason and outcome (ok, error, standby)",
            passes.clone(),
        );
        let pass_seconds =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]);
        registry.register(
            "reconcile_pass_duration_seconds",
            "Wall time of reconcile passes (planning and apply)",
            pass_seconds.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Planned actions by kind and how apply ended them",
            actions.clone(),
        );
        let servers = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "servers",
            "Servers by status after the last pass",
            servers.clone(),
        );
        let api_requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "api_requests",
            "OVHcloud API requests by route template and answer status",
            api_requests.clone(),
        );
        let budget_left = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "api_budget_left",
            "Requests the client may still send in the current minute",
            budget_left.clone(),
        );
        let tasks_in_flight = Gauge::default();
        registry.register(
            "tasks_in_flight",
            "OVH tasks (installations, reboots) running on managed servers",
            tasks_in_flight.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this replica acts, 0 on a standby",
            leader.clone(),
        );
        let manifest_errors = Gauge::default();
        registry.register(
            "manifest_errors",
            "1 while the manifests fail to load (the last valid state is used)",
            manifest_errors.clone(),
        );
        let last_pass = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_pass_timestamp_seconds",
            "Unix time the last pass ended",
            last_pass.clone(),
        );
        for status in super::status::ServerStatus::LABELS {
            servers
                .get_or_create(&StatusLabels {
                    status: status.into(),
                })
                .set(0);
        }
        Metrics {
            registry,
            passes,
            pass_seconds,
            actions,
            servers,
            api_requests,
            budget_left,
            tasks_in_flight,
            leader,
            manifest_errors,
            last_pass,
        }
    }

    /// Sets the per-status gauges from one pass's counts (statuses absent go to 0).
    pub fn set_servers(&self, counts: &BTreeMap<&'static str, i64>) {
        for status in super::status::ServerStatus::LABELS {
            self.servers
                .get_or_create(&StatusLabels {
                    status: status.into(),
                })
                .set(counts.get(status).copied().unwrap_or(0));
        }
    }

    /// Adds one pass's API answers.
    pub fn add_answers(&self, answers: &BTreeMap<(String, String), u64>) {
        for ((route, status), n) in answers {
            self.api_requests
                .get_or_create(&RouteLabels {
                    route: route.clone(),
                    status: status.clone(),
                })
                .inc_by(*n);
        }
    }

    /// The OpenMetrics text of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
