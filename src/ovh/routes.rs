//! The typed routes ovhform uses, and the API-call economy: expanded listings
//! (`X-Pagination-Mode: CachedObjectList-Pages`), batch GETs (`X-Ovh-Batch: ,`) with automatic,
//! remembered fallback to plain per-object GETs, and in-memory caches (TTL from
//! [`super::ClientConfig::cache_ttl`]) for the catalog, hardware facts and netboots, which
//! change rarely. The facts worth keeping between runs can be exported and seeded
//! ([`FactsSnapshot`]); where they are kept is the caller's business, not this room's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{Call, decode};
use super::types::*;
use super::{Client, Error, InstallApi, Mode};

/// Characters escaped in one path segment. `,` is escaped so it can only be the batch
/// separator; `:` stays (IAM URNs are sent as-is, like go-ovh's `url.PathEscape`).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b',')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn server_path(sn: &str) -> String {
    format!("/dedicated/server/{}", seg(sn))
}

/// One cached answer: until when it may be used (tokio clock, so paused-time tests can age
/// it) and when it was fetched (wall clock, unix seconds: it may outlive the process).
struct Cached<V> {
    until: Instant,
    fetched_at: i64,
    value: V,
}

/// A map whose entries expire after a TTL, or at a deadline given when seeded.
pub(crate) struct TtlMap<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, Cached<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    fn new(ttl: Duration) -> Self {
        TtlMap {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Cached<V>>> {
        // Every entry is written whole under the lock: a poisoned map is still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub(crate) fn get(&self, k: &K) -> Option<V> {
        self.lock()
            .get(k)
            .filter(|c| Instant::now() < c.until)
            .map(|c| c.value.clone())
    }
    /// A value fetched just now (at `fetched_at`, unix seconds).
    pub(crate) fn put(&self, k: K, v: V, fetched_at: i64) {
        self.seed(k, v, fetched_at, self.ttl);
    }
    /// A value fetched earlier, usable for `valid_for` from now.
    pub(crate) fn seed(&self, k: K, v: V, fetched_at: i64, valid_for: Duration) {
        // A validity too large for the clock (hostile input upstream) is no validity at all.
        let Some(until) = Instant::now().checked_add(valid_for) else {
            return;
        };
        self.lock().insert(
            k,
            Cached {
                until,
                fetched_at,
                value: v,
            },
        );
    }
    /// The entries still valid, with when each was fetched.
    fn live(&self) -> Vec<(K, V, i64)> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, c)| now < c.until)
            .map(|(k, c)| (k.clone(), c.value.clone(), c.fetched_at))
            .collect()
    }
}

/// Per-client caches of facts that change rarely.
pub(crate) struct Caches {
    templates: TtlMap<String, InstallationTemplate>,
    template_infos: TtlMap<(), Vec<TemplateOsInfo>>,
    compatible: TtlMap<String, InstallTemplate>,
    hardware: TtlMap<String, HardwareSpecifications>,
    /// Netboots by boot id (ids are catalogue integers; one id is one kernel).
    netboots: TtlMap<u64, Netboot>,
}

impl Caches {
    pub(crate) fn new(ttl: Duration) -> Caches {
        Caches {
            templates: TtlMap::new(ttl),
            template_infos: TtlMap::new(ttl),
            compatible: TtlMap::new(ttl),
            hardware: TtlMap::new(ttl),
            netboots: TtlMap::new(ttl),
        }
    }
}

/// An answer and when it was fetched (wall clock).
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched<T> {
    pub fetched_at: jiff::Timestamp,
    pub value: T,
}

/// The client's cached facts that are worth keeping between runs — hardware specifications and
/// compatible templates per server, installation templates per name — as plain data, so that a
/// caller can persist them ([`Client::facts`]) and hand them to a later client
/// ([`Client::seed_facts`]). Netboots and `templateInfos` stay per process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FactsSnapshot {
    /// `GET /dedicated/server/{sn}/specifications/hardware`, by service name.
    pub hardware: BTreeMap<String, Fetched<HardwareSpecifications>>,
    /// `GET /dedicated/server/{sn}/install/compatibleTemplates`, by service name.
    pub compatible_templates: BTreeMap<String, Fetched<InstallTemplate>>,
    /// `GET /dedicated/installationTemplate/{name}`, by template name.
    pub installation_templates: BTreeMap<String, Fetched<InstallationTemplate>>,
}

impl FactsSnapshot {
    pub fn is_empty(&self) -> bool {
        self.hardware.is_empty()
            && self.compatible_templates.is_empty()
            && self.installation_templates.is_empty()
    }
}

fn snapshot<V: Clone>(map: &TtlMap<String, V>) -> BTreeMap<String, Fetched<V>> {
    map.live()
        .into_iter()
        .filter_map(|(k, value, at)| {
            let fetched_at = jiff::Timestamp::from_second(at).ok()?;
            Some((k, Fetched { fetched_at, value }))
        })
        .collect()
}

fn seed_into<V: Clone>(
    map: &TtlMap<String, V>,
    from: BTreeMap<String, Fetched<V>>,
    valid_for: &dyn Fn(jiff::Timestamp) -> Option<Duration>,
) -> usize {
    let mut n = 0;
    for (k, f) in from {
        if let Some(d) = valid_for(f.fetched_at).filter(|d| !d.is_zero()) {
            map.seed(k, f.value, f.fetched_at.as_second(), d);
            n += 1;
        }
    }
    n
}

/// The answer to an expanded-listing request.
enum Expanded<T> {
    /// The mode was honoured: every object.
    Objects(Vec<T>),
    /// The mode was ignored: the plain listing (ids) of the first page.
    Plain(Vec<serde_json::Value>),
    /// The mode was refused (400).
    Refused,
}

/// What an install start returned, whichever API was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedTask {
    pub task_id: u64,
    pub function: String,
    pub status: String,
    pub api: InstallApi,
}

impl Client {
    // -- facts that outlive the process ----------------------------------------------------

    /// The hardware, compatible-template and installation-template answers this client holds
    /// and may still use, with when each was fetched.
    pub fn facts(&self) -> FactsSnapshot {
        let c = self.caches();
        FactsSnapshot {
            hardware: snapshot(&c.hardware),
            compatible_templates: snapshot(&c.compatible),
            installation_templates: snapshot(&c.templates),
        }
    }

    /// Puts facts fetched earlier (by another process) into the caches, so the routes answer
    /// them without a request. `valid_for(fetched_at)` says for how long each may still be used
    /// (`None` or zero: not at all); the caller owns that policy. Returns how many were taken.
    pub fn seed_facts(
        &self,
        facts: FactsSnapshot,
        valid_for: &dyn Fn(jiff::Timestamp) -> Option<Duration>,
    ) -> usize {
        let c = self.caches();
        seed_into(&c.hardware, facts.hardware, valid_for)
            + seed_into(&c.compatible, facts.compatible_templates, valid_for)
            + seed_into(&c.templates, facts.installation_templates, valid_for)
    }

    /// Whether the hardware specifications and the compatible templates of `sn` would be
    /// answered from the cache (for estimates of what a detail read will cost).
    pub fn has_cached_facts(&self, sn: &str) -> (bool, bool) {
        let key = sn.to_string();
        let c = self.caches();
        (
            c.hardware.get(&key).is_some(),
            c.compatible.get(&key).is_some(),
        )
    }

    /// Whether the installation template `name` would be answered from the cache.
    pub fn has_cached_template(&self, name: &str) -> bool {
        self.caches().templates.get(&name.to_string()).is_some()
    }

    // -- servers --------------------------------------------------------------------------

    /// `GET /dedicated/server`: service names.
    pub async fn list_servers(&self) -> Result<Vec<String>, Error> {
        self.get("/dedicated/server").await
    }

    /// `GET /dedicated/server/{sn}`.
    pub async fn get_server(&self, sn: &str) -> Result<DedicatedServer, Error> {
        self.get(&server_path(sn)).await
    }

    /// `PUT /dedicated/server/{sn}` with only the keys set in `update` (200, no body).
    pub async fn update_server(&self, sn: &str, update: &ServerUpdate) -> Result<(), Error> {
        self.put(&server_path(sn), update).await
    }

    /// Full server objects of the account, restricted to `only` when given. One expanded
    /// listing (a few pages) when the API honours it; otherwise the id list plus batch GETs
    /// (or per-object GETs) of the wanted servers. Servers that do not exist are absent.
    pub async fn servers(
        &self,
        only: Option<&BTreeSet<String>>,
    ) -> Result<BTreeMap<String, DedicatedServer>, Error> {
        let wanted = |name: &str| only.is_none_or(|o| o.contains(name));
        let mut listed = None;
        if self.supports(Mode::ExpandedServers) {
            match self
                .expanded_list::<DedicatedServer>("/dedicated/server", Mode::ExpandedServers)
                .await?
            {
                Expanded::Objects(all) => {
                    return Ok(all
                        .into_iter()
                        .filter(|s| wanted(&s.name))
                        .map(|s| (s.name.clone(), s))
                        .collect());
                }
                // The mode was ignored and the answer is the plain name list: use it.
                Expanded::Plain(items) => {
                    listed = items
                        .into_iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<String>>>();
                }
                Expanded::Refused => {}
            }
        }
        let names = match listed {
            Some(names) => names,
            None => self.list_servers().await?,
        };
        let names: Vec<String> = names.into_iter().filter(|n| wanted(n)).collect();
        let got = self
            .batch_get::<DedicatedServer>("/dedicated/server", &names)
            .await?;
        Ok(got.into_values().map(|s| (s.name.clone(), s)).collect())
    }

    // -- boots ------------------------------------------------------------------------------

    /// `GET /dedicated/server/{sn}/boot[?bootType=]`: boot ids.
    pub async fn list_boots(&self, sn: &str, boot_type: Option<&str>) -> Result<Vec<u64>, Error> {
        let mut path = format!("{}/boot", server_path(sn));
        if let Some(t) = boot_type {
            path.push_str(&format!("?bootType={}", seg(t)));
        }
        self.get(&path).await
    }

    /// `GET /dedicated/server/{sn}/boot/{bootId}`.
    pub async fn get_boot(&self, sn: &str, boot_id: u64) -> Result<Netboot, Error> {
        let b: Netboot = self
            .get(&format!("{}/boot/{boot_id}", server_path(sn)))
            .await?;
        self.caches()
            .netboots
            .put(b.boot_id, b.clone(), self.wall_now());
        Ok(b)
    }

    /// The netboots behind `ids`, from the cache or by batch GET through server `sn`.
    /// Ids the server does not know are absent from the answer.
    pub async fn netboots(&self, sn: &str, ids: &[u64]) -> Result<BTreeMap<u64, Netboot>, Error> {
        let mut out = BTreeMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.caches().netboots.get(id) {
                Some(b) => {
                    out.insert(*id, b);
                }
                None => missing.push(id.to_string()),
            }
        }
        missing.sort();
        missing.dedup();
        let fetched = self
            .batch_get::<Netboot>(&format!("{}/boot", server_path(sn)), &missing)
            .await?;
        for (_, b) in fetched {
            self.caches()
                .netboots
                .put(b.boot_id, b.clone(), self.wall_now());
            out.insert(b.boot_id, b);
        }
        Ok(out)
    }

    /// `POST /dedicated/server/{sn}/reboot` (hard reboot; never retried).
    pub async fn reboot(&self, sn: &str) -> Result<Task, Error> {
        self.post::<(), Task>(&format!("{}/reboot", server_path(sn)), None)
            .await
    }

    // -- installation -------------------------------------------------------------------------

    /// `POST /dedicated/server/{sn}/reinstall` with a `dedicated.server.Reinstall` body, sent
    /// byte-for-byte as serialised (never retried).
    pub async fn reinstall(
        &self,
        sn: &str,
        body: &serde_json::Value,
    ) -> Result<TaskResponse, Error> {
        self.post(&format!("{}/reinstall", server_path(sn)), Some(body))
            .await
    }

    /// Legacy `POST /dedicated/server/{sn}/install/start` (never retried).
    pub async fn install_start(&self, sn: &str, body: &InstallStart) -> Result<Task, Error> {
        self.post(&format!("{}/install/start", server_path(sn)), Some(body))
            .await
    }

    /// Start an installation from a reinstall body through the API chosen by
    /// `--install-api`: `/reinstall`, or the legacy `install/start` after mapping the body
    /// (refused with [`Error::Legacy`] when it cannot be expressed there).
    pub async fn start_install(
        &self,
        sn: &str,
        reinstall_body: &serde_json::Value,
    ) -> Result<StartedTask, Error> {
        match self.install_api() {
            InstallApi::Reinstall => {
                let t = self.reinstall(sn, reinstall_body).await?;
                Ok(StartedTask {
                    task_id: t.task_id,
                    function: t.function,
                    status: t.status,
                    api: InstallApi::Reinstall,
                })
            }
            InstallApi::Legacy => {
                let body = super::install_start_from_reinstall(reinstall_body)?;
                let t = self.install_start(sn, &body).await?;
                Ok(StartedTask {
                    task_id: t.task_id,
                    function: t.function,
                    status: t.status,
                    api: InstallApi::Legacy,
                })
            }
        }
    }

    /// `GET /dedicated/server/{sn}/install/status`; `None` on the API's 404 ("Server is not
    /// being installed or reinstalled at the moment").
    pub async fn install_status(
        &self,
        sn: &str,
    ) -> Result<Option<InstallationProgressStatus>, Error> {
        match self
            .get(&format!("{}/install/status", server_path(sn)))
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /dedicated/server/{sn}/install/compatibleTemplates` (cached).
    pub async fn compatible_templates(&self, sn: &str) -> Result<InstallTemplate, Error> {
        if let Some(t) = self.caches().compatible.get(&sn.to_string()) {
            return Ok(t);
        }
        let t: InstallTemplate = self
            .get(&format!("{}/install/compatibleTemplates", server_path(sn)))
            .await?;
        self.caches()
            .compatible
            .put(sn.to_string(), t.clone(), self.wall_now());
        Ok(t)
    }

    /// `GET /dedicated/server/{sn}/specifications/hardware` (cached).
    pub async fn hardware(&self, sn: &str) -> Result<HardwareSpecifications, Error> {
        if let Some(h) = self.caches().hardware.get(&sn.to_string()) {
            return Ok(h);
        }
        let h: HardwareSpecifications = self
            .get(&format!("{}/specifications/hardware", server_path(sn)))
            .await?;
        self.caches()
            .hardware
            .put(sn.to_string(), h.clone(), self.wall_now());
        Ok(h)
    }

    /// `GET /dedicated/installationTemplate` (unauthenticated).
    pub async fn list_installation_templates(&self) -> Result<Vec<String>, Error> {
        self.get_unauthenticated("/dedicated/installationTemplate")
            .await
    }

    /// `GET /dedicated/installationTemplate/{name}` (unauthenticated, cached).
    pub async fn installation_template(&self, name: &str) -> Result<InstallationTemplate, Error> {
        if let Some(t) = self.caches().templates.get(&name.to_string()) {
            return Ok(t);
        }
        let t: InstallationTemplate = self
            .get_unauthenticated(&format!("/dedicated/installationTemplate/{}", seg(name)))
            .await?;
        self.caches()
            .templates
            .put(name.to_string(), t.clone(), self.wall_now());
        Ok(t)
    }

    /// `GET /dedicated/installationTemplate/templateInfos` (unauthenticated, cached).
    pub async fn template_infos(&self) -> Result<Vec<TemplateOsInfo>, Error> {
        if let Some(t) = self.caches().template_infos.get(&()) {
            return Ok(t);
        }
        let t: Vec<TemplateOsInfo> = self
            .get_unauthenticated("/dedicated/installationTemplate/templateInfos")
            .await?;
        self.caches()
            .template_infos
            .put((), t.clone(), self.wall_now());
        Ok(t)
    }

    // -- tasks --------------------------------------------------------------------------------

    /// `GET /dedicated/server/{sn}/task[?function=&status=]`: task ids.
    pub async fn list_tasks(
        &self,
        sn: &str,
        function: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<u64>, Error> {
        let mut q = Vec::new();
        if let Some(f) = function {
            q.push(format!("function={}", seg(f)));
        }
        if let Some(s) = status {
            q.push(format!("status={}", seg(s)));
        }
        let mut path = format!("{}/task", server_path(sn));
        if !q.is_empty() {
            path = format!("{path}?{}", q.join("&"));
        }
        self.get(&path).await
    }

    /// `GET /dedicated/server/{sn}/task/{taskId}`.
    pub async fn get_task(&self, sn: &str, task_id: u64) -> Result<Task, Error> {
        self.get(&format!("{}/task/{task_id}", server_path(sn)))
            .await
    }

    /// Tasks by id through batch GETs; purged tasks (404) are absent.
    pub async fn get_tasks(&self, sn: &str, ids: &[u64]) -> Result<BTreeMap<u64, Task>, Error> {
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let got = self
            .batch_get::<Task>(&format!("{}/task", server_path(sn)), &ids)
            .await?;
        Ok(got.into_values().map(|t| (t.task_id, t)).collect())
    }

    /// `POST /dedicated/server/{sn}/task/{taskId}/cancel` (never retried).
    pub async fn cancel_task(&self, sn: &str, task_id: u64) -> Result<(), Error> {
        self.post_void::<()>(&format!("{}/task/{task_id}/cancel", server_path(sn)), None)
            .await
    }

    /// The tasks a planner cares about: pending ones (`init|todo|doing`) and every
    /// `reinstallServer` task still in the history, sorted by id. One expanded listing when
    /// honoured. Otherwise the plain id list (free when the expanded attempt answered it) and
    /// batch GETs of every task when the history is short (≤ two batches); for a long history,
    /// or without batch GETs, four filtered id lists and GETs of just those tasks.
    pub async fn relevant_tasks(&self, sn: &str) -> Result<Vec<Task>, Error> {
        let relevant = |t: &Task| {
            t.function == "reinstallServer"
                || matches!(t.status.as_str(), "init" | "todo" | "doing")
        };
        let mut all_ids: Option<Vec<u64>> = None;
        if self.supports(Mode::ExpandedTasks) {
            let path = format!("{}/task", server_path(sn));
            match self
                .expanded_list::<Task>(&path, Mode::ExpandedTasks)
                .await?
            {
                Expanded::Objects(all) => {
                    let mut v: Vec<Task> = all.into_iter().filter(relevant).collect();
                    v.sort_by_key(|t| t.task_id);
                    return Ok(v);
                }
                Expanded::Plain(items) => {
                    all_ids = items.iter().map(serde_json::Value::as_u64).collect();
                }
                Expanded::Refused => {}
            }
        }
        let ids: Vec<u64> = if self.supports(Mode::Batch) {
            let all = match all_ids {
                Some(ids) => ids,
                None => self.list_tasks(sn, None, None).await?,
            };
            if all.len() <= 2 * self.config().batch_size.max(1) {
                all
            } else {
                self.filtered_task_ids(sn).await?
            }
        } else {
            self.filtered_task_ids(sn).await?
        };
        let mut v: Vec<Task> = self
            .get_tasks(sn, &ids)
            .await?
            .into_values()
            .filter(relevant)
            .collect();
        v.sort_by_key(|t| t.task_id);
        Ok(v)
    }

    /// Ids of `reinstallServer` tasks and of pending tasks, by the API's exact-match filters.
    async fn filtered_task_ids(&self, sn: &str) -> Result<Vec<u64>, Error> {
        let mut ids = BTreeSet::new();
        ids.extend(self.list_tasks(sn, Some("reinstallServer"), None).await?);
        for status in ["init", "todo", "doing"] {
            ids.extend(self.list_tasks(sn, None, Some(status)).await?);
        }
        Ok(ids.into_iter().collect())
    }

    // -- IAM v2 tags --------------------------------------------------------------------------

    /// `GET /v2/iam/resource/{urn}`.
    pub async fn iam_resource(&self, urn: &str) -> Result<IamResource, Error> {
        self.get(&format!("/v2/iam/resource/{}", seg(urn))).await
    }

    /// `PUT /v2/iam/resource/{urn}` `{"tags": …}`: replaces the user tags (`ovh:` system
    /// tags are kept by the API).
    pub async fn iam_set_tags(
        &self,
        urn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.put(
            &format!("/v2/iam/resource/{}", seg(urn)),
            &serde_json::json!({ "tags": tags }),
        )
        .await
    }

    /// `POST /v2/iam/resource/{urn}/tag` `{key, value}`.
    pub async fn iam_add_tag(&self, urn: &str, key: &str, value: &str) -> Result<(), Error> {
        let body = AddTag {
            key: key.into(),
            value: value.into(),
        };
        self.post_void(&format!("/v2/iam/resource/{}/tag", seg(urn)), Some(&body))
            .await
    }

    /// `DELETE /v2/iam/resource/{urn}/tag/{key}`.
    pub async fn iam_delete_tag(&self, urn: &str, key: &str) -> Result<(), Error> {
        self.delete(&format!("/v2/iam/resource/{}/tag/{}", seg(urn), seg(key)))
            .await
    }

    // -- economy ------------------------------------------------------------------------------

    /// All objects of a listing in `CachedObjectList-Pages` mode, following
    /// `X-Pagination-Elements`. When the API answers a plain id list or refuses the mode with a
    /// 400, the mode is remembered as unsupported.
    async fn expanded_list<T: DeserializeOwned>(
        &self,
        path: &str,
        mode: Mode,
    ) -> Result<Expanded<T>, Error> {
        let size = self.config().page_size.max(1) as usize;
        let mut out = Vec::new();
        // A safety cap: 2,000 pages of 500 objects is far beyond any account.
        for page in 1..=2000usize {
            let call = Call {
                headers: vec![
                    ("X-Pagination-Mode".into(), "CachedObjectList-Pages".into()),
                    ("X-Pagination-Size".into(), size.to_string()),
                    ("X-Pagination-Number".into(), page.to_string()),
                ],
                ..Call::get(path)
            };
            let resp = match self.execute(call).await {
                Ok(r) => r,
                Err(e) if e.status() == Some(400) => {
                    self.mark_unsupported(mode);
                    return Ok(Expanded::Refused);
                }
                Err(e) => return Err(e),
            };
            let items: Vec<serde_json::Value> = decode("GET", path, &resp)?;
            if items.iter().any(|v| !v.is_object()) {
                self.mark_unsupported(mode);
                return Ok(if page == 1 {
                    Expanded::Plain(items)
                } else {
                    Expanded::Refused
                });
            }
            let n = items.len();
            for item in items {
                // Tolerate `{key, value}` wrappers around the objects.
                let item = match item {
                    serde_json::Value::Object(mut m)
                        if m.len() <= 3 && m.get("value").is_some_and(|v| v.is_object()) =>
                    {
                        m.remove("value").unwrap_or_default()
                    }
                    other => other,
                };
                out.push(serde_json::from_value(item).map_err(|e| Error::Decode {
                    method: "GET".into(),
                    path: path.into(),
                    status: resp.status,
                    query_id: resp.header("x-ovh-queryid").unwrap_or("none").into(),
                    message: e.to_string(),
                })?);
            }
            let total = resp
                .header("x-pagination-elements")
                .and_then(|v| v.trim().parse::<usize>().ok());
            let more = match total {
                Some(total) => out.len() < total && n > 0,
                None => n == size,
            };
            if !more {
                return Ok(Expanded::Objects(out));
            }
        }
        Ok(Expanded::Objects(out))
    }

    /// Objects under `prefix/{id}` by batch GET (`X-Ovh-Batch: ,`, chunks of `batch_size`),
    /// keyed by id. Falls back to per-object GETs (and remembers it) when the API does not
    /// honour batch mode. Ids that answer 404 are absent.
    async fn batch_get<T: DeserializeOwned + Send + 'static>(
        &self,
        prefix: &str,
        ids: &[String],
    ) -> Result<BTreeMap<String, T>, Error> {
        let mut out = BTreeMap::new();
        let mut single: Vec<String> = Vec::new();
        let chunk = self.config().batch_size.max(1);
        for ids in ids.chunks(chunk) {
            if ids.len() == 1 || !self.supports(Mode::Batch) {
                single.extend(ids.iter().cloned());
                continue;
            }
            let joined = ids.iter().map(|i| seg(i)).collect::<Vec<_>>().join(",");
            let path = format!("{prefix}/{joined}");
            let call = Call {
                headers: vec![("X-Ovh-Batch".into(), ",".into())],
                ..Call::get(path.clone())
            };
            let resp = match self.execute(call).await {
                Ok(r) => r,
                Err(e) if matches!(e.status(), Some(400 | 404 | 405 | 501)) => {
                    self.mark_unsupported(Mode::Batch);
                    single.extend(ids.iter().cloned());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let parsed: Result<Vec<BatchItem<serde_json::Value>>, _> =
                serde_json::from_slice(&resp.body);
            let items = match parsed {
                Ok(items) if items.iter().all(|i| i.value.is_some() || i.error.is_some()) => items,
                _ => {
                    // A single object or a bare array: batch mode was ignored.
                    self.mark_unsupported(Mode::Batch);
                    single.extend(ids.iter().cloned());
                    continue;
                }
            };
            for (pos, item) in items.into_iter().enumerate() {
                let id = match &item.key {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    _ => match ids.get(pos) {
                        Some(id) => id.clone(),
                        None => continue,
                    },
                };
                match item.value {
                    Some(v) if item.error.is_none() => {
                        let obj: T = serde_json::from_value(v).map_err(|e| Error::Decode {
                            method: "GET".into(),
                            path: path.clone(),
                            status: resp.status,
                            query_id: resp.header("x-ovh-queryid").unwrap_or("none").into(),
                            message: format!("batch item {id}: {e}"),
                        })?;
                        out.insert(id, obj);
                    }
                    // A per-item error: ask for that one alone to get a typed answer.
                    _ => single.push(id),
                }
            }
            // An id the batch answer left out is asked for alone: silently dropping it would
            // make an existing object look absent (as if it had answered 404).
            for id in ids {
                if !out.contains_key(id) && !single.contains(id) {
                    single.push(id.clone());
                }
            }
        }
        let mut set = JoinSet::new();
        for id in single {
            let client = self.clone();
            let path = format!("{prefix}/{}", seg(&id));
            set.spawn(async move { (id, client.get::<T>(&path).await) });
        }
        while let Some(joined) = set.join_next().await {
            let (id, res) = joined.expect("per-object GET task panicked");
            match res {
                Ok(v) => {
                    out.insert(id, v);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
