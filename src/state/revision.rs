//! The manifests' git revision, recorded with each install and saved plan so that a reviewer can
//! tell which commit a server was built from.
//!
//! Owns: asking the `git` program. Must not touch: the repository (read-only commands, with
//! `--no-optional-locks` so that `git status` does not even refresh the index).

use std::path::Path;
use std::process::{Command, Stdio};

/// The commit checked out where `dir` lives, with a `-dirty` suffix when anything under `dir`
/// differs from it (modified, staged or untracked files). `None` when git is not installed,
/// `dir` is not in a git work tree, or the repository has no commit yet — a revision is a
/// nice-to-have, never a reason to fail.
pub fn manifests_revision(dir: &Path) -> Option<String> {
    let head = git(dir, &["rev-parse", "--verify", "HEAD"])?;
    let head = head.trim();
    if head.is_empty() || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // `-C dir` makes the pathspec `.` mean `dir`, so changes elsewhere in the repository do not
    // mark these manifests dirty.
    let status = git(dir, &["status", "--porcelain", "--", "."])?;
    if status.trim().is_empty() {
        Some(head.to_string())
    } else {
        Some(format!("{head}-dirty"))
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}
