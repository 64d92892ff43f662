//! `?watch=1` streams: newline-delimited watch events, replay from a
//! resourceVersion (410 Gone when too old), initial events for `resourceVersion=0`
//! or `sendInitialEvents=true`, periodic BOOKMARKs and `timeoutSeconds`.

use super::super::resources::RESOURCES;
use super::super::selector::{FieldSelector, LabelSelector};
use super::super::store::{meta_str, EventType, WatchEvent};
use super::super::Sim;
use super::{error_response, ApiError, Target};
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
    ls: Option<LabelSelector>,
    fs: Option<FieldSelector>,
}

impl Filter {
    fn matches(&self, res: usize, obj: &Value) -> bool {
        res == self.res
            && self
                .ns
                .as_deref()
                .is_none_or(|ns| meta_str(obj, "namespace") == Some(ns))
            && self.ls.as_ref().is_none_or(|s| s.matches(obj))
            && self.fs.as_ref().is_none_or(|s| s.matches(obj))
    }
}

fn line(etype: &str, obj: &Value) -> Bytes {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(etype.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    let _ = serde_json::to_writer(&mut out, obj);
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
pub(super) fn watch(sim: Arc<Sim>, t: Target, query: HashMap<String, String>) -> Response {
    let def = &RESOURCES[t.res];
    let parse = || -> Result<Filter, ApiError> {
        Ok(Filter {
            res: t.res,
            ns: t.ns.clone().filter(|_| def.namespaced),
            ls: match query.get("labelSelector") {
                Some(s) if !s.is_empty() => {
                    Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?)
                }
                _ => None,
            },
            fs: match query.get("fieldSelector") {
                Some(s) if !s.is_empty() => {
                    Some(FieldSelector::parse(s).map_err(ApiError::bad_request)?)
                }
                _ => None,
            },
        })
    };
    let filter = match parse() {
        Ok(f) => f,
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
                        if filter.matches(ev.res, &ev.object) {
                            first.push(line(ev.etype.as_str(), &ev.object));
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
                    first.push(line("ERROR", &gone.to_status()));
                    drop(st);
                    return stream_response(first, None);
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
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bm = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                _ = sim.shutdown.cancelled() => break,
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = bm.tick() => {
                    if bookmarks && tx.send(bookmark(filter.res, last_rv, false)).await.is_err() {
                        break;
                    }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        let ev: Arc<WatchEvent> = ev;
                        last_rv = ev.rv;
                        if filter.matches(ev.res, &ev.object) {
                            let etype = match ev.etype {
                                EventType::Added => "ADDED",
                                EventType::Modified => "MODIFIED",
                                EventType::Deleted => "DELETED",
                            };
                            if tx.send(line(etype, &ev.object)).await.is_err() {
                                break;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let gone = ApiError::new(410, "Expired", "watch fell behind: too old resource version");
                        let _ = tx.send(line("ERROR", &gone.to_status())).await;
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    });
    stream_response(Vec::new(), Some(body_rx))
}

fn stream_response(first: Vec<Bytes>, rx: Option<mpsc::Receiver<Bytes>>) -> Response {
    let head = futures::stream::iter(first.into_iter().map(Ok::<_, std::io::Error>));
    let tail = futures::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        let b = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(b), Some(rx)))
    });
    use futures::StreamExt;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(head.chain(tail)))
        .expect("response")
}
