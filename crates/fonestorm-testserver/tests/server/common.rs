//! A small client for the API, so that each test reads as requests and answers.

use std::time::Duration;

use fonestorm_testserver::TestServer;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// The static token of the default configuration.
pub const STATIC_TOKEN: &str = "test-token";

/// The FoneNumber of the default configuration.
pub const FONENUMBER: &str = "3214991000";

/// A client pointed at one server.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(server: &TestServer) -> Api {
        Api::with_timeout(server, Duration::from_secs(10))
    }

    pub fn with_timeout(server: &TestServer, timeout: Duration) -> Api {
        Api {
            client: reqwest::Client::builder().timeout(timeout).build().unwrap(),
            base: server.url(),
        }
    }

    pub async fn auth_with(&self, body: Value) -> Response {
        self.client
            .post(format!("{}/auth", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Authenticates with the default credentials and returns the token.
    pub async fn token(&self) -> String {
        let response = self
            .auth_with(json!({"username": "callbook", "password": "s3cret-test-password"}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["authorization"]["token"].as_str().unwrap().to_owned()
    }

    pub async fn try_call_with(
        &self,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Result<Response> {
        let mut request = self.client.post(format!("{}/calls", self.base)).json(body);
        if let Some(token) = token {
            request = request.header("token", token);
        }
        request.send().await
    }

    pub async fn call_with(&self, token: Option<&str>, body: &Value) -> Response {
        self.try_call_with(token, body).await.unwrap()
    }

    /// A valid call to `to` with the static token.
    pub async fn call(&self, to: &str) -> Response {
        self.call_with(Some(STATIC_TOKEN), &call_body(to)).await
    }
}

/// A valid call request body.
pub fn call_body(to: &str) -> Value {
    json!({
        "fonenumber": FONENUMBER,
        "to": to,
        "service_type": "TTS",
        "service_id": "Hello, this is a test call",
    })
}

/// Asserts that a response is an error with the API's error body, and returns
/// its message.
pub async fn expect_error(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["error", "message", "status_code"], "{body}");
    assert_eq!(body["status_code"], status);
    assert!(body["error"].as_str().is_some_and(|name| !name.is_empty()));
    body["message"].as_str().unwrap().to_owned()
}

/// Asserts a `201` call answer and returns the call id.
pub async fn expect_call_id(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["call"]["id"].as_str().unwrap().to_owned()
}

impl Api {
    /// A `POST` of a JSON body to `path`, with `token` when given.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.header("token", token);
        }
        request.send().await.unwrap()
    }

    /// A `GET` of `path`, with `token` when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("token", token);
        }
        request.send().await.unwrap()
    }

    /// `GET /fonenumbers/{fonenumber}` with the static token; asserts `200`.
    pub async fn fonenumber(&self, fonenumber: &str) -> Value {
        let response = self
            .get(&format!("/fonenumbers/{fonenumber}"), Some(STATIC_TOKEN))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}
