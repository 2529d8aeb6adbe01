//! `callbook preview PLAYBOOK --recipient NAME`: hear a message before the
//! person it wakes up does.
//!
//! The message comes from the plan itself (the broadcast plan, or a page's
//! timeline), so it is exactly what a run would send: the same rules,
//! templates, variables and checks, and no second renderer. A spoken
//! message is handed to `espeak-ng` (SSML with `-m`, so markup is spoken as
//! SSML) on its standard input, never through a shell, and written to a
//! temporary file beside the WAV that replaces it only when `espeak-ng`
//! succeeded within [`SPEAK_TIMEOUT`]. A connect or a sound file is shown,
//! not spoken. Nothing is contacted and the journal is not read, so dedup
//! does not apply.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Output;
use super::args::PreviewArgs;
use super::exit::{Exit, Failure};
use super::vars;
use crate::diag::{Diagnostic, Sources};
use crate::model::ServiceType;
use crate::plan::{self, CallRequest, Decision, Entry, RunInput, Selection};
use crate::playbook::{self, Action, MessageKind, Playbook};

/// The longest message handed to `espeak-ng`, in bytes (a minute of speech
/// is about 1 KiB of text).
pub const MAX_SPOKEN_BYTES: usize = 64 * 1024;
/// How long `espeak-ng` may take before it is stopped.
pub const SPEAK_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of `espeak-ng`'s standard error is kept to show a failure.
const MAX_STDERR_BYTES: u64 = 4096;
/// The longest default WAV file name, before `.wav`.
const MAX_STEM_CHARS: usize = 100;
/// The program that speaks.
const ESPEAK: &str = "espeak-ng";

/// What the plan decided for the recipient, and where in a page's ladder.
struct Found {
    entry: Entry,
    /// `step primary, round 1` for a page.
    at: Option<String>,
}

/// Runs `callbook preview`.
pub(super) fn preview(args: &PreviewArgs, out: &mut Output<'_>) -> Result<Exit, Failure> {
    let options = playbook::LoadOptions {
        include_root: args.include_root.clone(),
    };
    let loaded =
        playbook::load_with(&args.playbook, out.sources, &options).map_err(Failure::Invalid)?;
    out.diagnostics(&loaded.warnings);
    let playbook = loaded.playbook;
    let input = run_input(args, &playbook, out.sources).map_err(Failure::Invalid)?;
    let name = &args.recipient;
    let Some(found) = find(&playbook, &input, name)? else {
        let tags = args.tags.join("`, `");
        let why = if playbook.escalation.is_some() && args.tags.is_empty() {
            "no step of the page's ladder calls them".to_string()
        } else {
            format!("they have none of the tags `{tags}` given with --tag")
        };
        out.error(format!("`{name}` would not be called: {why}"));
        return Ok(Exit::CallsFailed);
    };
    let at = found.at.map(|at| format!(" ({at})")).unwrap_or_default();
    let rule = found
        .entry
        .rule
        .as_deref()
        .map(|r| format!(", rule `{r}`"))
        .unwrap_or_default();
    let call = match &found.entry.decision {
        Decision::Skip(reason) => {
            out.error(format!(
                "`{name}` would be skipped{at}{rule}: {}",
                crate::escape::escape_controls(reason)
            ));
            return Ok(Exit::CallsFailed);
        }
        Decision::Call(call) => call,
    };
    let who =
        crate::escape::escape_controls(&format!("{name} ({}){at}{rule}", call.to)).into_owned();
    match call.service_type {
        ServiceType::Tts => {}
        other => {
            super::print_stdout(&format!("{who}: {}\n", what_happens(other, call)));
            return Ok(Exit::Success);
        }
    }
    let ssml = is_ssml(&playbook, &found.entry, call);
    let kind = if ssml { "SSML" } else { "TTS" };
    // Shown line by line with control characters made visible: the message
    // holds whatever `--input` carried, and a terminal must not obey it.
    let shown: Vec<_> = call
        .service_id
        .lines()
        .map(crate::escape::escape_controls)
        .collect();
    super::print_stdout(&format!("{who}: {kind}\n{}\n", shown.join("\n")));
    let wav = args
        .wav
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_wav(name)));
    if let Some(what) = overwritten(args, &wav) {
        return Err(Failure::Invalid(vec![Diagnostic::error(
            None,
            format!(
                "--wav: `{}` is the {what}, which the WAV file would replace",
                wav.display()
            ),
        )]));
    }
    let bytes = speak(&call.service_id, ssml, &wav)?;
    out.note(&format!("wrote `{}` ({bytes} bytes)", wav.display()));
    Ok(Exit::Success)
}

/// The plan's entry for `name`: the broadcast plan's, or for a page the
/// first call of the ladder that calls them (else its first skip). `None`
/// when they are not selected (`--tag`) or no step calls them.
///
/// The plan is made for everyone selected, as a run makes it, not for the
/// recipient alone: a duplicate number is folded into the first person who
/// has it, and a page's rounds keep the times they are due (and so their
/// quiet hours).
fn find(playbook: &Playbook, input: &RunInput, name: &str) -> Result<Option<Found>, Failure> {
    // The name alone first: an unknown one is an error with a suggestion.
    let by_name = Selection {
        tags: Vec::new(),
        names: vec![name.to_string()],
    };
    plan::select(playbook, &by_name).map_err(Failure::Invalid)?;
    if playbook.escalation.is_none() {
        let plan = plan::plan(playbook, input).map_err(Failure::Invalid)?;
        return Ok(plan
            .entries
            .into_iter()
            .find(|e| playbook.recipients[e.recipient].name == name)
            .map(|entry| Found { entry, at: None }));
    }
    let code = crate::timeline::new_code(&[]);
    let timeline = crate::timeline::plan(playbook, input, &code).map_err(Failure::Invalid)?;
    let steps = playbook
        .escalation
        .as_ref()
        .map(|e| e.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut first_skip = None;
    for round in timeline.rounds {
        let at = format!(
            "step {}, round {}, at {}",
            steps.get(round.step).map_or("?", String::as_str),
            round.round,
            crate::timeline::offset_label(round.offset)
        );
        for entry in round.entries {
            if playbook.recipients[entry.recipient].name != name {
                continue;
            }
            if matches!(entry.decision, Decision::Call(_)) {
                return Ok(Some(Found {
                    entry,
                    at: Some(at),
                }));
            }
            if first_skip.is_none() {
                first_skip = Some(Found {
                    entry,
                    at: Some(at.clone()),
                });
            }
        }
    }
    Ok(first_skip)
}

/// Whether the message is SSML: the kind of the message its rule plays.
fn is_ssml(playbook: &Playbook, entry: &Entry, call: &CallRequest) -> bool {
    let played = entry.rule.as_ref().and_then(|name| {
        playbook
            .rules
            .iter()
            .find(|r| Arc::ptr_eq(&r.name, name))
            .and_then(|r| match r.action {
                Action::Play(i) => playbook.messages.get(i),
                _ => None,
            })
    });
    match played {
        Some(message) => message.kind == MessageKind::Ssml,
        None => call.service_id.trim_start().starts_with("<speak"),
    }
}

/// What a call that is not spoken does.
fn what_happens(service_type: ServiceType, call: &CallRequest) -> String {
    let id = crate::escape::escape_controls(&call.service_id);
    match service_type {
        ServiceType::SoundFile => format!("the call would play the sound file {id}"),
        ServiceType::Phonenumber => format!("the call would connect them to the number {id}"),
        ServiceType::Device => format!("the call would connect them to the device {id}"),
        ServiceType::VoiceMail => format!("the call would connect them to the voicemail box {id}"),
        ServiceType::Tts => format!("the call would speak: {id}"),
    }
}

/// The default WAV file: the name lower-cased, every run of characters
/// other than `a`–`z` and `0`–`9` as one `-` (none at either end), plus
/// `.wav`; `recipient.wav` when nothing is left.
pub fn default_wav(name: &str) -> String {
    let mut stem = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            stem.push(c);
        } else if !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let stem: String = stem
        .trim_matches('-')
        .chars()
        .take(MAX_STEM_CHARS)
        .collect();
    let stem = stem.trim_end_matches('-');
    if stem.is_empty() {
        "recipient.wav".to_string()
    } else {
        format!("{stem}.wav")
    }
}

/// Which input of the preview `wav` would replace, if any.
fn overwritten(args: &PreviewArgs, wav: &Path) -> Option<&'static str> {
    let wav = wav.canonicalize().ok()?;
    [
        (Some(args.playbook.as_path()), "playbook"),
        (args.vars_file.as_deref(), "--vars-file"),
        (args.input.as_deref(), "--input file"),
    ]
    .into_iter()
    .find_map(|(path, what)| (path?.canonicalize().ok()? == wav).then_some(what))
}

/// Speaks `text` into `wav` with `espeak-ng`; returns the file's size.
fn speak(text: &str, ssml: bool, wav: &Path) -> Result<u64, Failure> {
    if text.len() > MAX_SPOKEN_BYTES {
        return Err(Failure::Invalid(vec![Diagnostic::error(
            None,
            format!(
                "the message is {} bytes, more than preview speaks ({MAX_SPOKEN_BYTES})",
                text.len()
            ),
        )]));
    }
    let dir = match wav.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cannot_write = |e: &std::io::Error| {
        Failure::Invalid(vec![Diagnostic::error(
            None,
            format!(
                "--wav: cannot write `{}`: {}",
                wav.display(),
                playbook::io_reason(e)
            ),
        )])
    };
    let temp = tempfile::Builder::new()
        .prefix(".callbook-preview-")
        .suffix(".wav")
        .tempfile_in(&dir)
        .map_err(|e| cannot_write(&e))?;
    let mut command = Command::new(ESPEAK);
    if ssml {
        command.arg("-m");
    }
    command
        .arg("-w")
        .arg(temp.path())
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Refused(format!(
                "`{ESPEAK}` is not installed: install it (Debian/Ubuntu: `apt-get install espeak-ng`, Fedora: `dnf install espeak-ng`, macOS: `brew install espeak-ng`) and run preview again"
            )));
        }
        Err(e) => {
            return Err(Failure::Refused(format!(
                "cannot start `{ESPEAK}`: {}",
                playbook::io_reason(&e)
            )));
        }
    };
    // Fed and drained on their own threads, so that neither pipe can stall it.
    let feeder = child.stdin.take().map(|mut stdin| {
        let text = text.as_bytes().to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&text);
        })
    });
    let drainer = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut limited = stderr.take(MAX_STDERR_BYTES);
            let _ = limited.read_to_end(&mut kept);
            // Whatever is left is read and dropped, so the child never blocks on it.
            let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
            kept
        })
    });
    let status = wait_bounded(&mut child, SPEAK_TIMEOUT);
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stderr = drainer
        .and_then(|d| d.join().ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let Some(status) = status else {
        return Err(Failure::Refused(format!(
            "`{ESPEAK}` did not finish within {}s and was stopped; no WAV file was written",
            SPEAK_TIMEOUT.as_secs()
        )));
    };
    if !status.success() {
        let said = crate::escape::escape_controls(&stderr);
        return Err(Failure::Refused(format!(
            "`{ESPEAK}` failed ({status}): {said}; no WAV file was written"
        )));
    }
    let size = std::fs::metadata(temp.path()).map_or(0, |m| m.len());
    if size <= 44 {
        return Err(Failure::Refused(format!(
            "`{ESPEAK}` wrote no sound ({size} bytes); no WAV file was written"
        )));
    }
    // Readable like any file the user writes (the temporary file is 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644));
    }
    temp.persist(wav).map_err(|e| cannot_write(&e.error))?;
    Ok(size)
}

/// Waits for `child` at most `timeout`; then (or when waiting fails) kills
/// it and returns `None`.
fn wait_bounded(child: &mut std::process::Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The run's input from the flags, as `run` builds it; selected: everyone
/// with a `--tag` (everyone without one).
fn run_input(
    args: &PreviewArgs,
    playbook: &Playbook,
    sources: &mut Sources,
) -> Result<RunInput, Vec<Diagnostic>> {
    let flags = vars::InputFlags {
        now: args.now.as_deref(),
        vars_file: args.vars_file.as_deref(),
        input: args.input.as_deref(),
        vars: &args.vars,
        selection: Selection {
            tags: args.tags.clone(),
            names: Vec::new(),
        },
        dry_run: true,
    };
    vars::run_input(flags, playbook, sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_runs_too_long_is_stopped() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let started = Instant::now();
        assert!(wait_bounded(&mut child, Duration::from_millis(200)).is_none());
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(
            child.try_wait().unwrap().is_some(),
            "it was killed and reaped"
        );
        let mut quick = Command::new("true").spawn().unwrap();
        let status = wait_bounded(&mut quick, Duration::from_secs(20)).unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_message_too_long_to_speak_is_refused_before_espeak_starts() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("x.wav");
        let text = "a".repeat(MAX_SPOKEN_BYTES + 1);
        match speak(&text, false, &wav) {
            Err(Failure::Invalid(d)) => {
                assert!(d[0].message.contains("more than preview speaks"), "{d:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn default_wav_names() {
        for (name, want) in [
            ("Alice Ng", "alice-ng.wav"),
            ("Dr. Jonas  Weber", "dr-jonas-weber.wav"),
            ("-rm -rf /", "rm-rf.wav"),
            ("../../etc/passwd", "etc-passwd.wav"),
            ("李", "recipient.wav"),
            ("", "recipient.wav"),
            ("Front desk 12", "front-desk-12.wav"),
        ] {
            assert_eq!(default_wav(name), want, "{name}");
        }
        let long = default_wav(&"a b ".repeat(500));
        assert!(long.len() <= MAX_STEM_CHARS + 4, "{long}");
        assert!(!long.contains("-.wav"), "{long}");
    }
}
