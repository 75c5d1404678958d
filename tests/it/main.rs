mod plan;
mod plan_laws;
mod plan_render;
