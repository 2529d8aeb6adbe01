//! Exit codes, in one place, as the README's "Exit codes" table documents them.

/// What a callbook process reports to its caller (cron, an alerting hook, CI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every planned call was placed, or the dry-run plan is complete.
    Success = 0,
    /// At least one call failed or has an unknown outcome.
    CallsFailed = 1,
    /// Invalid playbook, input or usage: nothing was called.
    Invalid = 2,
    /// The run was refused before any call (credentials, limits, lock).
    Refused = 3,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}
