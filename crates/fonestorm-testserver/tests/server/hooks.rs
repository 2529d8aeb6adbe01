//! Registering callbacks and reading them back: `POST /calls/send_notify`,
//! `POST /calls/receive_notify`, `POST /messages/receive`, `GET /fonenumbers`.

use std::collections::BTreeMap;

use fonestorm_testserver::{
    Config, HookMethod, Hooks, OptionsSpelling, SmsHook, TestServer, UrlHook,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, FONENUMBER, STATIC_TOKEN, expect_error};

fn unlimited() -> Config {
    Config {
        rate_limit: None,
        ..Config::default()
    }
}

fn notify(url: &str) -> Value {
    json!({
        "fonenumber": FONENUMBER,
        "method": "JSON",
        "url": url,
        "url_username": "callbook",
        "url_password": "hook-secret-1",
    })
}

#[tokio::test]
async fn send_notify_is_registered_and_shown_without_the_password() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let response = api
        .post(
            "/calls/send_notify",
            Some(STATIC_TOKEN),
            &notify("http://127.0.0.1:9/fonestorm/calls"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains("hook-secret-1"), "{text}");
    let shown = api.fonenumber(FONENUMBER).await;
    assert!(!shown.to_string().contains("hook-secret-1"), "{shown}");
    assert_eq!(
        shown,
        json!({"fonenumber": {
            "fonenumber": FONENUMBER,
            "is_active": true,
            "call_options": {
                "send_notify": {"type": "URL", "url": "http://127.0.0.1:9/fonestorm/calls", "method": "JSON"},
                "receive_notify": {"type": "None", "url": "", "method": ""},
            },
            "message_options": {"receive": {"type": "None", "value": "", "method": ""}, "sms_enabled": true},
        }})
    );
    assert_eq!(
        server.hooks_of(FONENUMBER).send_notify,
        Some(
            UrlHook::new("http://127.0.0.1:9/fonestorm/calls", HookMethod::Json)
                .basic_auth("callbook", "hook-secret-1")
        )
    );
}

#[tokio::test]
async fn setting_a_callback_replaces_the_previous_and_empty_url_clears_it() {
    let server = TestServer::start(unlimited()).unwrap();
    let api = Api::new(&server);
    for url in ["http://a.example/1", "http://b.example/2"] {
        let response = api
            .post("/calls/receive_notify", Some(STATIC_TOKEN), &notify(url))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let shown = api.fonenumber(FONENUMBER).await;
    assert_eq!(
        shown["fonenumber"]["call_options"]["receive_notify"]["url"],
        "http://b.example/2"
    );
    let clear = json!({"fonenumber": FONENUMBER, "url": ""});
    let response = api
        .post("/calls/receive_notify", Some(STATIC_TOKEN), &clear)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let shown = api.fonenumber(FONENUMBER).await;
    assert_eq!(
        shown["fonenumber"]["call_options"]["receive_notify"],
        json!({"type": "None", "url": "", "method": ""})
    );
    assert_eq!(server.hooks_of(FONENUMBER), Hooks::default());
}

#[tokio::test]
async fn every_sms_delivery_type_is_registered() {
    let server = TestServer::start(unlimited()).unwrap();
    let api = Api::new(&server);
    let cases = [
        (
            json!({"fonenumber": FONENUMBER, "type": "URL", "value": "https://x.example/sms",
                   "url_method": "GET", "url_username": "u", "url_password": "sms-secret-2"}),
            json!({"type": "URL", "value": "https://x.example/sms", "method": "GET"}),
        ),
        (
            json!({"fonenumber": FONENUMBER, "type": "Email", "value": "ops@example.com"}),
            json!({"type": "Email", "value": "ops@example.com", "method": ""}),
        ),
        (
            json!({"fonenumber": FONENUMBER, "type": "Forward", "value": "13125550101"}),
            json!({"type": "Forward", "value": "13125550101", "method": ""}),
        ),
        (
            json!({"fonenumber": FONENUMBER, "type": "None"}),
            json!({"type": "None", "value": "", "method": ""}),
        ),
    ];
    for (body, view) in cases {
        let response = api
            .post("/messages/receive", Some(STATIC_TOKEN), &body)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let shown = api.fonenumber(FONENUMBER).await;
        assert_eq!(shown["fonenumber"]["message_options"]["receive"], view);
        assert!(!shown.to_string().contains("sms-secret-2"));
    }
}

#[tokio::test]
async fn sms_url_defaults_to_post_and_keeps_the_credentials() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let body = json!({"fonenumber": FONENUMBER, "type": "URL", "value": "http://x.example/sms",
                      "url_username": "callbook", "url_password": "pw"});
    let response = api
        .post("/messages/receive", Some(STATIC_TOKEN), &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.hooks_of(FONENUMBER).sms,
        Some(SmsHook::Url(
            UrlHook::new("http://x.example/sms", HookMethod::Post).basic_auth("callbook", "pw")
        ))
    );
}

#[tokio::test]
async fn every_callback_endpoint_needs_a_valid_token() {
    let server = TestServer::start(unlimited()).unwrap();
    let api = Api::new(&server);
    let sms = json!({"fonenumber": FONENUMBER, "type": "None"});
    for token in [None, Some("not-a-token")] {
        for (path, body) in [
            ("/calls/send_notify", notify("http://a.example/")),
            ("/calls/receive_notify", notify("http://a.example/")),
            ("/messages/receive", sms.clone()),
        ] {
            expect_error(api.post(path, token, &body).await, 401).await;
        }
        for path in ["/fonenumbers", "/fonenumbers/3214991000"] {
            expect_error(api.get(path, token).await, 401).await;
        }
    }
    assert_eq!(server.hooks(), BTreeMap::new());
}

#[tokio::test]
async fn bad_registrations_get_400_and_change_nothing() {
    let server = TestServer::start(unlimited()).unwrap();
    let api = Api::new(&server);
    let with = |key: &str, value: Value| {
        let mut body = notify("http://a.example/hook");
        body[key] = value;
        body
    };
    let long_url = format!("http://a.example/{}", "x".repeat(3000));
    let bad = [
        ("unknown field", with("extra", json!(1))),
        ("lowercase method", with("method", json!("json"))),
        ("unknown method", with("method", json!("PUT"))),
        ("missing method", {
            let mut body = notify("http://a.example/hook");
            body.as_object_mut().unwrap().remove("method");
            body
        }),
        ("relative url", with("url", json!("/fonestorm/calls"))),
        ("ftp url", with("url", json!("ftp://a.example/x"))),
        ("not a url", with("url", json!("not a url"))),
        ("too long url", with("url", json!(long_url))),
        ("url as a number", with("url", json!(7))),
        (
            "credentials in the url",
            with("url", json!("http://callbook:pw@a.example/hook")),
        ),
        (
            "fonenumber too short",
            with("fonenumber", json!("321499100")),
        ),
        ("colon in user name", with("url_username", json!("a:b"))),
        (
            "long password",
            with("url_password", json!("p".repeat(300))),
        ),
        ("not an object", json!(["x"])),
    ];
    for (what, body) in &bad {
        for path in ["/calls/send_notify", "/calls/receive_notify"] {
            let response = api.post(path, Some(STATIC_TOKEN), body).await;
            assert_eq!(response.status(), 400, "{what} on {path}");
            expect_error(response, 400).await;
        }
    }
    let sms_bad = [
        json!({"fonenumber": FONENUMBER, "type": "url", "value": "http://a.example/"}),
        json!({"fonenumber": FONENUMBER, "type": "URL"}),
        json!({"fonenumber": FONENUMBER, "type": "URL", "value": "mailto:a@b.c"}),
        json!({"fonenumber": FONENUMBER, "type": "URL", "value": "http://u:p@a.example/"}),
        json!({"fonenumber": FONENUMBER, "type": "URL", "value": "http://a.example/", "url_method": "PATCH"}),
        json!({"fonenumber": FONENUMBER, "type": "Email", "value": "not an address"}),
        json!({"fonenumber": FONENUMBER, "type": "Forward", "value": "+1 312"}),
        json!({"fonenumber": FONENUMBER, "type": "None", "method": "GET"}),
        json!({"type": "None"}),
    ];
    for body in &sms_bad {
        let response = api
            .post("/messages/receive", Some(STATIC_TOKEN), body)
            .await;
        assert_eq!(response.status(), 400, "{body}");
        expect_error(response, 400).await;
    }
    assert_eq!(server.hooks(), BTreeMap::new());
}

#[tokio::test]
async fn unknown_fonenumbers_get_404_with_the_error_body() {
    let server = TestServer::start(unlimited()).unwrap();
    let api = Api::new(&server);
    let mut body = notify("http://a.example/hook");
    body["fonenumber"] = json!("3214991001");
    let message = expect_error(
        api.post("/calls/send_notify", Some(STATIC_TOKEN), &body)
            .await,
        404,
    )
    .await;
    assert!(message.contains("3214991001"), "{message}");
    let sms = json!({"fonenumber": "3214991001", "type": "None"});
    expect_error(
        api.post("/messages/receive", Some(STATIC_TOKEN), &sms)
            .await,
        404,
    )
    .await;
    for path in ["/fonenumbers/3214991001", "/fonenumbers/abc"] {
        expect_error(api.get(path, Some(STATIC_TOKEN)).await, 404).await;
    }
    // A path below a FoneNumber is no API path at all.
    expect_error(
        api.get("/fonenumbers/3214991000/x", Some(STATIC_TOKEN))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn wrong_methods_get_405() {
    let server = TestServer::start(unlimited()).unwrap();
    let api = Api::new(&server);
    for path in [
        "/calls/send_notify",
        "/calls/receive_notify",
        "/messages/receive",
    ] {
        expect_error(api.get(path, Some(STATIC_TOKEN)).await, 405).await;
    }
    for path in ["/fonenumbers", "/fonenumbers/3214991000"] {
        expect_error(api.post(path, Some(STATIC_TOKEN), &json!({})).await, 405).await;
    }
}

#[tokio::test]
async fn the_list_shows_every_fonenumber_and_presets() {
    let hooks = Hooks {
        send_notify: Some(UrlHook::new(
            "https://foreign.example/hook",
            HookMethod::Get,
        )),
        ..Hooks::default()
    };
    let server = TestServer::start(Config {
        fonenumbers: vec!["3214991000".to_owned(), "3214991001".to_owned()],
        hooks: BTreeMap::from([("3214991001".to_owned(), hooks)]),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let response = api.get("/fonenumbers", Some(STATIC_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    let list = list["fonenumbers"].as_array().unwrap();
    let numbers: Vec<&str> = list
        .iter()
        .map(|entry| entry["fonenumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["3214991000", "3214991001"]);
    assert_eq!(
        list[1]["call_options"]["send_notify"],
        json!({"type": "URL", "url": "https://foreign.example/hook", "method": "GET"})
    );
    assert_eq!(list[0]["call_options"]["send_notify"]["type"], "None");
}

#[tokio::test]
async fn the_voice_spelling_can_be_served() {
    let server = TestServer::start(Config {
        options_spelling: OptionsSpelling::Voice,
        ..Config::default()
    })
    .unwrap();
    server.set_hooks(
        FONENUMBER,
        Hooks {
            sms: Some(SmsHook::Url(UrlHook::new(
                "http://a.example/sms",
                HookMethod::Post,
            ))),
            ..Hooks::default()
        },
    );
    let api = Api::new(&server);
    let shown = api.fonenumber(FONENUMBER).await;
    let entry = &shown["fonenumber"];
    assert!(entry.get("call_options").is_none(), "{shown}");
    assert!(entry.get("message_options").is_none(), "{shown}");
    assert_eq!(entry["voice_options"]["send_notify"]["type"], "None");
    assert_eq!(
        entry["sms_options"]["receive"],
        json!({"type": "URL", "value": "http://a.example/sms", "method": "POST"})
    );
}

#[tokio::test]
async fn callback_requests_count_against_the_rate_limit_and_are_recorded() {
    let server = TestServer::start(Config {
        rate_limit: Some(2),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    assert_eq!(
        api.get("/fonenumbers", Some(STATIC_TOKEN)).await.status(),
        200
    );
    let response = api
        .post(
            "/calls/send_notify",
            Some(STATIC_TOKEN),
            &notify("http://a.example/"),
        )
        .await;
    assert_eq!(response.status(), 200);
    expect_error(
        api.get("/fonenumbers/3214991000", Some(STATIC_TOKEN)).await,
        429,
    )
    .await;
    let records = server.requests();
    let seen: Vec<(&str, &str, Option<u16>)> = records
        .iter()
        .map(|record| (record.method.as_str(), record.path.as_str(), record.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/fonenumbers", Some(200)),
            ("POST", "/calls/send_notify", Some(200)),
            ("GET", "/fonenumbers/3214991000", Some(429)),
        ]
    );
    assert_eq!(server.stats().requests.len(), 3);
    assert!(server.placed_calls().is_empty());
}

#[tokio::test]
async fn inactive_and_sms_disabled_numbers_are_shown_so() {
    let server = TestServer::start(Config {
        fonenumbers: vec![FONENUMBER.to_owned(), "3214991001".to_owned()],
        inactive_fonenumbers: vec!["3214991001".to_owned()],
        sms_disabled_fonenumbers: vec![FONENUMBER.to_owned()],
        options_spelling: OptionsSpelling::Voice,
        ..unlimited()
    })
    .unwrap();
    let api = Api::new(&server);
    let first = api.fonenumber(FONENUMBER).await;
    assert_eq!(first["fonenumber"]["is_active"], true);
    assert_eq!(first["fonenumber"]["sms_options"]["sms_enabled"], false);
    let second = api.fonenumber("3214991001").await;
    assert_eq!(second["fonenumber"]["is_active"], false);
    assert_eq!(second["fonenumber"]["sms_options"]["sms_enabled"], true);
}
