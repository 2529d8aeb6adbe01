//! `callbook serve --config FILE [--check]`: the configuration is checked
//! like a playbook (every problem, file:line:col, suggestions), every routed
//! playbook is validated, sizes are bounded, and the start is refused
//! without the secrets it needs.

mod support;

use support::{callbook, finish, run, write};

const FIXTURE: &str = "tests/fixtures/serve/serve.yaml";

#[test]
fn a_valid_configuration_passes_check_with_every_route_counted() {
    let out = run(&["serve", "--config", FIXTURE, "--check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("serve.yaml: ok (2 routes)"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_problem_of_a_configuration_is_listed_with_its_position() {
    // Run from the fixture's directory so that paths in the golden file are short.
    let out = finish(
        callbook()
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/serve"))
            .args(["serve", "--config", "broken.yaml", "--check"]),
    );
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn an_invalid_configuration_refuses_the_start_too() {
    let out = finish(
        callbook()
            .args(["serve", "--config", "tests/fixtures/serve/broken.yaml"])
            .env("CALLBOOK_WEBHOOK_TOKEN", "a-webhook-token-long-enough"),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn the_schema_is_printed_by_schema_serve_and_committed() {
    let out = run(&["schema", "--serve"]);
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string("schema/serve.schema.json").unwrap();
    assert_eq!(out.stdout, committed);
    let playbook = run(&["schema"]);
    assert_ne!(playbook.stdout, committed);
}

#[test]
fn a_configuration_file_over_one_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("listen: 127.0.0.1:8080\nroutes:\n  a: x.yaml\n");
    text.push_str(&"# padding\n".repeat(110_000));
    let config = write(dir.path(), "big.yaml", text);
    let out = run(&["serve", "--config", &config, "--check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("file is too large"), "{}", out.stderr);
}

#[test]
fn more_than_256_routes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("listen: 127.0.0.1:8080\nroutes:\n");
    for i in 0..257 {
        text.push_str(&format!("  r{i}: x.yaml\n"));
    }
    let config = write(dir.path(), "many.yaml", text);
    let out = run(&["serve", "--config", &config, "--check"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("routes: has more than 256 entries"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_configuration_that_is_not_yaml_or_not_a_mapping_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("list.yaml", "- a\n- b\n"),
        ("broken.yaml", "listen: [\n"),
        ("empty.yaml", ""),
        ("binary.yaml", "listen: \u{0}\u{1}"),
    ] {
        let config = write(dir.path(), name, text);
        let out = run(&["serve", "--config", &config, "--check"]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(out.stderr.contains(name), "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let invalid_utf8 = dir.path().join("latin1.yaml");
    std::fs::write(&invalid_utf8, b"listen: caf\xe9\n").unwrap();
    let out = run(&[
        "serve",
        "--config",
        invalid_utf8.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not valid UTF-8"), "{}", out.stderr);
}

#[test]
fn a_secret_in_the_configuration_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "secret.yaml",
        "listen: 127.0.0.1:8080\nwebhook_token: hunter2-hunter2-hunter2\nroutes:\n  a: x.yaml\n",
    );
    let out = run(&["serve", "--config", &config, "--check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("looks like a secret"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn without_a_webhook_token_serve_refuses_to_start() {
    let out = finish(
        callbook()
            .args(["serve", "--config", FIXTURE])
            .env_remove("CALLBOOK_WEBHOOK_TOKEN"),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("CALLBOOK_WEBHOOK_TOKEN"),
        "{}",
        out.stderr
    );
}

#[test]
fn insecure_no_auth_is_refused_on_an_address_that_is_not_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "open.yaml",
        format!(
            "listen: 0.0.0.0:8080\nroutes:\n  critical: {}/playbooks/critical-page.yaml\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    let out = run(&["serve", "--config", &config, "--insecure-no-auth"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("loopback"), "{}", out.stderr);
}

#[test]
fn a_weak_webhook_token_is_refused_without_showing_it() {
    let out = finish(
        callbook()
            .args(["serve", "--config", FIXTURE])
            .env("CALLBOOK_WEBHOOK_TOKEN", "hunter2"),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("too short"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn without_the_callback_secret_or_credentials_serve_refuses_to_start() {
    let no_secret = finish(
        callbook()
            .args(["serve", "--config", FIXTURE])
            .env("CALLBOOK_WEBHOOK_TOKEN", "a-webhook-token-long-enough")
            .env_remove("CALLBOOK_CALLBACK_SECRET"),
    );
    assert_eq!(no_secret.code, 3, "{}", no_secret.stderr);
    assert!(no_secret.stderr.contains("CALLBOOK_CALLBACK_SECRET"));
    let no_credentials = finish(
        callbook()
            .args(["serve", "--config", FIXTURE])
            .env("CALLBOOK_WEBHOOK_TOKEN", "a-webhook-token-long-enough")
            .env("CALLBOOK_CALLBACK_SECRET", "a-callback-secret-long-enough"),
    );
    assert_eq!(no_credentials.code, 3, "{}", no_credentials.stderr);
    assert!(no_credentials.stderr.contains("FONESTORM_TOKEN"));
}

#[test]
fn drain_timeout_is_bounded() {
    for bad in ["0s", "10m", "soon"] {
        let out = run(&[
            "serve",
            "--config",
            FIXTURE,
            "--check",
            "--drain-timeout",
            bad,
        ]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
    }
}
