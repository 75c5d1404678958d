//! The one integration test binary: one module per area.

mod ovh_client;
mod plan;
mod plan_laws;
mod plan_render;
mod state;
