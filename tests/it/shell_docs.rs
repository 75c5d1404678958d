//! What ovhform ships besides the binary, produced by the binary and checked by the tools that
//! consume it: `ovhform completions` (bash, zsh, fish: each shell's own syntax check when it is
//! installed — scripts/test.sh installs them — and completions actually computed by bash and
//! fish), `ovhform man` (roff that groff renders without a warning, listing every subcommand;
//! one page per command with `--out-dir`), and the documentation naming only commands that
//! exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;

use crate::cli_support::repo;

fn ovhform(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(args)
        .env_clear()
        .output()
        .expect("run ovhform");
    assert!(
        out.status.success(),
        "ovhform {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The visible subcommands, from the same definitions the binary parses with; never empty.
fn subcommands(cmd: &clap::Command) -> Vec<String> {
    let names: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_owned())
        .collect();
    names
}

fn top_level() -> Vec<String> {
    let names = subcommands(&ovhform::cli::Cli::command());
    for known in ["plan", "apply", "run", "completions", "man", "healthcheck"] {
        assert!(names.iter().any(|n| n == known), "{known} in {names:?}");
    }
    names
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("start the tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_completion_script_passes_its_shells_syntax_check_and_names_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let names = top_level();
    for shell in ["bash", "zsh", "fish"] {
        let script = ovhform(&["completions", shell]).stdout;
        let text = String::from_utf8(script.clone()).unwrap();
        for name in &names {
            assert!(text.contains(name.as_str()), "{shell}: no {name}");
        }
        let path = write(dir.path(), &format!("ovhform.{shell}"), &script);
        let syntax = match shell {
            "bash" => "-n",
            "zsh" => "-n",
            _ => "--no-execute",
        };
        if installed(shell) {
            run_ok(Command::new(shell).arg(syntax).arg(&path));
        } else {
            // Without the shell (scripts/test.sh installs it), the script's shape at least.
            eprintln!("{shell} is not installed: structural check only");
            match shell {
                "zsh" => {
                    assert!(text.starts_with("#compdef ovhform\n"), "{text:.200}");
                    assert!(text.contains("_ovhform_commands()"));
                }
                "fish" => {
                    for name in &names {
                        let line = format!("-n \"__fish_ovhform_needs_command\" -f -a \"{name}\"");
                        assert!(text.contains(&line), "fish: {line}");
                    }
                }
                _ => unreachable!("bash runs every test"),
            }
        }
    }
}

/// bash itself computes completions from the script: subcommands, a subcommand's flags, the
/// values of an enum argument.
#[test]
fn bash_completes_subcommands_flags_and_values_from_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "ovhform.bash",
        &ovhform(&["completions", "bash"]).stdout,
    );
    let complete = |line: &str| -> BTreeSet<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            r#"source "$1"
COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}
_ovhform ovhform "{cur}" "{prev}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            words = words
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        run_ok(
            Command::new("bash")
                .arg("-c")
                .arg(script)
                .arg("x")
                .arg(&path),
        )
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let all = complete("ovhform ");
    for name in top_level() {
        assert!(all.contains(&name), "{name} in {all:?}");
    }
    assert_eq!(
        complete("ovhform comp"),
        BTreeSet::from(["completions".to_owned()])
    );
    assert_eq!(
        complete("ovhform completions "),
        ["bash", "zsh", "fish"]
            .into_iter()
            .map(str::to_owned)
            .chain(
                [
                    "--help",
                    "--log-format",
                    "--quiet",
                    "--verbose",
                    "-h",
                    "-q",
                    "-v"
                ]
                .map(str::to_owned)
            )
            .collect()
    );
    let plan = complete("ovhform plan --");
    assert!(
        plan.contains("--detailed-exitcode") && plan.contains("--manifests"),
        "{plan:?}"
    );
    assert!(
        !plan.contains("--allow-wipe"),
        "apply's flag offered to plan: {plan:?}"
    );
}

/// fish computes the same subcommand completions (only where fish is installed: the syntax
/// test above covers the script otherwise).
#[test]
fn fish_completes_subcommands_from_the_script() {
    if !installed("fish") {
        eprintln!("fish is not installed: covered by the structural check only");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "ovhform.fish",
        &ovhform(&["completions", "fish"]).stdout,
    );
    let out = run_ok(
        Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg("source $argv[1]; complete -C 'ovhform heal'; complete -C 'ovhform plan --detailed'")
            .arg(&path),
    );
    let firsts: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(firsts, ["healthcheck", "--detailed-exitcode"], "{out}");
}

fn groff_check(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=200n"])
        .arg(page)
        .output()
        .expect("groff");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.is_empty(),
        "{}: {warnings}",
        page.display()
    );
    // Rendered text: drop overstrike (bold x\bx, underline _\bx) to compare plain words.
    let raw = String::from_utf8_lossy(&out.stdout);
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        text.push(c);
    }
    text.replace(['\u{2010}', '\u{2212}'], "-")
}

#[test]
fn the_man_page_renders_without_warnings_and_lists_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let roff = ovhform(&["man"]).stdout;
    let text = String::from_utf8(roff.clone()).unwrap();
    assert!(text.contains(".TH ovhform 1"), "{text:.300}");
    let section = text
        .split(".SH SUBCOMMANDS")
        .nth(1)
        .expect("a SUBCOMMANDS section")
        .split("\n.SH ")
        .next()
        .unwrap();
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("ovhform\\-")?.strip_suffix("(1)"))
        .collect();
    let names = top_level();
    assert_eq!(
        listed
            .iter()
            .map(|s| s.replace("\\-", "-"))
            .collect::<Vec<_>>(),
        names,
        "every subcommand, in order, and no `help`"
    );
    let page = write(dir.path(), "ovhform.1", &roff);
    if installed("groff") {
        let rendered = groff_check(&page);
        for name in &names {
            assert!(
                rendered.contains(&format!("ovhform-{name}(1)")),
                "{name}:\n{rendered}"
            );
        }
    } else {
        eprintln!("groff is not installed: the page was not rendered");
    }
    if installed("man") {
        // man-db reads the file as a reader would (`man -l`), formatting included.
        let out = run_ok(
            Command::new("man")
                .args(["-l", "-P", "cat"])
                .arg(&page)
                .env("MANWIDTH", "200"),
        );
        assert!(out.contains("SUBCOMMANDS"), "{out}");
    }
}

#[test]
fn man_out_dir_writes_one_page_per_command_each_rendering_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man/man1");
    let out = ovhform(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    let printed: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert_eq!(printed, on_disk);
    let mut expected = vec!["ovhform.1".to_owned()];
    let cli = ovhform::cli::Cli::command();
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        expected.push(format!("ovhform-{}.1", sub.get_name()));
        for nested in subcommands(sub) {
            expected.push(format!("ovhform-{}-{nested}.1", sub.get_name()));
        }
    }
    assert!(
        expected.contains(&"ovhform-state-show.1".to_owned()),
        "{expected:?}"
    );
    let names: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, expected.into_iter().collect());
    if installed("groff") {
        for page in &on_disk {
            groff_check(Path::new(page));
        }
        let plan = groff_check(&out_dir.join("ovhform-plan.1"));
        assert!(plan.contains("--detailed-exitcode"), "{plan}");
    }
}

/// Every `ovhform WORD …` in README.md and docs/*.md — in code blocks and inline code — names a
/// subcommand that exists (and, for `state`, a subcommand of it): documentation cannot
/// advertise a command that was renamed or never built.
#[test]
fn the_documentation_names_only_commands_that_exist() {
    let cli = ovhform::cli::Cli::command();
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            let mut uses: Vec<&str> = Vec::new();
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if in_code {
                let l = line.trim_start();
                uses.push(l.strip_prefix("$ ").unwrap_or(l));
            } else {
                uses.extend(line.split('`').skip(1).step_by(2));
            }
            for used in uses {
                let mut words = used.split_whitespace();
                if words.next() != Some("ovhform") {
                    continue;
                }
                let Some(word) = words.next().filter(|w| !w.starts_with('-')) else {
                    continue;
                };
                checked += 1;
                let at = format!("{}:{}: `{used}`", file.display(), n + 1);
                match cli.find_subcommand(word) {
                    None => wrong.push(at),
                    Some(sub) if sub.has_subcommands() => {
                        if let Some(nested) = words.next().filter(|w| !w.starts_with('-'))
                            && sub.find_subcommand(nested).is_none()
                        {
                            wrong.push(at);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} uses found: the scan is broken"
    );
    assert!(
        wrong.is_empty(),
        "commands that do not exist:\n{}",
        wrong.join("\n")
    );
}
