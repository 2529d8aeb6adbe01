//! The command line (clap derive), as the README's "Commands" section documents it.
//!
//! Scripts, cron lines and alerting hooks rely on these flags: flags may be
//! added, but what is documented must keep working. Every number is bounded
//! here (see [`crate::limits`]), so a typo is a usage error (exit 2) before
//! anything is read or called.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run declarative YAML call playbooks through the FoneStorm voice API.
#[derive(Debug, Parser)]
#[command(name = "callbook", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// More log detail (`-vv` for even more).
    #[arg(help_heading = "Output", short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only.
    #[arg(
        help_heading = "Output",
        short,
        long,
        global = true,
        conflicts_with = "verbose"
    )]
    pub quiet: bool,
    /// Log line format on standard error.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// When to colour output (`NO_COLOR` is honoured).
    #[arg(help_heading = "Output", long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
}

/// The credentials and exit codes, under `run --help`.
const RUN_AFTER_HELP: &str = "\
Credentials (from the environment only):
  FONESTORM_TOKEN                            a static API token, or
  FONESTORM_USERNAME and FONESTORM_PASSWORD  a login, renewed before the token expires

Exit codes:
  0    every planned call was placed (with --dry-run: the plan is complete)
  1    at least one call failed or has an unknown outcome
  2    invalid playbook, input or usage: nothing was called
  3    refused before any call (credentials, max_calls, lock, journal, confirmation)
  130  interrupted (Ctrl-C / SIGTERM); calls in flight were finished and recorded";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks without contacting anything (with --online: also read the account).
    #[command(after_help = VALIDATE_AFTER_HELP)]
    Validate {
        /// Playbook files.
        #[arg(required = true)]
        playbooks: Vec<PathBuf>,
        /// Let `from:` includes read files under DIR (default: each playbook's own directory).
        #[arg(long, value_name = "DIR")]
        include_root: Option<PathBuf>,
        /// Also check, read-only, what only the account knows: the caller id exists and is
        /// active, receives SMS for SMS acks, and a page's callbacks point at --public-url.
        #[arg(long)]
        online: bool,
        /// Override the provider base URL (with --online).
        #[arg(
            help_heading = "Provider",
            long,
            env = "FONESTORM_BASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        base_url: Option<String>,
        /// The https URL at which FoneStorm reaches a page's listener (with --online).
        #[arg(
            help_heading = "Provider",
            long,
            env = "CALLBOOK_PUBLIC_URL",
            value_name = "URL"
        )]
        public_url: Option<String>,
    },
    /// Plan every call of a playbook, then place them (or only show them with --dry-run).
    #[command(after_help = RUN_AFTER_HELP)]
    Run(Box<RunArgs>),
    /// Print the playbook JSON Schema (or the test file's, or the serve configuration's).
    Schema(SchemaArgs),
    /// List recent runs from the journal, or show one run's report.
    #[command(args_conflicts_with_subcommands = true)]
    Runs(RunsArgs),
    /// Show, install or remove the FoneStorm callbacks that pages need.
    #[command(after_help = HOOKS_AFTER_HELP)]
    Hooks(HooksArgs),
    /// Acknowledge a running page by hand: it stops calling.
    #[command(after_help = ACK_AFTER_HELP)]
    Ack(AckArgs),
    /// Write a first playbook, its tests and its JSON Schema (never replacing a file).
    #[command(after_help = INIT_AFTER_HELP)]
    Init {
        /// Where to write them (created when missing; default: the current folder).
        dir: Option<PathBuf>,
        /// The playbook's name and file name: lowercase letters, digits, `_` and `-`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Render one recipient's message as the plan would and speak it into a WAV file.
    #[command(after_help = PREVIEW_AFTER_HELP)]
    Preview(Box<PreviewArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell or elvish).
    Completions {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
    /// Write one man page per command and subcommand into DIR (default: `./man`).
    Man {
        /// Where to write the pages; created when missing.
        dir: Option<PathBuf>,
    },
    /// Run the playbook tests (`*.test.yaml`) offline: nothing is called.
    #[command(after_help = TEST_AFTER_HELP)]
    Test(TestArgs),
    /// Take alerts over HTTP and page for them (Alertmanager, any JSON webhook).
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
}

/// The environment and exit codes, under `serve --help`.
const SERVE_AFTER_HELP: &str = "\
Environment (secrets come only from here):
  FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD   the account
  CALLBOOK_CALLBACK_SECRET   the password FoneStorm sends with each callback
  CALLBOOK_WEBHOOK_TOKEN     the bearer token alert sources send (required unless
                             --insecure-no-auth on a loopback address)

Signals:
  SIGTERM, SIGINT   stop taking requests, finish those in flight, record every
                    page (they resume at the next start), exit 0
  SIGHUP            reload the configuration and playbooks (kept as they were
                    when anything is invalid)

Exit codes:
  0    --check passed, or stopped by SIGTERM/SIGINT
  2    invalid configuration or playbook
  3    refused: no token or secret, no credentials, another serve on the state
       directory, the journal or the address cannot be used";

/// `callbook serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (YAML; `callbook schema --serve` prints its schema).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Check the configuration and every routed playbook, then exit.
    #[arg(long)]
    pub check: bool,
    /// Take webhooks without a token: only when listening on a loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// How long SIGTERM may take to drain requests and pages (1s to 5m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = drain_timeout)]
    pub drain_timeout: std::time::Duration,
    /// Override the provider base URL.
    #[arg(
        help_heading = "Provider",
        long,
        env = "FONESTORM_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub base_url: Option<String>,
    /// The account's rate limit (requests per second, 0.01 to 1000), shared by every page.
    #[arg(help_heading = "Provider", long, value_name = "N", value_parser = rate_limit)]
    pub rate_limit: Option<f64>,
    /// Where the journal lives when the configuration sets no `state_dir`.
    #[arg(
        help_heading = "Journal",
        long,
        env = "CALLBOOK_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
    /// Also keep the rendered messages in the journal (they may hold sensitive data).
    #[arg(help_heading = "Journal", long)]
    pub journal_messages: bool,
}

/// `serve --drain-timeout`: from 1 s to 5 min.
fn drain_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}`: {e}"))?;
    if (std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(300)).contains(&d) {
        Ok(d)
    } else {
        Err(format!("`{s}` is out of range: 1s to 5m"))
    }
}

/// Options of `callbook schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the schema of test files (`*.test.yaml`) instead.
    #[arg(long, conflicts_with = "serve")]
    pub test: bool,
    /// Print the schema of the `callbook serve` configuration file instead.
    #[arg(long)]
    pub serve: bool,
}

/// The exit codes, under `test --help`.
const TEST_AFTER_HELP: &str = "\
Exit codes:
  0    every case passed
  1    at least one case failed
  2    a test file or its playbook is invalid, or no test file was found";

/// `callbook test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files, or directories searched for `*.test.yaml` (default: the current directory).
    pub paths: Vec<PathBuf>,
    /// Only cases whose name (or `FILE :: NAME`) contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Also write the results as JUnit XML there, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Rewrite the `expect` of failing cases from what they planned (shows the changes first).
    #[arg(long)]
    pub update: bool,
}

/// The exit codes, under `validate --help`.
const VALIDATE_AFTER_HELP: &str = "\
With --online, the credentials come from the environment (FONESTORM_TOKEN, or
FONESTORM_USERNAME and FONESTORM_PASSWORD); only GET requests (and the login) are sent.

Exit codes:
  0    every playbook is valid (warnings do not count)
  2    a playbook has errors (with --online: also what the account says)
  3    --online: the account cannot be reached or refuses the credentials";

/// What preview needs and its exit codes, under `preview --help`.
const PREVIEW_AFTER_HELP: &str = "\
Speaks with espeak-ng (SSML messages as SSML); nothing is contacted and the journal is
not read, so dedup does not apply. For a page, the recipient's first call of the ladder.

Exit codes:
  0    the WAV file was written (or, for a connect or sound file, the call was shown)
  1    the rules skip this recipient (the reason is shown)
  2    invalid playbook, input or usage, or no such recipient
  3    espeak-ng is not installed, failed or took too long";

/// `callbook preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The playbook file.
    pub playbook: PathBuf,
    /// The recipient whose message to hear.
    #[arg(long, value_name = "NAME")]
    pub recipient: String,
    /// Where to write the WAV file (default: the recipient's name, lower-cased, with
    /// every run of other characters as `-`, plus `.wav`).
    #[arg(long, value_name = "FILE")]
    pub wav: Option<PathBuf>,
    /// Let `from:` includes read files under DIR (default: the playbook's own directory).
    #[arg(help_heading = "Selection", long, value_name = "DIR")]
    pub include_root: Option<PathBuf>,
    /// Set a variable; VALUE is read as a YAML scalar (`93` is a number).
    #[arg(help_heading = "Selection", long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A YAML or JSON mapping of variables.
    #[arg(help_heading = "Selection", long, value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// A JSON or YAML document exposed to templates as `input` (`-`: standard input).
    #[arg(help_heading = "Selection", long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Only recipients with this tag (repeatable: any of them).
    #[arg(help_heading = "Selection", long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Evaluate rules and templates as if it were this RFC 3339 time.
    #[arg(help_heading = "Selection", long, value_name = "TIME")]
    pub now: Option<String>,
}

/// The files and exit codes, under `init --help`.
const INIT_AFTER_HELP: &str = "\
Writes NAME.yaml, NAME.test.yaml and playbook.schema.json (default NAME: playbook).

Exit codes:
  0    written
  2    invalid NAME, or the folder cannot be written: nothing was written
  3    one of the files exists: nothing was written";

/// The exit codes, under `ack --help`.
const ACK_AFTER_HELP: &str = "\
Exit codes:
  0    recorded: the page stops within a second
  2    no such run in the journal, or it is not a page
  3    the page already ended";

/// `callbook ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// The page's run id (as `callbook runs` lists it).
    pub run_id: String,
    /// Who acknowledges (default: the OS user name).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// A note kept with the acknowledgement.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Where the journal lives.
    #[arg(
        help_heading = "Journal",
        long,
        env = "CALLBOOK_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
}

/// The environment and exit codes, under `hooks --help`.
const HOOKS_AFTER_HELP: &str = "\
Environment:
  FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD   the account
  CALLBOOK_CALLBACK_SECRET   the password FoneStorm sends with each callback (install)
  CALLBOOK_PUBLIC_URL        the same as --public-url

Exit codes:
  0    done (show: the callbacks could be read)
  2    invalid playbook or usage: nothing was changed
  3    refused: the account cannot be reached, a callback points elsewhere
       (install without --replace), no secret, or not confirmed";

/// `callbook hooks`.
#[derive(Debug, Args)]
pub struct HooksArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: HooksAction,
}

/// Subcommands of `callbook hooks`.
#[derive(Debug, Subcommand)]
pub enum HooksAction {
    /// Print where each caller id's callbacks point (EVENT, URL, METHOD, OURS).
    #[command(after_help = HOOKS_AFTER_HELP)]
    Show(HooksOptions),
    /// Point each caller id's callbacks at --public-url.
    #[command(after_help = HOOKS_AFTER_HELP)]
    Install {
        /// The playbooks and provider options.
        #[command(flatten)]
        options: HooksOptions,
        /// Replace callbacks that point elsewhere (they are named, then replaced).
        #[arg(long)]
        replace: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Clear the callbacks that point at callbook, and only those.
    #[command(after_help = HOOKS_AFTER_HELP)]
    Remove {
        /// The playbooks and provider options.
        #[command(flatten)]
        options: HooksOptions,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// What every `hooks` subcommand takes: the playbooks (for their caller ids
/// and provider settings) and the provider options of `run`.
#[derive(Debug, Args)]
pub struct HooksOptions {
    /// Playbook files; their distinct `caller_id`s are worked on.
    #[arg(required = true)]
    pub playbooks: Vec<PathBuf>,
    /// Let `from:` includes read files under DIR (default: each playbook's own directory).
    #[arg(long, value_name = "DIR")]
    pub include_root: Option<PathBuf>,
    /// The https URL at which FoneStorm reaches the listener (required by install).
    #[arg(
        help_heading = "Provider",
        long,
        env = "CALLBOOK_PUBLIC_URL",
        value_name = "URL"
    )]
    pub public_url: Option<String>,
    /// Override the provider base URL.
    #[arg(
        help_heading = "Provider",
        long,
        env = "FONESTORM_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub base_url: Option<String>,
    /// Override `provider.rate_limit` (requests per second, 0.01 to 1000).
    #[arg(help_heading = "Provider", long, value_name = "N", value_parser = rate_limit)]
    pub rate_limit: Option<f64>,
    /// Where the journal lives (accepted like `run`'s; hooks write nothing there).
    #[arg(
        help_heading = "Journal",
        long,
        env = "CALLBOOK_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
}

/// Options of `callbook runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// `show RUN_ID`.
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    /// Only runs of the playbook with this `name`.
    pub playbook: Option<String>,
    /// How many runs to list (1 to 10000).
    #[arg(long, default_value_t = 20, value_parser = runs_limit)]
    pub limit: usize,
    /// Print the list (or the run's report) as a table for people or as JSON.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Where the journal lives.
    #[arg(
        help_heading = "Journal",
        long,
        env = "CALLBOOK_STATE_DIR",
        value_name = "DIR",
        global = true
    )]
    pub state_dir: Option<PathBuf>,
}

/// Subcommands of `callbook runs`.
#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// Print the report of one run.
    Show {
        /// The run's id, as `callbook runs` lists it.
        run_id: String,
    },
}

/// Options of `callbook run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook file.
    pub playbook: PathBuf,
    /// Plan and render everything, contact nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Let `from:` includes read files under DIR (default: the playbook's own directory).
    #[arg(help_heading = "Selection", long, value_name = "DIR")]
    pub include_root: Option<std::path::PathBuf>,
    /// Set a variable; VALUE is read as a YAML scalar (`93` is a number).
    #[arg(help_heading = "Selection", long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A YAML or JSON mapping of variables.
    #[arg(help_heading = "Selection", long, value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// A JSON or YAML document exposed to templates as `input` (`-`: standard input).
    #[arg(help_heading = "Selection", long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Only recipients with this tag (repeatable: any of them).
    #[arg(help_heading = "Selection", long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only this recipient (repeatable).
    #[arg(help_heading = "Selection", long = "recipient", value_name = "NAME")]
    pub recipients: Vec<String>,
    /// Evaluate rules and templates as if it were this RFC 3339 time (dry runs only).
    #[arg(help_heading = "Selection", long, value_name = "TIME")]
    pub now: Option<String>,
    /// What goes to standard output.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write the JSON report there.
    #[arg(help_heading = "Output", long, value_name = "PATH")]
    pub report_file: Option<PathBuf>,
    /// Override `limits.max_calls` (0 to 1000000).
    #[arg(help_heading = "Provider", long, value_name = "N", value_parser = clap::value_parser!(u64).range(..=crate::limits::MAX_CALLS))]
    pub max_calls: Option<u64>,
    /// Override the provider base URL.
    #[arg(
        help_heading = "Provider",
        long,
        env = "FONESTORM_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub base_url: Option<String>,
    /// Override `provider.concurrency` (1 to 1000).
    #[arg(help_heading = "Provider", long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::limits::MAX_CONCURRENCY)))]
    pub concurrency: Option<u32>,
    /// Override `provider.rate_limit` (requests per second, 0.01 to 1000).
    #[arg(help_heading = "Provider", long, value_name = "N", value_parser = rate_limit)]
    pub rate_limit: Option<f64>,
    /// Where the journal lives.
    #[arg(
        help_heading = "Journal",
        long,
        env = "CALLBOOK_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Continue the newest unfinished run of this playbook, or run RUN_ID.
    #[arg(help_heading = "Journal", long, value_name = "RUN_ID", num_args = 0..=1, conflicts_with = "dry_run")]
    pub resume: Option<Option<String>>,
    /// Also keep the rendered messages in the journal (they may hold sensitive data).
    #[arg(help_heading = "Journal", long)]
    pub journal_messages: bool,
    /// Where to listen for FoneStorm's callbacks: a page always listens (default 127.0.0.1:8080),
    /// a broadcast only when given, to record how its calls ended.
    #[arg(
        help_heading = "Pages",
        long,
        env = "CALLBOOK_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// The https URL at which FoneStorm reaches that listener, to check where the callbacks point.
    #[arg(
        help_heading = "Pages",
        long,
        env = "CALLBOOK_PUBLIC_URL",
        value_name = "URL"
    )]
    pub public_url: Option<String>,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// The JSON report.
    Json,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour when the stream is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// `--rate-limit`: requests per second within [`crate::limits::check_rate_limit`]'s range.
fn rate_limit(s: &str) -> Result<f64, String> {
    let n = s
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a number"))?;
    crate::limits::check_rate_limit(n).map_err(|m| format!("`{s}` is out of range: {m}"))
}

/// `runs --limit`: from 1 to [`crate::limits::MAX_RUNS_LISTED`].
fn runs_limit(s: &str) -> Result<usize, String> {
    let max = crate::limits::MAX_RUNS_LISTED;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a number from 1 to {max}")),
    }
}
