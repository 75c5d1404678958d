//! `ovhform completions SHELL`: the shell completion script for bash, zsh or fish, generated
//! from the same clap definitions that parse the command line (clap_complete).
//!
//! Owns: the choice of shells and writing the script on stdout. Must not touch: the
//! arguments themselves (declared once, in each subcommand's module).

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells whose scripts the test suite checks with the shell itself (`bash -n`, `zsh -n`,
/// `fish --no-execute`): clap_complete knows more, but an unchecked script is not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The completion script for `shell`, as text.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut Cli::command(), "ovhform", &mut out);
    out
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(&script(args.shell))
        .map_err(|e| miette::miette!("cannot write the completion script: {e}"))?;
    Ok(ExitCode::from(EXIT_OK))
}
