//! JSON rendering (`--format json`, and the body of a saved plan): the [`Plan`] itself, with
//! `format_version`, per server its ordered actions (`type`, `destructive`, `reason`,
//! `blocked_by`, details), drift and findings, plus a `summary` object.

use serde::Serialize;

use crate::plan::{Plan, Summary};

#[derive(Serialize)]
struct WithSummary<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    summary: Summary,
}

/// Pretty JSON, stable key order (everything is a struct or a `BTreeMap`), trailing newline.
/// `Plan::from_json` reads it back (the extra `summary` key is ignored).
pub fn render_json(plan: &Plan) -> String {
    let v = WithSummary {
        plan,
        summary: plan.summary(),
    };
    // Serializing plain structs and maps with string keys cannot fail.
    let mut s =
        serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
