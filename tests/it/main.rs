//! The one integration test binary: one module per area.

mod api_reality;
mod apply_cli;
mod apply_e2e;
mod escape_edge;
mod isolation;
mod journal_model;
mod manifest;
mod observe_sim;
mod ovh_client;
mod pipeline;
mod plan;
mod plan_cli;
mod plan_facts;
mod plan_laws;
mod plan_render;
mod plan_trust;
mod readme_recipe;
mod secrets_e2e;
mod sim_behaviour;
mod sim_hostile;
mod sim_python;
mod sim_schema;
mod sim_support;
mod sim_switches;
mod state;
mod state_cli;
