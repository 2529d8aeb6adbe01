//! Hiding the values of secret-looking keys from snippets.
//!
//! A diagnostic prints the line it points at. When that line (or a line a
//! multi-line value spans) holds `password: hunter2`, the value would end up
//! in a terminal, a CI log or a cron mail. This module finds, once per file,
//! the byte ranges of every value whose key looks like a secret (see
//! [`super::looks_like_secret`]), in block and flow YAML and in JSON,
//! and [`apply`] replaces them with `***` when a line is shown.
//!
//! It errs on the side of hiding: a line it cannot read is hidden from the
//! key on, and every line more indented than a secret key below it is hidden.

use std::collections::HashMap;
use std::ops::Range;

use super::looks_like_secret;

/// What replaces a hidden value.
const MASK: &str = "***";

/// How a secret value goes on past the line of its key.
#[derive(Clone, Copy, Debug)]
struct Continuation {
    /// Column (bytes) of the key: more indented lines belong to its value.
    key_col: usize,
    /// A quoted value not closed yet, by its quote character.
    quote: Option<u8>,
    /// Unclosed `{` / `[` of a flow value.
    depth: usize,
}

/// The byte ranges to hide, by 1-based line number.
pub(super) fn secret_values(text: &str) -> HashMap<u32, Vec<Range<usize>>> {
    let mut masks: HashMap<u32, Vec<Range<usize>>> = HashMap::new();
    let mut cont: Option<Continuation> = None;
    for (i, line) in text.split('\n').enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(c) = cont.as_mut() {
            let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
            let blank = line.trim().is_empty();
            if c.quote.is_some() || c.depth > 0 || blank || indent > c.key_col {
                if !blank {
                    masks.entry(number).or_default().push(indent..line.len());
                }
                // Track the quote or brackets to where the value closes.
                if c.quote.is_some() || c.depth > 0 {
                    let (quote, depth) = scan_flow(line.as_bytes(), 0, c.quote, c.depth);
                    c.quote = quote;
                    c.depth = depth.unwrap_or(0);
                }
                continue;
            }
            cont = None;
        }
        let userinfo = url_userinfo(line);
        if !userinfo.is_empty() {
            masks.entry(number).or_default().extend(userinfo);
        }
        if !might_hold_secret(line) {
            continue;
        }
        let (ranges, next) = secret_values_in_line(line);
        if !ranges.is_empty() {
            masks.entry(number).or_default().extend(ranges);
        }
        cont = next;
    }
    masks
}

/// The user names and passwords written into URLs on `line`
/// (`https://ops:pw@host`): everything between `://` and the last `@` of the
/// URL, so that a password holding `/` is hidden too.
fn url_userinfo(line: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(i) = line[from..].find("://") {
        let start = from + i + 3;
        let end = line[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']' | '>'))
            .map_or(line.len(), |j| start + j);
        if let Some(at) = line[start..end].rfind('@') {
            ranges.push(start..start + at);
        }
        from = end.max(start);
    }
    ranges
}

/// A cheap test that skips most lines: a key needs a `:` and a secret word,
/// or an escape that could spell one (`"pass\x77ord"`, `"api_\u0074oken"`).
fn might_hold_secret(line: &str) -> bool {
    line.contains(':')
        && (line.contains('\\')
            || super::SECRET_WORDS
                .iter()
                .any(|w| contains_ignore_case(line.as_bytes(), w.as_bytes())))
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The secret values that start on `line`, and how the last one goes on.
fn secret_values_in_line(line: &str) -> (Vec<Range<usize>>, Option<Continuation>) {
    let b = line.as_bytes();
    let mut ranges = Vec::new();
    let mut cont = None;
    let mut flow_depth = 0usize;
    let mut in_comment = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b',' | b'-' | b'?' => i += 1,
            b'{' | b'[' => {
                flow_depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                flow_depth = flow_depth.saturating_sub(1);
                i += 1;
            }
            // A comment may hold `api_token: …` too: read on, but what it
            // hides ends with the line.
            b'#' if i == 0 || matches!(b[i - 1], b' ' | b'\t') => {
                in_comment = true;
                flow_depth = 0;
                i += 1;
            }
            q @ (b'"' | b'\'') => {
                let key_start = i;
                let close = closing_quote(b, i + 1, q);
                let Some(close) = close else {
                    break;
                };
                let key = &line[key_start + 1..close];
                let mut j = close + 1;
                while j < b.len() && matches!(b[j], b' ' | b'\t') {
                    j += 1;
                }
                if j < b.len() && b[j] == b':' {
                    // An escape may spell a secret name: hide rather than decode.
                    if looks_like_secret(key) || (q == b'"' && key.contains('\\')) {
                        let (range, next) = value_after(b, j + 1, key_start, flow_depth);
                        ranges.push(range.clone());
                        if !in_comment {
                            cont = next;
                        }
                        i = range.end.max(j + 1);
                        continue;
                    }
                    i = j + 1;
                } else {
                    i = close + 1;
                }
            }
            _ => {
                // A plain key or scalar: up to `: `, a flow indicator or a comment.
                let key_start = i;
                let mut j = i;
                let mut is_key = false;
                while j < b.len() {
                    let c = b[j];
                    if c == b':' && (j + 1 == b.len() || matches!(b[j + 1], b' ' | b'\t')) {
                        is_key = true;
                        break;
                    }
                    if flow_depth > 0 && c == b':' && matches!(b.get(j + 1), Some(b',' | b'}')) {
                        is_key = true;
                        break;
                    }
                    if (flow_depth > 0 && matches!(c, b',' | b'{' | b'}' | b'[' | b']'))
                        || (c == b'#' && j > 0 && matches!(b[j - 1], b' ' | b'\t'))
                    {
                        break;
                    }
                    j += 1;
                }
                if is_key {
                    let key = line[key_start..j].trim_end();
                    if looks_like_secret(key) {
                        let (range, next) = value_after(b, j + 1, key_start, flow_depth);
                        ranges.push(range.clone());
                        if !in_comment {
                            cont = next;
                        }
                        i = range.end.max(j + 1);
                        continue;
                    }
                    i = j + 1;
                } else {
                    i = j.max(i + 1);
                }
            }
        }
    }
    (ranges, cont)
}

/// Byte index of the quote closing a scalar opened before `from`, if on this line.
fn closing_quote(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        if q == b'"' && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if q == b'\'' && b.get(j + 1) == Some(&b'\'') {
                j += 2;
                continue;
            }
            return Some(j);
        }
        j += 1;
    }
    None
}

/// Scans flow text from `from` with `quote` / `depth` open; returns what is
/// still open at the end of the line, and `Some(0)` depth once everything closed.
fn scan_flow(
    b: &[u8],
    from: usize,
    quote: Option<u8>,
    depth: usize,
) -> (Option<u8>, Option<usize>) {
    let mut quote = quote;
    let mut depth = depth;
    let mut j = from;
    while j < b.len() {
        match quote {
            Some(q) => match closing_quote(b, j, q) {
                Some(close) => {
                    quote = None;
                    j = close + 1;
                    if depth == 0 {
                        return (None, Some(0));
                    }
                    continue;
                }
                None => return (quote, Some(depth)),
            },
            None => match b[j] {
                c @ (b'"' | b'\'') => quote = Some(c),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return (None, Some(0));
                    }
                }
                _ => {}
            },
        }
        j += 1;
    }
    (quote, Some(depth))
}

/// The range of the value that starts after the `:` at `from - 1`, and how it
/// goes on past this line. `key_col` is where its key starts.
fn value_after(
    b: &[u8],
    from: usize,
    key_col: usize,
    flow_depth: usize,
) -> (Range<usize>, Option<Continuation>) {
    let mut start = from;
    while start < b.len() && matches!(b[start], b' ' | b'\t') {
        start += 1;
    }
    let by_indent = Continuation {
        key_col,
        quote: None,
        depth: 0,
    };
    if start >= b.len() {
        // The value is on the lines below (a block, or a plain scalar).
        return (start..start, Some(by_indent));
    }
    match b[start] {
        q @ (b'"' | b'\'') => match closing_quote(b, start + 1, q) {
            Some(close) => (start..close + 1, Some(by_indent)),
            None => (
                start..b.len(),
                Some(Continuation {
                    quote: Some(q),
                    ..by_indent
                }),
            ),
        },
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut quote = None;
            let mut j = start;
            while j < b.len() {
                match quote {
                    Some(q) => match closing_quote(b, j, q) {
                        Some(close) => {
                            quote = None;
                            j = close + 1;
                            continue;
                        }
                        None => break,
                    },
                    None => match b[j] {
                        c @ (b'"' | b'\'') => quote = Some(c),
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                return (start..j + 1, Some(by_indent));
                            }
                        }
                        _ => {}
                    },
                }
                j += 1;
            }
            (
                start..b.len(),
                Some(Continuation {
                    quote,
                    depth: depth.max(1),
                    ..by_indent
                }),
            )
        }
        _ if flow_depth > 0 => {
            let end = (start..b.len())
                .find(|&j| matches!(b[j], b',' | b'}' | b']'))
                .unwrap_or(b.len());
            (start..end, Some(by_indent))
        }
        // A plain scalar, a block indicator, an anchor or a tag: the rest of the line.
        _ => (start..b.len(), Some(by_indent)),
    }
}

/// `line` with `masks` replaced by `***`, and where byte `at` of `line` is now.
pub(super) fn apply(line: &str, masks: &[Range<usize>], at: usize) -> (String, usize) {
    let mut out = String::with_capacity(line.len());
    let mut mapped = None;
    let mut pos = 0;
    let mut sorted: Vec<&Range<usize>> = masks.iter().filter(|r| r.start < r.end).collect();
    sorted.sort_by_key(|r| r.start);
    for r in sorted {
        let (start, end) = (r.start.max(pos).min(line.len()), r.end.min(line.len()));
        if start >= end || !line.is_char_boundary(start) || !line.is_char_boundary(end) {
            continue;
        }
        if mapped.is_none() && at < end {
            mapped = Some(out.len() + at.saturating_sub(pos).min(start - pos));
        }
        out.push_str(&line[pos..start]);
        out.push_str(MASK);
        pos = end;
    }
    let at = mapped.unwrap_or_else(|| out.len() + at.saturating_sub(pos));
    out.push_str(&line[pos..]);
    let at = at.min(out.len());
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `text` as a snippet would show it.
    fn shown(text: &str) -> Vec<String> {
        let masks = secret_values(text);
        text.split('\n')
            .enumerate()
            .map(|(i, l)| {
                let m = masks
                    .get(&u32::try_from(i + 1).unwrap())
                    .cloned()
                    .unwrap_or_default();
                apply(l, &m, 0).0
            })
            .collect()
    }

    #[test]
    fn block_values_are_hidden() {
        assert_eq!(
            shown("vars:\n  host: db\n  api_token: abc # note\n  db_password: \"x y\"\n"),
            [
                "vars:",
                "  host: db",
                "  api_token: ***",
                "  db_password: ***",
                ""
            ]
        );
    }

    #[test]
    fn flow_values_are_hidden_and_the_rest_stays() {
        assert_eq!(
            shown("vars: {password: x, host: y, 'client_secret': 'a,b'}"),
            ["vars: {password: ***, host: y, 'client_secret': ***}"]
        );
        assert_eq!(
            shown(r#"[{"name": "a", "vars": {"API_TOKEN": "q\"w", "team": "x"}}]"#),
            [r#"[{"name": "a", "vars": {"API_TOKEN": ***, "team": "x"}}]"#]
        );
    }

    #[test]
    fn multi_line_values_are_hidden() {
        let text = "vars:\n  password: |\n    line one\n\n    line two\n  host: y\n";
        assert_eq!(
            shown(text),
            [
                "vars:",
                "  password: ***",
                "    ***",
                "",
                "    ***",
                "  host: y",
                ""
            ]
        );
        let text = "- secret: \"first\n  second\"\n- name: x\n";
        assert_eq!(shown(text), ["- secret: ***", "  ***", "- name: x", ""]);
        let text = "vars: {token: [a,\n b,\n c], host: y}\nname: z\n";
        assert_eq!(
            shown(text),
            ["vars: {token: ***", " ***", " ***", "name: z", ""]
        );
    }

    #[test]
    fn nested_mappings_under_a_secret_key_are_hidden() {
        let text = "credentials:\n  user: a\n  pass: b\nname: c\n";
        assert_eq!(
            shown(text),
            ["credentials:", "  ***", "  ***", "name: c", ""]
        );
    }

    #[test]
    fn keys_with_escapes_are_hidden() {
        assert_eq!(
            shown("vars: {\"pass\\x77ord\": x, host: y}"),
            ["vars: {\"pass\\x77ord\": ***, host: y}"]
        );
    }

    #[test]
    fn secrets_in_comments_are_hidden_to_the_end_of_the_line() {
        assert_eq!(
            shown("phone: \"123\"  # old api_token: abc\n  next: x\n"),
            ["phone: \"123\"  # old api_token: ***", "  next: x", ""]
        );
        assert_eq!(shown("# password: abc"), ["# password: ***"]);
    }

    #[test]
    fn userinfo_in_urls_is_hidden() {
        assert_eq!(
            shown("  base_url: \"https://ops:pw/x@host/v2\" # or http://a@b"),
            ["  base_url: \"https://***@host/v2\" # or http://***@b"]
        );
        assert_eq!(shown("url: https://host/v2"), ["url: https://host/v2"]);
    }

    #[test]
    fn ordinary_keys_are_left_alone() {
        let text = "name: token bucket\ntts: \"say secret: now\"\n";
        assert_eq!(shown(text)[0], "name: token bucket");
    }

    #[test]
    fn carets_follow_the_masks() {
        let line = "vars: {password: hunter2, host: y}";
        let masks = secret_values(line);
        let host = line.find("host").unwrap();
        let (out, at) = apply(line, &masks[&1], host);
        assert_eq!(&out[at..at + 4], "host");
        let value = line.find("hunter2").unwrap();
        let (out, at) = apply(line, &masks[&1], value);
        assert_eq!(&out[at..at + 3], MASK);
    }

    #[test]
    fn hostile_text_never_panics() {
        let pieces = [
            "token", ":", " ", "\"", "'", "\\", "{", "}", "[", "]", ",", "#", "\n", "\r\n", "\t",
            "é", "\u{2028}", "-", "|", "password", "x", "  ",
        ];
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..24 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                text.push_str(pieces[seed as usize % pieces.len()]);
            }
            let masks = secret_values(&text);
            for (n, line) in text.lines().enumerate() {
                let m = masks
                    .get(&u32::try_from(n + 1).unwrap())
                    .cloned()
                    .unwrap_or_default();
                for (at, _) in line.char_indices() {
                    let (out, mapped) = apply(line, &m, at);
                    assert!(out.is_char_boundary(mapped), "{text:?}");
                }
            }
        }
    }
}
