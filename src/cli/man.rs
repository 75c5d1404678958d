//! `ovhform man`: manual pages in roff, generated from the clap definitions (clap_mangen), so
//! they cannot drift from what the binary accepts.
//!
//! Owns: where the pages go (stdout, or one file per command in a directory). Must not touch:
//! the arguments themselves (declared once, in each subcommand's module).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use miette::{IntoDiagnostic, WrapErr};

use crate::cli::{Cli, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write ovhform.1 and one page per subcommand (ovhform-plan.1, ovhform-state-show.1, …)
    /// into this directory, created if missing, instead of printing ovhform.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// The top-level page, ovhform.1: synopsis, global options, every subcommand with its summary.
pub fn page() -> Vec<u8> {
    render(&clap_mangen::Man::new(
        Cli::command().disable_help_subcommand(true),
    ))
}

/// A page in plain ASCII: help texts use `…`, `→` and the like, which groff without preconv
/// (and older formatters) reject; `\[uXXXX]` is the portable spelling of any character.
fn render(man: &clap_mangen::Man) -> Vec<u8> {
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail on I/O.
    let _ = man.render(&mut out);
    let text = String::from_utf8_lossy(&out);
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            ascii.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    ascii.into_bytes()
}

/// Writes every page into `dir` and returns their paths, the top-level page first.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    // Built once so that every subcommand carries its full name (ovhform-state-show), and
    // without clap's implicit `help` subcommand, which has no page of its own.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    std::fs::write(&path, render(&man))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    use std::io::Write;
    match args.out_dir {
        None => std::io::stdout()
            .lock()
            .write_all(&page())
            .into_diagnostic()
            .wrap_err("cannot write the manual page")?,
        Some(dir) => {
            let written = write_pages(&dir)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot write manual pages into {}", dir.display()))?;
            let mut out = std::io::stdout().lock();
            for path in written {
                writeln!(out, "{}", crate::escape::line(&path.display().to_string()))
                    .into_diagnostic()?;
            }
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_ascii_with_non_ascii_characters_as_groff_escapes() {
        let cmd = clap::Command::new("x").about("a → b …");
        let text = String::from_utf8(render(&clap_mangen::Man::new(cmd))).unwrap();
        assert!(text.is_ascii());
        assert!(text.contains(r"a \[u2192] b \[u2026]"), "{text}");
    }
}
