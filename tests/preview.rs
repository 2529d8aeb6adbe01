//! `callbook preview`: one recipient's message rendered by the plan and
//! spoken by `espeak-ng` into a WAV file; what a connect or a sound file
//! would do; why a recipient is skipped; and clear refusals.
//!
//! Tests that need `espeak-ng` say that they skip when it is missing
//! (`.ci/run` installs it). A stand-in `espeak-ng` (a shell script first on
//! `PATH`) records what it was given, to show how the message is handed
//! over: on standard input, never through a shell.

mod support;

use std::path::{Path, PathBuf};

use support::{Outcome, callbook, finish};

const PLAYBOOK: &str = "tests/fixtures/preview/preview.yaml";

fn playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAYBOOK)
}

fn espeak_installed() -> bool {
    std::process::Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `callbook preview PLAYBOOK ARGS` run in `dir`.
fn preview_in(dir: &Path, args: &[&str]) -> Outcome {
    let out = finish(
        callbook()
            .current_dir(dir)
            .arg("preview")
            .arg(playbook())
            .args(args),
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

/// A folder holding a stand-in `espeak-ng` that records its arguments and
/// standard input next to it and writes a small WAV file where `-w` says.
fn fake_espeak(exit_code: i32) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    let script = format!(
        r#"#!/bin/sh
here=$(dirname "$0")
printf '%s\n' "$@" > "$here/args"
cat > "$here/stdin"
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-w" ]; then out="$2"; fi
  shift
done
if [ {exit_code} -ne 0 ]; then echo "stand-in failure" >&2; exit {exit_code}; fi
head -c 2000 /dev/zero | sed 's/^/RIFF/' > "$out"
"#
    );
    let path = bin.path().join("espeak-ng");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `PATH` with `first` in front.
fn path_with(first: &Path) -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", first.display())
}

fn wav_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_ssml_message_is_spoken_into_a_wav_file() {
    if !espeak_installed() {
        eprintln!("skipped: espeak-ng is not installed (apt-get install espeak-ng)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Alice Ng"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(
            "Alice Ng (13214991008), rule `primary hears the page`: SSML\n<speak>Hello Alice Ng."
        ),
        "{}",
        out.stdout
    );
    let wav = std::fs::read(dir.path().join("alice-ng.wav")).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
    // A few seconds of 22 kHz 16-bit speech, not an empty header.
    assert!(wav.len() > 20_000, "{} bytes", wav.len());
    assert_eq!(wav_files(dir.path()), ["alice-ng.wav"]);
    assert!(
        out.stderr.contains("wrote `alice-ng.wav`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_tts_message_is_spoken_into_the_wav_file_given() {
    if !espeak_installed() {
        eprintln!("skipped: espeak-ng is not installed (apt-get install espeak-ng)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("sub-bob.wav");
    let out = preview_in(
        dir.path(),
        &[
            "--recipient",
            "Bob Stone",
            "--var",
            "host=db-02",
            "--wav",
            wav.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("TTS\nHost db-02 is down.\n"),
        "{}",
        out.stdout
    );
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
}

#[test]
fn ssml_goes_to_espeak_as_ssml_on_standard_input() {
    let bin = fake_espeak(0);
    let dir = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", path_with(bin.path()))
            .arg("preview")
            .arg(playbook())
            .args(["--recipient", "Alice Ng"]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let args = std::fs::read_to_string(bin.path().join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], "-m", "{args:?}");
    assert_eq!(args[1], "-w");
    assert_eq!(*args.last().unwrap(), "--stdin");
    let stdin = std::fs::read_to_string(bin.path().join("stdin")).unwrap();
    assert!(stdin.starts_with("<speak>Hello Alice Ng."), "{stdin}");
    assert_eq!(wav_files(dir.path()), ["alice-ng.wav"]);
}

#[test]
fn plain_text_is_not_read_as_ssml() {
    let bin = fake_espeak(0);
    let dir = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", path_with(bin.path()))
            .arg("preview")
            .arg(playbook())
            .args(["--recipient", "Bob Stone"]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let args = std::fs::read_to_string(bin.path().join("args")).unwrap();
    assert!(!args.lines().any(|a| a == "-m"), "{args}");
}

#[test]
fn a_hostile_variable_reaches_espeak_as_text_never_through_a_shell() {
    let bin = fake_espeak(0);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let host = format!(
        "x; touch {} $(touch {}) `touch {}`",
        marker.display(),
        marker.display(),
        marker.display()
    );
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", path_with(bin.path()))
            .arg("preview")
            .arg(playbook())
            .args(["--recipient", "Bob Stone", "--var"])
            .arg(format!("host={host}")),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!marker.exists(), "a shell ran the message");
    let stdin = std::fs::read_to_string(bin.path().join("stdin")).unwrap();
    assert_eq!(stdin, format!("Host {host} is down."));
    let args = std::fs::read_to_string(bin.path().join("args")).unwrap();
    assert!(!args.contains("touch"), "{args}");
}

#[test]
fn a_connect_is_shown_not_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Carol Diaz"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout, @"Carol Diaz (13214991010), rule `bridge`: the call would connect them to the number 13214992200");
    assert!(wav_files(dir.path()).is_empty());
}

#[test]
fn a_sound_file_is_shown_not_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Dan Kim"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout, @"Dan Kim (13214991011), rule `siren`: the call would play the sound file https://sounds.example.com/siren.wav");
    assert!(wav_files(dir.path()).is_empty());
}

#[test]
fn a_skipped_recipient_says_why_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Eve Park"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"error: `Eve Park` would be skipped, rule `away this week`: on holiday");
    assert!(wav_files(dir.path()).is_empty());
}

#[test]
fn a_duplicate_number_is_skipped_as_the_run_would() {
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Frank Ode"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("duplicate of Alice Ng"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_recipient_outside_the_tags_is_not_called() {
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Bob Stone", "--tag", "ssml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("none of the tags `ssml`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_recipient_exits_2_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let out = preview_in(dir.path(), &["--recipient", "Alise Ng"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"error: --recipient: no recipient is named `Alise Ng`, did you mean `Alice Ng`?");
}

#[test]
fn without_espeak_it_says_how_to_install_it_and_exits_3() {
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", empty.path())
            .arg("preview")
            .arg(playbook())
            .args(["--recipient", "Bob Stone"]),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("`espeak-ng` is not installed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("apt-get install espeak-ng"),
        "{}",
        out.stderr
    );
    assert!(
        wav_files(dir.path()).is_empty(),
        "{:?}",
        wav_files(dir.path())
    );
}

#[test]
fn a_failing_espeak_leaves_no_file_and_exits_3() {
    let bin = fake_espeak(1);
    let dir = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", path_with(bin.path()))
            .arg("preview")
            .arg(playbook())
            .args(["--recipient", "Bob Stone"]),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("stand-in failure"), "{}", out.stderr);
    assert!(
        out.stderr.contains("no WAV file was written"),
        "{}",
        out.stderr
    );
    assert!(
        wav_files(dir.path()).is_empty(),
        "{:?}",
        wav_files(dir.path())
    );
}

#[test]
fn the_wav_file_may_not_replace_the_playbook() {
    let dir = tempfile::tempdir().unwrap();
    let copy = support::write(dir.path(), "p.yaml", std::fs::read(playbook()).unwrap());
    let out = finish(callbook().current_dir(dir.path()).args([
        "preview",
        &copy,
        "--recipient",
        "Bob Stone",
        "--wav",
        &copy,
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is the playbook"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(playbook()).unwrap()
    );
}

#[test]
fn a_page_previews_the_first_call_of_its_ladder() {
    let dir = tempfile::tempdir().unwrap();
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages/page.yaml");
    let bin = fake_espeak(0);
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", path_with(bin.path()))
            .arg("preview")
            .arg(&page)
            .args([
                "--recipient",
                "Dana Whitfield",
                "--now",
                "2026-11-26T15:00:00Z",
            ]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Dana Whitfield (13127342210) (step secondary, round 1, at +10m)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(step secondary, round 1)"),
        "{}",
        out.stdout
    );
    assert_eq!(wav_files(dir.path()), ["dana-whitfield.wav"]);
}

#[test]
fn control_characters_in_the_message_are_not_sent_to_the_terminal() {
    let bin = fake_espeak(0);
    let dir = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .current_dir(dir.path())
            .env("PATH", path_with(bin.path()))
            .arg("preview")
            .arg(playbook())
            .args(["--recipient", "Bob Stone", "--var", "host=a\u{1b}[2Jb"]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
}
