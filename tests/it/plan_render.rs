//! Golden renderings of plans (insta snapshots under `tests/it/snapshots/`): the scenario
//! fleet with every action type, drift, blocked reasons and secrets, in text, JSON and
//! Markdown; a 1,000-server fleet summary; and the secret-redaction guarantee.

use base64::Engine as _;
use ovhform::cli::render::{MARKDOWN_LIMIT, render_markdown, render_text};
use ovhform::plan::testkit;

use crate::plan::{SECRET_HEADER, SECRET_SCRIPT, SECRET_URL_TOKEN, input, now, plan_ok, scenario};

fn scenario_plan() -> ovhform::plan::Plan {
    let (d, o, r) = scenario();
    plan_ok(&d, &o, &r, &input())
}

#[test]
fn scenario_text() {
    insta::assert_snapshot!("scenario_text", render_text(&scenario_plan(), false));
}

#[test]
fn scenario_json() {
    insta::assert_snapshot!("scenario_json", scenario_plan().to_json());
}

#[test]
fn scenario_markdown() {
    let md = render_markdown(&scenario_plan(), MARKDOWN_LIMIT);
    assert!(md.len() <= MARKDOWN_LIMIT);
    insta::assert_snapshot!("scenario_markdown", md);
}

#[test]
fn text_colour_only_when_asked() {
    let p = scenario_plan();
    assert!(!render_text(&p, false).contains('\x1b'));
    let coloured = render_text(&p, true);
    assert!(coloured.contains("\x1b[1;31m!! WIPE"));
}

#[test]
fn no_secret_appears_in_any_rendering() {
    let p = scenario_plan();
    let encoded_script = base64::engine::general_purpose::STANDARD.encode(SECRET_SCRIPT);
    let renderings = [
        render_text(&p, false),
        render_text(&p, true),
        p.to_json(),
        render_markdown(&p, MARKDOWN_LIMIT),
        format!("{p:?}"),
    ];
    for (i, out) in renderings.iter().enumerate() {
        for secret in [
            SECRET_HEADER,
            "hunter2",
            encoded_script.as_str(),
            SECRET_URL_TOKEN,
        ] {
            assert!(
                !out.contains(secret),
                "rendering {i} shows secret {secret:?}"
            );
        }
    }
    // What is shown instead: a placeholder, with no hash and no length of the value.
    let hashed = ovhform::plan::redact::hash_len(SECRET_HEADER.as_bytes());
    for (i, out) in renderings.iter().enumerate() {
        assert!(
            !out.contains(&hashed),
            "rendering {i} shows a hash of a secret"
        );
    }
    assert!(renderings[2].contains("<credential>") && renderings[2].contains("<secret>"));
}

/// 1,000 servers: every 7th has a new generation (reinstall), every 11th a settings change,
/// one waits, the rest are in sync.
fn big_fleet_plan() -> ovhform::plan::Plan {
    let (mut d, mut o, r) = testkit::fleet(1000, now(), true);
    for (i, ds) in d.servers.values_mut().enumerate() {
        if i % 7 == 3 {
            ds.install.as_mut().unwrap().generation = 2;
        }
        if i % 11 == 5 {
            ds.settings.monitoring = Some(true);
        }
    }
    let busy = o.servers.values_mut().nth(500).unwrap();
    busy.detail
        .as_mut()
        .unwrap()
        .tasks
        .push(ovhform::model::Task {
            id: 99,
            function: "hardReboot".into(),
            status: ovhform::model::TaskStatus::Doing,
            comment: None,
            start_date: None,
            done_date: None,
        });
    plan_ok(&d, &o, &r, &input())
}

#[test]
fn thousand_server_fleet_summary() {
    let p = big_fleet_plan();
    let text = render_text(&p, false);
    let mut summary: Vec<&str> = text.lines().rev().take(2).collect();
    summary.reverse();
    insta::assert_snapshot!("fleet_1000_text_summary", summary.join("\n"));
    insta::assert_json_snapshot!("fleet_1000_json_summary", p.summary());
    let md = render_markdown(&p, MARKDOWN_LIMIT);
    assert!(md.len() <= MARKDOWN_LIMIT, "markdown is {} bytes", md.len());
    assert!(md.contains("more server(s) not detailed here"));
    // A small cap keeps the golden file readable while showing the truncation note.
    let capped = render_markdown(&p, 12_000);
    assert!(
        capped.len() <= 12_000,
        "capped markdown is {} bytes",
        capped.len()
    );
    insta::assert_snapshot!("fleet_1000_markdown_capped", capped);
}

#[test]
fn exit_codes_and_colour_decision() {
    use ovhform::cli::render::{color_wanted, plan_exit_code};
    let (d, o, r) = testkit::fleet(3, now(), true);
    let clean = plan_ok(&d, &o, &r, &input());
    assert_eq!(plan_exit_code(&clean, true), 0);
    let mut d2 = d.clone();
    d2.servers.values_mut().next().unwrap().settings.monitoring = Some(true);
    let changed = plan_ok(&d2, &o, &r, &input());
    assert_eq!(
        (
            plan_exit_code(&changed, false),
            plan_exit_code(&changed, true)
        ),
        (0, 2)
    );
    assert_eq!(plan_exit_code(&scenario_plan(), true), 1);
    assert!(color_wanted(true, None));
    assert!(color_wanted(true, Some(std::ffi::OsStr::new(""))));
    assert!(!color_wanted(true, Some(std::ffi::OsStr::new("1"))));
    assert!(!color_wanted(false, None));
}

#[test]
fn no_changes_text_and_markdown() {
    let (d, o, r) = testkit::fleet(3, now(), false);
    let p = plan_ok(&d, &o, &r, &input());
    assert!(!p.has_changes());
    insta::assert_snapshot!("no_changes_text", render_text(&p, false));
    insta::assert_snapshot!("no_changes_markdown", render_markdown(&p, MARKDOWN_LIMIT));
}

/// docs/plan.md documents every finding code (slug, severity and meaning exactly as the
/// table in `plan::finding` says, and no code the table lacks), every action, every blocker
/// and every `plan` flag.
#[test]
fn docs_plan_md_matches_the_code_tables_and_the_flags() {
    use clap::CommandFactory;
    use ovhform::plan::{ActionKind, Blocker, FindingCode, Severity};
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/plan.md"))
        .expect("docs/plan.md");
    for c in FindingCode::ALL {
        let sev = match c.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let row = format!("| `{}` | {sev} | {} |", c.slug(), c.meaning());
        assert!(docs.contains(&row), "docs/plan.md lacks the row: {row}");
    }
    // Every row of the findings table is a real code.
    let table = docs
        .split("## Finding codes")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("a Finding codes section");
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let slug = line.split('`').nth(1).unwrap_or_default();
        assert!(
            FindingCode::from_slug(slug).is_some(),
            "docs/plan.md documents `{slug}`, which the code table lacks"
        );
    }
    for k in ActionKind::ALL {
        assert!(
            docs.contains(&format!("| `{k}` |")),
            "action {k} undocumented"
        );
    }
    for b in Blocker::KINDS {
        assert!(
            docs.contains(&format!("| `{b}` |")),
            "blocker {b} undocumented"
        );
    }
    let cli = ovhform::cli::Cli::command();
    let plan = cli.find_subcommand("plan").expect("plan subcommand");
    for arg in plan.get_arguments() {
        if let Some(long) = arg.get_long()
            && long != "help"
        {
            assert!(
                docs.contains(&format!("`--{long}")),
                "docs/plan.md does not document `plan --{long}`"
            );
        }
    }
}

/// Issue 8, seen: a 166-character tag value erased the WIPE banner and printed "Plan: no
/// changes"; a live `bootScript` set by anyone with PUT rewrote the screen; newlines injected
/// Markdown lines. Control characters, ANSI sequences, bare CRs and bidi overrides planted in
/// a live `bootScript`, a record read back from tags, a task from the API, the catalog's
/// template names and a server name never reach the text or Markdown plan raw.
#[test]
fn regression_hostile_strings_never_reach_a_terminal_or_a_comment_raw() {
    use ovhform::model::{BootMode, BootSpec, RebootPolicy, Task, TaskStatus};
    const EVIL: &str =
        "\x1b[2J\x1b[H\rPlan: no changes.\u{202e}\u{2066}\n## injected\x07\x1b]8;;http://x\x1b\\";
    let (mut d, mut o, mut r) = testkit::fleet(6, now(), true);
    let names: Vec<String> = d.servers.keys().cloned().collect();
    // A plain wipe, so the banner is there to be erased.
    d.servers
        .get_mut(&names[4])
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 2;
    // A tag record disputing the store's, with hostile claims: the finding shows both.
    let mut forged = r.installs[&names[5]].clone();
    forged.os = format!("debian11{EVIL}");
    forged.revision = Some(EVIL.into());
    r.disputes.insert(
        names[5].clone(),
        ovhform::model::RecordDispute {
            store: r.installs[&names[5]].clone(),
            tags: forged,
        },
    );
    // A live bootScript (anyone with PUT) on a server whose manifest wants disk boot.
    o.servers.get_mut(&names[0]).unwrap().boot_script = Some(format!("#!ipxe\n{EVIL}\n"));
    o.servers.get_mut(&names[0]).unwrap().boot_id = None;
    // A record (read back from tags) with hostile OS and fingerprint: the refusal shows them.
    let rec = r.installs.get_mut(&names[1]).unwrap();
    rec.os = format!("debian11{EVIL}");
    rec.fingerprint = format!("sha256:{EVIL}");
    // A task from the API with a hostile function name.
    o.servers
        .get_mut(&names[2])
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .tasks
        .push(Task {
            id: 9,
            function: format!("hardReboot{EVIL}"),
            status: TaskStatus::Doing,
            comment: Some(EVIL.into()),
            start_date: None,
            done_date: None,
        });
    // Hostile catalog names reach a finding's message; the server wants an iPXE boot too.
    let ds = d.servers.get_mut(&names[3]).unwrap();
    ds.install.as_mut().unwrap().generation = 2;
    ds.boot = Some(BootSpec {
        mode: BootMode::Ipxe {
            script: format!("#!ipxe\r\necho {EVIL}\n"),
        },
        reboot: RebootPolicy::Never,
        lease: None,
    });
    o.servers
        .get_mut(&names[3])
        .unwrap()
        .detail
        .as_mut()
        .unwrap()
        .compatible_templates = vec![format!("evil{EVIL}")];
    // A server known only from a hostile record: forget shows its name and record.
    let ghost = format!("ns9.eu{EVIL}");
    let mut grec = r.installs[&names[1]].clone();
    grec.server = ghost.clone();
    r.installs.insert(ghost, grec);

    let p = plan_ok(&d, &o, &r, &input());
    let sgr = |s: &str| -> String {
        // Remove the colour sequences the renderer itself writes; nothing else may remain.
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("\x1b[") {
            out.push_str(&rest[..i]);
            let tail = &rest[i + 2..];
            let end = tail
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(tail.len());
            if tail[end..].starts_with('m') {
                rest = &tail[end + 1..];
            } else {
                out.push_str("\x1b[");
                rest = tail;
            }
        }
        out.push_str(rest);
        out
    };
    let renderings = [
        ("text", render_text(&p, false)),
        ("text colour", sgr(&render_text(&p, true))),
        ("markdown", render_markdown(&p, MARKDOWN_LIMIT)),
    ];
    for (what, out) in &renderings {
        for bad in ['\x1b', '\r', '\x07', '\u{202e}', '\u{2066}'] {
            assert!(!out.contains(bad), "{what} shows {bad:?} raw:\n{out}");
        }
        assert!(
            !out.lines()
                .any(|l| l.starts_with("Plan: no changes") || l.starts_with("## injected")),
            "{what}: a value started a line of its own:\n{out}"
        );
        // The escaped form is what a reviewer sees instead.
        assert!(out.contains("\\x1b[2J"), "{what}");
    }
    // The plan itself is still a plan with changes, and says so.
    assert!(renderings[0].1.contains("WIPE"));
    assert!(
        renderings[0]
            .1
            .lines()
            .any(|l| l.starts_with("Plan: ") && !l.starts_with("Plan: no changes"))
    );
}

/// Seen: the 1,000-server comment listed 20 of 142 wipes under the banner, said "… and 122
/// more (see below)", and detailed 9: 133 wipes were named nowhere. The banner names every
/// server to be wiped, whatever the size limit; only the per-server details are cut, and the
/// comment says so and where the full plan is.
#[test]
fn regression_the_markdown_banner_names_every_wipe() {
    let p = big_fleet_plan();
    let wipes: Vec<&str> = p
        .servers
        .values()
        .filter(|s| {
            s.actions
                .iter()
                .any(|a| a.kind() == ovhform::plan::ActionKind::Reinstall)
        })
        .map(|s| s.server.as_str())
        .collect();
    assert!(wipes.len() > 100, "{}", wipes.len());
    for limit in [MARKDOWN_LIMIT, 12_000] {
        let md = render_markdown(&p, limit);
        let banner = md
            .split("> [!CAUTION]")
            .nth(1)
            .and_then(|b| b.split("\n\n").next())
            .expect("a wipe banner");
        for w in &wipes {
            assert!(
                banner.contains(&format!("`{w}`")),
                "limit {limit}: {w} is not named in the banner"
            );
        }
        assert!(md.contains("every server to be wiped is named in the banner above"));
    }
}

/// The rest of the edge: an API error message (here a failed install step's error, rendered in
/// a finding and a blocker) never reaches the plan raw either.
#[test]
fn regression_a_hostile_api_error_message_is_escaped_in_the_plan() {
    use ovhform::model::{InstallStatus, InstallStep, Task, TaskStatus};
    let (d, mut o, mut r) = testkit::fleet(1, now(), true);
    let name = d.servers.keys().next().unwrap().clone();
    r.installs.clear();
    let detail = o.servers.get_mut(&name).unwrap().detail.as_mut().unwrap();
    detail.tasks.push(Task {
        id: 3,
        function: "reinstallServer".into(),
        status: TaskStatus::OvhError,
        comment: Some("\x1b[2Jcomment".into()),
        start_date: None,
        done_date: None,
    });
    detail.install_status = Some(InstallStatus {
        elapsed_secs: 1,
        steps: vec![InstallStep {
            comment: "step\r\u{202e}one".into(),
            status: "error".into(),
            error: Some("\x1b]0;owned\x07\x1b[1A\rPlan: no changes.".into()),
        }],
    });
    let p = plan_ok(&d, &o, &r, &input());
    for out in [render_text(&p, false), render_markdown(&p, MARKDOWN_LIMIT)] {
        for bad in ['\x1b', '\r', '\x07', '\u{202e}'] {
            assert!(!out.contains(bad), "{bad:?} raw in:\n{out}");
        }
        assert!(out.contains("install-failed"));
    }
}
