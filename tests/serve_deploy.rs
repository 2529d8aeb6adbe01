//! The deployment files in `deploy/`: the systemd unit passes
//! `systemd-analyze verify` (where that command exists) and is hardened;
//! the Dockerfile is multi-stage, ships the binary only and runs as non-root.

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../deploy/callbook.service");
const DOCKERFILE: &str = include_str!("../deploy/Dockerfile");

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let available = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("SKIPPED: `systemd-analyze` is not installed, the unit was not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Verify checks that ExecStart exists: point it at the binary under test.
    let unit = UNIT.replace("/usr/local/bin/callbook", env!("CARGO_BIN_EXE_callbook"));
    let path = dir.path().join("callbook.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys are only warnings to systemd: they are errors here.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&*path.display().to_string()) || l.contains("callbook.service"))
        .collect();
    assert!(complaints.is_empty(), "{stderr}");
}

fn directives(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

#[test]
fn the_systemd_unit_is_hardened_and_restarts_on_failure() {
    let d = directives(UNIT);
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "callbook"),
        ("NoNewPrivileges", "yes"),
        ("Restart", "on-failure"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("KillSignal", "SIGTERM"),
        ("RestartPreventExitStatus", "2 3"),
    ] {
        assert!(d.contains(&(key, value)), "{key}={value} missing");
    }
    let exec = d.iter().find(|(k, _)| *k == "ExecStart").unwrap().1;
    assert!(exec.contains("serve --config"), "{exec}");
    // Secrets come from a root-only file, never from the unit itself.
    for secret in [
        "FONESTORM_TOKEN",
        "FONESTORM_PASSWORD",
        "CALLBOOK_CALLBACK_SECRET",
        "CALLBOOK_WEBHOOK_TOKEN",
    ] {
        assert!(
            !d.iter()
                .any(|(k, v)| *k == "Environment" && v.contains(secret)),
            "{secret} set in the unit"
        );
    }
}

#[test]
fn the_dockerfile_is_multi_stage_ships_the_binary_only_and_runs_as_non_root() {
    let lines: Vec<&str> = DOCKERFILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    let runtime = &lines[froms[1]..];
    let copies: Vec<&&str> = runtime.iter().filter(|l| l.starts_with("COPY")).collect();
    assert!(
        copies.iter().all(|c| c.contains("--from=build")),
        "only build outputs reach the image: {copies:?}"
    );
    assert!(copies.iter().any(|c| c.contains("/usr/local/bin/callbook")));
    assert!(
        !runtime.iter().any(|l| l.starts_with("RUN")),
        "nothing runs in the image"
    );
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    for secret in [
        "FONESTORM_TOKEN",
        "CALLBOOK_WEBHOOK_TOKEN",
        "CALLBOOK_CALLBACK_SECRET",
    ] {
        assert!(
            !DOCKERFILE
                .lines()
                .any(|l| l.starts_with("ENV") && l.contains(secret))
        );
    }
    assert!(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Dockerfile")).exists());
}
