//! The CI examples of docs/ci/, run as written: the plan step of the GitHub workflow and the
//! plan script of the GitLab job, taken out of the YAML and run by bash the way the runners run
//! them, with the environment the workflow gives them pointed at the simulator of the demo fleet
//! (changes, no changes after an apply, an error finding, a refused key); then the scripts that
//! post the plan — GitHub's (actions/github-script) under node with a stand-in for the API
//! client, GitLab's with a stand-in `curl` on PATH — checked to update their one comment rather
//! than add another. No request leaves 127.0.0.1: the stand-ins answer everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::cli_support::{IGNORE_WEB_WINDOWS, WEB2, Workdir, copy_dir, demo_sim, manifests, repo};
use ovhform::sim::SimHandle;

const MARKER: &str = "<!-- ovhform-plan -->";
/// The fleet secret the CI secret would hold; it must appear in no output.
const FLEET_SECRET: &str = "ci-fleet-secret-5f1e0c9a7d3b";

fn example(name: &str) -> Value {
    let path = repo().join("docs/ci").join(name);
    let text = std::fs::read_to_string(&path).expect("docs/ci example");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// A checkout of a repository holding the example manifests, as a CI job sees it.
fn checkout(root: &Path) -> PathBuf {
    let dir = root.join("checkout");
    copy_dir(&repo().join("manifests"), &dir.join("manifests"));
    dir
}

/// PATH with the tested `ovhform` first (and `extra` before it, for stand-ins).
fn path_with(extra: Option<&Path>) -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_ovhform"));
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(
        extra
            .map(Path::to_path_buf)
            .into_iter()
            .chain(std::iter::once(
                bin.parent().expect("bin dir").to_path_buf(),
            ))
            .chain(std::env::split_paths(&inherited)),
    )
    .expect("PATH")
}

fn needs(tool: &str) {
    let found = Command::new("bash")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is needed to run the CI examples' scripts (scripts/test.sh installs it)"
    );
}

/// bash as a runner starts it (`args` before the script file), in `dir`, with only `env` (and
/// PATH, HOME) set: nothing from the developer's environment leaks in.
async fn bash(
    args: &[&str],
    script: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    stand_ins: Option<&Path>,
) -> Output {
    let file = dir.parent().expect("parent").join(format!(
        "step-{}.sh",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    ));
    std::fs::write(&file, script).expect("write script");
    let mut cmd = Command::new("bash");
    cmd.args(args)
        .arg(&file)
        .current_dir(dir)
        .env_clear()
        .env("PATH", path_with(stand_ins))
        .env("HOME", dir.parent().expect("parent"))
        .envs(env);
    tokio::task::spawn_blocking(move || cmd.output().expect("run bash"))
        .await
        .expect("bash task")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions: docs/ci/github-plan.yml
// ---------------------------------------------------------------------------------------------

struct GithubJob {
    job_env: BTreeMap<String, String>,
    steps: Vec<Value>,
}

fn github_job() -> GithubJob {
    let wf = example("github-plan.yml");
    assert!(
        wf["on"]["pull_request"].is_object(),
        "runs on pull requests: {}",
        wf["on"]
    );
    assert_eq!(wf["permissions"]["pull-requests"], "write");
    let job = &wf["jobs"]["plan"];
    let job_env = job["env"]
        .as_object()
        .expect("job env")
        .iter()
        .map(|(k, v)| (k.clone(), text(v).to_string()))
        .collect();
    GithubJob {
        job_env,
        steps: job["steps"].as_array().expect("steps").clone(),
    }
}

impl GithubJob {
    fn step(&self, id_or_name: &str) -> &Value {
        self.steps
            .iter()
            .find(|s| s["id"] == id_or_name || s["name"] == id_or_name)
            .unwrap_or_else(|| panic!("no step {id_or_name}"))
    }
}

/// What a GitHub-hosted runner gives the plan step: the job's and step's `env` (secrets from
/// the simulator, the endpoint pointed at it — never OVHcloud), `GITHUB_OUTPUT`,
/// `GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`.
struct GithubRun {
    out: Output,
    outputs: String,
    summary: String,
    plan_md: String,
    runner_temp: PathBuf,
}

async fn run_github_plan(
    job: &GithubJob,
    sim: &SimHandle,
    dir: &Path,
    consumer_key: Option<&str>,
    fleet_secret: &str,
) -> GithubRun {
    let step = job.step("plan");
    assert_eq!(step["shell"], "bash", "the plan step names its shell");
    let creds = sim.credentials();
    let secrets: BTreeMap<&str, String> = [
        ("OVH_APPLICATION_KEY", creds.application_key.clone()),
        ("OVH_APPLICATION_SECRET", creds.application_secret.clone()),
        (
            "OVH_CONSUMER_KEY",
            consumer_key.map_or(creds.consumer_key.clone(), str::to_string),
        ),
        ("OVHFORM_SECRET_KEY", fleet_secret.to_string()),
    ]
    .into_iter()
    .collect();
    let mut env = job.job_env.clone();
    for (k, v) in step["env"].as_object().expect("plan step env") {
        let v = text(v);
        let value = if k == "OVH_ENDPOINT" {
            // The example names OVHcloud; the test must never reach it.
            assert_eq!(v, "ovh-eu");
            sim.base_url()
        } else {
            // Credentials only from the repository's secrets, never written in the file.
            assert_eq!(v, format!("${{{{ secrets.{k} }}}}"), "{k}");
            secrets[k.as_str()].clone()
        };
        env.insert(k.clone(), value);
    }
    assert_eq!(
        env.keys()
            .filter(|k| secrets.contains_key(k.as_str()))
            .count(),
        secrets.len(),
        "the step gives every credential and the fleet secret: {env:?}"
    );
    let runner_temp = dir.parent().expect("parent").join("runner-temp");
    std::fs::create_dir_all(&runner_temp).expect("runner temp");
    let (outputs, summary) = (runner_temp.join("output"), runner_temp.join("summary"));
    for f in [&outputs, &summary] {
        std::fs::write(f, "").expect("runner file");
    }
    env.insert("GITHUB_OUTPUT".into(), outputs.display().to_string());
    env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
    env.insert("RUNNER_TEMP".into(), runner_temp.display().to_string());
    env.insert("CI".into(), "true".into());
    env.insert("GITHUB_ACTIONS".into(), "true".into());
    // `shell: bash` is run as `bash --noprofile --norc -eo pipefail {0}`.
    let out = bash(
        &["--noprofile", "--norc", "-eo", "pipefail"],
        text(&step["run"]),
        dir,
        &env,
        None,
    )
    .await;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let run = GithubRun {
        plan_md: read(&runner_temp.join("ovhform-plan.md")),
        outputs: read(&outputs),
        summary: read(&summary),
        out,
        runner_temp,
    };
    for shown in [
        run.plan_md.as_str(),
        &run.summary,
        &String::from_utf8_lossy(&run.out.stdout),
        &String::from_utf8_lossy(&run.out.stderr),
    ] {
        assert!(!shown.contains(FLEET_SECRET), "the fleet secret was shown");
        assert!(
            !shown.contains(&creds.application_secret),
            "the application secret was shown"
        );
    }
    run
}

impl GithubRun {
    fn exit(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn context(&self) -> String {
        format!(
            "{}\n--- GITHUB_OUTPUT\n{}\n--- plan.md\n{}",
            show(&self.out),
            self.outputs,
            self.plan_md
        )
    }
}

/// A plan with changes: the step succeeds, says so, and leaves the Markdown for the comment
/// (and the job summary); the validate step before it passes on the same manifests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_plan_step_with_changes_succeeds_and_leaves_the_markdown() {
    let job = github_job();
    let sim = demo_sim(1000.0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());

    let validate = bash(
        &["-e"],
        text(&job.step("Validate")["run"]),
        &dir,
        &job.job_env,
        None,
    )
    .await;
    assert_eq!(validate.status.code(), Some(0), "{}", show(&validate));
    assert_eq!(
        String::from_utf8_lossy(&validate.stdout),
        "",
        "no annotation"
    );

    let run = run_github_plan(&job, &sim, &dir, None, FLEET_SECRET).await;
    let cx = run.context();
    assert_eq!(run.exit(), Some(0), "exit 2 is a successful plan\n{cx}");
    assert_eq!(run.outputs, "exitcode=2\nchanges=true\n", "{cx}");
    assert!(
        run.stdout()
            .contains("::notice title=ovhform plan::the plan has changes"),
        "{cx}"
    );
    assert!(run.plan_md.starts_with("### ovhform plan\n"), "{cx}");
    assert!(run.plan_md.contains(WEB2), "{cx}");
    assert!(run.plan_md.contains("reinstall"), "{cx}");
    assert_eq!(run.summary, run.plan_md, "the job summary shows the plan");
    sim.shutdown().await;
}

/// After an apply, the same step in a fresh checkout (no state directory: the records come
/// from the servers' tags) finds no changes: exit 0 handled as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_plan_step_without_changes_after_an_apply() {
    let job = github_job();
    let sim = demo_sim(1000.0).await;
    let m = manifests();
    let mut args = vec![
        "apply",
        "--manifests",
        &m,
        "--auto-approve",
        "--allow-wipe-all",
    ];
    args.extend(IGNORE_WEB_WINDOWS);
    // Applied with the fleet secret the CI secret holds (docs/ci.md).
    let work = Workdir::new();
    let mut apply = work.command(&sim, &args);
    apply.env("OVHFORM_SECRET_KEY", FLEET_SECRET);
    let applied = crate::cli_support::Run::from(
        tokio::task::spawn_blocking(move || apply.output().expect("apply"))
            .await
            .expect("apply task"),
    );
    assert_eq!(applied.code, Some(0), "{applied}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());
    let run = run_github_plan(&job, &sim, &dir, None, FLEET_SECRET).await;
    let cx = run.context();
    assert_eq!(run.exit(), Some(0), "{cx}");
    assert_eq!(run.outputs, "exitcode=0\nchanges=false\n", "{cx}");
    assert!(!run.stdout().contains("::notice"), "{cx}");
    assert!(run.plan_md.starts_with("### ovhform plan\n"), "{cx}");
    assert!(run.plan_md.contains("No changes"), "{cx}");
    // The same fleet secret as the apply: the secret values were compared too.
    assert!(!run.plan_md.contains("secret values not compared"), "{cx}");

    // The repository secret not set (it reaches the step as an empty string): still no
    // changes, and the plan says what it could not compare.
    let run = run_github_plan(&job, &sim, &dir, None, "").await;
    let cx = run.context();
    assert_eq!(run.outputs, "exitcode=0\nchanges=false\n", "{cx}");
    assert!(
        run.plan_md.contains(
            "secret values not compared for 4 server(s) (no fleet secret: set OVHFORM\\_SECRET\\_KEY)"
        ),
        "{cx}"
    );

    // Regression: another fleet's secret used to read as changed secret values — a preview of
    // reinstalls on no evidence. The records say which secret keyed them: the plan now says
    // the secret is another one, claims no change, and compares nothing secret.
    let run = run_github_plan(&job, &sim, &dir, None, "not-this-fleets-secret").await;
    let cx = run.context();
    assert_eq!(run.outputs, "exitcode=0\nchanges=false\n", "{cx}");
    assert!(
        !run.plan_md
            .contains("install spec changed since the recorded install (secrets)"),
        "{cx}"
    );
    assert!(run.plan_md.contains("fleet-secret-mismatch"), "{cx}");
    sim.shutdown().await;
}

/// A plan with an error finding (a mistyped OS) fails the step, and its Markdown — with the
/// catalog name to use instead — is still left for the comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_plan_step_with_an_error_finding_fails_with_the_plan() {
    let job = github_job();
    let sim = demo_sim(1000.0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());
    let web = dir.join("manifests/servers/web.yaml");
    let yaml = std::fs::read_to_string(&web).expect("web.yaml");
    let typo = yaml.replacen(
        "      hostname: web-02\n",
        "      hostname: web-02\n    os: debian12-64\n",
        1,
    );
    assert_ne!(
        typo, yaml,
        "the example manifests changed: update this test"
    );
    std::fs::write(&web, typo).expect("write web.yaml");

    let run = run_github_plan(&job, &sim, &dir, None, FLEET_SECRET).await;
    let cx = run.context();
    assert_eq!(run.exit(), Some(1), "{cx}");
    assert_eq!(run.outputs, "exitcode=1\n", "{cx}");
    assert!(
        run.stdout()
            .contains("::error title=ovhform plan::ovhform plan failed (exit 1)"),
        "{cx}"
    );
    assert!(run.plan_md.contains("os-unknown"), "{cx}");
    // Escaped for Markdown: GitHub shows "did you mean `debian12_64`?".
    assert!(
        run.plan_md
            .contains("debian12-64 is not in the installation template catalog; did you mean \\`debian12\\_64\\`?"),
        "{cx}"
    );
    sim.shutdown().await;
}

/// A key the API refuses: the step fails, with no Markdown (the comment says the plan failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_plan_step_with_a_refused_key_fails_without_a_plan() {
    let job = github_job();
    let sim = demo_sim(1000.0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());
    let run = run_github_plan(&job, &sim, &dir, Some("not-a-consumer-key"), FLEET_SECRET).await;
    let cx = run.context();
    assert_eq!(run.exit(), Some(1), "{cx}");
    assert_eq!(run.outputs, "exitcode=1\n", "{cx}");
    assert_eq!(run.plan_md, "", "{cx}");
    assert!(!String::from_utf8_lossy(&run.out.stderr).is_empty(), "{cx}");
    sim.shutdown().await;
}

/// Runs the comment step's script as actions/github-script does (the body of an async function
/// of `require, github, context, core`), with a `github` that records its calls and answers
/// the comment listing with `comments`. Returns the calls.
async fn github_comment(
    job: &GithubJob,
    runner_temp: &Path,
    exitcode: &str,
    comments: Value,
) -> Vec<Value> {
    needs("node");
    let step = job.step("Comment the plan on the pull request");
    assert_eq!(step["uses"], "actions/github-script@v7");
    let cond = text(&step["if"]);
    assert!(
        cond.contains("!cancelled()") && cond.contains("steps.plan.outputs.exitcode != ''"),
        "the comment also follows a failed plan, never a cancelled run: {cond}"
    );
    let mut env = BTreeMap::new();
    for (k, v) in step["env"].as_object().expect("comment step env") {
        let v = text(v)
            .replace("${{ runner.temp }}", &runner_temp.display().to_string())
            .replace("${{ steps.plan.outputs.exitcode }}", exitcode);
        assert!(
            !v.contains("${{"),
            "{k}: an expression this test does not know: {v}"
        );
        env.insert(k.clone(), v);
    }
    env.insert("FAKE_COMMENTS".into(), comments.to_string());
    let harness = r#"
const fs = require('fs');
const script = fs.readFileSync(process.env.SCRIPT_FILE, 'utf8');
const calls = [];
const listComments = async () => { throw new Error('listComments must go through paginate'); };
const github = {
  paginate: async (method, params) => {
    if (method !== listComments) throw new Error('unexpected paginate');
    calls.push({ op: 'list', params });
    return JSON.parse(process.env.FAKE_COMMENTS);
  },
  rest: { issues: {
    listComments,
    updateComment: async (params) => { calls.push({ op: 'update', params }); return { data: {} }; },
    createComment: async (params) => { calls.push({ op: 'create', params }); return { data: {} }; },
  } },
};
const context = {
  repo: { owner: 'acme', repo: 'infra' },
  issue: { number: 7 },
  runId: 42,
  serverUrl: 'https://github.example',
  payload: { pull_request: { head: { sha: 'abcdef0123456789' } } },
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, {})
  .then(() => process.stdout.write(JSON.stringify(calls)),
        (e) => { console.error(e); process.exit(1); });
"#;
    let script_file = runner_temp.join("comment.js");
    std::fs::write(&script_file, text(&step["with"]["script"])).expect("script");
    env.insert("SCRIPT_FILE".into(), script_file.display().to_string());
    let harness_file = runner_temp.join("harness.js");
    std::fs::write(&harness_file, harness).expect("harness");
    let mut cmd = Command::new("node");
    cmd.arg(&harness_file)
        .current_dir(runner_temp)
        .env_clear()
        .env("PATH", path_with(None))
        .envs(&env);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run node"))
        .await
        .expect("node task");
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).expect("calls as JSON")
}

/// The comment is posted once, then updated in place: found by the marker among the bot's
/// comments, never a person's comment quoting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_comment_is_created_once_then_updated() {
    let job = github_job();
    let sim = demo_sim(1000.0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());
    let run = run_github_plan(&job, &sim, &dir, None, FLEET_SECRET).await;
    assert_eq!(
        run.outputs,
        "exitcode=2\nchanges=true\n",
        "{}",
        run.context()
    );
    sim.shutdown().await;
    let temp = run.runner_temp.clone();

    // First run: nothing to update, one comment created.
    let calls = github_comment(&job, &temp, "2", json!([])).await;
    let ops: Vec<&str> = calls.iter().map(|c| text(&c["op"])).collect();
    assert_eq!(ops, ["list", "create"], "{calls:#?}");
    let created = &calls[1]["params"];
    assert_eq!(created["issue_number"], 7);
    let body = text(&created["body"]);
    assert!(body.starts_with(&format!("{MARKER}\n")), "{body}");
    assert!(
        body.contains("**ovhform plan** of abcdef0: changes ([log](https://github.example/acme/infra/actions/runs/42))"),
        "{body}"
    );
    assert!(body.ends_with(&run.plan_md), "the plan, whole:\n{body}");

    // Later runs: the bot's marked comment is updated; a person's comment that quotes the
    // marker and the bot's other comments are left alone.
    let existing = json!([
        {"id": 11, "user": {"login": "alice", "type": "User"}, "body": format!("{MARKER} quoted")},
        {"id": 12, "user": {"login": "github-actions[bot]", "type": "Bot"}, "body": "LGTM bot"},
        {"id": 13, "user": {"login": "github-actions[bot]", "type": "Bot"}, "body": format!("{MARKER}\nold plan")},
    ]);
    let calls = github_comment(&job, &temp, "2", existing).await;
    let ops: Vec<&str> = calls.iter().map(|c| text(&c["op"])).collect();
    assert_eq!(ops, ["list", "update"], "{calls:#?}");
    assert_eq!(calls[1]["params"]["comment_id"], 13);
    assert!(text(&calls[1]["params"]["body"]).ends_with(&run.plan_md));

    // A plan that failed before planning: the comment says so instead of showing a plan.
    std::fs::remove_file(temp.join("ovhform-plan.md")).expect("remove plan");
    let calls = github_comment(&job, &temp, "1", json!([])).await;
    let body = text(&calls[1]["params"]["body"]);
    assert!(body.contains(": failed (exit 1) ("), "{body}");
    assert!(
        body.contains("_No plan: ovhform failed before planning"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// GitLab CI: docs/ci/gitlab-plan.yml
// ---------------------------------------------------------------------------------------------

struct GitlabJob {
    variables: BTreeMap<String, String>,
    script: String,
    after_script: String,
}

/// The job's `script` and `after_script` lines, each joined as the runner joins them: one
/// shell session per list.
fn gitlab_job() -> GitlabJob {
    let ci = example("gitlab-plan.yml");
    let job = &ci["ovhform-plan"];
    let rules = job["rules"].to_string();
    assert!(rules.contains("merge_request_event"), "{rules}");
    let lines = |key: &str| -> String {
        job[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key}"))
            .iter()
            .map(|l| text(l).trim_end().to_string() + "\n")
            .collect()
    };
    GitlabJob {
        variables: job["variables"]
            .as_object()
            .expect("variables")
            .iter()
            .map(|(k, v)| (k.clone(), text(v).to_string()))
            .collect(),
        script: lines("script"),
        after_script: lines("after_script"),
    }
}

/// The job's script as the runner runs it (bash, `-eo pipefail`), with the job's variables
/// and the CI/CD variables the file names, pointed at the simulator.
async fn run_gitlab_script(
    job: &GitlabJob,
    sim: &SimHandle,
    dir: &Path,
    consumer_key: Option<&str>,
) -> Output {
    let creds = sim.credentials();
    let mut env = job.variables.clone();
    assert_eq!(env["OVH_ENDPOINT"], "ovh-eu");
    env.insert("OVH_ENDPOINT".into(), sim.base_url());
    env.insert("OVH_APPLICATION_KEY".into(), creds.application_key.clone());
    env.insert(
        "OVH_APPLICATION_SECRET".into(),
        creds.application_secret.clone(),
    );
    env.insert(
        "OVH_CONSUMER_KEY".into(),
        consumer_key.map_or(creds.consumer_key.clone(), str::to_string),
    );
    env.insert("OVHFORM_SECRET_KEY".into(), FLEET_SECRET.into());
    env.insert("CI".into(), "true".into());
    env.insert("CI_PROJECT_DIR".into(), dir.display().to_string());
    let out = bash(&["-eo", "pipefail"], &job.script, dir, &env, None).await;
    for shown in [&out.stdout, &out.stderr] {
        let shown = String::from_utf8_lossy(shown);
        assert!(!shown.contains(FLEET_SECRET) && !shown.contains(&creds.application_secret));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_plan_script_handles_changes_and_failures() {
    let job = gitlab_job();
    let sim = demo_sim(1000.0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    let out = run_gitlab_script(&job, &sim, &dir, None).await;
    let cx = || format!("{}\n--- plan.md\n{}", show(&out), read("ovhform-plan.md"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit 2 is a successful plan\n{}",
        cx()
    );
    assert_eq!(read("ovhform-plan.exitcode"), "2\n", "{}", cx());
    let plan = read("ovhform-plan.md");
    assert!(
        plan.starts_with("### ovhform plan\n") && plan.contains(WEB2),
        "{}",
        cx()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the plan has changes"),
        "{}",
        cx()
    );

    let out = run_gitlab_script(&job, &sim, &dir, Some("not-a-consumer-key")).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(read("ovhform-plan.exitcode"), "1\n", "{}", show(&out));
    assert_eq!(read("ovhform-plan.md"), "", "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ovhform plan failed (exit 1)"),
        "{}",
        show(&out)
    );
    sim.shutdown().await;
}

/// A stand-in for `curl`: logs `METHOD URL` per call, keeps what was sent with `--data @-`,
/// answers `/user` with the token's user (id 99) and the notes listing from
/// `$FAKE_DIR/page-N.json` (`[]` past the last page). It never opens a connection.
const FAKE_CURL: &str = r#"#!/usr/bin/env bash
set -euo pipefail
method=GET url="" data=""
while [ $# -gt 0 ]; do
  case "$1" in
    --request) method="$2"; shift 2 ;;
    --header) shift 2 ;;
    --data) data="$2"; shift 2 ;;
    http*) url="$1"; shift ;;
    *) shift ;;
  esac
done
echo "$method $url" >> "$FAKE_DIR/calls"
if [ "$data" = "@-" ]; then cat > "$FAKE_DIR/sent.json"; fi
case "$method $url" in
  "GET "*/user) echo '{"id": 99, "username": "project_1_bot"}' ;;
  "GET "*/notes\?*)
    page="${url##*page=}"
    if [ -f "$FAKE_DIR/page-$page.json" ]; then cat "$FAKE_DIR/page-$page.json"; else echo '[]'; fi ;;
  *) echo '{}' ;;
esac
"#;

const API: &str = "http://127.0.0.1:9/api/v4";
const NOTES: &str = "http://127.0.0.1:9/api/v4/projects/5/merge_requests/7/notes";

/// Runs the job's after_script with the stand-in `curl`, the notes pages given, the plan's
/// exit code file as `exitcode` (`None`: absent). Returns the calls and what was sent.
async fn gitlab_note(
    job: &GitlabJob,
    dir: &Path,
    exitcode: Option<&str>,
    pages: &[Value],
) -> (Vec<String>, Option<Value>) {
    needs("jq");
    let fake = dir.parent().expect("parent").join("fake");
    let _ = std::fs::remove_dir_all(&fake);
    let bin = fake.join("bin");
    std::fs::create_dir_all(&bin).expect("fake bin");
    let curl = bin.join("curl");
    std::fs::write(&curl, FAKE_CURL).expect("fake curl");
    std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    for (i, page) in pages.iter().enumerate() {
        std::fs::write(fake.join(format!("page-{}.json", i + 1)), page.to_string()).expect("page");
    }
    let code_file = dir.join("ovhform-plan.exitcode");
    match exitcode {
        Some(c) => std::fs::write(&code_file, format!("{c}\n")).expect("exit code"),
        None => {
            let _ = std::fs::remove_file(&code_file);
        }
    }
    let env: BTreeMap<String, String> = [
        ("FAKE_DIR", fake.display().to_string()),
        ("CI_API_V4_URL", API.to_string()),
        ("CI_PROJECT_ID", "5".to_string()),
        ("CI_MERGE_REQUEST_IID", "7".to_string()),
        ("CI_COMMIT_SHORT_SHA", "abcdef01".to_string()),
        (
            "CI_JOB_URL",
            "https://gitlab.example/acme/infra/-/jobs/42".to_string(),
        ),
        ("OVHFORM_GITLAB_TOKEN", "glpat-test-token".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let out = bash(
        &["-eo", "pipefail"],
        &job.after_script,
        dir,
        &env,
        Some(&bin),
    )
    .await;
    assert!(out.status.success(), "{}", show(&out));
    let calls = std::fs::read_to_string(fake.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let sent = std::fs::read_to_string(fake.join("sent.json"))
        .ok()
        .map(|s| serde_json::from_str(&s).expect("sent JSON"));
    (calls, sent)
}

/// The note is posted once, then updated in place — found by the marker among the token
/// user's notes, on any page — never a person's note quoting the marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_note_is_created_once_then_updated() {
    let job = gitlab_job();
    let sim = demo_sim(1000.0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = checkout(tmp.path());
    let out = run_gitlab_script(&job, &sim, &dir, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    sim.shutdown().await;
    let plan = std::fs::read_to_string(dir.join("ovhform-plan.md")).expect("plan.md");

    let list = |page: u32| format!("GET {NOTES}?sort=asc&per_page=100&page={page}");
    // No note yet: one created, holding the whole plan after the marker and the status.
    let (calls, sent) = gitlab_note(&job, &dir, Some("2"), &[]).await;
    assert_eq!(
        calls,
        [format!("GET {API}/user"), list(1), format!("POST {NOTES}")]
    );
    let body = sent.expect("a body was sent")["body"]
        .as_str()
        .expect("body")
        .to_string();
    assert!(body.starts_with(&format!("{MARKER}\n**ovhform plan** of abcdef01: changes ([log](https://gitlab.example/acme/infra/-/jobs/42))\n\n")), "{body}");
    assert!(body.ends_with(&plan), "the plan, whole:\n{body}");

    // The bot's marked note on page 2, a person's quoting note on page 1: the bot's is
    // updated, nothing is added.
    let note = |id: u32, author: u32, body: &str| json!({"id": id, "author": {"id": author}, "body": body});
    let page1 = json!([
        note(1, 7, &format!("{MARKER} quoted")),
        note(2, 99, "other")
    ]);
    let page2 = json!([note(250, 99, &format!("{MARKER}\nold plan"))]);
    let (calls, sent) = gitlab_note(&job, &dir, Some("0"), &[page1, page2]).await;
    assert_eq!(
        calls,
        [
            format!("GET {API}/user"),
            list(1),
            list(2),
            format!("PUT {NOTES}/250")
        ]
    );
    assert!(text(&sent.expect("sent")["body"]).contains(": no changes ("));

    // The plan never ran (validation failed, or the job was cancelled): no note at all.
    let (calls, sent) = gitlab_note(&job, &dir, None, &[]).await;
    assert!(calls.is_empty() && sent.is_none(), "{calls:?}");

    // It failed before planning: the note says so.
    std::fs::write(dir.join("ovhform-plan.md"), "").expect("empty plan");
    let (_, sent) = gitlab_note(&job, &dir, Some("1"), &[]).await;
    let body = sent.expect("sent")["body"]
        .as_str()
        .expect("body")
        .to_string();
    assert!(body.contains(": failed (exit 1) ("), "{body}");
    assert!(
        body.contains("_No plan: ovhform failed before planning"),
        "{body}"
    );
}
