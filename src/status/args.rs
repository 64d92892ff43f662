//! `run`'s GitHub flags and the factory that turns them into a reporter.

use super::client::{Auth, AuthArgs, GithubClient};
use super::github::{GithubPullHeadLookup, GithubStatusReporter};
use super::print::PrintReporter;
use super::target::{self, parse_repo, CommitPlan, RepoId};
use super::{StatusError, StatusReporter};
use std::collections::HashMap;
use std::sync::Arc;

/// Where statuses go. Without a repository and a commit, statuses are not posted.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GithubArgs {
    /// Repository to post commit statuses to [default: from GIT_URL or CHANGE_URL].
    #[arg(long, value_name = "OWNER/NAME", value_parser = parse_repo)]
    pub github_repo: Option<RepoId>,
    /// Commit to post statuses on [default: the PR head when CHANGE_ID is set, else GIT_COMMIT].
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// Link of every status [default: BUILD_URL].
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,
    /// Credentials and API endpoint (the token itself comes from GITHUB_TOKEN or --token-file).
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Builds the reporter: GitHub (octocrab) when a token/app is configured, else the printing
/// reporter. Resolves the commit (PR head lookup). `None` when no repo/commit is known.
pub async fn reporter_from_args(
    args: &GithubArgs,
    env: &HashMap<String, String>,
) -> Result<Option<(Arc<dyn StatusReporter>, Option<String>)>, StatusError> {
    let Some(repo) = args
        .github_repo
        .clone()
        .or_else(|| target::repo_from_env(env))
    else {
        tracing::debug!("no repository known (--github-repo, GIT_URL): statuses are not posted");
        return Ok(None);
    };
    let Some(plan) = target::plan_commit(args.sha.as_deref(), env)? else {
        tracing::debug!("no commit known (--sha, CHANGE_ID, GIT_COMMIT): statuses are not posted");
        return Ok(None);
    };
    let target_url = args
        .target_url
        .clone()
        .or_else(|| env.get("BUILD_URL").cloned())
        .filter(|u| !u.trim().is_empty());
    let cfg = args.auth.client_config(env)?;
    if cfg.auth == Auth::None {
        let shown = match &plan {
            CommitPlan::Known { sha, .. } => format!("{repo}@{sha}"),
            CommitPlan::PullRequestHead(n) => format!("{repo} PR #{n} head"),
        };
        tracing::info!(
            "no GitHub credentials (GITHUB_TOKEN, --token-file, --github-app-id): statuses for \
             {shown} are printed, not posted"
        );
        return Ok(Some((
            Arc::new(PrintReporter { target: shown }),
            target_url,
        )));
    }
    let client = Arc::new(GithubClient::new(&cfg)?);
    let lookup = GithubPullHeadLookup(client.clone());
    let sha = target::resolve_commit(&plan, &repo, &lookup).await?;
    Ok(Some((
        Arc::new(GithubStatusReporter::new(client, repo, sha)),
        target_url,
    )))
}
