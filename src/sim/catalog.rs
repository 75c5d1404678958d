//! The simulated installation-template catalogue (`/dedicated/installationTemplate`), shaped
//! like the 2026 API (IT26: no `customization`/`hardRaidConfiguration`, `rootMountpoint`
//! present, input type `hostname` exists).
//!
//! Owns: the list of templates and their JSON renderings. Must not touch: servers or tasks.
//! A template's `inputs` are the authority on which `customizations` keys an OS accepts
//! (REFERENCE §4.2: "Input names are the customizations keys").

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Input {
    pub name: &'static str,
    pub kind: &'static str,
    pub mandatory: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
    pub enum_values: &'static [&'static str],
}

#[derive(Debug, Clone)]
pub struct Template {
    pub name: &'static str,
    pub description: &'static str,
    pub distribution: &'static str,
    pub family: &'static str,
    pub subfamily: &'static str,
    pub category: &'static str,
    pub filesystems: &'static [&'static str],
    pub inputs: Vec<Input>,
    pub lvm_ready: Option<bool>,
    pub no_partitioning: bool,
    pub soft_raid_only_mirroring: bool,
    pub root_mountpoint: Option<&'static str>,
    pub end_of_install: &'static str,
    pub license: Option<&'static str>,
    pub version: &'static str,
    /// What the install sets `efiBootloaderPath` to on UEFI servers.
    pub efi_bootloader_path: Option<&'static str>,
}

impl Template {
    pub fn is_windows(&self) -> bool {
        self.family == "windows"
    }

    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// `dedicated.installationTemplate.Templates`.
    pub fn to_json(&self) -> Value {
        json!({
            "bitFormat": 64,
            "category": self.category,
            "description": self.description,
            "distribution": self.distribution,
            "endOfInstall": self.end_of_install,
            "family": self.family,
            "filesystems": self.filesystems,
            "inputs": self.inputs.iter().map(Input::to_json).collect::<Vec<_>>(),
            "license": self.license_json(),
            "lvmReady": self.lvm_ready,
            "noPartitioning": self.no_partitioning,
            "project": self.project_json(),
            "rootMountpoint": self.root_mountpoint,
            "softRaidOnlyMirroring": self.soft_raid_only_mirroring,
            "subfamily": self.subfamily,
            "templateName": self.name,
        })
    }

    /// `dedicated.TemplateOsInfo` (one item of `templateInfos`).
    pub fn info_json(&self) -> Value {
        json!({
            "category": self.category,
            "description": self.description,
            "endOfInstall": self.end_of_install,
            "family": self.family,
            "license": self.license_json(),
            "project": self.project_json(),
            "subfamily": self.subfamily,
            "templateName": self.name,
        })
    }

    fn license_json(&self) -> Value {
        match self.license {
            Some(spdx) => json!({"os": {"name": [spdx], "url": null}, "usage": null}),
            None => Value::Null,
        }
    }

    fn project_json(&self) -> Value {
        json!({
            "os": {"governance": ["community"], "name": self.distribution, "releaseNotes": null,
                   "url": null, "version": self.version},
            "usage": null,
        })
    }
}

impl Input {
    fn to_json(&self) -> Value {
        json!({
            "default": self.default,
            "description": self.description,
            "enum": self.enum_values,
            "mandatory": self.mandatory,
            "name": self.name,
            "type": self.kind,
        })
    }
}

const fn input(name: &'static str, kind: &'static str, description: &'static str) -> Input {
    Input {
        name,
        kind,
        mandatory: false,
        default: None,
        description,
        enum_values: &[],
    }
}

const LINUX_FS: &[&str] = &["btrfs", "ext4", "swap", "xfs", "zfs"];
const LANGUAGES: &[&str] = &[
    "cs-cz", "de-de", "en-us", "es-es", "fr-fr", "it-it", "nl-nl", "pl-pl", "pt-pt",
];

fn linux_inputs() -> Vec<Input> {
    vec![
        input("hostname", "hostname", "Custom hostname"),
        input("sshKey", "sshPubKey", "SSH Public Key"),
        input("postInstallationScript", "text", "Post-Installation Script"),
        input("efiBootloaderPath", "string", "Path of the EFI bootloader"),
    ]
}

fn windows_inputs() -> Vec<Input> {
    vec![
        input("hostname", "hostname", "Custom hostname"),
        Input {
            default: Some("en-us"),
            enum_values: LANGUAGES,
            ..input("language", "enum", "Display Language")
        },
        input("postInstallationScript", "text", "Post-Installation Script"),
        Input {
            mandatory: true,
            default: Some("ps1"),
            enum_values: &["ps1", "cmd"],
            ..input(
                "postInstallationScriptExtension",
                "enum",
                "Post-Installation Script File Extension",
            )
        },
    ]
}

fn linux(
    name: &'static str,
    description: &'static str,
    distribution: &'static str,
    subfamily: &'static str,
    version: &'static str,
    efi: &'static str,
) -> Template {
    Template {
        name,
        description,
        distribution,
        family: "linux",
        subfamily,
        category: "basic",
        filesystems: LINUX_FS,
        inputs: linux_inputs(),
        lvm_ready: Some(true),
        no_partitioning: false,
        soft_raid_only_mirroring: false,
        root_mountpoint: Some("/"),
        end_of_install: "2030-06-30",
        license: Some("GPL-2.0-only"),
        version,
        efi_bootloader_path: Some(efi),
    }
}

/// The catalogue every simulated server draws from.
pub fn catalogue() -> Vec<Template> {
    let mut t = vec![
        linux(
            "debian12_64",
            "Debian GNU/Linux 12 (Bookworm)",
            "debian12",
            "debian",
            "12",
            "\\efi\\debian\\grubx64.efi",
        ),
        linux(
            "debian11_64",
            "Debian GNU/Linux 11 (Bullseye)",
            "debian11",
            "debian",
            "11",
            "\\efi\\debian\\grubx64.efi",
        ),
        linux(
            "ubuntu2404-server_64",
            "Ubuntu Server 24.04 LTS",
            "ubuntu2404-server",
            "ubuntu",
            "24.04",
            "\\efi\\ubuntu\\grubx64.efi",
        ),
        linux(
            "alma9_64",
            "AlmaLinux 9",
            "alma9",
            "alma",
            "9",
            "\\efi\\almalinux\\grubx64.efi",
        ),
        linux(
            "rocky9_64",
            "Rocky Linux 9",
            "rocky9",
            "rocky",
            "9",
            "\\efi\\rocky\\grubx64.efi",
        ),
    ];
    // ZFS is not LVM-capable; Proxmox' own installer lays out ZFS, so no LVM here.
    t.push(Template {
        lvm_ready: Some(false),
        category: "virtualization",
        ..linux(
            "proxmox8_64",
            "Proxmox VE 8",
            "proxmox8",
            "proxmox",
            "8",
            "\\efi\\proxmox\\grubx64.efi",
        )
    });
    t.push(Template {
        name: "byolinux_64",
        description: "Bring Your Own Linux",
        distribution: "byolinux",
        subfamily: "byolinux",
        category: "customer",
        inputs: vec![
            input("hostname", "hostname", "Custom hostname"),
            Input {
                mandatory: true,
                ..input("imageURL", "url", "Image URL")
            },
            Input {
                default: Some("qcow2"),
                enum_values: &["qcow2", "raw"],
                ..input("imageType", "enum", "Image Type")
            },
            input("imageCheckSum", "hexstring", "Image checksum"),
            Input {
                enum_values: &["md5", "sha1", "sha256", "sha512"],
                ..input("imageCheckSumType", "enum", "Checksum type")
            },
            input("httpHeaders", "keyValue", "Image HTTP Headers"),
            input("configDriveUserData", "text", "Config Drive UserData"),
            input("configDriveMetadata", "keyValue", "Config Drive Metadata"),
            input("efiBootloaderPath", "string", "Path of the EFI bootloader"),
        ],
        lvm_ready: None,
        no_partitioning: true,
        root_mountpoint: None,
        license: None,
        // The rest as any Linux: filesystems, family, end of install, EFI fallback path.
        ..linux(
            "byolinux_64",
            "Bring Your Own Linux",
            "byolinux",
            "byolinux",
            "1",
            "\\efi\\boot\\bootx64.efi",
        )
    });
    for (name, description, subfamily) in [
        (
            "win2022-std_64",
            "Windows Server 2022 Standard (Desktop)",
            "windows-server-desktop-exp",
        ),
        (
            "win2022core-std_64",
            "Windows Server 2022 Standard (Core)",
            "windows-server-core",
        ),
    ] {
        t.push(Template {
            name,
            description,
            distribution: name.trim_end_matches("_64"),
            family: "windows",
            subfamily,
            category: "basic",
            filesystems: &["ntfs"],
            inputs: windows_inputs(),
            lvm_ready: None,
            no_partitioning: false,
            // Windows installs are mirrored on the first two disks only.
            soft_raid_only_mirroring: true,
            root_mountpoint: Some("c:"),
            end_of_install: "2031-10-14",
            license: None,
            version: "2022",
            efi_bootloader_path: Some("\\efi\\microsoft\\boot\\bootmgfw.efi"),
        });
    }
    t.sort_by_key(|t| t.name);
    t
}
