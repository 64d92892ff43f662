//! The `existing` provider: a cluster someone else runs, given by its kubeconfig.
//! `up` only checks the kubeconfig; `down` does nothing.

use super::provider::{
    server_of_kubeconfig, ClusterError, ClusterHandle, ClusterProvider, ClusterSpec, ClusterStatus,
};
use async_trait::async_trait;

/// Uses an existing cluster.
#[derive(Debug, Default)]
pub(crate) struct ExistingProvider;

#[async_trait]
impl ClusterProvider for ExistingProvider {
    async fn up(&self, spec: &ClusterSpec) -> Result<ClusterHandle, ClusterError> {
        let path = spec
            .kubeconfig
            .clone()
            .or_else(|| std::env::var_os("KUBECONFIG").map(Into::into))
            .ok_or_else(|| {
                ClusterError::Config(
                    "--provider existing needs --kubeconfig FILE (or $KUBECONFIG)".into(),
                )
            })?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ClusterError::Config(format!("cannot read kubeconfig {}: {e}", path.display()))
        })?;
        let api_url = server_of_kubeconfig(&text).ok_or_else(|| {
            ClusterError::Config(format!(
                "kubeconfig {}: no `server:` field in clusters[]; expected a kubeconfig with at least one cluster",
                path.display()
            ))
        })?;
        Ok(ClusterHandle {
            name: spec.name.clone(),
            kubeconfig: path.clone(),
            kubeconfig_internal: path,
            network: None,
            api_url,
        })
    }

    async fn down(&self, _name: &str) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn status(&self, name: &str) -> Result<ClusterStatus, ClusterError> {
        Ok(ClusterStatus {
            name: name.to_string(),
            provider: "existing".into(),
            running: true,
            api_url: None,
            pid: None,
            detail: "managed outside e2e-gate".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn up_reads_server_and_down_is_noop() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kc");
        std::fs::write(
            &kc,
            crate::cluster::sim::kubeconfig_yaml("x", "https://10.0.0.1:6443"),
        )
        .unwrap();
        let p = ExistingProvider;
        let h = p
            .up(&ClusterSpec {
                name: "x".into(),
                kubeconfig: Some(kc.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(h.api_url, "https://10.0.0.1:6443");
        assert_eq!(h.kubeconfig, kc);
        assert_eq!(h.network, None);
        p.down("x").await.unwrap();
        let err = p
            .up(&ClusterSpec {
                name: "x".into(),
                kubeconfig: Some(dir.path().join("missing")),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot read kubeconfig"), "{err}");
    }
}
