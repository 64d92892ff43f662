//! Promotion through the real octocrab client against a wiremock GitHub.

use chrono::{Duration as CDuration, Utc};
use e2e_gate::promote::{promote, Decision, GithubPromotionApi, Mode, PromoteRequest, Reason};
use e2e_gate::status::{Auth, ClientConfig, GithubClient, RetryPolicy, Secret, StatusError};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_json, body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEAD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CONF: &str = "e2e-gate/conformance";

fn api(server: &MockServer) -> GithubPromotionApi {
    let mut cfg = ClientConfig::new(server.uri(), Auth::Token(Secret::new("t")));
    cfg.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        deadline: Duration::from_secs(5),
        default_rate_limit_wait: Duration::from_secs(1),
    };
    GithubPromotionApi::new(
        Arc::new(GithubClient::new(&cfg).unwrap()),
        "o/r".parse().unwrap(),
    )
}

fn request(mode: Mode) -> PromoteRequest {
    PromoteRequest {
        repo: "o/r".parse().unwrap(),
        from: "alpha".into(),
        to: "beta".into(),
        required: vec![CONF.into(), "lint".into()],
        soak: Some(Duration::from_secs(24 * 3600)),
        mode,
        dry_run: false,
        target_url: Some("https://jenkins/job/promote/1/".into()),
    }
}

fn ago(hours: i64) -> String {
    (Utc::now() - CDuration::hours(hours)).to_rfc3339()
}

fn status(context: &str, state: &str, hours_ago: i64) -> Value {
    json!({"context": context, "state": state, "created_at": ago(hours_ago),
           "description": "", "target_url": null, "id": 1})
}

fn check(name: &str, status: &str, conclusion: Option<&str>, hours_ago: i64) -> Value {
    json!({"name": name, "status": status, "conclusion": conclusion,
           "started_at": ago(hours_ago + 1), "completed_at": ago(hours_ago)})
}

/// Mounts the read side: branch head, statuses, check runs, comparison.
async fn mount_reads(server: &MockServer, statuses: Value, checks: Value, ancestry: &str) {
    Mock::given(method("GET"))
        .and(path("/repos/o/r/git/ref/heads/alpha"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ref": "refs/heads/alpha", "object": {"sha": HEAD, "type": "commit"}}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/commits/{HEAD}/statuses")))
        .respond_with(ResponseTemplate::new(200).set_body_json(statuses))
        .mount(server)
        .await;
    let n = checks.as_array().map(|a| a.len()).unwrap_or(0);
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/commits/{HEAD}/check-runs")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": n, "check_runs": checks})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/compare/beta...{HEAD}")))
        .and(query_param("per_page", "1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": ancestry, "ahead_by": 3, "behind_by": 0})),
        )
        .mount(server)
        .await;
}

async fn green(server: &MockServer, ancestry: &str) {
    mount_reads(
        server,
        json!([status(CONF, "success", 30), status(CONF, "pending", 31)]),
        json!([check("lint", "completed", Some("success"), 48)]),
        ancestry,
    )
    .await;
}

async fn writes(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() != "GET")
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

#[tokio::test]
async fn fast_forward_promotion_updates_the_ref_and_posts_promoted_to() {
    let server = MockServer::start().await;
    green(&server, "ahead").await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/git/refs/heads/beta"))
        .and(body_json(json!({"sha": HEAD, "force": false})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ref": "refs/heads/beta", "object": {"sha": HEAD, "type": "commit"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/o/r/statuses/{HEAD}")))
        .and(body_partial_json(json!({
            "context": "e2e-gate/promoted-to-beta", "state": "success",
            "target_url": "https://jenkins/job/promote/1/"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 2})))
        .expect(1)
        .mount(&server)
        .await;
    let out = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.sha, HEAD);
    assert!(out.status_error.is_none());
    assert_eq!(
        writes(&server).await,
        vec![
            "PATCH /repos/o/r/git/refs/heads/beta".to_string(),
            format!("POST /repos/o/r/statuses/{HEAD}")
        ]
    );
}

#[tokio::test]
async fn gate_closed_lists_failing_pending_and_missing_contexts() {
    let server = MockServer::start().await;
    mount_reads(
        &server,
        json!([
            status(CONF, "failure", 1),
            status(CONF, "success", 30),
            status("e2e-gate/upgrade", "pending", 1)
        ]),
        json!([check("lint", "completed", Some("success"), 48)]),
        "ahead",
    )
    .await;
    let mut req = request(Mode::FastForward);
    req.required = vec![
        CONF.into(),
        "E2E-GATE/UPGRADE".into(),
        "lint".into(),
        "e2e-gate/storage".into(),
    ];
    let out = promote(&api(&server), &req, Utc::now()).await.unwrap();
    let Decision::Closed { reasons } = &out.decision else {
        panic!("{:?}", out.decision)
    };
    let shown: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "e2e-gate/conformance: failure (status)",
            "E2E-GATE/UPGRADE: pending",
            "e2e-gate/storage: missing (never reported on this commit)",
        ]
    );
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn gate_closed_until_the_soak_time_is_reached() {
    let server = MockServer::start().await;
    mount_reads(
        &server,
        json!([status(CONF, "success", 2)]),
        json!([check("lint", "completed", Some("success"), 48)]),
        "ahead",
    )
    .await;
    let out = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap();
    let Decision::Closed { reasons } = &out.decision else {
        panic!("{:?}", out.decision)
    };
    assert_eq!(reasons.len(), 1);
    match &reasons[0] {
        Reason::Soak {
            context,
            remaining_secs,
        } => {
            assert_eq!(context, CONF);
            assert!(
                (22 * 3600..=22 * 3600 + 60).contains(remaining_secs),
                "{remaining_secs}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn a_target_that_moves_is_re_evaluated_once_then_refused() {
    let server = MockServer::start().await;
    green(&server, "ahead").await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/git/refs/heads/beta"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Update is not a fast forward",
            "documentation_url": "https://docs.github.com/rest/git/refs#update-a-reference"})))
        .expect(2)
        .mount(&server)
        .await;
    let out = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap();
    let Decision::Closed { reasons } = &out.decision else {
        panic!("{:?}", out.decision)
    };
    assert!(
        matches!(reasons[0], Reason::TargetMoved { .. }),
        "{reasons:?}"
    );
    let reqs = server.received_requests().await.unwrap();
    let head_reads = reqs
        .iter()
        .filter(|r| r.url.path() == "/repos/o/r/git/ref/heads/alpha")
        .count();
    assert_eq!(head_reads, 2, "re-evaluated once");
    assert!(!writes(&server).await.iter().any(|w| w.starts_with("POST")));
}

#[tokio::test]
async fn a_target_that_moved_once_is_promoted_after_re_evaluation() {
    let server = MockServer::start().await;
    green(&server, "ahead").await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Update is not a fast forward"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": HEAD}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&server)
        .await;
    let out = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Promote);
}

#[tokio::test]
async fn diverged_channels_are_refused_in_fast_forward_mode() {
    let server = MockServer::start().await;
    green(&server, "diverged").await;
    let out = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap();
    let Decision::Closed { reasons } = &out.decision else {
        panic!("{:?}", out.decision)
    };
    assert!(
        matches!(&reasons[0], Reason::NotFastForward { ancestry, .. } if ancestry == "diverged"),
        "{reasons:?}"
    );
    assert!(reasons[0].to_string().contains("--mode pull-request"));
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn identical_is_nothing_to_do() {
    let server = MockServer::start().await;
    green(&server, "identical").await;
    let out = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap();
    assert!(matches!(out.decision, Decision::NothingToDo { .. }));
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn pull_request_mode_opens_a_promotion_pr() {
    let server = MockServer::start().await;
    green(&server, "diverged").await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("head", "o:alpha"))
        .and(query_param("base", "beta"))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .and(body_partial_json(
            json!({"head": "alpha", "base": "beta", "title": "Promote alpha to beta"}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 17, "html_url": "https://github.com/o/r/pull/17"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = promote(&api(&server), &request(Mode::PullRequest), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(
        out.pull_request.unwrap().url,
        "https://github.com/o/r/pull/17"
    );
}

#[tokio::test]
async fn pull_request_mode_updates_the_existing_pr() {
    let server = MockServer::start().await;
    green(&server, "ahead").await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"number": 9, "html_url": "https://github.com/o/r/pull/9"}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/pulls/9"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"number": 9, "html_url": "https://github.com/o/r/pull/9"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = promote(&api(&server), &request(Mode::PullRequest), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.pull_request.unwrap().number, 9);
    assert_eq!(writes(&server).await, vec!["PATCH /repos/o/r/pulls/9"]);
}

#[tokio::test]
async fn dry_run_decides_and_lists_calls_but_writes_nothing() {
    let server = MockServer::start().await;
    green(&server, "ahead").await;
    let mut req = request(Mode::FastForward);
    req.dry_run = true;
    let out = promote(&api(&server), &req, Utc::now()).await.unwrap();
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.calls.len(), 2, "{:?}", out.calls);
    assert!(out.calls[0].starts_with("PATCH /repos/o/r/git/refs/heads/beta"));
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn missing_branch_is_an_infrastructure_error_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    let err = promote(&api(&server), &request(Mode::FastForward), Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StatusError::Rejected { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("GET branch alpha"), "{err}");
}
