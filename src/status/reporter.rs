//! The narrow seam for posting a commit status, and the value types that cross it.

use serde::Serialize;

/// State of a GitHub commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    /// Running or not yet reported.
    Pending,
    /// Passed.
    Success,
    /// Tests failed.
    Failure,
    /// Infrastructure error, incomplete results or aborted.
    Error,
}

impl StatusState {
    /// GitHub's word for the state.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }

    /// Parses GitHub's word (case-insensitive).
    pub(crate) fn parse(s: &str) -> Option<StatusState> {
        use StatusState::*;
        [Pending, Success, Failure, Error]
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for StatusState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One commit status to post on the reporter's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitStatus {
    /// Context (case-insensitive on GitHub), e.g. `e2e-gate/conformance`.
    pub context: String,
    /// State.
    pub state: StatusState,
    /// Description, at most 140 characters (the publisher truncates).
    pub description: String,
    /// Link to the build.
    pub target_url: Option<String>,
}

/// Why a status (or another GitHub call) could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// Bad configuration: names the flag or variable and what is valid (exit code 2).
    #[error("{0}")]
    Config(String),
    /// GitHub answered with a client error that retrying cannot fix (validation, auth, not found).
    #[error("GitHub rejected {what} ({status}): {message}")]
    Rejected {
        /// What was attempted, e.g. `POST status e2e-gate/conformance`.
        what: String,
        /// HTTP status code.
        status: u16,
        /// GitHub's message (and validation errors).
        message: String,
    },
    /// Still failing after retries, or rate limited past the deadline (exit code 3 or 4).
    #[error("{what} failed after {attempts} attempt(s): {message}")]
    Unavailable {
        /// What was attempted.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        message: String,
    },
}

/// Posts one commit status somewhere (GitHub, stderr, a test fake).
#[async_trait::async_trait]
pub trait StatusReporter: Send + Sync {
    /// Posts `status`. Implementations retry as their policy says; an error is final.
    async fn post(&self, status: &CommitStatus) -> Result<(), StatusError>;
}
