//! `callbook init`: a first playbook that validates, tests that pass, and
//! never a file replaced, whatever the name or folder.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

fn init(dir: &Path, extra: &[&str]) -> support::Outcome {
    support::finish(support::callbook().arg("init").arg(dir).args(extra))
}

/// Every file under `dir` with its content, to show that nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(entry.path()).unwrap_or_default());
    }
    files
}

#[test]
fn a_fresh_folder_gets_a_playbook_its_tests_and_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &["--name", "disk-full"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let files: Vec<String> = snapshot(dir.path()).into_keys().collect();
    assert_eq!(
        files,
        [
            "disk-full.test.yaml",
            "disk-full.yaml",
            "playbook.schema.json"
        ]
    );
    let playbook = std::fs::read_to_string(dir.path().join("disk-full.yaml")).unwrap();
    assert!(
        playbook.starts_with("# yaml-language-server: $schema=playbook.schema.json\n"),
        "{playbook}"
    );
    assert!(playbook.contains("\nname: disk-full\n"), "{playbook}");
    let schema = std::fs::read_to_string(dir.path().join("playbook.schema.json")).unwrap();
    assert_eq!(schema, support::run(&["schema"]).stdout);
    assert!(out.stderr.contains("callbook validate"), "{}", out.stderr);
}

#[test]
fn the_playbook_validates_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(init(dir.path(), &[]).code, 0);
    let out = support::finish(
        support::callbook()
            .arg("validate")
            .arg(dir.path().join("playbook.yaml")),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(out.stderr.contains(": ok (1 recipient"), "{}", out.stderr);
}

#[test]
fn a_missing_folder_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b");
    let out = init(&target, &["--name", "x1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(target.join("x1.yaml").is_file());
}

/// `compare` each key of `want` (a mapping) with `got`'s.
fn assert_subset(case: &str, want: &Value, got: &Value) {
    for (key, value) in want.as_object().unwrap() {
        assert_eq!(&got[key], value, "{case}: `{key}` in {got:#}");
    }
}

/// The test file is checked by hand against what the plan is: each case's
/// `expect` is compared with the dry run's JSON report at that case's `now`
/// and `vars`, the way `callbook test` reads them.
#[test]
fn the_test_cases_hold_for_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(init(dir.path(), &["--name", "oncall"]).code, 0);
    let text = std::fs::read_to_string(dir.path().join("oncall.test.yaml")).unwrap();
    let tests: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(tests["playbook"], "oncall.yaml");
    let cases = tests["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let now = case["now"].as_str().unwrap();
        let mut cmd = support::callbook();
        cmd.arg("run").arg(dir.path().join("oncall.yaml")).args([
            "--dry-run",
            "--format",
            "json",
            "--now",
            now,
        ]);
        if let Some(vars) = case["vars"].as_object() {
            for (k, v) in vars {
                cmd.arg("--var").arg(format!("{k}={}", v.as_str().unwrap()));
            }
        }
        let out = support::finish(&mut cmd);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let report = support::json(&out);
        let expect = &case["expect"];
        assert_subset(name, &expect["totals"], &report["totals"]);
        for want in expect["calls"].as_array().unwrap() {
            let who = want["recipient"].as_str().unwrap();
            let got = report["calls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["recipient"] == who)
                .unwrap_or_else(|| panic!("{name}: no call for {who}"));
            for (key, value) in want.as_object().unwrap() {
                match key.as_str() {
                    "message_contains" => {
                        let message = got["service_id"].as_str().unwrap();
                        for part in value.as_array().unwrap() {
                            let part = part.as_str().unwrap();
                            assert!(message.contains(part), "{name}: {part} in {message}");
                        }
                    }
                    "reason_contains" => {
                        let reason = got["reason"].as_str().unwrap();
                        let part = value.as_str().unwrap();
                        assert!(reason.contains(part), "{name}: {part} in {reason}");
                    }
                    _ => assert_eq!(&got[key], value, "{name}: `{key}` in {got:#}"),
                }
            }
        }
    }
}

#[test]
fn an_existing_playbook_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    support::write(dir.path(), "playbook.yaml", "mine\n");
    let before = snapshot(dir.path());
    let out = init(dir.path(), &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("playbook.yaml` already exists"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn an_existing_test_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    support::write(dir.path(), "x.test.yaml", "mine\n");
    let before = snapshot(dir.path());
    let out = init(dir.path(), &["--name", "x"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_different_schema_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    support::write(dir.path(), "playbook.schema.json", "{}");
    let before = snapshot(dir.path());
    let out = init(dir.path(), &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("playbook.schema.json"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_second_playbook_shares_the_same_schema_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(init(dir.path(), &["--name", "one"]).code, 0);
    let out = init(dir.path(), &["--name", "two"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("playbook.schema.json"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(dir.path()).len(), 5);
}

#[cfg(unix)]
#[test]
fn a_dangling_link_is_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let target = dir.path().join("init");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("victim"), target.join("playbook.yaml")).unwrap();
    let out = init(&target, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!elsewhere.join("victim").exists());
    assert_eq!(snapshot(&target).len(), 1);
}

fn refused_name(name: &str) -> support::Outcome {
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &["--name", name]);
    assert_eq!(out.code, 2, "{name:?}: {}", out.stderr);
    assert!(snapshot(dir.path()).is_empty(), "{name:?} wrote files");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

#[test]
fn a_name_that_climbs_out_of_the_folder_is_refused() {
    let out = refused_name("../x");
    assert!(
        out.stderr.contains("is not a playbook name"),
        "{}",
        out.stderr
    );
    assert!(
        !Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("x.yaml")
            .exists()
    );
}

#[test]
fn an_absolute_name_is_refused() {
    refused_name("/tmp/x");
}

#[test]
fn an_empty_name_is_refused() {
    let out = refused_name("");
    assert!(out.stderr.contains("--name is empty"), "{}", out.stderr);
}

#[test]
fn a_10_kb_name_is_refused_and_not_echoed_whole() {
    let name = "a".repeat(10 * 1024);
    let out = refused_name(&name);
    assert!(out.stderr.contains("more than 100"), "{}", out.stderr);
    assert!(out.stderr.len() < 500, "{}", out.stderr);
}

#[test]
fn a_name_with_control_characters_is_refused_and_escaped() {
    let out = refused_name("x\u{1b}[2Jy");
    assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
}

// A NUL byte cannot reach the binary (no argv can hold one); the name check
// refuses it all the same (`init::tests::names_are_checked`).

#[test]
fn a_folder_that_cannot_be_made_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "plain-file", "x");
    let target = Path::new(&file).join("sub");
    let out = init(&target, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_read_only_folder_is_refused_and_left_empty() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ro");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = target.join("probe");
    // Root writes read-only folders: then /proc, which nobody can write, stands in.
    let target = if std::fs::write(&probe, "x").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        eprintln!("running as root: /proc/self stands in for a read-only folder");
        Path::new("/proc/self").to_path_buf()
    } else {
        target
    };
    let out = init(&target, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    for file in [
        "playbook.yaml",
        "playbook.test.yaml",
        "playbook.schema.json",
    ] {
        assert!(!target.join(file).exists(), "{file}");
    }
}
