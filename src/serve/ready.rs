//! Readiness: `serve` takes alerts only while its journal is writable and
//! its routes are loaded, so that nothing is ever half-started.
//!
//! The journal is probed by writing (and syncing) a small new file in the
//! state directory: a full disk, a read-only mount or a permission change
//! makes the probe fail as it would make the journal fail. The probe runs
//! once a second in the background (webhooks read its last result) and
//! afresh for each `GET /readyz`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The file the probe writes, in the state directory.
pub const PROBE_FILE: &str = ".serve-ready-probe";
/// How often the background probe runs.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What readiness depends on.
#[derive(Debug)]
pub struct Readiness {
    state_dir: PathBuf,
    journal_ok: AtomicBool,
    routes_loaded: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    /// Not ready until the first probe and the routes say so.
    pub fn new(state_dir: PathBuf) -> Readiness {
        Readiness {
            state_dir,
            journal_ok: AtomicBool::new(false),
            routes_loaded: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }
    }

    /// Records that the routes are loaded (or not).
    pub fn set_routes_loaded(&self, loaded: bool) {
        self.routes_loaded.store(loaded, Ordering::SeqCst);
    }

    /// From now on, the service is shutting down: nothing new is accepted.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the service is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Why alerts are not taken now (from the last probe), or `None` when they are.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.draining() {
            Some("shutting down")
        } else if !self.routes_loaded.load(Ordering::SeqCst) {
            Some("the routes are not loaded")
        } else if !self.journal_ok.load(Ordering::SeqCst) {
            Some("the journal is not writable")
        } else {
            None
        }
    }

    /// Probes the journal now (on a blocking thread) and records the result.
    pub async fn probe(&self) -> bool {
        let dir = self.state_dir.clone();
        let ok = tokio::task::spawn_blocking(move || probe_writable(&dir))
            .await
            .unwrap_or_else(|_| Err("the probe did not finish".to_string()));
        let now_ok = ok.is_ok();
        let was_ok = self.journal_ok.swap(now_ok, Ordering::SeqCst);
        match ok {
            Err(why) if was_ok => tracing::error!(
                "the journal in `{}` is not writable ({why}): alerts are refused with 503 until it is",
                self.state_dir.display()
            ),
            Ok(()) if !was_ok => tracing::info!("the journal is writable: taking alerts"),
            _ => {}
        }
        now_ok
    }

    /// Probes once a second until `stop` fires.
    pub async fn watch(&self, stop: CancellationToken) {
        loop {
            self.probe().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    }
}

/// Writes, syncs and removes a small new file in `dir`.
///
/// # Errors
/// Why it could not, in a few lowercase words.
pub fn probe_writable(dir: &Path) -> Result<(), String> {
    let path = dir.join(PROBE_FILE);
    let reason = |e: std::io::Error| crate::playbook::io_reason(&e);
    // A new file needs new blocks: a full disk shows, which rewriting
    // an existing block would not.
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(reason)?;
    let written = file.write_all(&[0u8; 4096]).and_then(|()| file.sync_data());
    drop(file);
    let _ = std::fs::remove_file(&path);
    written.map_err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_a_missing_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe_writable(dir.path()), Ok(()));
        assert!(!dir.path().join(PROBE_FILE).exists());
        assert!(probe_writable(&dir.path().join("missing")).is_err());
    }
}
