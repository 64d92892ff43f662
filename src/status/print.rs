//! A reporter that prints statuses to stderr instead of posting them (no credentials set).

use super::{CommitStatus, StatusError, StatusReporter};

/// Prints each status as one log line.
#[derive(Debug, Clone)]
pub(crate) struct PrintReporter {
    /// What the statuses would be posted on, e.g. `owner/name@sha`.
    pub(crate) target: String,
}

#[async_trait::async_trait]
impl StatusReporter for PrintReporter {
    async fn post(&self, s: &CommitStatus) -> Result<(), StatusError> {
        tracing::info!(
            "status (not posted, no GitHub credentials) {}: {} = {} \"{}\"{}",
            self.target,
            s.context,
            s.state,
            s.description,
            s.target_url
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default()
        );
        Ok(())
    }
}
