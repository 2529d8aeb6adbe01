//! Inbound simulation: `POST /_simulate/sms` and `POST /_simulate/inbound_call`,
//! and the `Handle` methods doing the same.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fonestorm_testserver::{
    CallbackKind, Config, HookMethod, Hooks, SmsHook, SmsTextField, TestServer, UrlHook,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, FONENUMBER, expect_error};
use crate::receiver::{Answer, Receiver};

/// A server whose FoneNumber delivers SMS and inbound calls to the receiver.
fn server_with(receiver: &Receiver, config: Config) -> TestServer {
    let server = TestServer::start(config).unwrap();
    server.set_hooks(
        FONENUMBER,
        Hooks {
            receive_notify: Some(UrlHook::new(receiver.url("/inbound"), HookMethod::Json)),
            sms: Some(SmsHook::Url(
                UrlHook::new(receiver.url("/sms"), HookMethod::Post)
                    .basic_auth("callbook", "sms-pw"),
            )),
            ..Hooks::default()
        },
    );
    server
}

async fn simulate(api: &Api, path: &str, body: &Value) -> reqwest::Response {
    api.client
        .post(format!("{}{path}", api.base))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_sms_is_delivered_to_the_registered_url_without_a_token() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(&receiver, Config::default());
    let api = Api::new(&server);
    let response = simulate(
        &api,
        "/_simulate/sms",
        &json!({"from": "+1 (312) 555-0101", "to": FONENUMBER, "text": "1 K7F"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["receiver_status"], 200);
    assert_eq!(answer["error"], Value::Null);
    assert_eq!(answer["callback"]["kind"], "sms");
    assert!(!answer.to_string().contains("sms-pw"), "{answer}");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/sms");
    assert_eq!(got.query["message"], "1 K7F");
    assert_eq!(
        got.body,
        Some(json!({"from": "+1 (312) 555-0101", "to": FONENUMBER, "message": "1 K7F"}))
    );
    let auth = format!("Basic {}", STANDARD.encode("callbook:sms-pw"));
    assert_eq!(got.authorization.as_deref(), Some(auth.as_str()));
    // A control request: not an API request, not rate-limited.
    assert!(server.requests().is_empty());
    let callbacks = server.callbacks();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].kind, CallbackKind::Sms);
}

#[tokio::test]
async fn the_sms_text_field_and_the_to_can_be_changed() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        Config {
            sms_text_field: SmsTextField::Body,
            ..Config::default()
        },
    );
    let api = Api::new(&server);
    let default = json!({"from": "13125550101", "to": FONENUMBER, "text": "ack"});
    assert_eq!(
        simulate(&api, "/_simulate/sms", &default).await.status(),
        200
    );
    let chosen = json!({"from": "13125550101", "to": FONENUMBER, "text": "ack", "field": "msg", "omit_to": true});
    assert_eq!(
        simulate(&api, "/_simulate/sms", &chosen).await.status(),
        200
    );
    let bodies: Vec<Option<Value>> = receiver.received().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        [
            Some(json!({"from": "13125550101", "to": FONENUMBER, "body": "ack"})),
            Some(json!({"from": "13125550101", "msg": "ack"})),
        ]
    );
}

#[tokio::test]
async fn an_inbound_call_is_delivered_to_receive_notify() {
    let receiver = Receiver::start(Answer::Status(202));
    let server = server_with(&receiver, Config::default());
    let api = Api::new(&server);
    let response = simulate(
        &api,
        "/_simulate/inbound_call",
        &json!({"from": "13125550101", "to": FONENUMBER}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["receiver_status"], 202);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let body = received[0].body.clone().unwrap();
    assert_eq!(received[0].path, "/inbound");
    assert_eq!(body["direction"], "INBOUND");
    assert_eq!(body["status"], "BEGIN");
    assert_eq!(body["from"], "13125550101");
    assert_eq!(body["to"], FONENUMBER);
    assert_eq!(body["type"], "VOICE");
    assert_eq!(body["uid"].as_str().map(str::len), Some(36));
    assert_eq!(server.callbacks()[0].kind, CallbackKind::InboundCall);
}

#[tokio::test]
async fn a_failed_delivery_is_answered_with_the_reason() {
    let receiver = Receiver::start(Answer::Hang);
    let server = server_with(
        &receiver,
        Config {
            callback_timeout: Duration::from_millis(200),
            ..Config::default()
        },
    );
    let api = Api::new(&server);
    let response = simulate(
        &api,
        "/_simulate/sms",
        &json!({"from": "13125550101", "to": FONENUMBER, "text": "1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["receiver_status"], Value::Null);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|error| error.contains("no answer within")),
        "{answer}"
    );
}

#[tokio::test]
async fn simulations_without_a_registered_url_are_refused() {
    let server = TestServer::start(Config {
        fonenumbers: vec![FONENUMBER.to_owned(), "3214991001".to_owned()],
        ..Config::default()
    })
    .unwrap();
    server.set_hooks(
        "3214991001",
        Hooks {
            sms: Some(SmsHook::Email("ops@example.com".to_owned())),
            ..Hooks::default()
        },
    );
    let api = Api::new(&server);
    let sms = |to: &str| json!({"from": "13125550101", "to": to, "text": "1"});
    let message = expect_error(
        simulate(&api, "/_simulate/sms", &sms(FONENUMBER)).await,
        409,
    )
    .await;
    assert!(message.contains("messages/receive"), "{message}");
    let message = expect_error(
        simulate(&api, "/_simulate/sms", &sms("3214991001")).await,
        409,
    )
    .await;
    assert!(message.contains("Email"), "{message}");
    expect_error(
        simulate(&api, "/_simulate/sms", &sms("3214991009")).await,
        404,
    )
    .await;
    let call = json!({"from": "13125550101", "to": FONENUMBER});
    let message = expect_error(simulate(&api, "/_simulate/inbound_call", &call).await, 409).await;
    assert!(message.contains("receive_notify"), "{message}");
    assert!(server.callbacks().is_empty());
}

#[tokio::test]
async fn bad_simulations_get_400_or_405() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(&receiver, Config::default());
    let api = Api::new(&server);
    let long_text = "x".repeat(1601);
    for body in [
        json!({"from": "13125550101", "to": FONENUMBER}),
        json!({"from": "", "to": FONENUMBER, "text": "1"}),
        json!({"from": "1\n2", "to": FONENUMBER, "text": "1"}),
        json!({"from": "1".repeat(65), "to": FONENUMBER, "text": "1"}),
        json!({"from": "13125550101", "to": FONENUMBER, "text": long_text}),
        json!({"from": "13125550101", "to": FONENUMBER, "text": "1", "field": "content"}),
        json!({"from": "13125550101", "to": FONENUMBER, "text": "1", "extra": true}),
        json!({"from": "13125550101", "to": "321", "text": "1"}),
    ] {
        expect_error(simulate(&api, "/_simulate/sms", &body).await, 400).await;
    }
    for body in [
        json!({"from": "13125550101"}),
        json!({"from": "13125550101", "to": FONENUMBER, "text": "1"}),
    ] {
        expect_error(simulate(&api, "/_simulate/inbound_call", &body).await, 400).await;
    }
    for path in ["/_simulate/sms", "/_simulate/inbound_call"] {
        expect_error(api.get(path, None).await, 405).await;
    }
    assert!(receiver.received().is_empty());
}

#[test]
fn the_handle_simulates_from_a_blocking_test() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(&receiver, Config::default());
    let sms = server
        .simulate_sms("13125550101", FONENUMBER, "1 K7F")
        .unwrap();
    assert_eq!(sms.receiver_status, Some(200));
    assert_eq!(sms.field("message").as_deref(), Some("1 K7F"));
    let call = server
        .simulate_inbound_call("+13125550101", FONENUMBER)
        .unwrap();
    assert_eq!(call.receiver_status, Some(200));
    assert_eq!(call.field("from").as_deref(), Some("+13125550101"));
    assert_eq!(receiver.received().len(), 2);
    let err = server.simulate_sms("", FONENUMBER, "x").unwrap_err();
    assert!(err.contains("`from`"), "{err}");
    let err = server
        .simulate_inbound_call("13125550101", "3214991009")
        .unwrap_err();
    assert!(err.contains("3214991009"), "{err}");
}

#[tokio::test]
async fn the_handle_simulates_from_an_async_test() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(&receiver, Config::default());
    let sms = server
        .simulate_sms_async("13125550101", FONENUMBER, "1 K7F")
        .await
        .unwrap();
    assert_eq!(sms.receiver_status, Some(200));
    let call = server
        .simulate_inbound_call_async("13125550101", FONENUMBER)
        .await
        .unwrap();
    assert_eq!(call.receiver_status, Some(200));
    assert_eq!(server.callbacks().len(), 2);
}
