//! `callbook completions` and `callbook man`: generated from the clap
//! definitions, so every subcommand the binary has is offered and documented.

mod support;

use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

/// The visible subcommands of the binary, from its own definitions.
fn subcommands() -> Vec<String> {
    callbook::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

fn script(shell: &str) -> String {
    let out = support::run(&["completions", shell]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    out.stdout
}

fn mentions_every_subcommand(shell: &str) {
    let text = script(shell);
    assert!(text.len() > 500, "{shell}: {text}");
    for sub in subcommands() {
        assert!(
            text.contains(&sub),
            "{shell} script does not mention `{sub}`"
        );
    }
    assert!(text.contains("--dry-run"), "{shell}: no `run` flags");
}

#[test]
fn bash_completions_mention_every_subcommand() {
    mentions_every_subcommand("bash");
}

#[test]
fn zsh_completions_mention_every_subcommand() {
    mentions_every_subcommand("zsh");
}

#[test]
fn fish_completions_mention_every_subcommand() {
    mentions_every_subcommand("fish");
}

#[test]
fn powershell_completions_mention_every_subcommand() {
    mentions_every_subcommand("powershell");
}

#[test]
fn elvish_completions_mention_every_subcommand() {
    mentions_every_subcommand("elvish");
}

#[test]
fn the_bash_script_parses() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "callbook.bash", script("bash"));
    match Command::new("bash").arg("-n").arg(&path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("skipped: bash is not installed ({e})"),
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = support::run(&["completions", "tcsh"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("bash"), "{}", out.stderr);
}

/// Every visible command and subcommand, as man page file names.
fn expected_pages() -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", sub.get_name());
            out.push(format!("{name}.1"));
            walk(sub, &name, out);
        }
    }
    let mut pages = vec!["callbook.1".to_string()];
    walk(&callbook::cli::Cli::command(), "callbook", &mut pages);
    pages
}

#[test]
fn man_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("share/man/man1");
    let out = support::finish(support::callbook().arg("man").arg(&target));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let expected = expected_pages();
    assert!(expected.len() >= 10, "{expected:?}");
    assert!(expected.contains(&"callbook-hooks-install.1".to_string()));
    let mut written: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(written, want);
    let run = std::fs::read_to_string(target.join("callbook-run.1")).unwrap();
    assert!(run.starts_with(".ie") || run.contains(".TH"), "{run}");
    assert!(run.contains("dry\\-run"), "{run}");
}

#[test]
fn man_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::finish(support::callbook().arg("man").arg(dir.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    for page in expected_pages() {
        let path = dir.path().join(&page);
        let rendered = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-P", "-cbou"])
            .arg(&path)
            .output();
        match rendered {
            Ok(r) => {
                assert!(r.status.success(), "{page}: {r:?}");
                let text = String::from_utf8_lossy(&r.stdout);
                assert!(text.contains("NAME"), "{page}: {text}");
                let warnings = String::from_utf8_lossy(&r.stderr);
                assert!(warnings.trim().is_empty(), "{page}: {warnings}");
            }
            Err(e) => {
                eprintln!("skipped: groff is not installed ({e}), so {page} is not rendered");
                return;
            }
        }
    }
}

#[test]
fn man_l_shows_a_page_when_man_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::finish(support::callbook().arg("man").arg(dir.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let page = dir.path().join("callbook-validate.1");
    match Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        Ok(r) if r.status.success() => {
            let text = String::from_utf8_lossy(&r.stdout);
            assert!(text.contains("callbook-validate"), "{text}");
        }
        Ok(r) => panic!("man -l failed: {r:?}"),
        Err(e) => eprintln!("skipped: man is not installed ({e})"),
    }
}

#[test]
fn man_refuses_a_directory_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    // A path under a regular file cannot be a directory, even for root.
    let file = Path::new(&support::write(dir.path(), "plain-file", "x")).to_path_buf();
    let target = file.join("man");
    let out = support::finish(support::callbook().arg("man").arg(&target));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot write man pages to `{}`", target.display())),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn man_refuses_a_read_only_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ro");
    std::fs::create_dir(&target).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(target.join("probe"), "x").is_ok() {
        eprintln!("skipped: this user (root) can write a read-only directory");
        return;
    }
    let out = support::finish(support::callbook().arg("man").arg(&target));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
}
