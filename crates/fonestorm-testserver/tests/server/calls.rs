//! `POST /calls` without faults: strict checks, latency, the record.

use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, Placed, TestServer};
use serde_json::{Value, json};

use crate::common::{Api, STATIC_TOKEN, call_body, expect_call_id, expect_error};

#[tokio::test]
async fn a_valid_call_is_placed() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let id = expect_call_id(api.call("13214991008").await).await;
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
    assert_eq!(server.placed_calls(), ["13214991008"]);
    let records = server.requests();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.path, "/calls");
    assert_eq!(record.to.as_deref(), Some("13214991008"));
    assert_eq!(record.status, Some(201));
    assert_eq!(record.call_id.as_deref(), Some(id.as_str()));
    assert_eq!(record.placed, Placed::Yes);
    assert_eq!(
        server.tokens_seen().into_iter().collect::<Vec<_>>(),
        [STATIC_TOKEN]
    );
}

#[tokio::test]
async fn every_service_type_and_number_form_is_accepted() {
    let server = TestServer::start(Config {
        rate_limit: None,
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    for service_type in ["TTS", "SoundFile", "Device", "VoiceMail", "Phonenumber"] {
        let mut body = call_body("13214991008");
        body["service_type"] = json!(service_type);
        expect_call_id(api.call_with(Some(STATIC_TOKEN), &body).await).await;
    }
    for to in [
        "7",
        "123456",
        "3214991",
        "123456789012345",
        "01149894567898",
        "011123456789012345",
    ] {
        expect_call_id(api.call(to).await).await;
    }
}

#[tokio::test]
async fn bad_call_bodies_get_400_and_are_not_placed() {
    let server = TestServer::start(Config {
        rate_limit: None,
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let good = call_body("13214991008");
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let bad = [
        ("unknown field", with("from", json!("3214991000"))),
        ("to with formatting", with("to", json!("(321) 499-1008"))),
        ("to with plus", with("to", json!("+13214991008"))),
        ("to too long", with("to", json!("1234567890123456"))),
        (
            "to international too long",
            with("to", json!("0111234567890123456")),
        ),
        ("to empty", with("to", json!(""))),
        ("to as a number", with("to", json!(13214991008u64))),
        (
            "fonenumber too short",
            with("fonenumber", json!("321499100")),
        ),
        (
            "fonenumber with 1",
            with("fonenumber", json!("13214991000")),
        ),
        ("service_type lowercase", with("service_type", json!("tts"))),
        ("service_id empty", with("service_id", json!(""))),
        ("service_id null", with("service_id", Value::Null)),
        ("missing to", without("to")),
        ("missing service_id", without("service_id")),
        ("not an object", json!([good.clone()])),
    ];
    for (what, body) in &bad {
        let response = api.call_with(Some(STATIC_TOKEN), body).await;
        assert_eq!(response.status(), 400, "{what}");
        expect_error(response, 400).await;
    }
    assert!(server.placed_calls().is_empty());
}

#[tokio::test]
async fn non_json_call_bodies_get_400() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let url = format!("{}/calls", api.base);
    let truncated = api
        .client
        .post(&url)
        .header("token", STATIC_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"to": "1"#)
        .send()
        .await
        .unwrap();
    expect_error(truncated, 400).await;
    let form = api
        .client
        .post(&url)
        .header("token", STATIC_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("fonenumber=3214991000&to=13214991008&service_type=TTS&service_id=hi")
        .send()
        .await
        .unwrap();
    expect_error(form, 400).await;
}

#[tokio::test]
async fn unknown_fonenumber_gets_404() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let mut body = call_body("13214991008");
    body["fonenumber"] = json!("3215551111");
    let message = expect_error(api.call_with(Some(STATIC_TOKEN), &body).await, 404).await;
    assert!(message.contains("3215551111"), "{message}");
}

#[tokio::test]
async fn missing_or_unknown_token_gets_401() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let body = call_body("13214991008");
    let message = expect_error(api.call_with(None, &body).await, 401).await;
    assert!(message.contains("token"), "{message}");
    expect_error(api.call_with(Some("forged"), &body).await, 401).await;
    // The token is checked before the body.
    expect_error(api.call_with(None, &json!({})).await, 401).await;
    assert!(server.placed_calls().is_empty());
    assert!(server.tokens_seen().contains("forged"));
}

#[tokio::test]
async fn latency_delays_success_and_can_change() {
    let server = TestServer::start(Config {
        latency: Duration::from_millis(300),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let started = Instant::now();
    expect_call_id(api.call("13214991008").await).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Errors do not wait.
    let started = Instant::now();
    expect_error(api.call_with(None, &call_body("1")).await, 401).await;
    assert!(started.elapsed() < Duration::from_millis(300));
    server.set_latency(Duration::ZERO);
    let started = Instant::now();
    expect_call_id(api.call("13214991009").await).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn calls_in_flight_overlap() {
    let server = TestServer::start(Config {
        latency: Duration::from_millis(400),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let started = Instant::now();
    let answers = futures_join(
        &api,
        ["1001001", "1001002", "1001003", "1001004", "1001005"],
    )
    .await;
    assert!(answers.iter().all(|&status| status == 201), "{answers:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.placed_calls().len(), 5);
}

async fn futures_join<const N: usize>(api: &Api, tos: [&str; N]) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for to in tos {
        let request = api
            .client
            .post(format!("{}/calls", api.base))
            .header("token", STATIC_TOKEN)
            .json(&call_body(to));
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn other_paths_and_methods_get_error_bodies() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let missing = api
        .client
        .get(format!("{}/v2/calls", api.base))
        .send()
        .await
        .unwrap();
    expect_error(missing, 404).await;
    let wrong_method = api
        .client
        .get(format!("{}/calls", api.base))
        .send()
        .await
        .unwrap();
    expect_error(wrong_method, 405).await;
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn stats_endpoint_serves_the_record() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    expect_call_id(api.call("13214991008").await).await;
    let stats: Value = api
        .client
        .get(format!("{}/_stats", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["placed_calls"], json!(["13214991008"]));
    assert_eq!(stats["placed_counts"], json!({"13214991008": 1}));
    assert_eq!(stats["count_429"], 0);
    assert_eq!(stats["requests"][0]["status"], 201);
    assert_eq!(stats["requests"][0]["placed"], "yes");
    assert!(stats["requests"][0]["at_ms"].is_u64());
    // Looking does not count as a request.
    assert_eq!(server.requests().len(), 1);
    assert!(!stats.to_string().contains("s3cret-test-password"));
}
