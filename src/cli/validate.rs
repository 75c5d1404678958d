//! `ovhform validate`: load and validate manifests offline.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (searched recursively for .yaml/.yml). Default: manifests/
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(_args: Args) -> miette::Result<ExitCode> {
    todo!("manifest validation")
}
