//! `POST /auth` and the life of tokens.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fonestorm_testserver::{Config, TestServer};
use serde_json::{Value, json};

use crate::common::{Api, call_body, expect_call_id, expect_error};

fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

#[tokio::test]
async fn right_credentials_get_a_jwt() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let token = api.token().await;
    let claims = claims(&token);
    assert_eq!(claims["sub"], "callbook");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
    expect_call_id(api.call_with(Some(&token), &call_body("13214991008")).await).await;
    assert_eq!(server.auth_count(), 1);
}

#[tokio::test]
async fn expires_sets_the_lifetime() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    let response = api
        .auth_with(
            json!({"username": "callbook", "password": "s3cret-test-password", "expires": 60}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    let claims = claims(body["authorization"]["token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
}

#[tokio::test]
async fn wrong_credentials_get_401() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    for body in [
        json!({"username": "callbook", "password": "wrong"}),
        json!({"username": "someone", "password": "s3cret-test-password"}),
    ] {
        expect_error(api.auth_with(body).await, 401).await;
    }
    assert_eq!(server.auth_count(), 2);
}

#[tokio::test]
async fn malformed_auth_bodies_get_400() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    for body in [
        json!({"username": "callbook"}),
        json!({"username": "callbook", "password": "s3cret-test-password", "extra": 1}),
        json!({"username": "callbook", "password": "s3cret-test-password", "expires": 86401}),
        json!({"username": "callbook", "password": "s3cret-test-password", "expires": "60"}),
        json!(["callbook", "s3cret-test-password"]),
    ] {
        expect_error(api.auth_with(body).await, 400).await;
    }
    let not_json = api
        .client
        .post(format!("{}/auth", api.base))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    expect_error(not_json, 400).await;
    let form = api
        .client
        .post(format!("{}/auth", api.base))
        .body(r#"{"username": "callbook", "password": "s3cret-test-password"}"#)
        .send()
        .await
        .unwrap();
    let message = expect_error(form, 400).await;
    assert!(message.contains("Content-Type"), "{message}");
}

#[tokio::test]
async fn token_ttl_expires_tokens() {
    let server = TestServer::start(Config {
        token_ttl: Some(Duration::from_millis(300)),
        ..Config::default()
    })
    .unwrap();
    let api = Api::new(&server);
    let token = api.token().await;
    expect_call_id(api.call_with(Some(&token), &call_body("13214991008")).await).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let message = expect_error(
        api.call_with(Some(&token), &call_body("13214991009")).await,
        401,
    )
    .await;
    assert!(message.contains("expired"), "{message}");
    let fresh = api.token().await;
    expect_call_id(api.call_with(Some(&fresh), &call_body("13214991009")).await).await;
    assert_eq!(server.placed_calls(), ["13214991008", "13214991009"]);
    assert_eq!(server.tokens_seen().len(), 2);
}

#[tokio::test]
async fn token_ttl_can_change_while_running() {
    let server = TestServer::start(Config::default()).unwrap();
    let api = Api::new(&server);
    server.set_token_ttl(Some(Duration::from_millis(50)));
    let token = api.token().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    expect_error(
        api.call_with(Some(&token), &call_body("13214991008")).await,
        401,
    )
    .await;
}
