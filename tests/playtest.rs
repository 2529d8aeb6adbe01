//! `callbook test`: playbook tests run offline, their output, their exit
//! codes, and every bad test file reported at its place.

mod support;

use support::run;

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
