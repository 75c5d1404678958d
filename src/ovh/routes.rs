//! The typed routes ovhform uses, and the API-call economy: expanded listings
//! (`X-Pagination-Mode: CachedObjectList-Pages`, always with `Pragma: no-cache`: they decide
//! actions, and the API caches them), batch GETs (`X-Ovh-Batch: ,`) and the `iamTags` filter,
//! each with an automatic, remembered fallback (plain per-object GETs; the tags of the
//! account's listing), and in-memory caches (TTL from [`super::ClientConfig::cache_ttl`]) for
//! the catalog, hardware facts and netboots, which change rarely. The facts worth keeping
//! between runs can be exported and seeded ([`FactsSnapshot`]); where they are kept is the
//! caller's business, not this room's.
//!
//! What the API will not show one object (a per-object 4xx such as the 403 of per-server
//! access rules, see [`Error::is_refusal`]) is returned beside the objects ([`Objects`],
//! [`ServerObjects`], [`RelevantTasks`]) for the caller to make a fact of that one object;
//! only errors that say the API or the credentials are unwell fail a whole call.

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
    // The URL parser takes `\` for `/` in http(s) URLs.
    .add(b'\\')
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

/// `/dedicated/server/{serviceName}/plannedIntervention`, the name escaped as one segment.
pub fn planned_interventions_path(sn: &str) -> String {
    format!("{}/plannedIntervention", server_path(sn))
}

/// `/dedicated/server/{serviceName}/plannedIntervention/{interventionId}`.
pub fn planned_intervention_path(sn: &str, id: u64) -> String {
    format!("{}/{id}", planned_interventions_path(sn))
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
    /// The mode was honoured. `complete` is false when the API announced more objects
    /// (`X-Pagination-Elements`) than it sent: an object it could not read itself (a task that
    /// still answers 404) is left out of the listing, not shown as absent.
    Objects { items: Vec<T>, complete: bool },
    /// The mode was ignored: the plain listing (ids) of the first page.
    Plain(Vec<serde_json::Value>),
    /// The mode was refused (a 4xx).
    Refused,
}

/// Objects fetched by id (batch GETs, or plain GETs), split by what the API answered.
#[derive(Debug)]
pub struct Objects<K, T> {
    pub found: BTreeMap<K, T>,
    /// Ids that answered 404.
    pub missing: BTreeSet<K>,
    /// Ids the API would not show ([`Error::is_refusal`]), with its answer.
    pub refused: BTreeMap<K, Error>,
}

impl<K: Ord, T> Default for Objects<K, T> {
    fn default() -> Self {
        Objects {
            found: BTreeMap::new(),
            missing: BTreeSet::new(),
            refused: BTreeMap::new(),
        }
    }
}

impl<K: Ord, T> Objects<K, T> {
    fn map_keys<K2: Ord>(self, f: impl Fn(K) -> Option<K2>) -> Objects<K2, T> {
        Objects {
            found: self
                .found
                .into_iter()
                .filter_map(|(k, v)| Some((f(k)?, v)))
                .collect(),
            missing: self.missing.into_iter().filter_map(&f).collect(),
            refused: self
                .refused
                .into_iter()
                .filter_map(|(k, v)| Some((f(k)?, v)))
                .collect(),
        }
    }
}

/// Servers of the account, by service name, and the wanted ones the API would not show.
#[derive(Debug, Default)]
pub struct ServerObjects {
    pub servers: BTreeMap<String, DedicatedServer>,
    /// Wanted servers whose object the API refused ([`Error::is_refusal`]), e.g. the 403 of a
    /// consumer key whose access rules leave them out.
    pub refused: BTreeMap<String, Error>,
}

impl ServerObjects {
    /// The listed servers whose IAM tags have the key `key`.
    pub fn carrying_tag(&self, key: &str) -> BTreeSet<String> {
        self.servers
            .values()
            .filter(|s| {
                s.iam
                    .as_ref()
                    .and_then(|i| i.tags.as_ref())
                    .is_some_and(|t| t.contains_key(key))
            })
            .map(|s| s.name.clone())
            .collect()
    }
}

/// How [`Client::tagged_servers`] found the tagged servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSource {
    /// The API's `iamTags` filter on `GET /dedicated/server` (one call).
    IamTagsFilter,
    /// The `iam.tags` of the account's listing, the filter being refused (a 4xx) now or earlier
    /// in this session.
    Listing,
}

/// The account's servers that carry a tag key.
#[derive(Debug)]
pub struct TaggedServers {
    pub names: BTreeSet<String>,
    pub source: TagSource,
    /// The whole account's listing the fallback read (`TagSource::Listing`), so the fleet pass
    /// can take its servers from it instead of listing the account a second time.
    pub listing: Option<ServerObjects>,
}

/// The tasks a planner cares about ([`Client::relevant_tasks`]).
#[derive(Debug, Default)]
pub struct RelevantTasks {
    /// Readable relevant tasks, sorted by id.
    pub tasks: Vec<Task>,
    /// Listed task ids whose GET answered 404 (fresh tasks do for a while, REFERENCE §0.8) or
    /// was refused, with the function the listing that named them implies (`function=
    /// reinstallServer` list), when it does. Such a task may be running.
    pub unreadable: BTreeMap<u64, Option<String>>,
}

/// A 4xx answer to an economy mode (expanded listing, batch, `iamTags`): the API does not take
/// the mode here. 401 (credentials) and 429 (throttling) say nothing about the mode; they are
/// handled by the request pipeline and reported.
fn refuses_mode(e: &Error) -> bool {
    matches!(e.status(), Some(s) if (400..500).contains(&s) && !matches!(s, 401 | 429))
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

    // -- the key itself ----------------------------------------------------------------------

    /// `GET /auth/currentCredential`: the consumer key's status, expiry and access rules.
    pub async fn current_credential(&self) -> Result<CurrentCredential, Error> {
        self.get("/auth/currentCredential").await
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
    /// (or per-object GETs) of the wanted servers. Servers that do not exist are absent;
    /// wanted servers whose object the API refuses are in `refused`.
    pub async fn servers(&self, only: Option<&BTreeSet<String>>) -> Result<ServerObjects, Error> {
        let wanted = |name: &str| only.is_none_or(|o| o.contains(name));
        let mut out = ServerObjects::default();
        let mut listed = None;
        if self.supports(Mode::ExpandedServers) {
            match self
                .expanded_list::<DedicatedServer>("/dedicated/server", Mode::ExpandedServers)
                .await?
            {
                Expanded::Objects { items, complete } => {
                    for s in items.into_iter().filter(|s| wanted(&s.name)) {
                        out.servers.insert(s.name.clone(), s);
                    }
                    if complete {
                        return Ok(out);
                    }
                    // Fewer objects than announced: the wanted ones left out are read by id
                    // below rather than taken for absent.
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
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| wanted(n) && !out.servers.contains_key(n))
            .collect();
        let got = self
            .batch_get::<DedicatedServer>("/dedicated/server", &names)
            .await?;
        for s in got.found.into_values() {
            out.servers.insert(s.name.clone(), s);
        }
        out.refused = got.refused;
        Ok(out)
    }

    /// The account's servers that carry an IAM tag with key `key`. One filtered listing
    /// (`?iamTags={"<key>":[{"operator":"EXISTS"}]}`, the value left out as the console leaves
    /// an empty one out) when the API takes the filter. It is not in every region's schema and
    /// OVH's own CLI does not rely on it for v1, so on any 4xx (remembered for the session) the
    /// tagged servers are taken from the `iam.tags` of the account's listing — the expanded
    /// listing the fleet pass reads anyway — which is returned for the caller to reuse: the
    /// fallback costs no extra listing. Both read the v1 `iam.tags`, which IAM v2 tag writes
    /// reach eventually, not at once; a record the store holds never depends on this set.
    pub async fn tagged_servers(&self, key: &str) -> Result<TaggedServers, Error> {
        if self.supports(Mode::IamTagsFilter) {
            let filter = serde_json::json!({ key: [{"operator": "EXISTS"}] }).to_string();
            let query = utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC);
            let path = format!("/dedicated/server?iamTags={query}");
            // A listing that decides `forget`s: asked fresh, like the expanded ones.
            let call = Call {
                headers: vec![("Pragma".into(), "no-cache".into())],
                ..Call::get(path.clone())
            };
            let answer = match self.execute(call).await {
                Ok(resp) => decode::<Vec<String>>("GET", &path, &resp),
                Err(e) => Err(e),
            };
            match answer {
                Ok(names) => {
                    return Ok(TaggedServers {
                        names: names.into_iter().collect(),
                        source: TagSource::IamTagsFilter,
                        listing: None,
                    });
                }
                Err(e) if refuses_mode(&e) => self.mark_unsupported(Mode::IamTagsFilter),
                Err(e) => return Err(e),
            }
        }
        let listing = self.servers(None).await?;
        let names = listing.carrying_tag(key);
        Ok(TaggedServers {
            names,
            source: TagSource::Listing,
            listing: Some(listing),
        })
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
    /// Ids the server does not know are in `missing`, those it will not show in `refused`.
    pub async fn netboots(&self, sn: &str, ids: &[u64]) -> Result<Objects<u64, Netboot>, Error> {
        let mut out = Objects::default();
        let mut missing = Vec::new();
        for id in ids {
            match self.caches().netboots.get(id) {
                Some(b) => {
                    out.found.insert(*id, b);
                }
                None => missing.push(id.to_string()),
            }
        }
        missing.sort();
        missing.dedup();
        let fetched = self
            .batch_get::<Netboot>(&format!("{}/boot", server_path(sn)), &missing)
            .await?
            .map_keys(|k| k.parse::<u64>().ok());
        for (_, b) in fetched.found {
            self.caches()
                .netboots
                .put(b.boot_id, b.clone(), self.wall_now());
            out.found.insert(b.boot_id, b);
        }
        out.missing = fetched.missing;
        out.refused = fetched.refused;
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

    /// [`Client::start_install`] that is not sent at all once `send_by` has passed: the
    /// intent journal bounds when a reinstall may reach the API (see `apply::intent`).
    pub async fn start_install_before(
        &self,
        sn: &str,
        reinstall_body: &serde_json::Value,
        send_by: Instant,
        slot: super::client::Slot,
    ) -> Result<StartedTask, Error> {
        match self.install_api() {
            InstallApi::Reinstall => {
                let t: TaskResponse = self
                    .post_before(
                        &format!("{}/reinstall", server_path(sn)),
                        Some(reinstall_body),
                        send_by,
                        slot,
                    )
                    .await?;
                Ok(StartedTask {
                    task_id: t.task_id,
                    function: t.function,
                    status: t.status,
                    api: InstallApi::Reinstall,
                })
            }
            InstallApi::Legacy => {
                let body = super::install_start_from_reinstall(reinstall_body)?;
                let t: Task = self
                    .post_before(
                        &format!("{}/install/start", server_path(sn)),
                        Some(&body),
                        send_by,
                        slot,
                    )
                    .await?;
                Ok(StartedTask {
                    task_id: t.task_id,
                    function: t.function,
                    status: t.status,
                    api: InstallApi::Legacy,
                })
            }
        }
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

    /// Tasks by id through batch GETs. Tasks answering 404 (purged, or too fresh to be
    /// served yet) are in `missing`, refused ones in `refused`.
    pub async fn get_tasks(&self, sn: &str, ids: &[u64]) -> Result<Objects<u64, Task>, Error> {
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let got = self
            .batch_get::<Task>(&format!("{}/task", server_path(sn)), &ids)
            .await?
            .map_keys(|k| k.parse::<u64>().ok());
        Ok(Objects {
            found: got.found.into_values().map(|t| (t.task_id, t)).collect(),
            missing: got.missing,
            refused: got.refused,
        })
    }

    /// `POST /dedicated/server/{sn}/task/{taskId}/cancel` (never retried).
    pub async fn cancel_task(&self, sn: &str, task_id: u64) -> Result<(), Error> {
        self.post_void::<()>(&format!("{}/task/{task_id}/cancel", server_path(sn)), None)
            .await
    }

    /// The tasks a planner cares about: pending ones (`init|todo|doing`) and every
    /// `reinstallServer` task still in the history, sorted by id, plus the listed ids that
    /// could not be read (a fresh task answers 404 for a while: it may be running). One
    /// expanded listing when honoured and complete. Otherwise the plain id list (free when
    /// the expanded attempt answered it) and batch GETs of every task when the history is
    /// short (≤ two batches); for a long history, or without batch GETs, four filtered id
    /// lists and GETs of just those tasks. An expanded listing that announced more tasks than
    /// it sent keeps what it sent and reads the rest by id (the mode works; nothing is
    /// remembered).
    pub async fn relevant_tasks(&self, sn: &str) -> Result<RelevantTasks, Error> {
        let relevant = |t: &Task| {
            t.function == "reinstallServer"
                || matches!(t.status.as_str(), "init" | "todo" | "doing")
        };
        let mut out = RelevantTasks::default();
        let mut all_ids: Option<Vec<u64>> = None;
        let mut known: BTreeMap<u64, Task> = BTreeMap::new();
        if self.supports(Mode::ExpandedTasks) {
            let path = format!("{}/task", server_path(sn));
            match self
                .expanded_list::<Task>(&path, Mode::ExpandedTasks)
                .await?
            {
                Expanded::Objects { items, complete } => {
                    known = items.into_iter().map(|t| (t.task_id, t)).collect();
                    if complete {
                        out.tasks = known.into_values().filter(relevant).collect();
                        return Ok(out);
                    }
                    all_ids = Some(self.list_tasks(sn, None, None).await?);
                }
                Expanded::Plain(items) => {
                    all_ids = items.iter().map(serde_json::Value::as_u64).collect();
                }
                Expanded::Refused => {}
            }
        }
        // Listed ids to read, with the function the listing that named them implies.
        let ids: BTreeMap<u64, Option<String>> = match all_ids {
            // What an incomplete expanded listing left out: few, read whatever their history.
            Some(all) if !known.is_empty() => all
                .into_iter()
                .filter(|id| !known.contains_key(id))
                .map(|id| (id, None))
                .collect(),
            Some(all)
                if self.supports(Mode::Batch)
                    && all.len() <= 2 * self.config().batch_size.max(1) =>
            {
                all.into_iter().map(|id| (id, None)).collect()
            }
            None if self.supports(Mode::Batch) => {
                let all = self.list_tasks(sn, None, None).await?;
                if all.len() <= 2 * self.config().batch_size.max(1) {
                    all.into_iter().map(|id| (id, None)).collect()
                } else {
                    self.filtered_task_ids(sn).await?
                }
            }
            _ => self.filtered_task_ids(sn).await?,
        };
        let wanted: Vec<u64> = ids.keys().copied().collect();
        let got = self.get_tasks(sn, &wanted).await?;
        known.extend(got.found);
        out.tasks = known.into_values().filter(relevant).collect();
        out.unreadable = got
            .missing
            .into_iter()
            .chain(got.refused.into_keys())
            .map(|id| (id, ids.get(&id).cloned().flatten()))
            .collect();
        Ok(out)
    }

    /// Ids of `reinstallServer` tasks and of pending tasks, by the API's exact-match filters,
    /// with the function the `function=reinstallServer` list tells (the status lists do not).
    async fn filtered_task_ids(&self, sn: &str) -> Result<BTreeMap<u64, Option<String>>, Error> {
        let mut ids: BTreeMap<u64, Option<String>> = self
            .list_tasks(sn, Some("reinstallServer"), None)
            .await?
            .into_iter()
            .map(|id| (id, Some("reinstallServer".to_string())))
            .collect();
        for status in ["init", "todo", "doing"] {
            for id in self.list_tasks(sn, None, Some(status)).await? {
                ids.entry(id).or_insert(None);
            }
        }
        Ok(ids)
    }

    // -- planned interventions ----------------------------------------------------------------

    /// `GET /dedicated/server/{sn}/plannedIntervention`: intervention ids.
    pub async fn list_planned_interventions(&self, sn: &str) -> Result<Vec<u64>, Error> {
        self.get(&planned_interventions_path(sn)).await
    }

    /// `GET /dedicated/server/{sn}/plannedIntervention/{interventionId}`.
    pub async fn get_planned_intervention(
        &self,
        sn: &str,
        id: u64,
    ) -> Result<PlannedIntervention, Error> {
        self.get(&planned_intervention_path(sn, id)).await
    }

    /// Every planned intervention of a server: the id list (one call, and nothing more when
    /// it is empty, the usual answer), then the listed ones through batch GETs. Listed ids
    /// answering 404 or refused are in `missing`/`refused`: the caller cannot take the list
    /// as read.
    pub async fn planned_interventions(
        &self,
        sn: &str,
    ) -> Result<Objects<u64, PlannedIntervention>, Error> {
        let ids = self.list_planned_interventions(sn).await?;
        if ids.is_empty() {
            return Ok(Objects::default());
        }
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let got = self
            .batch_get::<PlannedIntervention>(&planned_interventions_path(sn), &ids)
            .await?
            .map_keys(|k| k.parse::<u64>().ok());
        Ok(Objects {
            found: got.found.into_values().map(|p| (p.id, p)).collect(),
            missing: got.missing,
            refused: got.refused,
        })
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
    /// `X-Pagination-Elements`. The API caches these listings (hence the mode's name); what
    /// ovhform reads decides actions, so every page asks for a fresh one with `Pragma:
    /// no-cache`, as the console does where freshness matters (`setDisabledCache`). When the
    /// API answers a plain id list or refuses the mode with any 4xx, the mode is remembered as
    /// unsupported and the caller uses plain GETs.
    async fn expanded_list<T: DeserializeOwned>(
        &self,
        path: &str,
        mode: Mode,
    ) -> Result<Expanded<T>, Error> {
        let size = self.config().page_size.max(1) as usize;
        let mut out = Vec::new();
        let mut total = None;
        // A safety cap: 2,000 pages of 500 objects is far beyond any account.
        for page in 1..=2000usize {
            let call = Call {
                headers: vec![
                    ("X-Pagination-Mode".into(), "CachedObjectList-Pages".into()),
                    ("X-Pagination-Size".into(), size.to_string()),
                    ("X-Pagination-Number".into(), page.to_string()),
                    ("Pragma".into(), "no-cache".into()),
                ],
                ..Call::get(path)
            };
            let resp = match self.execute(call).await {
                Ok(r) => r,
                Err(e) if refuses_mode(&e) => {
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
                out.push(
                    serde_json::from_value(item)
                        .map_err(|e| Error::decode("GET", path, &resp, e))?,
                );
            }
            total = resp
                .header("x-pagination-elements")
                .and_then(|v| v.trim().parse::<usize>().ok());
            let more = match total {
                Some(total) => out.len() < total && n > 0,
                None => n == size,
            };
            if !more {
                break;
            }
        }
        let complete = total.is_none_or(|t| out.len() >= t);
        Ok(Expanded::Objects {
            items: out,
            complete,
        })
    }

    /// Objects under `prefix/{id}` by batch GET (`X-Ovh-Batch: ,`, chunks of `batch_size`),
    /// keyed by id. Falls back to per-object GETs (and remembers it) when the API does not
    /// honour batch mode or refuses a batch with any 4xx — a 403 when per-server access rules
    /// do not cover every id of the batch. Ids that answer 404 (or cannot be addressed, see
    /// [`Error::UnsafePath`]) are `missing`; ids the API refuses alone are `refused`.
    async fn batch_get<T: DeserializeOwned + Send + 'static>(
        &self,
        prefix: &str,
        ids: &[String],
    ) -> Result<Objects<String, T>, Error> {
        let mut out = Objects::default();
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
                Err(e) if refuses_mode(&e) || matches!(e.status(), Some(501)) => {
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
                        let obj: T = serde_json::from_value(v).map_err(|e| {
                            Error::decode("GET", &path, &resp, format_args!("batch item {id}: {e}"))
                        })?;
                        out.found.insert(id, obj);
                    }
                    // A per-item error: ask for that one alone to get a typed answer.
                    _ => single.push(id),
                }
            }
            // An id the batch answer left out is asked for alone: silently dropping it would
            // make an existing object look absent (as if it had answered 404).
            for id in ids {
                if !out.found.contains_key(id) && !single.contains(id) {
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
                    out.found.insert(id, v);
                }
                Err(e) if e.is_not_found() || matches!(e, Error::UnsafePath { .. }) => {
                    out.missing.insert(id);
                }
                Err(e) if e.is_refusal() => {
                    out.refused.insert(id, e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_intervention_paths_escape_the_service_name_as_one_segment() {
        assert_eq!(
            planned_interventions_path("ns1.ip-1-2-3.eu"),
            "/dedicated/server/ns1.ip-1-2-3.eu/plannedIntervention"
        );
        assert_eq!(
            planned_intervention_path("ns1.ip-1-2-3.eu", 42),
            "/dedicated/server/ns1.ip-1-2-3.eu/plannedIntervention/42"
        );
        // A hostile name cannot reach another route.
        assert_eq!(
            planned_intervention_path("a/../b?x=1#", 7),
            "/dedicated/server/a%2F..%2Fb%3Fx=1%23/plannedIntervention/7"
        );
    }

    #[test]
    fn a_planned_intervention_decodes_from_the_published_shape() {
        let p: PlannedIntervention = serde_json::from_str(
            r#"{"expectedEndDate": "2026-03-01T12:00:00+01:00", "id": 12, "status": "todo",
                "type": "HARDWARE_UPGRADE_ON_ACTIVE_SERVER", "wantedStartDate": "2026-03-01T08:00:00+01:00"}"#,
        )
        .unwrap();
        assert_eq!(p.id, 12);
        assert_eq!(p.status.as_deref(), Some("todo"));
        assert_eq!(p.kind.as_deref(), Some("HARDWARE_UPGRADE_ON_ACTIVE_SERVER"));
        assert_eq!(
            p.expected_end_date.as_deref(),
            Some("2026-03-01T12:00:00+01:00")
        );
        // No field is required by the schema but the id.
        let bare: PlannedIntervention = serde_json::from_str(r#"{"id": 3}"#).unwrap();
        assert_eq!((bare.status, bare.kind), (None, None));
    }
}
