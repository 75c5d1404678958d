//! Reads the live fleet through the [`ovh::Client`] into [`model::Observed`]. Decides nothing:
//! every value is what the API said, mapped into plain model types.
//!
//! Two phases, so the cost does not grow with the fleet: [`observe_fleet`] reads every named
//! server with one expanded listing (which also carries the IAM tags) and resolves current boot
//! ids through the client's netboot cache (bootId 1 is the disk boot, known without a call);
//! [`observe_detail`] reads boots, tasks, install progress, hardware and compatible templates
//! only for the servers the planner may act on. Requests are counted by the caller's
//! [`ovh::Meter`] (see `pipeline`), not here: a shared client's counter says nothing about one
//! run. Hardware and catalog facts come from the client's caches when it holds them (the
//! pipeline seeds those from the persisted facts cache); this room never reads that cache.
//!
//! Must not touch: plans, policies, the state store, the facts cache, manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::model::{
    self, BootType, DiskGroup, Hardware, InstallStatus, InstallStep, Observed, ObservedDetail,
    ObservedServer, TaskStatus, Template, TemplateInput,
};
use crate::ovh::{self, types};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Api(#[from] ovh::Error),
    /// The API answered something the model cannot hold (an unknown enum value, a bad date).
    #[error("server {server}: unexpected API data: {message}")]
    Unexpected { server: String, message: String },
}

/// Phase 1: the named servers' attributes, current boot and IAM tags. Servers missing from the
/// account are absent from `Observed.servers`.
pub async fn observe_fleet(
    client: &ovh::Client,
    names: &BTreeSet<String>,
) -> Result<Observed, ObserveError> {
    let mut observed = Observed::default();
    if names.is_empty() {
        return Ok(observed);
    }
    let servers = client.servers(Some(names)).await?;
    for (name, s) in &servers {
        observed.servers.insert(name.clone(), map_server(s));
    }
    // Resolve the distinct current boot ids, each through one server that uses it.
    let mut by_server: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for s in observed.servers.values() {
        if let Some(id) = s.boot_id
            && id != DISK_BOOT_ID
            && seen.insert(id)
        {
            by_server.entry(s.name.clone()).or_default().push(id);
        }
    }
    let mut netboots: BTreeMap<u64, model::Netboot> = BTreeMap::new();
    for (sn, ids) in by_server {
        for (id, b) in client.netboots(&sn, &ids).await? {
            netboots.insert(id, map_netboot(&sn, &b)?);
        }
    }
    for s in observed.servers.values_mut() {
        s.boot = match s.boot_id {
            Some(DISK_BOOT_ID) => Some(disk_boot()),
            Some(id) => netboots.get(&id).cloned(),
            None => None,
        };
    }
    Ok(observed)
}

/// Phase 2: boots, relevant tasks, install status, hardware and compatible templates of the
/// named servers (those already in `observed`), plus the installation templates of their
/// current OS into `observed.templates`.
pub async fn observe_detail(
    client: &ovh::Client,
    observed: &mut Observed,
    names: &BTreeSet<String>,
) -> Result<(), ObserveError> {
    observe_detail_with(client, observed, names, &|_| {}).await
}

/// [`observe_detail`], calling `on_server` with each server's name as soon as its detail is in
/// (in completion order), so a long read can show progress.
pub async fn observe_detail_with(
    client: &ovh::Client,
    observed: &mut Observed,
    names: &BTreeSet<String>,
    on_server: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ObserveError> {
    let limit = Arc::new(Semaphore::new(client.config().concurrency.max(1)));
    let mut set = JoinSet::new();
    for name in names.iter().filter(|n| observed.servers.contains_key(*n)) {
        let (client, name, limit) = (client.clone(), name.clone(), limit.clone());
        set.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore never closed");
            let detail = read_detail(&client, &name).await;
            (name, detail)
        });
    }
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let (name, detail) = joined.expect("detail task panicked");
        match detail {
            Ok(d) => {
                if let Some(s) = observed.servers.get_mut(&name) {
                    s.detail = Some(d);
                }
                on_server(&name);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let oses: BTreeSet<String> = names
        .iter()
        .filter_map(|n| observed.servers.get(n))
        .map(|s| s.os.clone())
        .collect();
    observe_templates(client, observed, &oses).await
}

/// The installation templates `names` (e.g. the OSes the manifests ask for) into
/// `observed.templates`. Unknown templates (404) are left out; the planner reports them.
pub async fn observe_templates(
    client: &ovh::Client,
    observed: &mut Observed,
    names: &BTreeSet<String>,
) -> Result<(), ObserveError> {
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !observed.templates.contains_key(*n))
        .collect();
    for name in missing {
        match client.installation_template(name).await {
            Ok(t) => {
                observed.templates.insert(name.clone(), map_template(&t));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

const DISK_BOOT_ID: u64 = 1;

/// bootId 1 is the disk boot on every server (REFERENCE §0.2, §2.2).
fn disk_boot() -> model::Netboot {
    model::Netboot {
        id: DISK_BOOT_ID,
        boot_type: BootType::Harddisk,
        kernel: "hd".into(),
        description: "Boot to disk".into(),
    }
}

async fn read_detail(client: &ovh::Client, sn: &str) -> Result<ObservedDetail, ObserveError> {
    let boot_ids = client.list_boots(sn, None).await?;
    let mut boots = Vec::new();
    for b in client.netboots(sn, &boot_ids).await?.values() {
        boots.push(map_netboot(sn, b)?);
    }
    let tasks = client
        .relevant_tasks(sn)
        .await?
        .iter()
        .map(|t| map_task(sn, t))
        .collect::<Result<Vec<_>, _>>()?;
    let install_status = client.install_status(sn).await?.map(|s| InstallStatus {
        elapsed_secs: s.elapsed_time,
        steps: s
            .progress
            .unwrap_or_default()
            .into_iter()
            .map(|p| InstallStep {
                comment: p.comment,
                status: p.status,
                error: p.error,
            })
            .collect(),
    });
    let hardware = Some(map_hardware(sn, &client.hardware(sn).await?)?);
    let compatible_templates = client
        .compatible_templates(sn)
        .await?
        .ovh
        .unwrap_or_default();
    Ok(ObservedDetail {
        boots,
        tasks,
        install_status,
        install_status_unknown: false,
        hardware,
        compatible_templates,
    })
}

fn map_server(s: &types::DedicatedServer) -> ObservedServer {
    let tags = s
        .iam
        .as_ref()
        .and_then(|i| i.tags.as_ref())
        .map(|t| {
            t.iter()
                .filter(|(k, _)| !k.starts_with("ovh:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    ObservedServer {
        name: s.name.clone(),
        os: s.os.clone(),
        state: s.state.clone(),
        power_state: s.power_state.clone(),
        datacenter: s.datacenter.clone(),
        boot_id: s.boot_id,
        boot: None,
        boot_script: s.boot_script.clone(),
        efi_bootloader_path: s.efi_bootloader_path.clone(),
        monitoring: s.monitoring,
        no_intervention: s.no_intervention,
        rescue_mail: s.rescue_mail.clone(),
        rescue_ssh_key: s.rescue_ssh_key.clone(),
        root_device: s.root_device.clone(),
        iam_urn: s.iam.as_ref().map(|i| i.urn.clone()),
        tags,
        detail: None,
        anomalies: Vec::new(),
    }
}

fn unexpected(server: &str, message: String) -> ObserveError {
    ObserveError::Unexpected {
        server: server.to_string(),
        message,
    }
}

fn map_netboot(sn: &str, b: &types::Netboot) -> Result<model::Netboot, ObserveError> {
    let boot_type = match b.boot_type.as_str() {
        "harddisk" => BootType::Harddisk,
        "internal" => BootType::Internal,
        "network" => BootType::Network,
        "power" => BootType::Power,
        "rescue" => BootType::Rescue,
        other => {
            return Err(unexpected(
                sn,
                format!("boot {} has unknown bootType `{other}`", b.boot_id),
            ));
        }
    };
    Ok(model::Netboot {
        id: b.boot_id,
        boot_type,
        kernel: b.kernel.clone(),
        description: b.description.clone(),
    })
}

fn map_task(sn: &str, t: &types::Task) -> Result<model::Task, ObserveError> {
    let status: TaskStatus = serde_json::from_value(serde_json::Value::String(t.status.clone()))
        .map_err(|_| {
            unexpected(
                sn,
                format!("task {} has unknown status `{}`", t.task_id, t.status),
            )
        })?;
    let date = |d: &Option<String>| -> Result<Option<jiff::Timestamp>, ObserveError> {
        d.as_deref()
            .map(|s| {
                s.parse::<jiff::Timestamp>()
                    .map_err(|e| unexpected(sn, format!("task {} date `{s}`: {e}", t.task_id)))
            })
            .transpose()
    };
    Ok(model::Task {
        id: t.task_id,
        function: t.function.clone(),
        status,
        comment: t.comment.clone(),
        start_date: date(&t.start_date)?,
        done_date: date(&t.done_date)?,
    })
}

/// Disk sizes come as `{unit, value}`; OVH's units are decimal ("480 GB" disks), the binary
/// ones are accepted too.
fn bytes(sn: &str, v: &types::UnitAndValue) -> Result<u64, ObserveError> {
    let factor: u64 = match v.unit.as_str() {
        "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => return Err(unexpected(sn, format!("unknown size unit `{other}`"))),
    };
    u64::try_from(v.value)
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| unexpected(sn, format!("disk size {} {} out of range", v.value, v.unit)))
}

fn map_hardware(sn: &str, h: &types::HardwareSpecifications) -> Result<Hardware, ObserveError> {
    let mut disk_groups = Vec::new();
    for g in h.disk_groups.iter().flatten() {
        disk_groups.push(DiskGroup {
            id: g
                .disk_group_id
                .ok_or_else(|| unexpected(sn, "a disk group without diskGroupId".into()))?,
            description: g.description.clone().unwrap_or_default(),
            disk_type: g.disk_type.clone().unwrap_or_default(),
            number_of_disks: g.number_of_disks.unwrap_or(0),
            disk_size_bytes: g
                .disk_size
                .as_ref()
                .map(|s| bytes(sn, s))
                .transpose()?
                .unwrap_or(0),
            raid_controller: g.raid_controller.clone(),
        });
    }
    Ok(Hardware {
        boot_mode: h.boot_mode.clone(),
        disk_groups,
    })
}

fn map_template(t: &types::InstallationTemplate) -> Template {
    Template {
        name: t.template_name.clone(),
        family: t.family.clone(),
        filesystems: t.filesystems.clone(),
        inputs: t
            .inputs
            .iter()
            .flatten()
            .map(|i| TemplateInput {
                name: i.name.clone(),
                input_type: i.input_type.clone(),
                mandatory: i.mandatory,
                default: i.default.clone(),
                enum_values: i.enum_values.clone(),
            })
            .collect(),
        lvm_ready: t.lvm_ready,
        no_partitioning: t.no_partitioning,
        soft_raid_only_mirroring: t.soft_raid_only_mirroring,
        end_of_install: t.end_of_install.clone(),
    }
}

/// The servers of the account that carry an IAM tag with key `tag_key` (server-side `iamTags`
/// filter, one call). `plan` uses it to find servers ovhform manages whose manifest is gone,
/// when no state directory remembers them (a read-only plan in CI).
pub async fn servers_tagged(
    client: &ovh::Client,
    tag_key: &str,
) -> Result<BTreeSet<String>, ObserveError> {
    let filter = serde_json::json!({ tag_key: [{"operator": "EXISTS", "value": ""}] }).to_string();
    let query = percent_encoding::utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC);
    let names: Vec<String> = client
        .get(&format!("/dedicated/server?iamTags={query}"))
        .await?;
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tasks_dates_and_sizes() {
        let t: types::Task = serde_json::from_value(serde_json::json!({
            "taskId": 5, "function": "reinstallServer", "status": "doing", "comment": null,
            "startDate": "2024-01-26T17:57:10+01:00", "doneDate": null, "lastUpdate": null,
            "needSchedule": false, "note": null, "plannedInterventionId": null, "tags": null, "ticketReference": null
        }))
        .unwrap();
        let m = map_task("ns1", &t).unwrap();
        assert_eq!(m.status, TaskStatus::Doing);
        assert_eq!(m.start_date.unwrap().to_string(), "2024-01-26T16:57:10Z");
        let bad = types::Task {
            status: "exploded".into(),
            ..t
        };
        // A status the API added since: read as running (the planner waits), never an error
        // that aborts the fleet's plan.
        assert_eq!(map_task("ns1", &bad).unwrap().status, TaskStatus::Unknown);
        assert_eq!(
            bytes(
                "ns1",
                &types::UnitAndValue {
                    unit: "GB".into(),
                    value: 480
                }
            )
            .unwrap(),
            480_000_000_000
        );
        assert!(
            bytes(
                "ns1",
                &types::UnitAndValue {
                    unit: "parsec".into(),
                    value: 1
                }
            )
            .is_err()
        );
    }
}
