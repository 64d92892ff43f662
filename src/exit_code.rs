//! The one table of process exit codes and the one place each layer's error is mapped to
//! one (exhaustive matches: a new variant does not compile until it is given a code).
//! README.md and `--help` list the same table; `--help` renders it from [`TABLE`].

use crate::cluster::ClusterError;
use crate::results::model::SuiteVerdict;
use crate::results::summary::RunSummary;
use crate::runner::RunnerError;
use crate::status::StatusError;
use crate::suite::SuiteError;
use crate::upgrade::engine::EngineError;
use crate::upgrade::use_case::UpgradeError;

/// Everything passed (flaky specs are allowed unless `--fail-on-flaky`); a promotion
/// was made or there was nothing to do.
pub(crate) const OK: u8 = 0;
/// A spec failed, the gate is closed, or an upgrade plan has blockers.
pub(crate) const FAILED: u8 = 1;
/// Usage or configuration error: bad flag, bad suite file, bad regex.
pub(crate) const USAGE: u8 = 2;
/// Infrastructure error (Docker gone, missing image, cluster or API unreachable)
/// or incomplete results (truncated JUnit, aborted run).
pub(crate) const INFRA: u8 = 3;
/// The tests' verdict is known, but a GitHub commit status could not be posted.
pub(crate) const STATUS_POST_FAILED: u8 = 4;
/// Interrupted by SIGINT or SIGTERM; results gathered so far were written.
pub(crate) const INTERRUPTED: u8 = 130;

/// Rows for the help text and README: `(code, meaning)`.
pub(crate) const TABLE: &[(u8, &str)] = &[
    (
        OK,
        "passed (flaky allowed unless --fail-on-flaky); promoted or nothing to do",
    ),
    (
        FAILED,
        "a spec failed; the promotion gate is closed; an upgrade plan has blockers",
    ),
    (
        USAGE,
        "usage or configuration error (flag, suite file, regex)",
    ),
    (
        INFRA,
        "infrastructure error (Docker, image, cluster, API) or incomplete results",
    ),
    (
        STATUS_POST_FAILED,
        "verdict known, but a GitHub status could not be posted",
    ),
    (
        INTERRUPTED,
        "interrupted by SIGINT/SIGTERM; partial results were written",
    ),
];

/// The table rendered for `--help` epilogues.
pub(crate) fn help_table() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in TABLE {
        s.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    s
}

/// An error (or verdict) of a layer that ends the process with a code from [`TABLE`].
pub trait HasExitCode {
    /// The exit code.
    fn exit_code(&self) -> u8;
}

impl HasExitCode for RunSummary {
    /// The verdict decides, so a summary made with `summarize_with(…, true)` already fails
    /// on flaky specs.
    fn exit_code(&self) -> u8 {
        match self.result {
            SuiteVerdict::Incomplete => INFRA,
            SuiteVerdict::Failed => FAILED,
            SuiteVerdict::Passed => OK,
        }
    }
}

impl HasExitCode for SuiteError {
    fn exit_code(&self) -> u8 {
        match self {
            SuiteError::Dir { .. }
            | SuiteError::Parse { .. }
            | SuiteError::Invalid { .. }
            | SuiteError::Flag { .. }
            | SuiteError::Unknown { .. } => USAGE,
        }
    }
}

impl HasExitCode for RunnerError {
    fn exit_code(&self) -> u8 {
        match self {
            RunnerError::Daemon(_)
            | RunnerError::ImageMissing { .. }
            | RunnerError::Engine { .. } => INFRA,
        }
    }
}

impl HasExitCode for ClusterError {
    fn exit_code(&self) -> u8 {
        match self {
            ClusterError::AlreadyRunning { .. }
            | ClusterError::Config(_)
            | ClusterError::NotFound { .. } => USAGE,
            ClusterError::Command { .. } | ClusterError::Infra(_) => INFRA,
        }
    }
}

impl HasExitCode for StatusError {
    fn exit_code(&self) -> u8 {
        match self {
            StatusError::Config(_) => USAGE,
            StatusError::Rejected { .. } | StatusError::Unavailable { .. } => STATUS_POST_FAILED,
        }
    }
}

impl HasExitCode for UpgradeError {
    fn exit_code(&self) -> u8 {
        match self {
            UpgradeError::Usage(_) => USAGE,
            UpgradeError::Infra(_) => INFRA,
            UpgradeError::Blocked(_) => FAILED,
            UpgradeError::Engine { error, .. } => match error {
                EngineError::Deadline(_) => FAILED,
                EngineError::Kube(k) if !k.is_infra() => USAGE,
                EngineError::Kube(_)
                | EngineError::Pool(_)
                | EngineError::Marker(_)
                | EngineError::Transition(_) => INFRA,
            },
        }
    }
}
