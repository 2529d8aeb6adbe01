//! The JSON report (`--format json`, `--report-file`).
//!
//! ```json
//! {
//!   "callbook_version": "0.1.0",
//!   "playbook": { "name": "disk-full", "path": "playbooks/disk-full.yaml" },
//!   "run_id": "2026-11-26T22:00:00Z-4f3a9c07",
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
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Writes the report (a [`super::Report`] or a [`super::PlanReport`]) as
/// pretty-printed JSON with a final newline.
///
/// Streams into `out`, so a report of 100 000 calls is never held twice in memory.
pub fn write(report: &impl Serialize, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes the report to `path` atomically: readers never see half a report.
pub fn write_file(report: &impl Serialize, path: &Path) -> std::io::Result<()> {
    ReportFile::create(path)?.write(report)
}

/// A `--report-file`, made ready before the first call is placed.
///
/// A report file that cannot be written must stop the run while nothing has
/// been called yet, not after every call has gone out. [`ReportFile::create`]
/// therefore creates the temporary file next to `path` up front (proving the
/// directory exists and is writable and `path` is not a directory), and
/// [`ReportFile::write`] fills it and renames it over `path` at the end, so
/// readers never see half a report. Dropping it unwritten removes the
/// temporary file.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl ReportFile {
    /// Creates the temporary file that will become `path`.
    ///
    /// # Errors
    /// When `path` is a directory, a symbolic link or another file that is
    /// not a regular one, or its directory cannot be written.
    pub fn create(path: &Path) -> std::io::Result<ReportFile> {
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory",
            ));
        }
        // The report replaces the file by a rename: that would replace a
        // symbolic link, a FIFO or a device (`/dev/stdout`, `/dev/null` when
        // run as root) with a regular file instead of writing through it.
        if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(std::io::Error::other(
                "it is not a regular file (a symbolic link, a FIFO or a device)",
            ));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".callbook-report-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// Where the report goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `report` and moves it into place.
    ///
    /// # Errors
    /// When writing, syncing or renaming fails; the temporary file is removed then.
    pub fn write(self, report: &impl Serialize) -> std::io::Result<()> {
        self.write_also(report, None::<std::io::Sink>)
    }

    /// Writes `report` and moves it into place, writing the same bytes to
    /// `also` (standard output) as they are made: the report is serialized
    /// once, and a report file that fails does not cut `also` short.
    ///
    /// # Errors
    /// When writing, syncing or renaming the file fails; `also`'s errors
    /// (a closed pipe) are not reported.
    pub fn write_also(
        mut self,
        report: &impl Serialize,
        also: Option<impl Write>,
    ) -> std::io::Result<()> {
        let mut tee = Tee {
            file: Some(&mut self.tmp),
            file_error: None,
            also,
        };
        let written = write(report, &mut tee);
        if let Some(e) = tee.file_error {
            return Err(e);
        }
        written?;
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Writes to the report file and to a second writer; each goes on when the
/// other fails, and only the file's failure is kept.
struct Tee<F, A> {
    file: Option<F>,
    file_error: Option<std::io::Error>,
    also: Option<A>,
}

impl<F: Write, A: Write> Write for Tee<F, A> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = &mut self.file
            && let Err(e) = file.write_all(buf)
        {
            self.file = None;
            self.file_error = Some(e);
        }
        if let Some(also) = &mut self.also
            && also.write_all(buf).is_err()
        {
            self.also = None;
        }
        if self.file.is_none() && self.also.is_none() {
            return Err(std::io::Error::other("nothing left to write to"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(file) = &mut self.file
            && let Err(e) = file.flush()
        {
            self.file = None;
            self.file_error = Some(e);
        }
        if let Some(also) = &mut self.also
            && also.flush().is_err()
        {
            self.also = None;
        }
        Ok(())
    }
}
