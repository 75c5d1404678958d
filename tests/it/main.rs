//! The one integration test binary: one module per area.

mod ovh_client;
mod state;
