//! The JUnit XML report of a `callbook test` run, for CI systems.
//!
//! One `<testsuite>` per test file, one `<testcase>` per case run, a
//! `<failure>` holding the same text as the terminal shows; a test file
//! that is invalid gets one `<testcase>` with an `<error>`:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="callbook test" tests="2" failures="1" errors="0">
//!   <testsuite name="playbooks/disk-full.test.yaml" tests="2" failures="1" errors="0">
//!     <testcase name="critical at night bridges the primary" classname="playbooks/disk-full.test.yaml"/>
//!     <testcase name="warning waits" classname="playbooks/disk-full.test.yaml">
//!       <failure message="1 mismatch">totals.planned: expected 1, actual 2</failure>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::escape::escape_controls;

/// One test file's results, as the report holds them.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// The test file, as displayed.
    pub name: String,
    /// Each case run: its name and, when it failed, the failure's text.
    pub cases: Vec<(String, Option<String>)>,
    /// Why the file could not be run (invalid file or playbook).
    pub error: Option<String>,
}

/// The report as XML text.
///
/// # Errors
/// Only when writing to memory fails, which it does not.
pub fn render(suites: &[Suite]) -> std::io::Result<String> {
    let count = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>().to_string();
    let tests = count(|s| s.cases.len() + usize::from(s.error.is_some()));
    let failures = count(|s| s.cases.iter().filter(|c| c.1.is_some()).count());
    let errors = count(|s| usize::from(s.error.is_some()));
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attribute(("name", "callbook test"))
        .with_attribute(("tests", tests.as_str()))
        .with_attribute(("failures", failures.as_str()))
        .with_attribute(("errors", errors.as_str()))
        .write_inner_content(|w| {
            for suite in suites {
                suite_xml(w, suite)?;
            }
            Ok(())
        })?;
    let mut text = String::from_utf8_lossy(&w.into_inner()).into_owned();
    text.push('\n');
    Ok(text)
}

fn suite_xml(w: &mut Writer<Vec<u8>>, suite: &Suite) -> std::io::Result<()> {
    let name = escape_controls(&suite.name);
    let tests = (suite.cases.len() + usize::from(suite.error.is_some())).to_string();
    let failures = suite
        .cases
        .iter()
        .filter(|c| c.1.is_some())
        .count()
        .to_string();
    let errors = usize::from(suite.error.is_some()).to_string();
    w.create_element("testsuite")
        .with_attribute(("name", &*name))
        .with_attribute(("tests", tests.as_str()))
        .with_attribute(("failures", failures.as_str()))
        .with_attribute(("errors", errors.as_str()))
        .write_inner_content(|w| {
            if let Some(error) = &suite.error {
                w.create_element("testcase")
                    .with_attribute(("name", &*name))
                    .with_attribute(("classname", &*name))
                    .write_inner_content(|w| {
                        w.create_element("error")
                            .with_attribute(("message", "invalid test file"))
                            .write_text_content(BytesText::new(&lines(error)))?;
                        Ok(())
                    })?;
            }
            for (case, failure) in &suite.cases {
                let case = escape_controls(case);
                let element = w
                    .create_element("testcase")
                    .with_attribute(("name", &*case))
                    .with_attribute(("classname", &*name));
                match failure {
                    None => {
                        element.write_empty()?;
                    }
                    Some(text) => {
                        element.write_inner_content(|w| {
                            w.create_element("failure")
                                .with_attribute(("message", "expected and actual differ"))
                                .write_text_content(BytesText::new(&lines(text)))?;
                            Ok(())
                        })?;
                    }
                }
            }
            Ok(())
        })?;
    Ok(())
}

/// `text` with every control character but the line breaks made visible
/// (XML 1.0 cannot hold most of them, and a terminal must not act on them).
fn lines(text: &str) -> String {
    text.lines()
        .map(|l| escape_controls(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts_are_escaped() {
        let xml = render(&[Suite {
            name: "a<b>.test.yaml".to_string(),
            cases: vec![
                ("ok \"case\"".to_string(), None),
                ("bad & \u{1b}[31m".to_string(), Some("x < y\nz".to_string())),
            ],
            error: None,
        }])
        .unwrap();
        assert!(xml.contains("a&lt;b&gt;.test.yaml"), "{xml}");
        assert!(xml.contains("ok &quot;case&quot;"), "{xml}");
        assert!(xml.contains("x &lt; y\nz"), "{xml}");
        assert!(!xml.contains('\u{1b}'), "{xml}");
        assert!(
            xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
    }
}
