//! The rolling node-upgrade engine (`e2e-gate upgrade plan|apply|abort`).
//!
//! One job per file; `mod.rs` only declares and re-exports.
//!
//! Pure (no I/O, no async): [`snapshot`] (owned cluster view from k8s-openapi objects),
//! [`mod@plan`] (the planner shared by `plan` and `apply`),
//! [`render`] (human plan), [`state`] (per-node state machine and its Node markers),
//! [`node_patch`] (marker patches as JSON merge patches), [`scheduler`] (which nodes start
//! now), [`capacity`] (desired cloud size, recomputed from markers), [`drain_policy`]
//! (stuck drains, 429 backoff, PDB tokens), [`readiness`] (new-node gate), [`lease`]
//! (single-writer decision), [`progress`] (progress line, ETA), [`report`] (JSON report).
//!
//! Seams and adapters: [`pool`] (the `NodePool` cloud trait; [`sim_pool`] over the simulator's cloud API), [`kube_cluster`] (kube client with the
//! [`api_count`] layer), [`watch`] (reflector caches that wake the engine), [`abort`],
//! and [`engine`] (the `apply` loop tying the pure parts to the adapters; [`run_meters`]:
//! PDB-violation seconds, evictions, replicas moved).

pub mod abort;
pub(crate) mod act;
pub(crate) mod api_count;
pub(crate) mod aws_layout;
pub(crate) mod aws_pool;
pub mod capacity;
pub(crate) mod clock;
pub mod decide;
pub mod drain_policy;
pub mod engine;
pub(crate) mod exec_pool;
pub mod kube_cluster;
pub(crate) mod lease;
pub mod node_patch;
pub(crate) mod options;
pub mod plan;
pub mod pool;
pub(crate) mod progress;

pub(crate) mod readiness;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod run_meters;
pub(crate) mod scheduler;
pub mod sim_pool;
pub mod snapshot;
pub mod state;
pub(crate) mod use_case;
pub(crate) mod version;
pub mod watch;

pub use report::UpgradeReport;
