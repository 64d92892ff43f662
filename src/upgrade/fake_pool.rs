//! An in-memory [`NodePool`] for pure-logic tests: instances appear `Pending` when
//! capacity rises and turn `InService` on [`FakeNodePool::boot_all`]. Not a cloud model;
//! the simulator provides that.
#![doc(hidden)]

use super::pool::{Instance, InstanceLifecycle, LbState, NodePool, PoolError, PoolGroup};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// State of the fake.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Pools by name.
    pub groups: BTreeMap<String, PoolGroup>,
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    /// Calls made, in order (`verb pool/instance`).
    pub calls: Vec<String>,
    next_id: u32,
}

/// The fake pool.
#[derive(Debug, Default)]
pub struct FakeNodePool {
    /// Shared state (tests inspect it).
    pub state: Mutex<FakeState>,
}

impl FakeNodePool {
    /// A fake with one pool whose instances are all at `version` and `InService`.
    pub fn with_pool(name: &str, per_zone: &[(&str, u32)], version: &str, lb: bool) -> Self {
        let f = FakeNodePool::default();
        {
            let mut s = f.lock();
            s.groups.insert(
                name.to_string(),
                PoolGroup {
                    name: name.to_string(),
                    desired_per_zone: per_zone.iter().map(|(z, n)| (z.to_string(), *n)).collect(),
                    max_size: 1000,
                    version: version.to_string(),
                    backs_load_balancer: lb,
                    boot_seconds: Some(60),
                },
            );
            reconcile(&mut s, name);
            for i in s.instances.values_mut() {
                i.lifecycle = InstanceLifecycle::InService;
                i.lb = lb.then_some(LbState::InService);
            }
        }
        f
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A panic in another test thread must not hide this test's result.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every pending instance becomes `InService` (and LB `InService`).
    pub fn boot_all(&self) {
        let mut s = self.lock();
        let lb: BTreeMap<String, bool> = s
            .groups
            .iter()
            .map(|(k, g)| (k.clone(), g.backs_load_balancer))
            .collect();
        for i in s.instances.values_mut() {
            if i.lifecycle == InstanceLifecycle::Pending {
                i.lifecycle = InstanceLifecycle::InService;
                i.lb = lb
                    .get(&i.pool)
                    .copied()
                    .unwrap_or(false)
                    .then_some(LbState::InService);
            }
        }
    }
}

/// Launches instances until each zone has `desired` live ones.
fn reconcile(s: &mut FakeState, pool: &str) {
    let Some(g) = s.groups.get(pool).cloned() else {
        return;
    };
    for (zone, want) in &g.desired_per_zone {
        let live = s
            .instances
            .values()
            .filter(|i| {
                i.pool == pool
                    && i.zone == *zone
                    && matches!(
                        i.lifecycle,
                        InstanceLifecycle::Pending | InstanceLifecycle::InService
                    )
            })
            .count() as u32;
        for _ in live..*want {
            s.next_id += 1;
            let id = format!("i-{:04}", s.next_id);
            s.instances.insert(
                id.clone(),
                Instance {
                    id,
                    pool: pool.to_string(),
                    zone: zone.clone(),
                    version: g.version.clone(),
                    lifecycle: InstanceLifecycle::Pending,
                    lb: g.backs_load_balancer.then_some(LbState::Registering),
                },
            );
        }
    }
}

#[async_trait]
impl NodePool for FakeNodePool {
    fn provider(&self) -> &'static str {
        "fake"
    }
    async fn groups(&self) -> Result<Vec<PoolGroup>, PoolError> {
        let mut s = self.lock();
        s.calls.push("groups".into());
        Ok(s.groups.values().cloned().collect())
    }
    async fn instances(&self, pool: &str) -> Result<Vec<Instance>, PoolError> {
        let mut s = self.lock();
        s.calls.push(format!("instances {pool}"));
        if !s.groups.contains_key(pool) {
            return Err(PoolError::UnknownPool { pool: pool.into() });
        }
        Ok(s.instances
            .values()
            .filter(|i| i.pool == pool)
            .cloned()
            .collect())
    }
    async fn set_desired(&self, pool: &str, zone: &str, desired: u32) -> Result<(), PoolError> {
        let mut s = self.lock();
        s.calls.push(format!("set_desired {pool}/{zone}={desired}"));
        let g = s
            .groups
            .get_mut(pool)
            .ok_or_else(|| PoolError::UnknownPool { pool: pool.into() })?;
        let Some(slot) = g.desired_per_zone.get_mut(zone) else {
            return Err(PoolError::UnknownZone {
                pool: pool.into(),
                zone: zone.into(),
            });
        };
        *slot = desired;
        let total: u32 = g.desired_per_zone.values().sum();
        if total > g.max_size {
            return Err(PoolError::OverMax {
                pool: pool.into(),
                desired: total,
                max: g.max_size,
            });
        }
        reconcile(&mut s, pool);
        Ok(())
    }
    async fn terminate_with_decrement(&self, instance: &str) -> Result<(), PoolError> {
        let mut s = self.lock();
        s.calls.push(format!("terminate {instance}"));
        let i = s
            .instances
            .get_mut(instance)
            .ok_or_else(|| PoolError::UnknownInstance {
                id: instance.into(),
            })?;
        if i.lifecycle == InstanceLifecycle::Terminated {
            return Ok(());
        }
        i.lifecycle = InstanceLifecycle::Terminated;
        let (pool, zone) = (i.pool.clone(), i.zone.clone());
        if let Some(d) = s
            .groups
            .get_mut(&pool)
            .and_then(|g| g.desired_per_zone.get_mut(&zone))
        {
            *d = d.saturating_sub(1);
        }
        Ok(())
    }
    async fn set_version(&self, pool: &str, kubelet_version: &str) -> Result<(), PoolError> {
        let mut s = self.lock();
        s.calls
            .push(format!("set_version {pool}={kubelet_version}"));
        let g = s
            .groups
            .get_mut(pool)
            .ok_or_else(|| PoolError::UnknownPool { pool: pool.into() })?;
        g.version = kubelet_version.to_string();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn surge_then_terminate_with_decrement() {
        let f = FakeNodePool::with_pool("w", &[("a", 2), ("b", 1)], "v1.33.0", true);
        f.set_version("w", "v1.34.0").await.expect("pool exists");
        f.set_desired("w", "a", 3).await.expect("zone a exists");
        let inst = f.instances("w").await.expect("pool exists");
        let new: Vec<_> = inst.iter().filter(|i| i.version == "v1.34.0").collect();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].zone, "a");
        assert_eq!(new[0].lifecycle, InstanceLifecycle::Pending);
        f.boot_all();
        let old = inst
            .iter()
            .find(|i| i.version == "v1.33.0" && i.zone == "a")
            .expect("old in a");
        f.terminate_with_decrement(&old.id).await.expect("exists");
        f.terminate_with_decrement(&old.id)
            .await
            .expect("idempotent");
        let g = f.groups().await.expect("ok");
        assert_eq!(g[0].desired_per_zone["a"], 2);
        assert!(matches!(
            f.set_desired("w", "zz", 1).await,
            Err(PoolError::UnknownZone { .. })
        ));
        assert!(matches!(
            f.instances("nope").await,
            Err(PoolError::UnknownPool { .. })
        ));
    }
}
