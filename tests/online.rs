//! `callbook validate --online` against the local FoneStorm test server:
//! the caller id exists and is active, receives SMS when a page's acks need
//! it, and a page's callbacks point at `--public-url`; an account that
//! cannot be reached or refuses the credentials exits 3; and nothing but
//! GET requests (and the login) is ever sent.

mod support;

use fonestorm_testserver::{Config, HookMethod, Hooks, SmsHook, TestServer, UrlHook};
use support::{Outcome, callbook, finish};

const BROADCAST: &str = "tests/fixtures/online/broadcast.yaml";
const PAGE: &str = "tests/fixtures/online/page.yaml";
const PAGE_NO_SMS: &str = "tests/fixtures/online/page-no-sms.yaml";
const UNKNOWN: &str = "tests/fixtures/online/unknown-caller.yaml";
const FONENUMBER: &str = "3214991000";
const PUBLIC: &str = "https://cb.example.com/pager";
const TOKEN: &str = "test-token";

fn server_with(change: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config {
        rate_limit: None,
        ..Config::default()
    };
    change(&mut config);
    TestServer::start(config).unwrap()
}

fn server() -> TestServer {
    server_with(|_| {})
}

/// `callbook validate --online ARGS --base-url URL` with `env`.
fn online_env(base_url: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = callbook();
    cmd.args(["validate", "--online"])
        .args(args)
        .args(["--base-url", base_url])
        .env_remove("CALLBOOK_PUBLIC_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = finish(&mut cmd);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    for (_, secret) in env {
        assert!(
            !out.stderr.contains(secret),
            "secret shown:\n{}",
            out.stderr
        );
    }
    out
}

fn online(base_url: &str, args: &[&str]) -> Outcome {
    online_env(base_url, args, &[("FONESTORM_TOKEN", TOKEN)])
}

/// Every request the server saw was a GET of a FoneNumber or a login.
fn assert_read_only(s: &TestServer) {
    let requests = s.requests();
    assert!(!requests.is_empty());
    for r in requests {
        let read = r.method == "GET" && r.path.starts_with("/fonenumbers/");
        let login = r.method == "POST" && r.path == "/auth";
        assert!(read || login, "{} {} was sent", r.method, r.path);
    }
    assert!(s.placed_calls().is_empty());
}

fn ours(path: &str) -> UrlHook {
    UrlHook::new(format!("{PUBLIC}{path}"), HookMethod::Json).basic_auth("callbook", "x")
}

fn installed() -> Hooks {
    Hooks {
        send_notify: Some(ours("/fonestorm/calls")),
        receive_notify: Some(ours("/fonestorm/inbound")),
        sms: Some(SmsHook::Url(ours("/fonestorm/sms"))),
    }
}

#[test]
fn a_broadcast_from_an_active_number_passes() {
    let s = server();
    let out = online(&s.url(), &[BROADCAST]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"tests/fixtures/online/broadcast.yaml: ok online (caller_id 3214991000 is active)");
    assert_read_only(&s);
}

#[test]
fn a_page_with_its_callbacks_installed_passes() {
    let s = server();
    s.set_hooks(FONENUMBER, installed());
    let out = online(&s.url(), &[PAGE, "--public-url", PUBLIC]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"tests/fixtures/online/page.yaml: ok online (caller_id 3214991000 is active, receives SMS, callbacks point at https://cb.example.com/pager)");
    assert_read_only(&s);
}

#[test]
fn an_unknown_caller_id_is_an_error_at_its_key() {
    let s = server();
    let out = online(&s.url(), &[UNKNOWN]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
    assert_read_only(&s);
}

#[test]
fn an_inactive_caller_id_is_an_error() {
    let s = server_with(|c| c.inactive_fonenumbers = vec![FONENUMBER.into()]);
    let out = online(&s.url(), &[BROADCAST]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
    assert_read_only(&s);
}

#[test]
fn a_page_with_sms_acks_needs_sms_on_its_caller_id() {
    let s = server_with(|c| c.sms_disabled_fonenumbers = vec![FONENUMBER.into()]);
    s.set_hooks(FONENUMBER, installed());
    let out = online(&s.url(), &[PAGE, "--public-url", PUBLIC]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
    assert_read_only(&s);
}

#[test]
fn a_page_without_sms_acks_does_not_need_sms() {
    let s = server_with(|c| c.sms_disabled_fonenumbers = vec![FONENUMBER.into()]);
    s.set_hooks(FONENUMBER, installed());
    let out = online(&s.url(), &[PAGE_NO_SMS, "--public-url", PUBLIC]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_broadcast_does_not_need_sms() {
    let s = server_with(|c| c.sms_disabled_fonenumbers = vec![FONENUMBER.into()]);
    let out = online(&s.url(), &[BROADCAST]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn callbacks_pointing_elsewhere_are_errors() {
    let s = server();
    s.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(UrlHook::new(
                "https://other.example.com/fonestorm/calls",
                HookMethod::Post,
            )),
            sms: Some(SmsHook::Email("ops@example.com".into())),
            ..installed()
        },
    );
    let out = online(&s.url(), &[PAGE, "--public-url", PUBLIC]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
    assert_read_only(&s);
}

#[test]
fn a_page_without_public_url_gets_a_warning_only() {
    let s = server();
    let out = online(&s.url(), &[PAGE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: caller_id: give --public-url"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_wrong_password_exits_3_without_showing_it() {
    let s = server();
    let out = online_env(
        &s.url(),
        &[BROADCAST],
        &[
            ("FONESTORM_USERNAME", "callbook"),
            ("FONESTORM_PASSWORD", "wrong-pass-77f3a1"),
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("refused the login"), "{}", out.stderr);
    assert_read_only(&s);
    assert_eq!(s.auth_count(), 1);
}

#[test]
fn the_right_password_logs_in_and_reads() {
    let s = server();
    let password = Config::default().password;
    let out = online_env(
        &s.url(),
        &[BROADCAST],
        &[
            ("FONESTORM_USERNAME", "callbook"),
            ("FONESTORM_PASSWORD", password.as_str()),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_read_only(&s);
}

#[test]
fn a_refused_token_exits_3() {
    let s = server();
    let out = online_env(
        &s.url(),
        &[BROADCAST],
        &[("FONESTORM_TOKEN", "not-a-token-5e1")],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
}

#[test]
fn a_server_that_is_down_exits_3() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = online(&format!("http://127.0.0.1:{port}"), &[BROADCAST]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot check `caller_id` 3214991000 online"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_credentials_exit_3_before_anything_is_sent() {
    let s = server();
    let out = online_env(&s.url(), &[BROADCAST], &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("no FoneStorm credentials"),
        "{}",
        out.stderr
    );
    assert!(s.requests().is_empty());
}

#[test]
fn an_invalid_playbook_is_not_checked_online() {
    let s = server();
    let out = online(
        &s.url(),
        &["tests/fixtures/pages/bad-ladder.yaml", BROADCAST],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing was checked online"),
        "{}",
        out.stderr
    );
    assert!(s.requests().is_empty());
}

#[test]
fn a_bad_public_url_is_a_usage_error() {
    let s = server();
    let out = online(&s.url(), &[PAGE, "--public-url", "http://cb.example.com"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn playbooks_sharing_a_caller_id_read_it_once() {
    let s = server();
    let out = online(&s.url(), &[BROADCAST, PAGE_NO_SMS]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(s.requests().len(), 1);
}

#[test]
fn without_online_nothing_is_contacted() {
    let s = server();
    let out = finish(
        callbook()
            .args(["validate", UNKNOWN, "--base-url", &s.url()])
            .env("FONESTORM_TOKEN", TOKEN),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn a_test_file_beside_the_playbooks_is_checked_offline_as_a_test_file() {
    // `validate --online playbooks/*.yaml` meets the playbooks' tests too.
    let s = server();
    let out = online(&s.url(), &[BROADCAST, "playbooks/db-down.test.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("playbooks/db-down.test.yaml: ok (tests of `db-down`"),
        "{}",
        out.stderr
    );
    assert_read_only(&s);
}
