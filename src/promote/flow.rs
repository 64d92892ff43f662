//! The promotion flow over a narrow [`PromotionApi`]: read the source head, evaluate the gate,
//! check ancestry, then fast-forward the target or open/update one promotion PR.

use super::evaluate::{evaluate_contexts, Check, Decision, Observed, Reason};
use crate::status::{CommitStatus, RepoId, StatusError, StatusState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the target branch moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Update the target ref to the tested commit (`force=false`): the promoted SHA is
    /// exactly the tested SHA.
    FastForward,
    /// Open, or update, one promotion PR from source to target (hotfixes on channels allowed).
    PullRequest,
}

/// `GET /compare/{target}...{source-head}` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ancestry {
    /// Same commit.
    Identical,
    /// The source head contains the target: fast-forward possible.
    Ahead,
    /// The target already contains the source head and more.
    Behind,
    /// Both have commits the other lacks.
    Diverged,
}

/// Result of a ref update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefUpdate {
    /// Moved.
    Updated,
    /// 422 "Update is not a fast forward": the target moved meanwhile.
    NotFastForward,
}

/// A pull request (also as GitHub's pulls API returns it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRef {
    /// Number.
    pub number: u64,
    /// Web URL.
    #[serde(rename(deserialize = "html_url"))]
    pub url: String,
}

/// The GitHub calls promotion needs.
#[async_trait::async_trait]
pub trait PromotionApi: Send + Sync {
    /// Head commit of `branch`.
    async fn branch_head(&self, branch: &str) -> Result<String, StatusError>;
    /// Commit statuses of `sha`, latest first.
    async fn statuses(&self, sha: &str) -> Result<Vec<Observed>, StatusError>;
    /// Check runs of `sha`.
    async fn check_runs(&self, sha: &str) -> Result<Vec<Check>, StatusError>;
    /// Ancestry of `head` relative to `base`.
    async fn compare(&self, base: &str, head: &str) -> Result<Ancestry, StatusError>;
    /// Moves `branch` to `sha` with `force=false`.
    async fn update_branch(&self, branch: &str, sha: &str) -> Result<RefUpdate, StatusError>;
    /// The open PR from `head` into `base`, if any.
    async fn find_pull(&self, head: &str, base: &str) -> Result<Option<PullRef>, StatusError>;
    /// Opens a PR from `head` into `base`, or updates the title and body of the open one
    /// (`open`).
    async fn save_pull(
        &self,
        open: Option<u64>,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRef, StatusError>;
    /// Posts a commit status.
    async fn post_status(&self, sha: &str, status: &CommitStatus) -> Result<(), StatusError>;
}

/// What to promote.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    /// Repository.
    pub repo: RepoId,
    /// Source branch (e.g. `alpha`).
    pub from: String,
    /// Target branch (e.g. `beta`).
    pub to: String,
    /// Required contexts (status contexts or check-run names).
    pub required: Vec<String>,
    /// Minimum time every required context must have been `success`.
    pub soak: Option<Duration>,
    /// Fast-forward or pull request.
    pub mode: Mode,
    /// Decide and list the write calls, make none.
    pub dry_run: bool,
    /// Link for the `promoted-to` status.
    pub target_url: Option<String>,
}

/// The decision and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `owner/name`.
    pub(crate) repo: String,
    /// Source branch.
    pub(crate) from: String,
    /// Target branch.
    pub(crate) to: String,
    pub(crate) mode: Mode,
    /// The evaluated commit (source head).
    pub sha: String,
    /// Ancestry of the source head relative to the target.
    pub(crate) ancestry: Option<Ancestry>,
    /// The decision (with reasons when closed).
    #[serde(flatten)]
    pub decision: Decision,
    pub(crate) dry_run: bool,
    /// Write calls made (or, in a dry run, that would be made).
    pub calls: Vec<String>,
    /// Promotion PR.
    pub pull_request: Option<PullRef>,
    /// The `promoted-to` status could not be posted.
    pub status_error: Option<String>,
}

/// Context posted on the promoted commit.
pub(crate) fn promoted_context(to: &str) -> String {
    format!("e2e-gate/promoted-to-{to}")
}

/// Runs the promotion. Errors are infrastructure errors (exit 3); a closed gate is an `Ok`.
pub async fn promote(
    api: &dyn PromotionApi,
    req: &PromoteRequest,
    now: DateTime<Utc>,
) -> Result<Outcome, StatusError> {
    let repo = &req.repo;
    let mut raced = false;
    loop {
        let sha = api.branch_head(&req.from).await?;
        let statuses = api.statuses(&sha).await?;
        let checks = api.check_runs(&sha).await?;
        let mut reasons = evaluate_contexts(&req.required, &statuses, &checks, req.soak, now);
        let ancestry = api.compare(&req.to, &sha).await?;
        let mut out = Outcome {
            repo: repo.to_string(),
            from: req.from.clone(),
            to: req.to.clone(),
            mode: req.mode,
            sha: sha.clone(),
            ancestry: Some(ancestry),
            decision: Decision::Promote,
            dry_run: req.dry_run,
            calls: Vec::new(),
            pull_request: None,
            status_error: None,
        };
        let nothing = |why: String| Decision::NothingToDo { why };
        match (ancestry, req.mode) {
            (Ancestry::Identical, _) => {
                out.decision = nothing(format!("{} is already at {sha}", req.to));
                return Ok(out);
            }
            (Ancestry::Behind, Mode::PullRequest) => {
                out.decision = nothing(format!("{} already contains {sha}", req.to));
                return Ok(out);
            }
            (Ancestry::Behind, Mode::FastForward) => reasons.push(Reason::NotFastForward {
                ancestry: "behind".into(),
                message: format!(
                    "{to} is ahead of {from} ({sha} is already in {to}, with more commits); \
                     refusing to move {to} backwards",
                    to = req.to,
                    from = req.from
                ),
            }),
            (Ancestry::Diverged, Mode::FastForward) => reasons.push(Reason::NotFastForward {
                ancestry: "diverged".into(),
                message: format!(
                    "{to} and {from} have diverged ({to} has commits not in {from}, e.g. a hotfix); \
                     merge {to} into {from} first, or use --mode pull-request",
                    to = req.to,
                    from = req.from
                ),
            }),
            _ => {}
        }
        if !reasons.is_empty() {
            out.decision = Decision::Closed { reasons };
            return Ok(out);
        }
        match req.mode {
            Mode::FastForward => {
                out.calls.push(format!(
                    "PATCH /repos/{repo}/git/refs/heads/{} {{\"sha\":\"{sha}\",\"force\":false}}",
                    req.to
                ));
                let status = CommitStatus {
                    context: promoted_context(&req.to),
                    state: StatusState::Success,
                    description: crate::status::truncate_description(&format!(
                        "promoted from {} to {} by e2e-gate",
                        req.from, req.to
                    )),
                    target_url: req.target_url.clone(),
                };
                out.calls.push(format!(
                    "POST /repos/{repo}/statuses/{sha} {} = success",
                    status.context
                ));
                if req.dry_run {
                    return Ok(out);
                }
                match api.update_branch(&req.to, &sha).await? {
                    RefUpdate::Updated => {
                        tracing::info!("{} moved to {sha}", req.to);
                        if let Err(e) = api.post_status(&sha, &status).await {
                            tracing::error!("{} moved, but {e}", req.to);
                            out.status_error = Some(e.to_string());
                        }
                        return Ok(out);
                    }
                    RefUpdate::NotFastForward if !raced => {
                        tracing::warn!(
                            "{} moved while promoting (not a fast forward); evaluating again",
                            req.to
                        );
                        raced = true;
                        continue;
                    }
                    RefUpdate::NotFastForward => {
                        out.calls.truncate(1);
                        out.decision = Decision::Closed {
                            reasons: vec![Reason::TargetMoved {
                                message: format!(
                                    "{} moved again while promoting (GitHub: not a fast forward); \
                                     refusing after one re-evaluation",
                                    req.to
                                ),
                            }],
                        };
                        return Ok(out);
                    }
                }
            }
            Mode::PullRequest => {
                let title = format!("Promote {} to {}", req.from, req.to);
                let body = pr_body(req, &sha, now);
                let existing = api.find_pull(&req.from, &req.to).await?;
                match &existing {
                    Some(pr) => out.calls.push(format!(
                        "PATCH /repos/{repo}/pulls/{} (title, body)",
                        pr.number
                    )),
                    None => out.calls.push(format!(
                        "POST /repos/{repo}/pulls head={} base={}",
                        req.from, req.to
                    )),
                }
                if req.dry_run {
                    out.pull_request = existing;
                    return Ok(out);
                }
                let open = existing.map(|pr| pr.number);
                let pr = api
                    .save_pull(open, &req.from, &req.to, &title, &body)
                    .await?;
                tracing::info!("promotion pull request: {}", pr.url);
                out.pull_request = Some(pr);
                return Ok(out);
            }
        }
    }
}

fn pr_body(req: &PromoteRequest, sha: &str, now: DateTime<Utc>) -> String {
    let soak = req
        .soak
        .map(|soak| format!(" for at least {}", humantime::format_duration(soak)))
        .unwrap_or_default();
    let contexts: String = req.required.iter().map(|c| format!("- `{c}`\n")).collect();
    format!(
        "Promotes `{}` to `{}` at {sha}.\n\nRequired contexts, all `success` on {sha}{soak}:\n\
         {contexts}\nEvaluated by e2e-gate at {}.\n",
        req.from,
        req.to,
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const SHA: &str = "cccccccccccccccccccccccccccccccccccccccc";

    struct Fake {
        ancestry: Ancestry,
        status_fails: bool,
        writes: Mutex<Vec<String>>,
    }

    fn fake(ancestry: Ancestry) -> Fake {
        Fake {
            ancestry,
            status_fails: false,
            writes: Mutex::default(),
        }
    }

    #[async_trait::async_trait]
    impl PromotionApi for Fake {
        async fn branch_head(&self, _: &str) -> Result<String, StatusError> {
            Ok(SHA.into())
        }
        async fn statuses(&self, _: &str) -> Result<Vec<Observed>, StatusError> {
            Ok(vec![Observed {
                context: "ci".into(),
                state: StatusState::Success,
                created_at: DateTime::<Utc>::MIN_UTC,
            }])
        }
        async fn check_runs(&self, _: &str) -> Result<Vec<Check>, StatusError> {
            Ok(vec![])
        }
        async fn compare(&self, _: &str, _: &str) -> Result<Ancestry, StatusError> {
            Ok(self.ancestry)
        }
        async fn update_branch(&self, b: &str, _: &str) -> Result<RefUpdate, StatusError> {
            self.writes.lock().unwrap().push(format!("ref {b}"));
            Ok(RefUpdate::Updated)
        }
        async fn find_pull(&self, _: &str, _: &str) -> Result<Option<PullRef>, StatusError> {
            Ok(None)
        }
        async fn save_pull(
            &self,
            open: Option<u64>,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<PullRef, StatusError> {
            assert_eq!(open, None, "no pull request is open");
            self.writes.lock().unwrap().push("pr".into());
            Ok(PullRef {
                number: 1,
                url: "u".into(),
            })
        }
        async fn post_status(&self, _: &str, s: &CommitStatus) -> Result<(), StatusError> {
            self.writes.lock().unwrap().push(s.context.clone());
            if self.status_fails {
                return Err(StatusError::Config("nope".into()));
            }
            Ok(())
        }
    }

    fn req(mode: Mode) -> PromoteRequest {
        PromoteRequest {
            repo: "o/r".parse().unwrap(),
            from: "alpha".into(),
            to: "beta".into(),
            required: vec!["ci".into()],
            soak: Some(Duration::from_secs(3600)),
            mode,
            dry_run: false,
            target_url: None,
        }
    }

    #[tokio::test]
    async fn behind_is_nothing_to_do_for_prs_and_refused_for_fast_forward() {
        let f = fake(Ancestry::Behind);
        let out = promote(&f, &req(Mode::PullRequest), Utc::now())
            .await
            .unwrap();
        assert!(matches!(out.decision, Decision::NothingToDo { .. }));
        let out = promote(&f, &req(Mode::FastForward), Utc::now())
            .await
            .unwrap();
        assert!(matches!(out.decision, Decision::Closed { .. }));
        assert!(f.writes.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_promoted_to_status_is_reported_not_fatal() {
        let mut f = fake(Ancestry::Ahead);
        f.status_fails = true;
        let out = promote(&f, &req(Mode::FastForward), Utc::now())
            .await
            .unwrap();
        assert_eq!(out.decision, Decision::Promote);
        assert!(out.status_error.is_some());
        assert_eq!(
            *f.writes.lock().unwrap(),
            vec!["ref beta", "e2e-gate/promoted-to-beta"]
        );
    }

    #[tokio::test]
    async fn pull_request_mode_does_not_post_promoted_to() {
        let f = fake(Ancestry::Diverged);
        let out = promote(&f, &req(Mode::PullRequest), Utc::now())
            .await
            .unwrap();
        assert_eq!(out.pull_request.unwrap().number, 1);
        assert_eq!(*f.writes.lock().unwrap(), vec!["pr"]);
    }
}
