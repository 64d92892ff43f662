//! Which repository and which commit statuses go to. Pure: the PR-head lookup is
//! `github::pull_head`. The environment is passed in as a map.
//!
//! Commit: `--sha` wins; for a Jenkins PR build (`CHANGE_ID` set) the PR's head commit, asked
//! from the API (never Jenkins' local merge commit in `GIT_COMMIT`); otherwise `GIT_COMMIT`.

use super::StatusError;
use std::collections::HashMap;

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    /// Owner (user or organisation).
    pub(crate) owner: String,
    pub(crate) name: String,
}

impl RepoId {
    /// The API route `/repos/OWNER/NAME/{rest}`.
    pub(crate) fn route(&self, rest: &str) -> String {
        format!("/repos/{self}/{rest}")
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl std::str::FromStr for RepoId {
    type Err = StatusError;
    fn from_str(s: &str) -> Result<RepoId, StatusError> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match s.trim().split_once('/') {
            Some((o, n)) if ok(o) && ok(n) => Ok(RepoId {
                owner: o.to_string(),
                name: n.to_string(),
            }),
            _ => Err(StatusError::Config(format!(
                "repository {s:?} is not of the form OWNER/NAME (letters, digits, '-', '_', '.')"
            ))),
        }
    }
}

/// Reads `OWNER/NAME` (`--repo`, `--github-repo`); the error says what would be valid.
pub(crate) fn parse_repo(s: &str) -> Result<RepoId, String> {
    s.parse().map_err(|e: StatusError| e.to_string())
}

/// Reads a full commit SHA (`--sha`: 40 or 64 hex characters).
pub(crate) fn parse_sha(s: &str) -> Result<String, String> {
    let s = s.trim();
    if (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{s:?} is not a full commit SHA (40 hexadecimal characters)"
        ))
    }
}

/// The repository from Jenkins' environment: `GIT_URL`, else `CHANGE_URL`.
pub(crate) fn repo_from_env(env: &HashMap<String, String>) -> Option<RepoId> {
    ["GIT_URL", "CHANGE_URL"]
        .iter()
        .filter_map(|k| env.get(*k))
        .find_map(|u| repo_from_url(u))
}

/// `https://github.com/o/r(.git)`, `git@host:o/r.git`, `https://host/o/r/pull/5` → `o/r`.
pub(crate) fn repo_from_url(url: &str) -> Option<RepoId> {
    let url = url.trim();
    let path = if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        rest.split_once('/')?.1
    } else {
        url.split_once(':')?.1
    };
    let mut parts = path.trim_matches('/').split('/');
    let owner = parts.next()?;
    let name = parts.next()?.trim_end_matches(".git");
    format!("{owner}/{name}").parse().ok()
}

/// Where the commit comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommitPlan {
    /// Known: `--sha` or `GIT_COMMIT`.
    Known(String),
    /// The head commit of this pull request (ask the API).
    PullRequestHead(u64),
}

/// Decides which commit to use from the flag and the environment; `None` when unknown.
pub(crate) fn plan_commit(
    sha_flag: Option<&str>,
    env: &HashMap<String, String>,
) -> Result<Option<CommitPlan>, StatusError> {
    let known = |sha: &str, origin: &str| {
        parse_sha(sha)
            .map(CommitPlan::Known)
            .map_err(|e| StatusError::Config(format!("{origin}: {e}")))
    };
    let var = |k: &str| env.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    if let Some(sha) = sha_flag {
        return known(sha, "--sha").map(Some);
    }
    if let Some(id) = var("CHANGE_ID") {
        let n = id.parse::<u64>().map_err(|_| {
            StatusError::Config(format!(
                "CHANGE_ID={id:?} is not a pull request number; pass --sha"
            ))
        })?;
        return Ok(Some(CommitPlan::PullRequestHead(n)));
    }
    var("GIT_COMMIT")
        .map(|sha| known(sha, "GIT_COMMIT"))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sha_flag_wins_then_pr_then_git_commit() {
        let e = env(&[("CHANGE_ID", "42"), ("GIT_COMMIT", B)]);
        assert_eq!(
            plan_commit(Some(A), &e).unwrap(),
            Some(CommitPlan::Known(A.into()))
        );
        assert_eq!(
            plan_commit(None, &e).unwrap(),
            Some(CommitPlan::PullRequestHead(42))
        );
        let e = env(&[("GIT_COMMIT", B)]);
        assert_eq!(
            plan_commit(None, &e).unwrap(),
            Some(CommitPlan::Known(B.into()))
        );
        assert_eq!(plan_commit(None, &env(&[])).unwrap(), None);
        assert!(plan_commit(Some("abc"), &e).is_err());
        assert!(plan_commit(None, &env(&[("CHANGE_ID", "PR-1")])).is_err());
    }

    #[test]
    fn repos_from_urls() {
        let r = |s| repo_from_url(s).map(|r| r.to_string());
        assert_eq!(
            r("https://github.com/zalando/k8s.git"),
            Some("zalando/k8s".into())
        );
        assert_eq!(r("git@ghe.corp:team/cfg.git"), Some("team/cfg".into()));
        assert_eq!(r("https://github.com/o/r/pull/5"), Some("o/r".into()));
        assert_eq!(r("https://github.com/"), None);
        assert!("o/r/x".parse::<RepoId>().is_err());
        assert!("noslash".parse::<RepoId>().is_err());
        let e = env(&[("CHANGE_URL", "https://github.com/o/r/pull/9")]);
        assert_eq!(repo_from_env(&e).unwrap().to_string(), "o/r");
    }
}
