//! `upgrade abort`, kube side: under the Lease, remove every marker the engine added
//! (annotations, role label, evacuation taint), restore the autoscaler annotation and
//! uncordon nodes the engine cordoned. One LIST of nodes, then one GET + PATCH per
//! marked node. Cloud capacity is restored by the cloud side (not available yet).

use super::kube_cluster::{KubeCluster, KubeError};
use super::snapshot::NodeInfo;
use super::state::{abort_patch, is_marked};
use chrono::{DateTime, Utc};

/// Removes all markers; returns the names of the nodes that were cleaned.
pub async fn abort(
    cluster: &KubeCluster,
    lease_namespace: &str,
    me: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, KubeError> {
    cluster
        .acquire_lease(lease_namespace, me, now, super::lease::LEASE_SECONDS)
        .await?;
    let nodes = cluster.list_nodes().await?;
    let mut cleaned = Vec::new();
    for n in &nodes {
        let info = NodeInfo::from_k8s(n)?;
        if is_marked(&info) {
            cluster.patch_node(&info.name, abort_patch).await?;
            tracing::info!(node = %info.name, "markers removed");
            cleaned.push(info.name);
        }
    }
    cluster.release_lease(lease_namespace, me, false).await?;
    Ok(cleaned)
}
