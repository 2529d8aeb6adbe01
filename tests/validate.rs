//! `callbook validate`: every problem of a playbook, each at its place.

mod support;

use support::{run, write};

#[test]
fn every_example_playbook_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir("playbooks").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = run(&["validate", path.to_str().unwrap()]);
            assert_eq!(out.code, 0, "{}:\n{}", path.display(), out.stderr);
            assert!(!out.stderr.contains("warning"), "{}", out.stderr);
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

#[test]
fn invalid_fixtures_are_reported_at_their_place() {
    let mut files: Vec<_> = std::fs::read_dir("tests/fixtures/invalid")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let out = run(&["validate", path.to_str().unwrap()]);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(out.code, 2, "{name}");
        insta::assert_snapshot!(format!("invalid-{name}"), out.diagnostics());
    }
}

#[test]
fn a_conditional_last_rule_is_a_warning() {
    let out = run(&[
        "validate",
        "tests/fixtures/valid/last-rule-conditional.yaml",
    ]);
    assert_eq!(out.code, 0);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn malformed_yaml() {
    let out = run(&["validate", "tests/fixtures/run/malformed.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn several_files_report_all_problems() {
    let out = run(&[
        "validate",
        "playbooks/disk-full.yaml",
        "tests/fixtures/invalid/bad-phone.yaml",
        "tests/fixtures/invalid/unknown-key.yaml",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("playbooks/disk-full.yaml: ok"));
    assert!(out.stderr.contains("bad-phone.yaml:"));
    assert!(out.stderr.contains("unknown-key.yaml:"));
    assert!(out.stderr.contains("2 playbooks have errors"));
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_include_file() {
    let out = run(&["validate", "tests/fixtures/run/missing-include.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn csv_row_with_missing_column_and_bad_number() {
    let out = run(&["validate", "tests/fixtures/run/short-row.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn included_yaml_recipients_are_schema_checked() {
    let out = run(&["validate", "tests/fixtures/run/bad-team.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn missing_playbook_file() {
    let out = run(&["validate", "tests/fixtures/no-such-playbook.yaml"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.lines().next(),
        Some("error: cannot read `tests/fixtures/no-such-playbook.yaml`: no such file")
    );
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "latin1.yaml",
        b"version: 1\nname: caf\xe9\n".as_slice(),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with(&format!("{path}:2:10: error: file is not valid UTF-8")),
        "{}",
        out.stderr
    );
}

#[test]
fn huge_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(50 * 1024 * 1024).unwrap();
    let path = path.display().to_string();
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with(&format!(
            "{path}:1:1: error: file is too large (50 MiB; the limit is 8 MiB)"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn alias_bomb_is_refused() {
    let mut doc =
        String::from("version: 1\nname: bomb\nvars:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let p = i - 1;
        doc.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bomb.yaml", doc);
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with(&format!("{path}:")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("budget"), "{}", out.stderr);
}

#[test]
fn deep_nesting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flow = format!("vars: {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let block: String = (0..10_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    for (name, doc) in [("flow.yaml", flow), ("block.yaml", block)] {
        let path = write(dir.path(), name, doc);
        let out = run(&["validate", &path]);
        assert_eq!(out.code, 2, "{name}");
        assert!(
            out.stderr.starts_with(&format!("{path}:")),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

/// Inputs the fuzzer found; each once crashed the diagnostic renderer.
#[test]
fn fuzzer_findings_are_plain_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (i, doc) in ["\u{2028}", "name: \u{2028}\n", "\u{2028}: 1\n"]
        .iter()
        .enumerate()
    {
        let path = write(dir.path(), &format!("f{i}.yaml"), doc);
        let out = run(&["validate", &path]);
        assert_eq!(out.code, 2, "{doc:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("{path}:1:")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn provider_timeout_must_be_sensible() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::fs::read_to_string("tests/fixtures/live/team.yaml")
        .unwrap()
        .replace("timeout: 2s ", "timeout: 9999h");
    let path = write(dir.path(), "slow.yaml", playbook);
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("provider.timeout: \"9999h\" is out of range"),
        "{}",
        out.stderr
    );
}

#[test]
fn misspelt_variables_are_warnings_with_suggestions() {
    let out = run(&["validate", "tests/fixtures/valid/typo-variable.yaml"]);
    assert_eq!(out.code, 0);
    insta::assert_snapshot!(out.diagnostics());
}

/// A playbook in `dir` whose recipients come `from:` the given path.
fn including(dir: &std::path::Path, from: &str) -> String {
    write(
        dir,
        "p.yaml",
        format!(
            "version: 1\nname: inc\ncaller_id: \"321-499-1000\"\nrecipients:\n  - from: {from:?}\nrules:\n  - skip: nothing\n"
        ),
    )
}

/// A file outside the playbook's directory that must never be read or printed.
fn private_file(dir: &std::path::Path) -> String {
    write(
        dir,
        "vault.yaml",
        "- name: SECRET-LINE\n  phone: SECRET-LINE\n",
    )
}

#[test]
fn include_outside_the_playbook_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let vault = private_file(outside.path());
    let dir = tempfile::tempdir().unwrap();
    let path = including(dir.path(), &vault);
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is outside the playbook's directory"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("SECRET-LINE"), "{}", out.stderr);
}

#[test]
fn include_climbing_out_with_dot_dot_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    private_file(outside.path());
    let dir = outside.path().join("playbooks");
    std::fs::create_dir(&dir).unwrap();
    let path = including(&dir, "../vault.yaml");
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("outside the playbook's directory"));
    assert!(!out.stderr.contains("SECRET-LINE"), "{}", out.stderr);
}

#[test]
fn include_through_a_symlink_out_of_the_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let vault = private_file(outside.path());
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&vault, dir.path().join("team.yaml")).unwrap();
    let path = including(dir.path(), "team.yaml");
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("outside the playbook's directory"));
    assert!(!out.stderr.contains("SECRET-LINE"), "{}", out.stderr);
}

#[test]
fn include_root_widens_where_includes_may_come_from() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "team.yaml",
        "- name: Alice Ng\n  phone: \"+1 (321) 499-1008\"\n",
    );
    let dir = root.path().join("playbooks");
    std::fs::create_dir(&dir).unwrap();
    let path = including(&dir, "../team.yaml");
    assert_eq!(run(&["validate", &path]).code, 2);
    let root_arg = root.path().display().to_string();
    let out = run(&["validate", &path, "--include-root", &root_arg]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&["run", &path, "--dry-run", "--include-root", &root_arg]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Runs `validate` with a bound on how long it may take: a hang fails the test.
fn validate_bounded(path: &str) -> support::Outcome {
    support::finish(
        support::callbook()
            .args(["validate", path])
            .timeout(std::time::Duration::from_secs(60)),
    )
}

#[test]
fn include_of_dev_zero_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.csv")).unwrap();
    let path = including(dir.path(), "zero.csv");
    // Outside the playbook's directory as well as not a file: allow it through the root.
    let out = support::finish(
        support::callbook()
            .args(["validate", &path, "--include-root", "/"])
            .timeout(std::time::Duration::from_secs(60)),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot read `zero.csv`: not a regular file (a device)")
            || out.stderr.contains("not a regular file (a device)"),
        "{}",
        out.stderr
    );
}

#[test]
fn include_of_a_fifo_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("team.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let path = including(dir.path(), "team.csv");
    let out = validate_bounded(&path);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("not a regular file (a FIFO)"),
        "{}",
        out.stderr
    );
}

#[test]
fn playbook_that_is_a_fifo_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = validate_bounded(&fifo.display().to_string());
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not a regular file (a FIFO)"));
}

/// A playbook whose one recipient has `recipient` (YAML) and whose rule is `rule`.
fn one_recipient(dir: &std::path::Path, country: &str, recipient: &str, rule: &str) -> String {
    write(
        dir,
        "p.yaml",
        format!(
            "version: 1\nname: e\ncaller_id: \"321-499-1000\"\ndefaults: {{ country: {country} }}\nrecipients:\n  - {{ name: Desk, {recipient} }}\nrules:\n  - {rule}\n"
        ),
    )
}

#[test]
fn emergency_speed_dial_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_recipient(dir.path(), "US", "speed_dial: \"911\"", "skip: x");
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("recipients[0].speed_dial: \"911\" is an emergency number"),
        "{}",
        out.stderr
    );
}

#[test]
fn emergency_speed_dial_of_the_default_country_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_recipient(dir.path(), "FR", "speed_dial: \"15\"", "skip: x");
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is an emergency number"),
        "{}",
        out.stderr
    );
}

#[test]
fn emergency_phone_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_recipient(dir.path(), "GB", "phone: \"+44 999\"", "skip: x");
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is an emergency number"),
        "{}",
        out.stderr
    );
}

#[test]
fn connect_to_an_emergency_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_recipient(
        dir.path(),
        "US",
        "phone: \"+1 (321) 499-1008\"",
        "connect: { phone: \"112\" }",
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rules[0].connect.phone: \"112\" is an emergency number"),
        "{}",
        out.stderr
    );
}

#[test]
fn connect_to_an_emergency_number_from_a_template_is_refused_at_planning() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_recipient(
        dir.path(),
        "US",
        "phone: \"+1 (321) 499-1008\"",
        "connect: { phone: \"{{ bridge }}\" }",
    );
    let out = run(&["run", &path, "--dry-run", "--var", "bridge=911"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is an emergency number"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// A value that must never be printed: it stands for a password.
const HUNTER: &str = "hunter2-do-not-print";

/// Validates `playbook` (with `{HUNTER}` replaced) in a fresh directory that
/// also holds `extra` files, and checks that the secret never shows.
fn validate_hiding(playbook: &str, extra: &[(&str, &str)]) -> support::Outcome {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in extra {
        write(dir.path(), name, text.replace("{HUNTER}", HUNTER));
    }
    let path = write(dir.path(), "p.yaml", playbook.replace("{HUNTER}", HUNTER));
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains(HUNTER), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter"), "{}", out.stderr);
    out
}

const HEAD: &str = "version: 1\nname: s\ncaller_id: \"321-499-1000\"\n";
const TAIL: &str = "rules:\n  - skip: x\n";

#[test]
fn secret_in_vars_is_not_shown_in_the_snippet() {
    let out = validate_hiding(
        &format!(
            "{HEAD}vars:\n  host: a\n  api_token: {{HUNTER}}\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\n{TAIL}"
        ),
        &[],
    );
    assert!(out.stderr.contains("api_token: ***"), "{}", out.stderr);
}

#[test]
fn secret_in_a_flow_mapping_is_not_shown() {
    validate_hiding(
        &format!(
            "{HEAD}vars: {{ host: a, \"db_password\": '{{HUNTER}}' }}\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn secret_in_the_provider_section_is_not_shown() {
    validate_hiding(
        &format!(
            "{HEAD}provider:\n  password: {{HUNTER}}\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn multi_line_secret_is_not_shown() {
    validate_hiding(
        &format!("{HEAD}vars:\n  client_secret: |\n    {{HUNTER}}\n   {{HUNTER}}\n{TAIL}"),
        &[],
    );
}

#[test]
fn secret_in_recipient_vars_is_not_shown() {
    validate_hiding(
        &format!(
            "{HEAD}recipients:\n  - name: A\n    phone: \"+1 (321) 499-1008\"\n    vars: {{ Api_Key: {{HUNTER}} }}\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn secret_next_to_an_error_on_the_same_line_is_not_shown() {
    validate_hiding(
        &format!(
            "{HEAD}recipients:\n  - {{ name: A, phone: \"12345\", vars: {{ team: x, client_secret: {{HUNTER}} }} }}\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn syntax_error_inside_a_multi_line_secret_is_not_shown() {
    validate_hiding(
        &format!("{HEAD}vars:\n  password: \"{{HUNTER}}\n    {{HUNTER}} \\q {{HUNTER}}\"\n{TAIL}"),
        &[],
    );
}

#[test]
fn secret_in_an_included_json_file_is_not_shown() {
    validate_hiding(
        &format!("{HEAD}recipients:\n  - from: team.json\n{TAIL}"),
        &[(
            "team.json",
            "[{\"name\": \"A\", \"phone\": \"12345\", \"vars\": {\"api_token\": \"{HUNTER}\"}}]\n",
        )],
    );
}

#[test]
fn secret_in_an_included_yaml_file_next_to_a_bad_phone_is_not_shown() {
    validate_hiding(
        &format!("{HEAD}recipients:\n  - from: team.yaml\n{TAIL}"),
        &[(
            "team.yaml",
            "- { name: A, vars: { token: {HUNTER} }, phone: \"12345\" }\n",
        )],
    );
}

#[test]
fn secret_key_spelt_with_an_escape_is_not_shown() {
    validate_hiding(
        &format!("{HEAD}vars:\n  \"pass\\x77ord\": {{HUNTER}}\n{TAIL}"),
        &[],
    );
}

#[test]
fn secret_key_spelt_with_a_unicode_escape_in_json_is_not_shown() {
    validate_hiding(
        &format!("{HEAD}recipients:\n  - from: team.json\n{TAIL}"),
        &[(
            "team.json",
            "[{\"name\": \"A\", \"phone\": \"12345\", \"vars\": {\"api_\\u0074oken\": \"{HUNTER}\"}}]\n",
        )],
    );
}

#[test]
fn secret_reached_through_an_alias_is_not_shown_in_messages() {
    validate_hiding(
        &format!(
            "{HEAD}x-base: &b\n  password: &s {{HUNTER}}\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\", tags: *s }}\ndedup:\n  window: *s\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn secret_in_a_comment_next_to_an_error_is_not_shown() {
    validate_hiding(
        &format!(
            "{HEAD}recipients:\n  - name: A\n    phone: \"12345\"  # old api_token: {{HUNTER}}\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn userinfo_in_the_playbook_base_url_fails_validate_unseen() {
    let out = validate_hiding(
        &format!(
            "{HEAD}provider:\n  base_url: \"https://ops:{{HUNTER}}@api.fonestorm.com/v2\"\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\n{TAIL}"
        ),
        &[],
    );
    assert!(
        out.stderr.contains("holds a user name or password"),
        "{}",
        out.stderr
    );
}

#[test]
fn userinfo_with_a_slash_in_the_playbook_base_url_is_not_shown() {
    validate_hiding(
        &format!(
            "{HEAD}provider:\n  base_url: \"https://ops:{{HUNTER}}/x@api.fonestorm.com/v2\"\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\n{TAIL}"
        ),
        &[],
    );
}

#[test]
fn plain_http_to_another_machine_fails_validate() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        format!(
            "{HEAD}provider:\n  base_url: \"http://api.fonestorm.com/v2\"\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\n{TAIL}"
        ),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("uses plain http"), "{}", out.stderr);
}

#[test]
fn csv_column_named_like_a_secret_is_refused_and_not_shown() {
    validate_hiding(
        &format!("{HEAD}recipients:\n  - from: team.csv\n{TAIL}"),
        &[("team.csv", "name,phone,db_password\nA,12345,{HUNTER}\n")],
    );
}

/// Validates a playbook that includes `team.csv` holding `csv`.
fn validate_csv(csv: &str) -> support::Outcome {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "team.csv", csv);
    let path = including(dir.path(), "team.csv");
    run(&["validate", &path])
}

#[test]
fn csv_with_too_many_columns_is_refused_at_the_header() {
    let extra: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    let csv = format!(
        "name,phone,{}\nA,+1 (321) 499-1008{}\n",
        extra.join(","),
        ",".repeat(300)
    );
    let out = validate_csv(&csv);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("team.csv:1:1: error: the header row has 302 columns; the limit is 256"),
        "{}",
        out.stderr
    );
}

#[test]
fn csv_with_a_column_twice_is_refused_at_the_header() {
    // Which `phone` would be called? Neither: the file is ambiguous.
    let out = validate_csv("name,phone,phone\nA,+1 (321) 499-1008,+1 (321) 499-1009\n");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("team.csv:1:1: error: the header row has column `phone` twice"),
        "{}",
        out.stderr
    );
}

#[test]
fn duplicate_key_in_an_included_file_is_told_plainly() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "team.yaml",
        "- name: A\n  phone: \"+1 (321) 499-1008\"\n  phone: \"+1 (321) 499-1009\"\n",
    );
    let path = including(dir.path(), "team.yaml");
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("team.yaml:3:3: error: duplicate mapping key: phone\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn non_finite_number_is_told_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        "version: 1\nname: s\ncaller_id: \"321-499-1000\"\nprovider: { rate_limit: .nan }\nrecipients:\n  - { name: A, phone: \"+1 (321) 499-1008\" }\nrules:\n  - skip: x\n",
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("policy"), "{}", out.stderr);
    assert!(
        out.stderr.contains("non-finite float `.nan`"),
        "{}",
        out.stderr
    );
}

#[test]
fn csv_with_a_huge_field_is_refused_at_its_row() {
    let csv = format!(
        "name,phone,note\nA,+1 (321) 499-1008,short\nB,+1 (321) 499-1009,{}\n",
        "x".repeat(5000)
    );
    let out = validate_csv(&csv);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "team.csv:3:21: error: note: this field is 5000 bytes long; the limit is 4096"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn csv_at_the_column_limit_is_accepted() {
    let extra: Vec<String> = (0..254).map(|i| format!("c{i}")).collect();
    let csv = format!(
        "name,phone,{}\nA,+1 (321) 499-1008{}\n",
        extra.join(","),
        ",".repeat(254)
    );
    let out = validate_csv(&csv);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn problems_of_a_large_csv_are_listed_in_line_order() {
    // Rows are checked on every core in chunks; what is listed must still
    // read top to bottom, a broken row in the middle included.
    let mut csv = String::from("name,phone\n");
    for i in 0..10_000 {
        match i {
            148 | 4_098 | 8_998 => csv.push_str(&format!("P{i},12345\n")),
            4_999 => csv.push_str(&format!("P{i},+1 (321) 499-1008,extra\n")),
            6_000 => csv.push_str(",+1 (321) 499-1008\n"),
            _ => csv.push_str(&format!("P{i},+1 (321) {:03}-{:04}\n", 230 + i / 10_000, i)),
        }
    }
    let out = validate_csv(&csv);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let lines: Vec<u32> = out
        .stderr
        .lines()
        .filter_map(|l| l.split("team.csv:").nth(1))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect();
    assert_eq!(lines, [150, 4_100, 5_001, 6_002, 9_000], "{}", out.stderr);
}
