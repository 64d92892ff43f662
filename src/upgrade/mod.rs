//! The rolling node-upgrade engine (`e2e-gate upgrade plan|apply|abort`).
//!
//! One job per file: [`snapshot`] (owned cluster view), [`plan`] (pure planner),
//! [`state`] (per-node state machine + Node markers), [`node_patch`] (marker patches),
//! [`drain_policy`] (stuck drains, backoff, PDB tokens), [`readiness`] (new-node gate),
//! [`lease`] (single-writer lock decisions), [`pool`] (the `NodePool` cloud seam),
//! [`report`] (the JSON report), [`render`] (human plan text). `mod.rs` only re-exports.

pub mod abort;
pub mod api_count;
pub mod drain_policy;
pub mod fake_pool;
pub mod kube_cluster;
pub mod lease;
pub mod node_patch;
pub mod plan;
pub mod pool;
pub mod quantity;
pub mod readiness;
pub mod render;
pub mod report;
pub mod selector;
pub mod snapshot;
pub mod state;

pub use plan::{plan, Blocker, BlockerKind, Plan, PlanError, PlanOptions, PoolLimits, Timings};
pub use pool::{NodePool, PoolError};
pub use report::UpgradeReport;
pub use snapshot::{ClusterObjects, Snapshot, SnapshotError};
