//! Each kind of injected fault, and how the rules match and count.

use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, Fault, FaultRule, Placed, TestServer};
use serde_json::Value;

use crate::common::{Api, call_body, expect_call_id, expect_error};

fn server_with(faults: Vec<FaultRule>) -> TestServer {
    TestServer::start(Config {
        rate_limit: None,
        faults,
        ..Config::default()
    })
    .unwrap()
}

#[tokio::test]
async fn status_faults_answer_the_status_with_an_error_body() {
    for status in [400, 402, 403, 404, 500, 502, 503, 504] {
        let server = server_with(vec![FaultRule::new(Fault::Status(status)).nth(1)]);
        let api = Api::new(&server);
        expect_error(api.call("13214991008").await, status).await;
        expect_call_id(api.call("13214991009").await).await;
        let ambiguous = matches!(status, 500 | 502 | 504);
        let first = &server.requests()[0];
        assert_eq!(first.status, Some(status));
        assert_eq!(first.fault, Some(Fault::Status(status)));
        assert_eq!(
            first.placed,
            if ambiguous {
                Placed::Ambiguous
            } else {
                Placed::No
            },
            "{status}"
        );
        let expected: &[&str] = if ambiguous {
            &["13214991008", "13214991009"]
        } else {
            &["13214991009"]
        };
        assert_eq!(server.placed_calls(), expected, "{status}");
    }
}

#[tokio::test]
async fn injected_429_carries_retry_after() {
    let server = server_with(vec![FaultRule::new(Fault::Status(429)).times(1)]);
    let api = Api::new(&server);
    let response = api.call("13214991008").await;
    assert_eq!(response.headers()["retry-after"], "1");
    expect_error(response, 429).await;
    expect_call_id(api.call("13214991008").await).await;
    assert_eq!(server.count_429(), 1);
    // Not a rejection by the limiter, so it counts as an accepted request.
    assert_eq!(server.max_requests_in_any_window(Duration::from_secs(1)), 2);
}

#[tokio::test]
async fn status_after_latency_waits_first() {
    let server = TestServer::start(Config {
        latency: Duration::from_millis(300),
        faults: vec![FaultRule::new(Fault::StatusAfterLatency(504))],
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let started = Instant::now();
    expect_error(api.call("13214991008").await, 504).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(server.requests()[0].placed, Placed::Ambiguous);
}

#[tokio::test]
async fn after_n_placed_calls_runs_out_of_funds() {
    let server = server_with(vec![FaultRule::new(Fault::Status(402)).after(2)]);
    let api = Api::new(&server);
    let mut statuses = Vec::new();
    for n in 0..5 {
        statuses.push(api.call(&format!("100100{n}")).await.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 402, 402, 402]);
    assert_eq!(server.placed_calls(), ["1001000", "1001001"]);
    assert_eq!(server.fault_fires(), [3]);
}

#[tokio::test]
async fn after_n_holds_under_concurrency() {
    let server = TestServer::start(Config {
        rate_limit: None,
        latency: Duration::from_millis(200),
        faults: vec![FaultRule::new(Fault::Status(402)).after(3)],
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let request = api
            .client
            .post(format!("{}/calls", api.base))
            .header("token", "test-token")
            .json(&call_body(&format!("400400{n}")));
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 402, 402, 402, 402, 402]);
    assert_eq!(server.placed_calls().len(), 3);
}

#[tokio::test]
async fn to_matcher_and_times_limit_the_rule() {
    let server = server_with(vec![
        FaultRule::new(Fault::Status(503))
            .to("13214991008")
            .times(2),
    ]);
    let api = Api::new(&server);
    expect_call_id(api.call("13214991009").await).await;
    expect_error(api.call("13214991008").await, 503).await;
    expect_error(api.call("13214991008").await, 503).await;
    expect_call_id(api.call("13214991008").await).await;
    assert_eq!(server.fault_fires(), [2]);
    assert_eq!(
        server.placed_counts(),
        [("13214991009".to_owned(), 1), ("13214991008".to_owned(), 1)].into()
    );
}

#[tokio::test]
async fn nth_counts_every_call_request() {
    let server = server_with(vec![FaultRule::new(Fault::Status(503)).nth(3)]);
    let api = Api::new(&server);
    expect_call_id(api.call("1001001").await).await;
    // An invalid request is the second call request all the same.
    expect_error(api.call_with(None, &call_body("1001002")).await, 401).await;
    expect_error(api.call("1001003").await, 503).await;
    expect_call_id(api.call("1001004").await).await;
}

#[tokio::test]
async fn faults_can_change_while_running() {
    let server = server_with(Vec::new());
    let api = Api::new(&server);
    expect_call_id(api.call("1001001").await).await;
    server.set_faults(vec!["any:503x1".parse().unwrap()]);
    expect_error(api.call("1001002").await, 503).await;
    expect_call_id(api.call("1001002").await).await;
    server.update_config(|config| config.faults.clear());
    expect_call_id(api.call("1001003").await).await;
}

#[tokio::test]
async fn hang_never_answers() {
    let server = server_with(vec![FaultRule::new(Fault::Hang).nth(1)]);
    let api = Api::with_timeout(&server, Duration::from_millis(300));
    let err = api
        .try_call_with(Some("test-token"), &call_body("13214991008"))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let record = &server.requests()[0];
    assert_eq!(record.status, None);
    assert_eq!(record.placed, Placed::Ambiguous);
    // The server goes on serving.
    expect_call_id(api.call("13214991009").await).await;
}

#[tokio::test]
async fn dropping_the_server_ends_hung_requests() {
    let server = server_with(vec![FaultRule::new(Fault::Hang)]);
    let api = Api::with_timeout(&server, Duration::from_secs(30));
    let request = api
        .client
        .post(format!("{}/calls", api.base))
        .header("token", "test-token")
        .json(&call_body("13214991008"));
    let pending = tokio::spawn(async move { request.send().await.map(|_| ()) });
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(2));
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_err());
}

#[tokio::test]
async fn malformed_answers_201_with_broken_json() {
    let server = server_with(vec![FaultRule::new(Fault::Malformed).nth(1)]);
    let api = Api::new(&server);
    let response = api.call("13214991008").await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(server.placed_calls(), ["13214991008"]);
    assert_eq!(server.requests()[0].placed, Placed::Yes);
}

#[tokio::test]
async fn close_drops_the_connection_without_an_answer() {
    let server = server_with(vec![FaultRule::new(Fault::Close).nth(1)]);
    let api = Api::with_timeout(&server, Duration::from_secs(5));
    let started = Instant::now();
    let err = api
        .try_call_with(Some("test-token"), &call_body("13214991008"))
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Exactly one request arrived: the client did not retry behind our back.
    let records = server.requests();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, None);
    assert_eq!(records[0].placed, Placed::Ambiguous);
    expect_call_id(api.call("13214991009").await).await;
}

#[tokio::test]
async fn expire_token_forces_a_new_authentication() {
    let server = server_with(vec![FaultRule::new(Fault::ExpireToken).nth(2)]);
    let api = Api::new(&server);
    let token = api.token().await;
    expect_call_id(api.call_with(Some(&token), &call_body("1001001")).await).await;
    let message = expect_error(
        api.call_with(Some(&token), &call_body("1001002")).await,
        401,
    )
    .await;
    assert!(message.contains("expired"), "{message}");
    // The token stays expired.
    expect_error(
        api.call_with(Some(&token), &call_body("1001002")).await,
        401,
    )
    .await;
    let fresh = api.token().await;
    assert_ne!(fresh, token);
    expect_call_id(api.call_with(Some(&fresh), &call_body("1001002")).await).await;
    assert_eq!(server.auth_count(), 2);
    assert_eq!(server.placed_calls(), ["1001001", "1001002"]);
    assert_eq!(server.tokens_seen().len(), 2);
}

#[tokio::test]
async fn first_matching_rule_wins() {
    let server = server_with(vec![
        FaultRule::new(Fault::Status(503)).nth(1),
        FaultRule::new(Fault::Status(500)),
    ]);
    let api = Api::new(&server);
    expect_error(api.call("1001001").await, 503).await;
    expect_error(api.call("1001002").await, 500).await;
    assert_eq!(server.fault_fires(), [1, 1]);
}

#[tokio::test]
async fn undocumented_statuses_are_recorded_as_maybe_placed() {
    for status in [408, 409, 501, 520, 524] {
        let server = server_with(vec![FaultRule::new(Fault::Status(status)).nth(1)]);
        let api = Api::new(&server);
        expect_error(api.call("13214991008").await, status).await;
        assert_eq!(server.requests()[0].placed, Placed::Ambiguous, "{status}");
        assert_eq!(server.placed_calls(), ["13214991008"], "{status}");
    }
}

#[tokio::test]
async fn an_injected_redirect_points_at_a_recorded_path() {
    let server = server_with(vec![FaultRule::new(Fault::Status(307)).times(2)]);
    let api = Api::new(&server);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .post(format!("{}/calls", api.base))
        .header("token", crate::common::STATIC_TOKEN)
        .json(&call_body("13214991008"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 307);
    assert_eq!(response.headers()["location"], "/redirected");
    assert_eq!(server.requests()[0].placed, Placed::Ambiguous);
    // A client that follows it (reqwest's default) shows up in the record.
    expect_error(api.call("13214991009").await, 404).await;
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/calls", "/calls", "/redirected"]);
}

#[tokio::test]
async fn auth_faults_hit_the_nth_login_only() {
    let server = TestServer::start(Config {
        auth_faults: vec![FaultRule::new(Fault::Status(503)).nth(2).times(1)],
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    api.token().await;
    let body = serde_json::json!({"username": "callbook", "password": "s3cret-test-password"});
    expect_error(api.auth_with(body).await, 503).await;
    api.token().await;
    assert_eq!(server.auth_count(), 3);
    let auth = server.requests();
    assert_eq!(auth[1].fault, Some(Fault::Status(503)));
    assert_eq!(auth[1].placed, Placed::No);
    assert!(server.placed_calls().is_empty());
}
