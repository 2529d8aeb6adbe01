//! Live-run throughput: 200 calls against the local test server, which
//! answers each after 1 s and allows 10 requests per second.
//!
//! Run with `cargo bench --bench live`. The journal is on, as in every live run. The limit is saturated when the run
//! takes about (200 − 1) / 10 + 1 = 20.9 s; a one-at-a-time loop would take
//! 200 s. After the timing, the bench prints how many requests the server
//! rejected with 429 (must be 0) and the most it saw in any one second.

use std::process::Command;
use std::time::Duration;

use fonestorm_testserver::{Config, TestServer};

const CALLS: usize = 200;

fn main() {
    divan::main();
}

fn playbook(dir: &std::path::Path) -> std::path::PathBuf {
    let mut yaml = String::from(
        "version: 1\nname: bench-live\ncaller_id: \"321-499-1000\"\n\
         provider: { rate_limit: 10, concurrency: 32, timeout: 30s }\nrecipients:\n",
    );
    for i in 0..CALLS {
        yaml.push_str(&format!(
            "  - {{ name: P{i}, phone: \"+1 (212) 734-{:04}\" }}\n",
            1000 + i
        ));
    }
    yaml.push_str("messages:\n  m: { tts: \"Hello {{ recipient.name }}\" }\nrules:\n  - play: m\n");
    let path = dir.join("bench-live.yaml");
    std::fs::write(&path, yaml).expect("write playbook");
    path
}

/// The whole `callbook run` of 200 one-second calls at 10 requests per second.
#[divan::bench(sample_count = 1, sample_size = 1)]
fn two_hundred_calls_at_10_per_second(bencher: divan::Bencher) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = playbook(dir.path());
    let server = TestServer::start(Config {
        latency: Duration::from_secs(1),
        rate_limit: Some(10),
        ..Config::default()
    })
    .expect("test server starts");
    bencher.bench_local(|| {
        let status = Command::new(env!("CARGO_BIN_EXE_callbook"))
            .args(["run", "--yes", "-q", "--base-url", &server.url()])
            .arg(&path)
            .env("FONESTORM_TOKEN", "test-token")
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("callbook runs");
        assert!(status.success());
    });
    eprintln!(
        "placed {} calls, {} answered 429, at most {} requests in any one second",
        server.placed_calls().len(),
        server.count_429(),
        server.max_requests_in_any_window(Duration::from_secs(1))
    );
}
