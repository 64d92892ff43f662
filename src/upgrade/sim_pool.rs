//! [`NodePool`] over the simulator's cloud API, served by the same HTTP server as the
//! simulated API server under `/sim/cloud` (one auto-scaling group per pool and zone,
//! named `<pool>-<zone>`). Requests go through the (counted) kube client, so no second
//! HTTP stack is needed; cloud calls are also counted here, by operation.

use super::api_count::ApiCallCounter;
use super::pool::{Instance, LbState, NodePool, PoolError, PoolGroup, SizeAfter};
use async_trait::async_trait;
use http::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct SimGroups {
    groups: Vec<SimGroup>,
}

#[derive(Debug, Deserialize)]
struct SimGroup {
    name: String,
    pool: String,
    zone: String,
    desired: u32,
    kubelet_version: String,
    #[serde(default)]
    instances: Vec<SimInstance>,
}

#[derive(Debug, Deserialize)]
struct SimInstance {
    id: String,
    zone: String,
    lifecycle: String,
    lb_state: Option<String>,
    kubelet_version: String,
}

/// The instance id in a Node's `spec.providerID` (`sim:///zone/i-1`, `aws:///us-east-1a/i-0abc`).
pub fn instance_id_from_provider_id(provider_id: &str) -> Option<&str> {
    provider_id.rsplit('/').next().filter(|s| !s.is_empty())
}

/// The simulator's node pools.
#[derive(Clone)]
pub struct SimNodePool {
    client: kube::Client,
    calls: ApiCallCounter,
}

impl SimNodePool {
    /// Talks to the simulator behind `client` (the same server as its API).
    pub fn new(client: kube::Client) -> Self {
        SimNodePool {
            client,
            calls: ApiCallCounter::default(),
        }
    }

    async fn call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<String, PoolError> {
        self.calls.record(op);
        tracing::debug!(op, path, body = ?body, "cloud call");
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .map_err(|e| PoolError::api(format!("{op}: {e}")))?;
        self.client.request_text(req).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => {
                PoolError::api(format!("{op}: 404 {}", s.message))
            }
            e => PoolError::api(format!("{op}: {e}")),
        })
    }

    async fn sim_groups(&self) -> Result<Vec<SimGroup>, PoolError> {
        let text = self
            .call("describe_groups", Method::GET, "/sim/cloud/groups", None)
            .await?;
        let g: SimGroups = serde_json::from_str(&text)
            .map_err(|e| PoolError::api(format!("describe_groups: unexpected body: {e}")))?;
        Ok(g.groups)
    }
}

#[async_trait]
impl NodePool for SimNodePool {
    /// Cloud calls so far, by operation.
    fn cloud_calls(&self) -> BTreeMap<String, u64> {
        self.calls.counts()
    }

    async fn groups(&self) -> Result<Vec<PoolGroup>, PoolError> {
        let mut out: BTreeMap<String, PoolGroup> = BTreeMap::new();
        for g in self.sim_groups().await? {
            let lb = g.instances.iter().any(|i| i.lb_state.is_some());
            let e = out.entry(g.pool.clone()).or_insert_with(|| PoolGroup {
                name: g.pool.clone(),
                desired_per_zone: BTreeMap::new(),
                max_size: 1000,
                version: g.kubelet_version.clone(),
                backs_load_balancer: lb,
                boot_seconds: None,
                spread: false,
            });
            e.desired_per_zone.insert(g.zone.clone(), g.desired);
            e.backs_load_balancer |= lb;
        }
        Ok(out.into_values().collect())
    }

    async fn instances(&self, pool: &str) -> Result<Vec<Instance>, PoolError> {
        let groups = self.sim_groups().await?;
        if !groups.iter().any(|g| g.pool == pool) {
            return Err(PoolError::UnknownPool { pool: pool.into() });
        }
        Ok(groups
            .into_iter()
            .filter(|g| g.pool == pool)
            .flat_map(|g| {
                g.instances.into_iter().map(|i| Instance {
                    id: i.id,
                    pool: pool.to_string(),
                    zone: i.zone,
                    version: i.kubelet_version,
                    // The simulator spells lifecycles as AWS does.
                    lifecycle: super::aws_layout::lifecycle(&i.lifecycle),
                    lb: i.lb_state.map(|s| match s.as_str() {
                        "InService" => LbState::InService,
                        "OutOfService" => LbState::OutOfService,
                        "Deregistering" => LbState::Deregistering,
                        _ => LbState::Registering,
                    }),
                })
            })
            .collect())
    }

    async fn set_desired(&self, pool: &str, zone: &str, desired: u32) -> Result<(), PoolError> {
        let groups = self.sim_groups().await?;
        let Some(g) = groups.iter().find(|g| g.pool == pool && g.zone == zone) else {
            return Err(if groups.iter().any(|g| g.pool == pool) {
                PoolError::UnknownZone {
                    pool: pool.into(),
                    zone: zone.into(),
                }
            } else {
                PoolError::UnknownPool { pool: pool.into() }
            });
        };
        let path = format!("/sim/cloud/groups/{}/desired", g.name);
        let body = serde_json::json!({"desired": desired});
        self.call("set_desired", Method::PUT, &path, Some(body))
            .await
            .map(|_| ())
    }

    fn replaces_on_terminate(&self) -> bool {
        true
    }

    /// An instance the cloud still lists (already terminated) is a success.
    async fn terminate(&self, instance: &str, size: SizeAfter) -> Result<(), PoolError> {
        let path = format!("/sim/cloud/instances/{instance}/terminate");
        let body = serde_json::json!({"decrement": size == SizeAfter::Decrement});
        let Err(e) = self
            .call("terminate", Method::POST, &path, Some(body))
            .await
        else {
            return Ok(());
        };
        // 404 means unknown *or* already terminated: idempotent for the latter. Any other
        // failure is the cloud's, even when the instance is listed (it may still be live).
        if !matches!(&e, PoolError::Api { message } if message.contains("404")) {
            return Err(e);
        }
        let known = self
            .sim_groups()
            .await?
            .into_iter()
            .flat_map(|g| g.instances)
            .any(|i| i.id == instance);
        if known {
            Ok(())
        } else {
            Err(PoolError::UnknownInstance {
                id: instance.into(),
            })
        }
    }

    async fn set_version(&self, pool: &str, kubelet_version: &str) -> Result<(), PoolError> {
        let path = format!("/sim/cloud/groups/{pool}/launch-template");
        let body = serde_json::json!({"kubelet_version": kubelet_version});
        self.call("set_launch_template", Method::PUT, &path, Some(body))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        assert_eq!(
            instance_id_from_provider_id("sim:///zone-a/i-00012"),
            Some("i-00012")
        );
        assert_eq!(
            instance_id_from_provider_id("aws:///us-east-1a/i-0abc"),
            Some("i-0abc")
        );
        assert_eq!(instance_id_from_provider_id("sim:///zone-a/"), None);
    }

    /// A cloud that lists `i-1` and answers its terminate with `status`.
    async fn pool_whose_terminate_answers(status: u16) -> SimNodePool {
        use axum::{http::StatusCode, routing::get, routing::post, Json, Router};
        let code = StatusCode::from_u16(status).expect("status");
        let groups = serde_json::json!({"groups": [{
            "name": "w-a", "pool": "w", "zone": "a", "desired": 1, "kubelet_version": "v1.31.0",
            "instances": [{"id": "i-1", "zone": "a", "lifecycle": "InService",
                           "lb_state": null, "kubelet_version": "v1.31.0"}]}]});
        let status_body = serde_json::json!({"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "message": "boom", "code": status});
        let app = Router::new()
            .route(
                "/sim/cloud/groups",
                get(move || async move { Json(groups) }),
            )
            .route(
                "/sim/cloud/instances/{id}/terminate",
                post(move || async move { (code, Json(status_body)) }),
            );
        let config = crate::upgrade::kube_cluster::tests::serve(app).await;
        SimNodePool::new(kube::Client::try_from(config).expect("client"))
    }

    // Regression: a failed terminate of a listed (possibly live) instance was reported as done.
    #[tokio::test]
    async fn a_failed_terminate_of_a_listed_instance_is_an_error() {
        let pool = pool_whose_terminate_answers(500).await;
        let r = pool.terminate("i-1", SizeAfter::Decrement).await;
        assert!(matches!(r, Err(PoolError::Api { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn a_404_for_a_listed_instance_means_already_terminated() {
        let pool = pool_whose_terminate_answers(404).await;
        pool.terminate("i-1", SizeAfter::Decrement)
            .await
            .expect("idempotent");
        let r = pool.terminate("i-2", SizeAfter::Decrement).await;
        assert!(matches!(r, Err(PoolError::UnknownInstance { .. })), "{r:?}");
    }
}
