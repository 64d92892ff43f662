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
        let route = format!(
            "/repos/{}/{}/commits/{}/statuses",
            self.repo.owner, self.repo.name, self.sha
        );
        // Newest first, page after page until the context shows up: with more than 100 newer
        // statuses of other contexts on the commit, one page missed it and a duplicate was
        // posted. GitHub keeps at most 1000 statuses per context and commit.
        for page in 1..=MAX_STATUS_PAGES {
            let query = [("per_page", "100".to_string()), ("page", page.to_string())];
            let list: Vec<RawStatus> = self.client.get("GET statuses", &route, &query).await?;
            let n = list.len();
            if let Some(s) = list
                .into_iter()
                .find(|s| s.context.eq_ignore_ascii_case(context))
            {
                return Ok(StatusState::parse(&s.state).map(|state| CommitStatus {
                    context: s.context,
                    state,
                    description: s.description.unwrap_or_default(),
                    target_url: s.target_url,
                }));
            }
            if n < 100 {
                break;
            }
        }
        Ok(None)
    }
}

/// Pages of 100 statuses read before giving up on finding a context (a commit with this many
/// statuses is far beyond anything a pipeline writes).
const MAX_STATUS_PAGES: u32 = 200;

#[derive(Debug, Deserialize)]
struct RawStatus {
    context: String,
    state: String,
    description: Option<String>,
    target_url: Option<String>,
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
    let route = format!("/repos/{}/{}/statuses/{}", repo.owner, repo.name, sha);
    let body = serde_json::json!({
        "state": status.state.as_str(),
        "context": status.context,
        "description": super::describe::truncate_description(&status.description),
        "target_url": status.target_url,
    });
    let what = format!("POST status {} = {}", status.context, status.state);
    let _: serde_json::Value = client
        .call(&what, || client.crab().post(route.as_str(), Some(&body)))
        .await?;
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
    let route = format!("/repos/{}/{}/pulls/{number}", repo.owner, repo.name);
    let pr: RawPull = client
        .call(&format!("GET pull request #{number}"), || {
            client.crab().get(route.as_str(), None::<&()>)
        })
        .await?;
    Ok(pr.head.sha)
}
