//! `ovhform plan`: read the manifests, run the plan pipeline, render.
//!
//! Owns: the command's flags, loading the manifests (and rendering their diagnostics), building
//! the pipeline's context, the output and the exit code. Must not touch: the pipeline's steps
//! (`pipeline/`), planning rules (`plan/`), HTTP details (`ovh/`), how records are stored
//! (`state/`). Read-only towards OVHcloud and the records; the one file it may write besides
//! `--out` is the facts cache in the state directory (see docs/operations.md "State").

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

use crate::cli::api::ApiArgs;
use crate::cli::progress::{Progress, Style};
use crate::cli::render::{self, PlanFormat};
use crate::cli::{GlobalArgs, runtime};
use crate::manifest;
use crate::model::Desired;
use crate::ovh::InstallApi;
use crate::pipeline::{self, Context, Planned};
use crate::plan::digest::FleetKey;
use crate::plan::{InstallRoute, Plan, PlanInput};
use crate::state::{self, FactsCache, RecordStore, StateArgs};

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
    /// Also save the plan as JSON to FILE, with the facts each action depends on
    /// (`based_on`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when it has none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan only these servers (service names); repeatable.
    #[arg(long = "target", value_name = "SERVER")]
    pub targets: Vec<String>,
    /// Read every live server's detail (running tasks, install status and history, boots,
    /// hardware), not only those with an intended change: a plan that verifies the whole
    /// fleet, at about five requests per server.
    #[arg(long)]
    pub refresh: bool,
    /// Manage SERVER although another fleet's record owns it; repeatable. Without it a
    /// manifest naming another fleet's server is an error.
    #[arg(long = "take-over", value_name = "SERVER")]
    pub take_over: Vec<String>,
    /// Plan a rebuild of SERVER with the same spec (Terraform's -replace); repeatable. Its
    /// wipe still needs an approval at apply.
    #[arg(long = "replace", value_name = "SERVER")]
    pub replace: Vec<String>,
    /// How long hardware specifications and compatible/installation templates read from the
    /// API are reused from the state directory's cache (`cache/facts.json`), e.g. 24h, 90m;
    /// 0 neither reads nor writes the cache.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub facts_ttl: Duration,
}

/// The manifests are invalid; their diagnostics were printed on stderr.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the manifests are invalid: {summary}")]
#[diagnostic(
    code(ovhform::plan::manifests),
    help("fix the problems listed above; `ovhform validate` checks manifests offline")
)]
pub struct InvalidManifests {
    pub summary: String,
}

pub fn run(args: Args, global: &GlobalArgs) -> miette::Result<ExitCode> {
    let desired = load_desired(&args.manifests)?;
    let client = args
        .api
        .client()
        .into_diagnostic()
        .wrap_err("cannot set up the OVHcloud API client")?;
    let store = args.state.open_read_only();
    let facts = args.state.facts();
    let input = PlanInput {
        targets: args.targets.iter().cloned().collect(),
        revision: state::manifests_revision(&args.manifests),
        // The renderers show it only for a plan with changes and no error finding.
        apply_command: Some(apply_command(&args)),
        replace: args.replace.iter().cloned().collect(),
        fleet: args.state.fleet.clone(),
        fleet_key: args
            .state
            .fleet_secret()?
            .as_deref()
            .and_then(FleetKey::new),
        take_over: args.take_over.iter().cloned().collect(),
        refresh: args.refresh,
        install_route: match args.api.install_api {
            InstallApi::Reinstall => InstallRoute::Reinstall,
            InstallApi::Legacy => InstallRoute::Legacy,
        },
        ..PlanInput::new(jiff::Timestamp::now())
    };
    let style = Style::for_stderr(global, std::io::stderr().is_terminal());
    let mut planned = runtime()?.block_on(run_pipeline(
        desired,
        &client,
        &store,
        &facts,
        args.facts_ttl,
        input,
        style,
    ))?;
    // A plan that cannot be applied as it is suggests no command, in no form: not in the
    // renderings (they check too), not in the JSON, not in the saved file.
    if planned.plan.has_errors() {
        planned.plan.apply_command = None;
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

/// The exact command that applies what this plan shows: `ovhform apply FILE` for a saved
/// plan, else `ovhform apply --manifests DIR` with every flag that shaped the plan (targets,
/// take-overs, replacements, refresh, install route). State directory and fleet are repeated
/// when not the defaults. API flags are not: apply resolves the endpoint and credentials as
/// plan did (environment, ovh.conf), and credentials never belong in a printed command.
pub fn apply_command(args: &Args) -> String {
    use crate::cli::apply::shell_word;
    let path = |p: &Path| shell_word(&p.display().to_string());
    let mut words = vec!["ovhform".to_string(), "apply".to_string()];
    let default_manifests = args.manifests == Path::new("manifests");
    match &args.out {
        Some(out) => {
            words.push(path(out));
            if !default_manifests {
                words.extend(["--manifests".into(), path(&args.manifests)]);
            }
        }
        None => {
            words.extend(["--manifests".into(), path(&args.manifests)]);
            for (flag, values) in [
                ("--target", &args.targets),
                ("--take-over", &args.take_over),
                ("--replace", &args.replace),
            ] {
                for v in values {
                    words.extend([flag.to_string(), shell_word(v)]);
                }
            }
            if args.refresh {
                words.push("--refresh".into());
            }
            if args.api.install_api == InstallApi::Legacy {
                words.extend(["--install-api".into(), "legacy".into()]);
            }
        }
    }
    if args.state.state_dir != Path::new(state::DEFAULT_STATE_DIR) {
        words.extend(["--state".into(), path(&args.state.state_dir)]);
    }
    if args.state.fleet != crate::model::DEFAULT_FLEET {
        words.extend(["--fleet".into(), shell_word(&args.state.fleet)]);
    }
    words.join(" ")
}

/// The pipeline with progress rendered on stderr (shared with `demo`).
pub(crate) async fn run_pipeline(
    desired: Desired,
    client: &crate::ovh::Client,
    store: &dyn RecordStore,
    facts: &dyn FactsCache,
    facts_ttl: Duration,
    input: PlanInput,
    style: Style,
) -> Result<Planned, pipeline::PipelineError> {
    let progress = Progress::start(style);
    let result = {
        let ctx = Context {
            client,
            store,
            facts,
            facts_ttl,
            progress: progress.sink(),
            input,
        };
        pipeline::run(desired, &ctx).await
    };
    progress.finish().await;
    result
}

/// Loads the manifests; prints their warnings, or every diagnostic when they are invalid
/// (shared with `demo`).
pub(crate) fn load_desired(manifests: &Path) -> Result<Desired, InvalidManifests> {
    let color = render::color_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    match manifest::load(&[manifests.to_path_buf()]) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                eprint!("{}", loaded.warnings.render(color));
            }
            Ok(loaded.desired)
        }
        Err(diags) => {
            eprint!("{}", diags.render(color));
            if diags.checks_skipped() {
                eprintln!("{}", crate::cli::validate::MORE_CHECKS);
            }
            Err(InvalidManifests {
                summary: diags.summary(),
            })
        }
    }
}

fn save_plan(plan: &Plan, out: &Path) -> miette::Result<()> {
    let json = plan.to_json();
    state::write_atomic(out, json.as_bytes())
        .map_err(miette::Report::new)
        .wrap_err_with(|| format!("cannot save the plan to {}", out.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn hint(argv: &[&str]) -> String {
        let mut full = vec!["ovhform", "plan"];
        full.extend(argv);
        match Cli::try_parse_from(full).expect("arguments parse").command {
            Command::Plan(args) => apply_command(&args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_apply_hint_is_the_exact_command() {
        assert_eq!(hint(&[]), "ovhform apply --manifests manifests");
        assert_eq!(hint(&["--out", "plan.json"]), "ovhform apply plan.json");
        assert_eq!(
            hint(&["--out", "my plan.json", "--manifests", "fleet/"]),
            "ovhform apply 'my plan.json' --manifests fleet/"
        );
        // Every flag that shapes the plan is kept, in a form a shell reads back as given.
        assert_eq!(
            hint(&[
                "--manifests",
                "m",
                "--target",
                "ns1.eu",
                "--target",
                "it's",
                "--take-over",
                "ns2.eu",
                "--replace",
                "ns3.eu",
                "--refresh",
                "--install-api",
                "legacy",
                "--state",
                "/srv/state",
                "--fleet",
                "prod",
            ]),
            "ovhform apply --manifests m --target ns1.eu --target 'it'\\''s' --take-over ns2.eu \
             --replace ns3.eu --refresh --install-api legacy --state /srv/state --fleet prod"
        );
        // API flags, credentials above all, are never repeated.
        let with_creds = hint(&["--endpoint", "ovh-ca", "--application-secret", "S3CRET"]);
        assert!(!with_creds.contains("S3CRET") && !with_creds.contains("ovh-ca"));
    }
}
