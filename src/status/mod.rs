//! GitHub commit statuses: what to post (descriptions, dedup, abort), where (repository and
//! commit), and how (octocrab with retries and rate-limit handling, or printing).

pub(crate) mod client;
pub(crate) mod describe;
pub(crate) mod github;
pub(crate) mod print;
pub(crate) mod publisher;
pub(crate) mod reporter;
pub(crate) mod retry;
pub(crate) mod target;

pub use client::{Auth, ClientConfig, GithubClient, Secret};
pub(crate) use describe::{describe_run, describe_suite, truncate_description};
pub use github::GithubStatusReporter;
pub use publisher::StatusPublisher;
pub use reporter::{CommitStatus, StatusError, StatusReporter, StatusState};
pub use retry::RetryPolicy;
pub(crate) use target::RepoId;

/// Context of the aggregate status for a whole run.
pub(crate) const RUN_CONTEXT: &str = "e2e-gate";
