//! Loading a manifest tree: files → documents → kinds → group membership → template merge →
//! per-server validation and build → [`Desired`]. Every problem found anywhere is collected;
//! `load` fails only at the end, with all of them.
//!
//! Owns: cross-document rules (duplicates, membership, window references) and the order of the
//! steps. Must not touch: the file system details (`source.rs`), per-field rules
//! (`validate.rs`), value resolution (`build.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::build::{self, Resolver};
use super::diag::{Code, Diagnostics};
use super::node::{Loc, Node, Value};
use super::raw::{
    FromNode, KindMaintenanceWindow, KindServer, KindServerGroup, NodeOf, RawGroupDoc,
    RawServerDoc, RawServerSpec, RawWindowDoc, Sink, SourceFile, Sp,
};
use super::{source, validate};
use crate::model::Desired;
use crate::model::{DesiredGroup, DesiredServer, MaintenanceWindow, Origin};

/// A successful load: the desired state, and the warnings that did not block it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub desired: Desired,
    pub warnings: Diagnostics,
}

const KINDS: &[&str] = &[
    KindServer::VALUE,
    KindServerGroup::VALUE,
    KindMaintenanceWindow::VALUE,
];

fn origin(files: &[SourceFile], loc: Loc) -> Origin {
    Origin {
        file: files
            .get(loc.file as usize)
            .map(|f| f.path.clone())
            .unwrap_or_default(),
        line: loc.line,
        column: loc.column,
    }
}

/// OVHcloud service names of dedicated servers: `ns3012345.ip-51-68-1.eu`, `sd-123456`, …
/// Lowercase DNS-like labels.
pub fn service_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 253 {
        return Some(format!(
            "service name `{name}` must have 1 to 253 characters"
        ));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "service name `{name}` has uppercase letters (service names are lowercase)"
        ));
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Some(format!("`{name}` is not a service name"));
        }
    }
    None
}

/// Deep-merges a group template under a server's own spec: mappings merge key by key, the
/// server's value wins everywhere else (lists are replaced, not concatenated); an explicit
/// `null` in the server removes the template's value.
pub fn merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(b), Value::Map(o)) => {
            let mut out: Vec<(Node, Node)> = Vec::with_capacity(b.len() + o.len());
            for (bk, bv) in b {
                match o.iter().find(|(ok, _)| ok.value == bk.value) {
                    Some((_, ov)) if ov.is_null() => {}
                    Some((ok, ov)) => out.push((ok.clone(), merge(bv, ov))),
                    None => out.push((bk.clone(), bv.clone())),
                }
            }
            for (ok, ov) in o {
                if !b.iter().any(|(bk, _)| bk.value == ok.value) {
                    out.push((ok.clone(), ov.clone()));
                }
            }
            Node {
                value: Value::Map(out),
                loc: over.loc,
                key_loc: over.key_loc,
            }
        }
        _ => over.clone(),
    }
}

struct ServerDoc {
    doc: RawServerDoc,
    root: Loc,
}

struct GroupDoc {
    doc: RawGroupDoc,
    root: Loc,
    members: BTreeSet<String>,
}

/// Loads and validates manifests from files and directories (see the module docs of
/// [`super`] for the language). `Err` holds every error and warning; `Ok` holds the desired
/// state and the warnings.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Diagnostics> {
    let started = std::time::Instant::now();
    let mut early = Vec::new();
    let paths_found = source::discover(paths, &mut early);
    let discovered = started.elapsed();
    let parsed = source::parse_all(&paths_found);
    let parsed_at = started.elapsed();

    let files: Vec<SourceFile> = paths_found
        .iter()
        .zip(&parsed)
        .map(|(p, parsed)| SourceFile {
            path: p.clone(),
            source: parsed.source.clone(),
        })
        .collect();
    let mut sink = Sink::new(&files);
    sink.extend(early);

    let mut servers: BTreeMap<String, ServerDoc> = BTreeMap::new();
    let mut groups: BTreeMap<String, GroupDoc> = BTreeMap::new();
    let mut windows: BTreeMap<String, MaintenanceWindow> = BTreeMap::new();

    // Converting documents is independent per file: do it on all cores, then register them
    // in file order (so "already defined at" always names the earlier file).
    let mut file_docs: Vec<Vec<Node>> = Vec::with_capacity(parsed.len());
    // Whether some check was skipped because of an error found before it (a file that could
    // not be parsed, a document or spec too broken to check further): fixing the reported
    // errors may then reveal more.
    let mut stopped_early = false;
    for p in parsed {
        if let Some(d) = p.diag {
            stopped_early = true;
            sink.push(d);
        }
        file_docs.push(p.docs);
    }
    let converted = parallel(file_docs, |chunk| {
        let mut local = Sink::new(&files);
        let mut stopped = false;
        let docs: Vec<Converted> = chunk
            .into_iter()
            .flatten()
            .filter_map(|doc| convert(doc, &mut local, &mut stopped))
            .collect();
        (docs, local.diags, stopped)
    });
    for (docs, diags, stopped) in converted {
        stopped_early |= stopped;
        sink.extend(diags);
        for doc in docs {
            register(doc, &mut sink, &mut servers, &mut groups, &mut windows);
        }
    }

    // Group membership: explicit members and label selectors; tag selectors get a prototype.
    let mut memberships: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tag_groups: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for (gname, g) in groups.iter_mut() {
        let spec = &g.doc.spec;
        if spec.members.is_none() && spec.selector.is_none() {
            sink.error(
                Code::GroupEmpty,
                g.doc.metadata.name.loc,
                format!("ServerGroup `{gname}` has neither members nor a selector"),
            );
        }
        if let Some(t) = &spec.template {
            // Structural problems of a template are reported even if no server uses it.
            let _ = RawServerSpec::from_node(&t.0, &mut sink);
        }
        if let Some(n) = &spec.max_concurrent_reinstalls
            && n.value == 0
        {
            sink.error(
                Code::OutOfRange,
                n.loc,
                "maxConcurrentReinstalls must be at least 1",
            );
        }
        for m in spec.members.iter().flatten() {
            if let Some(msg) = service_name_problem(&m.value) {
                sink.error(Code::ServiceNameInvalid, m.loc, msg);
                continue;
            }
            if !servers.contains_key(&m.value) && spec.template.is_none() {
                sink.error(
                    Code::UnknownMember,
                    m.loc,
                    format!(
                        "`{}` has no Server manifest and ServerGroup `{gname}` has no template",
                        m.value
                    ),
                );
                continue;
            }
            g.members.insert(m.value.clone());
        }
        if let Some(sel) = &spec.selector {
            if let Some(tags) = &sel.match_tags {
                let problem = if spec.template.is_none() {
                    Some(
                        "a `matchTags` selector needs a `template`: its servers have no Server manifest",
                    )
                } else if tags.0.is_empty() {
                    Some("`matchTags` names no tag")
                } else if sel.match_labels.is_some() {
                    Some("`matchTags` and `matchLabels` in one selector: use two groups")
                } else {
                    None
                };
                match problem {
                    Some(p) => sink.error(Code::TagSelectorInvalid, sel.loc, p),
                    None => {
                        // The group's template built once, for a name no server has, and
                        // handed to the pipeline, which names a copy after each live server
                        // whose tags match.
                        let prototype = format!("tag-selected-{}.invalid", tag_groups.len());
                        tag_groups.insert(
                            prototype.clone(),
                            (
                                gname.clone(),
                                tags.0
                                    .iter()
                                    .map(|(k, v)| (k.value.clone(), v.value.clone()))
                                    .collect::<BTreeMap<String, String>>(),
                            ),
                        );
                        memberships
                            .entry(prototype)
                            .or_default()
                            .push(gname.clone());
                    }
                }
            }
            if let Some(labels_wanted) = &sel.match_labels {
                let mut matched = 0;
                for (sname, s) in &servers {
                    let labels = s.doc.metadata.labels.as_ref();
                    let all = labels_wanted.0.iter().all(|(k, v)| {
                        labels.is_some_and(|l| {
                            l.0.iter()
                                .any(|(lk, lv)| lk.value == k.value && lv.value == v.value)
                        })
                    });
                    if all {
                        matched += 1;
                        g.members.insert(sname.clone());
                    }
                }
                if matched == 0 {
                    let want: Vec<String> = labels_wanted
                        .0
                        .iter()
                        .map(|(k, v)| format!("{}={}", k.value, v.value))
                        .collect();
                    sink.error(
                        Code::SelectorEmpty,
                        sel.loc,
                        format!(
                            "selector of ServerGroup `{gname}` ({}) matches no Server",
                            want.join(", ")
                        ),
                    );
                }
            } else if sel.match_tags.is_none() {
                sink.error(
                    Code::TagSelectorInvalid,
                    sel.loc,
                    "a selector needs `matchLabels` or `matchTags`",
                );
            }
        }
        for m in &g.members {
            memberships
                .entry(m.clone())
                .or_default()
                .push(gname.clone());
        }
    }

    let mut all_servers: BTreeSet<String> = servers.keys().cloned().collect();
    all_servers.extend(memberships.keys().cloned());

    let classified_at = started.elapsed();
    // Per-server work (merge, convert, validate, resolve, build, hash) is independent from
    // server to server: spread it over the cores like parsing.
    let names: Vec<String> = all_servers.into_iter().collect();
    let cx = Shared {
        servers: &servers,
        groups: &groups,
        memberships: &memberships,
        windows: &windows,
        files: &files,
    };
    let results = parallel(names, |chunk| server_chunk(&chunk, &cx));
    let built_at = started.elapsed();
    tracing::debug!(
        files = paths_found.len(),
        discover_ms = discovered.as_secs_f64() * 1e3,
        parse_ms = (parsed_at - discovered).as_secs_f64() * 1e3,
        classify_ms = (classified_at - parsed_at).as_secs_f64() * 1e3,
        build_ms = (built_at - classified_at).as_secs_f64() * 1e3,
        "manifests loaded"
    );
    let mut desired_servers = BTreeMap::new();
    for (built, diags, stopped) in results {
        stopped_early |= stopped;
        sink.extend(diags);
        desired_servers.extend(built.into_iter().map(|s| (s.name.clone(), s)));
    }
    let mut tag_selectors = BTreeMap::new();
    for (prototype, (group, match_tags)) in tag_groups {
        if let Some(server) = desired_servers.remove(&prototype) {
            tag_selectors.insert(
                group,
                crate::model::TagSelector {
                    match_tags,
                    prototype: server,
                },
            );
        }
    }

    let diags = Diagnostics::new(sink.diags).stopped_early(stopped_early);
    if diags.error_count() > 0 {
        return Err(diags);
    }
    let desired = Desired {
        servers: desired_servers,
        groups: groups
            .into_iter()
            .map(|(name, g)| {
                let group = DesiredGroup {
                    name: name.clone(),
                    origin: origin(&files, g.root),
                    members: g.members,
                    max_concurrent_reinstalls: g
                        .doc
                        .spec
                        .max_concurrent_reinstalls
                        .map(|n| n.value),
                };
                (name, group)
            })
            .collect(),
        windows,
        tag_selectors,
    };
    Ok(Loaded {
        desired,
        warnings: diags,
    })
}

/// A document converted to its kind.
enum Converted {
    Server(ServerDoc),
    Group(Box<GroupDoc>),
    Window(Sp<String>, MaintenanceWindow),
}

/// Removes and returns a top-level entry of a mapping (moving a big subtree out instead of
/// cloning it).
fn take_entry(node: &mut Node, key: &str) -> Option<Node> {
    let Value::Map(entries) = &mut node.value else {
        return None;
    };
    let i = entries.iter().position(|(k, _)| k.as_str() == Some(key))?;
    Some(entries.remove(i).1)
}

/// A document converted to its kind, `None` when it has errors (reported). `stopped` is set
/// when those errors kept its later checks from running.
fn convert(doc: Node, sink: &mut Sink, stopped: &mut bool) -> Option<Converted> {
    let mut fully_checked = false;
    let converted = convert_doc(doc, sink, &mut fully_checked);
    // A document that fails is left half checked (a server's spec is not looked at when its
    // metadata is wrong), unless it says every check of it ran.
    if converted.is_none() && !fully_checked {
        *stopped = true;
    }
    converted
}

fn convert_doc(mut doc: Node, sink: &mut Sink, fully_checked: &mut bool) -> Option<Converted> {
    if !matches!(doc.value, Value::Map(_)) {
        sink.error(
            Code::NotAMapping,
            doc.anchor(),
            format!(
                "a manifest document must be a mapping, not {}",
                doc.type_name()
            ),
        );
        return None;
    }
    let Some(kind_node) = doc.get("kind") else {
        sink.error_hint(
            Code::MissingField,
            doc.loc,
            "missing field `kind`",
            "add `kind: Server`, `kind: ServerGroup` or `kind: MaintenanceWindow`",
        );
        return None;
    };
    let Some(kind) = kind_node.as_str() else {
        sink.error(
            Code::WrongType,
            kind_node.loc,
            format!("`kind` must be a string, found {}", kind_node.type_name()),
        );
        return None;
    };
    let root = doc.loc;
    match kind {
        KindServer::VALUE => {
            let spec = take_entry(&mut doc, "spec");
            let mut d = RawServerDoc::from_node(&doc, sink)?;
            d.spec = spec.filter(|s| !s.is_null()).map(NodeOf::new);
            if let Some(msg) = service_name_problem(&d.metadata.name.value) {
                sink.error(Code::ServiceNameInvalid, d.metadata.name.loc, msg);
                return None;
            }
            Some(Converted::Server(ServerDoc { doc: d, root }))
        }
        KindServerGroup::VALUE => {
            let d = RawGroupDoc::from_node(&doc, sink)?;
            Some(Converted::Group(Box::new(GroupDoc {
                doc: d,
                root,
                members: BTreeSet::new(),
            })))
        }
        KindMaintenanceWindow::VALUE => {
            let d = RawWindowDoc::from_node(&doc, sink)?;
            // A window's own checks all run, whichever of them fails.
            *fully_checked = true;
            let w = window(&d, root, sink)?;
            Some(Converted::Window(d.metadata.name, w))
        }
        other => {
            let hint = format!("use one of: {}", KINDS.join(", "));
            sink.error_hint(
                Code::UnknownKind,
                kind_node.loc,
                format!("unknown kind `{other}`"),
                hint,
            );
            None
        }
    }
}

fn register(
    doc: Converted,
    sink: &mut Sink,
    servers: &mut BTreeMap<String, ServerDoc>,
    groups: &mut BTreeMap<String, GroupDoc>,
    windows: &mut BTreeMap<String, MaintenanceWindow>,
) {
    match doc {
        Converted::Server(s) => {
            let name = &s.doc.metadata.name;
            if let Some(first) = servers.get(&name.value) {
                let at = origin(sink.files, first.doc.metadata.name.loc);
                sink.error(
                    Code::DuplicateServer,
                    name.loc,
                    format!("server `{}` is already defined at {at}", name.value),
                );
                return;
            }
            servers.insert(name.value.clone(), s);
        }
        Converted::Group(g) => {
            let name = &g.doc.metadata.name;
            if let Some(first) = groups.get(&name.value) {
                let at = origin(sink.files, first.doc.metadata.name.loc);
                sink.error(
                    Code::DuplicateName,
                    name.loc,
                    format!("ServerGroup `{}` is already defined at {at}", name.value),
                );
                return;
            }
            groups.insert(name.value.clone(), *g);
        }
        Converted::Window(name, w) => {
            if let Some(first) = windows.get(&name.value) {
                let msg = format!(
                    "MaintenanceWindow `{}` is already defined at {}",
                    name.value, first.origin
                );
                sink.error(Code::DuplicateName, name.loc, msg);
                return;
            }
            windows.insert(name.value, w);
        }
    }
}

/// Runs `f` over contiguous chunks of `items` on up to as many threads as the machine has
/// (one thread for small inputs), returning the results in chunk order.
fn parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(Vec<T>) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len() / 256 + 1);
    if threads <= 1 {
        return vec![f(items)];
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut it = items.into_iter();
    loop {
        let c: Vec<T> = it.by_ref().take(per).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks.into_iter().map(|c| s.spawn(move || f(c))).collect();
        // A worker panic is a bug in a rule; propagate it rather than lose diagnostics silently.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn window(d: &RawWindowDoc, root: Loc, sink: &mut Sink) -> Option<MaintenanceWindow> {
    let before = sink.error_count();
    let s = &d.spec;
    let sched = s.schedule.value.trim();
    let fields = sched.split_whitespace().count();
    let cron = if !sched.starts_with('@') && fields != 5 {
        sink.error(
            Code::CronInvalid,
            s.schedule.loc,
            format!("`{sched}` has {fields} fields, a cron schedule has 5"),
        );
        None
    } else {
        match sched.parse::<croner::Cron>() {
            Ok(cron) => Some(cron),
            Err(e) => {
                sink.error(
                    Code::CronInvalid,
                    s.schedule.loc,
                    format!("`{sched}` is not a cron schedule: {e}"),
                );
                None
            }
        }
    };
    let duration_secs = match humantime::parse_duration(s.duration.value.trim()) {
        Ok(dur) if dur.as_secs() == 0 => {
            sink.error(
                Code::DurationInvalid,
                s.duration.loc,
                "a window must last more than 0 seconds",
            );
            0
        }
        Ok(dur) if dur.as_secs() > 7 * 24 * 3600 => {
            sink.error(
                Code::DurationInvalid,
                s.duration.loc,
                "a window may last at most 7 days",
            );
            0
        }
        Ok(dur) => dur.as_secs(),
        Err(e) => {
            sink.error(
                Code::DurationInvalid,
                s.duration.loc,
                format!("`{}` is not a duration: {e}", s.duration.value),
            );
            0
        }
    };
    let tz = s
        .time_zone
        .as_ref()
        .map(|t| t.value.clone())
        .unwrap_or_else(|| "UTC".to_owned());
    let zone = jiff::tz::TimeZone::get(&tz);
    if zone.is_err() {
        let loc = s.time_zone.as_ref().map(|t| t.loc).unwrap_or(s.loc);
        sink.error(
            Code::TimeZoneInvalid,
            loc,
            format!("`{tz}` is not a known time zone"),
        );
    }
    if let Some(cron) = &cron {
        // Which days exist does not depend on the zone; the exact opening time does, and an
        // unknown zone is reported above.
        let zone = zone.unwrap_or(jiff::tz::TimeZone::UTC);
        if first_opening(cron, &zone).is_none() {
            let message = format!(
                "`{sched}` never opens: not once in the {SCHEDULE_HORIZON_YEARS} years from \
                 {SCHEDULE_REFERENCE}"
            );
            sink.error(Code::CronNeverFires, s.schedule.loc, message);
        }
    }
    if sink.error_count() > before {
        return None;
    }
    Some(MaintenanceWindow {
        name: d.metadata.name.value.clone(),
        origin: origin(sink.files, root),
        schedule: sched.to_owned(),
        duration_secs,
        time_zone: tz,
    })
}

/// Schedules are checked from this date, not from today: validation must answer the same on
/// every machine and every day. Cron fields repeat with the calendar, so a schedule that opens
/// at all opens within a few years of any date (29 February: every 4 to 8 years).
const SCHEDULE_REFERENCE: jiff::civil::Date = jiff::civil::date(2025, 1, 1);
const SCHEDULE_HORIZON_YEARS: i16 = 10;

/// When `cron` first opens in the horizon, `None` when it does not. Bounded: at most one
/// check per day of the horizon, then croner walks only up to a day known to match — croner
/// alone would walk to the year 5000 before giving up on `0 0 30 2 *`, hundreds of
/// milliseconds per window. (A time that falls into a daylight-saving gap still opens: croner
/// moves it past the gap.)
fn first_opening(cron: &croner::Cron, zone: &jiff::tz::TimeZone) -> Option<jiff::Zoned> {
    let p = &cron.pattern;
    let end = SCHEDULE_REFERENCE
        .checked_add(jiff::Span::new().years(SCHEDULE_HORIZON_YEARS))
        .ok()?;
    let mut day = SCHEDULE_REFERENCE;
    loop {
        if day >= end {
            return None;
        }
        let month = day.month() as u32;
        if !p.month_match(month).unwrap_or(false) {
            day = day
                .first_of_month()
                .checked_add(jiff::Span::new().months(1))
                .ok()?;
            continue;
        }
        let weekday =
            croner::Weekday::from_days_from_sunday(day.weekday().to_sunday_zero_offset() as u32);
        let year = i32::from(day.year());
        if p.year_match(year).unwrap_or(false)
            && p.day_match(year, month, day.day() as u32, weekday)
                .unwrap_or(false)
        {
            break;
        }
        day = day.tomorrow().ok()?;
    }
    let start = SCHEDULE_REFERENCE.to_zoned(zone.clone()).ok()?;
    cron.find_next_occurrence(&start, true)
        .ok()
        .filter(|at| at.date() < end)
}

/// What every per-server worker reads.
struct Shared<'a> {
    servers: &'a BTreeMap<String, ServerDoc>,
    groups: &'a BTreeMap<String, GroupDoc>,
    memberships: &'a BTreeMap<String, Vec<String>>,
    windows: &'a BTreeMap<String, MaintenanceWindow>,
    files: &'a [SourceFile],
}

/// The servers built, the diagnostics, and whether some server's later checks were skipped.
fn server_chunk(
    names: &[String],
    cx: &Shared,
) -> (Vec<DesiredServer>, Vec<super::diag::Diag>, bool) {
    let mut sink = Sink::new(cx.files);
    let mut resolver = Resolver::new();
    let mut stopped = false;
    let out = names
        .iter()
        .filter_map(|n| {
            let mut fully_checked = false;
            let built = one_server(n.clone(), cx, &mut sink, &mut resolver, &mut fully_checked);
            stopped |= built.is_none() && !fully_checked;
            built
        })
        .collect();
    (out, sink.diags, stopped)
}

/// Merges, converts, validates and builds one server. `None` when it has errors (reported);
/// `fully_checked` is set when they came from the last step, so that no check was skipped.
fn one_server(
    name: String,
    cx: &Shared,
    sink: &mut Sink,
    resolver: &mut Resolver,
    fully_checked: &mut bool,
) -> Option<DesiredServer> {
    let (servers, groups, memberships, windows, files) =
        (cx.servers, cx.groups, cx.memberships, cx.windows, cx.files);
    let own = servers.get(&name);
    let in_groups = memberships.get(&name).cloned().unwrap_or_default();
    let templated: Vec<&GroupDoc> = in_groups
        .iter()
        .filter_map(|g| groups.get(g))
        .filter(|g| g.doc.spec.template.is_some())
        .collect();
    if templated.len() > 1 {
        let at = own
            .map(|s| s.doc.metadata.name.loc)
            .unwrap_or(templated[1].doc.metadata.name.loc);
        let names: Vec<&str> = templated
            .iter()
            .map(|g| g.doc.metadata.name.value.as_str())
            .collect();
        sink.error(
            Code::MultipleTemplates,
            at,
            format!(
                "`{name}` is in several ServerGroups with a template: {}",
                names.join(", ")
            ),
        );
        return None;
    }
    let template = templated
        .first()
        .and_then(|g| g.doc.spec.template.as_ref())
        .map(|t| &t.0);
    let own_spec = own.and_then(|s| s.doc.spec.as_ref()).map(|s| &s.0);
    let merged = match (template, own_spec) {
        (Some(t), Some(o)) => Some(merge(t, o)),
        (Some(t), None) => Some(t.clone()),
        (None, Some(o)) => Some(o.clone()),
        (None, None) => None,
    };
    let before = sink.error_count();
    let spec = match &merged {
        Some(node) => RawServerSpec::from_node(node, sink)?,
        None => RawServerSpec {
            install: None,
            boot: None,
            settings: None,
            policy: None,
            loc: own.map(|s| s.root).unwrap_or_default(),
        },
    };
    if sink.error_count() > before {
        // Rules on a half-converted spec would only add noise to the real error.
        return None;
    }
    validate::server_spec(&spec, sink);
    if let Some(p) = &spec.policy
        && let Some(w) = &p.maintenance_window
        && !windows.contains_key(&w.value)
    {
        let known: Vec<&str> = windows.keys().map(String::as_str).collect();
        let hint = if known.is_empty() {
            "define a MaintenanceWindow with this name".to_owned()
        } else {
            format!("known windows: {}", known.join(", "))
        };
        sink.error_hint(
            Code::UnknownWindow,
            w.loc,
            format!("no MaintenanceWindow named `{}`", w.value),
            hint,
        );
    }
    if sink.error_count() > before {
        return None;
    }
    let built = build::server(&spec, resolver, sink);
    if sink.error_count() > before {
        *fully_checked = true;
        return None;
    }
    let (doc_origin, labels) = match own {
        Some(s) => (
            origin(files, s.root),
            s.doc
                .metadata
                .labels
                .as_ref()
                .map(|l| {
                    l.0.iter()
                        .map(|(k, v)| (k.value.clone(), v.value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        None => (
            templated
                .first()
                .map(|g| origin(files, g.root))
                .unwrap_or_default(),
            BTreeMap::new(),
        ),
    };
    let mut field_origins = BTreeMap::new();
    if let Some(s) = own {
        field_origins.insert(
            "metadata.name".to_owned(),
            origin(files, s.doc.metadata.name.loc),
        );
    }
    if let Some(node) = &merged {
        build::field_origins("spec", node, files, &mut field_origins);
    }
    Some(DesiredServer {
        name,
        labels,
        groups: in_groups,
        origin: doc_origin,
        field_origins,
        install: built.install,
        boot: built.boot,
        settings: built.settings,
        policy: built.policy,
        selected_by_tags: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    fn node(y: &str) -> Node {
        parse_documents(y, 0).unwrap().remove(0)
    }

    #[test]
    fn merge_server_wins_maps_merge_lists_replace_null_removes() {
        let t = node(
            "install:\n  os: debian12_64\n  customizations: {sshKey: k, hostname: t}\n  storage: {keepDiskGroups: [2, 3]}\nboot: {mode: disk}\n",
        );
        let s = node(
            "install:\n  customizations: {hostname: web-01}\n  storage: {keepDiskGroups: [4]}\nboot: ~\n",
        );
        let m = merge(&t, &s);
        let c = m.get("install").unwrap().get("customizations").unwrap();
        assert_eq!(c.get("hostname").unwrap().as_str(), Some("web-01"));
        assert_eq!(c.get("sshKey").unwrap().as_str(), Some("k"));
        assert_eq!(
            m.get("install").unwrap().get("os").unwrap().as_str(),
            Some("debian12_64")
        );
        let keep = m
            .get("install")
            .unwrap()
            .get("storage")
            .unwrap()
            .get("keepDiskGroups")
            .unwrap();
        assert!(matches!(&keep.value, Value::Seq(v) if v.len() == 1));
        assert!(
            m.get("boot").is_none(),
            "an explicit null removes the template's value"
        );
        // Values keep the location they were written at.
        assert_eq!(c.get("sshKey").unwrap().loc.line, 3);
        assert_eq!(c.get("hostname").unwrap().loc.line, 2);
    }

    #[test]
    fn service_names() {
        for ok in ["ns3000001.ip-51-68-1.eu", "sd-123456", "ks123.kimsufi.com"] {
            assert!(service_name_problem(ok).is_none(), "{ok}");
        }
        for bad in ["", "NS1.ip-1-2-3.eu", "a..b", "-a", "a b", "web_01"] {
            assert!(service_name_problem(bad).is_some(), "{bad}");
        }
    }

    fn opens(schedule: &str, zone: &str) -> Option<String> {
        let cron: croner::Cron = schedule.parse().unwrap();
        let zone = jiff::tz::TimeZone::get(zone).unwrap();
        first_opening(&cron, &zone).map(|z| z.to_string())
    }

    #[test]
    fn schedules_that_never_open_are_refused() {
        // Each of these costs croner alone a walk to the year 5000; `first_opening` stops at
        // the horizon by construction (one check per day, months skipped whole).
        for never in [
            "0 0 30 2 *",
            "0 0 31 4 *",
            "30 2 31 2,4,6,9,11 *",
            "*/5 * 31 2,4,6,9,11 *",
            "* * 30,31 2 *",
            // The fifth Friday of February: not before 2036. Practically never.
            "0 0 * 2 5#5",
        ] {
            assert_eq!(opens(never, "Europe/Paris"), None, "{never}");
        }
    }

    #[test]
    fn schedules_that_open_give_their_first_opening() {
        let at = |s, z| opens(s, z).unwrap_or_else(|| panic!("{s} never opens"));
        assert_eq!(
            at("0 2 * * 1-5", "Europe/Paris"),
            "2025-01-01T02:00:00+01:00[Europe/Paris]"
        );
        // Leap days only: 2028 is within the horizon.
        assert_eq!(at("0 0 29 2 *", "UTC"), "2028-02-29T00:00:00+00:00[UTC]");
        assert_eq!(at("0 3 L 2 *", "UTC"), "2025-02-28T03:00:00+00:00[UTC]");
        assert_eq!(at("@yearly", "UTC"), "2025-01-01T00:00:00+00:00[UTC]");
        // Day of month OR day of week (cron's rule): every Monday of February.
        assert_eq!(at("0 0 30 2 1", "UTC"), "2025-02-03T00:00:00+00:00[UTC]");
        // 02:30 on the last Sunday of March does not exist in Paris; croner opens at 03:00.
        assert_eq!(
            at("30 2 * 3 0L", "Europe/Paris"),
            "2025-03-30T03:00:00+02:00[Europe/Paris]"
        );
    }
}
