//! The one integration test binary: one module per area.

mod isolation;
mod manifest;
mod observe_sim;
mod ovh_client;
mod pipeline;
mod plan;
mod plan_cli;
mod plan_facts;
mod plan_laws;
mod plan_render;
mod plan_rules;
mod plan_trust;
mod readme_recipe;
mod sim_behaviour;
mod sim_hostile;
mod sim_python;
mod sim_schema;
mod sim_support;
mod state;
mod state_cli;
