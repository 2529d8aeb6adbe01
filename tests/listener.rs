//! The callback listener over real HTTP on 127.0.0.1, with a sink that
//! records what reached it: every method and encoding FoneStorm uses, auth,
//! bounds, malformed data, slow clients, the password never in a log, and
//! the FoneStorm test server's own callbacks read end to end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use callbook::listener::{self, CallbackSecret, CallbackSink, Limits, SinkError};
use callbook::model::callback::{Callback, Disposition, EventStatus};
use fonestorm_testserver::{
    Config, DispositionScript, HookMethod, Hooks, NumberStyle, Outcome, SmsHook, SmsTextField,
    TestServer, UrlHook,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "listener-test-secret-3f9a1c";
const CALLS: &str = "/fonestorm/calls";
const END_QUERY: &str = "uid=c1&direction=OUTBOUND&status=END&from=3214991000&to=13214991008&disposition=NO_ANSWER&billable_seconds=0";
/// Long enough that only a hang fails a test.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the sink saw; it fails on demand.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Callback>>,
    fail: AtomicBool,
}

impl Recorder {
    fn seen(&self) -> Vec<Callback> {
        self.seen.lock().unwrap().clone()
    }
}

impl CallbackSink for Recorder {
    async fn receive(&self, callback: Callback) -> Result<(), SinkError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError("the journal is gone".into()));
        }
        self.seen.lock().unwrap().push(callback);
        Ok(())
    }
}

struct Running {
    addr: SocketAddr,
    sink: Arc<Recorder>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the listener stops")
            .unwrap();
    }
}

async fn start() -> Running {
    start_with(Limits::default()).await
}

async fn start_with(limits: Limits) -> Running {
    capture_logs();
    let bound = listener::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
        .with_limits(limits);
    let addr = bound.local_addr();
    assert_ne!(addr.port(), 0);
    let sink = Arc::new(Recorder::default());
    let cancel = CancellationToken::new();
    let secret = CallbackSecret::new(SECRET.to_string()).unwrap();
    let task = tokio::spawn(bound.serve(secret, sink.clone(), cancel.clone()));
    Running {
        addr,
        sink,
        cancel,
        task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

fn authed(builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    builder.basic_auth("callbook", Some(SECRET))
}

/// Everything logged by this test binary.
fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

/// Sends raw bytes and reads the whole answer (the connection is closed after).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the listener answers")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn basic_header() -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("callbook:{SECRET}"));
    format!("Authorization: Basic {encoded}\r\n")
}

fn only_call(sink: &Recorder) -> callbook::model::callback::CallEvent {
    match sink.seen().as_slice() {
        [Callback::Call(c)] => c.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_with_a_query_string_is_recorded() {
    let l = start().await;
    let r = authed(client().get(format!("{}?{END_QUERY}", l.url(CALLS))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call = only_call(&l.sink);
    assert_eq!(call.uid.as_deref(), Some("c1"));
    assert_eq!(call.status, EventStatus::End);
    assert_eq!(call.disposition, Some(Disposition::NoAnswer));
    assert_eq!(call.billable_seconds, Some(0));
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_with_a_query_string_and_a_json_body_is_recorded() {
    let l = start().await;
    let body = serde_json::json!({
        "uid": "c2", "account_code": "77", "direction": "OUTBOUND", "status": "END",
        "from": "3214991000", "to": "13214991008", "type": "VOICE",
        "disposition": "ANSWERED", "billable_seconds": 31
    });
    let r = authed(client().post(format!("{}?uid=c2&status=END", l.url(CALLS))))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call = only_call(&l.sink);
    assert_eq!(call.disposition, Some(Disposition::Answered));
    assert_eq!(call.billable_seconds, Some(31));
    assert_eq!(call.raw.get("account_code"), Some("77"));
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_with_only_a_json_body_is_recorded() {
    let l = start().await;
    let body = serde_json::json!({"status": "BEGIN", "from": "3214991000", "uid": "c3"});
    let r = authed(client().post(l.url(CALLS)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(only_call(&l.sink).status, EventStatus::Begin);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_with_a_form_body_is_recorded() {
    let l = start().await;
    let r = authed(client().post(l.url(CALLS)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(END_QUERY.replace("NO_ANSWER", "FAILED%3A486"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        only_call(&l.sink).disposition,
        Some(Disposition::Failed("486".into()))
    );
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inbound_call_is_recorded() {
    let l = start().await;
    let r = authed(client().get(format!(
        "{}?direction=INBOUND&status=BEGIN&from=%2B13214991008&to=3214991000",
        l.url("/fonestorm/inbound")
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    match l.sink.seen().as_slice() {
        [Callback::Inbound(c)] => assert_eq!(c.from, "+13214991008"),
        other => panic!("{other:?}"),
    }
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sms_is_recorded() {
    let l = start().await;
    let body = serde_json::json!({"from": "13214991008", "to": "3214991000", "msg": "1 k7f"});
    let r = authed(client().post(l.url("/fonestorm/sms")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    match l.sink.seen().as_slice() {
        [Callback::Sms(s)] => assert_eq!(s.text, "1 k7f"),
        other => panic!("{other:?}"),
    }
    l.stop().await;
}

async fn assert_unauthorized(l: &Running, request: reqwest::RequestBuilder) {
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Basic realm=\"callbook\""
    );
    let text = r.text().await.unwrap();
    assert!(!text.contains(SECRET));
    assert!(l.sink.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused() {
    let l = start().await;
    let url = format!("{}?{END_QUERY}", l.url(CALLS));
    assert_unauthorized(
        &l,
        client()
            .get(&url)
            .basic_auth("callbook", Some("guess-guess-guess")),
    )
    .await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_password_is_refused() {
    let l = start().await;
    let url = format!("{}?{END_QUERY}", l.url(CALLS));
    assert_unauthorized(&l, client().get(&url)).await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_user_with_the_right_password_is_refused() {
    let l = start().await;
    let url = format!("{}?{END_QUERY}", l.url(CALLS));
    assert_unauthorized(&l, client().get(&url).basic_auth("admin", Some(SECRET))).await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_with_a_suffix_is_refused() {
    let l = start().await;
    let url = format!("{}?{END_QUERY}", l.url(CALLS));
    let longer = format!("{SECRET}x");
    assert_unauthorized(&l, client().get(&url).basic_auth("callbook", Some(&longer))).await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_logged_without_the_password() {
    let l = start().await;
    let url = format!("{}?{END_QUERY}", l.url("/fonestorm/inbound"));
    let guess = "a-guessed-password-6d1e";
    let r = client()
        .get(&url)
        .basic_auth("callbook", Some(guess))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The right password with the wrong user is refused too, and logged without it.
    let r = client()
        .get(&url)
        .basic_auth("root", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A credential-looking field of an accepted callback is neither kept nor logged.
    let r = authed(client().get(format!(
        "{}?status=BEGIN&from=1&url_password={SECRET}&token={guess}",
        l.url(CALLS)
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(only_call(&l.sink).raw.get("url_password"), None);
    l.stop().await;
    let logs = logs();
    assert!(
        logs.contains("refused a callback to `/fonestorm/inbound` from 127.0.0.1:"),
        "{logs}"
    );
    assert!(logs.contains("wrong user name or password"), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(!logs.contains(guess), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_64_kib_is_refused() {
    let l = start().await;
    let big = format!(
        r#"{{"status": "BEGIN", "from": "1", "pad": "{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let r = authed(client().post(l.url(CALLS)))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_body_over_64_kib_is_refused() {
    let l = start().await;
    let mut request = format!(
        "POST {CALLS} HTTP/1.1\r\nHost: x\r\n{}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        basic_header()
    )
    .into_bytes();
    let chunk = "y".repeat(16 * 1024);
    for _ in 0..5 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(l.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

/// Sends an authenticated callback and expects 400 with nothing recorded.
async fn assert_bad_request(request: reqwest::RequestBuilder, l: &Running) -> String {
    let r = authed(request).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(l.sink.seen().is_empty(), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_json_is_refused() {
    let l = start().await;
    let text = assert_bad_request(
        client()
            .post(l.url(CALLS))
            .header("content-type", "application/json")
            .body(r#"{"status": "END", "from": "#),
        &l,
    )
    .await;
    assert_eq!(text, "the body is not JSON (it ends too early)\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_status_is_refused() {
    let l = start().await;
    let text = assert_bad_request(
        client().get(format!("{}?from=3214991000&disposition=BUSY", l.url(CALLS))),
        &l,
    )
    .await;
    assert_eq!(text, "field `status` is missing\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_from_is_refused() {
    let l = start().await;
    let text = assert_bad_request(
        client().get(format!("{}?status=END&disposition=BUSY", l.url(CALLS))),
        &l,
    )
    .await;
    assert_eq!(text, "field `from` is missing\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_disposition_is_refused() {
    let l = start().await;
    let text = assert_bad_request(
        client().get(format!(
            "{}?status=END&from=1&disposition=VOICEMAIL",
            l.url(CALLS)
        )),
        &l,
    )
    .await;
    assert_eq!(
        text,
        "field `disposition`: unknown disposition `VOICEMAIL`\n"
    );
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn non_numeric_billable_seconds_are_refused() {
    let l = start().await;
    assert_bad_request(
        client().get(format!(
            "{}?status=END&from=1&disposition=ANSWERED&billable_seconds=12s",
            l.url(CALLS)
        )),
        &l,
    )
    .await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_utf8_in_the_query_is_refused() {
    let l = start().await;
    assert_bad_request(
        client().get(format!("{}?status=BEGIN&from=1&to=%FF%FE", l.url(CALLS))),
        &l,
    )
    .await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_utf8_in_a_json_body_is_refused() {
    let l = start().await;
    assert_bad_request(
        client()
            .post(l.url("/fonestorm/sms"))
            .header("content-type", "application/json")
            .body(b"{\"from\": \"1\", \"message\": \"\xff\xfe\"}".to_vec()),
        &l,
    )
    .await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_fields_are_refused() {
    let l = start().await;
    let mut body = serde_json::Map::new();
    body.insert("status".into(), "BEGIN".into());
    body.insert("from".into(), "1".into());
    for i in 0..100 {
        body.insert(format!("f{i}"), "v".into());
    }
    let text = assert_bad_request(client().post(l.url(CALLS)).json(&body), &l).await;
    assert_eq!(text, "more than 64 fields\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_of_another_type_is_refused() {
    let l = start().await;
    let r = authed(client().post(l.url(CALLS)))
        .header("content-type", "text/plain")
        .body("status=END")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_paths_are_not_found() {
    let l = start().await;
    for path in [
        "/",
        "/fonestorm",
        "/fonestorm/calls/",
        "/fonestorm/CALLS",
        "/fonestorm/sms/../calls2",
    ] {
        let r = authed(client().get(l.url(path))).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_methods_are_not_allowed() {
    let l = start().await;
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = authed(client().request(method.clone(), format!("{}?{END_QUERY}", l.url(CALLS))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn head_is_not_allowed_and_records_nothing() {
    let l = start().await;
    let r = authed(client().head(format!("{}?{END_QUERY}", l.url(CALLS))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_are_passed_to_the_sink() {
    let l = start().await;
    for _ in 0..2 {
        let r = authed(client().get(format!("{}?{END_QUERY}", l.url(CALLS))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let seen = l.sink.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1]);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_error_is_a_503() {
    let l = start().await;
    l.sink.fail.store(true, Ordering::SeqCst);
    let r = authed(client().get(format!("{}?{END_QUERY}", l.url(CALLS))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    l.stop().await;
}

fn short_limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let l = start_with(short_limits()).await;
    let mut stream = TcpStream::connect(l.addr).await.unwrap();
    stream
        .write_all(format!("GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    // The listener closes the connection (perhaps after a 408); a hang fails here.
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("a slow client is cut off")
        .ok();
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_body_is_cut_off() {
    let l = start_with(short_limits()).await;
    let mut stream = TcpStream::connect(l.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST {CALLS} HTTP/1.1\r\nHost: x\r\n{}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"status\"",
                basic_header()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("a slow body is cut off")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_headers_are_refused() {
    let l = start().await;
    let mut request = format!(
        "GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\n{}",
        basic_header()
    );
    for i in 0..100 {
        request.push_str(&format!("X-Pad-{i}: y\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let answer = raw(l.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_headers_are_refused() {
    let l = start().await;
    let request = format!(
        "GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\n{}X-Pad: {}\r\nConnection: close\r\n\r\n",
        basic_header(),
        "z".repeat(32 * 1024)
    );
    let answer = raw(l.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_their_turn() {
    let l = start_with(Limits {
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    // The only slot is held by a client that sends nothing.
    let idle = TcpStream::connect(l.addr).await.unwrap();
    let request = authed(client().get(format!("{}?{END_QUERY}", l.url(CALLS)))).send();
    let waiting = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        l.sink.seen().is_empty(),
        "served beyond the connection limit"
    );
    drop(idle);
    let r = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("served once the slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), 200);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_closes_idle_connections_and_returns() {
    let l = start().await;
    let mut idle = TcpStream::connect(l.addr).await.unwrap();
    let addr = l.addr;
    l.stop().await;
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed")
        .ok();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after the stop"
    );
}

// End to end: the FoneStorm test server delivers its callbacks to the listener.

const FONENUMBER: &str = "3214991000";

/// A test server whose callbacks for [`FONENUMBER`] go to `l` with `method`
/// and `password`.
fn wired(
    l: &Running,
    method: HookMethod,
    password: &str,
    change: impl FnOnce(&mut Config),
) -> TestServer {
    let mut config = Config::default();
    change(&mut config);
    let server = TestServer::start(config).unwrap();
    let hook = |path: &str| UrlHook::new(l.url(path), method).basic_auth("callbook", password);
    server.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(hook(CALLS)),
            receive_notify: Some(hook("/fonestorm/inbound")),
            sms: Some(SmsHook::Url(hook("/fonestorm/sms"))),
        },
    );
    server
}

async fn place_call(server: &TestServer, to: &str) -> String {
    let answer: serde_json::Value = client()
        .post(format!("{}/calls", server.url()))
        .header("token", "test-token")
        .json(&serde_json::json!({
            "fonenumber": FONENUMBER, "to": to, "service_type": "TTS", "service_id": "hello"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["call"]["id"].as_str().unwrap().to_string()
}

/// Waits (boundedly) until the sink has seen `count` callbacks.
async fn wait_for(sink: &Recorder, count: usize) -> Vec<Callback> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let seen = sink.seen();
        if seen.len() >= count || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn call_round_trip(method: HookMethod) {
    let l = start().await;
    let server = wired(&l, method, SECRET, |_| {});
    let id = place_call(&server, "13214991008").await;
    let seen = wait_for(&l.sink, 2).await;
    let [Callback::Call(begin), Callback::Call(end)] = seen.as_slice() else {
        panic!("{seen:?}");
    };
    assert_eq!(begin.status, EventStatus::Begin);
    assert_eq!(end.status, EventStatus::End);
    assert_eq!(end.uid.as_deref(), Some(id.as_str()));
    assert_eq!(end.disposition, Some(Disposition::Answered));
    assert_eq!(end.billable_seconds, Some(30));
    assert_eq!(end.to.as_deref(), Some("13214991008"));
    assert!(
        server
            .callbacks()
            .iter()
            .all(|c| c.receiver_status == Some(200)),
        "{:?}",
        server.callbacks()
    );
    drop(server);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_servers_get_callbacks_are_read() {
    call_round_trip(HookMethod::Get).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_servers_post_callbacks_are_read() {
    call_round_trip(HookMethod::Post).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_servers_json_callbacks_are_read() {
    call_round_trip(HookMethod::Json).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_code_and_plus_numbers_are_read() {
    let l = start().await;
    let server = wired(&l, HookMethod::Json, SECRET, |c| {
        c.number_style = NumberStyle::Plus;
        c.dispositions = vec![DispositionScript {
            to: None,
            outcomes: vec![Outcome::unanswered("FAILED:503")],
        }];
    });
    place_call(&server, "13214991008").await;
    let seen = wait_for(&l.sink, 2).await;
    let Some(Callback::Call(end)) = seen.get(1) else {
        panic!("{seen:?}");
    };
    assert_eq!(end.disposition, Some(Disposition::Failed("503".into())));
    assert_eq!(end.from, "+13214991000");
    assert!(callbook::model::callback::number_matches(
        end.to.as_deref().unwrap(),
        "13214991008"
    ));
    drop(server);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_servers_sms_is_read_under_any_text_field() {
    let l = start().await;
    let server = wired(&l, HookMethod::Post, SECRET, |c| {
        c.sms_text_field = SmsTextField::Body
    });
    let record = server
        .simulate_sms_async("13214991008", FONENUMBER, "ACK k7f")
        .await
        .unwrap();
    assert_eq!(record.receiver_status, Some(200));
    match l.sink.seen().as_slice() {
        [Callback::Sms(sms)] => {
            assert_eq!(sms.text, "ACK k7f");
            assert!(callbook::model::callback::number_matches(
                &sms.from,
                "13214991008"
            ));
        }
        other => panic!("{other:?}"),
    }
    drop(server);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_servers_inbound_call_is_read() {
    let l = start().await;
    let server = wired(&l, HookMethod::Get, SECRET, |_| {});
    let record = server
        .simulate_inbound_call_async("3214991008", FONENUMBER)
        .await
        .unwrap();
    assert_eq!(record.receiver_status, Some(200));
    match l.sink.seen().as_slice() {
        [Callback::Inbound(call)] => assert_eq!(call.from, "3214991008"),
        other => panic!("{other:?}"),
    }
    drop(server);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_registered_with_another_password_are_refused() {
    let l = start().await;
    let server = wired(&l, HookMethod::Json, "an-old-rotated-secret-1", |_| {});
    let record = server
        .simulate_sms_async("13214991008", FONENUMBER, "1")
        .await
        .unwrap();
    assert_eq!(record.receiver_status, Some(401));
    assert!(l.sink.seen().is_empty());
    drop(server);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_installed_by_the_client_reach_the_listener() {
    use callbook::provider::hooks::{Event, PublicUrl};
    use callbook::provider::limiter::RateLimiter;
    use callbook::provider::{Client, Credentials, Secret};
    let l = start().await;
    let server = TestServer::start(Config::default()).unwrap();
    let client = Client::new(
        server.url().parse().unwrap(),
        Credentials::Token(Secret::new("test-token".into())),
        PATIENCE,
    )
    .unwrap();
    let limiter = RateLimiter::new(10.0);
    let public = PublicUrl::parse(&format!("http://{}", l.addr)).unwrap();
    let secret = CallbackSecret::new(SECRET.to_string()).unwrap();
    for event in Event::ALL {
        client
            .install(&limiter, FONENUMBER, event, &public, &secret)
            .await
            .unwrap();
    }
    let problems = client
        .callback_problems(&limiter, FONENUMBER, &public)
        .await
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    place_call(&server, "13214991008").await;
    server
        .simulate_sms_async("13214991008", FONENUMBER, "ok")
        .await
        .unwrap();
    server
        .simulate_inbound_call_async("3214991008", FONENUMBER)
        .await
        .unwrap();
    let seen = wait_for(&l.sink, 4).await;
    let kinds: Vec<&str> = seen.iter().map(Callback::kind).collect();
    assert_eq!(kinds.len(), 4, "{seen:?}");
    for kind in ["call", "sms", "inbound"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    drop(server);
    l.stop().await;
}

// ---- Hostile input: ambiguous fields, spoofed senders, log injection ----

#[tokio::test(flavor = "multi_thread")]
async fn a_query_key_given_twice_with_different_values_is_refused() {
    // An SMS text spliced into a query string unescaped must not be able to
    // replace the sender: which `from` is meant cannot be known, so neither is.
    let l = start().await;
    let url = format!(
        "{}?from=13214991008&to=3214991000&message=1&from=15550001111",
        l.url("/fonestorm/sms")
    );
    let text = assert_bad_request(client().get(url), &l).await;
    assert_eq!(text, "field `from` is given twice with different values\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_key_given_twice_with_different_values_is_refused() {
    let l = start().await;
    let body =
        r#"{"from": "13214991008", "to": "3214991000", "message": "1", "from": "15550001111"}"#;
    let text = assert_bad_request(
        client()
            .post(l.url("/fonestorm/sms"))
            .header("content-type", "application/json")
            .body(body),
        &l,
    )
    .await;
    assert_eq!(text, "field `from` is given twice with different values\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_key_given_twice_with_different_values_is_refused() {
    let l = start().await;
    let text = assert_bad_request(
        client()
            .post(l.url("/fonestorm/sms"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("from=13214991008&message=1&from=15550001111"),
        &l,
    )
    .await;
    assert_eq!(text, "field `from` is given twice with different values\n");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_repeated_with_the_same_value_is_accepted() {
    let l = start().await;
    let r = authed(client().get(format!(
        "{}?from=13214991008&message=1&from=13214991008",
        l.url("/fonestorm/sms")
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(l.sink.seen().len(), 1);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_body_wins_over_the_query_string() {
    // FoneStorm's `POST` sends both; the JSON body is the full data.
    let l = start().await;
    let body = serde_json::json!({"from": "13214991008", "message": "1"});
    let r = authed(client().post(format!(
        "{}?from=15550001111&message=2",
        l.url("/fonestorm/sms")
    )))
    .json(&body)
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    match l.sink.seen().as_slice() {
        [Callback::Sms(s)] => {
            assert_eq!(s.from, "13214991008");
            assert_eq!(s.text, "1");
        }
        other => panic!("{other:?}"),
    }
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_controls_in_callback_fields_never_reach_a_log_line() {
    let l = start().await;
    // C1 CSI (a terminal escape), a right-to-left override, an isolate.
    let text = "1 \u{9b}2J\u{202e}kcaolo\u{2067}x";
    let body = serde_json::json!({"from": "13214991008", "message": text});
    let r = authed(client().post(l.url("/fonestorm/sms")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    match l.sink.seen().as_slice() {
        [Callback::Sms(s)] => assert_eq!(s.text, text, "the sink gets the text as sent"),
        other => panic!("{other:?}"),
    }
    l.stop().await;
    let logs = logs();
    assert!(logs.contains("kcaolo"), "the callback is logged: {logs}");
    for c in ['\u{9b}', '\u{202e}', '\u{2067}'] {
        let raw: Vec<&str> = logs.lines().filter(|l| l.contains(c)).collect();
        assert!(raw.is_empty(), "{c:?} in the logs: {raw:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_name_with_a_bidi_override_is_refused_and_not_logged_raw() {
    let l = start().await;
    let key = "x\u{202e}y";
    let mut body = serde_json::Map::new();
    body.insert("status".into(), "BEGIN".into());
    body.insert("from".into(), "1".into());
    body.insert(key.into(), "z".repeat(9000).into());
    let text = assert_bad_request(client().post(l.url(CALLS)).json(&body), &l).await;
    assert!(!text.contains('\u{202e}'), "{text:?}");
    l.stop().await;
    let logs = logs();
    let raw: Vec<&str> = logs.lines().filter(|l| l.contains('\u{202e}')).collect();
    assert!(raw.is_empty(), "{raw:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_authorization_headers_are_refused() {
    // Whichever one a proxy or the listener reads, two credentials are one too many.
    let l = start().await;
    let wrong = {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode("callbook:guess-guess-guess");
        format!("Authorization: Basic {encoded}\r\n")
    };
    for headers in [
        format!("{}{wrong}", basic_header()),
        format!("{wrong}{}", basic_header()),
        format!("{}{}", basic_header(), basic_header()),
    ] {
        let request = format!(
            "GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
        );
        let answer = raw(l.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_but_valid_basic_headers_are_accepted() {
    let l = start().await;
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("callbook:{SECRET}"));
    for header in [
        format!("authorization: basic {encoded}"),
        format!("Authorization: BASIC    {encoded}  "),
    ] {
        let request = format!(
            "GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw(l.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{header}: {answer}");
    }
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_utf8_or_huge_authorization_is_refused_without_a_panic() {
    let l = start().await;
    let mut request =
        format!("GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ")
            .into_bytes();
    request.extend_from_slice(b"\xff\xfe\x80abc\r\nConnection: close\r\n\r\n");
    let answer = raw(l.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let huge = format!(
        "GET {CALLS}?{END_QUERY} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
        "QUFB".repeat(3_000)
    );
    let answer = raw(l.addr, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(l.sink.seen().is_empty());
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_body_is_unsupported_not_malformed() {
    let l = start().await;
    // The start of a gzip stream: callbook reads no compressed body, and says so.
    let gzip: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00";
    let r = authed(client().post(l.url(CALLS)))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.text().await.unwrap(),
        "the body is compressed (Content-Encoding), which callbook does not read\n"
    );
    // `identity` is no encoding at all.
    let r = authed(client().post(format!("{}?{END_QUERY}", l.url(CALLS))))
        .header("content-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(l.sink.seen().len(), 1);
    l.stop().await;
}

// ---- Hostile input that the listener already handled (kept as guards) ----

#[tokio::test(flavor = "multi_thread")]
async fn content_length_with_chunked_never_lets_a_second_request_through() {
    let l = start().await;
    // If the length were believed, `GET …uid=smuggled` would follow as a
    // request of its own with the first one's connection.
    let smuggled = format!(
        "GET {CALLS}?{} HTTP/1.1\r\nHost: x\r\n{}\r\n",
        END_QUERY.replace("uid=c1", "uid=smuggled"),
        basic_header()
    );
    let body = format!("0\r\n\r\n{smuggled}");
    let request = format!(
        "POST {CALLS}?status=BEGIN&from=1&uid=first HTTP/1.1\r\nHost: x\r\n{}Content-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}",
        basic_header()
    );
    let _ = raw(l.addr, request.as_bytes()).await;
    let uids: Vec<_> = l
        .sink
        .seen()
        .iter()
        .filter_map(|c| match c {
            Callback::Call(c) => c.uid.clone(),
            _ => None,
        })
        .collect();
    assert!(!uids.contains(&"smuggled".to_string()), "{uids:?}");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_json_is_refused_without_a_stack_overflow() {
    let l = start().await;
    let body = format!(
        r#"{{"status": "BEGIN", "from": "1", "n": {}1{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    assert_bad_request(
        client()
            .post(l.url(CALLS))
            .header("content-type", "application/json")
            .body(body),
        &l,
    )
    .await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plus_in_a_query_number_still_matches_and_nul_is_no_number() {
    let l = start().await;
    // `+1…` unescaped reads as ` 1…`: digits are what is compared.
    let r = authed(client().get(format!("{}?status=BEGIN&from=+13214991000", l.url(CALLS))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(callbook::model::callback::number_matches(
        &only_call(&l.sink).from,
        "13214991000"
    ));
    let r = authed(client().get(format!("{}?status=BEGIN&from=1321%004991000", l.url(CALLS))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert_eq!(l.sink.seen().len(), 1, "{text}");
    assert!(text.contains("`from`"), "{text}");
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_numbers_and_strings_are_read_alike_and_huge_seconds_refused() {
    let l = start().await;
    let body = serde_json::json!({
        "uid": 77, "status": "END", "from": 13214991000u64,
        "disposition": "ANSWERED", "billable_seconds": "31"
    });
    let r = authed(client().post(l.url(CALLS)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call = only_call(&l.sink);
    assert_eq!(call.uid.as_deref(), Some("77"));
    assert_eq!(call.billable_seconds, Some(31));
    for seconds in [
        serde_json::json!(1e12),
        serde_json::json!(u64::MAX),
        serde_json::json!(-1),
        serde_json::json!(12.5),
        serde_json::json!("86401"),
    ] {
        let body = serde_json::json!({
            "status": "END", "from": "1", "disposition": "ANSWERED", "billable_seconds": seconds
        });
        let r = authed(client().post(l.url(CALLS)))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{seconds}");
    }
    assert_eq!(l.sink.seen().len(), 1);
    l.stop().await;
}
