//! `ovhform validate`: load and validate manifests offline, print every diagnostic.
//!
//! Owns: the command's flags, output and exit code, and the machine renderings of diagnostics
//! (`--format json`, `--format github`). Must not touch: validation rules (they live in
//! `manifest/`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{EXIT_ERROR, EXIT_OK};
use crate::escape;
use crate::manifest::{self, Diag, Diagnostics};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the manifests are valid, 1 when they are not.\n\
    Every error is printed (not only the first) with file:line:column, a code and a hint;\n\
    docs/manifest.md lists every field and every code. With --format json or github the\n\
    diagnostics go to stdout and the summary stays on stderr."
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
    /// Diagnostics as text for people (stderr), a JSON array for tools (stdout), or GitHub
    /// Actions workflow commands that annotate the pull request's files (stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
}

/// Said when some checks were skipped because of the errors reported.
pub const MORE_CHECKS: &str =
    "some checks did not run where these errors are: more checks run once they are fixed";

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
    let format = args.format;
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
            let rendered = render(&loaded.warnings, format, color);
            // The process ends right after: freeing a 10,000-server desired state piece by
            // piece costs more than a tenth of a second and buys nothing.
            std::mem::forget(loaded);
            (ok, rendered, summary)
        }
        Err(diags) => {
            let mut summary = format!("invalid: {}", diags.summary());
            if diags.checks_skipped() {
                summary.push_str(&format!("\n{MORE_CHECKS}"));
            }
            (false, render(&diags, format, color), summary)
        }
    };
    // A closed stream must not turn a result into a panic; the exit code still tells.
    if format == Format::Text {
        let _ = write!(err, "{rendered}");
    } else {
        let _ = std::io::stdout().lock().write_all(rendered.as_bytes());
    }
    let _ = writeln!(err, "{summary}");
    Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_ERROR }))
}

fn render(diags: &Diagnostics, format: Format, color: bool) -> String {
    match format {
        Format::Text => diags.render(color),
        Format::Json => json(diags),
        Format::Github => github(diags),
    }
}

/// One diagnostic in `--format json`, fields in this order.
#[derive(serde::Serialize)]
struct JsonDiag<'a> {
    file: Option<std::borrow::Cow<'a, str>>,
    line: Option<u32>,
    column: Option<u32>,
    code: &'static str,
    slug: &'static str,
    severity: &'static str,
    message: std::borrow::Cow<'a, str>,
    hint: std::borrow::Cow<'a, str>,
}

/// A JSON array, one object per diagnostic: `file` (as given, `null` when there is none),
/// `line` and `column` (1-based, `null` when unknown), `code` (`E0301`), `slug`, `severity`
/// (`error`, `warning`), `message`, `hint`. Message and hint are escaped as on a terminal
/// (they quote manifest values, and tools print them). Newline-terminated; `[]` when there
/// is nothing.
pub fn json(diags: &Diagnostics) -> String {
    let items: Vec<JsonDiag> = diags
        .iter()
        .map(|d| {
            let known = |n: u32| (d.line > 0).then_some(n);
            JsonDiag {
                file: d.file.as_ref().map(|f| f.to_string_lossy()),
                line: known(d.line),
                column: known(d.column),
                code: d.code.id(),
                slug: d.code.slug(),
                severity: severity(d),
                message: escape::line(&d.message),
                hint: escape::line(&d.hint),
            }
        })
        .collect();
    // Serialising strings and numbers cannot fail.
    let mut out = serde_json::to_string_pretty(&items).unwrap_or_default();
    out.push('\n');
    out
}

fn severity(d: &Diag) -> &'static str {
    if d.is_error() { "error" } else { "warning" }
}

/// One GitHub Actions workflow command per diagnostic, which the runner turns into an
/// annotation on the file and line:
/// `::error file=manifests/web.yaml,line=7,col=5,title=E0301 hostname-invalid::message`, the
/// hint on a second line of the message. Then, when checks were skipped, a `::notice` saying
/// so. Values are escaped as the runner unescapes them (`%`, CR, LF; in properties also `:`
/// and `,`) after the terminal escaping every renderer applies, so that no manifest value can
/// end the command early or start one of its own.
pub fn github(diags: &Diagnostics) -> String {
    let mut out = String::new();
    for d in diags {
        let mut props = Vec::new();
        if let Some(file) = &d.file {
            props.push(format!(
                "file={}",
                github_property(&escape::line(&file.to_string_lossy()))
            ));
            if d.line > 0 {
                props.push(format!("line={}", d.line));
                props.push(format!("col={}", d.column));
            }
        }
        props.push(format!("title={}", github_property(&d.code.to_string())));
        let message = format!(
            "{}\nhint: {}",
            escape::line(&d.message),
            escape::line(&d.hint)
        );
        out.push_str(&format!(
            "::{} {}::{}\n",
            severity(d),
            props.join(","),
            github_data(&message)
        ));
    }
    if diags.checks_skipped() {
        out.push_str(&format!(
            "::notice title=ovhform validate::{}\n",
            github_data(MORE_CHECKS)
        ));
    }
    out
}

/// A workflow command's message: the runner turns `%25`, `%0D` and `%0A` back into `%`, CR
/// and LF.
fn github_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as a message, plus `:` and `,`, which would end it.
fn github_property(s: &str) -> String {
    github_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes_what_would_end_or_start_a_command() {
        assert_eq!(github_data("100% a\r\nb"), "100%25 a%0D%0Ab");
        assert_eq!(github_property("a:b,c%d\ne"), "a%3Ab%2Cc%25d%0Ae");
        // `%` first: an escape already in the text is not taken for one of ours.
        assert_eq!(github_data("%0A"), "%250A");
    }
}
