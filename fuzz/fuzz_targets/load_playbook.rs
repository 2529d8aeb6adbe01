//! Fuzzes the playbook loader and the diagnostic renderer: neither may panic on any input.
//!
//! Run from `fuzz/`:
//!
//! ```text
//! cargo +nightly fuzz run load_playbook seeds/load_playbook -- -dict=yaml.dict -max_len=8192
//! ```
#![no_main]

use std::path::Path;
use std::sync::Arc;

use callbook::diag::{Diagnostic, Printer, Sources};
use callbook::playbook::{self, yaml};
use libfuzzer_sys::fuzz_target;

fn render_all(sources: &Sources, diagnostics: &[Diagnostic]) {
    // Both the plain and the styled printer draw carets under source lines.
    for styled in [false, true] {
        let printer = Printer::new(sources, styled);
        for d in diagnostics {
            let out = printer.render(d);
            std::hint::black_box(out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let _ = std::hint::black_box(yaml::parse(text));

    let path = Path::new("fuzz.yaml");
    let mut sources = Sources::default();
    // As `playbook::load` does: remember the text so diagnostics can show its lines.
    sources.insert(Arc::from("fuzz.yaml"), Arc::from(text));
    match playbook::load_text(path, text, &mut sources) {
        Ok(loaded) => render_all(&sources, &loaded.warnings),
        Err(diagnostics) => render_all(&sources, &diagnostics),
    }
});
