//! GitHub commit statuses: what to post (descriptions, dedup, abort), where (repository and
//! commit), and how (octocrab with retries and rate-limit handling, or printing).

pub mod client;
pub mod describe;
pub mod github;
pub mod print;
pub mod publisher;
pub mod reporter;
pub mod retry;
pub mod target;

pub use client::{Auth, ClientConfig, GithubClient, Secret};
pub use describe::{describe_run, describe_suite, truncate_description};
pub use github::GithubStatusReporter;
pub use print::PrintReporter;
pub use publisher::StatusPublisher;
pub use reporter::{CommitStatus, StatusError, StatusReporter, StatusState};
pub use retry::RetryPolicy;
pub use target::RepoId;

/// Context of the aggregate status for a whole run.
pub(crate) const RUN_CONTEXT: &str = "e2e-gate";
