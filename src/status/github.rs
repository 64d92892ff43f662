//! The octocrab adapter for commit statuses (the only status file that names octocrab routes).

use super::client::GithubClient;
use super::target::RepoId;
use super::{CommitStatus, StatusError, StatusReporter, StatusState};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// GitHub asks for at least one second between content-creating requests.
pub(crate) const MIN_POST_INTERVAL: Duration = Duration::from_secs(1);

/// Posts statuses on one commit of one repository, at most one per [`MIN_POST_INTERVAL`].
#[derive(Debug, Clone)]
pub struct GithubStatusReporter {
    client: Arc<GithubClient>,
    repo: RepoId,
    sha: String,
    last_post: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl GithubStatusReporter {
    /// A reporter for `repo@sha`.
    pub fn new(client: Arc<GithubClient>, repo: RepoId, sha: String) -> GithubStatusReporter {
        GithubStatusReporter {
            client,
            repo,
            sha,
            last_post: Arc::default(),
        }
    }

    /// The latest status of `context` (case-insensitive) on the commit, if any.
    pub(crate) async fn latest(&self, context: &str) -> Result<Option<CommitStatus>, StatusError> {
        let route = self.repo.route(&format!("commits/{}/statuses", self.sha));
        // Newest first, page after page until the context shows up: with more than 100 newer
        // statuses of other contexts on the commit, one page missed it and a duplicate was
        // posted. GitHub keeps at most 1000 statuses per context and commit.
        let mine = |s: &RawStatus| s.context.eq_ignore_ascii_case(context);
        let pages = self
            .client
            .pages("GET statuses", &route, &[], |l: Vec<RawStatus>| l, mine);
        Ok(pages.await?.0.into_iter().find(mine).and_then(|s| {
            Some(CommitStatus {
                state: StatusState::parse(&s.state)?,
                context: s.context,
                description: s.description.unwrap_or_default(),
                target_url: s.target_url,
            })
        }))
    }
}

/// A commit status as `GET /repos/{o}/{r}/commits/{sha}/statuses` lists it.
#[derive(Debug, Deserialize)]
pub(crate) struct RawStatus {
    pub(crate) context: String,
    pub(crate) state: String,
    pub(crate) description: Option<String>,
    pub(crate) target_url: Option<String>,
    pub(crate) created_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_trait::async_trait]
impl StatusReporter for GithubStatusReporter {
    async fn post(&self, status: &CommitStatus) -> Result<(), StatusError> {
        let mut last = self.last_post.lock().await;
        if let Some(t) = *last {
            let since = t.elapsed();
            if since < MIN_POST_INTERVAL {
                tokio::time::sleep(MIN_POST_INTERVAL - since).await;
            }
        }
        let result = post_status(&self.client, &self.repo, &self.sha, status).await;
        *last = Some(Instant::now());
        result
    }
}

/// `POST /repos/{o}/{r}/statuses/{sha}`.
pub(crate) async fn post_status(
    client: &GithubClient,
    repo: &RepoId,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), StatusError> {
    let route = repo.route(&format!("statuses/{sha}"));
    let body = serde_json::json!({
        "state": status.state.as_str(),
        "context": status.context,
        "description": super::describe::truncate_description(&status.description),
        "target_url": status.target_url,
    });
    let what = format!("POST status {} = {}", status.context, status.state);
    let _: serde_json::Value = client.post(&what, &route, &body).await?;
    tracing::debug!("{what} on {repo}@{sha}");
    Ok(())
}

#[derive(Debug, Deserialize)]
struct RawPull {
    head: RawHead,
}

#[derive(Debug, Deserialize)]
struct RawHead {
    sha: String,
}

/// The head commit of pull request `number` (`GET /repos/{o}/{r}/pulls/{n}` → `.head.sha`).
pub(crate) async fn pull_head(
    client: &GithubClient,
    repo: &RepoId,
    number: u64,
) -> Result<String, StatusError> {
    let route = repo.route(&format!("pulls/{number}"));
    let what = format!("GET pull request #{number}");
    let pr: RawPull = client.get(&what, &route, &[]).await?;
    Ok(pr.head.sha)
}
