//! The plan pipeline: the one async function that `plan`, `demo` — and later apply and the
//! daemon — call to go from a desired state to a linted plan.
//!
//! ```text
//! records ◀─ RecordStore                     servers_tagged ─▶ names with ovhform's tag
//!                                               (+ the account's listing when the API refused
//!                                                the `iamTags` filter: reused below)
//! servers_to_observe(desired, records, tagged, targets) ─▶ observe_fleet_from ─▶ Observed
//! merge_records(store, tags) ─▶ Records ─▶ plan::needs_detail ─▶ servers to read in detail
//! facts cache ─seed─▶ client caches ─▶ observe_detail (+ templates) ─▶ client caches ─save─▶ facts cache
//! plan::plan ─▶ plan::needs_interventions ─▶ observe_interventions ─▶ plan::plan again (only
//!     when a reinstall that could run awaits them) ─▶ plan::lint ─▶ Planned { plan, desired,
//!     observed, records, coverage, stats }
//! ```
//!
//! Owns: the order of those steps, the set of servers to observe ([`servers_to_observe`]), the
//! per-run request meter ([`RunStats`]), which servers were planned without detail
//! ([`Coverage`]), the progress events of a run ([`progress`]) and the facts cache around the
//! detail read. Must not touch: manifests and their diagnostics (loaded at the CLI edge),
//! planning rules (`plan/`), HTTP details (`ovh/`), rendering (`cli/`), writing records.
//!
//! A run is read-only towards OVHcloud and the record store. The one thing it may write is the
//! facts cache — and a failure to do so is logged, never a failed run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{Desired, Observed, Records};
use crate::observe;
use crate::ovh::{self, Meter};
use crate::plan::{self, Plan, PlanInput};
use crate::state::{self, FactsCache, RecordStore};

mod error;
mod facts;
pub mod progress;

pub use error::{FleetStep, PipelineError};
pub use progress::{
    DETAIL_CALLS_PER_SERVER, Estimate, NoProgress, PipelineEvent, ProgressSink, estimate_detail,
    eta_left,
};

/// Everything a run needs besides the desired state.
pub struct Context<'a> {
    /// The client; the run counts its own requests through [`ovh::Client::metered`], so the
    /// client may be shared with other runs.
    pub client: &'a ovh::Client,
    pub store: &'a dyn RecordStore,
    /// Hardware and catalog facts kept between runs.
    pub facts: &'a dyn FactsCache,
    /// How long a cached fact is used; zero neither reads nor writes the facts cache.
    pub facts_ttl: Duration,
    pub progress: &'a dyn ProgressSink,
    /// `now` (plan time and facts expiry), targets, revision, apply command.
    pub input: PlanInput,
}

/// What a run produced.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub desired: Desired,
    pub observed: Observed,
    /// The records the plan used: the store's merged with those read back from IAM tags.
    pub records: Records,
    pub coverage: Coverage,
    pub stats: RunStats,
}

/// Which planned servers rest on a detail read, and which on the fleet listing alone (their
/// `adopt` or `noop` is re-checked by apply — running tasks, install status — before it acts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Planned, live servers whose boots, tasks, install status, hardware and compatible
    /// templates were read.
    pub detail_read: BTreeSet<String>,
    /// Planned, live servers planned from the listing only.
    pub not_read: BTreeSet<String>,
}

/// What one run cost, counted by its own meter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Every HTTP request of the run (retries, `/auth/time` and token requests included).
    pub calls: u64,
    /// Requests per route template, e.g. `"GET /dedicated/server/{serviceName}/task"`.
    pub routes: BTreeMap<String, u64>,
    /// Requests up to the end of the fleet pass (tagged listing included).
    pub fleet_calls: u64,
    /// Servers read in detail.
    pub detail_servers: usize,
    /// Servers whose planned interventions were read (see `plan::needs_interventions`).
    pub intervention_servers: usize,
    /// Hardware, compatible-template and installation-template answers the detail read took
    /// from a cache (the persisted facts, or the client's memory) instead of the API.
    pub facts_cached: usize,
    /// Wall time of the run (tokio clock).
    pub elapsed: Duration,
}

/// The servers a run observes: every server with a manifest or a stored record, and every
/// server carrying ovhform's record tag (its manifest may be gone: it becomes `forget`, even
/// without a state directory), restricted to `targets` when given.
pub fn servers_to_observe(
    desired: &Desired,
    stored: &Records,
    tagged: &BTreeSet<String>,
    targets: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = desired.servers.keys().cloned().collect();
    names.extend(stored.installs.keys().cloned());
    names.extend(stored.applied.keys().cloned());
    names.extend(tagged.iter().cloned());
    if !targets.is_empty() {
        names.retain(|n| targets.contains(n));
    }
    names
}

/// What [`plan_for`] produced: a [`Planned`] without the desired state, which the caller
/// keeps (the daemon shares one copy between its passes and its fallback on invalid edits).
#[derive(Debug)]
pub struct PlannedFor {
    pub plan: Plan,
    /// The desired state with the servers ServerGroups select by IAM tags added, when there
    /// are such groups (`None`: the caller's desired state is the plan's).
    pub expanded: Option<Desired>,
    pub observed: Observed,
    pub records: Records,
    pub coverage: Coverage,
    pub stats: RunStats,
}

/// Observe, merge records, read detail where the planner may act, plan, lint.
pub async fn run(desired: Desired, ctx: &Context<'_>) -> Result<Planned, PipelineError> {
    let PlannedFor {
        plan,
        expanded,
        observed,
        records,
        coverage,
        stats,
    } = plan_for(&desired, ctx).await?;
    Ok(Planned {
        plan,
        desired: expanded.unwrap_or(desired),
        observed,
        records,
        coverage,
        stats,
    })
}

/// [`run`], borrowing the desired state.
pub async fn plan_for(desired: &Desired, ctx: &Context<'_>) -> Result<PlannedFor, PipelineError> {
    let started = Instant::now();
    let meter = Meter::new();
    let client = ctx.client.metered(&meter);

    let stored = ctx.store.load().await?;
    // ServerGroups that select live servers by their IAM tags: the account's listing answers
    // both that and which servers carry ovhform's records, in one read; the desired state is
    // then a copy with those servers added (only then: otherwise it is borrowed as is).
    let mut expanded: Option<Desired> = None;
    let tagged = if desired.tag_selectors.is_empty() {
        observe::servers_tagged(&client, state::tags::TAG_FINGERPRINT).await
    } else {
        let mut d = desired.clone();
        let listed = observe::servers_by_tags(&client, state::tags::TAG_FINGERPRINT, &mut d).await;
        expanded = Some(d);
        listed
    }
    .map_err(|source| PipelineError::Observe {
        step: FleetStep::TaggedServers,
        source,
    })?;
    let desired: &Desired = expanded.as_ref().unwrap_or(desired);
    let names = servers_to_observe(desired, &stored, &tagged.names, &ctx.input.targets);
    // When the API refused the `iamTags` filter, the tagged servers came from the account's
    // listing: the fleet pass takes its servers from that same listing (no second one).
    let mut observed = observe::observe_fleet_from(&client, &names, tagged.listing)
        .await
        .map_err(|source| PipelineError::Observe {
            step: FleetStep::Servers { count: names.len() },
            source,
        })?;
    let fleet_calls = meter.total();
    ctx.progress.event(PipelineEvent::Observed {
        servers: observed.servers.len(),
        calls: fleet_calls,
    });

    let (tag_records, tag_errors) = state::records_from_observed(&observed);
    for e in &tag_errors {
        tracing::warn!("{e}");
    }
    let records = state::merge_records(stored, tag_records);

    let detail = plan::needs_detail(desired, &observed, &records, &ctx.input);
    let mut facts_cached = 0;
    if !detail.is_empty() {
        facts_cached = read_detail(ctx, &client, &meter, desired, &mut observed, &detail).await?;
    }
    tracing::info!(
        api_calls = meter.total(),
        servers = observed.servers.len(),
        detail = detail.len(),
        "observed"
    );

    let mut plan = plan::plan(desired, &observed, &records, &ctx.input);
    // OVH's planned interventions decide only reinstalls that could otherwise run: read for
    // those alone (one listing each, usually empty), then plan again with them.
    let interventions = plan::needs_interventions(&plan, &observed, ctx.input.intervention_reads);
    if !interventions.is_empty() {
        observe::observe_interventions(&client, &mut observed, &interventions).await;
        plan = plan::plan(desired, &observed, &records, &ctx.input);
    }
    let problems = plan::lint(&plan);
    if !problems.is_empty() {
        return Err(PipelineError::Lint { problems });
    }
    let coverage = coverage(&plan, &observed);
    let stats = RunStats {
        calls: meter.total(),
        routes: meter.routes(),
        fleet_calls,
        detail_servers: detail.len(),
        intervention_servers: interventions.len(),
        facts_cached,
        elapsed: started.elapsed(),
    };
    ctx.progress.event(PipelineEvent::Planned {
        servers: plan.servers.len(),
        detail_read: coverage.detail_read.len(),
        calls: stats.calls,
    });
    Ok(PlannedFor {
        plan,
        expanded,
        observed,
        records,
        coverage,
        stats,
    })
}

/// The detail pass with the facts cache around it and progress events along it. Returns how
/// many of its facts were answered by a cache.
async fn read_detail(
    ctx: &Context<'_>,
    client: &ovh::Client,
    meter: &Meter,
    desired: &Desired,
    observed: &mut Observed,
    detail: &BTreeSet<String>,
) -> Result<usize, PipelineError> {
    let now = ctx.input.now;
    let loaded = facts::load_and_seed(ctx.facts, ctx.facts_ttl, now, client);

    // The OSes the manifests ask for (reinstall checks) and those the servers run (the detail
    // pass reads their templates too).
    let wanted_os: BTreeSet<String> = detail
        .iter()
        .filter_map(|n| desired.servers.get(n))
        .filter_map(|s| s.install.as_ref().map(|i| i.os.clone()))
        .collect();
    let mut templates: BTreeSet<String> = wanted_os.clone();
    templates.extend(
        detail
            .iter()
            .filter_map(|n| observed.servers.get(n).map(|s| s.os.clone()))
            .filter(|os| observe::is_template_name(os)),
    );
    let cached_facts: usize = detail
        .iter()
        .map(|n| {
            let (hw, compat) = client.has_cached_facts(n);
            usize::from(hw) + usize::from(compat)
        })
        .sum();
    let templates_to_read = templates
        .iter()
        .filter(|t| !client.has_cached_template(t.as_str()))
        .count();
    let estimate = estimate_detail(
        detail.len(),
        client.config().concurrency,
        cached_facts,
        templates_to_read,
        client.config().requests_per_minute,
    );
    ctx.progress.event(PipelineEvent::DetailStarted {
        servers: detail.len(),
        estimated_calls: estimate.calls,
        eta: estimate.eta,
    });

    let total = detail.len();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let calls_before = meter.total();
    let on_server = |_: &str| {
        let done = done.fetch_add(1, Ordering::Relaxed) + 1;
        let calls = meter.total() - calls_before;
        ctx.progress.event(PipelineEvent::DetailProgress {
            done,
            total,
            calls,
            eta: eta_left(
                total - done,
                calls,
                estimate.calls,
                started.elapsed(),
                estimate.eta,
            ),
        });
    };
    let read = observe::observe_detail_with(client, observed, detail, &on_server)
        .await
        .map_err(|source| PipelineError::Detail {
            servers: total,
            source,
        });
    let read = match read {
        Ok(()) => observe::observe_templates(client, observed, &wanted_os)
            .await
            .map_err(|source| PipelineError::Templates {
                names: wanted_os.iter().cloned().collect(),
                source,
            }),
        Err(e) => Err(e),
    };
    // Saved even when the read failed part way: what was fetched need not be fetched again.
    facts::save(ctx.facts, loaded, ctx.facts_ttl, now, client);
    read?;
    Ok(cached_facts + (templates.len() - templates_to_read))
}

fn coverage(plan: &Plan, observed: &Observed) -> Coverage {
    let mut c = Coverage::default();
    for name in plan.servers.keys() {
        if let Some(live) = observed.servers.get(name) {
            if live.detail.is_some() {
                c.detail_read.insert(name.clone());
            } else {
                c.not_read.insert(name.clone());
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppliedState, InstallRecord};

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn servers_to_observe_unites_manifests_records_and_tags_then_targets() {
        let dir = tempfile::tempdir().unwrap();
        let first = "ns1.ip-10-0-0.eu".to_string();
        std::fs::write(
            dir.path().join("s.yaml"),
            format!("apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {first}}}\nspec:\n  install: {{os: debian12_64}}\n"),
        )
        .unwrap();
        let desired = crate::manifest::load(&[dir.path().to_path_buf()])
            .expect("manifest loads")
            .desired;
        let mut stored = Records::default();
        stored.installs.insert(
            "recorded".into(),
            InstallRecord {
                server: "recorded".into(),
                fleet: crate::model::DEFAULT_FLEET.into(),
                algorithm: 2,
                secrets: None,
                request: None,
                fingerprint: "sha256:x".into(),
                os: "debian12_64".into(),
                generation: 1,
                revision: None,
                task_id: None,
                started: None,
                finished: None,
            },
        );
        stored
            .applied
            .insert("applied-only".into(), AppliedState::default());
        let tagged = names(&["tagged"]);

        let all = servers_to_observe(&desired, &stored, &tagged, &BTreeSet::new());
        assert_eq!(
            all,
            names(&[first.as_str(), "recorded", "applied-only", "tagged"])
        );
        let some = servers_to_observe(&desired, &stored, &tagged, &names(&["tagged", "nope"]));
        assert_eq!(some, names(&["tagged"]));
    }
}
