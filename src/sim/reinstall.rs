//! Validation of `POST /dedicated/server/{sn}/reinstall` and the legacy `install/start`
//! bodies, with the real error classes and messages of REFERENCE §3.1.
//!
//! Owns: request → [`InstallPlan`] or [`ApiError`]. Must not touch: world state (the caller
//! creates the task). Where the real API's class is not published, the code says so.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::catalog::Template;
use super::http::ApiError;
use super::world::{InstallPlan, Server};

fn bad(class: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(400, &format!("Client::BadRequest::{class}"), message)
}

/// Generic type errors: the API's own wording for these is not published [inferred].
fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::new(400, "Client::BadRequest", format!("[{field}] {problem}"))
}

const TOP_KEYS: &[&str] = &["operatingSystem", "customizations", "storage", "properties"];
const STORAGE_KEYS: &[&str] = &["diskGroupId", "hardwareRaid", "partitioning", "erase"];
const HW_RAID_LEVELS: &[i64] = &[0, 1, 5, 6, 10, 50, 60];
const SOFT_RAID_LEVELS: &[i64] = &[0, 1, 5, 6, 7, 10];
const FILESYSTEMS: &[&str] = &[
    "btrfs", "ext3", "ext4", "fat16", "none", "ntfs", "reiserfs", "swap", "ufs", "vmfs5", "vmfs6",
    "vmfsl", "xfs", "zfs",
];
/// Customizations the 2026 schema declares, with the JSON type each takes.
const CUSTOMIZATIONS: &[(&str, &str)] = &[
    ("configDriveMetadata", "map"),
    ("configDriveUserData", "string"),
    ("efiBootloaderPath", "string"),
    ("enableLacpBonding", "boolean"),
    ("hostname", "string"),
    ("httpHeaders", "map"),
    ("imageCheckSum", "string"),
    ("imageCheckSumType", "string"),
    ("imageType", "string"),
    ("imageURL", "string"),
    ("language", "string"),
    ("nutanixConfiguration", "map"),
    ("postInstallationScript", "string"),
    ("postInstallationScriptExtension", "string"),
    ("sshKey", "string"),
    ("version", "string"),
];
/// Biggest accepted text customization (scripts, user data) [inferred limit].
const MAX_CUSTOMIZATION_BYTES: usize = 32 * 1024;

/// Checks that only depend on the server and the chosen OS, shared by both install routes.
fn check_os<'t>(
    server: &Server,
    templates: &'t [Template],
    os: &str,
) -> Result<&'t Template, ApiError> {
    let template = templates.iter().find(|t| t.name == os).ok_or_else(|| {
        ApiError::new(
            404,
            "Client::NotFound::OperatingSystem",
            format!("Operating system {os} could not be found"),
        )
    })?;
    if !server.compatible_templates.iter().any(|c| c == os) {
        return Err(ApiError::new(
            409,
            "Client::Conflict::OperatingSystemIncompatible",
            format!(
                "Operating system {os} is not compatible for server {}",
                server.name
            ),
        ));
    }
    if let Some(task) = server.pending_task() {
        return Err(bad(
            "TaskAlreadyExists",
            format!(
                "Task {} of type {} with status {} is already running on server {}",
                task.id,
                task.function,
                task.status.as_str(),
                server.name
            ),
        ));
    }
    Ok(template)
}

/// Validate a `dedicated.server.Reinstall` body against `server`.
pub fn validate(
    server: &Server,
    templates: &[Template],
    body: &Value,
) -> Result<InstallPlan, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
        return Err(invalid(k, "Unknown parameter"));
    }
    let os = match obj.get("operatingSystem") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("operatingSystem", "must be a string")),
        None => return Err(invalid("operatingSystem", "Property is mandatory")),
    };
    let template = check_os(server, templates, os)?;
    if let Some(props) = obj.get("properties") {
        // Deprecated in 2026 in favour of customizations.configDriveMetadata; still accepted.
        string_map(props).map_err(|p| invalid("properties", p))?;
    }
    let customs = match obj.get("customizations") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(invalid("customizations", "must be an object")),
    };
    check_customizations(template, &customs)?;
    let storage = match obj.get("storage") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(invalid("storage", "must be an array")),
    };
    let (os_group, keep) = check_storage(server, template, &storage)?;
    Ok(InstallPlan {
        os: os.to_string(),
        os_disk_group: os_group,
        keep_disk_groups: keep,
        efi_bootloader_path: customs
            .get("efiBootloaderPath")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| template.efi_bootloader_path.map(str::to_string)),
        hostname: customs
            .get("hostname")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// How the published messages name a disk group (`{{.diskGroupName}}`) [inferred wording].
fn dg_name(id: impl std::fmt::Display) -> String {
    format!("disk group {id}")
}

fn string_map(v: &Value) -> Result<BTreeMap<String, String>, &'static str> {
    let m = v.as_object().ok_or("must be an object of strings")?;
    m.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or("must be an object of strings")
        })
        .collect()
}

fn check_customizations(t: &Template, customs: &Map<String, Value>) -> Result<(), ApiError> {
    let format_err = |name: &str, kind: &str, msg: &str| {
        bad(
            "CustomizationInvalidFormat",
            format!("Invalid customization format for {name} of type {kind}: {msg}"),
        )
    };
    for (name, value) in customs {
        let declared = CUSTOMIZATIONS.iter().find(|(n, _)| n == name);
        let input = t.input(name);
        let (Some((_, json_type)), Some(input)) = (declared, input) else {
            return Err(bad(
                "CustomizationName",
                format!(
                    "Customization {name} doesn't exist for operating system {}",
                    t.name
                ),
            ));
        };
        match *json_type {
            "map" => {
                string_map(value).map_err(|m| format_err(name, input.kind, m))?;
            }
            "boolean" if !value.is_boolean() => {
                return Err(format_err(name, input.kind, "must be a boolean"));
            }
            "string" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| format_err(name, input.kind, "must be a string"))?;
                if s.len() > MAX_CUSTOMIZATION_BYTES {
                    return Err(bad(
                        "CustomizationSizeExceeded",
                        format!(
                            "Customization is {} big, which is exceeding limit of {MAX_CUSTOMIZATION_BYTES}",
                            s.len()
                        ),
                    ));
                }
                if !input.enum_values.is_empty() && !input.enum_values.contains(&s) {
                    return Err(format_err(
                        name,
                        input.kind,
                        &format!("must be one of {}", input.enum_values.join(", ")),
                    ));
                }
                if name == "hostname" {
                    check_hostname(s)?;
                }
            }
            _ => {}
        }
    }
    for input in &t.inputs {
        if input.mandatory && input.default.is_none() && !customs.contains_key(input.name) {
            // Documented behaviour ("the API will return an error"); the class is not
            // published, so this one is [inferred].
            return Err(bad(
                "CustomizationMandatory",
                format!(
                    "Customization {} is mandatory for operating system {}",
                    input.name, t.name
                ),
            ));
        }
    }
    if customs.contains_key("imageCheckSum") != customs.contains_key("imageCheckSumType") {
        return Err(bad(
            "IncompatibleParams",
            "Incompatible imageCheckSum and imageCheckSumType parameters",
        ));
    }
    Ok(())
}

fn check_hostname(h: &str) -> Result<(), ApiError> {
    if h.len() > 255 {
        return Err(bad(
            "HostnameSizeExceeded",
            format!(
                "Hostname provided is {} length. It shall not be longer than 255 characters, see RFC 1035, section 2.3.4",
                h.len()
            ),
        ));
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphabetic()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    match h.split('.').find(|l| !label_ok(l)) {
        None => Ok(()),
        Some(label) => Err(bad(
            "HostnameInvalidFormat",
            format!(
                "Invalid hostname {label}; must contain no more than 63 characters, start with a letter, end with a \
                 letter or a digit and contain only letters, digits and hyphens, see RFC 1035, section 2.3.1"
            ),
        )),
    }
}

fn int_field(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<i64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(&format!("{at}.{key}"), "must be an integer")),
    }
}

/// Returns the OS disk group and the disk groups kept with `erase: false`.
fn check_storage(
    server: &Server,
    t: &Template,
    storage: &[Value],
) -> Result<(u32, BTreeSet<u32>), ApiError> {
    let mut seen = BTreeSet::new();
    let mut keep = BTreeSet::new();
    let mut install: Option<(u32, &Map<String, Value>, String)> = None;
    let group = |id: i64| -> Result<u32, ApiError> {
        // 0 / absent means "automatic", i.e. disk group 1 (D:partitioning_ovh).
        let id = if id == 0 { 1 } else { id };
        server
            .disk_groups
            .iter()
            .find(|g| i64::from(g.id) == id)
            .map(|g| g.id)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "Client::NotFound::DiskGroup",
                    format!(
                        "{} could not be found on server {}",
                        dg_name(id),
                        server.name
                    ),
                )
            })
    };
    for (i, entry) in storage.iter().enumerate() {
        let at = format!("storage.{i}");
        let obj = entry
            .as_object()
            .ok_or_else(|| invalid(&at, "must be an object"))?;
        if let Some(k) = obj.keys().find(|k| !STORAGE_KEYS.contains(&k.as_str())) {
            return Err(invalid(&format!("{at}.{k}"), "Unknown parameter"));
        }
        let id = group(int_field(obj, "diskGroupId", &at)?.unwrap_or(0))?;
        // The erase-only rules below are documented (2026-09, REFERENCE "erase:false") but their
        // error classes are NOT published; these `Client::BadRequest::…` names are ours.
        if !seen.insert(id) {
            return Err(bad(
                "DiskGroupDuplicated",
                format!("Disk group {id} appears more than once in storage"),
            ));
        }
        let erase = match obj.get("erase") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(invalid(&format!("{at}.erase"), "must be a boolean")),
        };
        let configures = obj.contains_key("hardwareRaid") || obj.contains_key("partitioning");
        match erase {
            Some(false) if configures => {
                return Err(bad(
                    "DiskGroupEraseIncompatible",
                    format!(
                        "Disk group {id} cannot be kept (erase: false) and configured for the installation"
                    ),
                ));
            }
            Some(false) => {
                keep.insert(id);
            }
            _ if erase.is_some() && !configures && obj.len() == 2 => {
                // `{diskGroupId, erase: true}`: the same as not listing the group.
            }
            _ => {
                if install.is_some() {
                    let n = storage
                        .iter()
                        .filter(|e| e.get("erase") != Some(&Value::Bool(false)))
                        .count();
                    return Err(ApiError::new(
                        501,
                        "Server::NotImplemented::DiskGroupMultipleConfigs",
                        format!("Multiple ({n}) disk groups customization not implemented"),
                    ));
                }
                install = Some((id, obj, at));
            }
        }
    }
    let os_group = install.as_ref().map(|(id, _, _)| *id).unwrap_or(1);
    if keep.contains(&os_group) {
        return Err(bad(
            "DiskGroupEraseForbidden",
            format!(
                "Disk group {os_group} receives the operating system and cannot be kept (erase: false)"
            ),
        ));
    }
    if let Some((id, obj, at)) = install {
        let dg = server
            .disk_groups
            .iter()
            .find(|g| g.id == id)
            .expect("group checked above");
        let mut hw_raid = false;
        if let Some(hr) = obj.get("hardwareRaid") {
            let arr = hr
                .as_array()
                .ok_or_else(|| invalid(&format!("{at}.hardwareRaid"), "must be an array"))?;
            if arr.len() > 1 {
                return Err(ApiError::new(
                    501,
                    "Server::NotImplemented::HardwareRaidMultipleConfigs",
                    format!(
                        "Multiple ({}) hardware RAID configurations not implemented",
                        arr.len()
                    ),
                ));
            }
            if let Some(cfg) = arr.first() {
                let at = format!("{at}.hardwareRaid.0");
                let cfg = cfg
                    .as_object()
                    .ok_or_else(|| invalid(&at, "must be an object"))?;
                if let Some(k) = cfg
                    .keys()
                    .find(|k| !["arrays", "disks", "raidLevel", "spares"].contains(&k.as_str()))
                {
                    return Err(invalid(&format!("{at}.{k}"), "Unknown parameter"));
                }
                if dg.raid_controller.is_none() {
                    return Err(ApiError::new(
                        409,
                        "Client::Conflict::HardwareRaidIncompatibleOnDiskGroup",
                        format!(
                            "Hardware RAID is not supported by {} on server {}",
                            dg_name(id),
                            server.name
                        ),
                    ));
                }
                // Absent ⇒ RAID 1; explicit null ⇒ JBOD (S26), which needs no level check.
                let level = match cfg.get("raidLevel") {
                    Some(Value::Null) => None,
                    _ => Some(int_field(cfg, "raidLevel", &at)?.unwrap_or(1)),
                };
                if level.is_some_and(|l| !HW_RAID_LEVELS.contains(&l)) {
                    return Err(invalid(
                        &format!("{at}.raidLevel"),
                        "must be one of 0, 1, 5, 6, 10, 50, 60",
                    ));
                }
                // Counts come from the request: negative ones are refused and the sum saturates,
                // so no value can overflow (the simulator answers errors, it never panics).
                let count = |key: &str, default: i64| -> Result<i64, ApiError> {
                    let v = int_field(cfg, key, &at)?.unwrap_or(default);
                    if v < 0 {
                        return Err(invalid(&format!("{at}.{key}"), "must not be negative"));
                    }
                    Ok(v)
                };
                let arrays = count("arrays", 1)?.max(1);
                let disks = count("disks", i64::from(dg.number_of_disks))?;
                let spares = count("spares", 0)?;
                if disks.saturating_add(spares) > i64::from(dg.number_of_disks) {
                    return Err(ApiError::new(
                        409,
                        "Client::Conflict::HardwareRaidTooManyDisks",
                        format!(
                            "Hardware RAID involving more disks ({}) than the {} has ({}) is not possible on server {}",
                            disks.saturating_add(spares),
                            dg_name(id),
                            dg.number_of_disks,
                            server.name
                        ),
                    ));
                }
                if disks % arrays != 0 {
                    return Err(bad(
                        "HardwareRaidInvalidDisksArrays",
                        format!(
                            "Number of disks ({disks}) must be a multiple of arrays ({arrays})"
                        ),
                    ));
                }
                hw_raid = true;
            }
        }
        if let Some(p) = obj.get("partitioning") {
            let at = format!("{at}.partitioning");
            let p = p
                .as_object()
                .ok_or_else(|| invalid(&at, "must be an object"))?;
            check_partitioning(server, t, id, dg.number_of_disks, hw_raid, p, &at)?;
        }
    }
    Ok((os_group, keep))
}

const FORBIDDEN_MOUNTPOINTS: &[&str] = &[
    "/bin",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/lost+found",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr/bin",
];

fn check_partitioning(
    server: &Server,
    t: &Template,
    group: u32,
    group_disks: u32,
    hw_raid: bool,
    p: &Map<String, Value>,
    at: &str,
) -> Result<(), ApiError> {
    if let Some(k) = p
        .keys()
        .find(|k| !["disks", "layout", "schemeName"].contains(&k.as_str()))
    {
        return Err(invalid(&format!("{at}.{k}"), "Unknown parameter"));
    }
    if t.no_partitioning {
        return Err(bad(
            "PartitionIncompatibleCustomPartitioning",
            format!(
                "Operating system  {} doesn't support custom partitioning layout in {}",
                t.name,
                dg_name(group)
            ),
        ));
    }
    if let Some(s) = p.get("schemeName") {
        let s = s
            .as_str()
            .ok_or_else(|| invalid(&format!("{at}.schemeName"), "must be a string"))?;
        if s != "default" {
            return Err(ApiError::new(
                404,
                "Client::NotFound::SchemeName",
                format!(
                    "Partition scheme {s} not found for operating system {}",
                    t.name
                ),
            ));
        }
    }
    if let Some(disks) = int_field(p, "disks", at)? {
        if disks < 1 {
            return Err(invalid(&format!("{at}.disks"), "must be at least 1"));
        }
        if disks > i64::from(group_disks) {
            return Err(ApiError::new(
                409,
                "Client::Conflict::PartitioningTooManyDisks",
                format!(
                    "Partitioning involving more disks ({disks}) than the {} has ({group_disks}) is not possible on server {}",
                    dg_name(group),
                    server.name
                ),
            ));
        }
        // Mirroring-only OSes (Windows) use the first two disks at most.
        if t.soft_raid_only_mirroring && disks > 2 {
            return Err(ApiError::new(
                409,
                "Client::Conflict::PartitioningTooManyDisksOperatingSystem",
                format!(
                    "Partitioning involving more disks ({disks}) than the operating system {} supports (2) is not possible",
                    t.name
                ),
            ));
        }
        if hw_raid && disks > 1 {
            return Err(bad(
                "HardwareRaidPartitioningDisks",
                format!(
                    "Partitioning multiple ({disks}) disks is not possible while setting a hardware raid configuration \
                     on the same disk group, because the operating system will only see 1 single (virtual) disk"
                ),
            ));
        }
    }
    let Some(layout) = p.get("layout") else {
        return Ok(());
    };
    let layout = layout
        .as_array()
        .ok_or_else(|| invalid(&format!("{at}.layout"), "must be an array"))?;
    if layout.is_empty() || layout.len() > 128 {
        return Err(bad(
            "PartitionLength",
            format!(
                "Number of partitions defined in the layout is incorrect ({}): must be between 1 and 128 in {}",
                layout.len(),
                dg_name(group)
            ),
        ));
    }
    let windows = t.is_windows();
    let mut mounts = BTreeSet::new();
    let mut zp_names = BTreeSet::new();
    let mut fill = 0;
    let dgn = dg_name(group);
    for (i, part) in layout.iter().enumerate() {
        let at = format!("{at}.layout.{i}");
        // "for partition X at position N in disk group G", as in the published messages.
        let whr = |mp: &str| format!("for partition {mp} at position {} in {dgn}", i + 1);
        let part = part
            .as_object()
            .ok_or_else(|| invalid(&at, "must be an object"))?;
        if let Some(k) = part.keys().find(|k| {
            !["extras", "fileSystem", "mountPoint", "raidLevel", "size"].contains(&k.as_str())
        }) {
            return Err(invalid(&format!("{at}.{k}"), "Unknown parameter"));
        }
        let mp = match part.get("mountPoint") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(invalid(&format!("{at}.mountPoint"), "must be a string")),
            None => {
                return Err(invalid(
                    &format!("{at}.mountPoint"),
                    "Property is mandatory",
                ));
            }
        };
        let fs = match part.get("fileSystem") {
            Some(Value::String(s)) if FILESYSTEMS.contains(&s.as_str()) => s.as_str(),
            Some(_) => {
                return Err(invalid(
                    &format!("{at}.fileSystem"),
                    "must be one of the FileSystemEnum values",
                ));
            }
            None => {
                return Err(invalid(
                    &format!("{at}.fileSystem"),
                    "Property is mandatory",
                ));
            }
        };
        if !t.filesystems.contains(&fs) {
            return Err(bad(
                "PartitionIncompatibleFs",
                format!(
                    "fileSystem value {fs} is not compatible for operating system {} (must be one of {}) {}",
                    t.name,
                    t.filesystems.join(", "),
                    whr(mp)
                ),
            ));
        }
        let raid = match part.get("raidLevel") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(l) if SOFT_RAID_LEVELS.contains(&l) => Some(l),
                _ => {
                    return Err(bad(
                        "PartitionRaidLevel",
                        format!(
                            "raidLevel value {v} must be one of 0, 1, 5, 6, 7, 10 {}",
                            whr(mp)
                        ),
                    ));
                }
            },
        };
        let level = raid.unwrap_or(1);
        // Compatibility matrix of D:partitioning_ovh (REFERENCE §4.4).
        let allowed: &[i64] = match fs {
            "zfs" => &[0, 1, 5, 6, 7],
            "swap" | "ntfs" => &[1],
            _ => &[0, 1, 5, 6, 10],
        };
        if !allowed.contains(&level) {
            let expected: Vec<String> = allowed.iter().map(i64::to_string).collect();
            return Err(bad(
                "PartitionIncompatibleRaidLevel",
                format!(
                    "raidLevel value {level} must be one of {} for operating system {} {}",
                    expected.join(", "),
                    t.name,
                    whr(mp)
                ),
            ));
        }
        let size = int_field(part, "size", &at)?.unwrap_or(0);
        if size < 0 {
            return Err(bad(
                "PartitionMinSize",
                format!("size value {size} MiB must be bigger than 0 {}", whr(mp)),
            ));
        }
        if size == 0 {
            fill += 1;
            if fill > 1 {
                // Only one partition may fill the disk; class not published [inferred].
                return Err(bad(
                    "PartitionIncompatibleParams",
                    format!(
                        "size value 0 incompatible with size value 0 of another partition {}",
                        whr(mp)
                    ),
                ));
            }
        }
        if windows {
            let b = mp.as_bytes();
            if b.len() != 2 || !b[0].is_ascii_alphabetic() || b[1] != b':' {
                return Err(bad(
                    "PartitionInvalidWindowsMountpointLength",
                    format!(
                        "mountPoint value {mp} is invalid (Windows-style mountpoint: must contain at most 5 lowercase letters) {}",
                        whr(mp)
                    ),
                ));
            }
            if i == 0 && !mp.eq_ignore_ascii_case("c:") {
                return Err(bad(
                    "PartitionInvalidWindowsMountpointRoot",
                    format!(
                        "mountPoint value {mp} is invalid (Windows-style mountpoint: first mountpoint must be c:) {}",
                        whr(mp)
                    ),
                ));
            }
        } else if fs != "swap" {
            if !mp.starts_with('/') {
                return Err(bad(
                    "PartitionInvalidUnixMountpointPrefix",
                    format!(
                        "mountPoint value {mp} is invalid (Unix-style mountpoint: must start with a '/') {}",
                        whr(mp)
                    ),
                ));
            }
            if mp.len() > 256
                || !mp
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/._-".contains(&c))
            {
                return Err(bad(
                    "PartitionInvalidUnixMountpoint",
                    format!(
                        "mountPoint value {mp} is invalid (Unix-style mountpoint: length cannot exceed 256 characters; \
                         only alphanumeric characters, slashes, dots, underscores and hyphens are allowed) {}",
                        whr(mp)
                    ),
                ));
            }
            if mp.len() > 1 && mp.ends_with('/') {
                return Err(bad(
                    "PartitionForbiddenMountpointSuffix",
                    format!("mountPoint value {mp} cannot end with '/' {}", whr(mp)),
                ));
            }
            if FORBIDDEN_MOUNTPOINTS.contains(&mp) {
                return Err(bad(
                    "PartitionForbiddenMountpoint",
                    format!(
                        "mountPoint value {mp} is forbidden (must be different from {}) {}",
                        FORBIDDEN_MOUNTPOINTS.join(", "),
                        whr(mp)
                    ),
                ));
            }
        }
        if fs != "swap" && !mounts.insert(mp.to_ascii_lowercase()) {
            return Err(bad(
                "PartitionDuplicatedAttribute",
                format!("mountPoint value {mp} must be unique {}", whr(mp)),
            ));
        }
        if let Some(extras) = part.get("extras") {
            let extras = extras
                .as_object()
                .ok_or_else(|| invalid(&format!("{at}.extras"), "must be an object"))?;
            check_extras(t, fs, &whr(mp), extras, &mut zp_names, &at)?;
        }
    }
    let root = if windows {
        "c:"
    } else {
        t.root_mountpoint.unwrap_or("/")
    };
    if !mounts.contains(root) {
        return Err(bad(
            "PartitionMissingRootMountpoint",
            format!(
                "mountPoint {root} missing for operating system {} in {dgn}",
                t.name
            ),
        ));
    }
    Ok(())
}

fn check_extras(
    t: &Template,
    fs: &str,
    whr: &str,
    extras: &Map<String, Value>,
    zp_names: &mut BTreeSet<String>,
    at: &str,
) -> Result<(), ApiError> {
    let name_of = |key: &str| -> Result<Option<String>, ApiError> {
        match extras.get(key) {
            None => Ok(None),
            Some(v) => v
                .get("name")
                .and_then(Value::as_str)
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| {
                    invalid(&format!("{at}.extras.{key}.name"), "Property is mandatory")
                }),
        }
    };
    let (lv, zp) = (name_of("lv")?, name_of("zp")?);
    if lv.is_some() && zp.is_some() {
        return Err(bad(
            "PartitionIncompatibleParams",
            format!("extras value lv incompatible with extras value zp {whr}"),
        ));
    }
    if let Some(lv) = lv {
        if t.lvm_ready != Some(true) || fs == "zfs" {
            return Err(bad(
                "PartitionIncompatibleLvm",
                format!(
                    "extras.lv value {lv} is not compatible for operating system {} {whr}",
                    t.name
                ),
            ));
        }
        if lv.is_empty() || lv.len() > 16 || !lv.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(
                "PartitionInvalidLvName",
                format!(
                    "extras.lv.name value {lv} is invalid (length can be maximum 16 characters and exclusively composed \
                     of alphanumeric characters) {whr}"
                ),
            ));
        }
    }
    if let Some(zp) = zp {
        if fs != "zfs" {
            return Err(bad(
                "PartitionIncompatibleParams",
                format!("extras value zp incompatible with fileSystem value {fs} {whr}"),
            ));
        }
        let b = zp.as_bytes();
        if b.is_empty()
            || b.len() > 239
            || !b[0].is_ascii_alphabetic()
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_:.".contains(c))
        {
            return Err(bad(
                "PartitionInvalidZpName",
                format!(
                    "extras.zp.name value {zp} is invalid (if specified, zpool name must begin with a letter, be \
                     exclusively composed of alphanumeric characters, underscores, colons or dots, and its length can \
                     be maximum 239 characters) {whr}"
                ),
            ));
        }
        if !zp_names.insert(zp.clone()) {
            return Err(bad(
                "PartitionDuplicatedZpName",
                format!("extras.zp.name value {zp} must be unique {whr}"),
            ));
        }
    }
    Ok(())
}

/// Validate a legacy `install/start` body; returns the plan (no disk group kept: the legacy
/// API has no `erase: false`).
pub fn validate_legacy(
    server: &Server,
    templates: &[Template],
    body: &Value,
) -> Result<InstallPlan, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| {
        ![
            "templateName",
            "partitionSchemeName",
            "details",
            "userMetadata",
        ]
        .contains(&k.as_str())
    }) {
        return Err(invalid(k, "Unknown parameter"));
    }
    let os = match obj.get("templateName") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("templateName", "must be a string")),
        None => return Err(invalid("templateName", "Property is mandatory")),
    };
    let template = check_os(server, templates, os)?;
    if let Some(s) = obj.get("partitionSchemeName").and_then(Value::as_str)
        && s != "default"
    {
        return Err(ApiError::new(
            404,
            "Client::NotFound::SchemeName",
            format!("Partition scheme {s} could not be found"),
        ));
    }
    let details = obj
        .get("details")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let keys = [
        "customHostname",
        "diskGroupId",
        "noRaid",
        "postInstallationScriptLink",
        "postInstallationScriptReturn",
        "softRaidDevices",
    ];
    if let Some(k) = details.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(invalid(&format!("details.{k}"), "Unknown parameter"));
    }
    let mut customs = Map::new();
    if let Some(Value::Array(meta)) = obj.get("userMetadata") {
        for (i, kv) in meta.iter().enumerate() {
            let (Some(k), Some(v)) = (
                kv.get("key").and_then(Value::as_str),
                kv.get("value").and_then(Value::as_str),
            ) else {
                return Err(invalid(
                    &format!("userMetadata.{i}"),
                    "must be {key: string, value: string}",
                ));
            };
            customs.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    if let Some(h) = details.get("customHostname").and_then(Value::as_str) {
        customs.insert("hostname".into(), Value::String(h.to_string()));
    }
    check_customizations(template, &customs)?;
    let group = int_field(&details, "diskGroupId", "details")?.unwrap_or(0);
    let group = if group == 0 { 1 } else { group };
    let os_group = server
        .disk_groups
        .iter()
        .find(|g| i64::from(g.id) == group)
        .map(|g| g.id)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "Client::NotFound::DiskGroup",
                format!(
                    "{} could not be found on server {}",
                    dg_name(group as u32),
                    server.name
                ),
            )
        })?;
    Ok(InstallPlan {
        os: os.to_string(),
        os_disk_group: os_group,
        keep_disk_groups: BTreeSet::new(),
        efi_bootloader_path: template.efi_bootloader_path.map(str::to_string),
        hostname: customs
            .get("hostname")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}
