//! Commit statuses through the real octocrab client against a wiremock GitHub.

use e2e_gate::cli::github_args::{reporter_from_args, AuthArgs, GithubArgs};
use e2e_gate::status::{
    Auth, ClientConfig, GithubClient, GithubStatusReporter, RetryPolicy, Secret, StatusError,
    StatusPublisher, StatusReporter, StatusState,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SHA: &str = "1111111111111111111111111111111111111111";
const TOKEN: &str = "ghp_TESTTOKEN_must_never_leak_0123456789";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(10),
        default_rate_limit_wait: Duration::from_secs(1),
    }
}

fn client(api_url: String, auth: Auth) -> Arc<GithubClient> {
    let mut cfg = ClientConfig::new(api_url, auth);
    cfg.retry = fast_retry();
    Arc::new(GithubClient::new(&cfg).unwrap())
}

fn token_client(api_url: String) -> Arc<GithubClient> {
    client(api_url, Auth::Token(Secret::new(TOKEN)))
}

fn reporter(api_url: String) -> Arc<GithubStatusReporter> {
    Arc::new(GithubStatusReporter::new(
        token_client(api_url),
        "o/r".parse().unwrap(),
        SHA.into(),
    ))
}

fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"id": 1, "state": "pending"}))
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn posts_statuses_under_an_enterprise_path_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3/repos/o/r/statuses/{SHA}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(created())
        .expect(2)
        .mount(&server)
        .await;
    let p = StatusPublisher::new(
        reporter(format!("{}/api/v3", server.uri())),
        Some("https://jenkins/job/7/".into()),
    );
    p.pending("e2e-gate/conformance", "running").await;
    p.finish(
        "e2e-gate/conformance",
        StatusState::Success,
        "409 passed, 2 flaky, 0 failed · 43m",
    )
    .await;
    assert!(p.errors().is_empty(), "{:?}", p.errors());
    let b = bodies(&server).await;
    assert_eq!(
        b[0],
        json!({"state": "pending", "context": "e2e-gate/conformance", "description": "running",
               "target_url": "https://jenkins/job/7/"})
    );
    assert_eq!(b[1]["state"], "success");
    assert_eq!(b[1]["description"], "409 passed, 2 flaky, 0 failed · 43m");
}

#[tokio::test]
async fn descriptions_are_cut_at_140_characters() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created())
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    let long = "ünïcödé ".repeat(40);
    p.finish("ctx", StatusState::Failure, &long).await;
    let b = bodies(&server).await;
    let d = b[0]["description"].as_str().unwrap();
    assert_eq!(d.chars().count(), 140);
    assert!(d.ends_with('…'));
}

#[tokio::test]
async fn identical_statuses_are_posted_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created())
        .expect(3)
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    p.pending("ctx", "running").await;
    p.pending("CTX", "running").await;
    p.finish("ctx", StatusState::Success, "ok").await;
    p.finish("ctx", StatusState::Success, "ok").await;
    p.finish("ctx", StatusState::Failure, "now failed").await;
}

#[tokio::test]
async fn abort_turns_pending_into_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created())
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    p.pending("e2e-gate", "running").await;
    p.pending("e2e-gate/a", "running").await;
    p.pending("e2e-gate/b", "running").await;
    p.finish("e2e-gate/a", StatusState::Success, "1 passed")
        .await;
    p.abort().await;
    let b = bodies(&server).await;
    let errors: Vec<(&str, &str)> = b
        .iter()
        .filter(|b| b["state"] == "error")
        .map(|b| {
            (
                b["context"].as_str().unwrap(),
                b["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![("e2e-gate", "aborted"), ("e2e-gate/b", "aborted")]
    );
    assert!(p.pending_contexts().is_empty());
}

#[tokio::test]
async fn jenkins_pr_build_posts_on_the_pr_head_not_the_merge_commit() {
    let server = MockServer::start().await;
    let head = "2222222222222222222222222222222222222222";
    let merge = "3333333333333333333333333333333333333333";
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls/42"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"number": 42, "head": {"sha": head, "ref": "feature"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/o/r/statuses/{head}")))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;
    let env: HashMap<String, String> = [
        ("GITHUB_TOKEN", TOKEN),
        ("CHANGE_ID", "42"),
        ("GIT_COMMIT", merge),
        ("GIT_URL", "https://github.com/o/r.git"),
        ("BUILD_URL", "https://jenkins/job/pr-42/3/"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let args = GithubArgs {
        auth: AuthArgs {
            github_api_url: Some(server.uri()),
            ..AuthArgs::default()
        },
        ..GithubArgs::default()
    };
    let (rep, target_url) = reporter_from_args(&args, &env).await.unwrap().unwrap();
    assert_eq!(target_url.as_deref(), Some("https://jenkins/job/pr-42/3/"));
    let p = StatusPublisher::new(rep, target_url);
    p.pending("e2e-gate", "running").await;
    assert!(p.errors().is_empty(), "{:?}", p.errors());

    // without a repository or commit: nothing is posted
    let none = reporter_from_args(&GithubArgs::default(), &HashMap::new())
        .await
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    p.finish("ctx", StatusState::Success, "ok").await;
    assert!(p.errors().is_empty(), "{:?}", p.errors());
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let r = reporter(server.uri());
    let err = r
        .post(&e2e_gate::status::CommitStatus {
            context: "ctx".into(),
            state: StatusState::Success,
            description: "ok".into(),
            target_url: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StatusError::Unavailable { attempts: 4, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn secondary_rate_limit_waits_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "1")
                .set_body_json(json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                })),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    let start = Instant::now();
    p.finish("ctx", StatusState::Success, "ok").await;
    assert!(p.errors().is_empty(), "{:?}", p.errors());
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn rate_limit_beyond_the_deadline_is_reported_not_waited() {
    let server = MockServer::start().await;
    let reset = chrono::Utc::now().timestamp() + 3600;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    let start = Instant::now();
    p.finish("ctx", StatusState::Success, "ok").await;
    assert!(start.elapsed() < Duration::from_secs(5));
    let errors = p.errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("deadline"), "{errors:?}");
}

#[tokio::test]
async fn validation_errors_are_not_retried_and_show_githubs_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Status", "code": "custom",
                        "message": "This SHA and context has reached the maximum number of statuses."}],
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = StatusPublisher::new(reporter(server.uri()), None);
    p.finish("ctx", StatusState::Success, "ok").await;
    let errors = p.errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("422"), "{errors:?}");
    assert!(
        errors[0].contains("maximum number of statuses"),
        "{errors:?}"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_token_never_appears_in_logs_or_errors() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    // a transient failure (logged as a retry), then a server that echoes the token back
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": format!("Bad credentials: token {TOKEN} is not valid")
        })))
        .mount(&server)
        .await;
    let c = token_client(server.uri());
    let rep = GithubStatusReporter::new(c.clone(), "o/r".parse().unwrap(), SHA.into());
    let p = StatusPublisher::new(Arc::new(rep.clone()), None);
    p.finish("ctx", StatusState::Failure, "1 failed").await;
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("Bad credentials"), "{errors:?}");
    let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("retrying"), "{log}");
    for text in [errors.join("\n"), log, format!("{c:?}"), format!("{rep:?}")] {
        assert!(!text.contains(TOKEN), "token leaked in: {text}");
        assert!(!text.contains("TESTTOKEN"), "token leaked in: {text}");
    }
    // and it was really sent
    let sent = server.received_requests().await.unwrap();
    assert_eq!(
        sent[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {TOKEN}")
    );
}

#[tokio::test]
async fn app_installation_tokens_are_minted_and_refreshed_before_expiry() {
    let server = MockServer::start().await;
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339();
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    Mock::given(method("POST"))
        .and(path("/api/v3/app/installations/99/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"token": "ghs_first", "expires_at": soon, "permissions": {"statuses": "write"}}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/app/installations/99/access_tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"token": "ghs_second", "expires_at": later, "permissions": {"statuses": "write"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3/repos/o/r/statuses/{SHA}")))
        .and(body_partial_json(json!({"context": "ctx"})))
        .respond_with(created())
        .expect(3)
        .mount(&server)
        .await;
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/github/test-app-key.pem"
    ))
    .unwrap();
    let c = client(
        format!("{}/api/v3", server.uri()),
        Auth::App {
            app_id: 12345,
            key_pem: Secret::new(pem),
            installation_id: 99,
        },
    );
    let rep = GithubStatusReporter::new(c, "o/r".parse().unwrap(), SHA.into());
    let start = Instant::now();
    for (i, state) in [
        StatusState::Pending,
        StatusState::Failure,
        StatusState::Error,
    ]
    .into_iter()
    .enumerate()
    {
        rep.post(&e2e_gate::status::CommitStatus {
            context: "ctx".into(),
            state,
            description: format!("step {i}"),
            target_url: None,
        })
        .await
        .unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "posts are spaced by at least a second"
    );
    let reqs: Vec<Request> = server.received_requests().await.unwrap();
    let auth = |r: &Request| {
        r.headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let minted: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/access_tokens"))
        .collect();
    assert_eq!(minted.len(), 2, "first token expires within the margin");
    for r in &minted {
        assert!(auth(r).starts_with("Bearer ey"), "app JWT expected");
    }
    let used: Vec<String> = reqs
        .iter()
        .filter(|r| r.url.path().contains("/statuses/"))
        .map(auth)
        .collect();
    assert_eq!(
        used,
        vec!["Bearer ghs_first", "Bearer ghs_second", "Bearer ghs_second"]
    );
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = reporter(format!("http://127.0.0.1:{port}"));
    let err = r
        .post(&e2e_gate::status::CommitStatus {
            context: "ctx".into(),
            state: StatusState::Pending,
            description: "running".into(),
            target_url: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StatusError::Unavailable { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(TOKEN));
}
