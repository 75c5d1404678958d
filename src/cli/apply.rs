//! `ovhform apply`: run a reviewed plan — a fresh one planned here and confirmed, or one saved
//! by `ovhform plan --out FILE` — through the executor (`apply::apply`), show its progress and
//! sum up how every server ended.
//!
//! Owns: the command's flags, the checks before anything runs (a saved plan's version, fleet
//! and lint; error findings; maintenance windows evaluated again now, [`gate_windows`];
//! confirmation), the approvals handed to the executor, the writer's lock for the whole run,
//! the live display of the executor's events ([`display`]), `--credentials-dir`
//! ([`credentials`]), the summary and the exit code (docs/apply.md "Exit codes"). Must not
//! touch: what runs and in which order (the executor, `src/apply/`), planning rules
//! (`plan/`), the pipeline's steps (`pipeline/`), HTTP details (`ovh/`).
//!
//! Everything shown that came from the API, the plan file or the manifests goes through
//! `crate::escape` first: a plan file is as hostile as an API answer.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};
use sha2::{Digest, Sha256};

use crate::apply::{self, ApplyContext, ApplyReport, Approvals, Limits, Outcome, TrackingConfig};
use crate::cli::api::ApiArgs;
use crate::cli::plan::{load_desired, run_pipeline};
use crate::cli::progress::{Style, took_text};
use crate::cli::render::{self, PlanFormat};
use crate::cli::{EXIT_ERROR, EXIT_OK, GlobalArgs, runtime};
use crate::escape;
use crate::model::Desired;
use crate::ovh::InstallApi;
use crate::plan::digest::FleetKey;
use crate::plan::{Action, Blocker, InstallRoute, Plan, PlanError, PlanInput};
use crate::state::{self, RecordStore, StateArgs};

pub mod credentials;
pub mod display;

/// Default of `--max-concurrent-reinstalls`.
pub const DEFAULT_MAX_REINSTALLS: usize = 5;
/// A saved plan larger than this is refused unread (a 1,000-server plan is a few MiB).
pub const MAX_PLAN_BYTES: u64 = 256 * 1024 * 1024;
/// From this many tag writes on, the run says what they cost before it starts.
pub const MANY_TAG_WRITES: usize = 10;
/// Test hook: poll tasks every N milliseconds (at most 4·N) instead of the production pace
/// (10 s to 2 min), for a simulator on a fast clock. Documented in docs/apply.md.
pub const POLL_MS_ENV: &str = "OVHFORM_POLL_MS";
/// Test hook: the simulator's clock runs this many times faster than real time; every poll
/// pace and protocol window (fresh window, POST deadline and lag, purge horizon) is divided by
/// it. Documented in docs/apply.md.
pub const TIME_SCALE_ENV: &str = "OVHFORM_TIME_SCALE";

#[derive(Debug, clap::Args)]
// The API flags' per-request `--timeout` is `--request-timeout` here: `--timeout` is how long
// apply waits for a task, as the issue and docs/apply.md name it.
#[command(mut_arg("timeout", |a| a.long("request-timeout")))]
pub struct Args {
    /// A plan saved by `ovhform plan --out FILE`: exactly its actions run (the manifests are
    /// read again for the unredacted requests). Without it, apply plans first and asks.
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: Option<PathBuf>,
    /// Directory (or file) of manifests.
    #[arg(long, value_name = "DIR", default_value = "manifests")]
    pub manifests: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Approve the reinstall (disk wipe) of SERVER; repeatable. Without an approval a planned
    /// reinstall is left pending.
    #[arg(long = "allow-wipe", value_name = "SERVER", help_heading = "Approvals")]
    pub allow_wipe: Vec<String>,
    /// Approve every planned reinstall (every disk wipe the plan shows).
    #[arg(long, help_heading = "Approvals")]
    pub allow_wipe_all: bool,
    /// Run SERVER's approved reinstall even outside its maintenance window; repeatable.
    #[arg(
        long = "ignore-maintenance-window",
        value_name = "SERVER",
        help_heading = "Approvals"
    )]
    pub ignore_window: Vec<String>,
    /// Rebuild SERVER with the same spec (Terraform's -replace); also approves its wipe.
    /// Repeatable. Not with a saved plan.
    #[arg(long = "replace", value_name = "SERVER", help_heading = "Approvals")]
    pub replace: Vec<String>,
    /// Do not ask for confirmation (needed without a terminal). Wipes still need their own
    /// approvals.
    #[arg(long, help_heading = "Approvals")]
    pub auto_approve: bool,
    /// Plan and apply only these servers; repeatable. Not with a saved plan.
    #[arg(long = "target", value_name = "SERVER")]
    pub targets: Vec<String>,
    /// Manage SERVER although another fleet's record owns it; repeatable. Not with a saved
    /// plan.
    #[arg(long = "take-over", value_name = "SERVER")]
    pub take_over: Vec<String>,
    /// Read every live server's detail before planning (see `ovhform plan --refresh`). Not
    /// with a saved plan.
    #[arg(long)]
    pub refresh: bool,
    /// Reinstalls running at once in this run (each group's maxConcurrentReinstalls also
    /// holds).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REINSTALLS, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    pub max_concurrent_reinstalls: usize,
    /// How long to wait for one task (an installation, a reboot) before stopping waiting:
    /// the task goes on at OVHcloud and the next apply re-attaches to it.
    #[arg(long = "timeout", value_name = "DURATION", default_value = "2h", value_parser = humantime::parse_duration)]
    pub task_timeout: Duration,
    /// Where credentials an installation creates are written (directory 0700, files 0600);
    /// without it they are never kept. They are never printed.
    #[arg(long, value_name = "DIR")]
    pub credentials_dir: Option<PathBuf>,
    /// How long hardware and catalog facts are reused from the state directory's cache
    /// (see `ovhform plan --facts-ttl`).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub facts_ttl: Duration,
}

/// Why apply refused to start, or could not go on. Every variant says what to do.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyCliError {
    #[error("{flag} cannot be used with a saved plan: the plan is what was reviewed")]
    #[diagnostic(
        code(ovhform::apply::saved_plan_flag),
        help(
            "plan again with the flag (`ovhform plan {flag} … --out FILE`), review that plan and \
             apply it, or apply without a plan file"
        )
    )]
    SavedPlanFlag { flag: &'static str },

    #[error("cannot read the saved plan {}: {source}", path.display())]
    #[diagnostic(code(ovhform::apply::read_plan))]
    ReadPlan {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the saved plan {} is larger than {max} bytes", path.display())]
    #[diagnostic(
        code(ovhform::apply::plan_too_large),
        help("a saved plan is written by `ovhform plan --out FILE`; this file is not one")
    )]
    PlanTooLarge { path: PathBuf, max: u64 },

    #[error("the saved plan {} is not UTF-8 text", path.display())]
    #[diagnostic(
        code(ovhform::apply::not_utf8),
        help(
            "a saved plan is the JSON written by `ovhform plan --out FILE`; this file is not one"
        )
    )]
    NotUtf8 { path: PathBuf },

    #[error("{} is not a plan this ovhform can apply", path.display())]
    #[diagnostic(code(ovhform::apply::bad_plan))]
    BadPlan {
        path: PathBuf,
        #[source]
        #[diagnostic_source]
        source: PlanError,
    },

    #[error("the saved plan {} is inconsistent: {problems}", path.display())]
    #[diagnostic(
        code(ovhform::apply::plan_lint),
        help("the file was edited or damaged; re-run `ovhform plan --out FILE`")
    )]
    PlanLint { path: PathBuf, problems: String },

    #[error("the saved plan {} is for fleet {plan}, this run is for fleet {given}", path.display())]
    #[diagnostic(
        code(ovhform::apply::fleet),
        help("pass --fleet {plan} (or OVHFORM_FLEET) to apply it, or plan again for this fleet")
    )]
    FleetMismatch {
        path: PathBuf,
        plan: String,
        given: String,
    },

    #[error("the plan has {count} error finding(s): it cannot be applied as it is")]
    #[diagnostic(
        code(ovhform::apply::plan_errors),
        help(
            "fix what the findings above name (or leave those servers out with --target), then \
             apply again"
        )
    )]
    PlanHasErrors { count: usize },

    #[error("refusing to apply without confirmation: there is no terminal to ask on")]
    #[diagnostic(
        code(ovhform::apply::no_tty),
        help("review the plan, then pass --auto-approve, or run `ovhform apply` interactively")
    )]
    NoTerminal,

    #[error("apply cancelled: only 'yes' is accepted")]
    #[diagnostic(code(ovhform::apply::cancelled), help("nothing was changed"))]
    Cancelled,

    #[error(transparent)]
    #[diagnostic(transparent)]
    Credentials(#[from] credentials::CredentialsError),
}

pub fn run(args: Args, global: &GlobalArgs) -> miette::Result<ExitCode> {
    // A saved plan is checked first (flags, version, lint, fleet): cheap, and nothing else is
    // worth doing with a plan that will be refused.
    let saved = match &args.plan_file {
        Some(path) => {
            refuse_with_saved_plan(&args)?;
            Some(read_saved_plan(path, &args.state.fleet)?)
        }
        None => None,
    };
    let mut desired = load_desired(&args.manifests)?;
    let credentials = args
        .credentials_dir
        .as_deref()
        .map(credentials::CredentialsDir::prepare)
        .transpose()
        .map_err(ApplyCliError::from)?;
    let client = args
        .api
        .client()
        .into_diagnostic()
        .wrap_err("cannot set up the OVHcloud API client")?;
    // The writer's lock for the whole run, taken before planning: the records the plan reads
    // cannot change under it, and a second apply stops here naming this one.
    let store = args.state.open_locked()?;
    let fleet_key = args
        .state
        .fleet_secret()?
        .as_deref()
        .and_then(FleetKey::new);
    let style = Style::for_stderr(global, std::io::stderr().is_terminal());
    let rt = runtime()?;

    let (plan, plan_id) = match (saved, &args.plan_file) {
        (Some((plan, id)), Some(path)) => {
            eprintln!(
                "saved plan {} (made {} for fleet {}, id {})",
                escape::line(&path.display().to_string()),
                plan.generated_at,
                escape::line(&plan.fleet),
                id
            );
            if !desired.tag_selectors.is_empty() {
                // The servers ServerGroups select by IAM tags, read again: one whose tags
                // changed since the plan is no longer in the manifests, and apply skips it.
                rt.block_on(crate::observe::servers_by_tags(
                    &client,
                    crate::state::tags::TAG_FINGERPRINT,
                    &mut desired,
                ))
                .into_diagnostic()
                .wrap_err("cannot list the servers selected by IAM tags")?;
            }
            (plan, id)
        }
        _ => {
            let input = PlanInput {
                targets: args.targets.iter().cloned().collect(),
                replace: args.replace.iter().cloned().collect(),
                take_over: args.take_over.iter().cloned().collect(),
                refresh: args.refresh,
                revision: state::manifests_revision(&args.manifests),
                // This run applies it: no command to suggest.
                apply_command: None,
                fleet: args.state.fleet.clone(),
                fleet_key: fleet_key.clone(),
                install_route: match args.api.install_api {
                    InstallApi::Reinstall => InstallRoute::Reinstall,
                    InstallApi::Legacy => InstallRoute::Legacy,
                },
                ..PlanInput::new(jiff::Timestamp::now())
            };
            let facts = args.state.facts();
            let planned = rt.block_on(run_pipeline(
                desired.clone(),
                &client,
                &store,
                &facts,
                args.facts_ttl,
                input,
                style,
            ))?;
            let id = plan_id(planned.plan.to_json().as_bytes());
            // With the servers the tag selectors brought in.
            desired = planned.desired;
            (planned.plan, id)
        }
    };

    show_plan(&plan);
    if plan.has_errors() {
        return Err(ApplyCliError::PlanHasErrors {
            count: plan.summary().errors,
        }
        .into());
    }
    let pending_intents = rt
        .block_on(store.intents())?
        .into_iter()
        .filter(|i| i.fleet == plan.fleet)
        .count();
    if !plan.has_changes() && pending_intents == 0 {
        println!("No changes: nothing to apply.");
        return Ok(ExitCode::from(EXIT_OK));
    }

    // A window open when the plan was made may have closed since (a saved plan applied
    // later): the reinstall then waits for it like any deferred wipe.
    let mut plan = plan;
    let gated = gate_windows(&mut plan, &desired, jiff::Timestamp::now());
    for (server, why) in &gated {
        eprintln!(
            "{}: {}: its reinstall now waits for the window (or --ignore-maintenance-window)",
            escape::line(server),
            escape::line(why)
        );
    }
    let approvals = Approvals {
        allow_wipe: args.allow_wipe.iter().cloned().collect(),
        allow_wipe_all: args.allow_wipe_all,
        ignore_window: args.ignore_window.iter().cloned().collect(),
        replace: args.replace.iter().cloned().collect(),
    };
    let preview = Preview::of(&plan, &approvals);
    print!("{}", preview.render());
    if pending_intents > 0 {
        println!(
            "An earlier run left {pending_intents} reinstall intent(s) in the journal: they are \
             resolved against the API first (nothing is POSTed twice)."
        );
    }
    if plan.has_changes() {
        confirm(args.auto_approve)?;
    }

    let ctx = ApplyContext {
        client: &client,
        store: &store,
        desired: &desired,
        fleet: plan.fleet.clone(),
        fleet_key,
        approvals,
        limits: Limits {
            reinstalls: args.max_concurrent_reinstalls,
            ..Limits::default()
        },
        tracking: tracking_config(args.task_timeout),
        plan_id: Some(plan_id),
        clock: Arc::new(jiff::Timestamp::now),
        halt: None,
    };
    let started = std::time::Instant::now();
    let (report, tally) = rt.block_on(execute(&plan, &ctx, style, &preview));
    let summary = Summary {
        gated: gated.into_iter().map(|(server, _)| server).collect(),
        ..Summary::new(&report, &tally, started.elapsed())
    };
    print!("{}", summary.render());
    if let Some(dir) = &credentials {
        eprintln!("{}", dir.status_line());
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// `--replace`, `--target`, `--take-over` and `--refresh` change what is planned: with a saved
/// plan, what was reviewed is what runs.
fn refuse_with_saved_plan(args: &Args) -> Result<(), ApplyCliError> {
    let given = [
        (!args.replace.is_empty(), "--replace"),
        (!args.targets.is_empty(), "--target"),
        (!args.take_over.is_empty(), "--take-over"),
        (args.refresh, "--refresh"),
    ];
    match given.into_iter().find(|(on, _)| *on) {
        Some((_, flag)) => Err(ApplyCliError::SavedPlanFlag { flag }),
        None => Ok(()),
    }
}

/// `sha256:<hex>` of the plan's bytes: the id written into every intent of this run.
pub fn plan_id(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Reads, parses and checks a saved plan: its format version, its lint, its fleet.
pub fn read_saved_plan(path: &Path, fleet: &str) -> Result<(Plan, String), ApplyCliError> {
    let read_err = |source| ApplyCliError::ReadPlan {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    parse_saved_plan(path, &bytes, fleet)
}

/// [`read_saved_plan`] once the file is read: size cap, UTF-8, format version, shape, lint and
/// fleet, in that order. Pure (the fuzz target `saved_plan` drives it); `path` only names the
/// file in errors.
pub fn parse_saved_plan(
    path: &Path,
    bytes: &[u8],
    fleet: &str,
) -> Result<(Plan, String), ApplyCliError> {
    if bytes.len() as u64 > MAX_PLAN_BYTES {
        return Err(ApplyCliError::PlanTooLarge {
            path: path.to_path_buf(),
            max: MAX_PLAN_BYTES,
        });
    }
    let bad = |source| ApplyCliError::BadPlan {
        path: path.to_path_buf(),
        source,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| ApplyCliError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let plan = Plan::from_json(text).map_err(bad)?;
    // A plan the planner could not have produced (edited, damaged) is not what was reviewed.
    let problems = crate::plan::lint(&plan);
    if !problems.is_empty() {
        let shown: Vec<String> = problems
            .iter()
            .take(5)
            .map(|p| escape::line(&p.to_string()).into_owned())
            .collect();
        return Err(ApplyCliError::PlanLint {
            path: path.to_path_buf(),
            problems: shown.join("; "),
        });
    }
    if plan.fleet != fleet {
        return Err(ApplyCliError::FleetMismatch {
            path: path.to_path_buf(),
            plan: escape::line(&plan.fleet).into_owned(),
            given: fleet.to_string(),
        });
    }
    Ok((plan, plan_id(bytes)))
}

/// The plan as `ovhform plan` shows it (text), on stdout.
fn show_plan(plan: &Plan) {
    let color = render::color_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let rendered = render::render(plan, PlanFormat::Text, color);
    let mut out = std::io::stdout().lock();
    // A closed stdout is not a reason to stop before the confirmation's own checks.
    let _ = out.write_all(rendered.as_bytes());
    let _ = out.flush();
}

/// Asks for `yes` on a terminal; refuses without one unless `--auto-approve`.
fn confirm(auto_approve: bool) -> Result<(), ApplyCliError> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(ApplyCliError::NoTerminal);
    }
    eprint!("\nApply this plan? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    // A read error or end of input is a "no".
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(ApplyCliError::Cancelled)
    }
}

/// Re-evaluates at apply time the maintenance window of every reinstall the plan shows as
/// runnable, from the manifests as loaded now: one whose window is closed now (it closed
/// since the plan, or the manifests now bind the server to a window) becomes a wipe deferred
/// by its window — it then runs only with `--ignore-maintenance-window` and an approval —, and
/// one whose window cannot be evaluated stays blocked. Only ever makes the plan stricter.
/// Returns the servers changed, with why.
pub fn gate_windows(
    plan: &mut Plan,
    desired: &Desired,
    now: jiff::Timestamp,
) -> Vec<(String, String)> {
    use crate::plan::window::{WindowState, evaluate};
    let mut changed = Vec::new();
    for sp in plan.servers.values_mut() {
        let Some(ds) = desired.servers.get(&sp.server) else {
            continue;
        };
        let Some(wname) = ds.policy.maintenance_window.clone() else {
            continue;
        };
        for action in sp.actions.iter_mut() {
            if !matches!(action, Action::Reinstall(_)) {
                continue;
            }
            let blocker = match desired.windows.get(&wname) {
                None => Some(Blocker::WindowUndefined {
                    window: wname.clone(),
                    origin: ds.origin_of("spec.policy.maintenanceWindow").clone(),
                }),
                Some(w) => match evaluate(w, now) {
                    Ok(WindowState::Open { .. }) => None,
                    Ok(WindowState::Closed { next }) => Some(Blocker::OutsideWindow {
                        window: wname.clone(),
                        time_zone: w.time_zone.clone(),
                        next_open: next,
                    }),
                    Err(message) => Some(Blocker::WindowInvalid {
                        window: wname.clone(),
                        message,
                    }),
                },
            };
            if let Some(b) = blocker {
                changed.push((sp.server.clone(), b.to_string()));
                *action = action.clone().block(vec![b]);
            }
        }
    }
    changed
}

/// How tasks are tracked: production pace, `--timeout`, and the poll test hook.
pub fn tracking_config(timeout: Duration) -> TrackingConfig {
    // Test hook: a simulator on a fast clock (`OVHFORM_TIME_SCALE=1000`) gets every pace and
    // window scaled the same way (docs/apply.md).
    let scale = std::env::var(TIME_SCALE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(1.0);
    let mut t = TrackingConfig {
        timeout,
        ..TrackingConfig::default().scaled(scale)
    };
    if let Some(ms) = std::env::var(POLL_MS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        t.min_poll = Duration::from_millis(ms);
        t.max_poll = Duration::from_millis(ms.saturating_mul(4));
    }
    t
}

/// Runs the executor with the display listening to its events.
pub(crate) async fn execute(
    plan: &Plan,
    ctx: &ApplyContext<'_>,
    style: Style,
    preview: &Preview,
) -> (ApplyReport, display::Tally) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let working: BTreeSet<String> = plan
        .servers
        .values()
        .filter(|s| {
            s.actions
                .iter()
                .any(|a| a.kind() != crate::plan::ActionKind::Noop)
        })
        .map(|s| s.server.clone())
        .collect();
    if preview.tag_writes >= MANY_TAG_WRITES {
        // One PUT per server (after one GET of it) within the request budget: say so, it can
        // take minutes at OVH's 60 requests a minute.
        eprintln!(
            "writing the records' IAM tags: one call per server, {} calls (each after a read of the server)",
            preview.tag_writes
        );
    }
    let renderer = tokio::spawn(display::render(rx, style, working));
    let report = apply::apply(plan, ctx, &tx).await;
    drop(tx);
    let tally = renderer.await.unwrap_or_default();
    (report, tally)
}

/// What this run will do with the given approvals, worked out from the plan before it runs
/// (the executor decides again, by the same rules, server by server).
#[derive(Debug, Default)]
pub struct Preview {
    /// Wipes that run (approved; window open or ignored).
    pub wipes: Vec<String>,
    /// Of those, the ones run outside their window because it is ignored.
    pub windows_ignored: Vec<String>,
    /// Runnable wipes without an approval: left pending.
    pub pending: Vec<String>,
    /// Wipes waiting for their window (not ignored): stay deferred.
    pub deferred: Vec<String>,
    /// Records this run may write or drop (adopt, reinstall, forget), each mirrored into the
    /// server's IAM tags with one call.
    pub tag_writes: usize,
}

impl Preview {
    pub fn of(plan: &Plan, approvals: &Approvals) -> Preview {
        let approved = |s: &str| {
            approvals.allow_wipe_all
                || approvals.allow_wipe.contains(s)
                || approvals.replace.contains(s)
        };
        let mut p = Preview::default();
        for sp in plan.servers.values() {
            let name = sp.server.as_str();
            for a in &sp.actions {
                match a {
                    Action::Reinstall(_) if approved(name) => {
                        p.wipes.push(name.into());
                        p.tag_writes += 1;
                    }
                    Action::Reinstall(_) => p.pending.push(name.into()),
                    Action::Blocked(_) if a.deferred_wipe().is_some() => {
                        if approvals.ignore_window.contains(name) && approved(name) {
                            p.wipes.push(name.into());
                            p.windows_ignored.push(name.into());
                            p.tag_writes += 1;
                        } else if approvals.ignore_window.contains(name) {
                            p.pending.push(name.into());
                        } else {
                            p.deferred.push(name.into());
                        }
                    }
                    Action::Adopt(_) | Action::Forget(_) => p.tag_writes += 1,
                    _ => {}
                }
            }
        }
        p
    }

    /// What the flags do, said before the confirmation.
    pub fn render(&self) -> String {
        let names = |v: &[String]| {
            v.iter()
                .map(|s| escape::line(s).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::from("\n");
        if self.wipes.is_empty() {
            out.push_str("With these flags this apply erases no disks.\n");
        } else {
            out.push_str(&format!(
                "With these flags this apply ERASES the disks of {} server(s): {}\n",
                self.wipes.len(),
                names(&self.wipes)
            ));
        }
        if !self.windows_ignored.is_empty() {
            out.push_str(&format!(
                "  outside their maintenance window (--ignore-maintenance-window): {}\n",
                names(&self.windows_ignored)
            ));
        }
        if !self.pending.is_empty() {
            out.push_str(&format!(
                "Left pending approval (not wiped): {}; to wipe them add: {}\n",
                names(&self.pending),
                allow_wipe_flags(&self.pending)
            ));
        }
        if !self.deferred.is_empty() {
            out.push_str(&format!(
                "Deferred until their maintenance window opens: {}\n",
                names(&self.deferred)
            ));
        }
        out
    }
}

/// `--allow-wipe a --allow-wipe b`, each name shell-quoted when needed and escaped.
pub fn allow_wipe_flags(servers: &[String]) -> String {
    servers
        .iter()
        .map(|s| format!("--allow-wipe {}", escape::line(&shell_word(s))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as one shell word: as is when it holds only characters no shell treats specially,
/// else single-quoted.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:=+@%,-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How the run ended, per category, and the exit code it gives.
#[derive(Debug, Default)]
pub struct Summary {
    pub converged: Vec<String>,
    pub unchanged: usize,
    pub pending: Vec<String>,
    pub blocked: Vec<(String, Vec<String>)>,
    pub waiting: Vec<String>,
    pub skipped: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    pub degraded: Vec<(String, String)>,
    pub stopped_waiting: Vec<(String, String)>,
    pub records: usize,
    pub tag_writes: usize,
    pub took: Duration,
    /// Servers whose reinstall the plan showed runnable but whose window is closed at apply
    /// time ([`gate_windows`]): blocked, but not as the plan showed.
    pub gated: BTreeSet<String>,
}

impl Summary {
    pub fn new(report: &ApplyReport, tally: &display::Tally, took: Duration) -> Summary {
        let mut s = Summary {
            records: tally.records,
            tag_writes: tally.tag_writes,
            took,
            ..Summary::default()
        };
        for (name, outcome) in &report.servers {
            let name = name.clone();
            match outcome {
                Outcome::Converged => s.converged.push(name),
                Outcome::Unchanged => s.unchanged += 1,
                Outcome::PendingApproval => s.pending.push(name),
                Outcome::Blocked(why) => s.blocked.push((name, why.clone())),
                Outcome::Waiting => s.waiting.push(name),
                Outcome::Skipped(why) => s.skipped.push((name, why.clone())),
                Outcome::Failed(why) => s.failed.push((name, why.clone())),
                Outcome::Degraded(why) => s.degraded.push((name, why.clone())),
                Outcome::StoppedWaiting(why) => s.stopped_waiting.push((name, why.clone())),
            }
        }
        s
    }

    /// 0 when every server converged or ended as the plan showed it would (unchanged,
    /// pending approval, blocked, waiting on a task); 1 when anything was not done that
    /// should have been: failed, degraded, skipped (something moved, the manifest changed,
    /// an earlier failure stopped destructive work), stopped waiting, or a reinstall the plan
    /// showed runnable blocked by a window that is closed now.
    pub fn exit_code(&self) -> u8 {
        let blocked_unlike_the_plan = self.blocked.iter().any(|(s, _)| self.gated.contains(s));
        if self.failed.is_empty()
            && self.degraded.is_empty()
            && self.skipped.is_empty()
            && self.stopped_waiting.is_empty()
            && !blocked_unlike_the_plan
        {
            EXIT_OK
        } else {
            EXIT_ERROR
        }
    }

    pub fn render(&self) -> String {
        let e = |s: &str| escape::line(s).into_owned();
        let mut out = String::new();
        let mut counts = vec![
            format!("{} converged", self.converged.len()),
            format!("{} pending approval", self.pending.len()),
            format!("{} blocked", self.blocked.len()),
            format!("{} skipped", self.skipped.len()),
            format!("{} failed", self.failed.len()),
            format!("{} degraded", self.degraded.len()),
        ];
        if !self.stopped_waiting.is_empty() {
            counts.push(format!(
                "{} stopped waiting (still running at OVHcloud)",
                self.stopped_waiting.len()
            ));
        }
        if !self.waiting.is_empty() {
            counts.push(format!("{} waiting on a task", self.waiting.len()));
        }
        if self.unchanged > 0 {
            counts.push(format!("{} unchanged", self.unchanged));
        }
        let verdict = if self.exit_code() == EXIT_OK {
            "Apply complete"
        } else {
            "Apply finished with problems"
        };
        out.push_str(&format!(
            "\n{verdict}: {} (took {}).\n",
            counts.join(", "),
            took_text(self.took)
        ));
        for name in &self.converged {
            out.push_str(&format!("  converged: {}\n", e(name)));
        }
        if !self.pending.is_empty() {
            out.push_str(&format!(
                "  pending approval: {}. To wipe them, add: {}\n",
                self.pending
                    .iter()
                    .map(|s| e(s))
                    .collect::<Vec<_>>()
                    .join(", "),
                allow_wipe_flags(&self.pending)
            ));
        }
        for (name, why) in &self.blocked {
            let why: Vec<String> = why.iter().map(|w| e(w)).collect();
            let since = if self.gated.contains(name) {
                " (the plan showed it runnable: its window is closed now)"
            } else {
                ""
            };
            out.push_str(&format!(
                "  blocked: {}: {}{since}\n",
                e(name),
                why.join("; ")
            ));
        }
        for name in &self.waiting {
            out.push_str(&format!(
                "  waiting: {}: an OVH task runs on it; nothing was done\n",
                e(name)
            ));
        }
        for (name, why) in &self.skipped {
            out.push_str(&format!("  skipped: {}: {}\n", e(name), e(why)));
        }
        for (name, why) in &self.stopped_waiting {
            out.push_str(&format!(
                "  stopped waiting (not failed): {}: {}\n",
                e(name),
                e(why)
            ));
        }
        for (name, why) in &self.failed {
            out.push_str(&format!("  FAILED: {}: {}\n", e(name), e(why)));
        }
        for (name, why) in &self.degraded {
            out.push_str(&format!("  DEGRADED: {}: {}\n", e(name), e(why)));
        }
        if self.records > 0 || self.tag_writes > 0 {
            out.push_str(&format!(
                "Records: {} written to the state store, {} mirrored into the servers' IAM tags.\n",
                self.records, self.tag_writes
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("ns1.ip-1-2-3.eu"), "ns1.ip-1-2-3.eu");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        // Hostile names are escaped after quoting: no raw control character reaches a terminal.
        let flags = allow_wipe_flags(&["x\x1b[2Jy".to_string()]);
        assert!(!flags.contains('\x1b'), "{flags}");
    }

    #[test]
    fn exit_code_is_one_only_for_work_not_done() {
        let mut s = Summary {
            converged: vec!["a".into()],
            pending: vec!["b".into()],
            blocked: vec![("c".into(), vec!["outside window".into()])],
            waiting: vec!["d".into()],
            ..Summary::default()
        };
        assert_eq!(s.exit_code(), EXIT_OK);
        s.stopped_waiting
            .push(("e".into(), "stopped waiting".into()));
        assert_eq!(s.exit_code(), EXIT_ERROR);
        let rendered = s.render();
        assert!(
            rendered.contains("stopped waiting (not failed)"),
            "{rendered}"
        );
        assert!(!rendered.contains("FAILED"), "{rendered}");
        assert!(rendered.contains("--allow-wipe b"), "{rendered}");
    }

    #[test]
    fn the_poll_hook_only_shortens_polls() {
        let t = tracking_config(Duration::from_secs(60));
        assert_eq!(t.timeout, Duration::from_secs(60));
        // Without the hook (unset in unit tests): production pace.
        if std::env::var_os(POLL_MS_ENV).is_none() {
            assert_eq!(t.min_poll, TrackingConfig::default().min_poll);
        }
    }
}
