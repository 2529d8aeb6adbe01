//! `callbook test`: playbook tests run offline, their output, their exit
//! codes, and every bad test file reported at its place.

mod support;

use support::{callbook, finish, run};

/// Exit code, standard output and standard error, for golden files.
fn everything(out: &support::Outcome) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.code, out.stdout, out.stderr
    )
}

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
