//! The GitHub flags of `run`, `gate`, `status set` and `promote`, and the factory that
//! turns them into a reporter (the real octocrab adapter is wired here, in `cli/`).

use crate::status::client::DEFAULT_API_URL;
use crate::status::client::{validate_api_url, Auth, ClientConfig, GithubClient, Secret};
use crate::status::github::{pull_head, GithubStatusReporter};
use crate::status::print::PrintReporter;
use crate::status::target::{self, parse_repo, CommitPlan, RepoId};
use crate::status::{StatusError, StatusReporter};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
            CommitPlan::Known(sha) => format!("{repo}@{sha}"),
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
    let sha = match plan {
        CommitPlan::Known(sha) => sha,
        CommitPlan::PullRequestHead(n) => {
            let sha = pull_head(&client, &repo, n).await?;
            tracing::info!("posting statuses on PR #{n}'s head commit {sha}");
            sha
        }
    };
    Ok(Some((
        Arc::new(GithubStatusReporter::new(client, repo, sha)),
        target_url,
    )))
}

/// Authentication and endpoint flags shared by `run`, `status set` and `promote`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// File holding a GitHub token (instead of the GITHUB_TOKEN variable; the file wins).
    #[arg(long, value_name = "FILE", env = "GITHUB_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// GitHub API root; for GitHub Enterprise Server use https://HOST/api/v3 [default: https://api.github.com].
    #[arg(long, value_name = "URL", env = "GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// GitHub App id (App auth; needs --github-app-key-file and --github-installation-id).
    #[arg(long, value_name = "ID", env = "GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// PEM file with the GitHub App's RSA private key.
    #[arg(long, value_name = "FILE", env = "GITHUB_APP_KEY_FILE")]
    pub github_app_key_file: Option<PathBuf>,
    /// GitHub App installation id for the repository's owner.
    #[arg(long, value_name = "ID", env = "GITHUB_INSTALLATION_ID")]
    pub github_installation_id: Option<u64>,
}

impl AuthArgs {
    /// Credentials from the flags and `env` (`GITHUB_TOKEN`). App flags win over tokens,
    /// `--token-file` over `GITHUB_TOKEN`.
    pub(crate) fn auth(&self, env: &HashMap<String, String>) -> Result<Auth, StatusError> {
        let any_app = self.github_app_id.is_some()
            || self.github_app_key_file.is_some()
            || self.github_installation_id.is_some();
        if any_app {
            let (Some(app_id), Some(key_file), Some(installation_id)) = (
                self.github_app_id,
                self.github_app_key_file.as_ref(),
                self.github_installation_id,
            ) else {
                return Err(StatusError::Config(
                    "GitHub App auth needs all of --github-app-id, --github-app-key-file and \
                     --github-installation-id"
                        .into(),
                ));
            };
            let pem = read_secret(key_file, "--github-app-key-file")?;
            if !pem.expose().contains("PRIVATE KEY") {
                return Err(StatusError::Config(format!(
                    "--github-app-key-file: {} is not a PEM private key",
                    key_file.display()
                )));
            }
            return Ok(Auth::App {
                app_id,
                key_pem: pem,
                installation_id,
            });
        }
        if let Some(file) = &self.token_file {
            let token = read_secret(file, "--token-file")?;
            if token.expose().is_empty() {
                return Err(StatusError::Config(format!(
                    "--token-file: {} is empty",
                    file.display()
                )));
            }
            return Ok(Auth::Token(token));
        }
        match env.get("GITHUB_TOKEN").map(|t| t.trim()) {
            Some(t) if !t.is_empty() => Ok(Auth::Token(Secret::new(t))),
            _ => Ok(Auth::None),
        }
    }

    /// A full client configuration: the API root (validated) and the credentials.
    pub(crate) fn client_config(
        &self,
        env: &HashMap<String, String>,
    ) -> Result<ClientConfig, StatusError> {
        let api_url = validate_api_url(self.github_api_url.as_deref().unwrap_or(DEFAULT_API_URL))?;
        Ok(ClientConfig::new(api_url, self.auth(env)?))
    }
}

fn read_secret(path: &Path, flag: &str) -> Result<Secret, StatusError> {
    std::fs::read_to_string(path)
        .map(Secret::new)
        .map_err(|e| StatusError::Config(format!("{flag}: cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_sources() {
        let mut env = HashMap::new();
        let args = AuthArgs::default();
        assert_eq!(args.auth(&env).unwrap(), Auth::None);
        env.insert("GITHUB_TOKEN".into(), "t0k".into());
        assert_eq!(args.auth(&env).unwrap(), Auth::Token(Secret::new("t0k")));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "fromfile\n").unwrap();
        let args = AuthArgs {
            token_file: Some(f),
            ..AuthArgs::default()
        };
        assert_eq!(
            args.auth(&env).unwrap(),
            Auth::Token(Secret::new("fromfile"))
        );
        let args = AuthArgs {
            github_app_id: Some(1),
            ..AuthArgs::default()
        };
        let e = args.auth(&env).unwrap_err().to_string();
        assert!(e.contains("--github-installation-id"), "{e}");
    }
}
