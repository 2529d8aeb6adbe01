//! The layering holds: nothing below the command line reads standard input,
//! exits the process, builds a runtime or knows clap, and the test server is
//! not shipped in the binary.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_below_the_cli_touches_the_terminal_the_process_or_clap() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let below_cli = files
        .iter()
        .filter(|p| !p.starts_with(root.join("cli")) && !p.ends_with("main.rs"));
    let mut found = Vec::new();
    for path in below_cli {
        let text = std::fs::read_to_string(path).unwrap();
        for needle in [
            "clap::",
            "process::exit",
            "stdin()",
            "runtime::Builder",
            "tokio::signal",
            "indicatif",
            "crate::cli",
        ] {
            if text.contains(needle) {
                found.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_test_server_is_a_dev_dependency_only() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let normal = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap();
    assert!(!normal.contains("fonestorm-testserver"), "{normal}");
}
