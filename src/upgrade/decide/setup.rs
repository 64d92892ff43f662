//! Pure: what a process that takes a run over decides before its first round, and what it
//! decides after its last.

use super::{phases, written_modes, Memory, RunContext};
use crate::upgrade::report::BlockedNode;
use crate::upgrade::scheduler::admit;
use crate::upgrade::snapshot::NodeInfo;
use crate::upgrade::state::{decode, Event, MarkerError, NodePhase, ROLE_LABEL, RUN_ANNOTATION};
use std::collections::{BTreeMap, BTreeSet};

/// The run id to use: the one found on any marker (an old node's phase, or a new node's
/// run id: after a kill just past the last old node's deletion only new nodes carry it),
/// else `fresh`.
pub fn adopt_run_id<'a>(
    nodes: impl IntoIterator<Item = &'a NodeInfo> + Clone,
    fresh: &str,
) -> String {
    nodes
        .clone()
        .into_iter()
        .find_map(|n| decode(n).ok().flatten().map(|m| m.run_id))
        .or_else(|| {
            nodes
                .into_iter()
                .filter(|n| n.labels.get(ROLE_LABEL).is_some_and(|r| r == "new"))
                .find_map(|n| n.annotations.get(RUN_ANNOTATION).cloned())
        })
        .unwrap_or_else(|| fresh.to_string())
}

/// Planned nodes an earlier run gave up on, with the event that retries them: a replacement
/// that failed is requested again (its surge instance is still there, so the capacity does
/// not change); a drain left cordoned starts again (its PDB may have been relaxed since).
pub fn retries(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
) -> Result<Vec<(String, Event)>, MarkerError> {
    let mut out = Vec::new();
    for n in nodes.values() {
        if !run.place.contains_key(&n.name) {
            continue;
        }
        match decode(n)?.map(|m| m.phase) {
            Some(NodePhase::ReplacementFailed) => {
                out.push((n.name.clone(), Event::SurgeRequested));
            }
            Some(NodePhase::CordonedLeft) => out.push((n.name.clone(), Event::DrainStarted)),
            _ => {}
        }
    }
    Ok(out)
}

/// Planned nodes that get their first markers up front (soft or hard taint, autoscaler
/// scale-down disabled, phase Outdated). Nodes the first admission starts get theirs with
/// their first step (one patch, not two).
pub fn nodes_to_mark(
    run: &RunContext,
    nodes: &BTreeMap<String, NodeInfo>,
) -> Result<Vec<String>, MarkerError> {
    let mem = Memory::default();
    let phases = phases(run, nodes, &mem)?;
    let modes = written_modes(run, nodes);
    let first: BTreeSet<String> = admit(
        &run.plan,
        &run.opts,
        &phases,
        &modes,
        &run.policy,
        &BTreeMap::new(),
    )
    .start
    .into_iter()
    .map(|(n, _)| n)
    .collect();
    let mut out = Vec::new();
    for n in nodes.values() {
        if run.place.contains_key(&n.name) && decode(n)?.is_none() && !first.contains(&n.name) {
            out.push(n.name.clone());
        }
    }
    Ok(out)
}

/// Planned nodes that never started (their pool stopped, or the run stopped early): they go
/// back to how they were.
pub fn never_started(final_phases: &BTreeMap<String, NodePhase>) -> Vec<String> {
    final_phases
        .iter()
        .filter(|(_, p)| **p == NodePhase::Outdated)
        .map(|(n, _)| n.clone())
        .collect()
}

/// Nodes given up on, in this run or an earlier one, that `reported` does not list yet.
pub(crate) fn given_up(
    nodes: &BTreeMap<String, NodeInfo>,
    final_phases: &BTreeMap<String, NodePhase>,
    reported: &[BlockedNode],
) -> Vec<BlockedNode> {
    let mut out = Vec::new();
    for n in nodes.values() {
        let Some(ph) = final_phases.get(&n.name) else {
            continue;
        };
        if matches!(ph, NodePhase::CordonedLeft | NodePhase::ReplacementFailed)
            && !reported.iter().any(|b| b.node == n.name)
        {
            let reason = decode(n)
                .ok()
                .flatten()
                .and_then(|m| m.reason)
                .unwrap_or_else(|| ph.to_string());
            out.push(BlockedNode {
                node: n.name.clone(),
                reason,
            });
        }
    }
    out
}

/// New nodes still marked once the run is over, whatever run marked them: the Lease is ours
/// and nothing is in flight any more, so a marker left by a killed run is a leftover.
pub fn leftover_new_nodes(
    nodes: &BTreeMap<String, NodeInfo>,
    cleaned: &BTreeSet<String>,
) -> Vec<String> {
    nodes
        .values()
        .filter(|n| {
            !cleaned.contains(&n.name) && n.labels.get(ROLE_LABEL).is_some_and(|r| r == "new")
        })
        .map(|n| n.name.clone())
        .collect()
}

/// Whether the run-wide state (base capacity on the Lease) must outlive this process:
/// some planned node is still marked.
pub fn keep_state(final_phases: &BTreeMap<String, NodePhase>) -> bool {
    final_phases
        .values()
        .any(|p| !matches!(p, NodePhase::Outdated | NodePhase::Gone))
}
