//! The help text: options grouped under headings, and what a cron line or an
//! alerting hook needs to know (credentials, exit codes) under `run --help`.

mod support;

fn help(args: &[&str]) -> String {
    let out = support::callbook().args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn run_help_groups_its_options_under_headings() {
    let text = help(&["run", "--help"]);
    for heading in ["Selection:", "Provider:", "Journal:", "Output:"] {
        assert!(
            text.contains(&format!("\n{heading}\n")),
            "{heading}\n{text}"
        );
    }
    let selection = text.find("\nSelection:").unwrap();
    let tag = text.find("--tag <TAG>").unwrap();
    let provider = text.find("\nProvider:").unwrap();
    let rate = text.find("--rate-limit <N>").unwrap();
    assert!(selection < tag && provider < rate, "{text}");
}

#[test]
fn run_help_names_the_credential_variables_and_the_exit_codes() {
    let text = help(&["run", "--help"]);
    for needle in [
        "FONESTORM_TOKEN",
        "FONESTORM_USERNAME",
        "FONESTORM_PASSWORD",
        "Exit codes:",
        "  130  interrupted",
        "  3    refused before any call",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
}

#[test]
fn runs_help_says_what_format_changes() {
    let text = help(&["runs", "--help"]);
    assert!(
        text.contains("Print the list (or the run's report) as a table for people or as JSON"),
        "{text}"
    );
}
