//! The pure mapping from a `dedicated.server.Reinstall` body to the legacy
//! `POST /install/start` body (REFERENCE §3.2), for endpoints that still lag behind `/reinstall`.
//! os → `templateName`, hostname → `details.customHostname`, disk group → `details.diskGroupId`,
//! other customizations → `userMetadata` (maps flattened as `<name><i>Key`/`<name><i>Value`, as
//! the legacy BYOLinux guide did). What the legacy API cannot express — a custom partition
//! layout, hardware RAID, kept (`erase: false`) or several disk groups — is refused, never
//! dropped silently: dropping it would install something other than what was reviewed.

use serde_json::{Map, Value};

use super::types::{InstallCustom, InstallStart, KeyValue};

/// A reinstall request the legacy API cannot express.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the legacy install/start API cannot express {what} (hint: {hint})")]
pub struct LegacyMappingError {
    pub what: String,
    pub hint: String,
}

fn refuse(what: impl Into<String>) -> LegacyMappingError {
    LegacyMappingError {
        what: what.into(),
        hint: "use --install-api reinstall, or drop it from the manifest's install spec".into(),
    }
}

/// Map a reinstall body to an `install/start` body, or say precisely what cannot be mapped.
pub fn install_start_from_reinstall(body: &Value) -> Result<InstallStart, LegacyMappingError> {
    let obj = body
        .as_object()
        .ok_or_else(|| refuse("a reinstall body that is not a JSON object"))?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "operatingSystem" | "customizations" | "storage" | "properties"
        ) {
            return Err(refuse(format!("the reinstall field `{key}`")));
        }
    }
    let template_name = obj
        .get("operatingSystem")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("a reinstall body without `operatingSystem`"))?
        .to_string();
    if obj
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
    {
        return Err(refuse(
            "`properties` (deprecated top-level config-drive properties)",
        ));
    }
    let mut details = InstallCustom::default();
    let mut partition_scheme_name = None;
    if let Some(storage) = obj.get("storage") {
        let entries = storage
            .as_array()
            .ok_or_else(|| refuse("a `storage` that is not a list"))?;
        if entries.len() > 1 {
            return Err(refuse(
                "several `storage` entries (kept disk groups or several disk groups)",
            ));
        }
        if let Some(entry) = entries.first() {
            let entry = entry
                .as_object()
                .ok_or_else(|| refuse("a `storage` entry that is not an object"))?;
            for (k, v) in entry {
                match k.as_str() {
                    "diskGroupId" if v.is_null() => {}
                    "diskGroupId" => {
                        let id = v.as_u64().and_then(|n| u32::try_from(n).ok());
                        details.disk_group_id =
                            Some(id.ok_or_else(|| {
                                refuse(format!("`storage[0].diskGroupId` = {v}"))
                            })?);
                    }
                    "erase" => return Err(refuse("`storage[0].erase` (keeping a disk group)")),
                    "hardwareRaid" => {
                        return Err(refuse("`storage[0].hardwareRaid` (hardware RAID)"));
                    }
                    "partitioning" => partition_scheme_name = legacy_partitioning(v)?,
                    other => return Err(refuse(format!("`storage[0].{other}`"))),
                }
            }
        }
    }
    let mut user_metadata = Vec::new();
    if let Some(c) = obj.get("customizations") {
        let c = c
            .as_object()
            .ok_or_else(|| refuse("`customizations` that is not an object"))?;
        for (k, v) in c {
            if k == "hostname" {
                details.custom_hostname = Some(
                    v.as_str()
                        .ok_or_else(|| refuse("a `customizations.hostname` that is not a string"))?
                        .to_string(),
                );
                continue;
            }
            flatten(k, v, &mut user_metadata)?;
        }
    }
    let details = (details != InstallCustom::default()).then_some(details);
    Ok(InstallStart {
        template_name,
        partition_scheme_name,
        details,
        user_metadata,
    })
}

/// Only a named scheme (`schemeName`) has a legacy equivalent.
fn legacy_partitioning(v: &Value) -> Result<Option<String>, LegacyMappingError> {
    let p: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| refuse("a `partitioning` that is not an object"))?;
    let mut scheme = None;
    for (k, v) in p {
        match k.as_str() {
            "schemeName" => scheme = v.as_str().map(str::to_string),
            "layout" => {
                return Err(refuse(
                    "a custom partition layout (`storage[0].partitioning.layout`)",
                ));
            }
            "disks" => return Err(refuse("`storage[0].partitioning.disks` (a disk count)")),
            other => return Err(refuse(format!("`storage[0].partitioning.{other}`"))),
        }
    }
    Ok(scheme)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flatten(name: &str, v: &Value, out: &mut Vec<KeyValue>) -> Result<(), LegacyMappingError> {
    if let Some(s) = scalar(v) {
        out.push(KeyValue {
            key: name.to_string(),
            value: s,
        });
        return Ok(());
    }
    match v {
        Value::Null => Ok(()),
        Value::Object(map) if name == "httpHeaders" => {
            for (i, (k, val)) in map.iter().enumerate() {
                let val = scalar(val).ok_or_else(|| {
                    refuse(format!("a non-string value in `customizations.{name}`"))
                })?;
                out.push(KeyValue {
                    key: format!("{name}{i}Key"),
                    value: k.clone(),
                });
                out.push(KeyValue {
                    key: format!("{name}{i}Value"),
                    value: val,
                });
            }
            Ok(())
        }
        _ => Err(refuse(format!("the structured customization `{name}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_os_hostname_disk_group_and_metadata() {
        let body = json!({
            "operatingSystem": "debian12_64",
            "customizations": {"hostname": "web-01", "sshKey": "ssh-ed25519 AAAA", "httpHeaders": {"Authorization": "Basic x"}},
            "storage": [{"diskGroupId": 2}]
        });
        let got = install_start_from_reinstall(&body).unwrap();
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            json!({
                "templateName": "debian12_64",
                "details": {"customHostname": "web-01", "diskGroupId": 2},
                "userMetadata": [
                    {"key": "httpHeaders0Key", "value": "Authorization"},
                    {"key": "httpHeaders0Value", "value": "Basic x"},
                    {"key": "sshKey", "value": "ssh-ed25519 AAAA"}
                ]
            })
        );
        let bare =
            install_start_from_reinstall(&json!({"operatingSystem": "debian12_64"})).unwrap();
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"templateName": "debian12_64"})
        );
    }

    #[test]
    fn refuses_what_legacy_cannot_express() {
        let cases = [
            (
                json!({"operatingSystem": "d", "storage": [{"partitioning": {"layout": [{"mountPoint": "/", "fileSystem": "ext4"}]}}]}),
                "custom partition layout",
            ),
            (
                json!({"operatingSystem": "d", "storage": [{"hardwareRaid": [{"raidLevel": 1}]}]}),
                "hardware RAID",
            ),
            (
                json!({"operatingSystem": "d", "storage": [{"diskGroupId": 1}, {"diskGroupId": 2, "erase": false}]}),
                "kept disk groups",
            ),
            (
                json!({"operatingSystem": "d", "customizations": {"configDriveMetadata": {"a": "b"}}}),
                "configDriveMetadata",
            ),
            (json!({"customizations": {}}), "without `operatingSystem`"),
        ];
        for (body, want) in cases {
            let err = install_start_from_reinstall(&body).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(err.contains("--install-api reinstall"), "{err}");
        }
    }
}
