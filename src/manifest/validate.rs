//! Static rules on one server's (merged) spec: the checks the OVHcloud API makes before it
//! accepts a reinstall (REFERENCE.md §3–4), and boot-mode consistency.
//!
//! Owns: rules that need nothing but the raw spec. Must not touch: files or the environment
//! (content checks of resolved values live in `build.rs`), cross-document rules (`load.rs`).

use std::collections::BTreeMap;

use super::diag::Code;
use super::raw::{
    BootModeKind, ChecksumType, FileSystem, RawBoot, RawCustomizations, RawInstall, RawPartition,
    RawServerSpec, RawSettings, RawStorage, Sink, ValueSource,
};

/// Soft RAID levels the API accepts in a layout.
pub const SOFT_RAID_LEVELS: &[u32] = &[0, 1, 5, 6, 7, 10];
/// Hardware RAID levels the API accepts.
pub const HARDWARE_RAID_LEVELS: &[u32] = &[0, 1, 5, 6, 10, 50, 60];
/// Mount points that are virtual file systems on every Linux: never a partition [inferred:
/// the API's `PartitionForbiddenMountpoint` list is not published].
const FORBIDDEN_MOUNT_POINTS: &[&str] = &["/proc", "/sys", "/dev", "/run"];
/// LVM reserves these volume names (lvm2 `lvcreate` rules).
const RESERVED_LV_NAMES: &[&str] = &["snapshot", "pvmove"];
/// ZFS reserves these pool names and prefixes (zpool(8)).
const RESERVED_ZPOOL_PREFIXES: &[&str] = &["mirror", "raidz", "draid", "spare"];

pub fn server_spec(spec: &RawServerSpec, sink: &mut Sink) {
    if let Some(install) = &spec.install {
        install_rules(install, sink);
    }
    if let Some(boot) = &spec.boot {
        boot_rules(boot, sink);
    }
    if let Some(settings) = &spec.settings {
        settings_rules(settings, sink);
    }
}

fn install_rules(install: &RawInstall, sink: &mut Sink) {
    match &install.os {
        None => sink.error_hint(
            Code::MissingField,
            install.loc,
            "missing field `os` in install",
            "give `os:` in the server's install or in its ServerGroup's template",
        ),
        Some(os) if os.value.is_empty() || !os.value.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) => {
            sink.error_hint(
                Code::InvalidEnum,
                os.loc,
                format!("`{}` is not an operating system name", os.value),
                "use a template name from `GET /dedicated/server/{serviceName}/install/compatibleTemplates`, e.g. debian12_64",
            )
        }
        Some(_) => {}
    }
    if let Some(c) = &install.customizations {
        customizations(c, sink);
    }
    if let Some(st) = &install.storage {
        storage(&st.0, sink);
    }
}

/// RFC 1035 §2.3.1 as the API words it: labels of ≤ 63 characters, starting with a letter,
/// ending with a letter or digit, letters/digits/hyphens only; the whole name ≤ 255.
pub fn hostname_problem(name: &str) -> Option<(Code, String)> {
    if name.len() > 255 {
        return Some((
            Code::HostnameTooLong,
            format!("hostname is {} characters long (at most 255)", name.len()),
        ));
    }
    for label in name.split('.') {
        let problem = if label.is_empty() {
            Some("has an empty label (two dots in a row, or a dot at an end)")
        } else if label.len() > 63 {
            Some("has a label longer than 63 characters")
        } else if !label.starts_with(|c: char| c.is_ascii_alphabetic()) {
            Some("has a label that does not start with a letter")
        } else if !label.ends_with(|c: char| c.is_ascii_alphanumeric()) {
            Some("has a label that does not end with a letter or digit")
        } else if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            Some("contains a character other than letters, digits and hyphens")
        } else {
            None
        };
        if let Some(p) = problem {
            return Some((Code::HostnameInvalid, format!("hostname `{name}` {p}")));
        }
    }
    None
}

fn customizations(c: &RawCustomizations, sink: &mut Sink) {
    // A credential typed into the manifest would sit in git and could show up in a
    // diagnostic's source snippet; only references keep it out of both.
    if let Some(headers) = &c.http_headers {
        for (name, value) in &headers.0 {
            if matches!(value.value, ValueSource::Inline(_)) {
                let mut d = sink.at(
                    Code::SecretInline,
                    value.loc,
                    format!(
                        "httpHeaders.{} is written inline in the manifest",
                        name.value
                    ),
                );
                // No snippet: it would print the very secret (Diagnostics also hides the
                // snippets of every other diagnostic in this file).
                d.hide_source();
                sink.push(d);
            }
        }
    }
    if let Some(h) = &c.hostname
        && let Some((code, msg)) = hostname_problem(&h.value)
    {
        sink.error(code, h.loc, msg);
    }
    match (&c.image_checksum, &c.image_checksum_type) {
        (Some(sum), None) => sink.error(
            Code::ImageChecksum,
            sum.loc,
            "imageCheckSum without imageCheckSumType",
        ),
        (None, Some(t)) => sink.error(
            Code::ImageChecksum,
            t.loc,
            "imageCheckSumType without imageCheckSum",
        ),
        (Some(sum), Some(t)) => {
            let want = match t.value {
                ChecksumType::Md5 => 32,
                ChecksumType::Sha1 => 40,
                ChecksumType::Sha256 => 64,
                ChecksumType::Sha512 => 128,
            };
            let s = sum.value.trim();
            if s.len() != want || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                sink.error(
                    Code::ImageChecksum,
                    sum.loc,
                    format!(
                        "a {} checksum is {want} hex digits; this is {} characters",
                        t.value.as_str(),
                        s.len()
                    ),
                );
            }
        }
        (None, None) => {}
    }
    if let Some(p) = &c.efi_bootloader_path
        && p.value.trim().is_empty()
    {
        sink.error(
            Code::CustomizationInvalid,
            p.loc,
            "efiBootloaderPath is empty",
        );
    }
}

fn storage(st: &RawStorage, sink: &mut Sink) {
    // diskGroupId 0 or absent: the API picks disk group 1 (D:partitioning_ovh).
    let explicit = st
        .disk_group_id
        .as_ref()
        .map(|d| d.value)
        .filter(|&d| d != 0);
    let os_group = explicit.unwrap_or(1);
    if let Some(keep) = &st.keep_disk_groups {
        let mut seen = BTreeMap::new();
        for k in &keep.value {
            if k.value == 0 {
                sink.error(Code::OutOfRange, k.loc, "disk group ids start at 1");
            } else if k.value == os_group {
                let why = if explicit.is_some() {
                    format!(
                        "disk group {} is the one the OS is installed on (diskGroupId)",
                        k.value
                    )
                } else {
                    format!(
                        "disk group {} is the one the OS is installed on (no diskGroupId given: the API uses 1)",
                        k.value
                    )
                };
                sink.error(Code::KeepOsDiskGroup, k.loc, why);
            }
            if let Some(first) = seen.insert(k.value, k.loc) {
                sink.error(
                    Code::KeepDuplicate,
                    k.loc,
                    format!(
                        "disk group {} is listed twice (first at line {})",
                        k.value, first.line
                    ),
                );
            }
        }
    }
    if let Some(hw) = &st.hardware_raid {
        let hw = &hw.0;
        if let Some(l) = &hw.raid_level
            && !HARDWARE_RAID_LEVELS.contains(&l.value)
        {
            sink.error(
                Code::HardwareRaidLevel,
                l.loc,
                format!("hardware RAID level {} does not exist", l.value),
            );
        }
        if let Some(a) = &hw.arrays
            && a.value == 0
        {
            sink.error(Code::OutOfRange, a.loc, "arrays must be at least 1");
        }
        if let (Some(d), Some(a)) = (&hw.disks, &hw.arrays)
            && a.value > 0
            && d.value % a.value != 0
        {
            sink.error(
                Code::HardwareRaidDisksArrays,
                d.loc,
                format!(
                    "number of disks ({}) must be a multiple of arrays ({})",
                    d.value, a.value
                ),
            );
        }
        if let Some(p) = &st.partitioning
            && let Some(d) = &p.disks
            && d.value > 1
        {
            sink.error(
                Code::HardwareRaidPartitioningDisks,
                d.loc,
                format!("partitioning {} disks of a hardware RAID group", d.value),
            );
        }
    }
    if let Some(p) = &st.partitioning
        && let Some(layout) = &p.layout
    {
        if layout.value.is_empty() {
            sink.error(
                Code::LayoutEmpty,
                layout.loc,
                "the layout has no partitions",
            );
            return;
        }
        let mut mounts = BTreeMap::new();
        let mut volumes = BTreeMap::new();
        let mut fill: Option<u32> = None;
        for part in &layout.value {
            partition(part, sink);
            let mp = &part.mount_point;
            if let Some(first) = mounts.insert(mp.value.clone(), mp.loc) {
                sink.error(
                    Code::MountpointDuplicate,
                    mp.loc,
                    format!(
                        "mount point `{}` appears twice (first at line {})",
                        mp.value, first.line
                    ),
                );
            }
            let size = part.size.as_ref().map(|s| s.value.0).unwrap_or(0);
            if size == 0 && part.file_system.value != FileSystem::Swap {
                let at = part.size.as_ref().map(|s| s.loc).unwrap_or(part.loc);
                match fill {
                    Some(line) => sink.error(
                        Code::MultipleFill,
                        at,
                        format!("a second partition fills the disk (size 0 or no size; the first is at line {line})"),
                    ),
                    None => fill = Some(at.line),
                }
            }
            if let Some(ex) = &part.extras {
                for (kind, v) in [("LV", &ex.lv), ("zpool", &ex.zp)] {
                    if let Some(v) = v
                        && let Some(first) =
                            volumes.insert((kind, v.name.value.clone()), v.name.loc)
                    {
                        sink.error(
                            Code::DuplicateVolumeName,
                            v.name.loc,
                            format!(
                                "{kind} name `{}` is used twice (first at line {})",
                                v.name.value, first.line
                            ),
                        );
                    }
                }
            }
        }
        if !mounts.contains_key("/") {
            sink.error(
                Code::RootMissing,
                layout.loc,
                "the layout has no root partition (`mountPoint: /`)",
            );
        }
    }
}

fn partition(part: &RawPartition, sink: &mut Sink) {
    let mp = &part.mount_point;
    let fs = part.file_system.value;
    let is_swap_mp = mp.value == "swap";
    if !is_swap_mp {
        let m = mp.value.as_str();
        if !m.starts_with('/') {
            sink.error(
                Code::MountpointPrefix,
                mp.loc,
                format!("mount point `{m}` does not start with `/`"),
            );
        } else if m.len() > 256
            || !m
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        {
            sink.error(
                Code::MountpointInvalid,
                mp.loc,
                format!("mount point `{m}` has characters outside [A-Za-z0-9/._-] or is too long"),
            );
        } else if m != "/" && m.ends_with('/') {
            sink.error(
                Code::MountpointTrailingSlash,
                mp.loc,
                format!("mount point `{m}` ends with `/`"),
            );
        } else if m.contains("//") || m.split('/').any(|s| s == "." || s == "..") {
            sink.error(
                Code::MountpointInvalid,
                mp.loc,
                format!("mount point `{m}` is not canonical"),
            );
        } else if FORBIDDEN_MOUNT_POINTS
            .iter()
            .any(|f| m == *f || m.starts_with(&format!("{f}/")))
        {
            sink.error(
                Code::MountpointForbidden,
                mp.loc,
                format!("`{m}` is a virtual file system, not a partition"),
            );
        }
    }
    if is_swap_mp != (fs == FileSystem::Swap) {
        let msg = if is_swap_mp {
            format!("`mountPoint: swap` with `fileSystem: {}`", fs.as_str())
        } else {
            format!("`fileSystem: swap` on mount point `{}`", mp.value)
        };
        sink.error(Code::SwapMismatch, part.file_system.loc, msg);
    }
    if fs == FileSystem::Swap && part.size.as_ref().map(|s| s.value.0).unwrap_or(0) == 0 {
        let at = part.size.as_ref().map(|s| s.loc).unwrap_or(part.loc);
        sink.error_hint(
            Code::SwapMismatch,
            at,
            "swap with size 0 (fill) fails during install",
            "give the swap partition a size, e.g. `size: 4GiB`",
        );
    }
    let level = part.raid_level.as_ref().map(|l| l.value).unwrap_or(1);
    let level_loc = part.raid_level.as_ref().map(|l| l.loc).unwrap_or(part.loc);
    if !SOFT_RAID_LEVELS.contains(&level) {
        sink.error(
            Code::SoftRaidLevel,
            level_loc,
            format!("software RAID level {level} does not exist"),
        );
    } else {
        match fs {
            FileSystem::Swap if level != 1 => {
                sink.error(
                    Code::SwapRaid,
                    level_loc,
                    format!("swap with raidLevel {level}"),
                );
            }
            FileSystem::Zfs if level == 10 => {
                sink.error(
                    Code::RaidFsIncompatible,
                    level_loc,
                    "zfs does not take RAID 10 (use 0, 1, 5, 6 or 7)",
                );
            }
            FileSystem::Ntfs if level != 1 => {
                sink.error(
                    Code::RaidFsIncompatible,
                    level_loc,
                    format!("ntfs only takes RAID 1, not {level}"),
                );
            }
            FileSystem::Btrfs
            | FileSystem::Ext3
            | FileSystem::Ext4
            | FileSystem::Xfs
            | FileSystem::Reiserfs
            | FileSystem::Fat16
            | FileSystem::None
                if level == 7 =>
            {
                sink.error(
                    Code::RaidFsIncompatible,
                    level_loc,
                    format!(
                        "{} does not take RAID 7 (only zfs does, as raidz3)",
                        fs.as_str()
                    ),
                );
            }
            _ => {}
        }
    }
    if matches!(
        fs,
        FileSystem::Ufs | FileSystem::Vmfs5 | FileSystem::Vmfs6 | FileSystem::Vmfsl
    ) {
        sink.error(
            Code::NoCustomPartitioning,
            part.file_system.loc,
            format!("{} cannot be used in a custom layout", fs.as_str()),
        );
    }
    if let Some(ex) = &part.extras {
        if let Some(lv) = &ex.lv {
            let n = &lv.name.value;
            if n.is_empty() || n.len() > 16 || !n.chars().all(|c| c.is_ascii_alphanumeric()) {
                sink.error(
                    Code::LvNameInvalid,
                    lv.name.loc,
                    format!("LV name `{n}` is not 1–16 letters or digits"),
                );
            } else if RESERVED_LV_NAMES.contains(&n.as_str()) {
                sink.error(
                    Code::LvNameInvalid,
                    lv.name.loc,
                    format!("LV name `{n}` is reserved by LVM"),
                );
            }
            if fs == FileSystem::Zfs {
                sink.error(
                    Code::ZfsLvm,
                    lv.name.loc,
                    "a zfs partition cannot be an LVM logical volume",
                );
            } else if !matches!(
                fs,
                FileSystem::Btrfs | FileSystem::Ext4 | FileSystem::Xfs | FileSystem::Ext3
            ) {
                sink.error(
                    Code::ZfsLvm,
                    lv.name.loc,
                    format!("{} cannot be put on LVM", fs.as_str()),
                );
            }
        }
        if let Some(zp) = &ex.zp {
            let n = &zp.name.value;
            let reserved = n == "log" || RESERVED_ZPOOL_PREFIXES.iter().any(|p| n.starts_with(p));
            if !n.starts_with(|c: char| c.is_ascii_alphabetic())
                || n.len() > 239
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_:.".contains(c))
            {
                sink.error(
                    Code::ZpoolNameInvalid,
                    zp.name.loc,
                    format!("zpool name `{n}` is invalid"),
                );
            } else if reserved {
                sink.error(
                    Code::ZpoolNameInvalid,
                    zp.name.loc,
                    format!("zpool name `{n}` is reserved by ZFS"),
                );
            }
            if fs != FileSystem::Zfs {
                sink.error(
                    Code::ZfsLvm,
                    zp.name.loc,
                    format!("`extras.zp` on a {} partition (only zfs)", fs.as_str()),
                );
            }
        }
    }
}

fn boot_rules(boot: &RawBoot, sink: &mut Sink) {
    let Some(mode_sp) = &boot.mode else {
        sink.error_hint(
            Code::MissingField,
            boot.loc,
            "missing field `mode` in boot",
            "give `mode:` (disk, rescue, ipxe, network, bootId) in the server's boot or its group template",
        );
        return;
    };
    let mode = mode_sp.value;
    let mismatch = |sink: &mut Sink, field: &str, wants: &str, loc| {
        sink.error(
            Code::BootFieldMismatch,
            loc,
            format!(
                "`{field}` is only used with `mode: {wants}`, but mode is `{}`",
                mode.as_str()
            ),
        );
    };
    match (&boot.ipxe_script, mode) {
        (None, BootModeKind::Ipxe) => sink.error(
            Code::IpxeScriptMissing,
            mode_sp.loc,
            "mode ipxe without ipxeScript",
        ),
        (Some(s), m) if m != BootModeKind::Ipxe => mismatch(sink, "ipxeScript", "ipxe", s.loc),
        _ => {}
    }
    if let Some(r) = &boot.rescue
        && mode != BootModeKind::Rescue
    {
        mismatch(sink, "rescue", "rescue", r.loc);
    }
    match (&boot.network, mode) {
        (None, BootModeKind::Network) => sink.error(
            Code::BootFieldMissing,
            mode_sp.loc,
            "mode network without `network` (the kernel to boot)",
        ),
        (Some(n), m) if m != BootModeKind::Network => mismatch(sink, "network", "network", n.loc),
        _ => {}
    }
    match (&boot.boot_id, mode) {
        (None, BootModeKind::BootId) => sink.error(
            Code::BootFieldMissing,
            mode_sp.loc,
            "mode bootId without `bootId`",
        ),
        (Some(b), m) if m != BootModeKind::BootId => mismatch(sink, "bootId", "bootId", b.loc),
        _ => {}
    }
    for kernel in [&boot.rescue, &boot.network].into_iter().flatten() {
        if kernel.value.trim().is_empty() {
            sink.error(Code::BootFieldMissing, kernel.loc, "empty kernel name");
        }
    }
    lease_rules(boot, mode, sink);
}

/// The longest `boot.for`: a lease is for a maintenance job, not a way of life.
pub const MAX_LEASE_SECS: u64 = 30 * 24 * 3600;

fn lease_rules(boot: &RawBoot, mode: BootModeKind, sink: &mut Sink) {
    if let (Some(_), Some(u)) = (&boot.lease_for, &boot.lease_until) {
        sink.error(
            Code::BootLeaseInvalid,
            u.loc,
            "`for` and `until` both set: a lease has one end",
        );
    }
    if mode == BootModeKind::Disk {
        for (field, loc) in [
            ("for", boot.lease_for.as_ref().map(|f| f.loc)),
            ("until", boot.lease_until.as_ref().map(|u| u.loc)),
        ] {
            if let Some(loc) = loc {
                sink.error(
                    Code::BootLeaseInvalid,
                    loc,
                    format!("`{field}` with `mode: disk`: only a temporary boot has a lease"),
                );
            }
        }
    }
    if let Some(f) = &boot.lease_for
        && let Err(message) = lease_secs(&f.value)
    {
        sink.error(Code::BootLeaseInvalid, f.loc, message);
    }
    if let Some(u) = &boot.lease_until
        && let Err(message) = lease_until(&u.value)
    {
        sink.error(Code::BootLeaseInvalid, u.loc, message);
    }
}

/// `boot.for` in seconds, or why it is not a lease duration.
pub fn lease_secs(text: &str) -> Result<u64, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.as_secs() == 0 => Err(format!("`for: {text}` is not more than 0 seconds")),
        Ok(d) if d.as_secs() > MAX_LEASE_SECS => {
            Err(format!("`for: {text}` is longer than 30 days"))
        }
        Ok(d) => Ok(d.as_secs()),
        Err(e) => Err(format!("`for: {text}` is not a duration: {e}")),
    }
}

/// `boot.until` as a timestamp, or why it is not one. An offset is required: a local time
/// would mean different instants on the laptop and on the daemon.
pub fn lease_until(text: &str) -> Result<jiff::Timestamp, String> {
    text.trim().parse::<jiff::Timestamp>().map_err(|e| {
        format!("`until: {text}` is not a time with an offset (e.g. 2026-12-01T10:00:00Z): {e}")
    })
}

fn settings_rules(s: &RawSettings, sink: &mut Sink) {
    if let Some(k) = &s.rescue_ssh_key
        && let Err(msg) = super::build::ssh_key_problem(&k.value)
    {
        sink.error(Code::SshKeyInvalid, k.loc, msg);
    }
    if let Some(m) = &s.rescue_mail
        && !m.value.is_empty()
        && !m.value.contains('@')
    {
        sink.error(
            Code::CustomizationInvalid,
            m.loc,
            format!("rescueMail `{}` is not an e-mail address", m.value),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_as_the_api_checks_them() {
        for ok in [
            "web-01",
            "a",
            "mon-tux",
            "web01.example.com",
            &"a".repeat(63),
        ] {
            assert!(hostname_problem(ok).is_none(), "{ok}");
        }
        for bad in ["1web", "web-", "we_b", "", "web..x", &"a".repeat(64), "-a"] {
            assert_eq!(
                hostname_problem(bad).map(|p| p.0),
                Some(Code::HostnameInvalid),
                "{bad}"
            );
        }
        let long = vec!["abc"; 70].join(".");
        assert_eq!(
            hostname_problem(&long).map(|p| p.0),
            Some(Code::HostnameTooLong)
        );
    }
}
