//! The cloud seam: node pools (ASGs, managed node groups, the simulator's pools).
//! Implementations: [`super::sim_pool::SimNodePool`] (the simulator's HTTP cloud API) and
//! [`super::exec_pool::ExecNodePool`] (any cloud behind an external command). Calls are few
//! and batched per pool.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lifecycle of a cloud instance (as the exec protocol spells it, too: `in-service`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceLifecycle {
    /// Launching.
    Pending,
    /// Running and in service in its group.
    InService,
    /// Being terminated.
    Terminating,
    /// Gone.
    Terminated,
}

/// Registration of an instance at the pool's load balancer, best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LbState {
    /// Healthy and serving.
    InService,
    /// Registering / health checks not yet passed.
    Registering,
    /// Connection draining before removal.
    Deregistering,
    /// Unhealthy.
    OutOfService,
}

/// One instance of a pool. Deserializes from the exec protocol's `instances` entries
/// ([`super::exec_pool`]), which have no `pool`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Cloud id (matches the Node's `spec.providerID` suffix).
    pub id: String,
    /// Pool.
    #[serde(skip_deserializing)]
    pub pool: String,
    /// Zone.
    pub zone: String,
    /// Kubelet version of the launch template it was started from.
    pub version: String,
    /// Lifecycle (the exec protocol's `state`).
    #[serde(rename = "state")]
    pub lifecycle: InstanceLifecycle,
    /// LB state, when the pool backs a load balancer.
    pub lb: Option<LbState>,
}

/// One pool (group) as the cloud reports it. Deserializes from the exec protocol's `groups`
/// entries ([`super::exec_pool`]; `zones`, `load_balancer`; never spread).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolGroup {
    /// Name.
    pub name: String,
    /// Desired capacity per zone (zones the pool can launch in, possibly 0). For a pool
    /// whose group spans zones ([`PoolGroup::spread`]): its live instances per zone, the
    /// group's desired size in total.
    #[serde(rename = "zones")]
    pub desired_per_zone: BTreeMap<String, u32>,
    /// One group spans the zones (an EKS managed node group): its size is one number and the
    /// cloud picks each new instance's zone, so a replacement may land in another zone than
    /// the node it replaces.
    #[serde(skip_deserializing)]
    pub spread: bool,
    /// Upper bound of the pool's total size.
    pub(crate) max_size: u32,
    /// Kubelet version new instances get.
    pub version: String,
    /// Whether instances are registered at a load balancer.
    #[serde(rename = "load_balancer", default)]
    pub(crate) backs_load_balancer: bool,
    /// Recent launch → InService seconds, if the cloud knows.
    pub(crate) boot_seconds: Option<u64>,
}

/// What a terminate does to its group's desired size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeAfter {
    /// One less: no replacement (`ShouldDecrementDesiredCapacity=true`).
    Decrement,
    /// Unchanged: the cloud launches a replacement from the group's current template, where
    /// it would launch one (the zone of a per-zone group). One call where decrement-then-raise
    /// takes two; the engine asks for it only when it wants that replacement (the next node
    /// of the zone starts, or the node left without one).
    Keep,
}

/// A cloud call failed; names the pool or instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No such pool.
    #[error("pool {pool:?} not found")]
    UnknownPool {
        /// The pool.
        pool: String,
    },
    /// No such instance.
    #[error("instance {id:?} not found")]
    UnknownInstance {
        /// The instance id.
        id: String,
    },
    /// The pool cannot launch in that zone.
    #[error("pool {pool:?} cannot launch in zone {zone:?}")]
    UnknownZone {
        /// The pool.
        pool: String,
        /// The zone.
        zone: String,
    },
    /// Transport or API error.
    #[error("cloud API: {message}")]
    Api {
        /// What the cloud said.
        message: String,
    },
}

impl PoolError {
    /// An [`PoolError::Api`] saying `message`.
    pub(crate) fn api(message: impl std::fmt::Display) -> Self {
        PoolError::Api {
            message: message.to_string(),
        }
    }
}

/// Node-pool operations the engine needs. Every call is idempotent for the same input.
#[async_trait]
pub trait NodePool: Send + Sync {
    /// All pools.
    async fn groups(&self) -> Result<Vec<PoolGroup>, PoolError>;
    /// Instances of `pool` (one call per pool, not per instance).
    async fn instances(&self, pool: &str) -> Result<Vec<Instance>, PoolError>;
    /// Sets the desired capacity of `pool` in `zone`.
    async fn set_desired(&self, pool: &str, zone: &str, desired: u32) -> Result<(), PoolError>;
    /// Sets `pool`'s sizes in the zones named, all in one change. A pool whose one group
    /// spans zones ([`PoolGroup::spread`]) is given every zone and set to their sum once:
    /// zone by zone, a size moving from one zone to another would lower the group for a
    /// moment, and the cloud would pick what to scale in.
    async fn set_sizes(&self, pool: &str, sizes: &BTreeMap<String, u32>) -> Result<(), PoolError> {
        for (zone, n) in sizes {
            self.set_desired(pool, zone, *n).await?;
        }
        Ok(())
    }
    /// Terminates `instance`, decrementing its group's desired capacity or keeping it (see
    /// [`SizeAfter`]). Idempotent: an instance already gone is a success.
    async fn terminate(&self, instance: &str, size: SizeAfter) -> Result<(), PoolError>;
    /// Whether [`SizeAfter::Keep`] works here. Clouds that cannot (the exec protocol has no
    /// such call) get a decrement and a set-desired instead.
    fn replaces_on_terminate(&self) -> bool {
        false
    }
    /// Makes new instances of `pool` start with `kubelet_version` (launch template).
    async fn set_version(&self, pool: &str, kubelet_version: &str) -> Result<(), PoolError>;
    /// Before a run changes anything: holds still what would fight the roll (AWS: suspends
    /// AZRebalance, alarms and scheduled actions), recording what it changed where a resumed
    /// run or `abort` finds it. Idempotent; clouds with nothing to hold do nothing.
    async fn hold(&self, _pools: &[String]) -> Result<(), PoolError> {
        Ok(())
    }
    /// After the run, or on `abort`: puts back what [`NodePool::hold`] and the surge changed
    /// (processes, max sizes), exactly as recorded. Idempotent.
    async fn restore(&self, _pools: &[String]) -> Result<(), PoolError> {
        Ok(())
    }
    /// Calls made so far, by operation (for the report's `cloud_api_calls`).
    fn cloud_calls(&self) -> BTreeMap<String, u64>;
}
