//! The one bridge from the simulator to ovhform's own client: a client configuration signed with
//! a running simulator's credentials, for the demo, tests and benchmarks.
//!
//! Owns: nothing but that wiring. Must not touch: the simulator's behaviour — the simulator
//! itself never calls this, and answers are still built from OVH's schemas, not from the
//! client's types (see the room's doc).

use crate::ovh::{self, ClientConfig, Credentials, Endpoint, Secret};

use super::SimHandle;

/// A client configuration for `handle`'s base URL and application-key credentials, without a
/// request budget (the simulator has no fair-use limit unless asked for one). Adjust it (e.g.
/// `requests_per_minute`) before building the client.
pub fn client_config(handle: &SimHandle) -> Result<ClientConfig, ovh::Error> {
    let creds = handle.credentials();
    Ok(ClientConfig {
        requests_per_minute: 0,
        ..ClientConfig::new(
            Endpoint::parse(&handle.base_url())?,
            Credentials::ApplicationKey {
                application_key: creds.application_key.clone(),
                application_secret: Secret::new(creds.application_secret.clone()),
                consumer_key: Secret::new(creds.consumer_key.clone()),
            },
        )
    })
}

/// A ready client for `handle` (see [`client_config`]).
pub fn client_for(handle: &SimHandle) -> Result<ovh::Client, ovh::Error> {
    ovh::Client::new(client_config(handle)?)
}
