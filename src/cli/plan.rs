//! `ovhform plan`: read the manifests, observe the live servers, plan, render.
//!
//! Owns: the composition of the rooms for a plan (manifest → observe → records → plan → lint →
//! render) and the command's flags, output and exit code. Must not touch: planning rules (they
//! live in `plan/`), HTTP details (`ovh/`), how records are stored (`state/`).
//! This is read-only towards OVHcloud and the state directory: no write, no lock.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};

use crate::cli::api::ApiArgs;
use crate::cli::render::{self, PlanFormat};
use crate::manifest;
use crate::model::{Desired, Observed, Records};
use crate::observe;
use crate::ovh;
use crate::plan::{self, Plan, PlanInput};
use crate::state::{self, RecordStore, StateArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory (or file) of manifests to plan.
    #[arg(long, value_name = "DIR", default_value = "manifests")]
    pub manifests: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format: terminal text, JSON (machine-readable, with format_version), or
    /// Markdown for a pull-request comment.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan (JSON, with the facts each action depends on) to FILE, for
    /// `ovhform apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when it has none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan only these servers (service names); repeatable.
    #[arg(long = "target", value_name = "SERVER")]
    pub targets: Vec<String>,
}

/// What a plan run produced, for the callers that render it themselves (`demo`).
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub desired: Desired,
    pub observed: Observed,
    pub records: Records,
    /// Manifest warnings that did not block the plan, rendered.
    pub warnings: Option<String>,
}

/// Everything a plan needs besides the manifests.
pub struct PlanContext<'a> {
    pub client: &'a ovh::Client,
    pub store: &'a dyn RecordStore,
    pub now: jiff::Timestamp,
    pub targets: BTreeSet<String>,
    pub revision: Option<String>,
    /// The apply command renderings suggest; `None` suggests none.
    pub apply_command: Option<String>,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let client = args
        .api
        .client()
        .map_err(|e| miette!("{e}"))
        .wrap_err("cannot set up the OVHcloud API client")?;
    let store = args.state.open_read_only();
    let revision = state::manifests_revision(&args.manifests);
    let ctx = PlanContext {
        client: &client,
        store: &store,
        now: jiff::Timestamp::now(),
        targets: args.targets.iter().cloned().collect(),
        revision,
        // `ovhform apply` does not exist yet: suggest no command rather than one that fails.
        apply_command: None,
    };
    let runtime = runtime()?;
    let planned = runtime.block_on(plan_manifests(&args.manifests, &ctx))?;
    if let Some(w) = &planned.warnings {
        eprint!("{w}");
    }
    if let Some(out) = &args.out {
        save_plan(&planned.plan, out)?;
    }
    let color = args.format == PlanFormat::Text
        && render::color_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    let rendered = render::render(&planned.plan, args.format, color);
    // A closed stdout (e.g. `| head`) is not an error of the plan.
    let _ = std::io::stdout().lock().write_all(rendered.as_bytes());
    if let Some(out) = &args.out {
        eprintln!("plan saved to {}", out.display());
    }
    Ok(ExitCode::from(render::plan_exit_code(
        &planned.plan,
        args.detailed_exitcode,
    )))
}

pub(crate) fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")
}

/// Load, observe (fleet pass, then detail for the servers the planner may act on), merge the
/// records from the store and the servers' tags, plan, lint.
pub async fn plan_manifests(manifests: &Path, ctx: &PlanContext<'_>) -> miette::Result<Planned> {
    let loaded = match manifest::load(&[manifests.to_path_buf()]) {
        Ok(loaded) => loaded,
        Err(diags) => {
            let color = render::color_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            return Err(miette!(
                "{}\n{}",
                diags.render(color).trim_end(),
                format_args!("the manifests are invalid: {}", diags.summary())
            ));
        }
    };
    let warnings = (!loaded.warnings.is_empty()).then(|| loaded.warnings.render(false));
    let desired = loaded.desired;
    let stored = ctx.store.load().map_err(miette::Report::new)?;
    plan_desired(desired, stored, ctx, warnings).await
}

/// The part of a plan run after the manifests are loaded (shared with `demo`).
pub async fn plan_desired(
    desired: Desired,
    stored: Records,
    ctx: &PlanContext<'_>,
    warnings: Option<String>,
) -> miette::Result<Planned> {
    // Servers with a record but no manifest must be observed too: they become `forget`. The
    // record may live only in the servers' tags (a plan in CI without the state directory).
    let calls_before = ctx.client.calls();
    let tagged = observe::servers_tagged(ctx.client, state::tags::TAG_FINGERPRINT)
        .await
        .map_err(|e| miette!("{e}"))
        .wrap_err("cannot list the servers ovhform manages")?;
    let mut names: BTreeSet<String> = desired.servers.keys().cloned().collect();
    names.extend(stored.installs.keys().cloned());
    names.extend(stored.applied.keys().cloned());
    names.extend(tagged);
    if !ctx.targets.is_empty() {
        names.retain(|n| ctx.targets.contains(n));
    }

    let mut observed = observe::observe_fleet(ctx.client, &names)
        .await
        .map_err(|e| miette!("{e}"))
        .wrap_err("cannot observe the servers")?;
    observed.api_calls = ctx.client.calls() - calls_before;
    let (tag_records, tag_errors) = state::records_from_observed(&observed);
    for e in &tag_errors {
        tracing::warn!("{e}");
    }
    let records = state::merge_records(stored, tag_records);

    let input = PlanInput {
        targets: ctx.targets.clone(),
        revision: ctx.revision.clone(),
        apply_command: ctx.apply_command.clone(),
        ..PlanInput::new(ctx.now)
    };
    let detail = plan::needs_detail(&desired, &observed, &records, &input);
    if !detail.is_empty() {
        observe::observe_detail(ctx.client, &mut observed, &detail)
            .await
            .map_err(|e| miette!("{e}"))
            .wrap_err("cannot read the details of the servers to change")?;
        let wanted_os: BTreeSet<String> = detail
            .iter()
            .filter_map(|n| desired.servers.get(n))
            .filter_map(|s| s.install.as_ref().map(|i| i.os.clone()))
            .collect();
        observe::observe_templates(ctx.client, &mut observed, &wanted_os)
            .await
            .map_err(|e| miette!("{e}"))
            .wrap_err("cannot read the installation templates")?;
    }
    tracing::info!(
        api_calls = observed.api_calls,
        servers = observed.servers.len(),
        detail = detail.len(),
        "observed"
    );

    let plan = plan::plan(&desired, &observed, &records, &input);
    let problems = plan::lint(&plan);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        return Err(miette!(
            "internal error: the plan failed its consistency checks, so it is not shown:\n{}",
            list.join("\n")
        )
        .wrap_err("please report this as a bug, with the manifests and `ovhform plan -vv`"));
    }
    Ok(Planned {
        plan,
        desired,
        observed,
        records,
        warnings,
    })
}

fn save_plan(plan: &Plan, out: &Path) -> miette::Result<()> {
    let json = plan.to_json();
    state::write_atomic(out, json.as_bytes())
        .map_err(miette::Report::new)
        .wrap_err_with(|| format!("cannot save the plan to {}", out.display()))
}
