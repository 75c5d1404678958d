//! `ovhform schema`: print the JSON Schema of every manifest kind.
//!
//! Owns: the command's flags and output. Must not touch: the schema's content (derived in
//! `manifest/schema.rs`).

use std::io::Write;
use std::process::ExitCode;

use crate::cli::EXIT_OK;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print on one line instead of pretty-printed.
    #[arg(long)]
    pub compact: bool,
}

/// Prints the schema on stdout. For yaml-language-server, save it and point a
/// `# yaml-language-server: $schema=ovhform.schema.json` comment (or the editor's
/// `yaml.schemas` setting) at it.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let schema = crate::manifest::schema();
    let text = if args.compact {
        serde_json::to_string(&schema)
    } else {
        serde_json::to_string_pretty(&schema)
    }
    .map_err(|e| miette::miette!("cannot serialize the schema: {e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| miette::miette!("cannot write the schema: {e}"))?;
    Ok(ExitCode::from(EXIT_OK))
}
