//! `e2e-gate run` posting commit statuses: the real binary, the real Docker engine with the
//! fixture image, and the real octocrab client against a wiremock GitHub (Enterprise path).

mod common;

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const IMAGE: &str = "e2e-gate-fixture:latest";
const TOKEN: &str = "ghp_RUN_TOKEN_never_printed_7";

fn docker_ready() -> bool {
    common::docker_image(IMAGE, "run ci/build-fixture-image.sh (ci/test.sh does)")
}

struct Setup {
    dir: tempfile::TempDir,
    suite: String,
}

fn setup(tag: &str, focus: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let suite = format!("gh-{tag}-{}", std::process::id());
    std::fs::create_dir(dir.path().join("suites")).unwrap();
    std::fs::write(
        dir.path().join("suites/s.toml"),
        format!(
            "name = \"{suite}\"\nimage = \"{IMAGE}\"\ncontract = \"conformance-image\"\nginkgo = \"v1\"\nfocus = ['{focus}']\nstall_timeout = \"10m\"\n"
        ),
    )
    .unwrap();
    Setup { dir, suite }
}

fn command(s: &Setup, api: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-gate"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GITHUB_TOKEN", TOKEN)
        .env("BUILD_URL", "https://jenkins.example/job/pr-1/7/")
        .arg("--suites-dir")
        .arg(s.dir.path().join("suites"))
        .args(["--suite", &s.suite, "--artifacts"])
        .arg(s.dir.path().join("artifacts"))
        .args([
            "--github-repo",
            "team/clusters",
            "--sha",
            SHA,
            "--github-api-url",
            api,
        ]);
    c
}

/// (context, state, description) of every status POST, in order.
async fn posted(server: &MockServer) -> Vec<(String, String, String)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["context"].as_str().unwrap().to_string(),
                b["state"].as_str().unwrap().to_string(),
                b["description"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn github(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3/repos/team/clusters/statuses/{SHA}")))
        .respond_with(
            ResponseTemplate::new(status).set_body_json(json!({"id": 1, "message": "boom"})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_posts_pending_then_final_statuses_per_suite_and_aggregate() {
    if !docker_ready() {
        return;
    }
    let server = github(201).await;
    let s = setup("ok", r"\[Fixture\] basics passes instantly");
    let out = command(&s, &format!("{}/api/v3", server.uri()))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains(TOKEN));
    let ctx = format!("e2e-gate/{}", s.suite);
    let posts = posted(&server).await;
    let states: Vec<(&str, &str)> = posts
        .iter()
        .map(|(c, st, _)| (c.as_str(), st.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("e2e-gate", "pending"),
            (ctx.as_str(), "pending"),
            (ctx.as_str(), "success"),
            ("e2e-gate", "success")
        ]
    );
    let (_, _, final_desc) = &posts[2];
    assert!(final_desc.starts_with("1 passed"), "{final_desc}");
    assert!(posts.iter().all(|(_, _, d)| d.chars().count() <= 140));
    let body: Value = serde_json::from_slice(
        &server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .find(|r| r.method.as_str() == "POST")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(body["target_url"], "https://jenkins.example/job/pr-1/7/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_suite_names_the_first_failed_spec() {
    if !docker_ready() {
        return;
    }
    let server = github(201).await;
    let s = setup("fail", r"always fails");
    let out = command(&s, &format!("{}/api/v3", server.uri()))
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts = posted(&server).await;
    let (_, state, desc) = &posts[2];
    assert_eq!(state, "failure");
    assert!(desc.contains("always fails"), "{desc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_pending_statuses_into_aborted_errors() {
    if !docker_ready() {
        return;
    }
    let server = github(201).await;
    let s = setup("abort", r"\[Hang\]");
    let child = command(&s, &format!("{}/api/v3", server.uri()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while posted(&server).await.len() < 2 {
        assert!(Instant::now() < deadline, "pending statuses never posted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts = posted(&server).await;
    let finals: Vec<&(String, String, String)> = posts.iter().skip(2).collect();
    assert_eq!(finals.len(), 2, "{posts:?}");
    assert!(
        finals
            .iter()
            .all(|(_, st, d)| st == "error" && d == "aborted"),
        "{posts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_that_cannot_be_posted_gives_exit_4_not_a_test_failure() {
    if !docker_ready() {
        return;
    }
    let server = github(422).await;
    let s = setup("reject", r"\[Fixture\] basics passes instantly");
    let out = command(&s, &format!("{}/api/v3", server.uri()))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("GitHub status"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.path().join("artifacts/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["result"], "passed");
}
