//! Call callbacks: `BEGIN` and `END` sent to the `send_notify` URL after each
//! placed call, with the scripted disposition, the registered method and Basic
//! auth; delayed, lost or duplicated on request; never retried or redirected.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fonestorm_testserver::{
    CallbackFault, CallbackKind, CallbackRecord, CallbackRule, Config, DispositionScript, Fault,
    FaultRule, HookMethod, Hooks, NumberStyle, Outcome, TestServer, UrlHook,
};
use serde_json::json;

use crate::common::{Api, FONENUMBER, STATIC_TOKEN, expect_call_id};
use crate::receiver::{Answer, Receiver};

const WAIT: Duration = Duration::from_secs(10);

fn config() -> Config {
    Config {
        rate_limit: None,
        ..Config::default()
    }
}

/// A server whose FoneNumber sends `send_notify` to the receiver's `/calls`.
fn server_with(receiver: &Receiver, method: HookMethod, config: Config) -> TestServer {
    let server = TestServer::start(config).unwrap();
    server.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(UrlHook::new(receiver.url("/calls"), method)),
            ..Hooks::default()
        },
    );
    server
}

fn statuses(callbacks: &[CallbackRecord]) -> Vec<String> {
    callbacks
        .iter()
        .map(|callback| callback.field("status").unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_placed_call_sends_begin_then_end_as_json_with_basic_auth() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = TestServer::start(config()).unwrap();
    let api = Api::new(&server);
    let register = json!({
        "fonenumber": FONENUMBER,
        "method": "JSON",
        "url": receiver.url("/fonestorm/calls"),
        "url_username": "callbook",
        "url_password": "cb-secret-9",
    });
    let response = api
        .post("/calls/send_notify", Some(STATIC_TOKEN), &register)
        .await;
    assert_eq!(response.status(), 200);
    let id = expect_call_id(api.call("13125550101").await).await;
    let received = receiver.wait_for(2);
    assert_eq!(received.len(), 2, "{received:?}");
    let expected_auth = format!("Basic {}", STANDARD.encode("callbook:cb-secret-9"));
    for (got, status) in received.iter().zip(["BEGIN", "END"]) {
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/fonestorm/calls");
        assert!(got.query.is_empty(), "{got:?}");
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        assert_eq!(got.authorization.as_deref(), Some(expected_auth.as_str()));
        let body = got.body.as_ref().unwrap();
        assert_eq!(body["uid"], json!(id));
        assert_eq!(body["status"], status);
        assert_eq!(body["direction"], "OUTBOUND");
        assert_eq!(body["type"], "VOICE");
        assert_eq!(body["from"], FONENUMBER);
        assert_eq!(body["to"], "13125550101");
        assert_eq!(body["account_code"], "1000");
    }
    let begin = received[0].body.as_ref().unwrap();
    assert!(begin.get("disposition").is_none(), "{begin}");
    assert!(begin.get("billable_seconds").is_none(), "{begin}");
    let end = received[1].body.as_ref().unwrap();
    assert_eq!(end["disposition"], "ANSWERED");
    assert_eq!(end["billable_seconds"], 30);

    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(statuses(&callbacks), ["BEGIN", "END"]);
    for callback in &callbacks {
        assert_eq!(callback.kind, CallbackKind::Call);
        assert_eq!(callback.receiver_status, Some(200));
        assert!(callback.basic_auth);
        assert!(!callback.lost);
        assert_eq!(callback.field("uid"), Some(id.clone()));
    }
    let stats = serde_json::to_string(&server.stats()).unwrap();
    assert!(!stats.contains("cb-secret-9"), "{stats}");
}

#[tokio::test]
async fn get_sends_the_fields_as_a_query_string_without_auth() {
    let receiver = Receiver::start(Answer::Status(204));
    let server = server_with(&receiver, HookMethod::Get, config());
    let api = Api::new(&server);
    let id = expect_call_id(api.call("13125550101").await).await;
    let received = receiver.wait_for(2);
    assert_eq!(received.len(), 2);
    for got in &received {
        assert_eq!(got.method, "GET");
        assert!(got.body.is_none(), "{got:?}");
        assert!(got.authorization.is_none());
        assert_eq!(got.query.get("uid"), Some(&id));
    }
    assert_eq!(received[1].query["status"], "END");
    assert_eq!(received[1].query["disposition"], "ANSWERED");
    assert_eq!(received[1].query["billable_seconds"], "30");
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert!(callbacks.iter().all(|c| c.receiver_status == Some(204)));
    assert!(callbacks.iter().all(|c| !c.basic_auth));
}

#[tokio::test]
async fn post_sends_the_fields_as_query_string_and_json_body() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(&receiver, HookMethod::Post, config());
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let received = receiver.wait_for(2);
    assert_eq!(received.len(), 2);
    for got in &received {
        assert_eq!(got.method, "POST");
        let body = got.body.as_ref().unwrap();
        assert_eq!(got.query["uid"], body["uid"].as_str().unwrap());
        assert_eq!(got.query["status"], body["status"].as_str().unwrap());
    }
}

#[tokio::test]
async fn dispositions_follow_the_script_per_dial_string_and_attempt() {
    let receiver = Receiver::start(Answer::Status(200));
    let script: DispositionScript = "to=13125550101:NO_ANSWER,ANSWERED/45s".parse().unwrap();
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            dispositions: vec![script],
            ..config()
        },
    );
    let api = Api::new(&server);
    for to in ["13125550101", "13125550101", "13125550102", "13125550101"] {
        expect_call_id(api.call(to).await).await;
    }
    let callbacks = server.wait_for_callbacks(8, WAIT);
    let ends: Vec<(String, String, String)> = callbacks
        .iter()
        .filter(|c| c.field("status").as_deref() == Some("END"))
        .map(|c| {
            (
                c.field("to").unwrap(),
                c.field("disposition").unwrap(),
                c.field("billable_seconds").unwrap(),
            )
        })
        .collect();
    let mut ends_by_to: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (to, disposition, seconds) in ends {
        ends_by_to
            .entry(to)
            .or_default()
            .push((disposition, seconds));
    }
    let pair = |d: &str, s: &str| (d.to_owned(), s.to_owned());
    assert_eq!(
        ends_by_to["13125550101"],
        [
            pair("NO_ANSWER", "0"),
            pair("ANSWERED", "45"),
            pair("ANSWERED", "45")
        ]
    );
    assert_eq!(ends_by_to["13125550102"], [pair("ANSWERED", "30")]);
    let outcomes: Vec<Option<Outcome>> = server
        .requests()
        .into_iter()
        .map(|record| record.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Some(Outcome::unanswered("NO_ANSWER")),
            Some(Outcome::answered(45)),
            Some(Outcome::answered(30)),
            Some(Outcome::answered(45)),
        ]
    );
}

#[tokio::test]
async fn dispositions_are_scripted_without_a_registered_callback_too() {
    let server = TestServer::start(Config {
        dispositions: vec!["any:BUSY".parse().unwrap()],
        ..config()
    })
    .unwrap();
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let record = &server.requests()[0];
    assert_eq!(record.outcome, Some(Outcome::unanswered("BUSY")));
    assert!(server.callbacks().is_empty());
}

#[tokio::test]
async fn end_waits_for_the_callback_delay() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            callback_delay: Duration::from_millis(300),
            ..config()
        },
    );
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(statuses(&callbacks), ["BEGIN", "END"]);
    assert!(
        callbacks[1].at_ms - callbacks[0].at_ms >= 300,
        "{callbacks:?}"
    );
}

#[tokio::test]
async fn a_hanging_receiver_neither_holds_up_the_answer_nor_hangs_the_delivery() {
    let receiver = Receiver::start(Answer::Hang);
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            callback_timeout: Duration::from_secs(2),
            ..config()
        },
    );
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    // The answer came while the BEGIN delivery was still waiting on the receiver.
    assert!(server.callbacks().is_empty());
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(statuses(&callbacks), ["BEGIN", "END"]);
    for callback in &callbacks {
        assert_eq!(callback.receiver_status, None);
        let error = callback.error.as_deref().unwrap();
        assert!(error.contains("no answer within"), "{error}");
    }
    // Not retried: one request per callback.
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn the_receivers_status_is_recorded_and_never_retried() {
    let receiver = Receiver::start(Answer::Status(500));
    let server = server_with(&receiver, HookMethod::Json, config());
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(statuses(&callbacks), ["BEGIN", "END"]);
    assert!(callbacks.iter().all(|c| c.receiver_status == Some(500)));
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start(Answer::Redirect);
    let server = server_with(&receiver, HookMethod::Json, config());
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert!(callbacks.iter().all(|c| c.receiver_status == Some(302)));
    let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/calls", "/calls"]);
}

#[tokio::test]
async fn an_unreachable_receiver_is_recorded_as_failed() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start(config()).unwrap();
    server.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(
                UrlHook::new(format!("http://127.0.0.1:{port}/x"), HookMethod::Json)
                    .basic_auth("u", "unreachable-secret"),
            ),
            ..Hooks::default()
        },
    );
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(callbacks.len(), 2);
    for callback in &callbacks {
        assert_eq!(callback.receiver_status, None);
        let error = callback.error.as_deref().unwrap();
        assert!(!error.is_empty());
        assert!(!error.contains("unreachable-secret"), "{error}");
    }
}

#[tokio::test]
async fn the_end_of_the_nth_call_can_be_lost() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            callback_faults: vec![CallbackRule::new(CallbackFault::LoseEnd).nth(2)],
            ..config()
        },
    );
    let api = Api::new(&server);
    let mut ids = Vec::new();
    for to in ["13125550101", "13125550102", "13125550103"] {
        ids.push(expect_call_id(api.call(to).await).await);
    }
    let callbacks = server.wait_for_callbacks(6, WAIT);
    assert_eq!(callbacks.len(), 6);
    let lost: Vec<(Option<String>, Option<String>)> = callbacks
        .iter()
        .filter(|c| c.lost)
        .map(|c| (c.field("uid"), c.field("status")))
        .collect();
    assert_eq!(lost, [(Some(ids[1].clone()), Some("END".to_owned()))]);
    let received = receiver.wait_for(5);
    assert_eq!(received.len(), 5);
    assert!(
        !received
            .iter()
            .any(|r| r.field("uid") == Some(ids[1].clone())
                && r.field("status").as_deref() == Some("END"))
    );
    assert_eq!(server.callback_fault_fires(), [1]);
}

#[tokio::test]
async fn callbacks_of_calls_to_a_number_can_be_lost_entirely() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            callback_faults: vec!["to=13125550102:lose-both".parse().unwrap()],
            ..config()
        },
    );
    let api = Api::new(&server);
    for to in ["13125550102", "13125550101"] {
        expect_call_id(api.call(to).await).await;
    }
    let callbacks = server.wait_for_callbacks(4, WAIT);
    let lost: Vec<String> = callbacks
        .iter()
        .filter(|c| c.lost)
        .map(|c| c.field("to").unwrap())
        .collect();
    assert_eq!(lost, ["13125550102", "13125550102"]);
    let received = receiver.wait_for(2);
    assert!(
        received
            .iter()
            .all(|r| r.field("to").as_deref() == Some("13125550101"))
    );
}

#[tokio::test]
async fn an_end_can_be_duplicated() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            callback_faults: vec![CallbackRule::new(CallbackFault::DuplicateEnd).times(1)],
            ..config()
        },
    );
    let api = Api::new(&server);
    let id = expect_call_id(api.call("13125550101").await).await;
    let received = receiver.wait_for(3);
    let seen: Vec<(Option<String>, Option<String>)> = received
        .iter()
        .map(|r| (r.field("uid"), r.field("status")))
        .collect();
    let uid = Some(id);
    assert_eq!(
        seen,
        [
            (uid.clone(), Some("BEGIN".to_owned())),
            (uid.clone(), Some("END".to_owned())),
            (uid, Some("END".to_owned())),
        ]
    );
}

#[tokio::test]
async fn ambiguous_calls_get_callbacks_with_the_recorded_uid() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            faults: vec![FaultRule::new(Fault::Status(500)).nth(1)],
            ..config()
        },
    );
    let api = Api::new(&server);
    let response = api.call("13125550101").await;
    assert_eq!(response.status(), 500);
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(statuses(&callbacks), ["BEGIN", "END"]);
    let uid = server.requests()[0].uid.clone();
    assert!(uid.is_some());
    assert!(callbacks.iter().all(|c| c.field("uid") == uid));
}

#[tokio::test]
async fn calls_that_were_not_placed_get_no_callbacks() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            faults: vec![FaultRule::new(Fault::Status(503)).nth(1)],
            ..config()
        },
    );
    let api = Api::new(&server);
    assert_eq!(api.call("13125550101").await.status(), 503);
    // A bad body is not placed either.
    let bad =
        json!({"fonenumber": FONENUMBER, "to": "x", "service_type": "TTS", "service_id": "hi"});
    assert_eq!(api.call_with(Some(STATIC_TOKEN), &bad).await.status(), 400);
    // The next call's callbacks are the only ones.
    expect_call_id(api.call("13125550102").await).await;
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(callbacks.len(), 2);
    assert!(
        callbacks
            .iter()
            .all(|c| c.field("to").as_deref() == Some("13125550102"))
    );
    assert_eq!(server.requests()[0].outcome, None);
}

#[tokio::test]
async fn only_the_caller_ids_callback_is_used() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            fonenumbers: vec![FONENUMBER.to_owned(), "3214991001".to_owned()],
            ..config()
        },
    );
    let api = Api::new(&server);
    let mut other = crate::common::call_body("13125550101");
    other["fonenumber"] = json!("3214991001");
    expect_call_id(api.call_with(Some(STATIC_TOKEN), &other).await).await;
    expect_call_id(api.call("13125550102").await).await;
    let callbacks = server.wait_for_callbacks(2, WAIT);
    assert_eq!(callbacks.len(), 2);
    assert!(
        callbacks
            .iter()
            .all(|c| c.field("from").as_deref() == Some(FONENUMBER))
    );
}

#[tokio::test]
async fn a_cleared_callback_is_not_called() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(&receiver, HookMethod::Json, config());
    let api = Api::new(&server);
    let clear = json!({"fonenumber": FONENUMBER, "url": ""});
    let response = api
        .post("/calls/send_notify", Some(STATIC_TOKEN), &clear)
        .await;
    assert_eq!(response.status(), 200);
    expect_call_id(api.call("13125550101").await).await;
    // Registering again afterwards makes the next call the only one reported.
    let register =
        json!({"fonenumber": FONENUMBER, "method": "GET", "url": receiver.url("/again")});
    let response = api
        .post("/calls/send_notify", Some(STATIC_TOKEN), &register)
        .await;
    assert_eq!(response.status(), 200);
    expect_call_id(api.call("13125550102").await).await;
    let received = receiver.wait_for(2);
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.path == "/again"));
}

#[tokio::test]
async fn numbers_can_be_written_with_a_plus() {
    let receiver = Receiver::start(Answer::Status(200));
    let server = server_with(
        &receiver,
        HookMethod::Json,
        Config {
            number_style: NumberStyle::Plus,
            ..config()
        },
    );
    let api = Api::new(&server);
    expect_call_id(api.call("13125550101").await).await;
    let received = receiver.wait_for(1);
    assert_eq!(received[0].field("from").as_deref(), Some("+13214991000"));
    assert_eq!(received[0].field("to").as_deref(), Some("+13125550101"));
}
