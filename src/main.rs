//! The `callbook` binary: parse arguments, run, exit with the code [`callbook::cli::exit::Exit`] names.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = callbook::cli::Cli::parse();
    callbook::cli::main(cli).into()
}
