//! Control characters made visible in every text for people.
//!
//! Recipient names, CSV fields and messages come from users' files: a name
//! holding `ESC [ 2 J` must not clear the operator's terminal, and a `\r` or
//! `\n` must not forge a line of output. Diagnostics, tables and log lines
//! all pass such text through [`escape_controls`].

use std::borrow::Cow;

/// The visible stand-in for control character `c`, if it is one.
///
/// C0 controls and DEL become their Unicode control pictures (`␛`, `␍`,
/// `␊` …), one character for one so columns and carets stay put; C1 controls
/// and the bidirectional overrides that reorder what a terminal shows
/// ("Trojan Source") become `�`.
pub(crate) fn picture(c: char) -> Option<char> {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32),
        '\u{7f}' => Some('\u{2421}'),
        '\u{80}'..='\u{9f}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{61c}' => Some('\u{fffd}'),
        _ => None,
    }
}

/// `text` with every control character made visible (see [`picture`]), for
/// one line of human output: tabs and newlines included.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| picture(c).is_some()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| picture(c).unwrap_or(c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_one_for_one() {
        assert_eq!(escape_controls("Alice Ng"), "Alice Ng");
        assert_eq!(
            escape_controls("A\u{1b}[2J\r\nB\u{7f}\u{9b}\u{202e}"),
            "A\u{241b}[2J\u{240d}\u{240a}B\u{2421}\u{fffd}\u{fffd}"
        );
        assert_eq!(escape_controls("a\u{1b}b").chars().count(), 3);
    }
}
