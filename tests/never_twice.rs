//! Never twice, never lost: resume, dedup and playbook names under careless use.

mod support;

use std::path::Path;

use fonestorm_testserver::{Config, Fault, FaultRule, TestServer};
use support::{assert_nobody_twice, callbook, finish, json, live};

const DEDUP: &str = "tests/fixtures/live/dedup.yaml";

/// A run stopped by a 402 after two calls, the account topped up, and the
/// next cron run (same key) calling the other four; then the stopped run is
/// resumed under another dedup key (a `--var` forgotten). Under that key the
/// later run's calls are not seen, so the four would be called twice: the
/// resume is refused instead, like any other change of plan.
#[test]
fn resume_refuses_a_changed_dedup_key() {
    let server = TestServer::start(Config {
        faults: vec![FaultRule::new(Fault::Status(402)).after(2)],
        ..Config::default()
    })
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let cpu = ["--var", "alert=cpu"];
    let stopped = live(&server, state.path(), DEDUP, &cpu);
    assert_eq!(stopped.code, 1, "{}", stopped.stderr);
    let stopped = json(&stopped)["run_id"].as_str().unwrap().to_string();
    server.set_faults(Vec::new());
    let cron = live(&server, state.path(), DEDUP, &cpu);
    assert_eq!(cron.code, 0, "{}", cron.stderr);
    assert_eq!(json(&cron)["totals"]["placed"], 4);
    let out = live(&server, state.path(), DEDUP, &["--resume", &stopped]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the dedup key of the call to `P1` changed"),
        "{}",
        out.stderr
    );
    assert_eq!(server.placed_calls().len(), 6);
    assert_nobody_twice(&server);
    // With the key it started with, the resume skips whom the cron run called.
    let out = live(
        &server,
        state.path(),
        DEDUP,
        &["--resume", &stopped, "--var", "alert=cpu"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out)["totals"]["skipped"], 4, "{}", out.stdout);
    assert_eq!(server.placed_calls().len(), 6);
    assert_nobody_twice(&server);
}

/// A playbook in `dir/sub/page.yaml` named `shared-name` whose recipients come
/// from `dir/shared/staff.csv`, outside its directory, so that it runs only
/// with `--include-root`; `greeting` tells two such files apart.
fn playbook_needing_include_root(dir: &Path, sub: &str, greeting: &str) -> String {
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    std::fs::create_dir_all(dir.join(sub)).unwrap();
    support::write(
        &dir.join("shared"),
        "staff.csv",
        "name,phone\nQ1,+1 321 499 3001\nQ2,+1 321 499 3002\n",
    );
    support::write(
        &dir.join(sub),
        "page.yaml",
        format!(
            "version: 1\nname: shared-name\ncaller_id: \"321-499-1000\"\n\
             recipients:\n  - from: ../shared/staff.csv\n\
             messages:\n  m: {{ tts: \"{greeting} {{{{ recipient.name }}}}\" }}\n\
             rules:\n  - play: m\ndedup: {{ key: \"k\", window: 30m }}\n"
        ),
    )
}

/// A second file with the same `name:` is refused even when the first one
/// only loads with `--include-root`: it still holds its name, and sharing it
/// would let one file's calls silently suppress the other's.
#[test]
fn a_playbook_that_needs_include_root_keeps_its_name() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let shared = files.path().join("shared").display().to_string();
    let first = playbook_needing_include_root(files.path(), "a", "Hello");
    let second = playbook_needing_include_root(files.path(), "b", "Other");
    let root = ["--include-root", shared.as_str()];
    let out = live(&server, state.path(), &first, &root);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = live(&server, state.path(), &second, &root);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("has the same name as"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("a/page.yaml"), "{}", out.stderr);
    assert_eq!(server.placed_calls().len(), 2);
}

/// Waits (boundedly) until `server` has seen `n` requests.
fn wait_for_requests(server: &TestServer, n: usize) {
    for _ in 0..2000 {
        if server.requests().len() >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("the server never saw {n} requests");
}

/// An operator deletes the lock of a run in progress, taking it for a stale
/// one, and the next cron run starts beside it. The run whose lock is gone
/// starts no new call (the other run may be calling the same people), so
/// nobody is called twice; it stops, resumable, and says why.
#[cfg(unix)]
#[test]
fn a_run_whose_lock_is_deleted_starts_no_new_call() {
    let server = TestServer::start(Config {
        latency: std::time::Duration::from_millis(1500),
        rate_limit: None,
        ..Config::default()
    })
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = support::spawn_live(DEDUP, &server.url(), state.path(), &["-q"]);
    // Four calls in flight (the playbook's concurrency), two still to start.
    wait_for_requests(&server, 4);
    std::fs::remove_dir_all(state.path().join("locks")).unwrap();
    let second = live(&server, state.path(), DEDUP, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let first = first.wait_with_output().unwrap();
    assert_nobody_twice(&server);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was deleted or replaced during the run"),
        "{stderr}"
    );
    assert_eq!(server.placed_calls().len(), 6);
}

/// The journal of a run in progress is deleted (or replaced by a restore):
/// what the run would record from then on is lost, and the next run would
/// call those people again, so it starts no new call and says why.
#[cfg(unix)]
#[test]
fn a_run_whose_journal_is_deleted_starts_no_new_call() {
    let server = TestServer::start(Config {
        latency: std::time::Duration::from_millis(1500),
        rate_limit: None,
        ..Config::default()
    })
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = support::spawn_live(DEDUP, &server.url(), state.path(), &["-q"]);
    wait_for_requests(&server, 4);
    for file in [
        "journal.sqlite3",
        "journal.sqlite3-wal",
        "journal.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(state.path().join(file));
    }
    let run = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(server.requests().len(), 4, "{stderr}");
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was deleted or replaced during the run"),
        "{stderr}"
    );
}

/// A deployment keeps each release in its own directory and points a
/// `current` symbolic link at the newest: cron runs `current/page.yaml`. The
/// old release still holds a file of that name, but it is the same playbook
/// to its operator, so the run after a deploy is not refused (which would
/// page nobody until someone noticed).
#[cfg(unix)]
#[test]
fn a_playbook_run_through_a_release_symlink_survives_a_deploy() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(DEDUP).unwrap();
    for release in ["r1", "r2"] {
        std::fs::create_dir(files.path().join(release)).unwrap();
        support::write(&files.path().join(release), "page.yaml", &text);
    }
    let current = files.path().join("current");
    std::os::unix::fs::symlink("r1", &current).unwrap();
    let page = current.join("page.yaml").display().to_string();
    let out = live(&server, state.path(), &page, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The deploy: `current` now points at the new release.
    let next = files.path().join("current.new");
    std::os::unix::fs::symlink("r2", &next).unwrap();
    std::fs::rename(&next, &current).unwrap();
    let out = live(&server, state.path(), &page, &["--var", "alert=cpu"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out)["totals"]["placed"], 6);
    // Within the window, the same alert is still deduplicated across the deploy.
    let out = live(&server, state.path(), &page, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out)["totals"]["skipped"], 6);
    assert_nobody_twice_per_alert(&server);
}

/// Each number was called exactly twice: once per alert of the test above.
fn assert_nobody_twice_per_alert(server: &TestServer) {
    for (to, count) in server.placed_counts() {
        assert_eq!(count, 2, "{to} was called {count} times");
    }
}

/// A server that answers every request `503` with `Retry-After: 60`, and
/// counts the requests; each connection serves one request.
fn busy_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(read_half.take(1 << 20));
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length.min(1 << 16)];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 60\r\n\
                              content-type: application/json\r\ncontent-length: 17\r\n\
                              connection: close\r\n\r\n{\"error\":\"busy\"}\n";
                let mut stream = stream;
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    (url, seen)
}

/// SIGTERM while calls wait out a `Retry-After: 60` (a `docker stop` or a
/// systemd stop): the run stops waiting at once, records those calls as not
/// placed (a resume calls them), and exits 130 well before a supervisor's
/// SIGKILL would lose the report.
#[cfg(unix)]
#[test]
fn an_interrupt_during_a_long_retry_after_stops_at_once() {
    let (url, seen) = busy_server();
    let state = tempfile::tempdir().unwrap();
    let mut child = support::spawn_live(
        "tests/fixtures/live/eight.yaml",
        &url,
        state.path(),
        &["--format", "json"],
    );
    for _ in 0..2000 {
        if seen.load(std::sync::atomic::Ordering::SeqCst) >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The answers were read and the calls are waiting to retry.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the interrupted run was still waiting after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
    let runs = finish(
        callbook()
            .args(["runs", "--format", "json", "--state-dir"])
            .arg(state.path()),
    );
    let runs = json(&runs);
    assert_eq!(runs[0]["state"], "interrupted", "{runs}");
    assert_eq!(runs[0]["failed"], 8, "{runs}");
}

/// Runs started in the same second never share an id. Every id a 16-bit
/// suffix could give for the next five seconds is taken (as runs refused by the
/// lock in a busy cron second take them); the run must still record its plan
/// and call, not be refused for a clash of ids.
#[test]
fn a_run_never_clashes_with_the_id_of_another_run_of_its_second() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = live(&server, state.path(), DEDUP, &["--max-calls", "0"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let conn = rusqlite::Connection::open(state.path().join("journal.sqlite3")).unwrap();
    let start = chrono::Utc::now().timestamp();
    conn.execute(
        "WITH RECURSIVE s(t) AS (SELECT ?1 UNION ALL SELECT t + 1 FROM s WHERE t < ?1 + 5),
              n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 65535)
         INSERT OR IGNORE INTO runs (id, playbook, path, now, started_at, finished_at, state)
         SELECT strftime('%Y-%m-%dT%H:%M:%SZ', t, 'unixepoch') || '-' || printf('%04x', i),
                'other', 'other.yaml', '', '', '', 'refused' FROM s, n",
        [start],
    )
    .unwrap();
    drop(conn);
    let out = live(&server, state.path(), DEDUP, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.placed_calls().len(), 6);
}
