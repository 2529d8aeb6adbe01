//! The `callbook` binary: parse arguments, run, exit with the code `cli.md` defines.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = callbook::cli::Cli::parse();
    callbook::app::main(cli).into()
}
