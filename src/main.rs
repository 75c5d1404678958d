//! The `ovhform` binary: parse arguments, set up logging, run a subcommand, map the outcome
//! to a documented exit code (see README.md "Exit codes").

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ovhform::cli::Cli::parse();
    ovhform::cli::init_tracing(&cli.global);
    match ovhform::cli::run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(1)
        }
    }
}
