//! The `e2e-gate` binary against a wiremock GitHub: `status set` and `promote --dry-run`.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";
const TOKEN: &str = "ghp_CLI_TOKEN_never_printed_42";

async fn run(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
    cmd.env_clear().args(args);
    if let Some(t) = token {
        cmd.env("GITHUB_TOKEN", t);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_set_posts_through_an_enterprise_api_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v3/repos/o/r/commits/{SHA}/statuses")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"context": "e2e-gate/conformance", "state": "pending", "description": "running"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3/repos/o/r/statuses/{SHA}")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;
    let api = format!("{}/api/v3", server.uri());
    let args = [
        "status",
        "set",
        "--repo",
        "o/r",
        "--sha",
        SHA,
        "--context",
        "e2e-gate/conformance",
        "--state",
        "success",
        "--description",
        "409 passed, 2 flaky, 0 failed · 43m",
        "--target-url",
        "https://jenkins/job/1/",
        "--github-api-url",
        &api,
        "--format",
        "json",
    ];
    let (code, stdout, stderr) = run(&args, Some(TOKEN)).await;
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["posted"], true);
    let reqs = server.received_requests().await.unwrap();
    let post = reqs.iter().find(|r| r.method.as_str() == "POST").unwrap();
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        body,
        json!({"state": "success", "context": "e2e-gate/conformance",
               "description": "409 passed, 2 flaky, 0 failed · 43m",
               "target_url": "https://jenkins/job/1/"})
    );
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_set_reports_a_rejection_with_exit_code_4_and_no_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": format!("Bad credentials for {TOKEN}")})),
        )
        .mount(&server)
        .await;
    let args = [
        "status",
        "set",
        "--repo",
        "o/r",
        "--sha",
        SHA,
        "--context",
        "c",
        "--state",
        "error",
        "--github-api-url",
        &server.uri(),
    ];
    let (code, stdout, stderr) = run(&args, Some(TOKEN)).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("Bad credentials"), "{stderr}");
    assert!(
        !stderr.contains(TOKEN) && !stdout.contains(TOKEN),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_dry_run_makes_no_write_calls() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/git/ref/heads/alpha"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": SHA}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/commits/{SHA}/statuses")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"context": "e2e-gate", "state": "success", "created_at": "2026-01-01T00:00:00Z"}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/commits/{SHA}/check-runs")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "check_runs": []})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/compare/beta...{SHA}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ahead"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_s = audit.to_str().unwrap();
    let args = [
        "promote",
        "--repo",
        "o/r",
        "--from",
        "alpha",
        "--to",
        "beta",
        "--require",
        "e2e-gate",
        "--soak",
        "24h",
        "--dry-run",
        "--format",
        "json",
        "--audit-log",
        audit_s,
        "--github-api-url",
        &server.uri(),
    ];
    let (code, stdout, stderr) = run(&args, Some(TOKEN)).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("dry run: would promote"), "{stderr}");
    assert!(
        stderr.contains("PATCH /repos/o/r/git/refs/heads/beta"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["decision"], "promote");
    assert_eq!(v["dry_run"], true);
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs.iter().all(|r| r.method.as_str() == "GET"),
        "write calls were made"
    );
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(lines.lines().count(), 1);
    let line: Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(line["decision"], "promote");
    assert!(line["time"].is_string());

    // a closed gate exits 1 and names the missing context
    let args = [
        "promote",
        "--repo",
        "o/r",
        "--from",
        "alpha",
        "--to",
        "beta",
        "--require",
        "e2e-gate",
        "--require",
        "e2e-gate/upgrade",
        "--dry-run",
        "--github-api-url",
        &server.uri(),
    ];
    let (code, _, stderr) = run(&args, Some(TOKEN)).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("e2e-gate/upgrade: missing"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_without_credentials_is_a_usage_error() {
    let (code, _, stderr) = run(
        &[
            "promote",
            "--repo",
            "o/r",
            "--from",
            "a",
            "--to",
            "b",
            "--require",
            "x",
        ],
        None,
    )
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("GITHUB_TOKEN"), "{stderr}");
}

/// 100 statuses of other contexts, newest first: one page of the list.
fn page_of_others(page: u32) -> Value {
    Value::Array(
        (0..100)
            .map(|i| {
                json!({"context": format!("other/{page}-{i}"), "state": "success",
                            "created_at": "2026-01-02T00:00:00Z"})
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_set_finds_its_context_behind_a_full_page_and_posts_no_duplicate() {
    // Regression: dedup read one page of 100 statuses; with 100 newer statuses of other
    // contexts it did not see its own and posted a duplicate.
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    let route = format!("/repos/o/r/commits/{SHA}/statuses");
    Mock::given(method("GET"))
        .and(path(route.clone()))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page_of_others(1)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(route))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"context": "e2e-gate/conformance", "state": "success", "description": "same"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(0)
        .mount(&server)
        .await;
    let args = [
        "status",
        "set",
        "--repo",
        "o/r",
        "--sha",
        SHA,
        "--context",
        "e2e-gate/conformance",
        "--state",
        "success",
        "--description",
        "same",
        "--github-api-url",
        &server.uri(),
        "--format",
        "json",
    ];
    let (code, stdout, stderr) = run(&args, Some(TOKEN)).await;
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["posted"], false, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_reads_every_page_of_statuses() {
    // Regression: promote stopped after 10 pages (1000 statuses); a required context further
    // down looked missing.
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/git/ref/heads/alpha"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": {"sha": SHA}})))
        .mount(&server)
        .await;
    let route = format!("/repos/o/r/commits/{SHA}/statuses");
    for page in 1..=11u32 {
        Mock::given(method("GET"))
            .and(path(route.clone()))
            .and(query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(page_of_others(page)))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(route))
        .and(query_param("page", "12"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"context": "e2e-gate", "state": "success", "created_at": "2026-01-01T00:00:00Z"}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/commits/{SHA}/check-runs")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "check_runs": []})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/o/r/compare/beta...{SHA}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ahead"})))
        .mount(&server)
        .await;
    let args = [
        "promote",
        "--repo",
        "o/r",
        "--from",
        "alpha",
        "--to",
        "beta",
        "--require",
        "e2e-gate",
        "--soak",
        "24h",
        "--dry-run",
        "--github-api-url",
        &server.uri(),
        "--format",
        "json",
    ];
    let (code, stdout, stderr) = run(&args, Some(TOKEN)).await;
    assert_eq!(
        code, 0,
        "the context on page 12 was found: {stdout}\n{stderr}"
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["decision"], "promote", "{v}");
}
