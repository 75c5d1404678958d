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
//! One odd server never aborts the fleet's read. What the model cannot hold (an unknown
//! `bootType`, an unreadable date, an unknown size unit, a disk group without id, an empty or
//! odd `os`) and what the API will not show for one server (a 403 of per-server access rules)
//! become that server's `anomalies` — the planner does nothing to it — and the other servers
//! are read as usual. A listed task that answers 404 is kept as `TaskStatus::Unreadable` (fresh
//! tasks do, REFERENCE §0.8), and an install status that cannot be read is
//! `install_status_unknown`, never "nothing installing". Only what says the API or the
//! credentials are unwell (5xx or timeouts after retries, 401, every server refused) fails.
//! API strings are never trusted: anomaly texts quote them escaped and shortened, and an odd
//! `os` is never used to build a request.
//!
//! [`observe_interventions`] reads OVH's planned interventions for the servers the pipeline
//! names (those a reinstall may run on); it never fails: what cannot be read is `Unreadable`.
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
use crate::ovh::{self, ServerObjects, TaggedServers, types};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Api(#[from] ovh::Error),
}

/// Phase 1: the named servers' attributes, current boot and IAM tags. Servers missing from the
/// account are absent from `Observed.servers`; a server the API will not show is present with
/// an anomaly saying so.
pub async fn observe_fleet(
    client: &ovh::Client,
    names: &BTreeSet<String>,
) -> Result<Observed, ObserveError> {
    observe_fleet_from(client, names, None).await
}

/// [`observe_fleet`], taking the servers from `listing` — the whole account's, as the
/// fallback of [`servers_tagged`] read it — instead of listing the account again.
pub async fn observe_fleet_from(
    client: &ovh::Client,
    names: &BTreeSet<String>,
    listing: Option<ServerObjects>,
) -> Result<Observed, ObserveError> {
    let mut observed = Observed::default();
    if names.is_empty() {
        return Ok(observed);
    }
    let mut listing = match listing {
        Some(l) => l,
        None => client.servers(Some(names)).await?,
    };
    for name in names {
        if let Some(s) = listing.servers.get(name) {
            observed.servers.insert(name.clone(), map_server(s));
        } else if let Some(e) = listing.refused.get(name) {
            observed
                .servers
                .insert(name.clone(), unreadable_server(name, e));
        }
    }
    // Every existing server refused is not a fleet of odd servers: the credentials cannot read
    // servers at all, and a plan of nothing but anomalies would read as "no changes".
    let readable = names.iter().any(|n| listing.servers.contains_key(n));
    if !readable && let Some(name) = names.iter().find(|n| listing.refused.contains_key(*n)) {
        let e = listing.refused.remove(name).expect("just found");
        return Err(e.into());
    }
    resolve_boots(client, &mut observed).await?;
    Ok(observed)
}

/// The current netboot of every observed server. Each distinct boot id is read once, through
/// one server that uses it; if that server will not show it (per-server access rules), the next
/// server using it is asked, and the refusing server gets an anomaly.
async fn resolve_boots(client: &ovh::Client, observed: &mut Observed) -> Result<(), ObserveError> {
    let mut users: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for s in observed.servers.values() {
        if let Some(id) = s.boot_id
            && id != DISK_BOOT_ID
        {
            users.entry(id).or_default().push(s.name.clone());
        }
    }
    let mut netboots: BTreeMap<u64, types::Netboot> = BTreeMap::new();
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tried: BTreeMap<u64, usize> = BTreeMap::new();
    let mut pending: BTreeSet<u64> = users.keys().copied().collect();
    while !pending.is_empty() {
        let mut by_server: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for id in std::mem::take(&mut pending) {
            let n = tried.entry(id).or_insert(0);
            if let Some(sn) = users.get(&id).and_then(|u| u.get(*n)) {
                *n += 1;
                by_server.entry(sn.clone()).or_default().push(id);
            }
        }
        for (sn, ids) in by_server {
            let got = client.netboots(&sn, &ids).await?;
            netboots.extend(got.found);
            for (id, e) in got.refused {
                refused
                    .entry(sn.clone())
                    .or_default()
                    .push(format!("boot {id} could not be read: {}", quote_error(&e)));
                pending.insert(id);
            }
        }
    }
    for s in observed.servers.values_mut() {
        s.anomalies
            .extend(refused.remove(&s.name).unwrap_or_default());
        s.boot = match s.boot_id {
            Some(DISK_BOOT_ID) => Some(disk_boot()),
            Some(id) => match netboots.get(&id).map(map_netboot) {
                Some(Ok(b)) => Some(b),
                Some(Err(odd)) => {
                    s.anomalies.push(odd);
                    None
                }
                None => None,
            },
            None => None,
        };
    }
    Ok(())
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
/// (in completion order), so a long read can show progress. A server whose fleet pass already
/// found an anomaly is not read: the planner does nothing to it, whatever its detail says.
pub async fn observe_detail_with(
    client: &ovh::Client,
    observed: &mut Observed,
    names: &BTreeSet<String>,
    on_server: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ObserveError> {
    let limit = Arc::new(Semaphore::new(client.config().concurrency.max(1)));
    let mut set = JoinSet::new();
    for name in names {
        match observed.servers.get(name) {
            Some(s) if s.anomalies.is_empty() => {}
            Some(_) => {
                on_server(name);
                continue;
            }
            None => continue,
        }
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
        let Some(s) = observed.servers.get_mut(&name) else {
            continue;
        };
        match detail {
            Ok((d, anomalies)) => {
                s.detail = Some(d);
                s.anomalies.extend(anomalies);
            }
            // This server's detail is not ours to read (per-server access rules): a fact about
            // it, not a failed plan.
            Err(e) if e.is_refusal() => {
                s.anomalies
                    .push(format!("its detail could not be read: {}", quote_error(&e)));
            }
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        }
        on_server(&name);
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    let oses: BTreeSet<String> = names
        .iter()
        .filter_map(|n| observed.servers.get(n))
        .map(|s| s.os.clone())
        .filter(|os| is_template_name(os))
        .collect();
    observe_templates(client, observed, &oses).await
}

/// The installation templates `names` (e.g. the OSes the manifests ask for) into
/// `observed.templates`. A template the API does not give — 404, any other 4xx it answers
/// for that name, or a name that cannot be a path segment — is left out; the planner reports
/// it (`os-unknown`).
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
            Err(e)
                if e.is_not_found()
                    || e.is_refusal()
                    || matches!(e, ovh::Error::UnsafePath { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether `s` can be an installation template name (`debian12_64`, `win2022core-std_64`,
/// `none_64`): 1 to 100 of `[A-Za-z0-9_.+-]`, starting with a letter or digit. A live `os`
/// that is not is an anomaly and is never put in a request path.
pub fn is_template_name(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.+-".contains(&c))
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

/// A value from the API, quoted for an anomaly text: escaped (`{:?}`: no control character or
/// terminal sequence reaches a reader raw) and cut to 80 characters.
fn quote(v: &str) -> String {
    let cut: String = v.chars().take(80).collect();
    if cut.len() < v.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// An API error for an anomaly text (its message comes from the API: escaped and cut).
fn quote_error(e: &ovh::Error) -> String {
    match e.api() {
        Some(a) => format!(
            "HTTP {} {}{} (X-Ovh-QueryId: {})",
            a.status,
            a.class
                .as_deref()
                .or(a.error_code.as_deref())
                .map(|c| format!("{} ", quote(c)))
                .unwrap_or_default(),
            quote(&a.message),
            quote(a.query_id.as_deref().unwrap_or("none")),
        ),
        None => quote(&e.to_string()),
    }
}

/// A server the API lists but will not show (e.g. 403: the consumer key's access rules do not
/// cover it): present, so the plan says so instead of "not in the account", with nothing in it
/// the planner could act on.
fn unreadable_server(name: &str, e: &ovh::Error) -> ObservedServer {
    ObservedServer {
        name: name.to_string(),
        os: String::new(),
        state: String::new(),
        power_state: String::new(),
        datacenter: String::new(),
        boot_id: None,
        boot: None,
        boot_script: None,
        efi_bootloader_path: None,
        monitoring: false,
        no_intervention: false,
        rescue_mail: None,
        rescue_ssh_key: None,
        root_device: None,
        iam_urn: None,
        tags: BTreeMap::new(),
        detail: None,
        anomalies: vec![format!("the server could not be read: {}", quote_error(e))],
    }
}

async fn read_detail(
    client: &ovh::Client,
    sn: &str,
) -> Result<(ObservedDetail, Vec<String>), ovh::Error> {
    let mut anomalies = Vec::new();
    let boot_ids = client.list_boots(sn, None).await?;
    let got = client.netboots(sn, &boot_ids).await?;
    let mut boots = Vec::new();
    for b in got.found.values() {
        match map_netboot(b) {
            Ok(b) => boots.push(b),
            Err(odd) => anomalies.push(odd),
        }
    }
    for (id, e) in &got.refused {
        anomalies.push(format!("boot {id} could not be read: {}", quote_error(e)));
    }
    let relevant = client.relevant_tasks(sn).await?;
    let mut tasks: Vec<model::Task> = relevant
        .tasks
        .iter()
        .map(|t| map_task(t, &mut anomalies))
        .collect();
    tasks.extend(
        relevant
            .unreadable
            .into_iter()
            .map(|(id, function)| model::Task {
                id,
                function: function.unwrap_or_else(|| "unknown".into()),
                status: TaskStatus::Unreadable,
                comment: None,
                start_date: None,
                done_date: None,
            }),
    );
    tasks.sort_by_key(|t| t.id);
    // Only the API's 404 means "nothing installing"; anything else it answered (after the
    // client's retries) leaves it unknown, and the planner waits on any task it cannot read.
    let (install_status, install_status_unknown) = match client.install_status(sn).await {
        Ok(st) => (st.map(map_install_status), false),
        Err(e) => {
            tracing::warn!(server = sn, error = %e, "install status unknown");
            (None, true)
        }
    };
    let hardware = match map_hardware(&client.hardware(sn).await?) {
        Ok(h) => Some(h),
        Err(odd) => {
            anomalies.push(odd);
            None
        }
    };
    let compatible_templates = client
        .compatible_templates(sn)
        .await?
        .ovh
        .unwrap_or_default();
    Ok((
        ObservedDetail {
            boots,
            tasks,
            install_status,
            install_status_unknown,
            hardware,
            compatible_templates,
            interventions: crate::model::Interventions::NotRead,
        },
        anomalies,
    ))
}

/// OVH's planned interventions on `names` (servers already read in detail), into each
/// server's `detail.interventions`. Never fails: a server whose list or any listed
/// intervention cannot be read, or makes no sense (an unreadable date), is `Unreadable` with
/// the reason, which the planner never takes for "none planned".
pub async fn observe_interventions(
    client: &ovh::Client,
    observed: &mut Observed,
    names: &BTreeSet<String>,
) {
    let limit = Arc::new(Semaphore::new(client.config().concurrency.max(1)));
    let mut set = JoinSet::new();
    for name in names {
        if observed
            .servers
            .get(name)
            .is_none_or(|s| s.detail.is_none())
        {
            continue;
        }
        let (client, name, limit) = (client.clone(), name.clone(), limit.clone());
        set.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore never closed");
            let read = read_interventions(&client, &name).await;
            (name, read)
        });
    }
    while let Some(joined) = set.join_next().await {
        let (name, read) = joined.expect("intervention task panicked");
        if let Some(d) = observed
            .servers
            .get_mut(&name)
            .and_then(|s| s.detail.as_mut())
        {
            d.interventions = read;
        }
    }
}

async fn read_interventions(client: &ovh::Client, sn: &str) -> model::Interventions {
    let got = match client.planned_interventions(sn).await {
        Ok(got) => got,
        Err(e) => {
            return model::Interventions::Unreadable {
                error: format!(
                    "the planned interventions could not be listed: {}",
                    quote_error(&e)
                ),
            };
        }
    };
    if let Some(id) = got.missing.iter().next() {
        return model::Interventions::Unreadable {
            error: format!("planned intervention {id} is listed but answers 404"),
        };
    }
    if let Some((id, e)) = got.refused.iter().next() {
        return model::Interventions::Unreadable {
            error: format!(
                "planned intervention {id} could not be read: {}",
                quote_error(e)
            ),
        };
    }
    let mut list = Vec::new();
    for p in got.found.values() {
        match map_intervention(p) {
            Ok(m) => list.push(m),
            Err(error) => return model::Interventions::Unreadable { error },
        }
    }
    model::Interventions::Read { list }
}

/// An intervention in the model. A missing status reads as unknown (not finished); a date
/// that does not parse makes the whole list unreadable: when it ends would be a guess.
fn map_intervention(p: &types::PlannedIntervention) -> Result<model::PlannedIntervention, String> {
    let date = |field: &str, d: &Option<String>| -> Result<Option<jiff::Timestamp>, String> {
        match d.as_deref() {
            None => Ok(None),
            Some(raw) => raw.parse::<jiff::Timestamp>().map(Some).map_err(|_| {
                format!(
                    "planned intervention {} has an unreadable {field} {}",
                    p.id,
                    quote(raw)
                )
            }),
        }
    };
    Ok(model::PlannedIntervention {
        id: p.id,
        kind: p.kind.clone().unwrap_or_default(),
        status: model::InterventionStatus::parse(p.status.as_deref().unwrap_or("")),
        wanted_start: date("wantedStartDate", &p.wanted_start_date)?,
        expected_end: date("expectedEndDate", &p.expected_end_date)?,
    })
}

fn map_install_status(s: types::InstallationProgressStatus) -> InstallStatus {
    InstallStatus {
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
    }
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
    let mut anomalies = Vec::new();
    if s.os.trim().is_empty() {
        anomalies.push("the API gives no OS for the server (`os` is empty)".to_string());
    } else if !is_template_name(&s.os) {
        anomalies.push(format!(
            "its OS {} is not an installation template name",
            quote(&s.os)
        ));
    }
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
        anomalies,
    }
}

/// A netboot in the model, or the anomaly that says why it cannot be.
fn map_netboot(b: &types::Netboot) -> Result<model::Netboot, String> {
    let boot_type = match b.boot_type.as_str() {
        "harddisk" => BootType::Harddisk,
        "internal" => BootType::Internal,
        "network" => BootType::Network,
        "power" => BootType::Power,
        "rescue" => BootType::Rescue,
        other => {
            return Err(format!(
                "boot {} has an unknown bootType {}",
                b.boot_id,
                quote(other)
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

/// A task in the model. An unknown status reads as `Unknown` (the planner waits on it); a date
/// that does not parse is left out and becomes an anomaly of the server.
fn map_task(t: &types::Task, anomalies: &mut Vec<String>) -> model::Task {
    let status: TaskStatus = serde_json::from_value(serde_json::Value::String(t.status.clone()))
        .unwrap_or(TaskStatus::Unknown);
    let mut date = |field: &str, d: &Option<String>| -> Option<jiff::Timestamp> {
        let raw = d.as_deref()?;
        match raw.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(ts),
            Err(_) => {
                anomalies.push(format!(
                    "task {} has an unreadable {field} {}",
                    t.task_id,
                    quote(raw)
                ));
                None
            }
        }
    };
    let start_date = date("startDate", &t.start_date);
    let done_date = date("doneDate", &t.done_date);
    model::Task {
        id: t.task_id,
        function: t.function.clone(),
        status,
        comment: t.comment.clone(),
        start_date,
        done_date,
    }
}

/// Disk sizes come as `{unit, value}`; OVH's units are decimal ("480 GB" disks), the binary
/// ones are accepted too. `Err` is the anomaly text.
fn bytes(v: &types::UnitAndValue) -> Result<u64, String> {
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
        other => return Err(format!("a disk size has an unknown unit {}", quote(other))),
    };
    u64::try_from(v.value)
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| {
            format!(
                "a disk size of {} {} is out of range",
                v.value,
                quote(&v.unit)
            )
        })
}

/// The hardware in the model, or the anomaly that says why it cannot be (then the planner has
/// no hardware facts for the server, as if they had not been read).
fn map_hardware(h: &types::HardwareSpecifications) -> Result<Hardware, String> {
    let mut disk_groups = Vec::new();
    for g in h.disk_groups.iter().flatten() {
        disk_groups.push(DiskGroup {
            id: g
                .disk_group_id
                .ok_or_else(|| "a disk group has no diskGroupId".to_string())?,
            description: g.description.clone().unwrap_or_default(),
            disk_type: g.disk_type.clone().unwrap_or_default(),
            number_of_disks: g.number_of_disks.unwrap_or(0),
            disk_size_bytes: g.disk_size.as_ref().map(bytes).transpose()?.unwrap_or(0),
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

/// The servers of the account that carry an IAM tag with key `tag_key`: the `iamTags` filter
/// when the API takes it (one call), else the tags of the account's listing, which is returned
/// for [`observe_fleet_from`] to reuse (see [`ovh::Client::tagged_servers`]). `plan` uses it to
/// find servers ovhform manages whose manifest is gone, when no state directory remembers them
/// (a read-only plan in CI).
pub async fn servers_tagged(
    client: &ovh::Client,
    tag_key: &str,
) -> Result<TaggedServers, ObserveError> {
    Ok(client.tagged_servers(tag_key).await?)
}

/// [`servers_tagged`] from the account's whole listing, which also decides the members of the
/// ServerGroups that select servers by IAM tags: `desired` gains them
/// ([`model::Desired::select_by_tags`]). The listing is returned for the fleet pass to reuse.
pub async fn servers_by_tags(
    client: &ovh::Client,
    tag_key: &str,
    desired: &mut model::Desired,
) -> Result<TaggedServers, ObserveError> {
    let listing = client.servers(None).await?;
    let tags: BTreeMap<String, BTreeMap<String, String>> = listing
        .servers
        .iter()
        .map(|(name, s)| (name.clone(), map_server(s).tags))
        .collect();
    let added = desired.select_by_tags(&tags);
    if !added.is_empty() {
        tracing::info!(servers = added.len(), "servers selected by IAM tags");
    }
    let names = listing.carrying_tag(tag_key);
    Ok(TaggedServers {
        names,
        source: ovh::TagSource::Listing,
        listing: Some(listing),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: &str, start: &str) -> types::Task {
        serde_json::from_value(serde_json::json!({
            "taskId": 5, "function": "reinstallServer", "status": status, "comment": null,
            "startDate": start, "doneDate": null, "lastUpdate": null,
            "needSchedule": false, "note": null, "plannedInterventionId": null, "tags": null, "ticketReference": null
        }))
        .unwrap()
    }

    #[test]
    fn maps_tasks_dates_and_sizes() {
        let mut anomalies = Vec::new();
        let m = map_task(&task("doing", "2024-01-26T17:57:10+01:00"), &mut anomalies);
        assert_eq!(m.status, TaskStatus::Doing);
        assert_eq!(m.start_date.unwrap().to_string(), "2024-01-26T16:57:10Z");
        // A status the API added since: read as running (the planner waits), never an error
        // that aborts the fleet's plan.
        let m = map_task(&task("exploded", "2024-01-26T17:57:10Z"), &mut anomalies);
        assert_eq!(m.status, TaskStatus::Unknown);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        let unit = |unit: &str| types::UnitAndValue {
            unit: unit.into(),
            value: 480,
        };
        assert_eq!(bytes(&unit("GB")).unwrap(), 480_000_000_000);
        assert_eq!(bytes(&unit("GiB")).unwrap(), 480 << 30);
    }

    #[test]
    fn an_unreadable_task_date_is_an_anomaly_not_an_error() {
        let mut anomalies = Vec::new();
        let m = map_task(&task("init", "yesterday\u{1b}[2J"), &mut anomalies);
        assert_eq!((m.status, m.start_date), (TaskStatus::Init, None));
        assert_eq!(anomalies.len(), 1);
        assert!(
            anomalies[0].contains("task 5 has an unreadable startDate"),
            "{anomalies:?}"
        );
        assert!(!anomalies[0].contains('\u{1b}'), "escaped: {anomalies:?}");
    }

    #[test]
    fn an_unknown_boot_type_is_an_anomaly() {
        let b = types::Netboot {
            boot_id: 42,
            boot_type: "quantum".into(),
            description: "?".into(),
            kernel: "q".into(),
        };
        let odd = map_netboot(&b).unwrap_err();
        assert_eq!(odd, "boot 42 has an unknown bootType \"quantum\"");
    }

    #[test]
    fn odd_hardware_is_an_anomaly_and_no_hardware() {
        let hw = |groups: serde_json::Value| -> types::HardwareSpecifications {
            serde_json::from_value(serde_json::json!({"bootMode": "uefi", "diskGroups": groups}))
                .unwrap()
        };
        let good = serde_json::json!({"diskGroupId": 1, "diskSize": {"unit": "GB", "value": 480}, "diskType": "SSD", "numberOfDisks": 2});
        assert_eq!(
            map_hardware(&hw(serde_json::json!([good])))
                .unwrap()
                .disk_groups
                .len(),
            1
        );
        let parsec =
            serde_json::json!([{"diskGroupId": 1, "diskSize": {"unit": "parsec", "value": 1}}]);
        assert_eq!(
            map_hardware(&hw(parsec)).unwrap_err(),
            "a disk size has an unknown unit \"parsec\""
        );
        let no_id =
            serde_json::json!([{"diskGroupId": null, "diskSize": {"unit": "GB", "value": 1}}]);
        assert_eq!(
            map_hardware(&hw(no_id)).unwrap_err(),
            "a disk group has no diskGroupId"
        );
        let huge = types::UnitAndValue {
            unit: "TiB".into(),
            value: i64::MAX,
        };
        assert!(bytes(&huge).unwrap_err().contains("out of range"));
    }

    #[test]
    fn an_empty_or_odd_os_is_an_anomaly() {
        let server = |os: &str| -> types::DedicatedServer {
            serde_json::from_value(serde_json::json!({
                "name": "ns1", "bootId": 1, "bootScript": null, "datacenter": "gra3",
                "efiBootloaderPath": null, "monitoring": true, "noIntervention": false, "os": os,
                "powerState": "poweron", "rescueMail": null, "rootDevice": null, "state": "ok"
            }))
            .unwrap()
        };
        assert!(map_server(&server("debian12_64")).anomalies.is_empty());
        assert!(map_server(&server("none_64")).anomalies.is_empty());
        let empty = map_server(&server(""));
        assert_eq!(
            empty.anomalies,
            ["the API gives no OS for the server (`os` is empty)"]
        );
        let route = map_server(&server("../../me"));
        assert_eq!(
            route.anomalies,
            ["its OS \"../../me\" is not an installation template name"]
        );
        let long = map_server(&server(&"x/".repeat(200)));
        assert!(long.anomalies[0].len() < 200, "cut: {:?}", long.anomalies);
    }

    #[test]
    fn template_names() {
        for ok in [
            "debian12_64",
            "win2022core-std_64",
            "ubuntu2404-server_64",
            "none_64",
            "a.b+c",
        ] {
            assert!(is_template_name(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "../../me",
            "a b",
            "debian12_64\n",
            "é",
            &"a".repeat(101),
        ] {
            assert!(!is_template_name(bad), "{bad:?}");
        }
    }
}
