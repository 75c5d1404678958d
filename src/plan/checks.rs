//! Plan-time validation of a reinstall against the catalog (template) and the server's
//! hardware, so that a plan shows the errors the API would give — and which disk groups a
//! reinstall erases — before anyone approves a wipe.
//!
//! Owns: the checks and the disk-group fates. Must not touch: deciding whether to reinstall
//! (that is `planner`). Every finding names the manifest line through
//! `DesiredServer::origin_of`.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::Value;

use crate::model::{DesiredServer, InstallSpec, ObservedServer, Template};

use super::{DiskFate, DiskGroupFate, Finding, FindingCode, Severity};

/// What the checks found for one reinstall.
#[derive(Clone, Debug, Default)]
pub struct CheckOutcome {
    pub findings: Vec<Finding>,
    /// Every hardware disk group and its fate (empty if hardware was not read).
    pub disk_groups: Vec<DiskGroupFate>,
    /// False when detail, hardware or template was missing: the reinstall must not be shown
    /// as safe then. `missing` says what.
    pub checks_done: bool,
    pub missing: Vec<String>,
}

impl CheckOutcome {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

struct Ctx<'a> {
    ds: &'a DesiredServer,
    out: CheckOutcome,
}

impl Ctx<'_> {
    /// A finding with its code's severity, at the manifest line of `path`.
    fn push(&mut self, code: FindingCode, path: &str, message: String) {
        self.out.findings.push(Finding::new(
            code,
            message,
            Some(self.ds.origin_of(path).clone()),
        ));
    }
}

/// The catalog name closest to a mistyped `name`, when one is close enough to be what was
/// meant (`debian12-64` → `debian12_64`): at most a third of its characters differ, and at
/// least one name when it is short. The candidates are the names this plan read (the server's
/// compatible templates and the templates it fetched) rather than the whole catalog: those are
/// the ones that would install on this server, and listing the catalog would cost a request
/// per plan for a typo. Ties go to the alphabetically first name, so a plan is reproducible.
pub fn nearest_name<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .filter(|c| *c != name)
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Minimum disks for a soft RAID level (ZFS levels follow OVH's raidz mapping).
fn soft_raid_min_disks(level: u64, zfs: bool) -> u64 {
    match (level, zfs) {
        (0, _) => 1,
        (1, _) => 2,
        (5, _) => 3,
        (6, true) => 5,
        (6, false) => 4,
        (7, _) => 7,
        (10, _) => 4,
        _ => 1,
    }
}

fn hard_raid_min_disks(level: u64) -> u64 {
    match level {
        0 => 1,
        1 => 2,
        5 => 3,
        6 | 10 => 4,
        50 => 6,
        60 => 8,
        _ => 1,
    }
}

/// Run every catalog and hardware check for reinstalling `spec` on `server`.
pub fn check_reinstall(
    ds: &DesiredServer,
    spec: &InstallSpec,
    server: &ObservedServer,
    templates: &BTreeMap<String, Template>,
    now: Timestamp,
) -> CheckOutcome {
    let mut cx = Ctx {
        ds,
        out: CheckOutcome::default(),
    };
    let Some(detail) = &server.detail else {
        cx.out.missing.push(
            "server detail (tasks, compatible templates, hardware) was not observed".to_string(),
        );
        return cx.out;
    };
    let os = spec.os.as_str();

    if !detail.compatible_templates.iter().any(|t| t == os) {
        cx.push(
            FindingCode::OsNotCompatible,
            "spec.install.os",
            format!(
                "OS {os} is not in this server's compatible templates ({})",
                if detail.compatible_templates.is_empty() {
                    "none listed".to_string()
                } else {
                    detail.compatible_templates.join(", ")
                }
            ),
        );
    }

    let template = templates.get(os);
    if template.is_none() {
        cx.out.missing.push(format!(
            "installation template {os} was not found in the catalog"
        ));
        let suggestion = nearest_name(
            os,
            detail
                .compatible_templates
                .iter()
                .chain(templates.keys())
                .map(String::as_str),
        )
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
        cx.push(
            FindingCode::OsUnknown,
            "spec.install.os",
            format!("OS {os} is not in the installation template catalog{suggestion}"),
        );
    }
    if let Some(t) = template {
        check_template(&mut cx, spec, t, now);
    }

    match &detail.hardware {
        None => cx
            .out
            .missing
            .push("hardware specification was not observed".to_string()),
        Some(hw) => {
            let os_group = os_disk_group(spec);
            // A group's fate comes from the request actually sent: only a
            // `{diskGroupId, erase: false}` entry keeps it; anything else the API erases.
            let sent_kept = kept_in_request(&spec.request);
            for dg in &hw.disk_groups {
                let fate = if dg.id == os_group {
                    DiskFate::OsInstall
                } else if sent_kept.contains(&dg.id) {
                    DiskFate::Kept
                } else {
                    DiskFate::Erased
                };
                cx.out.disk_groups.push(DiskGroupFate {
                    id: dg.id,
                    description: dg.description.clone(),
                    disk_type: dg.disk_type.clone(),
                    disks: dg.number_of_disks,
                    disk_size_bytes: dg.disk_size_bytes,
                    fate,
                });
            }
            let group = hw.disk_groups.iter().find(|g| g.id == os_group);
            match group {
                None => cx.push(
                    FindingCode::DiskGroupMissing,
                    "spec.install.storage.diskGroupId",
                    format!(
                        "disk group {os_group} does not exist on this server (it has {})",
                        list_ids(hw.disk_groups.iter().map(|g| g.id))
                    ),
                ),
                Some(g) => check_raid(&mut cx, spec, u64::from(g.number_of_disks), g),
            }
            for kept in spec.keep_disk_groups.difference(&sent_kept) {
                cx.push(
                    FindingCode::KeptNotSent,
                    "spec.install.storage.keepDiskGroups",
                    format!(
                        "disk group {kept} is to be kept but the request has no `erase: false` entry for it: the API would erase it"
                    ),
                );
            }
            for kept in &spec.keep_disk_groups {
                if *kept == os_group {
                    cx.push(
                        FindingCode::KeepOsDiskGroup,
                        "spec.install.storage.keepDiskGroups",
                        format!(
                            "disk group {kept} carries the OS and cannot be kept (erase: false is refused there)"
                        ),
                    );
                } else if !hw.disk_groups.iter().any(|g| g.id == *kept) {
                    cx.push(
                        FindingCode::KeptDiskGroupMissing,
                        "spec.install.storage.keepDiskGroups",
                        format!(
                            "disk group {kept} is to be kept but does not exist on this server (it has {}); \
                             refusing rather than risk wiping data you meant to keep",
                            list_ids(hw.disk_groups.iter().map(|g| g.id))
                        ),
                    );
                }
            }
        }
    }
    cx.out.checks_done = cx.out.missing.is_empty();
    cx.out
}

/// The disk groups a reinstall request keeps: its `{diskGroupId, erase: false}` entries.
pub fn kept_in_request(request: &Value) -> BTreeSet<u32> {
    request
        .get("storage")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("erase").and_then(Value::as_bool) == Some(false))
        .filter_map(|e| e.get("diskGroupId").and_then(Value::as_u64))
        .filter_map(|id| u32::try_from(id).ok())
        .collect()
}

fn list_ids(ids: impl Iterator<Item = u32>) -> String {
    let v: Vec<String> = ids.map(|i| i.to_string()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        format!("disk groups {}", v.join(", "))
    }
}

/// The disk group the OS goes on: the spec's, else the request's, else the API default 1.
pub fn os_disk_group(spec: &InstallSpec) -> u32 {
    spec.os_disk_group
        .or_else(|| {
            install_storage(&spec.request)
                .and_then(|s| s.get("diskGroupId"))
                .and_then(Value::as_u64)
                .filter(|id| *id != 0)
                .and_then(|id| u32::try_from(id).ok())
        })
        .unwrap_or(1)
}

/// The one `storage[]` entry that configures the install (not an erase-only entry).
fn install_storage(request: &Value) -> Option<&Value> {
    request
        .get("storage")?
        .as_array()?
        .iter()
        .find(|s| s.get("erase").is_none() || s.get("partitioning").is_some())
}

fn layout(spec: &InstallSpec) -> Vec<&Value> {
    install_storage(&spec.request)
        .and_then(|s| s.pointer("/partitioning/layout"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn check_template(cx: &mut Ctx<'_>, spec: &InstallSpec, t: &Template, now: Timestamp) {
    let empty = serde_json::Map::new();
    let custom = spec
        .request
        .get("customizations")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for input in &t.inputs {
        let given = custom.get(&input.name);
        let has_default = input.default.as_deref().is_some_and(|d| !d.is_empty());
        if input.mandatory && given.is_none() && !has_default {
            cx.push(
                FindingCode::InputMissing,
                "spec.install.customizations",
                format!(
                    "{} requires customization {} ({})",
                    t.name, input.name, input.input_type
                ),
            );
        }
        if let (Some(v), false) = (given, input.enum_values.is_empty()) {
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let pointer = format!("/customizations/{}", input.name);
            let secret = spec
                .secret_paths
                .iter()
                .map(String::as_str)
                .chain(super::redact::ALWAYS_SECRET.iter().copied())
                .any(|p| pointer.starts_with(p) || p.starts_with(pointer.as_str()));
            // Findings are shown everywhere: a secret value never appears, not even hashed.
            let shown = if secret {
                "(a secret value)".to_string()
            } else {
                format!("{s:?}")
            };
            if !input.enum_values.contains(&s) {
                cx.push(
                    FindingCode::InputEnum,
                    &format!("spec.install.customizations.{}", input.name),
                    format!(
                        "customization {} = {shown} is not one of {}",
                        input.name,
                        input.enum_values.join(", ")
                    ),
                );
            }
        }
    }
    for key in custom.keys() {
        if !t.inputs.iter().any(|i| &i.name == key) {
            cx.push(
                FindingCode::InputUnknown,
                &format!("spec.install.customizations.{key}"),
                format!(
                    "customization {key} doesn't exist for {} (known: {})",
                    t.name,
                    t.inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    let parts = layout(spec);
    if t.no_partitioning && !parts.is_empty() {
        cx.push(
            FindingCode::NoPartitioning,
            "spec.install.storage.partitioning",
            format!(
                "{} does not accept custom partitioning; remove the layout",
                t.name
            ),
        );
    }
    for p in &parts {
        let fs = p.get("fileSystem").and_then(Value::as_str).unwrap_or("");
        let mp = p.get("mountPoint").and_then(Value::as_str).unwrap_or("?");
        if !t.filesystems.iter().any(|f| f == fs) {
            cx.push(
                FindingCode::Filesystem,
                "spec.install.storage.partitioning.layout",
                format!(
                    "{mp}: file system {fs} is not offered by {} ({})",
                    t.name,
                    t.filesystems.join(", ")
                ),
            );
        }
        if p.pointer("/extras/lv").is_some() && t.lvm_ready == Some(false) {
            cx.push(
                FindingCode::Lvm,
                "spec.install.storage.partitioning.layout",
                format!("{mp}: {} is not LVM-ready; remove extras.lv", t.name),
            );
        }
        if t.soft_raid_only_mirroring
            && let Some(level) = p.get("raidLevel").and_then(Value::as_u64)
            && level > 1
        {
            cx.push(
                FindingCode::SoftRaidMirroring,
                "spec.install.storage.partitioning.layout",
                format!("{mp}: {} allows only soft RAID 0 or 1, not {level}", t.name),
            );
        }
    }
    if let Some(end) = &t.end_of_install {
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        match end.parse::<jiff::civil::Date>() {
            Ok(d) if d < today => cx.push(
                FindingCode::EndOfInstall,
                "spec.install.os",
                format!(
                    "{} reached its end of install on {end}; the API may refuse it",
                    t.name
                ),
            ),
            _ => {}
        }
    }
}

fn check_raid(cx: &mut Ctx<'_>, spec: &InstallSpec, disks: u64, g: &crate::model::DiskGroup) {
    let storage = install_storage(&spec.request);
    if let Some(arr) = storage
        .and_then(|s| s.get("hardwareRaid"))
        .and_then(Value::as_array)
    {
        for hr in arr {
            if g.raid_controller.is_none() {
                cx.push(
                    FindingCode::HardwareRaidUnsupported,
                    "spec.install.storage.hardwareRaid",
                    format!("disk group {} has no RAID controller; use soft RAID", g.id),
                );
            }
            let level = hr.get("raidLevel").and_then(Value::as_u64).unwrap_or(1);
            let need = hard_raid_min_disks(level);
            if disks < need {
                cx.push(
                    FindingCode::RaidDisks,
                    "spec.install.storage.hardwareRaid",
                    format!(
                        "hardware RAID {level} needs at least {need} disks; disk group {} has {disks}",
                        g.id
                    ),
                );
            }
        }
    }
    for p in layout(spec) {
        // Only an explicit level is checked: the API's default (1) is auto-reduced on
        // single-disk groups, an explicit one is the user's intent.
        let Some(level) = p.get("raidLevel").and_then(Value::as_u64) else {
            continue;
        };
        let zfs = p.get("fileSystem").and_then(Value::as_str) == Some("zfs");
        let need = soft_raid_min_disks(level, zfs);
        if disks < need {
            let mp = p.get("mountPoint").and_then(Value::as_str).unwrap_or("?");
            cx.push(
                FindingCode::RaidDisks,
                "spec.install.storage.partitioning.layout",
                format!(
                    "{mp}: soft RAID {level} needs at least {need} disks; disk group {} has {disks}",
                    g.id
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_name;

    const CATALOG: [&str; 4] = [
        "debian12_64",
        "debian11_64",
        "ubuntu2404-server_64",
        "win2022core-std_64",
    ];

    #[test]
    fn a_typo_suggests_the_nearest_catalog_name() {
        let near = |n| nearest_name(n, CATALOG.into_iter());
        assert_eq!(near("debian12-64"), Some("debian12_64"));
        assert_eq!(near("debain12_64"), Some("debian12_64"));
        assert_eq!(near("ubuntu2404-server64"), Some("ubuntu2404-server_64"));
        // Equally near two names: the alphabetically first, every time.
        assert_eq!(near("debian1x_64"), Some("debian11_64"));
    }

    #[test]
    fn a_name_far_from_every_catalog_name_suggests_nothing() {
        let near = |n| nearest_name(n, CATALOG.into_iter());
        assert_eq!(near("plan9"), None);
        assert_eq!(near("freebsd14_64"), None);
        assert_eq!(near(""), None);
        assert_eq!(nearest_name("debian12-64", std::iter::empty()), None);
    }
}
