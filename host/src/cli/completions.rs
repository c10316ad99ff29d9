//! `dscan completions SHELL`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError, exit};

/// Print shell completions for dscan.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell (bash, zsh, fish, elvish, powershell).
    shell: Shell,
}

pub(super) fn run(args: CompletionsArgs) -> Result<u8, CliError> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "dscan", &mut std::io::stdout());
    Ok(exit::OK)
}
