//! Clusters under test: the [`ClusterProvider`] trait and its providers
//! (`sim`: the embedded simulated cluster, `kind`, `existing`).

pub(crate) mod existing;
pub(crate) mod kind;
pub(crate) mod provider;
pub mod sim;

pub(crate) use provider::validate_cluster_name;
pub use provider::{ClusterError, ClusterHandle, ClusterProvider, ClusterSpec, ClusterStatus};
