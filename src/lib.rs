//! ovhform: a plan/apply reconciler for OVHcloud dedicated servers.
//!
//! # Layout
//! The crate is split into rooms that meet only through the plain types of [`model`]:
//!
//! - [`manifest`]: YAML in, validated [`model::Desired`] out. The only room that knows about
//!   source spans; every diagnostic it emits names file:line:column.
//! - [`plan`]: the pure planner, `plan(desired, observed, records, input) -> Plan`. No I/O, no
//!   clock, no async. The safety rules live here.
//! - [`ovh`]: the OVHcloud API client: pure signer and request builders, credentials, a
//!   transport behind a trait.
//! - [`observe`]: reads the live fleet through the client into [`model::Observed`]; decides
//!   nothing.
//! - [`sim`]: the OVHcloud API simulator (same HTTP surface as the real API).
//! - [`state`]: records of what was applied, the lock around them, and the facts cache.
//! - [`pipeline`]: the one async function `plan`, `demo` (and later apply and the daemon) call:
//!   observe → merge records → detail where needed → plan → lint, with per-run call counts,
//!   progress events and the facts cache around the detail read.
//! - [`apply`]: the executor: one attempt at running a reviewed plan (intent journal around
//!   every reinstall, task tracking, records); the only composer of destructive I/O.
//! - [`import`]: the live servers written out as manifests that describe them (pure; the
//!   CLI reads the account and writes the files).
//! - [`cli`]: one function per subcommand, and the renderings of diagnostics.
//! - `fuzzing` (hidden): the fuzz targets' bodies and the properties they check, shared by
//!   `fuzz/` (nightly, cargo-fuzz) and the stable replay in `tests/it/fuzz_replay.rs`.
//! - [`escape`]: how text from outside (API, tags, records — and manifests) is shown on a
//!   terminal or in Markdown: never raw.
//!
//! Data flow: `manifest::load` → `Desired` (at the CLI edge); `pipeline::run` drives `observe`
//! → `Observed`, `state` → `Records`, `plan::plan` → `Plan` and `plan::lint`; `cli` renders.

// No unsafe code anywhere in ovhform: memory safety is the compiler's, not a review's.
#![forbid(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod daemon;
pub mod escape;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod manifest;
pub mod model;
pub mod observe;
pub mod ovh;
pub mod pipeline;
pub mod plan;
pub mod sim;
pub mod state;
