//! `?watch=1` streams: newline-delimited watch events, replay from a
//! resourceVersion (410 Gone when too old), initial events for `resourceVersion=0`
//! or `sendInitialEvents=true`, periodic BOOKMARKs and `timeoutSeconds`.

use super::super::resources::RESOURCES;
use super::super::store::{meta_str, EventType, WatchEvent};
use super::super::Sim;
use super::{error_response, ApiError, Selectors, Target};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

struct Filter {
    res: usize,
    ns: Option<String>,
    selectors: Selectors,
}

impl Filter {
    fn matches(&self, res: usize, obj: &Value) -> bool {
        res == self.res
            && self
                .ns
                .as_deref()
                .is_none_or(|ns| meta_str(obj, "namespace") == Some(ns))
            && self.selectors.matches(obj)
    }

    /// The event type this watcher sees (a change that moves an object into or out
    /// of the selection is ADDED or DELETED, as on a real API server).
    fn event_type(&self, ev: &WatchEvent) -> Option<&'static str> {
        let now = self.matches(ev.res, &ev.object);
        match ev.etype {
            EventType::Modified => {
                let before = ev.prev.as_ref().is_some_and(|p| self.matches(ev.res, p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
            other => now.then_some(other.as_str()),
        }
    }
}

fn line(etype: &str, obj: &Value) -> Bytes {
    line_bytes(
        etype,
        &Bytes::from(serde_json::to_vec(obj).unwrap_or_default()),
    )
}

fn line_bytes(etype: &str, obj: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(obj.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(etype.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(obj);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(res: usize, rv: u64, initial_end: bool) -> Bytes {
    let def = &RESOURCES[res];
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
    )
}

/// Starts a watch stream.
pub(super) fn watch(sim: Arc<Sim>, t: &Target, query: &HashMap<String, String>) -> Response {
    let filter = match Selectors::from_query(query) {
        Ok(selectors) => Filter {
            res: t.res,
            // Only namespaced resources are found under `namespaces/<ns>/` (see `parse_target`).
            ns: t.ns.clone(),
            selectors,
        },
        Err(e) => return error_response(&e),
    };
    let flag = |k: &str| matches!(query.get(k).map(String::as_str), Some("1" | "true"));
    let send_initial = flag("sendInitialEvents");
    let bookmarks = flag("allowWatchBookmarks");
    let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let mut first: Vec<Bytes> = Vec::new();
    let (mut rx, start_rv) = {
        let st = sim.state.lock();
        let cur = st.store.rv();
        if rv_param.is_empty() || rv_param == "0" || send_initial {
            for o in st.store.list(t.res, filter.ns.as_deref()) {
                if filter.matches(t.res, &o) {
                    first.push(line("ADDED", &o));
                }
            }
            let (rx, _) = st.store.subscribe(cur);
            if send_initial {
                first.push(bookmark(t.res, cur, true));
            }
            (rx, cur)
        } else {
            let Ok(after) = rv_param.parse::<u64>() else {
                return error_response(&ApiError::bad_request(format!(
                    "invalid resource version: {rv_param:?}"
                )));
            };
            let (rx, hist) = st.store.subscribe(after);
            match hist {
                Some(events) => {
                    for ev in events {
                        if let Some(etype) = filter.event_type(&ev) {
                            first.push(line(etype, &ev.object));
                        }
                    }
                    (rx, cur.max(after))
                }
                None => {
                    let gone = ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {after} ({cur})"),
                    );
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.try_send(line("ERROR", &gone.to_status()));
                    return stream_response(rx);
                }
            }
        }
    };
    let (tx, body_rx) = mpsc::channel::<Bytes>(1024);
    let interval = sim.bookmark_interval;
    tokio::spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let mut last_rv = start_rv;
        let mut reason = "closed";
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bm = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                _ = sim.shutdown.cancelled() => { reason = "shutdown"; break }
                _ = &mut deadline => { reason = "timeout"; break }
                _ = tx.closed() => { reason = "client_gone"; break }
                _ = bm.tick() => {
                    if bookmarks && tx.send(bookmark(filter.res, last_rv, false)).await.is_err() {
                        reason = "client_gone";
                        break;
                    }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        let ev: Arc<WatchEvent> = ev;
                        last_rv = ev.rv;
                        if let Some(etype) = filter.event_type(&ev) {
                            let obj = sim.object_json(&ev.object);
                            if tx.send(line_bytes(etype, &obj)).await.is_err() {
                                reason = "client_gone";
                                break;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let gone = ApiError::new(410, "Expired", "watch fell behind: too old resource version");
                        let _ = tx.send(line("ERROR", &gone.to_status())).await;
                        reason = "lagged";
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
        *sim.state
            .lock()
            .metrics
            .watch_closed
            .entry(reason.to_string())
            .or_default() += 1;
    });
    stream_response(body_rx)
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let body = futures::stream::unfold(rx, |mut rx| async move {
        let b = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(b), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(body))
        .expect("response")
}
