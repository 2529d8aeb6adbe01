//! Runs the real `callbook` binary the way a user would, from the project root.
#![allow(dead_code)]

use std::path::Path;

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

/// A `callbook` command with a clean, colourless environment.
pub fn callbook() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("callbook").expect("binary is built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("FONESTORM_TOKEN")
        .env_remove("FONESTORM_USERNAME")
        .env_remove("FONESTORM_PASSWORD")
        .env_remove("FONESTORM_BASE_URL")
        .env_remove("CALLBOOK_STATE_DIR");
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
