//! The simulated OVHcloud API surface: `/1.0` (alias `/v1`) dedicated-server and catalogue
//! routes, `/v2` IAM resource tags, batch GET and expanded listing.
//!
//! Owns: mapping (method, path, query, body) onto the world and rendering the real JSON
//! shapes. Must not touch: authentication, faults and HTTP plumbing (see `server.rs`).
//! Every handler runs with the world locked and never awaits.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::http::{Answer, ApiError, Outcome};
use super::reinstall;
use super::world::{Task, TaskEffect, TaskStatus, World};

/// API version prefix of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A parsed request, with percent-decoded path segments below the version prefix.
#[derive(Debug)]
pub struct Req<'a> {
    pub version: Version,
    pub method: &'a Method,
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Req<'_> {
    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn queries(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key || *k == format!("{key}[]"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(self.body).map_err(|e| {
            ApiError::new(
                400,
                "Client::BadRequest",
                format!("Invalid JSON received: {e}"),
            )
        })
    }
}

/// The route a request addresses: its pattern (for call counts) and whether it needs
/// authentication. `None` = a path the API does not describe.
pub fn classify(version: Version, method: &Method, segs: &[String]) -> Option<(String, bool)> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.as_str();
    let pattern = |p: &str| Some((format!("{m} {p}"), true));
    let public = |p: &str| Some((format!("{m} {p}"), false));
    match (version, m, s.as_slice()) {
        (Version::V1, "GET", ["auth", "time"]) => public("/auth/time"),
        (Version::V1, "GET", ["auth", "currentCredential"]) => pattern("/auth/currentCredential"),
        (Version::V1, "GET", ["dedicated", "installationTemplate"]) => {
            public("/dedicated/installationTemplate")
        }
        (Version::V1, "GET", ["dedicated", "installationTemplate", "templateInfos"]) => {
            public("/dedicated/installationTemplate/templateInfos")
        }
        (Version::V1, "GET", ["dedicated", "installationTemplate", _]) => {
            public("/dedicated/installationTemplate/{templateName}")
        }
        (Version::V1, "GET", ["dedicated", "server"]) => pattern("/dedicated/server"),
        (Version::V1, "GET" | "PUT", ["dedicated", "server", _]) => {
            pattern("/dedicated/server/{serviceName}")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "boot"]) => {
            pattern("/dedicated/server/{serviceName}/boot")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "boot", _]) => {
            pattern("/dedicated/server/{serviceName}/boot/{bootId}")
        }
        (Version::V1, "POST", ["dedicated", "server", _, "reboot"]) => {
            pattern("/dedicated/server/{serviceName}/reboot")
        }
        (Version::V1, "POST", ["dedicated", "server", _, "reinstall"]) => {
            pattern("/dedicated/server/{serviceName}/reinstall")
        }
        (Version::V1, "POST", ["dedicated", "server", _, "install", "start"]) => {
            pattern("/dedicated/server/{serviceName}/install/start")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "install", "status"]) => {
            pattern("/dedicated/server/{serviceName}/install/status")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "install", "compatibleTemplates"]) => {
            pattern("/dedicated/server/{serviceName}/install/compatibleTemplates")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "install", "hardwareRaidProfile"]) => {
            pattern("/dedicated/server/{serviceName}/install/hardwareRaidProfile")
        }
        (
            Version::V1,
            "GET",
            [
                "dedicated",
                "server",
                _,
                "install",
                "compatibleTemplatePartitionSchemes",
            ],
        ) => pattern("/dedicated/server/{serviceName}/install/compatibleTemplatePartitionSchemes"),
        (Version::V1, "GET", ["dedicated", "server", _, "specifications", "hardware"]) => {
            pattern("/dedicated/server/{serviceName}/specifications/hardware")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "task"]) => {
            pattern("/dedicated/server/{serviceName}/task")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "task", _]) => {
            pattern("/dedicated/server/{serviceName}/task/{taskId}")
        }
        (Version::V1, "POST", ["dedicated", "server", _, "task", _, "cancel"]) => {
            pattern("/dedicated/server/{serviceName}/task/{taskId}/cancel")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "plannedIntervention"]) => {
            pattern("/dedicated/server/{serviceName}/plannedIntervention")
        }
        (Version::V1, "GET", ["dedicated", "server", _, "plannedIntervention", _]) => {
            pattern("/dedicated/server/{serviceName}/plannedIntervention/{interventionId}")
        }
        (Version::V2, "GET", ["iam", "resource"]) => pattern("/v2/iam/resource"),
        (Version::V2, "GET" | "PUT", ["iam", "resource", _]) => {
            pattern("/v2/iam/resource/{resourceURN}")
        }
        (Version::V2, "POST", ["iam", "resource", _, "tag"]) => {
            pattern("/v2/iam/resource/{resourceURN}/tag")
        }
        (Version::V2, "DELETE", ["iam", "resource", _, "tag", _]) => {
            pattern("/v2/iam/resource/{resourceURN}/tag/{key}")
        }
        _ => None,
    }
}

/// Switches for the API's call-economy modes and for the ways real regions differ from the
/// published schema, each to exercise a client's fallback: off, a mode is ignored (the API
/// answers as one that does not know the header would); the others make the API answer as
/// some regions or credentials do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Modes {
    pub expanded_listing: bool,
    pub batch: bool,
    /// Serve the legacy `install/start` (removed from the EU API in 2025; other endpoints lag).
    pub legacy_install: bool,
    /// Take the `iamTags` filter on `GET /dedicated/server`. Off: 400 for a request carrying
    /// it (some regions' schemas lack it; OVH's CLI does not rely on it for v1) [inferred: the
    /// refusal's shape].
    pub iam_tags_filter: bool,
    /// Expanded listings are a server-side cache: on, one without `Pragma: no-cache` serves the
    /// state from before the last change (a write through the API or a hook).
    pub stale_listing: bool,
    /// Answer every batch GET 403 `NOT_GRANTED_CALL`, as a consumer key whose access rules
    /// name servers one by one does [inferred].
    pub batch_forbidden: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            expanded_listing: true,
            batch: true,
            legacy_install: true,
            iam_tags_filter: true,
            stale_listing: false,
            batch_forbidden: false,
        }
    }
}

/// Whether an expanded listing is served from the cache (the stale-listing mode is on and the
/// request did not ask for a fresh one).
fn cached_listing(modes: &Modes, req: &Req<'_>) -> bool {
    modes.stale_listing
        && !req
            .header("pragma")
            .is_some_and(|p| p.to_ascii_lowercase().contains("no-cache"))
}

/// Answer one (non-batch) request. `now_unix` is real wall time for `/auth/time`.
pub fn execute(world: &mut World, modes: &Modes, req: &Req<'_>, now_unix: i64) -> Outcome {
    world.tick();
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (req.version, req.method.as_str(), s.as_slice()) {
        (Version::V1, "GET", ["auth", "time"]) => Ok(Answer::json(json!(now_unix))),
        (Version::V1, "GET", ["dedicated", "installationTemplate"]) => Ok(Answer::json(json!(
            world.templates.iter().map(|t| t.name).collect::<Vec<_>>()
        ))),
        (Version::V1, "GET", ["dedicated", "installationTemplate", "templateInfos"]) => {
            Ok(Answer::json(json!(
                world
                    .templates
                    .iter()
                    .map(|t| t.info_json())
                    .collect::<Vec<_>>()
            )))
        }
        (Version::V1, "GET", ["dedicated", "installationTemplate", name]) => world
            .template(name)
            .map(|t| Answer::json(t.to_json()))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "Client::NotFound",
                    format!("The requested object (templateName = {name}) does not exist"),
                )
            }),
        (Version::V1, "GET", ["dedicated", "server"]) => list_servers(world, modes, req),
        (Version::V1, "GET", ["dedicated", "server", sn]) => {
            server(world, sn).map(|s| Answer::json(s.to_json()))
        }
        (Version::V1, "PUT", ["dedicated", "server", sn]) => {
            put_server(world, sn, &req.json_body()?)
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "boot"]) => {
            let srv = server(world, sn)?;
            let filter = req.query("bootType");
            if let Some(f) = filter
                && !["harddisk", "internal", "network", "power", "rescue"].contains(&f)
            {
                return Err(bad_param("bootType", f, "dedicated.server.BootTypeEnum"));
            }
            let boots: Vec<&super::world::Boot> = srv
                .boots
                .iter()
                .filter(|b| filter.is_none_or(|f| b.boot_type == f))
                .collect();
            // S25: `x-expanded-response: DedicatedServerNetboot`.
            listing(
                modes,
                req,
                boots.iter().map(|b| json!(b.id)).collect(),
                || {
                    let objects: Vec<Value> = boots.iter().map(|b| b.to_json()).collect();
                    let total = objects.len();
                    (objects, total)
                },
            )
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "boot", id]) => {
            let srv = server(world, sn)?;
            let id = parse_id("bootId", id)?;
            let b = srv.boot(id).ok_or_else(|| not_found_object("bootId", id))?;
            Ok(Answer::json(b.to_json()))
        }
        (Version::V1, "POST", ["dedicated", "server", sn, "reboot"]) => {
            server(world, sn)?;
            let t = create(world, sn, "hardReboot", "Hard reboot", TaskEffect::Reboot)?;
            Ok(Answer::json(t.to_json()))
        }
        (Version::V1, "POST", ["dedicated", "server", sn, "reinstall"]) => {
            let body = req.json_body()?;
            let plan = reinstall::validate(server(world, sn)?, &world.templates, &body)?;
            let t = create(
                world,
                sn,
                "reinstallServer",
                "Start bare metal OS installation",
                TaskEffect::Install(plan),
            )?;
            Ok(Answer::json(t.to_short_json()))
        }
        (Version::V1, "POST", ["dedicated", "server", sn, "install", "start"])
            if modes.legacy_install =>
        {
            let body = req.json_body()?;
            let plan = reinstall::validate_legacy(server(world, sn)?, &world.templates, &body)?;
            let t = create(
                world,
                sn,
                "reinstallServer",
                "Start dedicated server installation",
                TaskEffect::Install(plan),
            )?;
            Ok(Answer::json(t.to_json()))
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "install", "status"]) => {
            server(world, sn)?;
            // Error class of this 404 not seen anywhere; Client::NotFound presumed (REFERENCE §5.3).
            world.install_status(sn).map(Answer::json).ok_or_else(|| {
                ApiError::new(
                    404,
                    "Client::NotFound",
                    "Server is not being installed or reinstalled at the moment",
                )
            })
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "install", "compatibleTemplates"]) => {
            // 2026 shape: only `ovh` (personal templates are gone).
            Ok(Answer::json(
                json!({"ovh": server(world, sn)?.compatible_templates}),
            ))
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "install", "hardwareRaidProfile"]) => {
            let srv = server(world, sn)?;
            let profile = srv.hardware_raid_profile_json();
            if profile["controllers"]
                .as_array()
                .is_none_or(|c| c.is_empty())
            {
                // Documented answer (D:partitioning_ovh); the class is [inferred].
                return Err(ApiError::new(
                    403,
                    "Client::Forbidden",
                    "Hardware RAID is not supported by this server",
                ));
            }
            Ok(Answer::json(profile))
        }
        (
            Version::V1,
            "GET",
            [
                "dedicated",
                "server",
                sn,
                "install",
                "compatibleTemplatePartitionSchemes",
            ],
        ) => {
            let srv = server(world, sn)?;
            let name = req.query("templateName").ok_or_else(|| {
                ApiError::new(
                    400,
                    "Client::BadRequest",
                    "[templateName] Property is mandatory",
                )
            })?;
            if !srv.compatible_templates.iter().any(|t| t == name) {
                return Err(ApiError::new(
                    404,
                    "Client::NotFound::OperatingSystem",
                    format!("Operating system {name} could not be found"),
                ));
            }
            // Most OSes have a single scheme named `default` (D:partitioning_ovh 2026).
            Ok(Answer::json(json!(["default"])))
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "specifications", "hardware"]) => {
            Ok(Answer::json(server(world, sn)?.hardware_json()))
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "task"]) => {
            let now = world.now();
            let srv = server(world, sn)?;
            let function = req.query("function");
            let status = req.query("status");
            if let Some(s) = status
                && ![
                    "cancelled",
                    "customerError",
                    "doing",
                    "done",
                    "init",
                    "ovhError",
                    "todo",
                ]
                .contains(&s)
            {
                return Err(bad_param("status", s, "dedicated.TaskStatusEnum"));
            }
            if let Some(f) = function
                && !TASK_FUNCTIONS.contains(&f)
            {
                return Err(bad_param("function", f, "dedicated.TaskFunctionEnum"));
            }
            let matching = |t: &&Task| {
                function.is_none_or(|f| t.function == f)
                    && status.is_none_or(|s| t.status.as_str() == s)
            };
            let tasks: Vec<&Task> = srv.tasks.values().filter(matching).collect();
            // The cached listing is the tasks as they were before the last change.
            let source = if cached_listing(modes, req) {
                world
                    .listing_snapshot
                    .as_ref()
                    .and_then(|snap| snap.get(*sn))
                    .unwrap_or(srv)
            } else {
                srv
            };
            // S25: `x-expanded-response: DedicatedServerTask`.
            listing(
                modes,
                req,
                tasks.iter().map(|t| json!(t.id)).collect(),
                || {
                    let listed: Vec<&Task> = source.tasks.values().filter(matching).collect();
                    // A task that still answers 404 cannot be in the listing, but is counted.
                    let objects = listed
                        .iter()
                        .filter(|t| !t.answers_404(now))
                        .map(|t| t.to_json())
                        .collect();
                    (objects, listed.len())
                },
            )
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "plannedIntervention"]) => {
            let srv = server(world, sn)?;
            let all: Vec<&super::world::PlannedIntervention> =
                srv.planned_interventions.values().collect();
            // S25: `x-expanded-response: DedicatedServerPlannedIntervention`.
            listing(
                modes,
                req,
                all.iter().map(|p| json!(p.id)).collect(),
                || {
                    let objects: Vec<Value> = all.iter().map(|p| p.to_json()).collect();
                    let total = objects.len();
                    (objects, total)
                },
            )
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "plannedIntervention", id]) => {
            let srv = server(world, sn)?;
            let id = parse_id("interventionId", id)?;
            srv.planned_interventions
                .get(&id)
                .map(|p| Answer::json(p.to_json()))
                .ok_or_else(|| not_found_object("interventionId", id))
        }
        (Version::V1, "GET", ["dedicated", "server", sn, "task", id]) => {
            server(world, sn)?;
            let id = parse_id("taskId", id)?;
            let now = world.now();
            let task = world
                .servers
                .get_mut(*sn)
                .and_then(|s| s.tasks.get_mut(&id))
                .ok_or_else(|| not_found_object("taskId", id))?;
            if task.answers_404(now) {
                task.transient_404 -= 1;
                world.injected.fresh_task_404 += 1;
                return Err(not_found_object("taskId", id));
            }
            Ok(Answer::json(task.to_json()))
        }
        (Version::V1, "POST", ["dedicated", "server", sn, "task", id, "cancel"]) => {
            server(world, sn)?;
            let id = parse_id("taskId", id)?;
            let now = world.now();
            let srv = world
                .servers
                .get_mut(*sn)
                .ok_or_else(ApiError::not_found_service)?;
            let task = srv
                .tasks
                .get_mut(&id)
                .ok_or_else(|| not_found_object("taskId", id))?;
            // Only tasks not yet started can be stopped; the real refusal is unpublished [inferred].
            if !matches!(task.status, TaskStatus::Init | TaskStatus::Todo) {
                return Err(ApiError::new(
                    400,
                    "Client::BadRequest",
                    format!(
                        "Task {id} cannot be cancelled in status {}",
                        task.status.as_str()
                    ),
                ));
            }
            task.status = TaskStatus::Cancelled;
            task.done = Some(now);
            task.last_update = now;
            if srv.install.as_ref().is_some_and(|i| i.task_id == id) {
                srv.install = None;
            }
            Ok(Answer::void())
        }
        (Version::V2, "GET", ["iam", "resource"]) => list_resources(world, req),
        (Version::V2, "GET", ["iam", "resource", urn]) => {
            Ok(Answer::json(resource(world, urn)?.iam_resource_json()))
        }
        (Version::V2, "PUT", ["iam", "resource", urn]) => {
            put_resource(world, urn, &req.json_body()?)
        }
        (Version::V2, "POST", ["iam", "resource", urn, "tag"]) => {
            add_tag(world, urn, &req.json_body()?)
        }
        (Version::V2, "DELETE", ["iam", "resource", urn, "tag", key]) => {
            let name = resource(world, urn)?.name.clone();
            if key.starts_with("ovh:") {
                return Err(reserved_tag(key));
            }
            let srv = world
                .servers
                .get_mut(&name)
                .ok_or_else(ApiError::not_found_service)?;
            srv.tags.remove(*key).ok_or_else(|| {
                ApiError::new(
                    404,
                    "Client::NotFound",
                    format!("Tag {key} not found on resource"),
                )
            })?;
            Ok(Answer::void())
        }
        _ => Err(ApiError::invalid_url()),
    }
}

fn server<'w>(world: &'w World, sn: &str) -> Result<&'w super::world::Server, ApiError> {
    world
        .servers
        .get(sn)
        .ok_or_else(ApiError::not_found_service)
}

fn create(
    world: &mut World,
    sn: &str,
    function: &str,
    comment: &str,
    effect: TaskEffect,
) -> Result<Task, ApiError> {
    world
        .create_task(sn, function, comment, effect)
        .ok_or_else(ApiError::not_found_service)
}

/// Type errors on path/query parameters; the exact wording is [inferred].
fn bad_param(name: &str, value: &str, kind: &str) -> ApiError {
    ApiError::new(
        400,
        "Client::BadRequest",
        format!("[{name}] Given data ({value}) is not valid for type {kind}"),
    )
}

fn parse_id(name: &str, raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| bad_param(name, raw, "long"))
}

fn not_found_object(name: &str, id: u64) -> ApiError {
    ApiError::new(
        404,
        "Client::NotFound",
        format!("The requested object ({name} = {id}) does not exist"),
    )
}

fn reserved_tag(key: &str) -> ApiError {
    ApiError::new(
        400,
        "Client::BadRequest",
        format!("Tag key {key} is reserved: keys prefixed with ovh: are system tags"),
    )
}

/// `iamTags`/`tags` filter: `{"key": [{"operator": "EQ", "value": "x"}]}` (JSON in the query).
/// Keys are ANDed, the filters of one key ORed [inferred].
/// Tag key → (operator, value) filters.
type TagFilter = BTreeMap<String, Vec<(String, String)>>;

fn tag_filter(raw: Option<&str>, param: &str) -> Result<Option<TagFilter>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let parsed: BTreeMap<String, Vec<Map<String, Value>>> = serde_json::from_str(raw)
        .map_err(|_| bad_param(param, raw, "map[string][]iam.resource.TagFilter"))?;
    let mut out = BTreeMap::new();
    for (k, filters) in parsed {
        let mut list = Vec::new();
        for f in filters {
            let op = f
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or("EQ")
                .to_string();
            if !["EQ", "EXISTS", "ILIKE", "LIKE", "NEQ", "NEXISTS"].contains(&op.as_str()) {
                return Err(bad_param(param, raw, "iam.resource.TagFilter.OperatorEnum"));
            }
            list.push((
                op,
                f.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        out.insert(k, list);
    }
    Ok(Some(out))
}

fn like(pattern: &str, value: &str) -> bool {
    // SQL LIKE with `%` wildcards.
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            let Some(pos) = rest.find(p) else {
                return false;
            };
            rest = &rest[pos + p.len()..];
        }
    }
    true
}

fn tags_match(
    tags: &BTreeMap<String, String>,
    filter: &BTreeMap<String, Vec<(String, String)>>,
) -> bool {
    filter.iter().all(|(key, fs)| {
        fs.iter().any(|(op, v)| {
            let cur = tags.get(key);
            match op.as_str() {
                "EXISTS" => cur.is_some(),
                "NEXISTS" => cur.is_none(),
                "NEQ" => cur.is_none_or(|c| c != v),
                "LIKE" => cur.is_some_and(|c| like(v, c)),
                "ILIKE" => cur.is_some_and(|c| like(&v.to_lowercase(), &c.to_lowercase())),
                _ => cur.is_some_and(|c| c == v),
            }
        })
    })
}

fn list_servers(world: &World, modes: &Modes, req: &Req<'_>) -> Outcome {
    if !modes.iam_tags_filter && req.query("iamTags").is_some() {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            "[iamTags] Unknown parameter",
        ));
    }
    let filter = tag_filter(req.query("iamTags"), "iamTags")?;
    let matching =
        |s: &&super::world::Server| filter.as_ref().is_none_or(|f| tags_match(&s.tags, f));
    let servers: Vec<&super::world::Server> = world.servers.values().filter(matching).collect();
    let source = match &world.listing_snapshot {
        Some(snap) if cached_listing(modes, req) => snap,
        _ => &world.servers,
    };
    // S25: `x-expanded-response: DedicatedServerDedicatedWithIAM`.
    listing(
        modes,
        req,
        servers.iter().map(|s| json!(s.name)).collect(),
        || {
            let objects: Vec<Value> = source
                .values()
                .filter(matching)
                .map(|s| s.to_json())
                .collect();
            let total = objects.len();
            (objects, total)
        },
    )
}

/// A list route: plain ids, or — with `X-Pagination-Mode: CachedObjectList-Pages` on a route
/// the schema marks `x-expanded-response` — a page of full objects (`X-Pagination-Size`,
/// `X-Pagination-Number`), the total in `X-Pagination-Elements`. `objects` gives the objects
/// the listing can show and the total it announces (more when some cannot be shown yet).
fn listing(
    modes: &Modes,
    req: &Req<'_>,
    ids: Vec<Value>,
    objects: impl FnOnce() -> (Vec<Value>, usize),
) -> Outcome {
    let expanded = modes.expanded_listing
        && req
            .header("x-pagination-mode")
            .is_some_and(|m| m == "CachedObjectList-Pages");
    if !expanded {
        return Ok(Answer::json(Value::Array(ids)));
    }
    let (objects, total) = objects();
    let size = match req.header("x-pagination-size") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad_param("X-Pagination-Size", v, "long"))?,
        None => total.max(1),
    };
    // Page numbers start at 1 like the console's iceberg client [inferred].
    let number = match req.header("x-pagination-number") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad_param("X-Pagination-Number", v, "long"))?,
        None => 1,
    };
    let page: Vec<Value> = objects
        .into_iter()
        .skip((number - 1).saturating_mul(size))
        .take(size)
        .collect();
    Ok(Answer {
        body: Value::Array(page),
        headers: vec![
            ("x-pagination-elements", total.to_string()),
            ("x-pagination-size", size.to_string()),
            ("x-pagination-number", number.to_string()),
        ],
    })
}

/// `dedicated.TaskFunctionEnum` (S25): filter values the API accepts.
pub(crate) const TASK_FUNCTIONS: &[&str] = &[
    "INFRA_002_VirtualNetworkInterface",
    "INFRA_002_VirtualNetworkInterface_group",
    "INFRA_002_VirtualNetworkInterface_ungroup",
    "INFRA_ONE_NETWORK_ONEAPI_VirtualNetworkInterface_group",
    "INFRA_ONE_NETWORK_ONEAPI_VirtualNetworkInterface_ungroup",
    "INFRA_ONE_NETWORK_VirtualNetworkInterface_group",
    "INFRA_ONE_NETWORK_VirtualNetworkInterface_ungroup",
    "addVirtualMac",
    "addWindowSplaFromExistingSerial",
    "applyBackupFtpAcls",
    "applyBackupFtpQuota",
    "bypassAntiDDosGame",
    "changePasswordBackupFTP",
    "changeRipeOrg",
    "checkAndReleaseIp",
    "createBackupFTP",
    "createOrUpdateRipeOrg",
    "createPrivateNetwork",
    "disableFirewall",
    "enableFirewall",
    "genericMoveFloatingIp",
    "hardReboot",
    "hardware_update",
    "ipmi/configureSGX",
    "migrateBackupFTP",
    "moveFloatingIp",
    "moveVirtualMac",
    "reagregateBlock",
    "rebootPower8To",
    "reinstallServer",
    "releaseIp",
    "removeBackupFTP",
    "removeVirtualMac",
    "requestAccessIPMI",
    "resetIPMI",
    "resetIPMISession",
    "testIPMIhttp",
    "testIPMIpassword",
    "testIPMIping",
    "virtualMacAdd",
    "virtualMacDelete",
];

const READ_ONLY: &[&str] = &[
    "availabilityZone",
    "commercialRange",
    "datacenter",
    "iam",
    "ip",
    "linkSpeed",
    "name",
    "newUpgradeSystem",
    "os",
    "powerState",
    "professionalUse",
    "rack",
    "region",
    "reverse",
    "serverId",
    "supportLevel",
];

/// Nullable string field of a PUT body: `""` clears it (what Terraform sends).
fn nullable_string(key: &str, v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::new(
            400,
            "Client::BadRequest",
            format!("[{key}] must be a string or null"),
        )),
    }
}

fn put_server(world: &mut World, sn: &str, body: &Value) -> Outcome {
    let srv = world
        .servers
        .get(sn)
        .ok_or_else(ApiError::not_found_service)?;
    let obj = body.as_object().ok_or_else(|| {
        ApiError::new(
            400,
            "Client::BadRequest",
            "Invalid JSON received: expected an object",
        )
    })?;
    let mut next = srv.clone();
    for (k, v) in obj {
        if READ_ONLY.contains(&k.as_str()) {
            // What the real API does with read-only keys is undocumented; the simulator rejects
            // them so that a client sending one is caught here rather than in production.
            return Err(ApiError::new(
                400,
                "Client::BadRequest",
                format!("[{k}] Property is read-only"),
            ));
        }
        match k.as_str() {
            "bootId" => {
                next.boot_id = match v {
                    Value::Null => None,
                    v => {
                        let id = v
                            .as_u64()
                            .ok_or_else(|| bad_param("bootId", &v.to_string(), "long"))?;
                        srv.boot(id).ok_or_else(|| {
                            ApiError::new(
                                400,
                                "Client::BadRequest",
                                format!("[bootId] Boot {id} is not available for server {sn}"),
                            )
                        })?;
                        Some(id)
                    }
                }
            }
            "bootScript" => next.boot_script = nullable_string(k, v)?,
            "efiBootloaderPath" => next.efi_bootloader_path = nullable_string(k, v)?,
            "rescueMail" => next.rescue_mail = nullable_string(k, v)?,
            "rescueSshKey" => next.rescue_ssh_key = nullable_string(k, v)?,
            "rootDevice" => next.root_device = nullable_string(k, v)?,
            "monitoring" => {
                next.monitoring = v
                    .as_bool()
                    .ok_or_else(|| bad_param(k, &v.to_string(), "boolean"))?
            }
            "noIntervention" => {
                next.no_intervention = v
                    .as_bool()
                    .ok_or_else(|| bad_param(k, &v.to_string(), "boolean"))?
            }
            "state" => match v.as_str() {
                Some(s @ ("error" | "hacked" | "hackedBlocked" | "ok")) => {
                    next.state = s.to_string()
                }
                _ => return Err(bad_param(k, &v.to_string(), "dedicated.server.StateEnum")),
            },
            _ => {
                return Err(ApiError::new(
                    400,
                    "Client::BadRequest",
                    format!("[{k}] Unknown parameter"),
                ));
            }
        }
    }
    // bootId and bootScript are mutually exclusive (D:ipxe-scripts): whichever this body sets
    // wins; setting both is refused [inferred].
    let sets_id = obj.get("bootId").is_some_and(|v| !v.is_null());
    let sets_script = obj
        .get("bootScript")
        .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
    if sets_id && sets_script {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            "bootId and bootScript are mutually exclusive",
        ));
    }
    if sets_id {
        next.boot_script = None;
    } else if sets_script {
        next.boot_id = None;
    }
    if next.boot_id.is_none() && next.boot_script.is_none() {
        // Clearing the script leaves the server booting from disk [inferred].
        next.boot_id = Some(1);
    }
    world.servers.insert(sn.to_string(), next);
    Ok(Answer::void())
}

fn resource<'w>(world: &'w World, urn: &str) -> Result<&'w super::world::Server, ApiError> {
    world
        .servers
        .values()
        .find(|s| s.urn() == urn)
        .ok_or_else(|| ApiError::new(404, "Client::NotFound", format!("Resource {urn} not found")))
}

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    let ok = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len())
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_.:/=+@-".contains(&c))
    };
    if key.starts_with("ovh:") {
        return Err(reserved_tag(key));
    }
    if !ok(key, 1, 128) {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            format!("Tag key {key} must comply with '^[a-zA-Z0-9_.:/=+@-]{{1,128}}$'"),
        ));
    }
    if !ok(value, 0, 256) {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            format!("Tag value for {key} must comply with '^[a-zA-Z0-9_.:/=+@-]{{0,256}}$'"),
        ));
    }
    Ok(())
}

fn list_resources(world: &World, req: &Req<'_>) -> Outcome {
    let names = req.queries("resourceName");
    let types = req.queries("resourceType");
    let urns = req.queries("resourceURN");
    let filter = tag_filter(req.query("tags"), "tags")?;
    let all: Vec<Value> = world
        .servers
        .values()
        .filter(|s| names.is_empty() || names.contains(&s.name.as_str()))
        .filter(|_| types.is_empty() || types.contains(&"dedicatedServer"))
        .filter(|s| urns.is_empty() || urns.contains(&s.urn().as_str()))
        .filter(|s| filter.as_ref().is_none_or(|f| tags_match(&s.tags, f)))
        .map(|s| s.iam_resource_json())
        .collect();
    // v2 cursor pagination; the cursor is opaque to clients (here: a base64 offset).
    let Some(size) = req.header("x-pagination-size") else {
        return Ok(Answer::json(json!(all)));
    };
    let size: usize = size
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad_param("X-Pagination-Size", size, "long"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let offset = match req.header("x-pagination-cursor") {
        None => 0,
        Some(c) => b64
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| bad_param("X-Pagination-Cursor", c, "cursor"))?,
    };
    let page: Vec<Value> = all.iter().skip(offset).take(size).cloned().collect();
    let mut headers = Vec::new();
    // Saturating: the cursor and the size come from the client (a huge value must not overflow).
    let next = offset.saturating_add(size);
    if next < all.len() {
        headers.push(("x-pagination-cursor-next", b64.encode(next.to_string())));
    }
    Ok(Answer {
        body: json!(page),
        headers,
    })
}

fn put_resource(world: &mut World, urn: &str, body: &Value) -> Outcome {
    let name = resource(world, urn)?.name.clone();
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::new(400, "Client::BadRequest", "Invalid JSON received"))?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != "tags") {
        // Only `tags` is writable in iam.resource.Resource.
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            format!("[{k}] Property is read-only"),
        ));
    }
    let mut tags = BTreeMap::new();
    if let Some(t) = obj.get("tags").filter(|t| !t.is_null()) {
        let t = t
            .as_object()
            .ok_or_else(|| ApiError::new(400, "Client::BadRequest", "[tags] must be an object"))?;
        for (k, v) in t {
            let v = v.as_str().ok_or_else(|| {
                ApiError::new(
                    400,
                    "Client::BadRequest",
                    format!("[tags.{k}] must be a string"),
                )
            })?;
            check_tag(k, v)?;
            tags.insert(k.clone(), v.to_string());
        }
    }
    let srv = world
        .servers
        .get_mut(&name)
        .ok_or_else(ApiError::not_found_service)?;
    // System tags survive a replacement of the user tags (TF relies on it).
    srv.tags.retain(|k, _| k.starts_with("ovh:"));
    srv.tags.extend(tags);
    Ok(Answer::json(srv.iam_resource_json()))
}

fn add_tag(world: &mut World, urn: &str, body: &Value) -> Outcome {
    let name = resource(world, urn)?.name.clone();
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::new(400, "Client::BadRequest", "Invalid JSON received"))?;
    if let Some(k) = obj.keys().find(|k| !["key", "value"].contains(&k.as_str())) {
        return Err(ApiError::new(
            400,
            "Client::BadRequest",
            format!("[{k}] Unknown parameter"),
        ));
    }
    let get = |k: &str| {
        obj.get(k).and_then(Value::as_str).ok_or_else(|| {
            ApiError::new(
                400,
                "Client::BadRequest",
                format!("[{k}] Property is mandatory"),
            )
        })
    };
    let (key, value) = (get("key")?, get("value")?);
    check_tag(key, value)?;
    let srv = world
        .servers
        .get_mut(&name)
        .ok_or_else(ApiError::not_found_service)?;
    srv.tags.insert(key.to_string(), value.to_string());
    Ok(Answer::void())
}
