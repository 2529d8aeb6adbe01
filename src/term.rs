//! Standard error for people: a progress bar that log lines do not tear.
//!
//! The bar exists only when standard error is a terminal (never under cron);
//! log lines written while it is drawn are printed above it.

use std::io::{IsTerminal as _, Write};
use std::sync::{Mutex, OnceLock};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar currently drawn, if any; log output goes around it.
static BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

fn slot() -> &'static Mutex<Option<ProgressBar>> {
    BAR.get_or_init(|| Mutex::new(None))
}

/// Starts a progress bar of `len` calls when standard error is a terminal.
pub fn start_progress(len: u64, enabled: bool) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} calls {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    if let Ok(mut s) = slot().lock() {
        *s = Some(bar.clone());
    }
    Some(bar)
}

/// Removes the bar from the screen.
pub fn finish_progress(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Ok(mut s) = slot().lock() {
        *s = None;
    }
}

/// A `tracing` writer for standard error that prints above the progress bar.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrAroundBar;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrAroundBar {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Collects one log record and writes it at once when dropped.
pub struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let text = std::mem::take(&mut self.0);
        let write = || {
            let _ = std::io::stderr().lock().write_all(&text);
        };
        let bar = slot().lock().ok().and_then(|s| s.clone());
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
