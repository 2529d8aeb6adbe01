//! The binary, run as a person runs it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_fonestorm-testserver");

/// Kills the child if a test fails before it stops the server.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[tokio::test]
async fn serves_logs_and_stops_on_ctrl_c() {
    let child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--fault",
            "nth=1:503",
            "--password",
            "hunter2-secret",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Running(child);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let client = reqwest::Client::new();
    let auth = client
        .post(format!("{url}/auth"))
        .json(&json!({"username": "callbook", "password": "hunter2-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), 201);
    let call = |to: &str| {
        client
            .post(format!("{url}/calls"))
            .header("token", "test-token")
            .json(&json!({"fonenumber": "3214991000", "to": to, "service_type": "TTS", "service_id": "hi"}))
            .send()
    };
    assert_eq!(call("13214991008").await.unwrap().status(), 503);
    assert_eq!(call("13214991009").await.unwrap().status(), 201);

    interrupt(&server.0);
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("fault: nth=1:503"), "{log}");
    assert!(log.contains("POST /auth -> 201"), "{log}");
    assert!(log.contains("POST /calls to=13214991008 -> 503"), "{log}");
    assert!(log.contains("POST /calls to=13214991009 -> 201"), "{log}");
    assert!(!log.contains("hunter2-secret"), "{log}");
    assert!(!log.contains("test-token"), "{log}");
}

#[cfg(unix)]
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_bad_fault_spec_is_refused() {
    let output = Command::new(BIN)
        .args(["--fault", "nth=0:503"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("invalid fault `nth=0:503`: `nth` counts from 1"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn preset_hooks_scripted_dispositions_and_simulations_from_flags() {
    let receiver = crate::receiver::Receiver::start(crate::receiver::Answer::Status(200));
    let child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--hook",
            &format!("send_notify={}", receiver.url("/calls")),
            "--hook",
            &format!("sms={}", receiver.url("/sms")),
            "--disposition",
            "to=13125550101:NO_ANSWER,ANSWERED/12s",
            "--callback-delay",
            "10ms",
            "--sms-text-field",
            "text",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Running(child);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let shown: serde_json::Value = client
        .get(format!("{url}/fonenumbers/3214991000"))
        .header("token", "test-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["fonenumber"]["call_options"]["send_notify"]["url"],
        receiver.url("/calls")
    );
    for _ in 0..2 {
        let call = client
            .post(format!("{url}/calls"))
            .header("token", "test-token")
            .json(&json!({"fonenumber": "3214991000", "to": "13125550101", "service_type": "TTS", "service_id": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(call.status(), 201);
    }
    let received = receiver.wait_for(4);
    // The two calls' callbacks are sent concurrently: their order is not fixed.
    let mut ends: Vec<(Option<String>, Option<String>)> = received
        .iter()
        .filter(|got| got.field("status").as_deref() == Some("END"))
        .map(|got| (got.field("disposition"), got.field("billable_seconds")))
        .collect();
    ends.sort();
    let end =
        |disposition: &str, seconds: &str| (Some(disposition.to_owned()), Some(seconds.to_owned()));
    assert_eq!(ends, [end("ANSWERED", "12"), end("NO_ANSWER", "0")]);
    let sms = client
        .post(format!("{url}/_simulate/sms"))
        .json(&json!({"from": "13125550101", "to": "3214991000", "text": "1 K7F"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sms.status(), 200);
    let received = receiver.wait_for(5);
    assert_eq!(received[4].field("text").as_deref(), Some("1 K7F"));

    interrupt(&server.0);
    assert!(server.0.wait().unwrap().success());
    let mut log = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("disposition: to=13125550101:NO_ANSWER/0s,ANSWERED/12s"),
        "{log}"
    );
    assert!(log.contains("callback Call END NO_ANSWER"), "{log}");
    assert!(log.contains("callback Sms"), "{log}");
}

#[test]
fn a_bad_disposition_is_refused() {
    let output = Command::new(BIN)
        .args(["--disposition", "any:answered"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("invalid disposition `any:answered`: unknown disposition `answered`"),
        "{stderr}"
    );
}
