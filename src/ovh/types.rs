//! Request and response bodies of the routes ovhform uses, with the exact JSON field names of
//! the published schemas (`dedicated-server.openapi3.json`, `dedicated-installationTemplate`,
//! `iam-v2`). Nullable fields are `Option`; fields the 2026 API added are `#[serde(default)]`
//! so older answers still decode. Enums the API may extend are kept as strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `dedicated.server.DedicatedWithIAM` (GET `/dedicated/server/{sn}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DedicatedServer {
    pub name: String,
    #[serde(default)]
    pub availability_zone: Option<String>,
    pub boot_id: Option<u64>,
    pub boot_script: Option<String>,
    #[serde(default)]
    pub commercial_range: Option<String>,
    pub datacenter: String,
    pub efi_bootloader_path: Option<String>,
    #[serde(default)]
    pub iam: Option<ResourceMetadata>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub link_speed: Option<u64>,
    pub monitoring: bool,
    #[serde(default)]
    pub new_upgrade_system: Option<bool>,
    pub no_intervention: bool,
    pub os: String,
    pub power_state: String,
    #[serde(default)]
    pub professional_use: Option<bool>,
    #[serde(default)]
    pub rack: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub rescue_mail: Option<String>,
    #[serde(default)]
    pub rescue_ssh_key: Option<String>,
    #[serde(default)]
    pub reverse: Option<String>,
    pub root_device: Option<String>,
    #[serde(default)]
    pub server_id: Option<u64>,
    pub state: String,
    #[serde(default)]
    pub support_level: Option<String>,
}

/// `iam.ResourceMetadata` (the `iam` block of a server; GET only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetadata {
    pub id: String,
    pub urn: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// User tags and `ovh:`-prefixed system tags.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// 2026 addition: `EXPIRED | IN_CREATION | OK | SUSPENDED`.
    #[serde(default)]
    pub state: Option<String>,
}

/// Partial `dedicated.server.Dedicated` for PUT: only the writable keys, only those set.
/// `state` is writable in the schema but deliberately absent: a reconciler must not touch it.
/// To clear a nullable string, send `Some(String::new())` (what the official tools do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_script: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efi_bootloader_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_intervention: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescue_mail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescue_ssh_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_device: Option<String>,
}

/// `dedicated.server.Netboot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Netboot {
    pub boot_id: u64,
    /// `harddisk | internal | network | power | rescue`.
    pub boot_type: String,
    pub description: String,
    pub kernel: String,
}

/// `dedicated.server.Task` (GET `/task/{id}`, POST `/reboot`, legacy `install/start`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_id: u64,
    pub function: String,
    /// `init, todo, doing, done, cancelled, customerError, ovhError`.
    pub status: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// RFC 3339, offsets may be non-UTC.
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub done_date: Option<String>,
    #[serde(default)]
    pub last_update: Option<String>,
    #[serde(default)]
    pub need_schedule: Option<bool>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub planned_intervention_id: Option<u64>,
    #[serde(default)]
    pub tags: Option<Vec<TaskTag>>,
    #[serde(default)]
    pub ticket_reference: Option<String>,
}

/// `dedicated.server.PlannedIntervention` (GET `/plannedIntervention/{interventionId}`). Every
/// field is read-only and none is marked required: missing ones decode as `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedIntervention {
    pub id: u64,
    /// `dedicated.PlannedInterventionStatusEnum`: `doing, done, todo`.
    #[serde(default)]
    pub status: Option<String>,
    /// `dedicated.PlannedInterventionTypeEnum`: `HARDWARE_UPGRADE_ON_ACTIVE_SERVER`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub wanted_start_date: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub expected_end_date: Option<String>,
}

/// `complexType.SafeKeyValueCanBeNull<string>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTag {
    pub key: Option<String>,
    pub value: String,
}

/// `dedicated.server.task.Response` (the short answer of POST `/reinstall`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    pub task_id: u64,
    pub function: String,
    pub status: String,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub done_date: Option<String>,
}

/// `dedicated.server.InstallationProgressStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationProgressStatus {
    pub elapsed_time: u64,
    pub progress: Option<Vec<InstallationProgressStep>>,
}

/// `dedicated.server.InstallationProgressSteps`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationProgressStep {
    pub comment: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// `dedicated.server.InstallTemplate` (compatibleTemplates).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallTemplate {
    #[serde(default)]
    pub ovh: Option<Vec<String>>,
    /// Gone in the 2026 API.
    #[serde(default)]
    pub personal: Option<Vec<String>>,
}

/// `complexType.UnitAndValue<long>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitAndValue {
    pub unit: String,
    pub value: i64,
}

/// `dedicated.server.HardwareSpecifications`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareSpecifications {
    /// `legacy | uefi | uefi-legacy`.
    pub boot_mode: String,
    #[serde(default)]
    pub cores_per_processor: Option<u64>,
    #[serde(default)]
    pub default_hardware_raid_size: Option<UnitAndValue>,
    #[serde(default)]
    pub default_hardware_raid_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disk_groups: Option<Vec<HardwareSpecificationsDisk>>,
    #[serde(default)]
    pub expansion_cards: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub form_factor: Option<String>,
    #[serde(default)]
    pub memory_size: Option<UnitAndValue>,
    #[serde(default)]
    pub motherboard: Option<String>,
    #[serde(default)]
    pub number_of_processors: Option<u64>,
    #[serde(default)]
    pub processor_architecture: Option<String>,
    #[serde(default)]
    pub processor_name: Option<String>,
    #[serde(default)]
    pub threads_per_processor: Option<u64>,
    #[serde(default)]
    pub usb_keys: Option<Vec<serde_json::Value>>,
}

/// `dedicated.server.HardwareSpecificationsDisk` (one disk group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareSpecificationsDisk {
    #[serde(default)]
    pub default_hardware_raid_size: Option<UnitAndValue>,
    #[serde(default)]
    pub default_hardware_raid_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disk_group_id: Option<u32>,
    #[serde(default)]
    pub disk_size: Option<UnitAndValue>,
    #[serde(default)]
    pub disk_type: Option<String>,
    #[serde(default)]
    pub number_of_disks: Option<u32>,
    #[serde(default)]
    pub raid_controller: Option<String>,
}

/// `dedicated.installationTemplate.Templates`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationTemplate {
    pub template_name: String,
    #[serde(default)]
    pub bit_format: Option<u32>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub distribution: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub end_of_install: Option<String>,
    pub family: String,
    #[serde(default)]
    pub filesystems: Vec<String>,
    #[serde(default)]
    pub inputs: Option<Vec<TemplateOsInput>>,
    #[serde(default)]
    pub license: Option<serde_json::Value>,
    #[serde(default)]
    pub lvm_ready: Option<bool>,
    #[serde(default)]
    pub no_partitioning: bool,
    #[serde(default)]
    pub project: Option<serde_json::Value>,
    #[serde(default)]
    pub root_mountpoint: Option<String>,
    #[serde(default)]
    pub soft_raid_only_mirroring: bool,
    #[serde(default)]
    pub subfamily: Option<String>,
}

/// `dedicated.TemplateOsInput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateOsInput {
    pub name: String,
    #[serde(rename = "type")]
    pub input_type: String,
    #[serde(default)]
    pub mandatory: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "enum", default)]
    pub enum_values: Vec<String>,
}

/// `dedicated.TemplateOsInfo` (items of `/dedicated/installationTemplate/templateInfos`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateOsInfo {
    pub template_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub subfamily: Option<String>,
    #[serde(default)]
    pub end_of_install: Option<String>,
    #[serde(default)]
    pub license: Option<serde_json::Value>,
    #[serde(default)]
    pub project: Option<serde_json::Value>,
}

/// `iam.resource.Resource` (IAM v2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamResource {
    pub id: String,
    pub urn: String,
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `iam.resource.AddTag`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTag {
    pub key: String,
    pub value: String,
}

/// Body of the legacy `POST /dedicated/server/{sn}/install/start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallStart {
    pub template_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_scheme_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<InstallCustom>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub user_metadata: Vec<KeyValue>,
}

/// `dedicated.server.InstallCustom` (only what ovhform maps).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallCustom {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_group_id: Option<u32>,
}

/// `complexType.SafeKeyValue<string>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One item of a batch GET answer (`X-Ovh-Batch`). Only `value` is confirmed; `key` and
/// `error` are tolerated when present (REFERENCE §6.8).
#[derive(Clone, Debug, Deserialize)]
pub struct BatchItem<T> {
    #[serde(default)]
    pub key: Option<serde_json::Value>,
    #[serde(default = "none")]
    pub value: Option<T>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

fn none<T>() -> Option<T> {
    None
}

/// `auth.Credential` (GET `/auth/currentCredential`): the consumer key the request was signed
/// with. REFERENCE §6.3 confirms `rules` and `status`; the other names are those of OVH's
/// published `auth` schema. Everything in it is hostile text for a renderer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentCredential {
    #[serde(default)]
    pub credential_id: Option<u64>,
    #[serde(default)]
    pub application_id: Option<u64>,
    /// `expired`, `pendingValidation`, `refused` or `validated`.
    pub status: String,
    #[serde(default)]
    pub rules: Vec<crate::ovh::AccessRule>,
    #[serde(default)]
    pub creation: Option<jiff::Timestamp>,
    /// `null`: the key never expires.
    #[serde(default)]
    pub expiration: Option<jiff::Timestamp>,
    #[serde(default)]
    pub last_use: Option<jiff::Timestamp>,
    #[serde(default, rename = "allowedIPs")]
    pub allowed_ips: Option<Vec<String>>,
}
