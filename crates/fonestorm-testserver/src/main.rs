//! `fonestorm-testserver`: the test server as a program, for trying callbook by
//! hand against a local FoneStorm stand-in with chosen faults.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fonestorm_testserver::{
    CallbackRule, Config, DispositionScript, FaultRule, HookMethod, Hooks, NumberStyle,
    OptionsSpelling, SmsHook, SmsTextField, UrlHook, parse_duration, serve,
};

/// A FoneStorm-compatible test server with fault injection (binds 127.0.0.1 only).
///
/// Fault specs are `MATCHERS:FAULT[xN]`: MATCHERS is `any` or a `,`-joined list of
/// `to=NUMBER`, `nth=N` (the n-th call request) and `after=N` (once N calls were
/// placed); FAULT is a status (300-599), `late-STATUS` (after the latency), `hang`,
/// `malformed`, `close` or `expire-token`; `xN` fires it N times only.
/// Examples: `to=13214991008:500`, `nth=3:503x2`, `after=5:402`, `nth=2:close`.
#[derive(Debug, Parser)]
#[command(version, max_term_width = 100)]
struct Args {
    /// Port to listen on (0 lets the OS choose).
    #[arg(long, default_value_t = 8088)]
    port: u16,
    /// How long a successful call takes to answer, e.g. `1s` or `250ms`.
    #[arg(long, value_parser = parse_duration, default_value = "0")]
    latency: Duration,
    /// Requests accepted per sliding one-second window.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    /// Accept any number of requests per second.
    #[arg(long, conflicts_with = "rate_limit")]
    no_rate_limit: bool,
    /// User name `POST /auth` accepts.
    #[arg(long, default_value_t = Config::default().username)]
    username: String,
    /// Password `POST /auth` accepts.
    #[arg(long, default_value_t = Config::default().password, hide_default_value = true)]
    password: String,
    /// A token accepted without `POST /auth` (repeatable; default `test-token`).
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// Lifetime of issued tokens, overriding the client's `expires`, e.g. `60s`.
    #[arg(long, value_parser = parse_duration)]
    token_ttl: Option<Duration>,
    /// A FoneNumber of the account (repeatable; default `3214991000`).
    #[arg(long = "fonenumber", value_name = "NUMBER", value_parser = fonenumber)]
    fonenumbers: Vec<String>,
    /// A fault to inject into `POST /calls` (repeatable, tried in order).
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<FaultRule>,
    /// A fault to inject into `POST /auth` (repeatable, tried in order).
    #[arg(long = "auth-fault", value_name = "SPEC")]
    auth_faults: Vec<FaultRule>,
    /// A callback registered at start (repeatable): `[FONENUMBER/]EVENT=VALUE`, EVENT
    /// one of `send_notify`, `receive_notify` (a URL, method JSON), `sms` (a URL, method
    /// POST), `sms-email` (an address), `sms-forward` (a number); FONENUMBER defaults to
    /// the first one. E.g. `send_notify=https://pager.example.com/hook`.
    #[arg(long = "hook", value_name = "SPEC", value_parser = hook)]
    hooks: Vec<(Option<String>, HookPreset)>,
    /// How calls to a number end, attempt by attempt (repeatable, first match wins):
    /// `to=NUMBER:OUTCOMES` or `any:OUTCOMES`, OUTCOMES a `,`-joined list of
    /// `DISPOSITION[/DURATION]` (ANSWERED, NO_ANSWER, BUSY, CANCEL, REJECTED,
    /// FAILED:CODE); the last repeats. E.g. `to=13125550101:NO_ANSWER,ANSWERED/30s`.
    /// Other calls end ANSWERED with 30 billable seconds.
    #[arg(long = "disposition", value_name = "SPEC")]
    dispositions: Vec<DispositionScript>,
    /// Delay between a call's BEGIN and END callbacks, e.g. `200ms`.
    #[arg(long, value_parser = parse_duration, default_value = "0")]
    callback_delay: Duration,
    /// How long one callback delivery may take before it is given up.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    callback_timeout: Duration,
    /// Lose or duplicate callbacks (repeatable, tried in order): `MATCHERS:FAULT[xN]`,
    /// MATCHERS `any` or `,`-joined `to=NUMBER` and `nth=N` (the n-th placed call),
    /// FAULT `lose-begin`, `lose-end`, `lose-both` or `duplicate-end`.
    #[arg(long = "callback-fault", value_name = "SPEC")]
    callback_faults: Vec<CallbackRule>,
    /// The `account_code` of call callbacks.
    #[arg(long, default_value_t = Config::default().account_code)]
    account_code: String,
    /// Write numbers in callbacks as E.164 with `+` (`+13214991000`) instead of as
    /// dialed.
    #[arg(long)]
    plus_numbers: bool,
    /// The field of inbound SMS callbacks that carries the text: `message`, `msg`,
    /// `text` or `body`.
    #[arg(long, default_value = "message", value_parser = sms_text_field)]
    sms_text_field: SmsTextField,
    /// Show callbacks under `voice_options`/`sms_options` instead of
    /// `call_options`/`message_options` in `GET /fonenumbers`.
    #[arg(long)]
    voice_options: bool,
}

/// One event's callback given with `--hook`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HookPreset {
    SendNotify(UrlHook),
    ReceiveNotify(UrlHook),
    Sms(SmsHook),
}

impl Args {
    fn config(self) -> Config {
        let defaults = Config::default();
        let fonenumbers = non_empty_or(self.fonenumbers, defaults.fonenumbers);
        let mut hooks: BTreeMap<String, Hooks> = BTreeMap::new();
        for (fonenumber, preset) in self.hooks {
            let Some(fonenumber) = fonenumber.or_else(|| fonenumbers.first().cloned()) else {
                continue;
            };
            let entry = hooks.entry(fonenumber).or_default();
            match preset {
                HookPreset::SendNotify(hook) => entry.send_notify = Some(hook),
                HookPreset::ReceiveNotify(hook) => entry.receive_notify = Some(hook),
                HookPreset::Sms(hook) => entry.sms = Some(hook),
            }
        }
        Config {
            latency: self.latency,
            rate_limit: (!self.no_rate_limit).then_some(self.rate_limit),
            username: self.username,
            password: self.password,
            static_tokens: non_empty_or(self.tokens, defaults.static_tokens),
            token_ttl: self.token_ttl,
            fonenumbers,
            inactive_fonenumbers: defaults.inactive_fonenumbers,
            sms_disabled_fonenumbers: defaults.sms_disabled_fonenumbers,
            faults: self.faults,
            auth_faults: self.auth_faults,
            hooks,
            dispositions: self.dispositions,
            default_outcome: defaults.default_outcome,
            callback_delay: self.callback_delay,
            callback_timeout: self.callback_timeout,
            callback_faults: self.callback_faults,
            account_code: self.account_code,
            number_style: if self.plus_numbers {
                NumberStyle::Plus
            } else {
                NumberStyle::AsDialed
            },
            sms_text_field: self.sms_text_field,
            options_spelling: if self.voice_options {
                OptionsSpelling::Voice
            } else {
                OptionsSpelling::Call
            },
            log: true,
        }
    }
}

fn non_empty_or(given: Vec<String>, default: Vec<String>) -> Vec<String> {
    if given.is_empty() { default } else { given }
}

fn fonenumber(text: &str) -> Result<String, String> {
    if text.len() == 10 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("a FoneNumber is exactly 10 digits, got `{text}`"))
    }
}

fn sms_text_field(text: &str) -> Result<SmsTextField, String> {
    SmsTextField::parse(text)
        .ok_or_else(|| format!("expected `message`, `msg`, `text` or `body`, got `{text}`"))
}

/// Reads a `--hook` spec.
fn hook(text: &str) -> Result<(Option<String>, HookPreset), String> {
    let (target, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected `[FONENUMBER/]EVENT=VALUE`, got `{text}`"))?;
    let (fonenumber, event) = match target.split_once('/') {
        Some((number, event)) => (Some(fonenumber(number)?), event),
        None => (None, target),
    };
    let url = |value: &str| {
        let parsed = reqwest::Url::parse(value).map_err(|err| format!("`{value}`: {err}"))?;
        if matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_some()
            && parsed.username().is_empty()
            && parsed.password().is_none()
        {
            Ok(value.to_owned())
        } else {
            Err(format!(
                "`{value}` is not an http or https URL without credentials"
            ))
        }
    };
    let preset = match event {
        "send_notify" => HookPreset::SendNotify(UrlHook::new(url(value)?, HookMethod::Json)),
        "receive_notify" => HookPreset::ReceiveNotify(UrlHook::new(url(value)?, HookMethod::Json)),
        "sms" => HookPreset::Sms(SmsHook::Url(UrlHook::new(url(value)?, HookMethod::Post))),
        "sms-email" if value.contains('@') => HookPreset::Sms(SmsHook::Email(value.to_owned())),
        "sms-forward" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
            HookPreset::Sms(SmsHook::Forward(value.to_owned()))
        }
        "sms-email" | "sms-forward" => return Err(format!("`{value}` does not fit `{event}`")),
        _ => {
            return Err(format!(
                "unknown event `{event}`, expected `send_notify`, `receive_notify`, `sms`, \
                 `sms-email` or `sms-forward`"
            ));
        }
    };
    Ok((fonenumber, preset))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let port = args.port;
    let config = args.config();
    let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    for rule in &config.faults {
        eprintln!("fault: {rule}");
    }
    for script in &config.dispositions {
        eprintln!("disposition: {script}");
    }
    for rule in &config.callback_faults {
        eprintln!("callback fault: {rule}");
    }
    let (handle, serving) = match serve(listener, config) {
        Ok(served) => served,
        Err(err) => {
            eprintln!("error: cannot serve on 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", handle.url());
    tokio::select! {
        () = serving => {}
        () = stop_signal() => eprintln!("stopping"),
    }
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    // If the handler cannot be installed, run until killed.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_build_the_config() {
        let args = Args::try_parse_from([
            "fonestorm-testserver",
            "--latency",
            "1s",
            "--no-rate-limit",
            "--token",
            "a",
            "--token",
            "b",
            "--fault",
            "nth=3:503x2",
            "--token-ttl",
            "60s",
        ])
        .unwrap();
        let config = args.config();
        assert_eq!(config.latency, Duration::from_secs(1));
        assert_eq!(config.rate_limit, None);
        assert_eq!(config.static_tokens, ["a", "b"]);
        assert_eq!(config.fonenumbers, Config::default().fonenumbers);
        assert_eq!(config.token_ttl, Some(Duration::from_secs(60)));
        assert_eq!(config.faults.len(), 1);
    }

    #[test]
    fn hooks_are_preset_per_fonenumber() {
        let config = Args::try_parse_from([
            "fonestorm-testserver",
            "--fonenumber",
            "3214991000",
            "--fonenumber",
            "3214991001",
            "--hook",
            "send_notify=https://elsewhere.example/hook",
            "--hook",
            "3214991001/sms-email=ops@example.com",
            "--voice-options",
        ])
        .unwrap()
        .config();
        assert_eq!(
            config.hooks["3214991000"].send_notify,
            Some(UrlHook::new(
                "https://elsewhere.example/hook",
                HookMethod::Json
            ))
        );
        assert_eq!(
            config.hooks["3214991001"].sms,
            Some(SmsHook::Email("ops@example.com".to_owned()))
        );
        assert_eq!(config.options_spelling, OptionsSpelling::Voice);
    }

    #[test]
    fn callback_flags_build_the_config() {
        let config = Args::try_parse_from([
            "fonestorm-testserver",
            "--disposition",
            "to=13125550101:NO_ANSWER,ANSWERED/30s",
            "--callback-delay",
            "200ms",
            "--callback-timeout",
            "1s",
            "--callback-fault",
            "nth=2:lose-end",
            "--account-code",
            "77",
            "--plus-numbers",
            "--sms-text-field",
            "msg",
        ])
        .unwrap()
        .config();
        assert_eq!(
            config.dispositions,
            ["to=13125550101:NO_ANSWER,ANSWERED/30s".parse().unwrap()]
        );
        assert_eq!(config.callback_delay, Duration::from_millis(200));
        assert_eq!(config.callback_timeout, Duration::from_secs(1));
        assert_eq!(config.callback_faults, ["nth=2:lose-end".parse().unwrap()]);
        assert_eq!(config.account_code, "77");
        assert_eq!(config.number_style, NumberStyle::Plus);
        assert_eq!(config.sms_text_field, SmsTextField::Msg);
    }

    #[test]
    fn defaults_match_the_library() {
        let config = Args::try_parse_from(["fonestorm-testserver"])
            .unwrap()
            .config();
        assert_eq!(
            config,
            Config {
                log: true,
                ..Config::default()
            }
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["--rate-limit", "5", "--no-rate-limit"][..],
            &["--fault", "nth=0:503"],
            &["--fonenumber", "12345"],
            &["--latency", "5"],
            &["--rate-limit", "0"],
            &["--hook", "send_notify"],
            &["--hook", "send_notify=ftp://x.example/"],
            &["--hook", "12/send_notify=http://x.example/"],
            &["--hook", "sms-forward=abc"],
            &["--hook", "other=http://x.example/"],
            &["--hook", "sms=http://u:p@x.example/"],
            &["--disposition", "any:answered"],
            &["--callback-fault", "nth=1:drop"],
            &["--callback-delay", "5"],
            &["--sms-text-field", "content"],
        ] {
            let argv = std::iter::once("fonestorm-testserver").chain(args.iter().copied());
            assert!(Args::try_parse_from(argv).is_err(), "{args:?}");
        }
    }
}
