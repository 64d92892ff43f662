//! Reads the objects the smoke checks need: one LIST per kind, all namespaces.

use super::checks::ClusterState;
use crate::upgrade::kube_cluster::KubeCluster;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::Client;
use std::path::Path;

/// A client from a kubeconfig file, or the default chain (KUBECONFIG, in-cluster) when `None`:
/// the same connection the upgrade engine makes (timeouts, counted calls). An error names the
/// kubeconfig.
pub(crate) async fn client(kubeconfig: Option<&Path>) -> Result<Client, String> {
    KubeCluster::connect(kubeconfig, None)
        .await
        .map(|c| c.client())
        .map_err(|e| {
            let path =
                kubeconfig.map_or("in-cluster / default".into(), |p| p.display().to_string());
            format!("kubeconfig {path}: {}", crate::error_chain(&e, |s| s))
        })
}

async fn list<K>(client: &Client, kind: &'static str) -> Result<Vec<K>, String>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| format!("cannot list {kind}: {}", crate::error_chain(&e, |s| s)))
}

/// Lists nodes, pods, Deployments, StatefulSets, DaemonSets and PDBs; an error names the kind.
pub(crate) async fn collect(client: &Client) -> Result<ClusterState, String> {
    Ok(ClusterState {
        nodes: list::<Node>(client, "nodes").await?,
        pods: list::<Pod>(client, "pods").await?,
        deployments: list::<Deployment>(client, "deployments").await?,
        statefulsets: list::<StatefulSet>(client, "statefulsets").await?,
        daemonsets: list::<DaemonSet>(client, "daemonsets").await?,
        pdbs: list::<PodDisruptionBudget>(client, "poddisruptionbudgets").await?,
    })
}
