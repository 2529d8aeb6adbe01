//! Runs the real `callbook` binary the way a user would, from the project root.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one run of the binary produced.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Exit code and standard error, for golden files.
    pub fn diagnostics(&self) -> String {
        format!("exit: {}\n{}", self.code, self.stderr)
    }
}

/// A state directory no other command uses (created only if callbook writes to it).
pub fn fresh_state_dir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "state-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A `callbook` command with a clean, colourless environment and its own state directory.
pub fn callbook() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("callbook").expect("binary is built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("CALLBOOK_STATE_DIR", fresh_state_dir())
        .env_remove("FONESTORM_TOKEN")
        .env_remove("FONESTORM_USERNAME")
        .env_remove("FONESTORM_PASSWORD")
        .env_remove("FONESTORM_BASE_URL")
        .env_remove("XDG_STATE_HOME");
    cmd
}

/// Runs `callbook ARGS` and collects what it printed.
pub fn run(args: &[&str]) -> Outcome {
    finish(callbook().args(args))
}

/// Runs a prepared command and collects what it printed.
pub fn finish(cmd: &mut assert_cmd::Command) -> Outcome {
    let out = cmd.output().expect("callbook runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file is writable");
    path.display().to_string()
}

/// Starts `callbook run PLAYBOOK --yes` live against `base_url` as a child
/// process (for signals and races), with `FONESTORM_TOKEN=test-token` and stderr piped.
pub fn spawn_live(
    playbook: &str,
    base_url: &str,
    state_dir: &Path,
    extra: &[&str],
) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", playbook, "--yes", "--base-url", base_url])
        .arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .env("FONESTORM_TOKEN", "test-token")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("callbook starts")
}

/// Fails if the test server saw any number called more than once.
pub fn assert_nobody_twice(server: &fonestorm_testserver::TestServer) {
    for (to, count) in server.placed_counts() {
        assert_eq!(count, 1, "{to} was called {count} times");
    }
}

/// `callbook run PLAYBOOK --yes --format json` live against `server`, with
/// its journal in `state` and the test server's token.
pub fn live(
    server: &fonestorm_testserver::TestServer,
    state: &Path,
    playbook: &str,
    extra: &[&str],
) -> Outcome {
    finish(
        callbook()
            .args([
                "run",
                playbook,
                "--yes",
                "--format",
                "json",
                "--base-url",
                &server.url(),
            ])
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .env("FONESTORM_TOKEN", "test-token"),
    )
}

/// The JSON report on standard output, or a panic that shows both streams.
pub fn json(out: &Outcome) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr))
}
