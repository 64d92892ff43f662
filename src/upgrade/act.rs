//! Carries out one round's [`Actions`] against the cluster and the cloud, and returns the
//! answers as an [`Outcome`] for [`Memory::absorb`](super::decide::Memory::absorb). The
//! only I/O of a round besides observing; every decision was made by
//! [`decide`](super::decide::decide).

use super::capacity::{self, PoolZone};
use super::decide::patches::{claim_patch, claimed_for, start_patch, step_patch};
use super::decide::{Actions, Observed, Outcome, RunContext};
use super::engine::EngineError;
use super::kube_cluster::{unless_gone, Eviction, KubeCluster, KubeError};
use super::node_patch::NodePatch;
use super::pool::{NodePool, PoolGroup, SizeAfter};
use super::scheduler::StartMode;
use super::snapshot::NodeInfo;
use super::state::{abort_patch, Event};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

/// Patches at most this many nodes (or evicts this many pods) at once: with hundreds of
/// nodes moving together, one request after the other would make the engine, not the
/// cluster, the bottleneck.
pub(crate) const PARALLEL_REQUESTS: usize = 16;

/// Keeps the cloud's desired sizes where the markers want them. The cloud is read once;
/// after that its sizes are known from this process's own calls (a set-desired sets them, a
/// terminate-with-decrement lowers its place by one), so a round costs no cloud read. A
/// termination whose place is not known makes the next sync read the cloud again.
#[derive(Debug, Default)]
pub(crate) struct CapacitySync {
    observed: Option<BTreeMap<PoolZone, u32>>,
    last_want: Option<BTreeMap<PoolZone, u32>>,
    /// Pools whose one group spans zones: sized by their total.
    spread: BTreeSet<String>,
}

impl CapacitySync {
    /// Brings the cloud to `want` (nothing while `None`: a termination goes first).
    pub(crate) async fn sync(
        &mut self,
        pool: &dyn NodePool,
        want: Option<&BTreeMap<PoolZone, u32>>,
    ) -> Result<(), EngineError> {
        let Some(want) = want else { return Ok(()) };
        if self.observed.is_some() && self.last_want.as_ref() == Some(want) {
            return Ok(());
        }
        let mut observed = match self.observed.take() {
            Some(o) => o,
            None => {
                let groups = pool.groups().await?;
                self.spread = groups
                    .iter()
                    .filter(|g| g.spread)
                    .map(|g| g.name.clone())
                    .collect();
                sizes(groups.iter())
            }
        };
        let total = |m: &BTreeMap<PoolZone, u32>, p: &str| -> u32 {
            m.iter().filter(|((q, _), _)| q == p).map(|(_, n)| n).sum()
        };
        let mut spread_changed = BTreeSet::new();
        for ((p, z), n) in capacity::changes(&observed, want) {
            if self.spread.contains(&p) {
                spread_changed.insert(p.clone());
            } else {
                pool.set_desired(&p, &z, n).await?;
                observed.insert((p, z), n);
            }
        }
        // A group over several zones has one size: set when its total moved, not when only
        // the zones its size is counted in did (a replacement that landed elsewhere).
        for p in spread_changed {
            let sizes: BTreeMap<String, u32> = want
                .iter()
                .filter(|((q, _), _)| *q == p)
                .map(|((_, z), n)| (z.clone(), *n))
                .collect();
            if total(want, &p) != total(&observed, &p) {
                pool.set_sizes(&p, &sizes).await?;
            }
            for (z, n) in sizes {
                observed.insert((p.clone(), z), n);
            }
        }
        self.observed = Some(observed);
        self.last_want = Some(want.clone());
        Ok(())
    }

    /// A terminate-with-decrement at `place` lowered the cloud's size there by one.
    pub(crate) fn decremented(&mut self, place: Option<&PoolZone>) {
        match (place, self.observed.as_mut()) {
            (Some(pz), Some(o)) => {
                if let Some(n) = o.get_mut(pz) {
                    *n = n.saturating_sub(1);
                }
                self.last_want = None;
            }
            _ => self.invalidate(),
        }
    }

    /// The cloud's sizes moved in a way this process cannot tell: read them again.
    pub(crate) fn invalidate(&mut self) {
        self.observed = None;
        self.last_want = None;
    }
}

/// Each group's desired size per (pool, zone).
pub(crate) fn sizes<'a>(groups: impl Iterator<Item = &'a PoolGroup>) -> BTreeMap<PoolZone, u32> {
    groups
        .flat_map(|g| {
            g.desired_per_zone
                .iter()
                .map(|(z, n)| ((g.name.clone(), z.clone()), *n))
        })
        .collect()
}

/// What a round's requests need besides the actions.
pub(crate) struct Actor<'a> {
    pub(crate) cluster: &'a KubeCluster,
    pub(crate) pool: &'a dyn NodePool,
    pub(crate) run: &'a RunContext,
    /// The round's observation (the nodes patches start from).
    pub(crate) seen: &'a Observed,
    /// Each cached node's resourceVersion: patches start from the cache (no GET; a stale
    /// view gets 409 and is read again).
    pub(crate) node_rv: &'a BTreeMap<String, String>,
}

impl Actor<'_> {
    /// One node's marker step (see [`step_patch`]); a node gone meanwhile is left as seen
    /// (the next round sees it Gone).
    async fn step(
        &self,
        name: &str,
        events: &[Event],
        mode: Option<StartMode>,
    ) -> Result<Option<NodeInfo>, EngineError> {
        let (run, now) = (self.run, self.seen.wall);
        self.write(name, |fresh| step_patch(fresh, run, events, mode, now))
            .await
    }

    /// One node's patch made by `f` from the node as stored.
    async fn write(
        &self,
        name: &str,
        f: impl Fn(&NodeInfo) -> NodePatch,
    ) -> Result<Option<NodeInfo>, EngineError> {
        let Some(node) = self.seen.nodes.get(name) else {
            return Ok(None);
        };
        let rv = self.node_rv.get(name).map(String::as_str);
        let patched = self.cluster.patch_node_cached(node, rv, f).await;
        Ok(Some(unless_gone(patched)?.unwrap_or_else(|| node.clone())))
    }

    /// Marks the started nodes (in parallel: a wide window starts hundreds at once).
    async fn starts(&self, actions: &Actions) -> Result<Vec<NodeInfo>, EngineError> {
        let results: Vec<Result<_, _>> = futures::stream::iter(&actions.starts)
            .map(|(name, mode)| async move {
                let from = actions
                    .handed_over
                    .iter()
                    .find(|(_, y)| *y == name)
                    .map(|(x, _)| x.as_str());
                let (run, now) = (self.run, self.seen.wall);
                self.write(name, |fresh| start_patch(fresh, run, *mode, from, now))
                    .await
            })
            .buffered(PARALLEL_REQUESTS)
            .collect()
            .await;
        let written: Vec<Option<NodeInfo>> = results.into_iter().collect::<Result<_, _>>()?;
        Ok(written.into_iter().flatten().collect())
    }

    /// Claims `new` for `old`, then (replacement ready → NoSchedule taint → cordon + drain)
    /// one patch of the old node; `None` when another node claimed `new` meanwhile.
    async fn claim(&self, old: &str, new: &str) -> Result<Option<NodeInfo>, EngineError> {
        let Some(info) = self.seen.nodes.get(new) else {
            return Err(KubeError::NodeGone { node: new.into() }.into());
        };
        let run_id = self.run.run_id.as_str();
        let rv = self.node_rv.get(new).map(String::as_str);
        let claimed = self
            .cluster
            .patch_node_cached(info, rv, |n| claim_patch(n, old, run_id))
            .await?;
        if !claimed_for(&claimed, old) {
            return Ok(None);
        }
        let events = [Event::ReplacementReady, Event::Tainted, Event::DrainStarted];
        self.step(old, &events, None).await
    }

    /// A finished drain: the marker, then the terminate: keeping the size when the decision
    /// wants the cloud to launch the replacement at once, else with decrement (the capacity
    /// sync then puts the size where the markers want it).
    async fn finish(
        &self,
        f: &super::decide::Finish,
        written: Option<&NodeInfo>,
    ) -> Result<(NodeInfo, bool), EngineError> {
        let n = match written {
            Some(n) => n.clone(),
            None => self.finish_marker(&f.node).await?,
        };
        if let Some(id) = &f.terminate {
            let size = if f.keep_size {
                SizeAfter::Keep
            } else {
                SizeAfter::Decrement
            };
            self.pool.terminate(id, size).await?;
        }
        Ok((n, f.terminate.is_some()))
    }

    /// A finished drain's marker: DrainCompleted, TerminateRequested.
    async fn finish_marker(&self, node: &str) -> Result<NodeInfo, EngineError> {
        let events = [Event::DrainCompleted, Event::TerminateRequested];
        let n = self.step(node, &events, None).await?;
        Ok(n.unwrap_or_else(|| self.seen.nodes[node].clone()))
    }

    /// Resumed terminations, one after the other (rare).
    async fn resumed(&self, actions: &Actions) -> Result<Vec<NodeInfo>, EngineError> {
        let mut out = Vec::new();
        for (name, id) in &actions.terminate_drained {
            out.extend(self.step(name, &[Event::TerminateRequested], None).await?);
            if let Some(id) = id {
                self.pool.terminate(id, SizeAfter::Decrement).await?;
            }
        }
        for id in &actions.terminate_ids {
            self.pool.terminate(id, SizeAfter::Decrement).await?;
        }
        for name in &actions.delete_nodes {
            self.cluster.delete_node(name).await?;
        }
        Ok(out)
    }

    /// Carries out `actions`: starts, then the capacity they need (marker first, then the
    /// cloud), the marker steps and rungs, then the busy requests all at once (claims,
    /// evictions, finished drains, resumed terminations, clean-ups). Run one after the other,
    /// a few hundred claims held back the evictions of the drains already running.
    pub(crate) async fn carry_out(
        &self,
        actions: &Actions,
        capacity: &mut CapacitySync,
    ) -> Result<Outcome, EngineError> {
        // A finished drain whose slot passes to a node started now: its marker first.
        let mut pre: BTreeMap<&str, NodeInfo> = BTreeMap::new();
        for f in actions.finish.iter().filter(|f| f.successor.is_some()) {
            pre.insert(&f.node, self.finish_marker(&f.node).await?);
        }
        let mut out = Outcome {
            written: self.starts(actions).await?,
            ..Outcome::default()
        };
        capacity.sync(self.pool, actions.want.as_ref()).await?;
        for (name, events) in &actions.steps {
            out.written.extend(self.step(name, events, None).await?);
        }
        for (name, event) in &actions.rungs {
            let kind = match event {
                Event::Stuck { .. } => "UpgradeDrainStuck",
                Event::LeftCordoned { .. } => "UpgradeLeftCordoned",
                Event::ReplacementFailed { .. } => "UpgradeReplacementFailed",
                _ => "Upgrade",
            };
            let reason = event.reason().unwrap_or_default();
            // A Warning Event on the Node (`kubectl describe node`), then the marker step
            // whose reason is the node's status.
            self.cluster.warn_on_node(name, kind, reason).await;
            out.written
                .extend(self.step(name, std::slice::from_ref(event), None).await?);
        }
        let claims = futures::stream::iter(&actions.claims)
            .map(|(old, new)| self.claim(old, new))
            .buffered(PARALLEL_REQUESTS)
            .collect::<Vec<_>>();
        let evictions = futures::stream::iter(&actions.evictions)
            .map(|e| self.cluster.evict(&e.pod.namespace, &e.pod.name))
            .buffered(PARALLEL_REQUESTS * 2)
            .collect::<Vec<Result<Eviction, KubeError>>>();
        let finished = futures::stream::iter(&actions.finish)
            .map(|f| self.finish(f, pre.get(f.node.as_str())))
            .buffered(PARALLEL_REQUESTS)
            .collect::<Vec<_>>();
        let cleans = futures::stream::iter(&actions.clean)
            .map(|n| async move { self.write(n, abort_patch).await.map(|_| n.clone()) })
            .buffered(PARALLEL_REQUESTS)
            .collect::<Vec<_>>();
        let (claims, evictions, finished, resumed, cleans) =
            futures::join!(claims, evictions, finished, self.resumed(actions), cleans);
        out.cleaned = cleans.into_iter().collect::<Result<_, _>>()?;
        out.claims = claims.into_iter().collect::<Result<_, _>>()?;
        out.evictions = evictions.into_iter().collect::<Result<_, _>>()?;
        for (f, r) in actions.finish.iter().zip(finished) {
            let (n, terminated) = r?;
            // Kept its size: the cloud's sizes are what the sync left them.
            if terminated && !f.keep_size {
                capacity.decremented(self.run.place.get(&n.name));
            }
            out.finished.push((n, terminated));
        }
        out.written.extend(resumed?);
        if !actions.terminate_drained.is_empty() || !actions.terminate_ids.is_empty() {
            // Resumed terminations of an earlier run: some may have been decremented already.
            capacity.invalidate();
        }
        Ok(out)
    }
}
