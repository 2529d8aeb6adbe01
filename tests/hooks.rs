//! `callbook hooks show|install|remove` run as a user would, against the
//! local FoneStorm test server (and a tiny fault server for the statuses it
//! does not give): what is shown, what is set, what is refused, and the
//! callback password never printed.

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use fonestorm_testserver::{
    Config, HookMethod, Hooks, OptionsSpelling, SmsHook, TestServer, UrlHook,
};
use support::{Outcome, callbook, finish};

const FIRST: &str = "tests/fixtures/hooks/first.yaml";
const SAME_CALLER: &str = "tests/fixtures/hooks/same-caller.yaml";
const SECOND: &str = "tests/fixtures/hooks/second.yaml";
const FONENUMBER: &str = "3214991000";
const PUBLIC: &str = "https://cb.example.com/pager";
const SECRET: &str = "hooks-test-secret-8b2e71";
const TOKEN: &str = "test-token";

fn server() -> TestServer {
    TestServer::start(Config::default()).unwrap()
}

fn server_with(change: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::default();
    change(&mut config);
    TestServer::start(config).unwrap()
}

/// `callbook hooks ARGS --base-url URL` with the token and the secret set.
fn hooks(base_url: &str, args: &[&str]) -> Outcome {
    hooks_env(
        base_url,
        args,
        &[
            ("FONESTORM_TOKEN", TOKEN),
            ("CALLBOOK_CALLBACK_SECRET", SECRET),
        ],
    )
}

fn hooks_env(base_url: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = callbook();
    cmd.arg("hooks").args(args).args(["--base-url", base_url]);
    cmd.env_remove("CALLBOOK_CALLBACK_SECRET")
        .env_remove("CALLBOOK_PUBLIC_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = finish(&mut cmd);
    for secret in [SECRET, TOKEN] {
        assert!(
            !out.stdout.contains(secret),
            "secret on stdout:\n{}",
            out.stdout
        );
        assert!(
            !out.stderr.contains(secret),
            "secret on stderr:\n{}",
            out.stderr
        );
    }
    out
}

fn ours(path: &str) -> UrlHook {
    UrlHook::new(format!("{PUBLIC}{path}"), HookMethod::Json).basic_auth("callbook", SECRET)
}

fn foreign_sms() -> Hooks {
    Hooks {
        sms: Some(SmsHook::Email("ops@example.com".into())),
        ..Hooks::default()
    }
}

#[test]
fn show_prints_a_table_of_nothing_set() {
    let s = server();
    let out = hooks(&s.url(), &["show", FIRST]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout, @r"
    3214991000
    EVENT           URL  METHOD  OURS
    send_notify     -    -       no
    receive_notify  -    -       no
    sms             -    -       no
    ");
}

#[test]
fn install_points_every_event_at_the_public_url() {
    let s = server();
    let out = hooks(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let h = s.hooks_of(FONENUMBER);
    assert_eq!(h.send_notify, Some(ours("/fonestorm/calls")));
    assert_eq!(h.receive_notify, Some(ours("/fonestorm/inbound")));
    assert_eq!(h.sms, Some(SmsHook::Url(ours("/fonestorm/sms"))));
    insta::assert_snapshot!(out.stderr, @r"
    3214991000: `send_notify` → https://cb.example.com/pager/fonestorm/calls
    3214991000: `receive_notify` → https://cb.example.com/pager/fonestorm/inbound
    3214991000: `sms` → https://cb.example.com/pager/fonestorm/sms
    ");
}

#[test]
fn show_marks_what_points_at_callbook() {
    let s = server();
    s.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(ours("/fonestorm/calls")),
            receive_notify: Some(UrlHook::new(
                "https://other.example.com/in?key=abc",
                HookMethod::Get,
            )),
            sms: Some(SmsHook::Email("ops@example.com".into())),
        },
    );
    let out = hooks(&s.url(), &["show", FIRST, "--public-url", PUBLIC]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout, @r"
    3214991000
    EVENT           URL                                           METHOD  OURS
    send_notify     https://cb.example.com/pager/fonestorm/calls  JSON    yes
    receive_notify  https://other.example.com/in?…                GET     no
    sms             Email ops@example.com                         -       no
    ");
}

#[test]
fn show_reads_the_voice_spelling() {
    let s = server_with(|c| c.options_spelling = OptionsSpelling::Voice);
    s.set_hooks(
        FONENUMBER,
        Hooks {
            sms: Some(SmsHook::Url(ours("/fonestorm/sms"))),
            ..Hooks::default()
        },
    );
    let out = hooks(&s.url(), &["show", FIRST, "--public-url", PUBLIC]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("sms             https://cb.example.com/pager/fonestorm/sms  JSON    yes"),
        "{}",
        out.stdout
    );
}

#[test]
fn one_table_per_distinct_caller_id() {
    let s = server_with(|c| c.fonenumbers.push("3214992000".into()));
    let out = hooks(&s.url(), &["show", FIRST, SAME_CALLER, SECOND]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches("EVENT").count(), 2, "{}", out.stdout);
    assert!(out.stdout.starts_with("3214991000\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\n3214992000\n"), "{}", out.stdout);
}

#[test]
fn install_refuses_to_replace_a_foreign_callback() {
    let s = server();
    s.set_hooks(FONENUMBER, foreign_sms());
    let out = hooks(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @r"
    error: `sms` of 3214991000 points at Email ops@example.com, not at callbook
    nothing was changed: FoneStorm keeps one callback per event; use --replace to replace these
    ");
    assert_eq!(s.hooks_of(FONENUMBER), foreign_sms());
}

#[test]
fn install_refuses_a_callback_of_another_public_url() {
    let s = server();
    let old = Hooks {
        send_notify: Some(UrlHook::new(
            "https://old.example.com/fonestorm/calls",
            HookMethod::Json,
        )),
        ..Hooks::default()
    };
    s.set_hooks(FONENUMBER, old.clone());
    let out = hooks(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("https://old.example.com/fonestorm/calls"),
        "{}",
        out.stderr
    );
    assert_eq!(s.hooks_of(FONENUMBER), old);
}

#[test]
fn install_with_replace_replaces_a_foreign_callback() {
    let s = server();
    s.set_hooks(FONENUMBER, foreign_sms());
    let out = hooks(
        &s.url(),
        &[
            "install",
            FIRST,
            "--public-url",
            PUBLIC,
            "--yes",
            "--replace",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: `sms` of 3214991000 points at Email ops@example.com: replacing it"),
        "{}",
        out.stderr
    );
    assert_eq!(
        s.hooks_of(FONENUMBER).sms,
        Some(SmsHook::Url(ours("/fonestorm/sms")))
    );
}

#[test]
fn install_without_a_secret_is_refused_before_anything_is_sent() {
    let s = server();
    let out = hooks_env(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
        &[("FONESTORM_TOKEN", TOKEN)],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"error: `CALLBOOK_CALLBACK_SECRET` is not set: FoneStorm must send a password with every callback; nothing was changed");
    assert!(s.requests().is_empty());
}

#[test]
fn install_with_a_short_secret_is_refused() {
    let s = server();
    let out = hooks_env(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
        &[
            ("FONESTORM_TOKEN", TOKEN),
            ("CALLBOOK_CALLBACK_SECRET", "short"),
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("too short"), "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn install_without_a_public_url_is_a_usage_error() {
    let s = server();
    let out = hooks(&s.url(), &["install", FIRST, "--yes"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("needs --public-url"), "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn the_public_url_comes_from_the_environment_too() {
    let s = server();
    let out = hooks_env(
        &s.url(),
        &["install", FIRST, "--yes"],
        &[
            ("FONESTORM_TOKEN", TOKEN),
            ("CALLBOOK_CALLBACK_SECRET", SECRET),
            ("CALLBOOK_PUBLIC_URL", PUBLIC),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        s.hooks_of(FONENUMBER).send_notify,
        Some(ours("/fonestorm/calls"))
    );
}

#[test]
fn a_plain_http_public_url_is_refused() {
    let s = server();
    let out = hooks(
        &s.url(),
        &[
            "install",
            FIRST,
            "--public-url",
            "http://cb.example.com",
            "--yes",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("uses plain http"), "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn a_public_url_with_a_password_is_refused_without_showing_it() {
    let s = server();
    let out = hooks(
        &s.url(),
        &[
            "install",
            FIRST,
            "--public-url",
            "https://cb:hunter2@cb.example.com",
            "--yes",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn a_public_url_with_a_query_is_refused() {
    let s = server();
    let out = hooks(
        &s.url(),
        &[
            "install",
            FIRST,
            "--public-url",
            "https://cb.example.com/?a=b",
            "--yes",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn without_a_terminal_install_does_not_ask() {
    let s = server();
    // No --yes, standard input is not a terminal: it must not wait for an answer.
    let out = hooks(&s.url(), &["install", FIRST, "--public-url", PUBLIC]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("[y/N]"), "{}", out.stderr);
    assert_eq!(
        s.hooks_of(FONENUMBER).send_notify,
        Some(ours("/fonestorm/calls"))
    );
}

#[test]
fn remove_clears_only_what_points_at_callbook() {
    let s = server();
    let foreign = UrlHook::new("https://other.example.com/in", HookMethod::Post);
    s.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(ours("/fonestorm/calls")),
            receive_notify: Some(foreign.clone()),
            sms: Some(SmsHook::Url(ours("/fonestorm/sms"))),
        },
    );
    let out = hooks(&s.url(), &["remove", FIRST, "--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        s.hooks_of(FONENUMBER),
        Hooks {
            send_notify: None,
            receive_notify: Some(foreign),
            sms: None,
        }
    );
    insta::assert_snapshot!(out.stderr, @r"
    `receive_notify` of 3214991000 points at https://other.example.com/in, not at callbook: left alone
    3214991000: `send_notify` cleared
    3214991000: `sms` cleared
    ");
}

#[test]
fn remove_with_a_public_url_leaves_another_deployments_callbacks() {
    let s = server();
    let other = UrlHook::new("https://old.example.com/fonestorm/calls", HookMethod::Json);
    s.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(other.clone()),
            ..Hooks::default()
        },
    );
    let out = hooks(
        &s.url(),
        &["remove", FIRST, "--yes", "--public-url", PUBLIC],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(s.hooks_of(FONENUMBER).send_notify, Some(other));
}

#[test]
fn remove_with_nothing_of_ours_changes_nothing() {
    let s = server();
    s.set_hooks(FONENUMBER, foreign_sms());
    let out = hooks(&s.url(), &["remove", FIRST, "--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert_eq!(s.hooks_of(FONENUMBER), foreign_sms());
    assert!(s.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn a_refused_token_is_exit_3_with_the_status_and_message() {
    let s = server();
    let out = hooks_env(
        &s.url(),
        &["show", FIRST],
        &[("FONESTORM_TOKEN", "wrong-token")],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-token"), "{}", out.stderr);
}

#[test]
fn missing_credentials_are_refused() {
    let s = server();
    let out = hooks_env(&s.url(), &["show", FIRST], &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("no FoneStorm credentials"),
        "{}",
        out.stderr
    );
    assert!(s.requests().is_empty());
}

#[test]
fn a_login_works_like_a_token() {
    let s = server();
    let out = hooks_env(
        &s.url(),
        &["show", FIRST],
        &[
            ("FONESTORM_USERNAME", "callbook"),
            ("FONESTORM_PASSWORD", "s3cret-test-password"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("s3cret-test-password"));
}

#[test]
fn an_unknown_fonenumber_is_exit_3_with_the_status_and_message() {
    let s = server();
    let out = hooks(&s.url(), &["show", SECOND]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"error: cannot read the callbacks of 3214992000: FoneStorm answered `GET /fonenumbers/3214992000` with HTTP 404: `3214992000` is not a FoneNumber of this account");
}

#[test]
fn an_invalid_playbook_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "bad.yaml", "version: 1\nname: x\n");
    let s = server();
    let out = hooks(&s.url(), &["show", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(s.requests().is_empty());
}

/// A server that answers every request with `status` and `body`, and
/// records each request line and body.
struct FaultServer {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn fault_server(status: u16, body: &'static str) -> FaultServer {
    scripted_server(vec![(status, body)])
}

/// A server whose n-th answer is `answers[n]`; the last one repeats.
fn scripted_server(answers: Vec<(u16, &'static str)>) -> FaultServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0; length.min(1 << 20)];
            let _ = reader.read_exact(&mut request_body);
            let n = record.lock().unwrap().len();
            let (status, body) = answers[n.min(answers.len() - 1)];
            record.lock().unwrap().push(format!(
                "{} {}",
                line.trim(),
                String::from_utf8_lossy(&request_body)
            ));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    FaultServer { url, seen }
}

#[test]
fn a_403_is_exit_3_with_the_providers_message() {
    let f = fault_server(
        403,
        r#"{"error": "Forbidden", "message": "no access to this number", "status_code": 403}"#,
    );
    let out = hooks(&f.url, &["show", FIRST]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @"error: cannot read the callbacks of 3214991000: FoneStorm answered `GET /fonenumbers/3214991000` with HTTP 403: no access to this number");
    assert_eq!(f.seen.lock().unwrap().len(), 1);
}

#[test]
fn a_500_is_retried_then_exit_3() {
    let f = fault_server(500, r#"{"message": "internal error"}"#);
    let out = hooks(&f.url, &["install", FIRST, "--public-url", PUBLIC, "--yes"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("HTTP 500: internal error (gave up after 4 attempts)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    let seen = f.seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /fonenumbers/3214991000 ")),
        "{seen:?}"
    );
}

#[test]
fn a_provider_that_echoes_the_secret_does_not_get_it_printed() {
    // The read succeeds; the first setting is refused with the password in the message.
    let listener_body = r#"{"fonenumber": {"call_options": {}, "message_options": {}}}"#;
    let f = fault_server(200, listener_body);
    let out = hooks(&f.url, &["install", FIRST, "--public-url", PUBLIC, "--yes"]);
    // 200 with no setting shown is read as nothing set, so install goes on and succeeds.
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sent = f.seen.lock().unwrap();
    assert!(
        sent.iter().any(|r| r.contains("\"url_password\"")),
        "{sent:?}"
    );
    drop(sent);
    let echo = fault_server(
        400,
        r#"{"message": "url_password hooks-test-secret-8b2e71 is not allowed"}"#,
    );
    let out = hooks(
        &echo.url,
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    // `hooks` asserts the secret is in neither stream.
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("HTTP 400: url_password *** is not allowed"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_names_the_secret_and_the_exit_codes() {
    for sub in ["show", "install", "remove"] {
        let out = finish(callbook().args(["hooks", sub, "--help"]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        for needle in [
            "CALLBOOK_CALLBACK_SECRET",
            "FONESTORM_TOKEN",
            "Exit codes:",
            "--public-url",
        ] {
            assert!(
                out.stdout.contains(needle),
                "{sub}: {needle}\n{}",
                out.stdout
            );
        }
    }
}

/// The check a page makes before its first call, through the library.
fn problems(server: &TestServer) -> Vec<String> {
    use callbook::provider::hooks::PublicUrl;
    use callbook::provider::limiter::RateLimiter;
    use callbook::provider::{Client, Credentials, Secret};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = server.url().parse().unwrap();
    let client = Client::new(
        base,
        Credentials::Token(Secret::new(TOKEN.into())),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let public = PublicUrl::parse(PUBLIC).unwrap();
    runtime
        .block_on(client.callback_problems(&RateLimiter::new(10.0), FONENUMBER, &public))
        .unwrap()
}

#[test]
fn the_start_up_check_names_every_event_not_pointing_at_the_listener() {
    let s = server();
    s.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(ours("/fonestorm/calls")),
            receive_notify: None,
            sms: Some(SmsHook::Forward("13214991008".into())),
        },
    );
    assert_eq!(
        problems(&s),
        [
            "`receive_notify` of 3214991000 is not set, not https://cb.example.com/pager/fonestorm/inbound (run `callbook hooks install`)",
            "`sms` of 3214991000 points at Forward 13214991008, not https://cb.example.com/pager/fonestorm/sms (run `callbook hooks install`)",
        ]
    );
}

#[test]
fn the_start_up_check_passes_after_install() {
    let s = server();
    let out = hooks(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(problems(&s).is_empty());
}

#[test]
fn a_failure_half_way_says_how_many_were_set() {
    let nothing_set = r#"{"fonenumber": {"call_options": {}, "message_options": {}}}"#;
    let f = scripted_server(vec![
        (200, nothing_set),
        (200, "{}"),
        (403, r#"{"message": "inbound callbacks are not enabled"}"#),
    ]);
    let out = hooks(&f.url, &["install", FIRST, "--public-url", PUBLIC, "--yes"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr, @r"
    3214991000: `send_notify` → https://cb.example.com/pager/fonestorm/calls
    error: cannot set `receive_notify` of 3214991000: FoneStorm answered `POST /calls/receive_notify` with HTTP 403: inbound callbacks are not enabled
    1 of 3 callbacks were set; run the command again
    ");
    assert_eq!(f.seen.lock().unwrap().len(), 3);
}

// ---- Hostile input: odd public URLs, a provider that repeats the secret ----

#[test]
fn a_public_url_with_port_0_is_refused() {
    let s = server();
    for url in ["https://cb.example.com:0", "http://127.0.0.1:0/pager"] {
        let out = hooks(&s.url(), &["install", FIRST, "--public-url", url, "--yes"]);
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        assert!(out.stderr.contains("port 0"), "{url}: {}", out.stderr);
    }
    assert!(s.requests().is_empty());
}

#[test]
fn a_public_url_that_only_starts_like_localhost_needs_https() {
    let s = server();
    for url in [
        "http://localhost.evil.com",
        "http://127.0.0.1.nip.io",
        "http://0.0.0.0:8080",
    ] {
        let out = hooks(&s.url(), &["install", FIRST, "--public-url", url, "--yes"]);
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        assert!(
            out.stderr.contains("uses plain http"),
            "{url}: {}",
            out.stderr
        );
    }
    assert!(s.requests().is_empty());
}

#[test]
fn install_points_an_idn_or_ipv6_public_url_at_the_right_paths() {
    for (public, expected) in [
        (
            "https://bücher.example/pager/",
            "https://xn--bcher-kva.example/pager/fonestorm/calls",
        ),
        (
            "https://[2001:db8::1]:8443/",
            "https://[2001:db8::1]:8443/fonestorm/calls",
        ),
    ] {
        let s = server();
        let out = hooks(
            &s.url(),
            &["install", FIRST, "--public-url", public, "--yes"],
        );
        assert_eq!(out.code, 0, "{public}: {}", out.stderr);
        let hooks = s.hooks_of(FONENUMBER);
        assert_eq!(
            hooks.send_notify.map(|h| h.url),
            Some(expected.to_string()),
            "{public}"
        );
    }
}

#[test]
fn a_retried_answer_that_repeats_the_secret_is_not_logged() {
    // A 500 is retried, and each retry is logged with `-v`: the secret the
    // provider repeats must not be in those lines either.
    let f = fault_server(
        500,
        r#"{"message": "url_password hooks-test-secret-8b2e71 is rejected"}"#,
    );
    let out = hooks(
        &f.url,
        &["-v", "install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    // `hooks` asserts the secret is in neither stream.
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
}

#[test]
fn a_retried_answer_that_repeats_the_secret_json_escaped_is_not_logged() {
    let f = fault_server(
        500,
        r#"{"message": "url_password \u0068ooks-test-secret-8b2e71 is rejected"}"#,
    );
    let out = hooks(
        &f.url,
        &["-v", "install", FIRST, "--public-url", PUBLIC, "--yes"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
}

/// A secret with characters that URL-encoding and base64 change.
const ODD_SECRET: &str = "hooks/test+secret=8b2e71&x:y";

fn echo_of_odd_secret(body: &'static str) -> Outcome {
    let f = fault_server(400, body);
    let out = hooks_env(
        &f.url,
        &["-v", "install", FIRST, "--public-url", PUBLIC, "--yes"],
        &[
            ("FONESTORM_TOKEN", TOKEN),
            ("CALLBOOK_CALLBACK_SECRET", ODD_SECRET),
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!out.stderr.contains(ODD_SECRET), "{}", out.stderr);
    out
}

#[test]
fn a_url_encoded_echo_of_the_secret_is_not_printed() {
    let out = echo_of_odd_secret(
        r#"{"message": "bad url https://callbook:hooks%2Ftest%2Bsecret%3D8b2e71%26x%3Ay@cb.example.com"}"#,
    );
    assert!(
        !out.stderr
            .contains("hooks%2Ftest%2Bsecret%3D8b2e71%26x%3Ay"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("HTTP 400: bad url"), "{}", out.stderr);
}

#[test]
fn a_base64_echo_of_the_credentials_is_not_printed() {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("callbook:{ODD_SECRET}"));
    // Checked here so the literal below stays in step with the secret.
    assert_eq!(
        encoded,
        "Y2FsbGJvb2s6aG9va3MvdGVzdCtzZWNyZXQ9OGIyZTcxJng6eQ=="
    );
    let out = echo_of_odd_secret(
        r#"{"message": "refused Authorization: Basic Y2FsbGJvb2s6aG9va3MvdGVzdCtzZWNyZXQ9OGIyZTcxJng6eQ=="}"#,
    );
    assert!(!out.stderr.contains(&encoded), "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 400: refused"), "{}", out.stderr);
}

#[test]
fn a_secret_with_a_trailing_newline_is_refused_naming_the_newline() {
    let s = server();
    let out = hooks_env(
        &s.url(),
        &["install", FIRST, "--public-url", PUBLIC, "--yes"],
        &[
            ("FONESTORM_TOKEN", TOKEN),
            ("CALLBOOK_CALLBACK_SECRET", "hooks-test-secret-8b2e71\n"),
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("line break"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(s.requests().is_empty());
}

#[test]
fn install_reads_back_and_reports_a_callback_replaced_meanwhile() {
    // Another install (another deployment) set its own URL between this
    // one's read and its writes: FoneStorm cannot refuse a change, so the
    // read-back after the writes must tell.
    let nothing_set = r#"{"fonenumber": {"call_options": {}, "message_options": {}}}"#;
    let replaced = r#"{"fonenumber": {"call_options": {"send_notify": {"type": "URL", "url": "https://other.example.com/fonestorm/calls", "method": "JSON"}}, "message_options": {}}}"#;
    let f = scripted_server(vec![
        (200, nothing_set),
        (200, "{}"),
        (200, "{}"),
        (200, "{}"),
        (200, replaced),
    ]);
    let out = hooks(&f.url, &["install", FIRST, "--public-url", PUBLIC, "--yes"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "`send_notify` of 3214991000 points at https://other.example.com/fonestorm/calls right after it was set"
        ),
        "{}",
        out.stderr
    );
    let seen = f.seen.lock().unwrap();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen[4].starts_with("GET /fonenumbers/3214991000 "),
        "{seen:?}"
    );
}

#[test]
fn a_public_url_that_already_names_a_callback_path_is_refused() {
    // Given the endpoint instead of the base, callbook would install
    // `…/fonestorm/calls/fonestorm/calls`, where every callback is lost.
    let s = server();
    for url in [
        "https://cb.example.com/fonestorm/calls",
        "https://cb.example.com/pager/fonestorm/sms/",
        "https://cb.example.com/fonestorm/inbound",
    ] {
        let out = hooks(&s.url(), &["install", FIRST, "--public-url", url, "--yes"]);
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        assert!(out.stderr.contains("base URL"), "{url}: {}", out.stderr);
    }
    assert!(s.requests().is_empty());
}
