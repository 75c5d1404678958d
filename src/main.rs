//! The `ovhform` binary: parse arguments, set up logging, run a subcommand, map the outcome
//! to a documented exit code (see README.md "Exit codes").

// No unsafe code anywhere in ovhform: memory safety is the compiler's, not a review's.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit 1 like every other error: exit 2 means "changes present" (plan
    // --detailed-exitcode), so clap's own code 2 would be misread by CI scripts.
    let cli = match ovhform::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let daemon = matches!(cli.command, ovhform::cli::Command::Run(_));
    ovhform::cli::init_tracing_for(&cli.global, daemon);
    match ovhform::cli::run(cli) {
        Ok(code) => code,
        Err(report) => {
            // Errors quote the API (messages, bodies) and other text from outside: rendered
            // without colour, then escaped, so nothing in them reaches the terminal raw.
            let handler = miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            );
            let mut out = String::new();
            if handler.render_report(&mut out, report.as_ref()).is_err() {
                out = format!("{report:?}");
            }
            eprintln!("{}", ovhform::escape::block(&out));
            ExitCode::from(1)
        }
    }
}
