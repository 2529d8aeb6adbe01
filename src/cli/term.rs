//! Standard error for people: a progress bar that log lines do not tear.
//!
//! The bar exists only when standard error is a terminal (never under cron);
//! log lines written while it is drawn are printed above it.
//!
//! Every text for people that carries data from users' files (recipient
//! names, CSV fields, messages) passes through [`crate::escape::escape_controls`] first: a
//! name holding `ESC [ 2 J` must not clear the operator's terminal, and a
//! `\r` or `\n` must not forge a line of output.

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
        let text = escape_log_record(&std::mem::take(&mut self.0));
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

/// One formatted log record made safe for a terminal: its final newline and
/// the colour sequences (`ESC [ … m`) of the log formatter stay, every other
/// control character is made visible. (The formatter already writes an ESC
/// inside a field value as the text `\x1b`.)
fn escape_log_record(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let body = text.strip_suffix('\n');
    let (body, newline) = match body {
        Some(b) => (b, "\n"),
        None => (text.as_ref(), ""),
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\u{1b}' {
            let rest = &body[i + 1..];
            let sgr = rest.strip_prefix('[').and_then(|r| {
                let n = r.find(|ch: char| !(ch.is_ascii_digit() || ch == ';'))?;
                (r.as_bytes()[n] == b'm').then_some(n + 2)
            });
            if let Some(len) = sgr {
                out.push(c);
                out.push_str(&rest[..len]);
                for _ in 0..len {
                    chars.next();
                }
                continue;
            }
        }
        out.push(crate::escape::picture(c).unwrap_or(c));
    }
    out.push_str(newline);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_keep_colour_and_newline_only() {
        let record = "\u{1b}[32m INFO\u{1b}[0m placed recipient=\"A\rB\u{7}\"\n";
        assert_eq!(
            String::from_utf8(escape_log_record(record.as_bytes())).unwrap(),
            "\u{1b}[32m INFO\u{1b}[0m placed recipient=\"A\u{240d}B\u{2407}\"\n"
        );
        assert_eq!(
            String::from_utf8(escape_log_record(b"a\nb\n")).unwrap(),
            "a\u{240a}b\n"
        );
    }
}
