//! `callbook test`: playbook tests run offline, their output, their exit
//! codes, and every bad test file reported at its place.

mod support;

use support::{callbook, finish, run};

#[test]
fn validate_checks_a_test_file_as_a_test_file() {
    let out = run(&[
        "validate",
        "tests/fixtures/playtest/oncall.yaml",
        "tests/fixtures/playtest/passing/oncall.test.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("passing/oncall.test.yaml: ok (tests of `oncall`, 5 cases)"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_reports_an_invalid_test_file_at_its_place() {
    let out = run(&[
        "validate",
        "tests/fixtures/playtest/oncall.yaml",
        "tests/fixtures/playtest/invalid/unknown-recipient.test.yaml",
    ]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn the_bundled_playbook_tests_pass() {
    let out = run(&["test", "playbooks/"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" passed, 0 failed\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAILED"), "{}", out.stdout);
}

#[test]
fn every_bundled_playbook_has_tests_with_several_cases() {
    let mut playbooks = 0;
    for entry in std::fs::read_dir("playbooks").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".yaml") else {
            continue;
        };
        if stem.ends_with(".test") {
            continue;
        }
        playbooks += 1;
        let tests = format!("playbooks/{stem}.test.yaml");
        let out = run(&["test", &tests]);
        assert_eq!(out.code, 0, "{tests}: {}{}", out.stdout, out.stderr);
        let cases = out.stdout.matches(" ... ok\n").count();
        assert!(cases >= 3, "{tests} has {cases} cases");
    }
    assert!(playbooks >= 4);
}

#[test]
fn a_bundled_page_test_simulates_an_acknowledgement() {
    let text = std::fs::read_to_string("playbooks/critical-page.test.yaml").unwrap();
    assert!(text.contains("ack: { by:"), "{text}");
    assert!(text.contains("outcome: acknowledged"), "{text}");
}

#[test]
fn schema_test_prints_the_committed_test_schema() {
    let out = run(&["schema", "--test"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout,
        std::fs::read_to_string("schema/test.schema.json").unwrap()
    );
    // The playbook schema is still the default.
    assert_eq!(
        run(&["schema"]).stdout,
        std::fs::read_to_string("schema/playbook.schema.json").unwrap()
    );
}

#[test]
fn the_committed_test_schema_accepts_every_bundled_test_file() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/test.schema.json").unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir("playbooks").unwrap() {
        let path = entry.unwrap().path();
        if callbook::playtest::is_test_file(&path) {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = callbook::playbook::yaml::parse(&text).unwrap().0;
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 4);
}

/// Exit code, standard output and standard error, for golden files.
fn everything(out: &support::Outcome) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.code, out.stdout, out.stderr
    )
}

/// `callbook test` on one fixture under `tests/fixtures/playtest/`.
fn test_fixture(name: &str) -> support::Outcome {
    run(&["test", &format!("tests/fixtures/playtest/{name}")])
}

#[test]
fn a_test_file_pointing_at_a_missing_playbook_is_invalid() {
    let out = test_fixture("invalid/missing-playbook.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn a_test_file_pointing_at_an_invalid_playbook_is_invalid() {
    let out = test_fixture("invalid/invalid-playbook.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn an_unknown_key_in_a_case_is_named_with_a_suggestion() {
    let out = test_fixture("invalid/unknown-key.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn an_expect_naming_a_recipient_the_playbook_lacks_is_invalid() {
    let out = test_fixture("invalid/unknown-recipient.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn a_case_without_now_is_invalid() {
    let out = test_fixture("invalid/no-now.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn a_now_that_is_no_time_and_a_repeated_case_name_are_invalid() {
    let out = test_fixture("invalid/bad-now.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn simulate_on_a_playbook_without_escalation_is_invalid() {
    let out = test_fixture("invalid/simulate-broadcast.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn unknown_steps_rounds_and_dispositions_are_invalid() {
    let out = test_fixture("invalid/unknown-step.test.yaml");
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn passing_cases_exit_zero() {
    let out = test_fixture("passing");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn failures_show_expected_and_actual_and_a_failing_template_stops_no_other_case() {
    let out = test_fixture("failing");
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains(":: still runs after the failures ... ok\n"),
        "{}",
        out.stdout
    );
    insta::assert_snapshot!(everything(&out));
}

#[test]
fn an_invalid_file_does_not_stop_the_others_and_wins_the_exit_code() {
    let out = run(&[
        "test",
        "tests/fixtures/playtest/invalid/no-now.test.yaml",
        "tests/fixtures/playtest/failing",
        "tests/fixtures/playtest/passing",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stdout.contains("6 passed, 4 failed\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("1 test file is invalid"),
        "{}",
        out.stderr
    );
}

#[test]
fn filter_runs_only_the_matching_cases() {
    let out = run(&[
        "test",
        "tests/fixtures/playtest/failing",
        "--filter",
        "still runs",
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        out.stdout,
        "test tests/fixtures/playtest/failing/oncall.test.yaml :: still runs after the failures ... ok\n\n\
         1 passed, 0 failed, 4 filtered out\n"
    );
}

#[test]
fn a_directory_without_test_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no test files (`*.test.yaml`)"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_default_path_is_the_current_directory() {
    let out = finish(
        callbook()
            .current_dir("tests/fixtures/playtest/passing")
            .arg("test"),
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("5 passed, 0 failed"), "{}", out.stdout);
}

#[test]
fn junit_reports_every_case_and_every_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("results.xml");
    let out = run(&[
        "test",
        "tests/fixtures/playtest/failing",
        "tests/fixtures/playtest/invalid/no-now.test.yaml",
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(std::fs::read_to_string(&xml).unwrap());
}

#[test]
fn junit_that_cannot_be_written_is_an_error() {
    let out = run(&[
        "test",
        "tests/fixtures/playtest/passing",
        "--junit",
        "/nonexistent-dir/results.xml",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("--junit: cannot write `/nonexistent-dir/results.xml`: no such file"),
        "{}",
        out.stderr
    );
}

/// A copy of the failing fixture and its playbook in a fresh directory.
fn failing_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("failing");
    std::fs::create_dir(&sub).unwrap();
    for name in ["oncall.yaml", "alert.json"] {
        std::fs::copy(
            format!("tests/fixtures/playtest/{name}"),
            dir.path().join(name),
        )
        .unwrap();
    }
    let file = sub.join("oncall.test.yaml");
    std::fs::copy("tests/fixtures/playtest/failing/oncall.test.yaml", &file).unwrap();
    (dir, file)
}

#[test]
fn update_rewrites_the_failing_expectations_and_keeps_the_rest() {
    let (_dir, file) = failing_copy();
    let before = std::fs::read_to_string(&file).unwrap();
    let out = run(&["test", file.to_str().unwrap(), "--update"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("expect changes (- old, + new):"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("updated `"), "{}", out.stderr);
    let after = std::fs::read_to_string(&file).unwrap();
    // The comment at the top, the passing case and the other keys stay.
    assert!(
        after.starts_with("# Cases that fail, each for another reason"),
        "{after}"
    );
    let passing = "  - name: still runs after the failures\n    now: 2026-11-26T14:00:00Z\n    expect:\n      totals: { planned: 2 }\n";
    assert!(
        before.contains(passing) && after.contains(passing),
        "{after}"
    );
    insta::assert_snapshot!(after);
    // Now every case passes.
    let again = run(&["test", file.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
}

#[cfg(unix)]
#[test]
fn update_refuses_a_read_only_file_and_leaves_it_as_it_was() {
    use std::process::Command;
    // A read-only mount needs root (CI runs as root); elsewhere say so loudly instead of failing.
    let can_mount = Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_mount {
        eprintln!("SKIPPED: a read-only test file needs root for `unshare -m`");
        return;
    }
    let (dir, file) = failing_copy();
    let before = std::fs::read_to_string(&file).unwrap();
    let sub = dir.path().join("failing");
    let s = sub.display();
    let out = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            &format!(
                "mount --bind {s} {s} && mount -o remount,ro,bind {s} && \
                 \"$CALLBOOK\" test {} --update",
                file.display()
            ),
        ])
        .env("CALLBOOK", assert_cmd::cargo::cargo_bin("callbook"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--update: cannot write `")
            && stderr.contains("read-only file system; it was not changed"),
        "{stderr}"
    );
    assert!(!stderr.contains("updated `"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[test]
fn a_disposition_for_a_call_the_timeline_lacks_fails_that_case_only() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::path::absolute("playbooks/critical-page.yaml").unwrap();
    let file = support::write(
        dir.path(),
        "page.test.yaml",
        format!(
            "playbook: {}\ncases:\n  - name: too early\n    now: 2026-11-26T14:00:00Z\n    simulate:\n      - {{ at: 1m, disposition: {{ recipient: Priya Raman, value: BUSY }} }}\n    expect: {{}}\n  - name: fine\n    now: 2026-11-26T14:00:00Z\n    expect: {{}}\n",
            playbook.display()
        ),
    );
    let out = run(&["test", &file]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "simulate[0]: Priya Raman has no call placed by +1m without a disposition yet"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(":: fine ... ok"), "{}", out.stdout);
}

#[test]
fn a_huge_test_file_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("playbook: x.yaml\ncases: []\n");
    text.push_str(&"# padding\n".repeat(900_000));
    let file = support::write(dir.path(), "huge.test.yaml", text);
    let out = run(&["test", &file]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("file is too large"), "{}", out.stderr);
}

#[test]
fn deeply_nested_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::path::absolute("tests/fixtures/playtest/oncall.yaml").unwrap();
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let file = support::write(
        dir.path(),
        "deep.test.yaml",
        format!(
            "playbook: {}\ncases:\n  - name: c\n    now: 2026-11-26T14:00:00Z\n    input: {deep}\n    expect: {{}}\n",
            playbook.display()
        ),
    );
    let out = run(&["test", &file]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("deep.test.yaml:"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn ten_thousand_cases_are_refused_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::path::absolute("tests/fixtures/playtest/oncall.yaml").unwrap();
    let mut text = format!("playbook: {}\ncases:\n", playbook.display());
    for i in 0..10_000 {
        text.push_str(&format!(
            "  - {{ name: case {i}, now: 2026-11-26T14:00:00Z, expect: {{}} }}\n"
        ));
    }
    let file = support::write(dir.path(), "many.test.yaml", text);
    let out = run(&["test", &file]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("error: cases: has more than 1000 entries"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_thousand_cases_run() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::path::absolute("tests/fixtures/playtest/oncall.yaml").unwrap();
    let mut text = format!("playbook: {}\ncases:\n", playbook.display());
    for i in 0..1000 {
        text.push_str(&format!(
            "  - {{ name: case {i}, now: 2026-11-26T14:00:00Z, expect: {{ totals: {{ planned: 2 }} }} }}\n"
        ));
    }
    let file = support::write(dir.path(), "many.test.yaml", text);
    let out = run(&["test", &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("1000 passed, 0 failed"),
        "{}",
        out.stdout
    );
}

#[cfg(unix)]
#[test]
fn a_directory_with_a_symlink_loop_is_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("tests");
    std::fs::create_dir(&sub).unwrap();
    std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
    std::os::unix::fs::symlink("loop", sub.join("self")).unwrap();
    let playbook = std::path::absolute("tests/fixtures/playtest/oncall.yaml").unwrap();
    support::write(
        &sub,
        "a.test.yaml",
        format!(
            "playbook: {}\ncases:\n  - {{ name: c, now: 2026-11-26T14:00:00Z, expect: {{}} }}\n",
            playbook.display()
        ),
    );
    let out = run(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 passed, 0 failed"), "{}", out.stdout);
}

#[test]
fn a_case_name_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::path::absolute("tests/fixtures/playtest/oncall.yaml").unwrap();
    let file = support::write(
        dir.path(),
        "esc.test.yaml",
        format!(
            "playbook: {}\ncases:\n  - {{ name: \"red \\e[31m\", now: 2026-11-26T14:00:00Z, expect: {{ totals: {{ planned: 9 }} }} }}\n",
            playbook.display()
        ),
    );
    let out = run(&["test", &file]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
}

#[test]
fn input_files_are_bounded_for_the_whole_test_file() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("\"{}\"\n", "x".repeat(33 * 1024 * 1024));
    support::write(dir.path(), "a.yaml", &big);
    support::write(dir.path(), "b.yaml", &big);
    let playbook = std::path::absolute("tests/fixtures/playtest/oncall.yaml").unwrap();
    // The same file twice is read once; a second one goes over the bound.
    let file = support::write(
        dir.path(),
        "inputs.test.yaml",
        format!(
            "playbook: {}\ncases:\n  - {{ name: a, now: 2026-11-26T14:00:00Z, input_file: a.yaml, expect: {{}} }}\n  - {{ name: a2, now: 2026-11-26T14:00:00Z, input_file: a.yaml, expect: {{}} }}\n  - {{ name: b, now: 2026-11-26T14:00:00Z, input_file: b.yaml, expect: {{}} }}\n",
            playbook.display()
        ),
    );
    let out = run(&["test", &file]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "cases[2].input_file: the input files of one test file hold at most 64 MiB in all"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
}
