//! A line diff for messages: what a case expected against what it planned.

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// In both.
    Same(&'a str),
    /// Only in the expected text.
    Expected(&'a str),
    /// Only in the actual text.
    Actual(&'a str),
}

/// Most lines on either side compared line by line; longer texts are shown
/// whole, one after the other (the table below grows with their product).
const MAX_DIFF_LINES: usize = 2_000;

/// The lines of `expected` and `actual`, aligned by their longest common subsequence.
pub fn lines<'a>(expected: &'a str, actual: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    if a.len() > MAX_DIFF_LINES || b.len() > MAX_DIFF_LINES {
        let mut out: Vec<Line<'a>> = a.into_iter().map(Line::Expected).collect();
        out.extend(b.into_iter().map(Line::Actual));
        return out;
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(Line::Same(a[i]));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(Line::Expected(a[i]));
            i += 1;
        } else {
            out.push(Line::Actual(b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| Line::Expected(l)));
    out.extend(b[j..].iter().map(|l| Line::Actual(l)));
    out
}

/// The diff as text: `-` expected, `+` actual, two spaces for both.
pub fn render(expected: &str, actual: &str, indent: &str) -> String {
    let mut out = String::new();
    for line in lines(expected, actual) {
        let (mark, text) = match line {
            Line::Same(t) => (' ', t),
            Line::Expected(t) => ('-', t),
            Line::Actual(t) => ('+', t),
        };
        out.push_str(indent);
        out.push(mark);
        out.push(' ');
        out.push_str(&crate::escape::escape_controls(text));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_marked() {
        assert_eq!(
            lines("a\nb\nc", "a\nx\nc"),
            vec![
                Line::Same("a"),
                Line::Expected("b"),
                Line::Actual("x"),
                Line::Same("c")
            ]
        );
        assert_eq!(render("a", "b", ""), "- a\n+ b\n");
        assert_eq!(lines("", "x"), vec![Line::Actual("x")]);
    }
}
