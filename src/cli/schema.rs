//! `ovhform schema`: print the JSON Schema of every manifest kind.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> miette::Result<ExitCode> {
    todo!("schema")
}
