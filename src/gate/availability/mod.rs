//! Availability during the upgrade, measured by the gate itself (not taken from the engine's
//! word): every PDB must keep `desiredHealthy`, every Service that had a ready endpoint must
//! keep one. [`timeline`] is the pure accounting, [`kube_watch`] the watches that feed it.

pub(crate) mod kube_watch;
pub(crate) mod timeline;

pub(crate) use timeline::{judge, AvailabilityReport};

use crate::cluster::ClusterHandle;

/// Starts an availability probe on a cluster.
#[async_trait::async_trait]
pub trait AvailabilityWatch: Send + Sync {
    /// Starts watching; `Err` says why it cannot.
    async fn start(&self, cluster: &ClusterHandle) -> Result<Box<dyn RunningWatch>, String>;
}

/// A probe that is watching.
#[async_trait::async_trait]
pub trait RunningWatch: Send {
    /// Stops watching and reports what was seen.
    async fn stop(self: Box<Self>) -> AvailabilityReport;
}
