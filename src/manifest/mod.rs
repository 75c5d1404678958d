//! Manifests: YAML in, validated desired state out. The only room that knows about YAML and
//! source spans; everything it hands on is the plain data of [`crate::model`].
//!
//! Owns: reading manifest trees ([`load`]), their diagnostics ([`Diagnostics`]), the canonical
//! reinstall request and its [`fingerprint`], and the JSON [`schema`]. Must not touch: the API,
//! the planner, the state store.
//!
//! Pipeline: `source` (find, read, parse files in parallel into spanned [`node::Node`] trees) →
//! `load` (classify documents by kind, resolve group membership, merge templates under server
//! specs node by node) → `raw` (convert to typed raw structs, reporting every unknown field,
//! wrong type, missing field) → `validate` (the API's static rules) → `build` (resolve files and
//! environment, build the `dedicated.server.Reinstall` body, fingerprint it).

pub mod build;
pub mod diag;
pub mod load;
pub mod node;
pub mod raw;
pub mod schema;
pub mod source;
pub mod validate;

pub use diag::{Code, Diag, Diagnostics};
pub use load::{Loaded, load};
pub use schema::schema;

/// [`load`] for callers that do not show warnings: the desired state alone.
pub fn load_desired(paths: &[std::path::PathBuf]) -> Result<crate::model::Desired, Diagnostics> {
    load(paths).map(|l| l.desired)
}

/// `"sha256:" + hex(sha256(canonical JSON))` of a reinstall request: keys sorted at every
/// level, no whitespace. Identical for identical requests whatever the YAML looked like.
pub fn fingerprint(request: &serde_json::Value) -> String {
    build::fingerprint(request)
}
