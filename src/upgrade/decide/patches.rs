//! Pure: the marker patches the engine writes, as functions of the node *as stored* (the
//! fresh read the patch is made against), shared by the engine's adapters and the model the
//! property tests drive.

use super::RunContext;
use crate::upgrade::node_patch::NodePatch;
use crate::upgrade::scheduler::StartMode;
use crate::upgrade::snapshot::NodeInfo;
use crate::upgrade::state::{decode, encode, encode_new, Event, NodeMarkers};
use chrono::{DateTime, Utc};

/// On a new node: the old node it replaces.
pub const REPLACES_ANNOTATION: &str = "upgrade.e2e-gate.io/replaces";
/// On an old node: `surge` or `unavailable` (how its replacement is provided).
pub(crate) const MODE_ANNOTATION: &str = "upgrade.e2e-gate.io/mode";
/// On an old node that took another's surge request over (a pool whose group spans zones):
/// `<node>@<time>`. Written before the other node goes back to Outdated, so a run that
/// crashed between the two writes finishes the handover instead of counting the surge twice.
pub(crate) const SURGE_FROM_ANNOTATION: &str = "upgrade.e2e-gate.io/surge-from";

/// Reads [`SURGE_FROM_ANNOTATION`]: the node that handed over and when.
pub(crate) fn surge_from(n: &NodeInfo) -> Option<(&str, DateTime<Utc>)> {
    let (from, at) = n.annotations.get(SURGE_FROM_ANNOTATION)?.split_once('@')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((from, at))
}

/// The start mode written on an old node, if any.
pub(crate) fn mode_of(n: &NodeInfo) -> Option<StartMode> {
    let written = n.annotations.get(MODE_ANNOTATION)?;
    [StartMode::Surge, StartMode::Unavailable]
        .into_iter()
        .find(|m| m.as_str() == written)
}

/// Whether `fresh`'s pool evacuates hard (see [`encode`]).
fn hard(run: &RunContext, fresh: &NodeInfo) -> bool {
    run.hard_pools.contains(&fresh.pool)
}

/// `events` (in order) applied to `fresh`'s markers (new ones carry `run`'s id), and `mode`
/// written with them, as one patch. An event that is not legal any more stops the sequence, so a stale view can never
/// move a node backwards; no phase change, no patch.
pub fn step_patch(
    fresh: &NodeInfo,
    run: &RunContext,
    events: &[Event],
    mode: Option<StartMode>,
    now: DateTime<Utc>,
) -> NodePatch {
    let mut m = match decode(fresh) {
        Ok(Some(m)) => m,
        Ok(None) => NodeMarkers::new(fresh, &run.run_id, now),
        Err(_) => return NodePatch::default(),
    };
    let before = m.phase;
    for event in events {
        if m.apply(&fresh.name, event, now, fresh.unschedulable)
            .is_err()
        {
            break;
        }
    }
    if m.phase == before {
        return NodePatch::default();
    }
    tracing::info!(node = %fresh.name, from = %before, to = %m.phase, "node step");
    let mut p = encode(&m, hard(run, fresh));
    if let Some(mode) = mode {
        p.annotations
            .insert(MODE_ANNOTATION.into(), Some(mode.as_str().into()));
    }
    p
}

/// A node's start: SurgeRequested, or (no replacement to wait for) taint and cordon at
/// once; a start that takes over another node's surge request names it (`from`, `at`).
pub fn start_patch(
    fresh: &NodeInfo,
    run: &RunContext,
    mode: StartMode,
    from: Option<&str>,
    now: DateTime<Utc>,
) -> NodePatch {
    let events: &[Event] = match mode {
        StartMode::Surge => &[Event::SurgeRequested],
        StartMode::Unavailable => &[Event::Tainted, Event::DrainStarted],
    };
    let mut p = step_patch(fresh, run, events, Some(mode), now);
    if let Some(from) = from {
        if p != NodePatch::default() {
            p.annotations.insert(
                SURGE_FROM_ANNOTATION.into(),
                Some(format!(
                    "{from}@{}",
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )),
            );
        }
    }
    p
}

/// The first markers of a planned node that has none (`Outdated`: soft or hard taint,
/// autoscaler scale-down disabled); nothing on a node already marked.
pub fn mark_patch(fresh: &NodeInfo, run: &RunContext, now: DateTime<Utc>) -> NodePatch {
    match decode(fresh) {
        Ok(None) => encode(&NodeMarkers::new(fresh, &run.run_id, now), hard(run, fresh)),
        _ => NodePatch::default(),
    }
}

/// Marks new node `fresh` as the replacement of `old`; nothing when another old node
/// claimed it meanwhile (a cache a round behind showed it free).
pub fn claim_patch(fresh: &NodeInfo, old: &str, run_id: &str) -> NodePatch {
    if fresh
        .annotations
        .get(REPLACES_ANNOTATION)
        .is_some_and(|r| r != old)
    {
        return NodePatch::default();
    }
    let mut p = encode_new(fresh, run_id);
    p.annotations
        .insert(REPLACES_ANNOTATION.into(), Some(old.to_string()));
    p
}

/// Whether `n` (as the claim patch left it) is `old`'s replacement.
pub fn claimed_for(n: &NodeInfo, old: &str) -> bool {
    n.annotations
        .get(REPLACES_ANNOTATION)
        .is_some_and(|r| r == old)
}
