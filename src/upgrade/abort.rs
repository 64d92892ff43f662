//! `upgrade abort`: under the Lease, remove every marker the engine added (annotations, role
//! label, evacuation taint), restore the autoscaler annotation and uncordon nodes the engine
//! cordoned; with a cloud, also put every pool back to the size and version it had before the
//! run (both recorded on the Lease when the run started). One LIST of nodes, then one GET +
//! PATCH per marked node.

use super::capacity::PoolZone;
use super::kube_cluster::{KubeCluster, KubeError};
use super::pool::{Instance, InstanceLifecycle, NodePool, PoolError, SizeAfter};
use super::sim_pool::instance_id_from_provider_id;
use super::snapshot::NodeInfo;
use super::state::{abort_patch, is_marked};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Node;
use std::collections::{BTreeMap, BTreeSet};

/// Lease annotation holding the per-(pool, zone) capacity before the run (JSON).
pub(crate) const BASE_CAPACITY_ANNOTATION: &str = "upgrade.e2e-gate.io/base-capacity";
/// Lease annotation holding each pool's kubelet version before the run (JSON).
pub(crate) const PRIOR_VERSION_ANNOTATION: &str = "upgrade.e2e-gate.io/prior-version";

/// What `abort` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortOutcome {
    /// Nodes whose markers were removed.
    pub cleaned: Vec<String>,
    /// `(pool, zone, size)` set back to the size before the run.
    pub(crate) capacity_restored: Vec<(String, String, u32)>,
    /// `(pool, version)` set back to the version before the run.
    pub(crate) versions_restored: Vec<(String, String)>,
    /// The run-wide state (base capacity, prior versions) stays on the Lease because no cloud
    /// was given to restore it: a later `apply` or `abort --cloud` still knows the real base.
    pub(crate) state_kept: bool,
}

/// Why an abort could not finish.
#[derive(Debug, thiserror::Error)]
pub enum AbortError {
    /// Kube side (including a Lease held by a live `apply`).
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// Cloud side.
    #[error("cloud: {0}")]
    Pool(#[from] PoolError),
}

/// Parses the base capacity as stored on the Lease (`"pool/zone": n`).
pub(crate) fn parse_base(json: &str) -> BTreeMap<PoolZone, u32> {
    serde_json::from_str::<BTreeMap<String, u32>>(json)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| {
            k.split_once('/')
                .map(|(p, z)| ((p.to_string(), z.to_string()), v))
        })
        .collect()
}

/// Serialises the base capacity for the Lease.
pub(crate) fn format_base(base: &BTreeMap<PoolZone, u32>) -> String {
    let json: BTreeMap<String, u32> = base
        .iter()
        .map(|((p, z), v)| (format!("{p}/{z}"), *v))
        .collect();
    serde_json::to_string(&json).unwrap_or_default()
}

/// Removes all markers and, with `pool`, restores the recorded capacity and versions.
pub async fn abort(
    cluster: &KubeCluster,
    lease_namespace: &str,
    me: &str,
    now: DateTime<Utc>,
    pool: Option<&dyn NodePool>,
) -> Result<AbortOutcome, AbortError> {
    cluster
        .acquire_lease(lease_namespace, me, now, super::lease::LEASE_SECONDS)
        .await?;
    let mut out = AbortOutcome::default();
    let nodes = cluster.list_nodes().await?;
    for n in &nodes {
        let info = NodeInfo::from_k8s(n).map_err(KubeError::from)?;
        if is_marked(&info) {
            cluster.patch_node(&info.name, abort_patch).await?;
            tracing::info!(node = %info.name, "markers removed");
            out.cleaned.push(info.name);
        }
    }
    let base = cluster
        .lease_annotation(lease_namespace, BASE_CAPACITY_ANNOTATION)
        .await?
        .map(|j| parse_base(&j));
    let versions: Option<BTreeMap<String, String>> = cluster
        .lease_annotation(lease_namespace, PRIOR_VERSION_ANNOTATION)
        .await?
        .and_then(|j| serde_json::from_str(&j).ok());
    match pool {
        Some(pool) => {
            if let Some(base) = &base {
                remove_surge(pool, base, &nodes, &out.cleaned).await?;
            }
            let mut by_pool: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
            for ((p, z), n) in base.iter().flatten() {
                by_pool.entry(p.clone()).or_default().insert(z.clone(), *n);
                out.capacity_restored.push((p.clone(), z.clone(), *n));
            }
            for (p, sizes) in &by_pool {
                pool.set_sizes(p, sizes).await?;
            }
            for (p, v) in versions.iter().flatten() {
                pool.set_version(p, v).await?;
                out.versions_restored.push((p.clone(), v.clone()));
            }
            pool.restore(&by_pool.into_keys().collect::<Vec<_>>())
                .await?;
        }
        None => out.state_kept = base.is_some() || versions.is_some(),
    }
    cluster
        .release_lease(lease_namespace, me, out.state_kept)
        .await?;
    Ok(out)
}

/// Terminates (with decrement) the instances a run added beyond each zone's size before the
/// run: instances with no Node yet first, then the newest Nodes the run did not mark. The
/// cloud is not left to choose: AWS's default termination policy picks the oldest launch
/// template first, which are the old nodes still serving.
async fn remove_surge(
    pool: &dyn NodePool,
    base: &BTreeMap<PoolZone, u32>,
    nodes: &[Node],
    marked: &[String],
) -> Result<(), PoolError> {
    // Instance id → (the run marked its Node, its Node's creation time).
    let by_instance: BTreeMap<&str, (bool, Option<DateTime<Utc>>)> = nodes
        .iter()
        .filter_map(|n| {
            let id = n
                .spec
                .as_ref()?
                .provider_id
                .as_deref()
                .and_then(instance_id_from_provider_id)?;
            let name = n.metadata.name.as_deref().unwrap_or_default();
            let created = n
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| crate::kube_time::to_chrono(t.0));
            Some((id, (marked.iter().any(|m| m == name), created)))
        })
        .collect();
    let spread: BTreeSet<String> = pool
        .groups()
        .await?
        .into_iter()
        .filter(|g| g.spread)
        .map(|g| g.name)
        .collect();
    // Per pool, the size before the run per zone; a group over several zones put its
    // replacements where it chose: its surplus is counted over the pool (zone `None`).
    let mut sizes: BTreeMap<&str, BTreeMap<Option<&str>, u32>> = BTreeMap::new();
    for ((p, z), n) in base {
        let zone = (!spread.contains(p)).then_some(z.as_str());
        *sizes.entry(p).or_default().entry(zone).or_default() += n;
    }
    for (p, sizes) in sizes {
        let live: Vec<Instance> = pool
            .instances(p)
            .await?
            .into_iter()
            .filter(|i| {
                matches!(
                    i.lifecycle,
                    InstanceLifecycle::Pending | InstanceLifecycle::InService
                )
            })
            .collect();
        for (zone, size) in sizes {
            let here = |i: &&Instance| zone.is_none_or(|z| i.zone == z);
            let mut candidates: Vec<(&Instance, Option<DateTime<Utc>>)> = live
                .iter()
                .filter(here)
                .filter_map(|i| match by_instance.get(i.id.as_str()) {
                    Some((true, _)) => None,
                    Some((false, created)) => Some((i, *created)),
                    None => Some((i, None)),
                })
                .collect();
            let in_zone = live.iter().filter(here).count();
            let excess = in_zone.saturating_sub(size as usize);
            // No Node first, then newest.
            candidates.sort_by_key(|(_, created)| (created.is_some(), std::cmp::Reverse(*created)));
            for (i, _) in candidates.into_iter().take(excess) {
                tracing::info!(instance = %i.id, pool = %p, zone = %i.zone, "terminating an instance the run added");
                pool.terminate(&i.id, SizeAfter::Decrement).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_round_trips_and_ignores_garbage() {
        let base = BTreeMap::from([(("w".to_string(), "a".to_string()), 3)]);
        assert_eq!(parse_base(&format_base(&base)), base);
        assert!(parse_base("not json").is_empty());
        assert!(parse_base(r#"{"no-slash": 2}"#).is_empty());
    }
}
