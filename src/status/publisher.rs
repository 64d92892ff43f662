//! The publisher the runner talks to: truncates, deduplicates, remembers contexts left
//! `pending` so [`StatusPublisher::abort`] can turn them into `error` "aborted", and collects
//! errors instead of failing the run.

use super::describe::truncate_description;
use super::{CommitStatus, StatusReporter, StatusState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Description posted by [`StatusPublisher::abort`].
pub(crate) const ABORTED: &str = "aborted";

/// Time [`StatusPublisher::abort`] may take in total: Jenkins kills the process soon after
/// SIGTERM, so rate-limit waits are not honoured past this.
pub(crate) const ABORT_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    /// Last posted (state, description) per lower-cased context.
    last: HashMap<String, (StatusState, String)>,
    /// Contexts whose last status is pending (lower-cased → as given), in first-seen order.
    pending: Vec<(String, String)>,
    errors: Vec<String>,
    aborted: bool,
}

/// Dedups, truncates to 140, tracks pending contexts; never panics; collects errors instead
/// of failing the run.
pub struct StatusPublisher {
    reporter: Arc<dyn StatusReporter>,
    target_url: Option<String>,
    /// Serialises posts so states arrive in order.
    post_lock: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
}

impl StatusPublisher {
    /// A publisher posting through `reporter`, linking every status to `target_url`.
    pub fn new(reporter: Arc<dyn StatusReporter>, target_url: Option<String>) -> Self {
        StatusPublisher {
            reporter,
            target_url,
            post_lock: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts `pending` for `context`.
    pub async fn pending(&self, context: &str, description: &str) {
        self.post(context, StatusState::Pending, description, false)
            .await
    }

    /// Posts the final state for `context`.
    pub async fn finish(&self, context: &str, state: StatusState, description: &str) {
        self.post(context, state, description, false).await
    }

    /// Posts `error` "aborted" for every context still pending (within [`ABORT_BUDGET`]);
    /// later posts are ignored.
    pub async fn abort(&self) {
        self.inner().aborted = true;
        let pending = self.pending_contexts();
        let all = async {
            for context in &pending {
                self.post(context, StatusState::Error, ABORTED, true).await;
            }
        };
        if tokio::time::timeout(ABORT_BUDGET, all).await.is_err() {
            let left = self.pending_contexts();
            let budget = humantime::format_duration(ABORT_BUDGET);
            tracing::error!(
                "could not mark {} as aborted within {budget}",
                left.join(", ")
            );
            self.inner().errors.push(format!(
                "{}: aborted status not posted within {budget}",
                left.join(", ")
            ));
        }
    }

    /// Errors met so far (for exit code 4 and the summary).
    pub fn errors(&self) -> Vec<String> {
        self.inner().errors.clone()
    }

    /// Contexts whose last status is `pending`.
    pub fn pending_contexts(&self) -> Vec<String> {
        self.inner()
            .pending
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    async fn post(&self, context: &str, state: StatusState, description: &str, aborting: bool) {
        let _serial = self.post_lock.lock().await;
        let key = context.to_lowercase();
        let description = truncate_description(description);
        {
            let inner = self.inner();
            if inner.aborted && !aborting {
                tracing::debug!("status {context} = {state} not posted: run aborted");
                return;
            }
            if inner.last.get(&key) == Some(&(state, description.clone())) {
                tracing::debug!("status {context} = {state} unchanged; not posted again");
                return;
            }
        }
        let status = CommitStatus {
            context: context.to_string(),
            state,
            description: description.clone(),
            target_url: self.target_url.clone(),
        };
        let result = self.reporter.post(&status).await;
        let mut inner = self.inner();
        if state == StatusState::Pending {
            // tracked even when the post failed: it may have landed, and `abort` must clear it
            if !inner.pending.iter().any(|(k, _)| *k == key) {
                inner.pending.push((key.clone(), context.to_string()));
            }
        }
        match result {
            Ok(()) => {
                if state != StatusState::Pending {
                    inner.pending.retain(|(k, _)| *k != key);
                }
                inner.last.insert(key, (state, description));
            }
            Err(e) => {
                tracing::error!("could not post status {context} = {state}: {e}");
                inner.errors.push(format!("{context} = {state}: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusError;

    #[derive(Default)]
    struct Fake {
        posted: Mutex<Vec<CommitStatus>>,
        fail_state: Option<StatusState>,
    }

    #[async_trait::async_trait]
    impl StatusReporter for Fake {
        async fn post(&self, s: &CommitStatus) -> Result<(), StatusError> {
            self.posted.lock().unwrap().push(s.clone());
            if self.fail_state == Some(s.state) {
                return Err(StatusError::Unavailable {
                    what: "POST".into(),
                    attempts: 3,
                    message: "502".into(),
                });
            }
            Ok(())
        }
    }

    fn states(f: &Fake) -> Vec<(String, StatusState, String)> {
        f.posted
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.context.clone(), s.state, s.description.clone()))
            .collect()
    }

    #[tokio::test]
    async fn dedups_truncates_and_aborts() {
        let fake = Arc::new(Fake::default());
        let p = StatusPublisher::new(fake.clone(), Some("https://ci/job/1".into()));
        p.pending("e2e-gate/a", "running").await;
        p.pending("E2E-gate/A", "running").await; // same context, case-insensitive
        p.pending("e2e-gate/b", &"x".repeat(300)).await;
        p.finish("e2e-gate/a", StatusState::Success, "1 passed")
            .await;
        p.finish("e2e-gate/a", StatusState::Success, "1 passed")
            .await;
        assert_eq!(p.pending_contexts(), vec!["e2e-gate/b"]);
        p.abort().await;
        p.pending("e2e-gate/c", "late").await; // ignored after abort
        let got = states(&fake);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1].2.chars().count(), 140);
        assert_eq!(
            got[3],
            ("e2e-gate/b".into(), StatusState::Error, "aborted".into())
        );
        assert!(p.errors().is_empty());
        assert!(fake.posted.lock().unwrap()[0].target_url.is_some());
    }

    struct Slow;

    #[async_trait::async_trait]
    impl StatusReporter for Slow {
        async fn post(&self, s: &CommitStatus) -> Result<(), StatusError> {
            if s.state == StatusState::Error {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
            Ok(())
        }
    }

    // Paused time: the 30 s budget passes without waiting for it.
    #[tokio::test(start_paused = true)]
    async fn abort_is_bounded_in_time() {
        let p = StatusPublisher::new(Arc::new(Slow), None);
        p.pending("ctx", "running").await;
        p.abort().await;
        let errors = p.errors();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("ctx: aborted status not posted within 30s"),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn errors_are_collected_not_raised() {
        let fake = Arc::new(Fake {
            fail_state: Some(StatusState::Failure),
            ..Fake::default()
        });
        let p = StatusPublisher::new(fake.clone(), None);
        p.pending("ctx", "running").await;
        p.finish("ctx", StatusState::Failure, "1 failed").await;
        let errors = p.errors();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("ctx = failure"), "{errors:?}");
        // a failed final post keeps the context pending, and may be retried
        assert_eq!(p.pending_contexts(), vec!["ctx"]);
        p.finish("ctx", StatusState::Failure, "1 failed").await;
        assert_eq!(states(&fake).len(), 3);
    }
}
