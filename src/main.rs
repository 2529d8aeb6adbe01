//! The `callbook` binary: parse arguments, run, exit with the code [`callbook::exit::Exit`] names.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = callbook::cli::Cli::parse();
    callbook::app::main(cli).into()
}
