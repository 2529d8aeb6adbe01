//! SSML checks on rendered messages.
//!
//! FoneStorm speaks `TTS` service ids that are SSML 1.1 documents. A message
//! that comes out malformed would be read aloud as markup, or refused, at
//! 3 a.m.; so every rendered SSML message must be well-formed XML with a
//! `<speak>` root and only SSML 1.1 elements, before anything is called.

use quick_xml::Reader;
use quick_xml::events::Event;

/// The elements of W3C SSML 1.1.
const ELEMENTS: &[&str] = &[
    "speak", "lexicon", "lookup", "meta", "metadata", "p", "s", "token", "w", "say-as", "phoneme",
    "sub", "lang", "voice", "emphasis", "break", "prosody", "audio", "desc", "mark",
];

/// Entities XML defines without a DTD.
const PREDEFINED: &[&str] = &["amp", "lt", "gt", "quot", "apos"];

/// Checks one rendered SSML document; the error says what is wrong and where.
pub fn check(doc: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(doc);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("{} ({})", xml_message(&e.to_string()), place(doc, at)))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let raw = e.name();
                let name: &str = raw.as_ref();
                let name = name.to_string();
                if depth == 0 {
                    if seen_root {
                        return Err(format!("more than one root element ({})", place(doc, at)));
                    }
                    if name != "speak" {
                        return Err(format!(
                            "the root element must be `<speak>`, not `<{name}>` ({})",
                            place(doc, at)
                        ));
                    }
                    seen_root = true;
                }
                if !ELEMENTS.contains(&name.as_str()) {
                    return Err(format!(
                        "`<{name}>` is not an SSML 1.1 element ({})",
                        place(doc, at)
                    ));
                }
                for attr in e.attributes() {
                    attr.map_err(|err| {
                        format!("{} ({})", xml_message(&err.to_string()), place(doc, at))
                    })?;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(ref t) if depth == 0 && !t.as_ref().chars().all(char::is_whitespace) => {
                return Err(format!("text outside `<speak>` ({})", place(doc, at)));
            }
            Event::CData(_) if depth == 0 => {
                return Err(format!("text outside `<speak>` ({})", place(doc, at)));
            }
            Event::GeneralRef(ref r) => {
                let ok = if r.is_char_ref() {
                    matches!(r.resolve_char_ref(), Ok(Some(_)))
                } else {
                    PREDEFINED.contains(&r.as_ref())
                };
                if !ok {
                    return Err(format!(
                        "unknown entity `&{};` ({})",
                        r.as_ref() as &str,
                        place(doc, at)
                    ));
                }
            }
            Event::DocType(_) => {
                return Err(format!("a DOCTYPE is not allowed ({})", place(doc, at)));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err("no `<speak>` root element".to_string());
    }
    if depth != 0 {
        return Err("an element is not closed".to_string());
    }
    Ok(())
}

fn xml_message(raw: &str) -> String {
    let mut m = raw.trim_end_matches('.').to_string();
    if let Some(first) = m.get(..1) {
        let lower = first.to_lowercase();
        m.replace_range(..1, &lower);
    }
    m
}

/// `line L, column C` of byte `offset` in the rendered document.
fn place(doc: &str, offset: u64) -> String {
    let offset = usize::try_from(offset).unwrap_or(usize::MAX).min(doc.len());
    let before = doc.get(..offset).unwrap_or(doc);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("rendered line {line}, column {col}")
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_ssml() {
        let doc = "<speak>\n  Hello <break time=\"400ms\"/>\n  <say-as interpret-as=\"characters\">db01</say-as>\n  &amp; &#x2F; <prosody rate=\"slow\">bye</prosody>\n</speak>\n";
        assert_eq!(check(doc), Ok(()));
    }

    #[test]
    fn refusals() {
        let cases = [
            ("<speak>unclosed", "not closed"),
            (
                "<speak><b>x</b></speak>",
                "`<b>` is not an SSML 1.1 element",
            ),
            ("<voice>x</voice>", "root element must be `<speak>`"),
            ("hello", "text outside"),
            ("<!-- c -->", "no `<speak>` root"),
            ("<speak>a</speak><speak>b</speak>", "more than one root"),
            ("<speak>&nbsp;</speak>", "unknown entity `&nbsp;`"),
            ("<speak><p>x</s></speak>", "rendered line 1"),
            ("<speak>x</speak> trailing", "text outside"),
            ("<!DOCTYPE speak><speak/>", "DOCTYPE"),
        ];
        for (doc, want) in cases {
            let err = check(doc).unwrap_err();
            assert!(err.contains(want), "{doc}: {err}");
        }
    }
}
