//! The JSON Schema of every manifest kind, for editors (yaml-language-server) and for tests.
//!
//! Owns: assembling the per-kind schemas derived on the raw types into one document. Must not
//! touch: the raw types themselves (the schema is derived from them, never written by hand).

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::raw::{RawGroupDoc, RawServerDoc, RawWindowDoc};

/// One JSON Schema (draft 2020-12) accepting any one manifest document: `oneOf` the three
/// kinds, each pinned by its `kind` constant so editors pick the right one.
pub fn schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let server = generator.subschema_for::<RawServerDoc>();
    let group = generator.subschema_for::<RawGroupDoc>();
    let window = generator.subschema_for::<RawWindowDoc>();
    let defs = generator.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:ovhform:manifest:v1",
        "title": "ovhform manifest (apiVersion ovhform/v1)",
        "description": "One document of an ovhform manifest file: a Server, a ServerGroup or a MaintenanceWindow. See docs/manifest.md.",
        "oneOf": [server, group, window],
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_names_every_kind() {
        let s = super::schema();
        let text = s.to_string();
        for kind in [
            "\"Server\"",
            "\"ServerGroup\"",
            "\"MaintenanceWindow\"",
            "keepDiskGroups",
            "ipxeScript",
        ] {
            assert!(text.contains(kind), "{kind} missing");
        }
        assert_eq!(s["oneOf"].as_array().map(Vec::len), Some(3));
    }
}
