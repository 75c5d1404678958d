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
    FromNode, KindMaintenanceWindow, KindServer, KindServerGroup, RawGroupDoc, RawServerDoc, RawServerSpec,
    RawWindowDoc, Sink, SourceFile,
};
use super::{source, validate};
use crate::model::{DesiredGroup, DesiredServer, MaintenanceWindow, Origin};
use crate::model::Desired;

/// A successful load: the desired state, and the warnings that did not block it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub desired: Desired,
    pub warnings: Diagnostics,
}

const KINDS: &[&str] = &[KindServer::VALUE, KindServerGroup::VALUE, KindMaintenanceWindow::VALUE];

fn origin(files: &[SourceFile], loc: Loc) -> Origin {
    Origin {
        file: files.get(loc.file as usize).map(|f| f.path.clone()).unwrap_or_default(),
        line: loc.line,
        column: loc.column,
    }
}

/// OVHcloud service names of dedicated servers: `ns3012345.ip-51-68-1.eu`, `sd-123456`, …
/// Lowercase DNS-like labels.
pub fn service_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 253 {
        return Some(format!("service name `{name}` must have 1 to 253 characters"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!("service name `{name}` has uppercase letters (service names are lowercase)"));
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
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
            Node { value: Value::Map(out), loc: over.loc, key_loc: over.key_loc }
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
    let mut early = Vec::new();
    let paths_found = source::discover(paths, &mut early);
    let parsed = source::parse_all(&paths_found);

    let files: Vec<SourceFile> = paths_found
        .iter()
        .zip(&parsed)
        .map(|(p, parsed)| SourceFile { path: p.clone(), source: parsed.source.clone() })
        .collect();
    let mut sink = Sink::new(&files);
    sink.diags.extend(early);

    let mut servers: BTreeMap<String, ServerDoc> = BTreeMap::new();
    let mut groups: BTreeMap<String, GroupDoc> = BTreeMap::new();
    let mut windows: BTreeMap<String, MaintenanceWindow> = BTreeMap::new();

    for p in parsed {
        if let Some(d) = p.diag {
            sink.push(d);
        }
        for doc in p.docs {
            classify(doc, &mut sink, &mut servers, &mut groups, &mut windows);
        }
    }

    // Group membership: explicit members and label selectors.
    let mut memberships: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (gname, g) in groups.iter_mut() {
        let spec = &g.doc.spec;
        if spec.members.is_none() && spec.selector.is_none() {
            sink.error(Code::GroupEmpty, g.doc.metadata.name.loc, format!("ServerGroup `{gname}` has neither members nor a selector"));
        }
        if let Some(t) = &spec.template {
            // Structural problems of a template are reported even if no server uses it.
            let _ = RawServerSpec::from_node(&t.0, &mut sink);
        }
        if let Some(n) = &spec.max_concurrent_reinstalls
            && n.value == 0
        {
            sink.error(Code::OutOfRange, n.loc, "maxConcurrentReinstalls must be at least 1");
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
                    format!("`{}` has no Server manifest and ServerGroup `{gname}` has no template", m.value),
                );
                continue;
            }
            g.members.insert(m.value.clone());
        }
        if let Some(sel) = &spec.selector {
            let mut matched = 0;
            for (sname, s) in &servers {
                let labels = s.doc.metadata.labels.as_ref();
                let all = sel.match_labels.0.iter().all(|(k, v)| {
                    labels.is_some_and(|l| l.0.iter().any(|(lk, lv)| lk.value == k.value && lv.value == v.value))
                });
                if all {
                    matched += 1;
                    g.members.insert(sname.clone());
                }
            }
            if matched == 0 {
                let want: Vec<String> = sel.match_labels.0.iter().map(|(k, v)| format!("{}={}", k.value, v.value)).collect();
                sink.error(
                    Code::SelectorEmpty,
                    sel.loc,
                    format!("selector of ServerGroup `{gname}` ({}) matches no Server", want.join(", ")),
                );
            }
        }
        for m in &g.members {
            memberships.entry(m.clone()).or_default().push(gname.clone());
        }
    }

    let mut all_servers: BTreeSet<String> = servers.keys().cloned().collect();
    all_servers.extend(memberships.keys().cloned());

    let mut resolver = Resolver::new();
    let mut desired_servers = BTreeMap::new();
    for name in all_servers {
        let own = servers.get(&name);
        let in_groups = memberships.get(&name).cloned().unwrap_or_default();
        let templated: Vec<&GroupDoc> =
            in_groups.iter().filter_map(|g| groups.get(g)).filter(|g| g.doc.spec.template.is_some()).collect();
        if templated.len() > 1 {
            let at = own.map(|s| s.doc.metadata.name.loc).unwrap_or(templated[1].doc.metadata.name.loc);
            let names: Vec<&str> = templated.iter().map(|g| g.doc.metadata.name.value.as_str()).collect();
            sink.error(
                Code::MultipleTemplates,
                at,
                format!("`{name}` is in several ServerGroups with a template: {}", names.join(", ")),
            );
            continue;
        }
        let template = templated.first().and_then(|g| g.doc.spec.template.as_ref()).map(|t| &t.0);
        let own_spec = own.and_then(|s| s.doc.spec.as_ref()).map(|s| &s.0);
        let merged = match (template, own_spec) {
            (Some(t), Some(o)) => Some(merge(t, o)),
            (Some(t), None) => Some(t.clone()),
            (None, Some(o)) => Some(o.clone()),
            (None, None) => None,
        };
        let before = sink.error_count();
        let spec = match &merged {
            Some(node) => match RawServerSpec::from_node(node, &mut sink) {
                Some(s) => s,
                None => continue,
            },
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
            continue;
        }
        validate::server_spec(&spec, &mut sink);
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
            sink.error_hint(Code::UnknownWindow, w.loc, format!("no MaintenanceWindow named `{}`", w.value), hint);
        }
        if sink.error_count() > before {
            continue;
        }
        let built = build::server(&spec, &mut resolver, &mut sink);
        if sink.error_count() > before {
            continue;
        }
        let (doc_origin, labels) = match own {
            Some(s) => (
                origin(&files, s.root),
                s.doc
                    .metadata
                    .labels
                    .as_ref()
                    .map(|l| l.0.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect())
                    .unwrap_or_default(),
            ),
            None => (templated.first().map(|g| origin(&files, g.root)).unwrap_or_default(), BTreeMap::new()),
        };
        let mut field_origins = BTreeMap::new();
        if let Some(s) = own {
            field_origins.insert("metadata.name".to_owned(), origin(&files, s.doc.metadata.name.loc));
        }
        if let Some(node) = &merged {
            build::field_origins("spec", node, &files, &mut field_origins);
        }
        desired_servers.insert(
            name.clone(),
            DesiredServer {
                name,
                labels,
                groups: in_groups,
                origin: doc_origin,
                field_origins,
                install: built.install,
                boot: built.boot,
                settings: built.settings,
                policy: built.policy,
            },
        );
    }

    let diags = Diagnostics::new(sink.diags);
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
                    max_concurrent_reinstalls: g.doc.spec.max_concurrent_reinstalls.map(|n| n.value),
                };
                (name, group)
            })
            .collect(),
        windows,
    };
    Ok(Loaded { desired, warnings: diags })
}

fn classify(
    doc: Node,
    sink: &mut Sink,
    servers: &mut BTreeMap<String, ServerDoc>,
    groups: &mut BTreeMap<String, GroupDoc>,
    windows: &mut BTreeMap<String, MaintenanceWindow>,
) {
    if !matches!(doc.value, Value::Map(_)) {
        sink.error(Code::NotAMapping, doc.anchor(), format!("a manifest document must be a mapping, not {}", doc.type_name()));
        return;
    }
    let Some(kind_node) = doc.get("kind") else {
        sink.error_hint(
            Code::MissingField,
            doc.loc,
            "missing field `kind`",
            "add `kind: Server`, `kind: ServerGroup` or `kind: MaintenanceWindow`",
        );
        return;
    };
    let Some(kind) = kind_node.as_str() else {
        sink.error(Code::WrongType, kind_node.loc, format!("`kind` must be a string, found {}", kind_node.type_name()));
        return;
    };
    let root = doc.loc;
    match kind {
        KindServer::VALUE => {
            let Some(d) = RawServerDoc::from_node(&doc, sink) else { return };
            let name = &d.metadata.name;
            if let Some(msg) = service_name_problem(&name.value) {
                sink.error(Code::ServiceNameInvalid, name.loc, msg);
                return;
            }
            if let Some(first) = servers.get(&name.value) {
                let at = origin(sink.files, first.doc.metadata.name.loc);
                sink.error_hint(
                    Code::DuplicateServer,
                    name.loc,
                    format!("server `{}` is already defined at {at}", name.value),
                    Code::DuplicateServer.default_hint(),
                );
                return;
            }
            servers.insert(name.value.clone(), ServerDoc { doc: d, root });
        }
        KindServerGroup::VALUE => {
            let Some(d) = RawGroupDoc::from_node(&doc, sink) else { return };
            let name = &d.metadata.name;
            if let Some(first) = groups.get(&name.value) {
                let at = origin(sink.files, first.doc.metadata.name.loc);
                sink.error(Code::DuplicateName, name.loc, format!("ServerGroup `{}` is already defined at {at}", name.value));
                return;
            }
            groups.insert(name.value.clone(), GroupDoc { doc: d, root, members: BTreeSet::new() });
        }
        KindMaintenanceWindow::VALUE => {
            let Some(d) = RawWindowDoc::from_node(&doc, sink) else { return };
            let name = &d.metadata.name;
            if let Some(first) = windows.get(&name.value) {
                let msg = format!("MaintenanceWindow `{}` is already defined at {}", name.value, first.origin);
                sink.error(Code::DuplicateName, name.loc, msg);
                return;
            }
            if let Some(w) = window(&d, root, sink) {
                windows.insert(name.value.clone(), w);
            }
        }
        other => {
            let hint = format!("use one of: {}", KINDS.join(", "));
            sink.error_hint(Code::UnknownKind, kind_node.loc, format!("unknown kind `{other}`"), hint);
        }
    }
}

fn window(d: &RawWindowDoc, root: Loc, sink: &mut Sink) -> Option<MaintenanceWindow> {
    let before = sink.error_count();
    let s = &d.spec;
    let sched = s.schedule.value.trim();
    let fields = sched.split_whitespace().count();
    if !sched.starts_with('@') && fields != 5 {
        sink.error(Code::CronInvalid, s.schedule.loc, format!("`{sched}` has {fields} fields, a cron schedule has 5"));
    } else if let Err(e) = sched.parse::<croner::Cron>() {
        sink.error(Code::CronInvalid, s.schedule.loc, format!("`{sched}` is not a cron schedule: {e}"));
    }
    let duration_secs = match humantime::parse_duration(s.duration.value.trim()) {
        Ok(dur) if dur.as_secs() == 0 => {
            sink.error(Code::DurationInvalid, s.duration.loc, "a window must last more than 0 seconds");
            0
        }
        Ok(dur) if dur.as_secs() > 7 * 24 * 3600 => {
            sink.error(Code::DurationInvalid, s.duration.loc, "a window may last at most 7 days");
            0
        }
        Ok(dur) => dur.as_secs(),
        Err(e) => {
            sink.error(Code::DurationInvalid, s.duration.loc, format!("`{}` is not a duration: {e}", s.duration.value));
            0
        }
    };
    let tz = s.time_zone.as_ref().map(|t| t.value.clone()).unwrap_or_else(|| "UTC".to_owned());
    if jiff::tz::TimeZone::get(&tz).is_err() {
        let loc = s.time_zone.as_ref().map(|t| t.loc).unwrap_or(s.loc);
        sink.error(Code::TimeZoneInvalid, loc, format!("`{tz}` is not a known time zone"));
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
