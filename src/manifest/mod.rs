//! Manifests: YAML in, validated desired state out. The only room that knows about YAML and
//! source spans; everything it hands on is the plain data of [`crate::model`].
//!
//! Owns: reading manifest trees ([`load`]), their diagnostics ([`Diagnostics`]), the canonical
//! reinstall request, its publishable form ([`public_request`]) and [`fingerprint`], and the
//! JSON [`schema`]. Must not touch: the API, the planner, the state store.
//!
//! Pipeline: `source` (find, read, parse files in parallel into spanned [`node::Node`] trees) →
//! `load` (classify documents by kind, resolve group membership, merge templates under server
//! specs node by node) → `raw` (convert to typed raw structs, reporting every unknown field,
//! wrong type, missing field) → `validate` (the API's static rules) → `build` (resolve files and
//! environment, build the `dedicated.server.Reinstall` body) → `public` (the body with API
//! defaults normalised and secrets replaced, and its fingerprint).

pub mod build;
pub mod diag;
pub mod load;
pub mod node;
pub mod public;
pub mod raw;
pub mod schema;
pub mod source;
pub mod validate;

pub use diag::{Code, Diag, Diagnostics};
pub use load::{Loaded, load};
pub use public::{
    CREDENTIAL_PLACEHOLDER, FINGERPRINT_ALGORITHM, SECRET_PLACEHOLDER, canonical_json,
};
pub use schema::schema;

/// [`load`] for callers that do not show warnings: the desired state alone.
pub fn load_desired(paths: &[std::path::PathBuf]) -> Result<crate::model::Desired, Diagnostics> {
    load(paths).map(|l| l.desired)
}

/// The fingerprint of a reinstall request, algorithm [`FINGERPRINT_ALGORITHM`]:
/// `"sha256:" + hex(sha256(canonical JSON of the public request))` — API defaults normalised,
/// secrets at `secret_paths` (and scripts, user data) replaced by `"<secret>"`, `httpHeaders`
/// values by `"<credential>"`. Identical for identical installations whatever the YAML looked
/// like; holds nothing secret, so it may be published.
pub fn fingerprint(
    request: &serde_json::Value,
    secret_paths: &std::collections::BTreeSet<String>,
) -> String {
    public::fingerprint(request, secret_paths)
}

/// The secret texts of `spec`'s request as sent (see `public::secret_texts`): what an API
/// answer to it must not be allowed to quote back.
pub fn secret_texts(spec: &crate::model::InstallSpec) -> Vec<String> {
    public::secret_texts(&spec.request, &spec.secret_paths)
}

/// What [`fingerprint`] hashes for `spec`: its request with API defaults normalised and every
/// secret and credential replaced by a placeholder. Safe to show and to compare; it is not the
/// body that is POSTed (that is `spec.request`).
pub fn public_request(spec: &crate::model::InstallSpec) -> serde_json::Value {
    public::public_request(&spec.request, &spec.secret_paths)
}
