//! The JSON report (`--format json`, `--report-file`).
//!
//! ```json
//! {
//!   "callbook_version": "0.1.0",
//!   "playbook": { "name": "disk-full", "path": "playbooks/disk-full.yaml" },
//!   "run_id": "2026-11-26T22:00:00Z-4f3a",
//!   "dry_run": true,
//!   "started_at": "2026-11-26T22:00:00Z",
//!   "finished_at": "2026-11-26T22:00:00Z",
//!   "totals": { "recipients": 1, "planned": 1, "placed": 0, "failed": 0, "unknown": 0, "skipped": 0 },
//!   "calls": [
//!     { "recipient": "Alice Ng", "to": "13214991008", "rule": "primary gets the full page",
//!       "service_type": "TTS", "service_id": "<speak>Hello Alice Ng.</speak>",
//!       "status": "planned", "call_id": null, "attempts": 0, "reason": null, "error": null }
//!   ]
//! }
//! ```

use std::io::Write;
use std::path::Path;

use super::Report;

/// Writes the report as pretty-printed JSON with a final newline.
///
/// Streams into `out`, so a report of 100 000 calls is never held twice in memory.
pub fn write(report: &Report, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes the report to `path` atomically: readers never see half a report.
pub fn write_file(report: &Report, path: &Path) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    write(report, &mut tmp)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
