//! Fleet definitions: the hand-written fleet file (`ovhform sim --fleet FILE`, YAML or JSON)
//! and the generated, varied fleet (`--servers N --seed S`).
//!
//! Owns: turning a fleet description into [`Server`]s with sensible defaults. Must not touch:
//! HTTP or task logic.
//!
//! File format (only `name` and `os` are required per server):
//! ```yaml
//! servers:
//!   - name: ns3000001.ip-51-68-1.eu
//!     os: debian12_64
//!     datacenter: gra3            # default gra3 (region derived: eu-west-gra)
//!     bootMode: uefi              # uefi (default) | legacy | uefi-legacy
//!     commercialRange: ADVANCE-1
//!     boot: hd                    # kernel of the current netboot: hd (default), rescue-customer, …
//!     bootScript: null            # a custom iPXE script instead of `boot`
//!     tags: {env: prod}
//!     diskGroups:                 # default: one group of 2 x 960 GB SSD, no RAID controller
//!       - {diskType: SSD, numberOfDisks: 2, diskSizeGb: 960}
//!       - {diskType: NVME, numberOfDisks: 2, diskSizeGb: 1920, raidController: null, content: "postgres data"}
//!     compatibleTemplates: [debian12_64, ubuntu2404-server_64]   # default: the whole catalogue
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use sha1::{Digest, Sha1};

use super::SimError;
use super::catalog::Template;
use super::world::{Boot, DiskGroup, Hardware, Server};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    pub servers: Vec<FleetServer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetServer {
    pub name: String,
    pub os: String,
    pub datacenter: Option<String>,
    pub ip: Option<String>,
    pub commercial_range: Option<String>,
    pub boot_mode: Option<String>,
    pub boot: Option<String>,
    pub boot_script: Option<String>,
    pub efi_bootloader_path: Option<String>,
    #[serde(default)]
    /// IAM tags; `ovh:`-prefixed keys simulate OVH-computed system tags.
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub disk_groups: Vec<FleetDiskGroup>,
    pub compatible_templates: Option<Vec<String>>,
    pub memory_gb: Option<u64>,
    pub state: Option<String>,
    pub power_state: Option<String>,
    #[serde(default)]
    pub monitoring: bool,
    #[serde(default)]
    pub no_intervention: bool,
    pub rescue_mail: Option<String>,
    pub rescue_ssh_key: Option<String>,
    pub root_device: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetDiskGroup {
    #[serde(default = "default_disk_type")]
    pub disk_type: String,
    #[serde(default = "default_disks")]
    pub number_of_disks: u32,
    #[serde(default = "default_size")]
    pub disk_size_gb: u64,
    pub raid_controller: Option<String>,
    pub content: Option<String>,
}

fn default_disk_type() -> String {
    "SSD".into()
}
fn default_disks() -> u32 {
    2
}
fn default_size() -> u64 {
    960
}

/// Datacenters the simulator knows, with their region (all are `dedicated.DatacenterEnum` values).
const DATACENTERS: &[(&str, &str)] = &[
    ("gra1", "eu-west-gra"),
    ("gra2", "eu-west-gra"),
    ("gra3", "eu-west-gra"),
    ("rbx8", "eu-west-rbx"),
    ("sbg5", "eu-west-sbg"),
    ("lim3", "eu-west-lim"),
    ("eri1", "eu-west-eri"),
    ("waw1", "eu-central-waw"),
    ("bhs6", "ca-east-bhs"),
    ("bhs8", "ca-east-bhs"),
];

fn region_of(dc: &str) -> Option<(usize, &'static str)> {
    let region = DATACENTERS.iter().find(|(d, _)| *d == dc)?.1;
    let index = DATACENTERS.iter().position(|(_, r)| *r == region)?;
    Some((index, region))
}

/// The netboots of a region. Ids are large catalogue-like integers shared by all servers of a
/// region, so clients can cache id → (type, kernel); id 1 is always the disk.
pub fn boots_for_region(region_index: usize) -> Vec<Boot> {
    let r = region_index as u64;
    let b = |id: u64, t: &str, k: &str, d: &str| Boot {
        id,
        boot_type: t.into(),
        kernel: k.into(),
        description: d.into(),
    };
    vec![
        b(1, "harddisk", "hd", "Boot to disk"),
        b(1122 + 7 * r, "power", "poweroff", "Power-off server"),
        b(49231 + 13 * r, "network", "ipxe-shell", "iPXE shell"),
        b(
            95083 + 101 * r,
            "rescue",
            "rescue-customer",
            "Customer rescue system (Linux)",
        ),
        b(
            230242 + 101 * r,
            "rescue",
            "rescue12-customer",
            "Customer rescue system (Debian-12-based)",
        ),
    ]
}

/// Parse a fleet file (JSON when the extension is `.json`, YAML otherwise).
pub fn load(path: &Path, templates: &[Template]) -> Result<Vec<Server>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimError::Fleet {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, path, templates)
}

pub fn parse(text: &str, path: &Path, templates: &[Template]) -> Result<Vec<Server>, SimError> {
    let err = |message: String| SimError::Fleet {
        path: path.display().to_string(),
        message,
    };
    let file: FleetFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| err(e.to_string()))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| err(e.to_string()))?
    };
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for (i, s) in file.servers.into_iter().enumerate() {
        let at = format!("servers[{i}] ({})", s.name);
        if seen.insert(s.name.clone(), i).is_some() {
            return Err(err(format!(
                "{at}: duplicate server name; each name must appear once"
            )));
        }
        out.push(build(s, i, templates).map_err(|m| err(format!("{at}: {m}")))?);
    }
    Ok(out)
}

fn uuid_of(name: &str) -> String {
    let h = hex::encode(Sha1::digest(name.as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn build(s: FleetServer, index: usize, templates: &[Template]) -> Result<Server, String> {
    let names: Vec<&str> = templates.iter().map(|t| t.name).collect();
    if !names.contains(&s.os.as_str()) {
        return Err(format!(
            "unknown os `{}`; known templates: {}",
            s.os,
            names.join(", ")
        ));
    }
    let dc = s.datacenter.unwrap_or_else(|| "gra3".into());
    let (region_index, region) = region_of(&dc).ok_or_else(|| {
        let known: Vec<&str> = DATACENTERS.iter().map(|(d, _)| *d).collect();
        format!("unknown datacenter `{dc}`; use one of {}", known.join(", "))
    })?;
    let boot_mode = s.boot_mode.unwrap_or_else(|| "uefi".into());
    if !["uefi", "legacy", "uefi-legacy"].contains(&boot_mode.as_str()) {
        return Err(format!(
            "bootMode `{boot_mode}` must be uefi, legacy or uefi-legacy"
        ));
    }
    let boots = boots_for_region(region_index);
    let (boot_id, boot_script) = match (s.boot_script, s.boot) {
        (Some(_), Some(_)) => {
            return Err("set either `boot` or `bootScript`, not both (the API keeps one)".into());
        }
        (Some(script), None) => (None, Some(script)),
        (None, kernel) => {
            let kernel = kernel.unwrap_or_else(|| "hd".into());
            let boot = boots.iter().find(|b| b.kernel == kernel).ok_or_else(|| {
                let known: Vec<&str> = boots.iter().map(|b| b.kernel.as_str()).collect();
                format!(
                    "unknown boot kernel `{kernel}`; use one of {}",
                    known.join(", ")
                )
            })?;
            (Some(boot.id), None)
        }
    };
    let compatible = match s.compatible_templates {
        Some(list) => {
            if let Some(bad) = list.iter().find(|n| !names.contains(&n.as_str())) {
                return Err(format!("compatibleTemplates: unknown template `{bad}`"));
            }
            list
        }
        None => names.iter().map(|n| n.to_string()).collect(),
    };
    let groups = if s.disk_groups.is_empty() {
        vec![FleetDiskGroup {
            disk_type: default_disk_type(),
            number_of_disks: 2,
            disk_size_gb: 960,
            raid_controller: None,
            content: None,
        }]
    } else {
        s.disk_groups
    };
    let efi_default = templates
        .iter()
        .find(|t| t.name == s.os)
        .and_then(|t| t.efi_bootloader_path);
    let n = index as u64 + 1;
    let range = s.commercial_range.unwrap_or_else(|| "ADVANCE-1".into());
    Ok(Server {
        ip: s
            .ip
            .unwrap_or_else(|| format!("51.68.{}.{}", 1 + (n / 250) % 250, 1 + n % 250)),
        reverse: Some(s.name.clone()),
        server_id: 1_000_000 + n,
        availability_zone: format!("{region}-a"),
        datacenter: dc,
        region: region.into(),
        rack: format!("G{:03}A{:02}", n % 997, n % 41),
        commercial_range: Some(range.clone()),
        state: s.state.unwrap_or_else(|| "ok".into()),
        power_state: s.power_state.unwrap_or_else(|| "poweron".into()),
        support_level: "pro".into(),
        professional_use: false,
        new_upgrade_system: true,
        link_speed: Some(1000),
        monitoring: s.monitoring,
        no_intervention: s.no_intervention,
        efi_bootloader_path: match s.efi_bootloader_path {
            Some(p) => Some(p),
            None if boot_mode != "legacy" => efi_default.map(str::to_string),
            None => None,
        },
        boot_id,
        boot_script,
        root_device: s.root_device,
        rescue_mail: s.rescue_mail,
        rescue_ssh_key: s.rescue_ssh_key,
        iam_id: uuid_of(&s.name),
        display_name: s.name.clone(),
        tags: s.tags,
        boots,
        hardware: Hardware {
            boot_mode,
            description: format!("{range} - AMD Ryzen 7 9700X"),
            processor_name: "Ryzen 7 9700X".into(),
            cores_per_processor: 8,
            threads_per_processor: 16,
            number_of_processors: 1,
            memory_mb: s.memory_gb.unwrap_or(64) * 1024,
            motherboard: "B650D4U".into(),
            form_factor: "1u".into(),
        },
        disk_groups: groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| DiskGroup {
                id: i as u32 + 1,
                content: Some(g.content.unwrap_or_else(|| {
                    if i == 0 {
                        format!("os:{}", s.os)
                    } else {
                        format!("data:{}:dg{}", s.name, i + 1)
                    }
                })),
                disk_type: g.disk_type,
                number_of_disks: g.number_of_disks,
                disk_size_gb: g.disk_size_gb,
                raid_controller: g.raid_controller,
            })
            .collect(),
        compatible_templates: compatible,
        tasks: BTreeMap::new(),
        install: None,
        fail_next_install: None,
        access_denied: false,
        raw_hardware: BTreeMap::new(),
        planned_interventions: BTreeMap::new(),
        interventions_denied: false,
        os: s.os,
        name: s.name,
    })
}

/// A varied generated fleet, deterministic for a given seed: UEFI and legacy boot, hybrid
/// SSD+NVMe servers, hardware RAID controllers or none, Linux and Windows installs.
pub fn generate(count: usize, seed: u64, templates: &[Template]) -> Vec<Server> {
    let mut rng = StdRng::seed_from_u64(seed);
    let linux = [
        "debian12_64",
        "debian12_64",
        "ubuntu2404-server_64",
        "alma9_64",
        "debian11_64",
    ];
    let dcs = ["gra3", "rbx8", "sbg5", "bhs6", "waw1"];
    (0..count)
        .map(|i| {
            let n = i + 1;
            let dc = dcs[rng.random_range(0..dcs.len())];
            let windows = rng.random_bool(0.15);
            let os = if windows {
                "win2022-std_64"
            } else {
                linux[rng.random_range(0..linux.len())]
            };
            let hybrid = rng.random_bool(0.35);
            let hw_raid = rng.random_bool(0.25);
            let mut groups = vec![FleetDiskGroup {
                disk_type: if hw_raid { "SAS".into() } else { "SSD".into() },
                number_of_disks: if hw_raid { 4 } else { 2 },
                disk_size_gb: if hw_raid { 1200 } else { 960 },
                raid_controller: hw_raid.then(|| "LSI MegaRAID 9361-8i".into()),
                content: None,
            }];
            if hybrid {
                groups.push(FleetDiskGroup {
                    disk_type: "NVME".into(),
                    number_of_disks: 2,
                    disk_size_gb: 1920,
                    raid_controller: None,
                    content: None,
                });
            }
            let compatible = if !windows && rng.random_bool(0.2) {
                Some(
                    templates
                        .iter()
                        .filter(|t| !t.is_windows())
                        .map(|t| t.name.to_string())
                        .collect(),
                )
            } else {
                None
            };
            let spec = FleetServer {
                name: format!("ns3{n:06}.ip-51-68-{}.eu", 1 + i / 250),
                os: os.into(),
                datacenter: Some(dc.into()),
                ip: None,
                commercial_range: Some(
                    if hybrid {
                        "SCALE-1"
                    } else if hw_raid {
                        "HGR-HCI-1"
                    } else {
                        "ADVANCE-1"
                    }
                    .into(),
                ),
                boot_mode: Some(
                    if rng.random_bool(0.3) {
                        "legacy"
                    } else {
                        "uefi"
                    }
                    .into(),
                ),
                boot: None,
                boot_script: None,
                efi_bootloader_path: None,
                tags: BTreeMap::new(),
                disk_groups: groups,
                compatible_templates: compatible,
                memory_gb: Some([32, 64, 128, 256][rng.random_range(0..4)]),
                state: None,
                power_state: None,
                monitoring: rng.random_bool(0.5),
                no_intervention: false,
                rescue_mail: None,
                rescue_ssh_key: None,
                root_device: None,
            };
            build(spec, i, templates).expect("generated fleet uses only catalogue values")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::catalog::catalogue;

    #[test]
    fn minimal_yaml_gets_defaults() {
        let y = "servers:\n  - name: ns3000001.ip-51-68-1.eu\n    os: debian12_64\n";
        let s = parse(y, Path::new("fleet.yaml"), &catalogue()).unwrap();
        assert_eq!(s[0].datacenter, "gra3");
        assert_eq!(s[0].boot_id, Some(1));
        assert_eq!(s[0].disk_groups.len(), 1);
        assert_eq!(s[0].hardware.boot_mode, "uefi");
    }

    #[test]
    fn unknown_field_and_os_are_clear_errors() {
        let y = "servers:\n  - name: a\n    os: debian12_64\n    bootmode: uefi\n";
        let e = parse(y, Path::new("f.yaml"), &catalogue())
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.yaml") && e.contains("bootmode"), "{e}");
        let y = "servers:\n  - name: a\n    os: debian13\n";
        let e = parse(y, Path::new("f.yaml"), &catalogue())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown os `debian13`"), "{e}");
    }

    #[test]
    fn json_fleet_with_boot_script_and_hybrid_groups() {
        let j = r##"{"servers": [{"name": "ns1.eu", "os": "debian12_64", "datacenter": "rbx8",
            "bootScript": "#!ipxe\nexit\n", "tags": {"env": "prod"},
            "diskGroups": [{"diskType": "SSD"}, {"diskType": "NVME", "diskSizeGb": 1920, "content": "keep me"}]}]}"##;
        let s = parse(j, Path::new("fleet.json"), &catalogue()).unwrap();
        assert_eq!(
            (s[0].boot_id, s[0].boot_script.as_deref()),
            (None, Some("#!ipxe\nexit\n"))
        );
        assert_eq!(s[0].region, "eu-west-rbx");
        assert_eq!(s[0].disk_groups[1].content.as_deref(), Some("keep me"));
        assert_eq!(s[0].disk_groups[1].id, 2);
        let both =
            r#"{"servers": [{"name": "a", "os": "debian12_64", "boot": "hd", "bootScript": "x"}]}"#;
        assert!(
            parse(both, Path::new("f.json"), &catalogue())
                .unwrap_err()
                .to_string()
                .contains("either `boot` or `bootScript`")
        );
    }

    #[test]
    fn boot_ids_are_shared_within_a_region() {
        let y = "servers:\n  - {name: a, os: debian12_64, datacenter: gra1}\n  - {name: b, os: debian12_64, datacenter: gra3}\n  - {name: c, os: debian12_64, datacenter: bhs6}\n";
        let s = parse(y, Path::new("f.yaml"), &catalogue()).unwrap();
        assert_eq!(s[0].boots, s[1].boots);
        assert_ne!(s[0].boots, s[2].boots);
        assert!(s.iter().all(|x| {
            x.boot(1)
                .is_some_and(|b| b.kernel == "hd" && b.boot_type == "harddisk")
        }));
    }

    #[test]
    fn generated_fleet_is_varied_and_deterministic() {
        let t = catalogue();
        let a = generate(60, 42, &t);
        assert_eq!(a, generate(60, 42, &t));
        assert!(a.iter().any(|s| s.hardware.boot_mode == "legacy"));
        assert!(a.iter().any(|s| s.hardware.boot_mode == "uefi"));
        assert!(a.iter().any(|s| s.disk_groups.len() == 2));
        assert!(a.iter().any(|s| s.disk_groups[0].raid_controller.is_some()));
        assert!(a.iter().any(|s| s.os.starts_with("win")));
    }
}
