//! Clusters under test: the [`ClusterProvider`] trait and its providers
//! (`sim`: the embedded simulated cluster, `kind`, `existing`).

pub mod sim;
