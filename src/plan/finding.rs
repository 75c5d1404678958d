//! Plan findings and their one code table: every finding the planner can emit has a stable
//! code, a severity, and a line of meaning documented in docs/plan.md (a test checks the two
//! agree).
//!
//! Owns: [`FindingCode`], [`Finding`], [`Severity`]. Must not touch: deciding when a finding
//! is emitted (that is `planner` and `checks`). Codes are stable: CI scripts and users grep for
//! them; never rename, only add.

use serde::{Deserialize, Serialize};

use crate::model::Origin;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! finding_codes {
    ($( $variant:ident = $slug:literal, $severity:ident, $meaning:literal; )*) => {
        /// Every finding code the planner can emit.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum FindingCode { $( $variant, )* }

        impl FindingCode {
            /// All codes, in table order (docs/plan.md lists each of them).
            pub const ALL: &'static [FindingCode] = &[$( FindingCode::$variant, )*];

            /// The stable slug, e.g. `os-not-compatible`.
            pub fn slug(self) -> &'static str {
                match self { $( FindingCode::$variant => $slug, )* }
            }

            /// The severity this code is always emitted with.
            pub fn severity(self) -> Severity {
                match self { $( FindingCode::$variant => Severity::$severity, )* }
            }

            /// What the finding means, one line (docs/plan.md's table).
            pub fn meaning(self) -> &'static str {
                match self { $( FindingCode::$variant => $meaning, )* }
            }

            pub fn from_slug(slug: &str) -> Option<FindingCode> {
                match slug { $( $slug => Some(FindingCode::$variant), )* _ => None }
            }
        }
    };
}

finding_codes! {
    // --- the plan as a whole ------------------------------------------------------------------
    TargetUnknown = "target-unknown", Error, "a `--target` names no manifest, record or live server";
    GroupLimit = "group-limit", Warning, "a group plans more reinstalls than its `maxConcurrentReinstalls`; apply runs them in turns";
    // --- presence, policy, windows ------------------------------------------------------------
    ServerNotFound = "server-not-found", Error, "a manifest names a server the account does not have";
    ReinstallNever = "reinstall-never", Error, "a reinstall is needed but `policy.reinstall` is `never`";
    WindowUnknown = "window-unknown", Error, "`policy.maintenanceWindow` names no MaintenanceWindow manifest";
    GenerationLowered = "generation-lowered", Warning, "`install.generation` is lower than the recorded one; only a bump forces a rebuild";
    PlannedIntervention = "planned-intervention", Warning, "OVH plans an intervention on a server a reinstall needing an explicit approval would wipe (or could not tell): whoever approves it decides";
    BootUnresolved = "boot-unresolved", Error, "the manifest's boot (kernel or id) is not offered by this server";
    LeaseEndedUnused = "lease-ended-unused", Warning, "a boot lease's `until:` passed before the server was ever set to its mode: nothing is set";
    // --- records: whom to believe --------------------------------------------------------------
    OwnedByOtherFleet = "owned-by-other-fleet", Error, "a manifest names a server another fleet's record owns; take it over explicitly or drop the manifest";
    FleetSecretMismatch = "fleet-secret-mismatch", Warning, "the record's secret digests were made with another fleet secret: secrets are not compared (the plan neither claims a change nor their sameness)";
    RecordDisputed = "record-disputed", Warning, "the state store and the server's tags disagree; nothing destructive is planned until they agree";
    RecordImplausible = "record-implausible", Warning, "a record cannot be true (OS never installed, time in the future, unknown algorithm): it is refused and the server planned as unrecorded";
    RecordAlgorithmOld = "record-algorithm-old", Warning, "a record from fingerprint algorithm 1 cannot be compared; the spec is recorded as the new baseline";
    CredentialsRotated = "credentials-rotated", Warning, "only `httpHeaders` values changed: a credential rotation, recorded without a rebuild";
    InstallFailed = "install-failed", Error, "the server's last reinstall failed: it is degraded, never adopted, and re-wiping it needs an explicit approval";
    // --- catalog and hardware checks of a reinstall -------------------------------------------
    OsNotCompatible = "os-not-compatible", Error, "the OS is not in the server's compatible templates";
    OsUnknown = "os-unknown", Error, "the OS is not in the installation template catalog (the message suggests the nearest name the server offers, if one is close)";
    DiskGroupMissing = "disk-group-missing", Error, "`storage.diskGroupId` is not a disk group of this server";
    KeepOsDiskGroup = "keep-os-disk-group", Error, "`keepDiskGroups` lists the disk group the OS is installed on";
    KeptNotSent = "kept-not-sent", Error, "`keepDiskGroups` lists a group the request does not send as `erase: false`: the API would erase it";
    KeptDiskGroupMissing = "kept-disk-group-missing", Error, "`keepDiskGroups` lists a disk group this server does not have";
    InputMissing = "input-missing", Error, "a mandatory template input (customization) is not given";
    InputEnum = "input-enum", Error, "a customization is not one of the template's allowed values";
    InputUnknown = "input-unknown", Error, "a customization is not an input of the template";
    NoPartitioning = "no-partitioning", Error, "the template does not accept a custom partition layout";
    Filesystem = "filesystem", Error, "a partition uses a file system the template does not offer";
    Lvm = "lvm", Error, "the layout uses LVM but the template is not LVM-ready";
    SoftRaidMirroring = "soft-raid-mirroring", Error, "the template allows only soft RAID 0 or 1";
    HardwareRaidUnsupported = "hardware-raid-unsupported", Error, "hardware RAID on a disk group without a RAID controller";
    RaidDisks = "raid-disks", Error, "the RAID level needs more disks than the disk group has";
    LegacyUnsupported = "legacy-unsupported", Error, "the legacy install route (`--install-api legacy`) cannot express this install (kept disk groups, a custom layout, hardware RAID, …)";
    ObservedAnomaly = "observed-anomaly", Warning, "the API's data for a server made no sense; nothing is done to that server, the rest of the fleet is planned";
    EndOfInstall = "end-of-install", Warning, "the template reached its end-of-install date; the API may refuse it";
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.slug())
    }
}

impl Serialize for FindingCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.slug())
    }
}

impl<'de> Deserialize<'de> for FindingCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let slug = String::deserialize(d)?;
        FindingCode::from_slug(&slug)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown finding code `{slug}`")))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: FindingCode,
    pub message: String,
    /// The manifest line the finding is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl Finding {
    /// A finding with its code's severity.
    pub fn new(code: FindingCode, message: impl Into<String>, origin: Option<Origin>) -> Finding {
        Finding {
            severity: code.severity(),
            code,
            message: message.into(),
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for c in FindingCode::ALL {
            assert!(seen.insert(c.slug()), "duplicate slug {}", c.slug());
            assert_eq!(FindingCode::from_slug(c.slug()), Some(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<FindingCode>(&json).unwrap(), *c);
        }
        assert!(serde_json::from_str::<FindingCode>("\"no-such-code\"").is_err());
    }
}
