//! The single integration-test binary; one module per area.

mod sim_behaviour;
mod sim_python;
mod sim_schema;
mod sim_support;
