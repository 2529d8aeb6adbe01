//! `callbook completions SHELL`: a completion script for bash, zsh, fish,
//! PowerShell or elvish, generated from the clap definitions so that it can
//! never offer a flag the binary does not take.
//!
//! The script goes to standard output, to be sourced or saved where the
//! shell looks for completions (docs/authoring.md says where).

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::args::Cli;
use super::exit::Exit;

/// Prints the completion script of `shell` on standard output.
pub(super) fn completions(shell: Shell) -> Exit {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "callbook", &mut script);
    super::print_stdout(&String::from_utf8_lossy(&script));
    Exit::Success
}
