//! The octocrab adapter for promotion: branch head, statuses, check runs, compare, ref
//! update and pull requests.

use super::evaluate::{Check, Observed};
use super::flow::{Ancestry, PromotionApi, PullRef, RefUpdate};
use crate::status::client::MAX_PAGES;
use crate::status::github::RawStatus;
use crate::status::{CommitStatus, GithubClient, RepoId, StatusError, StatusState};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// [`PromotionApi`] over the real GitHub client.
#[derive(Debug, Clone)]
pub struct GithubPromotionApi {
    client: Arc<GithubClient>,
    repo: RepoId,
}

impl GithubPromotionApi {
    /// For one repository.
    pub fn new(client: Arc<GithubClient>, repo: RepoId) -> GithubPromotionApi {
        GithubPromotionApi { client, repo }
    }
}

#[derive(Deserialize)]
struct RawRef {
    object: RawObject,
}
#[derive(Deserialize)]
struct RawObject {
    sha: String,
}
#[derive(Deserialize)]
struct RawChecks {
    check_runs: Vec<Check>,
}
#[derive(Deserialize)]
struct RawCompare {
    status: String,
}
#[async_trait::async_trait]
impl PromotionApi for GithubPromotionApi {
    async fn branch_head(&self, branch: &str) -> Result<String, StatusError> {
        let r: RawRef = self
            .client
            .get(
                &format!("GET branch {branch}"),
                &self.repo.route(&format!("git/ref/heads/{branch}")),
                &[],
            )
            .await?;
        Ok(r.object.sha)
    }

    async fn statuses(&self, sha: &str) -> Result<Vec<Observed>, StatusError> {
        let route = self.repo.route(&format!("commits/{sha}/statuses"));
        let all = |l: Vec<RawStatus>| l;
        let pages = self
            .client
            .pages("GET statuses", &route, &[], all, |_| false);
        let (list, complete) = pages.await?;
        if !complete {
            return Err(StatusError::Unavailable {
                what: format!("GET statuses of {sha}"),
                attempts: MAX_PAGES,
                message: format!(
                    "more than {} statuses; refusing to judge the commit on a partial list",
                    MAX_PAGES * 100
                ),
            });
        }
        Ok(list
            .into_iter()
            .filter_map(|s| {
                Some(Observed {
                    state: StatusState::parse(&s.state)?,
                    created_at: s.created_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
                    context: s.context,
                })
            })
            .collect())
    }

    async fn check_runs(&self, sha: &str) -> Result<Vec<Check>, StatusError> {
        let route = self.repo.route(&format!("commits/{sha}/check-runs"));
        let filter = [("filter", "latest".to_string())];
        let runs = |l: RawChecks| l.check_runs;
        let pages = self
            .client
            .pages("GET check runs", &route, &filter, runs, |_| false);
        Ok(pages.await?.0)
    }

    async fn compare(&self, base: &str, head: &str) -> Result<Ancestry, StatusError> {
        let c: RawCompare = self
            .client
            .get(
                &format!("GET compare {base}...{head}"),
                &self.repo.route(&format!("compare/{base}...{head}")),
                &[("per_page", "1".into())],
            )
            .await?;
        match c.status.as_str() {
            "identical" => Ok(Ancestry::Identical),
            "ahead" => Ok(Ancestry::Ahead),
            "behind" => Ok(Ancestry::Behind),
            "diverged" => Ok(Ancestry::Diverged),
            other => Err(StatusError::Unavailable {
                what: format!("GET compare {base}...{head}"),
                attempts: 1,
                message: format!("unknown comparison status {other:?}"),
            }),
        }
    }

    async fn update_branch(&self, branch: &str, sha: &str) -> Result<RefUpdate, StatusError> {
        let route = self.repo.route(&format!("git/refs/heads/{branch}"));
        let body = json!({ "sha": sha, "force": false });
        let what = format!("PATCH ref heads/{branch}");
        match self.client.patch::<Value>(&what, &route, &body).await {
            Ok(_) => Ok(RefUpdate::Updated),
            Err(StatusError::Rejected {
                status: 422,
                message,
                ..
            }) if message.to_ascii_lowercase().contains("fast forward") => {
                Ok(RefUpdate::NotFastForward)
            }
            Err(e) => Err(e),
        }
    }

    async fn find_pull(&self, head: &str, base: &str) -> Result<Option<PullRef>, StatusError> {
        let list: Vec<PullRef> = self
            .client
            .get(
                "GET pull requests",
                &self.repo.route("pulls"),
                &[
                    ("head", format!("{}:{head}", self.repo.owner)),
                    ("base", base.to_string()),
                    ("state", "open".into()),
                ],
            )
            .await?;
        Ok(list.into_iter().next())
    }

    async fn save_pull(
        &self,
        open: Option<u64>,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRef, StatusError> {
        let Some(n) = open else {
            let payload = json!({ "title": title, "head": head, "base": base, "body": body });
            let route = self.repo.route("pulls");
            return self
                .client
                .post("POST pull request", &route, &payload)
                .await;
        };
        let payload = json!({ "title": title, "body": body });
        let route = self.repo.route(&format!("pulls/{n}"));
        let what = format!("PATCH pull request #{n}");
        self.client.patch(&what, &route, &payload).await
    }

    async fn post_status(&self, sha: &str, status: &CommitStatus) -> Result<(), StatusError> {
        crate::status::github::post_status(&self.client, &self.repo, sha, status).await
    }
}
