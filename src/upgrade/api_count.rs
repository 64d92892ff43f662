//! Counts every kube API call by verb: a tower [`Layer`] on the kube client's service
//! stack, so the report's `kube_api_calls` are measured, not estimated.
//!
//! Verbs: `list`, `watch`, `get`, `create`, `update`, `patch`, `delete`,
//! `deletecollection`, `evict` (POST …/pods/NAME/eviction), `cloud` (the simulator's
//! cloud API under `/sim`, reported separately), `other`.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Calls by verb or operation, shared: clones count into the same map (the kube client's
/// layer, and each cloud's [`super::pool::NodePool::cloud_calls`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiCallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl ApiCallCounter {
    pub(crate) fn record(&self, op: &str) {
        *self.0.lock().entry(op.to_string()).or_default() += 1;
    }

    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().clone()
    }
}

/// The Kubernetes verb of a request, from its method and path.
pub(crate) fn verb_of(method: &http::Method, uri: &http::Uri) -> &'static str {
    let query = uri.query().unwrap_or("");
    let is_watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    // Resource segments after /api/v1 or /apis/GROUP/VERSION, without namespaces/NS.
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    if segs.first() == Some(&"sim") {
        return "cloud";
    }
    let rest: &[&str] = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        _ => return "other",
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        r => r,
    };
    let named = rest.len() >= 2;
    let sub = rest.get(2).copied();
    match *method {
        http::Method::GET if is_watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST if sub == Some("eviction") => "evict",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => "other",
    }
}

impl<S> Layer<S> for ApiCallCounter {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counter: self.clone(),
        }
    }
}

/// The counting service wrapper.
#[derive(Debug, Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    counter: ApiCallCounter,
}

impl<S, B> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.counter.record(verb_of(req.method(), req.uri()));
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn verbs() {
        let cases = [
            (Method::GET, "/api/v1/nodes", "list"),
            (Method::GET, "/api/v1/nodes?limit=500", "list"),
            (
                Method::GET,
                "/api/v1/nodes?watch=true&resourceVersion=1",
                "watch",
            ),
            (Method::GET, "/api/v1/nodes/n1", "get"),
            (Method::GET, "/api/v1/namespaces", "list"),
            (Method::GET, "/api/v1/namespaces/kube-system", "get"),
            (Method::GET, "/api/v1/namespaces/ns/pods", "list"),
            (Method::GET, "/api/v1/namespaces/ns/pods/p", "get"),
            (Method::GET, "/apis/policy/v1/poddisruptionbudgets", "list"),
            (
                Method::POST,
                "/api/v1/namespaces/ns/pods/p/eviction",
                "evict",
            ),
            (
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                "create",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
                "update",
            ),
            (Method::PATCH, "/api/v1/nodes/n1", "patch"),
            (Method::DELETE, "/api/v1/nodes/n1", "delete"),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/pods",
                "deletecollection",
            ),
            (Method::GET, "/version", "other"),
            (Method::PUT, "/sim/cloud/groups/w-a/desired", "cloud"),
        ];
        for (m, path, want) in cases {
            let uri: http::Uri = path.parse().expect("uri");
            assert_eq!(verb_of(&m, &uri), want, "{m} {path}");
        }
    }

    #[tokio::test]
    async fn layer_counts_calls() {
        let counter = ApiCallCounter::default();
        struct Null;
        impl Service<http::Request<()>> for Null {
            type Response = ();
            type Error = std::convert::Infallible;
            type Future = std::future::Ready<Result<(), Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: http::Request<()>) -> Self::Future {
                std::future::ready(Ok(()))
            }
        }
        let mut svc = counter.layer(Null);
        let req = |m: Method, p: &str| {
            http::Request::builder()
                .method(m)
                .uri(p)
                .body(())
                .expect("request")
        };
        for (m, p) in [
            (Method::GET, "/api/v1/nodes"),
            (Method::GET, "/api/v1/nodes"),
            (Method::PATCH, "/api/v1/nodes/a"),
        ] {
            svc.call(req(m, p)).await.expect("infallible");
        }
        assert_eq!(
            counter.counts(),
            BTreeMap::from([("list".to_string(), 2), ("patch".to_string(), 1)])
        );
    }
}
