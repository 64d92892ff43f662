//! Building the octocrab client: token, token file or GitHub App auth, API URL (GitHub
//! Enterprise), timeouts, and the retry loop every GitHub call goes through.
//!
//! Secrets live in [`Secret`], whose `Debug`/`Display` print `***`; error texts are scrubbed
//! of the token before they leave this module.

use super::retry::{classify, FailureFacts, RetryPolicy, Verdict};
use super::StatusError;
use crate::first_line;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::{Duration, Instant};

/// Pages of 100 read before a list is called incomplete (a commit with this many statuses is
/// far beyond anything a pipeline writes; promotion refuses to judge on a cut list, which can
/// make a required context look missing or a soak look shorter).
pub(crate) const MAX_PAGES: u32 = 200;

const NO_CREDENTIALS: &str = "no GitHub credentials: set GITHUB_TOKEN, --token-file, or \
     --github-app-id with --github-app-key-file and --github-installation-id";

/// The public GitHub API.
pub(crate) const DEFAULT_API_URL: &str = "https://api.github.com";

/// A secret string: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret (trailing whitespace from files is removed).
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into().trim().to_string())
    }
    /// The secret itself: only for handing to the HTTP client.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials: statuses are printed, not posted.
    None,
    /// A personal access token or a token minted by Jenkins.
    Token(Secret),
    /// A GitHub App installation; tokens are minted and refreshed before they expire.
    App {
        /// App id.
        app_id: u64,
        /// RSA private key (PEM).
        key_pem: Secret,
        /// Installation id.
        installation_id: u64,
    },
}

/// TCP connect timeout of every call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read (and write) timeout of one response.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything needed to build a client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API root, e.g. `https://api.github.com` or `https://HOST/api/v3`.
    pub(crate) api_url: String,
    /// Credentials.
    pub(crate) auth: Auth,
    /// Retry policy for every call.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults for `api_url` and `auth`.
    pub fn new(api_url: impl Into<String>, auth: Auth) -> ClientConfig {
        ClientConfig {
            api_url: api_url.into(),
            auth,
            retry: RetryPolicy::default(),
        }
    }
}

/// Checks an API root URL: http(s), a host, no query; trailing `/` removed.
pub(crate) fn validate_api_url(url: &str) -> Result<String, StatusError> {
    let trimmed = url.trim().trim_end_matches('/');
    let bad = || {
        StatusError::Config(format!(
            "--github-api-url: {url:?} is not a valid API URL; use https://api.github.com, \
             https://HOST/api/v3 (GitHub Enterprise Server) or https://api.SUBDOMAIN.ghe.com"
        ))
    };
    let uri: http::Uri = trimmed.parse().map_err(|_| bad())?;
    match (uri.scheme_str(), uri.host(), uri.query()) {
        (Some("http" | "https"), Some(h), None) if !h.is_empty() => Ok(trimmed.to_string()),
        _ => Err(bad()),
    }
}

/// The octocrab client plus the retry policy; the only place that builds one.
#[derive(Debug, Clone)]
pub struct GithubClient {
    crab: Octocrab,
    retry: RetryPolicy,
    /// App auth: the installation token is refreshed before calls.
    app: bool,
    /// The token or the App's key, scrubbed from error texts.
    secret: Secret,
}

impl GithubClient {
    /// Builds the client. Must run inside a Tokio runtime. Returns a config error for
    /// `Auth::None` or a bad key.
    pub fn new(cfg: &ClientConfig) -> Result<GithubClient, StatusError> {
        let api_url = validate_api_url(&cfg.api_url)?;
        let builder = Octocrab::builder()
            .base_uri(api_url.as_str())
            .map_err(|_| validate_api_url("").unwrap_err())?
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .set_write_timeout(Some(READ_TIMEOUT));
        let config = |e: &str| StatusError::Config(e.to_string());
        let build_err =
            |e: octocrab::Error| config(&format!("cannot build the GitHub client: {e}"));
        let (crab, app, secret) = match &cfg.auth {
            Auth::None => return Err(config(NO_CREDENTIALS)),
            Auth::Token(t) => (
                builder
                    .personal_token(t.expose().to_string())
                    .build()
                    .map_err(build_err)?,
                false,
                t,
            ),
            Auth::App {
                app_id,
                key_pem,
                installation_id,
            } => {
                let app = builder
                    .app_from_rsa_pem(octocrab::models::AppId(*app_id), key_pem.expose())
                    .map_err(|_| {
                        config("--github-app-key-file: not a valid RSA private key (PEM)")
                    })?
                    .build()
                    .map_err(build_err)?;
                let inst = app
                    .installation(octocrab::models::InstallationId(*installation_id))
                    .map_err(build_err)?;
                (inst, true, key_pem)
            }
        };
        Ok(GithubClient {
            crab,
            retry: cfg.retry.clone(),
            app,
            secret: secret.clone(),
        })
    }

    /// Removes the secret from a text.
    pub(crate) fn scrub(&self, text: &str) -> String {
        // very short "secrets" would mangle every message; real tokens are long
        match self.secret.expose() {
            s if s.len() >= 8 => text.replace(s, "***"),
            _ => text.to_string(),
        }
    }

    /// Runs `op` with the retry policy: backoff with jitter on 5xx and transport errors,
    /// waits on rate limits up to the deadline, gives up at once on other 4xx.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, StatusError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        let start = Instant::now();
        let mut backoff = self.retry.backoff();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt = async {
                self.refresh_token().await?;
                op().await
            };
            let err = match attempt.await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let (status, headers, message) = error_facts(&err);
            let message = self.scrub(&message);
            let header = |name: &str| {
                headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
            };
            let facts = FailureFacts {
                status,
                retry_after: header("retry-after"),
                ratelimit_remaining: header("x-ratelimit-remaining"),
                ratelimit_reset: header("x-ratelimit-reset"),
                message: &message,
            };
            let verdict = if status.is_none() && !is_transport(&err) {
                // decoding, JWT or URI problems: retrying cannot help
                Verdict::GiveUp
            } else {
                classify(&facts, chrono::Utc::now().timestamp(), &self.retry)
            };
            let unavailable = |message: String| StatusError::Unavailable {
                what: what.to_string(),
                attempts,
                message,
            };
            let wait = match verdict {
                Verdict::GiveUp => {
                    return Err(match status {
                        Some(status) => StatusError::Rejected {
                            what: what.to_string(),
                            status,
                            message,
                        },
                        None => unavailable(message),
                    })
                }
                _ if attempts >= self.retry.attempts => return Err(unavailable(message)),
                Verdict::RateLimited(wait) => wait,
                Verdict::Backoff => match backoff.next() {
                    Some(d) => d,
                    None => return Err(unavailable(message)),
                },
            };
            if start.elapsed() + wait > self.retry.deadline {
                return Err(unavailable(format!(
                    "{message} (GitHub asks to wait {}s, past the {}s deadline)",
                    wait.as_secs(),
                    self.retry.deadline.as_secs()
                )));
            }
            tracing::warn!(
                "{what}: {} (attempt {attempts}/{}); retrying in {:.1}s",
                first_line(&message),
                self.retry.attempts,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `GET route?query` through [`GithubClient::call`].
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        route: &str,
        query: &[(&str, String)],
    ) -> Result<T, StatusError> {
        self.call(what, || self.crab.get(route, Some(query))).await
    }

    /// `POST route` with a JSON body through [`GithubClient::call`].
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        what: &str,
        route: &str,
        body: &serde_json::Value,
    ) -> Result<T, StatusError> {
        self.call(what, || self.crab.post(route, Some(body))).await
    }

    /// `PATCH route` with a JSON body through [`GithubClient::call`].
    pub(crate) async fn patch<T: DeserializeOwned>(
        &self,
        what: &str,
        route: &str,
        body: &serde_json::Value,
    ) -> Result<T, StatusError> {
        self.call(what, || self.crab.patch(route, Some(body))).await
    }

    /// The items of a list GitHub pages (100 a page, `query` added to every page's), read page
    /// by page until a short page ends it or one holds an item `found` accepts; and whether
    /// that happened within [`MAX_PAGES`].
    pub(crate) async fn pages<P: DeserializeOwned, T>(
        &self,
        what: &str,
        route: &str,
        query: &[(&str, String)],
        items: impl Fn(P) -> Vec<T>,
        found: impl Fn(&T) -> bool,
    ) -> Result<(Vec<T>, bool), StatusError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut q = vec![("per_page", "100".to_string()), ("page", page.to_string())];
            q.extend_from_slice(query);
            let list = items(self.get(what, route, &q).await?);
            let done = list.len() < 100 || list.iter().any(&found);
            out.extend(list);
            if done {
                return Ok((out, true));
            }
        }
        Ok((out, false))
    }

    /// App auth: make sure the cached installation token is valid for five more minutes (a
    /// new one is minted before the cached one expires).
    async fn refresh_token(&self) -> Result<(), octocrab::Error> {
        if self.app {
            let margin = chrono::Duration::minutes(5);
            self.crab.installation_token_with_buffer(margin).await?;
        }
        Ok(())
    }
}

/// Connection-level failures (connect, reset, timeout) that a retry may fix.
fn is_transport(err: &octocrab::Error) -> bool {
    matches!(
        err,
        octocrab::Error::Service { .. } | octocrab::Error::Hyper { .. }
    )
}

/// Status, headers and a readable message of an octocrab error (with its cause chain).
fn error_facts(err: &octocrab::Error) -> (Option<u16>, Option<http::HeaderMap>, String) {
    match err {
        octocrab::Error::GitHub { source, .. } => {
            let mut msg = source.message.clone();
            if let Some(errors) = source.errors.as_ref().filter(|e| !e.is_empty()) {
                let parts: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(|m| m.as_str())
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect();
                msg.push_str(": ");
                msg.push_str(&parts.join("; "));
            }
            (
                Some(source.status_code.as_u16()),
                source.headers.clone(),
                msg,
            )
        }
        other => (None, None, crate::error_chain(other, first_line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("ghp_supersecret\n");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let auth = Auth::Token(s.clone());
        assert!(!format!("{auth:?}").contains("supersecret"));
        assert_eq!(s.expose(), "ghp_supersecret");
    }

    #[test]
    fn api_urls() {
        assert_eq!(
            validate_api_url("https://ghe.example.com/api/v3/").unwrap(),
            "https://ghe.example.com/api/v3"
        );
        assert!(validate_api_url("ghe.example.com").is_err());
        assert!(validate_api_url("ftp://x/api").is_err());
        let e = validate_api_url("nope").unwrap_err().to_string();
        assert!(
            e.contains("--github-api-url") && e.contains("/api/v3"),
            "{e}"
        );
    }
}
