//! `callbook man [DIR]`: writes one man page per command and subcommand
//! (`callbook.1`, `callbook-run.1`, `callbook-hooks-install.1` …), generated
//! from the clap definitions so that the manual cannot drift from the flags.
//!
//! Every page is rendered in memory first, so a page that cannot be made
//! writes nothing; a directory that cannot be written is refused with its
//! path and the reason (exit 2, as an unwritable `--report-file` is).
//! Existing pages of the same names are replaced: they are generated output.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

use super::Output;
use super::args::Cli;
use super::exit::{Exit, Failure};
use crate::diag::Diagnostic;
use crate::playbook::io_reason;

/// Where the pages go when no DIR is given.
pub const DEFAULT_DIR: &str = "man";

/// One rendered page: its file name and its roff text.
struct Page {
    file: String,
    roff: Vec<u8>,
}

/// Writes the man pages into `dir` (default [`DEFAULT_DIR`]), creating it
/// when missing, and names each file written on standard error.
pub(super) fn man(dir: Option<&Path>, out: &Output<'_>) -> Result<Exit, Failure> {
    let dir = dir.map_or_else(|| PathBuf::from(DEFAULT_DIR), Path::to_path_buf);
    let pages = pages().map_err(|e| refused(&dir, &e))?;
    std::fs::create_dir_all(&dir).map_err(|e| refused(&dir, &e))?;
    for page in &pages {
        let path = dir.join(&page.file);
        std::fs::write(&path, &page.roff).map_err(|e| refused(&path, &e))?;
    }
    out.note(&format!(
        "wrote {} man pages to `{}` (read one with `man -l {}`)",
        pages.len(),
        dir.display(),
        dir.join("callbook.1").display()
    ));
    Ok(Exit::Success)
}

/// Every page: the top command and each visible subcommand, depth first.
fn pages() -> std::io::Result<Vec<Page>> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    collect(command, &mut pages)?;
    Ok(pages)
}

fn collect(command: clap::Command, pages: &mut Vec<Page>) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub.clone(), pages)?;
    }
    let man = clap_mangen::Man::new(command);
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    pages.push(Page {
        file: man.get_filename(),
        roff,
    });
    Ok(())
}

fn refused(path: &Path, e: &std::io::Error) -> Failure {
    Failure::Invalid(vec![Diagnostic::error(
        None,
        format!(
            "cannot write man pages to `{}`: {}",
            path.display(),
            io_reason(e)
        ),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_a_page() {
        let files: Vec<String> = pages().unwrap().into_iter().map(|p| p.file).collect();
        for want in ["callbook.1", "callbook-run.1", "callbook-hooks-install.1"] {
            assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
        }
        assert!(!files.iter().any(|f| f.contains("help")), "{files:?}");
    }
}
