//! Simulator benchmarks (`cargo bench --bench sim`): start-up of a 1,000-node /
//! 10,000-pod topology until every pod is Ready, LIST of all pods, and the server's
//! RSS with 20 watchers. The server runs as its own process (`cluster serve-sim`),
//! so the RSS is the simulator's alone.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn get_json(client: &Client, path: &str) -> serde_json::Value {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    client.request::<serde_json::Value>(req).await.unwrap()
}

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let topo = root.join("fixtures/sim/large.toml");
    let state = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-gate"))
        .args(["cluster", "serve-sim", "--name", "bench", "--state-dir"])
        .arg(state.path())
        .arg("--topology")
        .arg(&topo)
        .env("E2E_GATE_LOG", "warn")
        .spawn()
        .unwrap();
    let state_file = state.path().join("state.json");
    let url = loop {
        if let Ok(t) = std::fs::read_to_string(&state_file) {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            break v["api_url"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let api_up = t0.elapsed();
    let mut config = kube::Config::new(url.parse().unwrap());
    config.default_retry = false;
    config.read_timeout = Some(Duration::from_secs(120));
    let client = Client::try_from(config).unwrap();
    loop {
        let m = get_json(&client, "/sim/metrics").await;
        let o = &m["objects"];
        if o["pods_ready"].as_u64() == Some(10_000) && o["nodes_ready"].as_u64() == Some(1_000) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "not ready after 120 s: {o}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_ready = t0.elapsed();
    println!(
        "start: API answering after {:.2} s; 1,000 nodes + 10,000 pods Ready after {:.2} s",
        api_up.as_secs_f64(),
        all_ready.as_secs_f64()
    );

    // LIST all pods (full JSON body read by the client): once right after the
    // start-up burst (serialisation cache cold), then in steady state.
    let t = Instant::now();
    let req = http::Request::get("/api/v1/pods").body(Vec::new()).unwrap();
    client.request_text(req).await.unwrap();
    let cold = t.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let req = http::Request::get("/api/v1/pods").body(Vec::new()).unwrap();
        let body = client.request_text(req).await.unwrap();
        times.push(t.elapsed());
        bytes = body.len();
    }
    times.sort();
    println!(
        "LIST /api/v1/pods (10,000 pods, {:.1} MB): right after start-up {:.0} ms; steady state (7 runs) min {:.0} ms, median {:.0} ms, max {:.0} ms",
        bytes as f64 / 1e6,
        cold.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    let rss_idle = rss_mib(child.id());

    // 20 watchers (kube::runtime::watcher on all pods), then churn.
    let events = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let api: Api<Pod> = Api::all(client.clone());
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default()).boxed();
            while let Ok(Some(_)) = s.try_next().await {
                events.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let tw = Instant::now();
    loop {
        let m = get_json(&client, "/sim/metrics").await;
        if m["watchers"].as_u64() >= Some(20) || tw.elapsed() > Duration::from_secs(60) {
            println!(
                "watchers: {} watch streams open {:.1} s after starting 20 kube watchers",
                m["watchers"],
                tw.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    for replicas in [4000, 4500] {
        let p = serde_json::json!({"spec": {"replicas": replicas}});
        deploys
            .patch(
                "web",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&p),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let m = get_json(&client, "/sim/metrics").await;
    let rss_watch = rss_mib(child.id());
    println!(
        "memory: RSS {:.0} MiB idle, {:.0} MiB with {} watch streams open after {} watch events delivered (closed streams: {})",
        rss_idle,
        rss_watch,
        m["watchers"],
        events.load(Ordering::Relaxed),
        m["watch_closed"]
    );
    for t in tasks {
        t.abort();
    }
    // SAFETY: SIGTERM to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}
