//! `ovhform validate`: load and validate manifests offline, print every diagnostic.
//!
//! Owns: the command's flags, output and exit code. Must not touch: validation rules (they
//! live in `manifest/`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{EXIT_ERROR, EXIT_OK};
use crate::manifest;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the manifests are valid, 1 when they are not.\n\
    Every error is printed (not only the first) with file:line:column, a code and a hint;\n\
    docs/manifest.md lists every field and every code."
)]
pub struct Args {
    /// Manifest files or directories (directories are searched recursively for .yaml/.yml,
    /// hidden entries skipped). Default: manifests/
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Color in diagnostics: auto (when stderr is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Treat warnings as errors (exit 1 if there is any warning).
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    pub fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
            }
        }
    }
}

/// Exit 0 when the manifests are valid, 1 when they are not. Diagnostics and the one-line
/// summary go to stderr; stdout stays empty.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("manifests")]
    } else {
        args.paths
    };
    let color = args.color.enabled();
    let mut err = std::io::stderr().lock();
    let (ok, rendered, summary) = match manifest::load(&paths) {
        Ok(loaded) => {
            let d = &loaded.desired;
            let ok = !args.deny_warnings || loaded.warnings.is_empty();
            let verdict = if ok {
                "valid"
            } else {
                "invalid (warnings denied)"
            };
            let mut summary = format!(
                "{verdict}: {} servers, {} groups, {} maintenance windows",
                d.servers.len(),
                d.groups.len(),
                d.windows.len(),
            );
            if !loaded.warnings.is_empty() {
                summary.push_str(&format!("; {}", loaded.warnings.summary()));
            }
            let rendered = loaded.warnings.render(color);
            // The process ends right after: freeing a 10,000-server desired state piece by
            // piece costs more than a tenth of a second and buys nothing.
            std::mem::forget(loaded);
            (ok, rendered, summary)
        }
        Err(diags) => (
            false,
            diags.render(color),
            format!("invalid: {}", diags.summary()),
        ),
    };
    // A closed stderr must not turn a result into a panic; the exit code still tells.
    let _ = write!(err, "{rendered}");
    let _ = writeln!(err, "{summary}");
    Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_ERROR }))
}
