//! The HTTP layer of `callbook serve` over real HTTP on 127.0.0.1, in front
//! of a fake pager that records what reached it: auth, every bad input the
//! API answers (401, 404, 400, 413, 415, 422, 409), Alertmanager and generic
//! JSON intake, dedup and resolve answers, hand acks, readiness and metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbook::diag::{Diagnostic, Sources};
use callbook::engine::EngineError;
use callbook::listener::{self, CallbackSecret, CallbackSink, Limits, SinkError};
use callbook::model::callback::Callback;
use callbook::plan::RunInput;
use callbook::playbook::Playbook;
use callbook::report::Report;
use callbook::serve::http::{self, Service};
use callbook::serve::metrics::Metrics;
use callbook::serve::ready::Readiness;
use callbook::serve::token::WebhookToken;
use callbook::serve::{ActivePage, HandAck, Intake, Pages, config};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "serve-http-test-token-7d1e";
const SECRET: &str = "serve-http-callback-secret";
const PATIENCE: Duration = Duration::from_secs(20);

/// One `start` the fake saw.
#[derive(Clone, Debug)]
struct Started {
    route: String,
    key: String,
    input: Option<Value>,
    sources: usize,
}

/// A pager that keeps pages in a map by key.
#[derive(Default)]
struct Fake {
    started: Mutex<Vec<Started>>,
    going: Mutex<HashMap<String, String>>,
}

impl Fake {
    fn started(&self) -> Vec<Started> {
        self.started.lock().unwrap().clone()
    }
}

impl Pages for Fake {
    async fn start(
        &self,
        route: &str,
        _playbook: Arc<Playbook>,
        input: RunInput,
        sources: Vec<(String, String)>,
        fallback_key: &str,
    ) -> Result<Intake, EngineError> {
        if input.input.as_ref().and_then(|i| i.get("fail")).is_some() {
            return Err(EngineError::Plan(vec![Diagnostic::error(
                None,
                "template `page` failed: undefined value `input.missing`",
            )]));
        }
        let key = format!("{route}:{fallback_key}");
        let mut going = self.going.lock().unwrap();
        if let Some(run_id) = going.get(&key) {
            return Ok(Intake::Deduplicated {
                run_id: run_id.clone(),
            });
        }
        let mut started = self.started.lock().unwrap();
        let run_id = format!("run-{}", started.len() + 1);
        started.push(Started {
            route: route.to_string(),
            key: key.clone(),
            input: input.input,
            sources: sources.len(),
        });
        going.insert(key, run_id.clone());
        Ok(Intake::Started { run_id })
    }

    async fn resolve(
        &self,
        route: &str,
        _playbook: &Playbook,
        _input: &RunInput,
        fallback_key: &str,
    ) -> Result<Option<String>, EngineError> {
        Ok(self
            .going
            .lock()
            .unwrap()
            .remove(&format!("{route}:{fallback_key}")))
    }

    async fn ack(
        &self,
        run_id: &str,
        _by: &str,
        _note: Option<String>,
    ) -> Result<HandAck, EngineError> {
        Ok(match run_id {
            "run-1" => HandAck::Acknowledged,
            "ended-run" => HandAck::Ended,
            _ => HandAck::Unknown,
        })
    }

    async fn report(&self, _run_id: &str) -> Result<Option<Report>, EngineError> {
        Ok(None)
    }

    async fn active(&self) -> Result<Vec<ActivePage>, EngineError> {
        Ok(self
            .going
            .lock()
            .unwrap()
            .iter()
            .map(|(key, run_id)| ActivePage {
                run_id: run_id.clone(),
                route: key.split(':').next().unwrap_or_default().to_string(),
                key: key.clone(),
                code: "K7F".to_string(),
                started_at: "2026-11-26T22:00:00Z".to_string(),
                step: Some("primary".to_string()),
                round: Some(1),
            })
            .collect())
    }
}

struct NoCallbacks;

impl CallbackSink for NoCallbacks {
    async fn receive(&self, _callback: Callback) -> Result<(), SinkError> {
        Ok(())
    }
}

struct Running {
    addr: SocketAddr,
    fake: Arc<Fake>,
    ready: Arc<Readiness>,
    state: tempfile::TempDir,
    cancel: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        client().post(self.url(path)).bearer_auth(TOKEN)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        client().get(self.url(path)).bearer_auth(TOKEN)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

async fn start() -> Running {
    let loaded = config::load(
        std::path::Path::new("tests/fixtures/serve/serve.yaml"),
        &mut Sources::default(),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let ready = Arc::new(Readiness::new(state.path().to_path_buf()));
    let service = Arc::new(Service::new(
        fake.clone(),
        Some(WebhookToken::new(TOKEN).unwrap()),
        Arc::new(Metrics::new()),
        ready.clone(),
        Duration::from_secs(10),
    ));
    service.set_routes(loaded.config.routes.into_iter().collect());
    ready.probe().await;
    let limits = Limits::default();
    let callbacks = listener::callback_router(
        CallbackSecret::new(SECRET.to_string()).unwrap(),
        Arc::new(NoCallbacks),
        &limits,
    );
    let bound = listener::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    let addr = bound.local_addr();
    let cancel = CancellationToken::new();
    tokio::spawn(bound.serve_router(http::router(service, callbacks), cancel.clone()));
    Running {
        addr,
        fake,
        ready,
        state,
        cancel,
    }
}

fn firing() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/serve/alertmanager-firing.json").unwrap(),
    )
    .unwrap()
}

async fn body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[tokio::test]
async fn a_firing_alertmanager_alert_starts_a_page_with_the_payload_as_input() {
    let s = start().await;
    let (status, answer) = body(
        s.post("/hooks/alertmanager/critical")
            .json(&firing())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer), (202, json!({"run_id": "run-1"})));
    let started = s.fake.started();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].route, "critical");
    assert_eq!(
        started[0].key, "critical:{}/{severity=\"critical\"}:{alertname=\"CheckoutDown\"}",
        "the group key is the fallback key"
    );
    assert_eq!(
        started[0].input.as_ref(),
        Some(&firing()),
        "the payload exactly"
    );
    assert!(
        started[0].sources > 0,
        "the playbook's sources are recorded"
    );
}

#[tokio::test]
async fn a_repeated_firing_alert_is_deduplicated() {
    let s = start().await;
    for _ in 0..2 {
        s.post("/hooks/alertmanager/critical")
            .json(&firing())
            .send()
            .await
            .unwrap();
    }
    let (status, answer) = body(
        s.post("/hooks/alertmanager/critical")
            .json(&firing())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"deduplicated": "run-1"})));
    assert_eq!(s.fake.started().len(), 1);
}

#[tokio::test]
async fn a_resolved_alert_cancels_its_page_and_one_for_no_page_answers_null() {
    let s = start().await;
    let mut resolved = firing();
    resolved["status"] = json!("resolved");
    let (status, answer) = body(
        s.post("/hooks/alertmanager/critical")
            .json(&resolved)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"cancelled": null})));
    assert!(
        s.fake.started().is_empty(),
        "a resolved alert starts nothing"
    );
    s.post("/hooks/alertmanager/critical")
        .json(&firing())
        .send()
        .await
        .unwrap();
    let (status, answer) = body(
        s.post("/hooks/alertmanager/critical")
            .json(&resolved)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"cancelled": "run-1"})));
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401_and_reaches_nothing() {
    let s = start().await;
    let url = s.url("/hooks/alertmanager/critical");
    for request in [
        client().post(&url).json(&firing()),
        client()
            .post(&url)
            .bearer_auth("wrong-token-wrong-token")
            .json(&firing()),
        client()
            .post(&url)
            .bearer_auth(format!("{TOKEN}x"))
            .json(&firing()),
        client()
            .post(&url)
            .basic_auth("callbook", Some(TOKEN))
            .json(&firing()),
        client().post(s.url("/hooks/json/nope")).json(&firing()),
        client().get(s.url("/runs?active=true")),
        client()
            .post(s.url("/runs/run-1/ack"))
            .json(&json!({"by": "x"})),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let text = response.text().await.unwrap();
        assert!(!text.contains(TOKEN), "{text}");
    }
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn an_unknown_route_gets_404() {
    let s = start().await;
    for path in [
        "/hooks/alertmanager/nope",
        "/hooks/json/nope",
        "/hooks/json/..%2F..%2Fetc",
        "/hooks/json/%E2%80%AEevil",
    ] {
        let (status, answer) = body(s.post(path).json(&firing()).send().await.unwrap()).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn malformed_json_gets_400_with_a_message() {
    let s = start().await;
    for hook in ["alertmanager", "json"] {
        let (status, answer) = body(
            s.post(&format!("/hooks/{hook}/critical"))
                .header("content-type", "application/json")
                .body("{\"status\": \"firing\",")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("not JSON"),
            "{answer}"
        );
    }
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn a_body_over_one_mebibyte_gets_413() {
    let s = start().await;
    let mut big = firing();
    big["padding"] = json!("x".repeat(1024 * 1024));
    let (status, _) = body(
        s.post("/hooks/json/critical")
            .json(&big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_415() {
    let s = start().await;
    for (name, value) in [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-encoding", "gzip"),
    ] {
        let (status, _) = body(
            s.post("/hooks/json/critical")
                .header(name, value)
                .body("a=b")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 415, "{name}");
    }
}

#[tokio::test]
async fn an_alertmanager_payload_missing_group_key_or_status_gets_400_naming_it() {
    let s = start().await;
    for field in ["groupKey", "status"] {
        let mut payload = firing();
        payload.as_object_mut().unwrap().remove(field);
        let (status, answer) = body(
            s.post("/hooks/alertmanager/critical")
                .json(&payload)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(answer, json!({"error": format!("missing `{field}`")}));
    }
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn a_generic_json_alert_is_keyed_by_the_sha256_of_its_body_and_resolved_by_status() {
    let s = start().await;
    let text = r#"{"alert": "disk", "host": "db-01"}"#;
    let (status, answer) = body(
        s.post("/hooks/json/disk")
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer), (202, json!({"run_id": "run-1"})));
    let started = s.fake.started();
    assert_eq!(started[0].key, format!("disk:{}", sha256(text)));
    let (status, answer) = body(
        s.post("/hooks/json/disk")
            .header("content-type", "application/json")
            .body(r#"{"status": "resolved"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Another body, another key: nothing going for it.
    assert_eq!((status, answer), (200, json!({"cancelled": null})));
}

fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_payload_that_cannot_be_planned_gets_422_with_the_diagnostics() {
    let s = start().await;
    let (status, answer) = body(
        s.post("/hooks/json/critical")
            .json(&json!({"fail": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("undefined value"),
        "{answer}"
    );
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn hand_acks_answer_200_404_409_and_400() {
    let s = start().await;
    let ack = |id: &str, body: Value| s.post(&format!("/runs/{id}/ack")).json(&body).send();
    let (status, answer) = body(
        ack("run-1", json!({"by": "Alice", "note": "on it"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"acknowledged": "run-1"})));
    assert_eq!(
        body(ack("nope", json!({"by": "Alice"})).await.unwrap())
            .await
            .0,
        404
    );
    assert_eq!(
        body(ack("ended-run", json!({"by": "Alice"})).await.unwrap())
            .await
            .0,
        409
    );
    for bad in [
        json!({}),
        json!({"by": ""}),
        json!({"by": "x", "extra": 1}),
        json!({"by": "x".repeat(1001)}),
        json!({"by": 5}),
    ] {
        assert_eq!(
            body(ack("run-1", bad.clone()).await.unwrap()).await.0,
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn runs_list_the_active_pages_and_an_unknown_report_is_404() {
    let s = start().await;
    s.post("/hooks/alertmanager/critical")
        .json(&firing())
        .send()
        .await
        .unwrap();
    let (status, answer) = body(s.get("/runs?active=true").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(answer[0]["run_id"], "run-1");
    assert_eq!(answer[0]["route"], "critical");
    for key in ["key", "code", "started_at", "step", "round"] {
        assert!(answer[0].get(key).is_some(), "{key}: {answer}");
    }
    assert_eq!(
        body(s.get("/runs/run-9").send().await.unwrap()).await.0,
        404
    );
    assert_eq!(body(s.get("/runs").send().await.unwrap()).await.0, 400);
}

#[tokio::test]
async fn an_unwritable_journal_makes_readyz_and_webhooks_answer_503() {
    let s = start().await;
    let (status, _) = body(client().get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    // The state directory is gone: nothing can be recorded.
    std::fs::remove_dir_all(s.state.path()).unwrap();
    let (status, _) = body(client().get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    let (status, answer) = body(
        s.post("/hooks/alertmanager/critical")
            .json(&firing())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert!(s.fake.started().is_empty(), "nothing half-started");
    let (status, _) = body(client().get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200, "the process still runs");
    std::fs::create_dir_all(s.state.path()).unwrap();
    let (status, _) = body(client().get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200, "ready again once the journal is writable");
}

#[tokio::test]
async fn while_draining_webhooks_and_runs_get_503() {
    let s = start().await;
    s.ready.start_draining();
    for request in [
        s.post("/hooks/alertmanager/critical").json(&firing()),
        s.get("/runs?active=true"),
        client().get(s.url("/readyz")),
    ] {
        assert_eq!(request.send().await.unwrap().status().as_u16(), 503);
    }
    assert!(s.fake.started().is_empty());
}

#[tokio::test]
async fn metrics_count_webhooks_by_route_and_code_without_auth() {
    let s = start().await;
    s.post("/hooks/alertmanager/critical")
        .json(&firing())
        .send()
        .await
        .unwrap();
    s.post("/hooks/alertmanager/nope")
        .json(&firing())
        .send()
        .await
        .unwrap();
    client()
        .post(s.url("/hooks/alertmanager/whatever"))
        .send()
        .await
        .unwrap();
    let response = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    for needle in [
        "callbook_webhooks_total{route=\"critical\",code=\"202\"} 1",
        "callbook_webhooks_total{route=\"-\",code=\"404\"} 1",
        "callbook_webhooks_total{route=\"-\",code=\"401\"} 1",
        "callbook_pages_active{route=\"disk\"} 0",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    assert!(!text.contains("whatever"), "unknown routes make no series");
}

#[tokio::test]
async fn callbacks_are_mounted_with_their_own_basic_auth() {
    let s = start().await;
    let url = s.url("/fonestorm/sms");
    let refused = client()
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"from": "13125550101", "message": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let taken = client()
        .post(&url)
        .basic_auth("callbook", Some(SECRET))
        .json(&json!({"from": "13125550101", "to": "3214991000", "message": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status().as_u16(), 200);
}
