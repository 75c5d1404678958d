//! The OVHcloud API client.
//!
//! Owns: endpoints and credentials (`config`), the pure request signer (`sign`), the HTTP
//! transport behind a trait (`transport`), the typed routes ovhform uses (`routes`, `types`),
//! what a consumer key must be allowed to call and how its access rules compare (`access`),
//! the request budget and retry rules (`budget`, `client`), per-run request meters (`meter`),
//! the API-call economy (expanded listings, batch GETs, the `iamTags` filter, each with its
//! remembered fallback; caches that can be exported and seeded as [`FactsSnapshot`]), the
//! guard against paths URL normalisation would rewrite, and the legacy `install/start`
//! mapping (`legacy`).
//!
//! Must not touch: planning decisions, manifests, the simulator. Nothing here decides what to
//! change; it only says what the API answered. Secrets never leave this module in clear: every
//! type that holds one redacts it in `Debug`, and errors never carry headers or signatures.

pub mod access;
mod budget;
mod client;
mod config;
mod error;
mod legacy;
mod meter;
mod routes;
mod sign;
mod transport;
pub mod types;

pub use access::{AccessRule, Assessment, Purpose, assess, minimal_rules};
pub use budget::Budget;
pub use client::{Client, Mode, Slot, WallClock};
pub use config::{
    ClientConfig, ConfigInput, ConfigSources, Credentials, ENDPOINT_NAMES, Endpoint, InstallApi,
    Secret,
};
pub use error::{ApiError, Error};
pub use legacy::{LegacyMappingError, install_start_from_reinstall};
pub use meter::{Meter, route_template};
pub use routes::{
    FactsSnapshot, Fetched, Objects, RelevantTasks, ServerObjects, StartedTask, TagSource,
    TaggedServers, planned_intervention_path, planned_interventions_path,
};
pub use sign::sign;
pub use transport::{
    BoxFuture, HttpRequest, HttpResponse, ReqwestTransport, Transport, TransportError,
};
