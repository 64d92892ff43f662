//! The per-node state machine, **pure**, and its encoding as markers on the Node.
//!
//! Old nodes walk `Outdated → SurgeRequested → ReplacementReady → Tainted → Draining →
//! Drained → Terminating → Gone`; a drain that is stuck goes `Draining → Blocked`, and a
//! blocked node either finishes (`Blocked → Drained`) or is left cordoned
//! (`CordonedLeft`, the run then fails at the end). A replacement that never passes the
//! readiness gate ends at `SurgeRequested → ReplacementFailed`: the old node was never
//! cordoned and keeps serving, its pool stops, the run fails at the end; the next `apply`
//! retries it (`ReplacementFailed → SurgeRequested`). Nodes drained with the
//! unavailability budget skip the surge steps (`Outdated → Tainted`).
//!
//! Everything needed to resume is on the Node itself (annotations under
//! [`ANNOTATION_PREFIX`], the [`ROLE_LABEL`], the [`OUTDATED_TAINT_KEY`] taint, the
//! autoscaler annotation); one Lease ([`LEASE_NAME`]) makes the engine the single writer.
//! A restarted `apply` decodes the markers ([`decode`]) and `decide`'s setup continues from
//! each node's phase (a node at `Drained` or later never drains again); `abort` applies
//! [`abort_patch`] to every marked node.

use super::node_patch::{NodePatch, TaintChange};
use super::snapshot::NodeInfo;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use std::collections::BTreeMap;
use std::fmt;

/// Prefix of every annotation the engine writes.
pub const ANNOTATION_PREFIX: &str = "upgrade.e2e-gate.io/";
/// Current phase of the node ([`NodePhase::as_str`]).
pub(crate) const PHASE_ANNOTATION: &str = "upgrade.e2e-gate.io/phase";
/// Id of the run that owns the node.
pub(crate) const RUN_ANNOTATION: &str = "upgrade.e2e-gate.io/run-id";
/// RFC 3339 time the current phase was entered.
pub(crate) const SINCE_ANNOTATION: &str = "upgrade.e2e-gate.io/phase-since";
/// RFC 3339 time the drain started (stuck-drain deadlines count from here).
pub(crate) const DRAIN_STARTED_ANNOTATION: &str = "upgrade.e2e-gate.io/drain-started";
/// Why the node is `Blocked` or `CordonedLeft`.
pub(crate) const REASON_ANNOTATION: &str = "upgrade.e2e-gate.io/reason";
/// The autoscaler annotation's value before the run (`<absent>` if there was none).
pub(crate) const AUTOSCALER_PRIOR_ANNOTATION: &str = "upgrade.e2e-gate.io/autoscaler-prior";
/// `true` when the engine set `spec.unschedulable` (so abort uncordons only then).
pub(crate) const CORDONED_ANNOTATION: &str = "upgrade.e2e-gate.io/cordoned";
/// `old` on nodes being replaced, `new` on replacement nodes the run created.
pub const ROLE_LABEL: &str = "upgrade.e2e-gate.io/role";
/// Soft-evacuation taint: `PreferNoSchedule` while the node waits for its replacement,
/// `NoSchedule` once replacement capacity is Ready.
pub const OUTDATED_TAINT_KEY: &str = "upgrade.e2e-gate.io/outdated";
/// cluster-autoscaler: keep scale-up, block scale-down of nodes being replaced and of
/// fresh surge nodes.
pub(crate) const AUTOSCALER_ANNOTATION: &str =
    "cluster-autoscaler.kubernetes.io/scale-down-disabled";
/// Name of the Lease that serialises writers.
pub const LEASE_NAME: &str = "e2e-gate-upgrade";
const ABSENT: &str = "<absent>";

/// Phase of an old node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodePhase {
    /// Marked for replacement; nothing requested yet.
    Outdated,
    /// Surge capacity for it was requested from the pool.
    SurgeRequested,
    /// Its replacement never passed the readiness gate in time: the node keeps serving
    /// (never cordoned), its pool stops. The next `apply` retries.
    ReplacementFailed,
    /// Its replacement passed the readiness gate.
    ReplacementReady,
    /// NoSchedule taint set: new pods no longer land here.
    Tainted,
    /// Cordoned, evictions in progress.
    Draining,
    /// Drain stuck past the report deadline; still being worked on per policy.
    Blocked,
    /// Stuck drain given up: left cordoned, the run fails at the end.
    CordonedLeft,
    /// Every evictable pod is gone and replaced.
    Drained,
    /// Instance terminate (with decrement) requested.
    Terminating,
    /// The Node is gone (never written: a planned node no longer in the cluster).
    Gone,
}

impl NodePhase {
    /// Every phase, in walk order.
    pub(crate) const ALL: [NodePhase; 11] = [
        NodePhase::Outdated,
        NodePhase::SurgeRequested,
        NodePhase::ReplacementFailed,
        NodePhase::ReplacementReady,
        NodePhase::Tainted,
        NodePhase::Draining,
        NodePhase::Blocked,
        NodePhase::CordonedLeft,
        NodePhase::Drained,
        NodePhase::Terminating,
        NodePhase::Gone,
    ];

    /// The annotation value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NodePhase::Outdated => "outdated",
            NodePhase::SurgeRequested => "surge-requested",
            NodePhase::ReplacementFailed => "replacement-failed",
            NodePhase::ReplacementReady => "replacement-ready",
            NodePhase::Tainted => "tainted",
            NodePhase::Draining => "draining",
            NodePhase::Blocked => "blocked",
            NodePhase::CordonedLeft => "cordoned-left",
            NodePhase::Drained => "drained",
            NodePhase::Terminating => "terminating",
            NodePhase::Gone => "gone",
        }
    }

    /// Parses an annotation value.
    pub(crate) fn parse(s: &str) -> Option<NodePhase> {
        NodePhase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the node is cordoned in this phase (cordon happens at drain start).
    pub(crate) fn cordoned(self) -> bool {
        matches!(
            self,
            NodePhase::Draining
                | NodePhase::Blocked
                | NodePhase::CordonedLeft
                | NodePhase::Drained
                | NodePhase::Terminating
                | NodePhase::Gone
        )
    }

    /// Effect of the evacuation taint in this phase.
    pub(crate) fn taint_effect(self) -> &'static str {
        match self {
            NodePhase::Outdated
            | NodePhase::SurgeRequested
            | NodePhase::ReplacementFailed
            | NodePhase::ReplacementReady => "PreferNoSchedule",
            _ => "NoSchedule",
        }
    }
}

impl fmt::Display for NodePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Surge capacity requested.
    SurgeRequested,
    /// The replacement did not pass the readiness gate within the deadline.
    ReplacementFailed {
        /// Human reason naming the new node(s) and the failing checks.
        reason: String,
    },
    /// The replacement passed the readiness gate.
    ReplacementReady,
    /// NoSchedule taint set (also directly from `Outdated` on the unavailability path).
    Tainted,
    /// Cordoned; evictions start.
    DrainStarted,
    /// The drain passed the report deadline.
    Stuck {
        /// Human reason naming the pod / PDB.
        reason: String,
    },
    /// Every evictable pod is gone and replaced.
    DrainCompleted,
    /// Policy: leave cordoned, continue with others.
    LeftCordoned {
        /// Human reason.
        reason: String,
    },
    /// Terminate-with-decrement requested.
    TerminateRequested,
    /// In a pool whose group spans zones, the cloud put this node's surge in another zone:
    /// an old node there took the request over, and this one waits its turn again.
    SurgeHandedOver,
}

impl Event {
    /// The human reason a failure-ladder event carries.
    pub(crate) fn reason(&self) -> Option<&str> {
        match self {
            Event::Stuck { reason }
            | Event::LeftCordoned { reason }
            | Event::ReplacementFailed { reason } => Some(reason),
            _ => None,
        }
    }

    fn target(&self) -> NodePhase {
        match self {
            Event::SurgeRequested => NodePhase::SurgeRequested,
            Event::ReplacementFailed { .. } => NodePhase::ReplacementFailed,
            Event::ReplacementReady => NodePhase::ReplacementReady,
            Event::Tainted => NodePhase::Tainted,
            Event::DrainStarted => NodePhase::Draining,
            Event::Stuck { .. } => NodePhase::Blocked,
            Event::DrainCompleted => NodePhase::Drained,
            Event::LeftCordoned { .. } => NodePhase::CordonedLeft,
            Event::TerminateRequested => NodePhase::Terminating,
            Event::SurgeHandedOver => NodePhase::Outdated,
        }
    }
}

/// An event that is not allowed in the current phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {node}: event {event} is not allowed in phase {from}")]
pub struct TransitionError {
    pub(crate) node: String,
    /// Phase at the time.
    pub(crate) from: NodePhase,
    /// The event's target phase.
    pub(crate) event: NodePhase,
}

/// The next phase for `event`, or an error. Re-delivering the event that led to the
/// current phase is allowed and changes nothing (idempotent after a crash).
pub(crate) fn transition(
    node: &str,
    from: NodePhase,
    event: &Event,
) -> Result<NodePhase, TransitionError> {
    use NodePhase::*;
    let to = event.target();
    let ok = to == from
        || matches!(
            (from, to),
            (Outdated, SurgeRequested)
                | (SurgeRequested, ReplacementReady)
                | (SurgeRequested, ReplacementFailed)
                | (ReplacementFailed, SurgeRequested)
                | (ReplacementReady, Tainted)
                | (Outdated, Tainted)
                | (Tainted, Draining)
                | (Draining, Blocked)
                | (Draining, Drained)
                | (Blocked, Drained)
                | (Draining, CordonedLeft)
                | (Blocked, CordonedLeft)
                | (CordonedLeft, Draining)
                | (Drained, Terminating)
                | (SurgeRequested, Outdated)
        );
    ok.then_some(to).ok_or_else(|| TransitionError {
        node: node.to_string(),
        from,
        event: to,
    })
}

/// Everything the engine records on an old node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMarkers {
    /// Phase.
    pub phase: NodePhase,
    /// Owning run.
    pub(crate) run_id: String,
    /// When the phase was entered.
    pub(crate) since: Option<DateTime<Utc>>,
    /// When the drain started.
    pub(crate) drain_started: Option<DateTime<Utc>>,
    /// Reason for `Blocked` / `CordonedLeft`.
    pub reason: Option<String>,
    /// The autoscaler annotation before the run: `None` = was absent.
    pub(crate) autoscaler_prior: Option<String>,
    /// The engine set `spec.unschedulable`.
    pub(crate) cordoned_by_us: bool,
}

impl NodeMarkers {
    /// First markers for an outdated node as found (records what abort must restore).
    pub fn new(node: &NodeInfo, run_id: &str, now: DateTime<Utc>) -> NodeMarkers {
        NodeMarkers {
            phase: NodePhase::Outdated,
            run_id: run_id.to_string(),
            since: Some(whole_seconds(now)),
            drain_started: None,
            reason: None,
            autoscaler_prior: node.annotations.get(AUTOSCALER_ANNOTATION).cloned(),
            cordoned_by_us: false,
        }
    }

    /// Applies `event` at `now`, updating timestamps, reason and cordon ownership.
    /// `was_unschedulable` is the node's cordon state before the engine cordons it.
    pub fn apply(
        &mut self,
        node: &str,
        event: &Event,
        now: DateTime<Utc>,
        was_unschedulable: bool,
    ) -> Result<(), TransitionError> {
        let to = transition(node, self.phase, event)?;
        if to == self.phase {
            return Ok(());
        }
        let now = whole_seconds(now);
        if to == NodePhase::Draining && self.drain_started.is_none() {
            self.drain_started = Some(now);
            self.cordoned_by_us = !was_unschedulable;
        }
        // A later run retries a drain an earlier one left cordoned: its stuck-drain clock
        // starts again (the cordon is still this engine's).
        if to == NodePhase::Draining && self.phase == NodePhase::CordonedLeft {
            self.drain_started = Some(now);
        }
        self.reason = event.reason().map(str::to_string);
        self.phase = to;
        self.since = Some(now);
        Ok(())
    }
}

/// Markers store whole seconds; truncate in memory too so decode(encode(m)) == m.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The patch that makes the node carry exactly `m`'s markers. With `hard_evacuation` a node waiting for its turn (or for its replacement)
/// already carries `NoSchedule`, not `PreferNoSchedule`: in a pool that surges, every drained
/// pod has new capacity to go to, and a preference alone let the scheduler put evicted pods on
/// other outdated nodes, from which they moved a second time. A node whose replacement failed
/// keeps serving and goes back to the soft taint.
pub fn encode(m: &NodeMarkers, hard_evacuation: bool) -> NodePatch {
    let effect = match m.phase {
        NodePhase::Outdated | NodePhase::SurgeRequested | NodePhase::ReplacementReady
            if hard_evacuation =>
        {
            "NoSchedule"
        }
        phase => phase.taint_effect(),
    };
    let a = [
        (PHASE_ANNOTATION, Some(m.phase.as_str().into())),
        (RUN_ANNOTATION, Some(m.run_id.clone())),
        (SINCE_ANNOTATION, m.since.map(ts)),
        (DRAIN_STARTED_ANNOTATION, m.drain_started.map(ts)),
        (REASON_ANNOTATION, m.reason.clone()),
        (
            AUTOSCALER_PRIOR_ANNOTATION,
            Some(m.autoscaler_prior.clone().unwrap_or_else(|| ABSENT.into())),
        ),
        (CORDONED_ANNOTATION, m.cordoned_by_us.then(|| "true".into())),
        (AUTOSCALER_ANNOTATION, Some("true".into())),
    ];
    NodePatch {
        annotations: a.map(|(k, v)| (k.to_string(), v)).into(),
        labels: BTreeMap::from([(ROLE_LABEL.to_string(), Some("old".to_string()))]),
        taints: vec![TaintChange::Set {
            key: OUTDATED_TAINT_KEY.into(),
            effect: effect.into(),
        }],
        unschedulable: m.phase.cordoned().then_some(true),
    }
}

/// Markers for a replacement node the run created: role `new`, scale-down disabled.
pub fn encode_new(node: &NodeInfo, run_id: &str) -> NodePatch {
    let prior = node
        .annotations
        .get(AUTOSCALER_PRIOR_ANNOTATION)
        .cloned()
        .or_else(|| node.annotations.get(AUTOSCALER_ANNOTATION).cloned())
        .unwrap_or_else(|| ABSENT.into());
    NodePatch {
        annotations: BTreeMap::from([
            (RUN_ANNOTATION.to_string(), Some(run_id.to_string())),
            (AUTOSCALER_PRIOR_ANNOTATION.to_string(), Some(prior)),
            (AUTOSCALER_ANNOTATION.to_string(), Some("true".to_string())),
        ]),
        labels: BTreeMap::from([(ROLE_LABEL.to_string(), Some("new".to_string()))]),
        taints: vec![],
        unschedulable: None,
    }
}

/// Markers on a node could not be read; names the node, key and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {node}: annotation {key} has invalid value {value:?}")]
pub struct MarkerError {
    pub(crate) node: String,
    /// Annotation key.
    pub(crate) key: &'static str,
    /// The value found.
    pub(crate) value: String,
}

/// Reads the markers of an old node; `Ok(None)` when it carries none.
pub fn decode(node: &NodeInfo) -> Result<Option<NodeMarkers>, MarkerError> {
    let get = |k: &str| node.annotations.get(k);
    let Some(phase_s) = get(PHASE_ANNOTATION) else {
        return Ok(None);
    };
    let bad = |key: &'static str, value: &str| MarkerError {
        node: node.name.clone(),
        key,
        value: value.to_string(),
    };
    let phase = NodePhase::parse(phase_s).ok_or_else(|| bad(PHASE_ANNOTATION, phase_s))?;
    let time = |key: &'static str| -> Result<Option<DateTime<Utc>>, MarkerError> {
        get(key)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| bad(key, v))
            })
            .transpose()
    };
    let run_id = get(RUN_ANNOTATION)
        .cloned()
        .ok_or_else(|| bad(RUN_ANNOTATION, ""))?;
    Ok(Some(NodeMarkers {
        phase,
        run_id,
        since: time(SINCE_ANNOTATION)?,
        drain_started: time(DRAIN_STARTED_ANNOTATION)?,
        reason: get(REASON_ANNOTATION).cloned(),
        autoscaler_prior: get(AUTOSCALER_PRIOR_ANNOTATION)
            .filter(|v| v.as_str() != ABSENT)
            .cloned(),
        cordoned_by_us: get(CORDONED_ANNOTATION).is_some_and(|v| v == "true"),
    }))
}

/// Whether the node carries any marker of the engine (old or new role).
pub fn is_marked(node: &NodeInfo) -> bool {
    node.labels.contains_key(ROLE_LABEL)
        || node
            .annotations
            .keys()
            .any(|k| k.starts_with(ANNOTATION_PREFIX))
        || node.taints.iter().any(|t| t.key == OUTDATED_TAINT_KEY)
}

/// The patch that removes every marker the engine added and restores what it changed:
/// the autoscaler annotation's prior value and, if the engine cordoned, `unschedulable`.
pub fn abort_patch(node: &NodeInfo) -> NodePatch {
    let mut annotations: BTreeMap<String, Option<String>> = node
        .annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .map(|k| (k.clone(), None))
        .collect();
    if let Some(prior) = node.annotations.get(AUTOSCALER_PRIOR_ANNOTATION) {
        let restored = (prior != ABSENT).then(|| prior.clone());
        if node.annotations.get(AUTOSCALER_ANNOTATION) != restored.as_ref() {
            annotations.insert(AUTOSCALER_ANNOTATION.into(), restored);
        }
    }
    let labels = node
        .labels
        .keys()
        .filter(|k| k.as_str() == ROLE_LABEL)
        .map(|k| (k.clone(), None))
        .collect();
    let cordoned_by_us = node
        .annotations
        .get(CORDONED_ANNOTATION)
        .is_some_and(|v| v == "true");
    NodePatch {
        annotations,
        labels,
        taints: vec![TaintChange::Remove {
            key: OUTDATED_TAINT_KEY.into(),
        }],
        unschedulable: (cordoned_by_us && node.unschedulable).then_some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::snapshot::TaintInfo;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("valid time")
    }

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            pool: "p".into(),
            zone: "a".into(),
            kubelet_version: "v1.33.0".into(),
            ready: true,
            taints: vec![TaintInfo {
                key: "dedicated".into(),
                value: None,
                effect: "NoSchedule".into(),
            }],
            labels: BTreeMap::from([("app".to_string(), "x".to_string())]),
            annotations: BTreeMap::from([("foreign".to_string(), "1".to_string())]),
            ..NodeInfo::default()
        }
    }

    const WALK: &[Event] = &[
        Event::SurgeRequested,
        Event::ReplacementReady,
        Event::Tainted,
        Event::DrainStarted,
        Event::DrainCompleted,
        Event::TerminateRequested,
    ];

    #[test]
    fn round_trip_in_every_phase() {
        let mut n = node();
        let mut m = NodeMarkers::new(&n, "run-1", t(0));
        for (i, ev) in std::iter::once(None)
            .chain(WALK.iter().map(Some))
            .enumerate()
        {
            if let Some(ev) = ev {
                m.apply("n1", ev, t(i as i64), n.unschedulable)
                    .expect("legal");
            }
            encode(&m, false).apply_to(&mut n);
            assert_eq!(
                decode(&n).expect("decodes"),
                Some(m.clone()),
                "phase {}",
                m.phase
            );
            assert_eq!(n.unschedulable, m.phase.cordoned());
            let taint = n
                .taints
                .iter()
                .find(|t| t.key == OUTDATED_TAINT_KEY)
                .expect("taint");
            assert_eq!(taint.effect, m.phase.taint_effect());
        }
        assert_eq!(m.phase, NodePhase::Terminating);
        assert_eq!(m.drain_started, Some(t(4)));
        // Stuck and left-cordoned carry their reason through the annotation.
        let mut m = NodeMarkers::new(&node(), "r", t(0));
        for ev in [
            Event::Tainted,
            Event::DrainStarted,
            Event::Stuck {
                reason: "pdb ns/db".into(),
            },
            Event::LeftCordoned {
                reason: "deadline 30m".into(),
            },
        ] {
            m.apply("n1", &ev, t(1), false).expect("legal");
            let mut n = node();
            encode(&m, false).apply_to(&mut n);
            assert_eq!(decode(&n).expect("decodes"), Some(m.clone()));
        }
        assert_eq!(m.reason.as_deref(), Some("deadline 30m"));
    }

    #[test]
    fn every_transition_table() {
        use NodePhase::*;
        let events = [
            Event::SurgeRequested,
            Event::ReplacementFailed { reason: "r".into() },
            Event::ReplacementReady,
            Event::Tainted,
            Event::DrainStarted,
            Event::Stuck { reason: "r".into() },
            Event::DrainCompleted,
            Event::LeftCordoned { reason: "r".into() },
            Event::TerminateRequested,
            Event::SurgeHandedOver,
        ];
        let legal: &[(NodePhase, NodePhase)] = &[
            (Outdated, SurgeRequested),
            (SurgeRequested, ReplacementReady),
            (SurgeRequested, ReplacementFailed),
            (ReplacementFailed, SurgeRequested),
            (ReplacementReady, Tainted),
            (Outdated, Tainted),
            (Tainted, Draining),
            (Draining, Blocked),
            (Draining, Drained),
            (Blocked, Drained),
            (Draining, CordonedLeft),
            (Blocked, CordonedLeft),
            (CordonedLeft, Draining),
            (Drained, Terminating),
            (SurgeRequested, Outdated),
        ];
        let mut checked = 0;
        for from in NodePhase::ALL {
            for ev in &events {
                let to = ev.target();
                let want_ok = from == to || legal.contains(&(from, to));
                let got = transition("n", from, ev);
                assert_eq!(got.is_ok(), want_ok, "{from} --{to}");
                match got {
                    Ok(p) => assert_eq!(p, to),
                    Err(e) => assert!(e.to_string().contains("node n")),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 110);
    }

    #[test]
    fn a_failed_replacement_never_cordons_and_is_retried_by_the_next_run() {
        let mut m = NodeMarkers::new(&node(), "r", t(0));
        m.apply("n1", &Event::SurgeRequested, t(1), false)
            .expect("legal");
        let why = "new node n9 in w/zone-a: NodeReady is not True";
        m.apply(
            "n1",
            &Event::ReplacementFailed { reason: why.into() },
            t(2),
            false,
        )
        .expect("legal");
        assert_eq!(m.phase, NodePhase::ReplacementFailed);
        assert!(!m.phase.cordoned());
        assert_eq!(m.phase.taint_effect(), "PreferNoSchedule");
        let mut n = node();
        encode(&m, false).apply_to(&mut n);
        assert!(!n.unschedulable, "the old node keeps serving");
        let decoded = decode(&n).expect("decodes").expect("marked");
        assert_eq!(decoded.reason.as_deref(), Some(why));
        assert!(transition("n1", m.phase, &Event::DrainStarted).is_err());
        assert!(transition("n1", m.phase, &Event::Tainted).is_err());
        // The next run retries: a fresh wait, the reason cleared.
        m.apply("n1", &Event::SurgeRequested, t(60), false)
            .expect("retry");
        assert_eq!(m.phase, NodePhase::SurgeRequested);
        assert_eq!(m.since, Some(t(60)));
        assert_eq!(m.reason, None);
    }

    #[test]
    fn a_later_run_retries_a_drain_left_cordoned_with_a_fresh_clock() {
        let mut m = NodeMarkers::new(&node(), "r", t(0));
        for ev in [Event::Tainted, Event::DrainStarted] {
            m.apply("n1", &ev, t(1), false).expect("legal");
        }
        let left = Event::LeftCordoned {
            reason: "left cordoned after 1800s".into(),
        };
        m.apply("n1", &left, t(1801), false).expect("legal");
        assert_eq!(m.drain_started, Some(t(1)));
        m.apply("n1", &Event::DrainStarted, t(4000), true)
            .expect("a later run retries");
        assert_eq!(m.phase, NodePhase::Draining);
        assert_eq!(
            m.drain_started,
            Some(t(4000)),
            "the stuck-drain clock starts again"
        );
        assert!(m.cordoned_by_us, "the cordon is still the engine's to lift");
        assert_eq!(m.reason, None);
    }

    #[test]
    fn resume_never_drains_a_drained_node_again() {
        for phase in [NodePhase::Drained, NodePhase::Terminating, NodePhase::Gone] {
            assert!(
                transition("n", phase, &Event::DrainStarted).is_err(),
                "{phase}"
            );
        }
        // A crash after the Drained marker was written: decode and resume.
        let mut n = node();
        let mut m = NodeMarkers::new(&n, "r", t(0));
        for ev in &WALK[..5] {
            m.apply("n1", ev, t(1), false).expect("legal");
        }
        encode(&m, false).apply_to(&mut n);
        let resumed = decode(&n).expect("decodes").expect("marked");
        assert_eq!(resumed.phase, NodePhase::Drained);
        // Re-delivering the last event is a no-op, not a second drain.
        let mut again = resumed.clone();
        again
            .apply("n1", &Event::DrainCompleted, t(9), true)
            .expect("idempotent");
        assert_eq!(again, resumed);
    }

    #[test]
    fn abort_restores_the_node_exactly() {
        for cordoned_before in [false, true] {
            for ca_prior in [None, Some("false".to_string())] {
                for stop in 0..=WALK.len() {
                    let mut original = node();
                    original.unschedulable = cordoned_before;
                    if let Some(v) = &ca_prior {
                        original
                            .annotations
                            .insert(AUTOSCALER_ANNOTATION.into(), v.clone());
                    }
                    let mut n = original.clone();
                    let mut m = NodeMarkers::new(&n, "r", t(0));
                    for ev in &WALK[..stop] {
                        m.apply("n1", ev, t(1), n.unschedulable).expect("legal");
                    }
                    encode(&m, false).apply_to(&mut n);
                    assert!(is_marked(&n));
                    abort_patch(&n).apply_to(&mut n);
                    assert_eq!(
                        n, original,
                        "stop {stop} cordoned {cordoned_before} ca {ca_prior:?}"
                    );
                    assert!(!is_marked(&n));
                }
            }
        }
        let mut fresh = node();
        encode_new(&fresh, "r").apply_to(&mut fresh);
        assert!(is_marked(&fresh));
        abort_patch(&fresh).apply_to(&mut fresh);
        assert_eq!(fresh, node());
    }

    #[test]
    fn sub_second_times_round_trip() {
        let now = t(0) + chrono::Duration::nanoseconds(496_541_545);
        let mut n = node();
        let mut m = NodeMarkers::new(&n, "r", now);
        m.apply("n1", &Event::Tainted, now, false).expect("legal");
        m.apply("n1", &Event::DrainStarted, now, false)
            .expect("legal");
        encode(&m, false).apply_to(&mut n);
        assert_eq!(decode(&n).expect("decodes"), Some(m));
    }

    #[test]
    fn bad_markers_name_node_and_key() {
        let mut n = node();
        n.annotations
            .insert(PHASE_ANNOTATION.into(), "exploded".into());
        let e = decode(&n).expect_err("bad phase");
        assert!(e.to_string().contains("n1") && e.to_string().contains(PHASE_ANNOTATION));
        n.annotations
            .insert(PHASE_ANNOTATION.into(), "draining".into());
        n.annotations.insert(RUN_ANNOTATION.into(), "r".into());
        n.annotations
            .insert(DRAIN_STARTED_ANNOTATION.into(), "yesterday".into());
        assert_eq!(
            decode(&n).expect_err("bad time").key,
            DRAIN_STARTED_ANNOTATION
        );
        assert_eq!(decode(&node()), Ok(None));
    }
}
