//! The sliding one-second rate limit.

use std::time::Duration;

use fonestorm_testserver::{Config, TestServer};

use crate::common::{Api, STATIC_TOKEN, call_body, expect_call_id, expect_error};

#[tokio::test]
async fn over_the_limit_gets_429_with_retry_after() {
    let server = TestServer::start(Config {
        rate_limit: Some(3),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let mut statuses = Vec::new();
    for n in 0..8 {
        let response = api.call(&format!("100100{n}")).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
            expect_error(response, 429).await;
        }
    }
    assert_eq!(statuses, [201, 201, 201, 429, 429, 429, 429, 429]);
    assert_eq!(server.count_429(), 5);
    assert_eq!(server.max_requests_in_any_window(Duration::from_secs(1)), 3);
    assert_eq!(server.placed_calls().len(), 3);
    // Rejected requests do not count, so after a second there is room again.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    expect_call_id(api.call("1001009").await).await;
}

#[tokio::test]
async fn the_limit_covers_auth_too() {
    let server = TestServer::start(Config {
        rate_limit: Some(2),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    api.token().await;
    expect_call_id(api.call("13214991008").await).await;
    let response = api
        .auth_with(serde_json::json!({"username": "callbook", "password": "s3cret-test-password"}))
        .await;
    expect_error(response, 429).await;
    assert_eq!(server.auth_count(), 1);
}

#[tokio::test]
async fn concurrent_requests_never_exceed_the_limit() {
    let server = TestServer::start(Config {
        rate_limit: Some(10),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..25 {
        let request = api
            .client
            .post(format!("{}/calls", api.base))
            .header("token", STATIC_TOKEN)
            .json(&call_body(&format!("200200{n:02}")));
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = tasks.join_all().await;
    let placed = statuses.iter().filter(|&&status| status == 201).count();
    let limited = statuses.iter().filter(|&&status| status == 429).count();
    // On loopback all 25 normally arrive within one second, giving exactly
    // 10 and 15; a slow machine may spread them and let a few more through.
    assert_eq!(placed + limited, 25, "{statuses:?}");
    assert!(placed >= 10 && limited > 0, "{statuses:?}");
    assert_eq!(server.count_429(), limited);
    assert_eq!(
        server.max_requests_in_any_window(Duration::from_secs(1)),
        10
    );
}

#[tokio::test]
async fn without_a_limit_the_peak_rate_is_measured() {
    let server = TestServer::start(Config {
        rate_limit: None,
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    for n in 0..15 {
        expect_call_id(api.call(&format!("300300{n:02}")).await).await;
    }
    assert_eq!(server.count_429(), 0);
    assert_eq!(
        server.max_requests_in_any_window(Duration::from_secs(60)),
        15
    );
    assert!(server.max_requests_in_any_window(Duration::from_secs(1)) > 1);
    // And a limit can be switched on while running; the last request is still
    // within the window.
    server.set_rate_limit(Some(1));
    expect_error(api.call("30030099").await, 429).await;
}
