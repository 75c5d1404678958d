//! The intent-journal model (src/apply/journal.pml) stays wired and honest: spin itself runs in
//! scripts/model-check.sh (called by scripts/test.sh before the tests), and this test checks what
//! that script cannot — that the model's header, which maps the protocol to the model, names
//! only steps the model has, that every flawed variant the header lists is one the script runs
//! (and expects to fail), and that scripts/test.sh still runs the check before `cargo test`.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The model's header comment and the rest.
fn model() -> (String, String) {
    let text = read("src/apply/journal.pml");
    let end = text
        .find("*/")
        .expect("journal.pml starts with a header comment");
    (text[..end].to_string(), text[end + 2..].to_string())
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

#[test]
fn the_header_names_only_steps_the_model_has() {
    let (header, code) = model();
    // `name:` in backticks, in the header.
    let named: BTreeSet<&str> = header
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| s.strip_suffix(':'))
        .filter(|s| is_label(s))
        .collect();
    // `name:` at the start of a line, in the model.
    let labels: BTreeSet<&str> = code
        .lines()
        .filter_map(|l| l.trim_start().split_once(':'))
        .map(|(label, _)| label)
        .filter(|s| is_label(s))
        .collect();
    assert!(
        named.len() >= 15,
        "the header maps the protocol's steps: {named:?}"
    );
    let missing: Vec<_> = named.difference(&labels).collect();
    assert!(
        missing.is_empty(),
        "journal.pml's header names steps the model has no label for: {missing:?}"
    );
}

#[test]
fn every_flawed_variant_is_defined_and_checked_to_fail() {
    let (header, code) = model();
    let script = read("scripts/model-check.sh");
    let variants: Vec<&str> = header
        .lines()
        .skip_while(|l| !l.contains("Variants"))
        .take_while(|l| !l.contains("Assumptions"))
        .filter_map(|l| l.trim_start_matches([' ', '*']).split_whitespace().next())
        .filter(|w| w.len() > 3 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    assert!(
        variants.contains(&"BROKEN") && variants.len() >= 2,
        "the header lists the flawed variants: {variants:?}"
    );
    for v in variants {
        assert!(
            code.contains(&format!("#ifdef {v}")) || code.contains(&format!("#ifndef {v}")),
            "variant {v} is listed in journal.pml's header but the model never tests it"
        );
        let checked = if v == "BROKEN" {
            read("src/apply/journal_broken.pml").contains("#define BROKEN")
                && script.contains("check broken fail journal_broken.pml")
        } else {
            script.lines().any(|l| {
                l.starts_with("check ") && l.contains(" fail ") && l.contains(&format!("-D{v}"))
            })
        };
        assert!(
            checked,
            "scripts/model-check.sh does not expect variant {v} to fail"
        );
    }
    assert!(
        script.contains("check protocol pass journal.pml"),
        "scripts/model-check.sh checks the protocol itself"
    );
}

#[test]
fn the_test_script_runs_the_model_check_before_the_tests() {
    let test_sh = read("scripts/test.sh");
    let lines: Vec<&str> = test_sh
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let check = lines
        .iter()
        .position(|l| l.contains("scripts/model-check.sh"));
    let tests = lines.iter().position(|l| l.contains("cargo test"));
    match (check, tests) {
        (Some(c), Some(t)) => assert!(
            c < t,
            "scripts/test.sh runs the model check after the tests"
        ),
        _ => panic!("scripts/test.sh must run scripts/model-check.sh, then cargo test"),
    }
}
