//! Drain decisions, **pure**: the stuck-drain escalation policy, the eviction backoff
//! after a 429, and how many evictions each PDB allows in flight right now.
//!
//! Stuck drains escalate explicitly and never silently: first *report* (Event, status,
//! progress line), then *leave the node cordoned*, continue with the others and fail at the
//! end (a PDB-bypassing force is never done). A PDB that can
//! never allow a disruption ([`never_allows`]) is reported at once, not after the report
//! deadline: waiting cannot help it, and the operator should hear within seconds.

use super::snapshot::{IntOrPercent, PdbInfo};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The stuck-drain policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StuckDrainPolicy {
    /// Report after the drain made no progress this long.
    pub report_after: Duration,
    /// Give up on the node after this long: leave it cordoned and continue.
    pub leave_cordoned_after: Duration,
    /// Fail the run early once this many nodes are left cordoned.
    pub max_blocked_nodes: u32,
}

impl Default for StuckDrainPolicy {
    fn default() -> Self {
        StuckDrainPolicy {
            report_after: Duration::from_secs(5 * 60),
            leave_cordoned_after: Duration::from_secs(30 * 60),
            max_blocked_nodes: 1,
        }
    }
}

/// The decision for a drain that has made no progress for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StuckAction {
    /// Keep waiting (watch-driven).
    Wait,
    /// Publish the blocker (Event + status + progress line); keep waiting.
    Report,
    /// Leave the node cordoned, continue with the others, fail at the end.
    LeaveCordoned,
}

impl StuckDrainPolicy {
    /// Decides for a drain stuck for `stuck_for`. `reported` says whether the blocker
    /// was already reported (reports happen once). A drain that can never finish by waiting
    /// (`hopeless`: a PDB that never allows a disruption, see [`never_allows`]) is reported
    /// at once instead of after `report_after`; the rest of the ladder is unchanged.
    pub(crate) fn decide(
        &self,
        stuck_for: Duration,
        reported: bool,
        hopeless: bool,
    ) -> StuckAction {
        if !hopeless && stuck_for < self.report_after {
            StuckAction::Wait
        } else if !reported {
            StuckAction::Report
        } else if stuck_for >= self.leave_cordoned_after {
            StuckAction::LeaveCordoned
        } else {
            StuckAction::Wait
        }
    }

    /// Whether the run must stop starting new drains (too many nodes left cordoned).
    pub(crate) fn stop_early(&self, blocked_nodes: u32) -> bool {
        blocked_nodes >= self.max_blocked_nodes.max(1)
    }
}

/// Capped, jittered exponential backoff for evictions answered 429. It is a safety net:
/// the engine normally wakes on the PDB watch (`disruptionsAllowed` went up).
/// Each delay is `d/2 + U[0, d/2]` with `d = min(cap, base·2^n)`, so it never exceeds `cap`.
#[derive(Debug, Clone)]
pub(crate) struct EvictionBackoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: rand::rngs::StdRng,
}

impl EvictionBackoff {
    /// Default: 1s base, 60s cap (reference/upgrade.md d.2).
    /// `seed` makes the jitter reproducible in tests.
    pub(crate) fn new(seed: u64) -> Self {
        EvictionBackoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            attempt: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }
}

impl Iterator for EvictionBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let d = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        let jitter_ms = self.rng.random_range(0..=half.as_millis() as u64);
        Some(half + Duration::from_millis(jitter_ms))
    }
}

/// How long an eviction may stay unconfirmed by the PDB watch before its token is
/// settled anyway (see [`EvictionTokens`]): long enough for the watch to deliver the
/// eviction's own status write, short enough that a missed one costs little.
pub(crate) const UNCONFIRMED_GRACE: Duration = Duration::from_secs(5);

/// Per-PDB eviction tokens: the last `disruptionsAllowed` seen on the PDB watch minus
/// this engine's evictions that the status does not count yet.
///
/// Which evictions a status counts: the Eviction API decrements `disruptionsAllowed` and
/// records the pod in `status.disruptedPods` in one write, and the disruption controller
/// drops the entry only once the pod is terminating (no longer counted healthy). The watch
/// delivers one PDB's writes in order, so once an event has listed the pod
/// ([`Self::confirm`]), that status and every later one count its eviction. A status
/// written *before* the eviction but delivered after it was sent counts nothing: treating
/// every new status as complete (as this did first) handed that token out twice, and the
/// 300-node benchmark saw 289 refused evictions. An eviction no event confirms (a watch
/// re-list skipped the write) is settled after [`UNCONFIRMED_GRACE`]; should that be too
/// early, the API answers 429 and [`Self::refused`] holds the PDB until its next status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictionTokens {
    allowed: BTreeMap<String, i32>,
    /// PDB → pod name → when its token was taken.
    unconfirmed: BTreeMap<String, BTreeMap<String, Instant>>,
}

/// Why a pod may not be evicted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The PDB has no token left; wait for its status to change.
    Budget {
        /// `namespace/name` of the PDB.
        pdb: String,
    },
    /// The pod is covered by several PDBs; the API would answer 500.
    MultiplePdbs {
        /// The PDBs.
        pdbs: Vec<String>,
    },
}

impl EvictionTokens {
    /// A new PDB status was observed on the watch.
    pub fn observe(&mut self, pdb: &str, disruptions_allowed: i32) {
        self.allowed.insert(pdb.to_string(), disruptions_allowed);
    }

    /// A status of `pdb` listed `pod` in `disruptedPods`: it and every later status count
    /// that pod's eviction. Also gives `pod`'s token back when its eviction failed, found
    /// the pod gone, or used no budget.
    pub fn confirm(&mut self, pdb: &str, pod: &str) {
        if let Some(m) = self.unconfirmed.get_mut(pdb) {
            m.remove(pod);
        }
    }

    /// Settles every eviction unconfirmed for `grace` or longer at `now`.
    pub(crate) fn settle_older_than(&mut self, now: Instant, grace: Duration) {
        for m in self.unconfirmed.values_mut() {
            m.retain(|_, at| now.saturating_duration_since(*at) < grace);
        }
    }

    /// Tokens left for `pdb` now.
    pub fn available(&self, pdb: &str) -> i32 {
        let unconfirmed = self.unconfirmed.get(pdb).map_or(0, BTreeMap::len);
        self.allowed.get(pdb).copied().unwrap_or(0) - unconfirmed as i32
    }

    /// Takes a token at `now` for `pod` covered by `pdbs` (none: always allowed).
    pub fn try_take(&mut self, pod: &str, pdbs: &[String], now: Instant) -> Result<(), Hold> {
        match pdbs {
            [] => Ok(()),
            [one] => {
                if self.available(one) > 0 {
                    self.unconfirmed
                        .entry(one.clone())
                        .or_default()
                        .insert(pod.to_string(), now);
                    Ok(())
                } else {
                    Err(Hold::Budget { pdb: one.clone() })
                }
            }
            many => Err(Hold::MultiplePdbs {
                pdbs: many.to_vec(),
            }),
        }
    }

    /// The API refused `pod`'s eviction under `pdb` (429): give the token back and hold
    /// the PDB at zero until the next status observation (or a [`Self::probe`]).
    pub fn refused(&mut self, pdb: &str, pod: &str) {
        self.confirm(pdb, pod);
        self.allowed.insert(pdb.to_string(), 0);
    }

    /// Safety net when no status change arrives: allow one eviction attempt.
    pub(crate) fn probe(&mut self, pdb: &str) {
        let a = self.allowed.entry(pdb.to_string()).or_insert(0);
        *a = (*a).max(1);
    }
}

/// How long an integer `minAvailable` must keep allowing nothing, with every expected pod
/// healthy, before the drain is reported hopeless. While a StatefulSet pod is recreated its
/// PDB briefly counts one pod fewer (expectedPods = currentHealthy = minAvailable), which
/// looks exactly like `minAvailable` = replicas for a moment.
pub(crate) const HOPELESS_HOLD: Duration = Duration::from_secs(5);

/// Whether the PDB's spec alone forbids every disruption whatever the workload's size
/// (`maxUnavailable: 0` or `0%`, `minAvailable: 100%`): no transient status can cause that.
pub(crate) fn forbids_by_spec(pdb: &PdbInfo) -> bool {
    use IntOrPercent::{Int, Percent};
    match (pdb.min_available, pdb.max_unavailable) {
        (Some(Percent(p)), _) => p >= 100,
        (Some(Int(_)), _) => false,
        (None, Some(Int(m))) => m <= 0,
        (None, Some(Percent(p))) => p == 0,
        (None, None) => false,
    }
}

/// [`never_allows`] as a verdict the engine may act on: at once when the spec forbids every
/// disruption, otherwise only after the condition held for [`HOPELESS_HOLD`] (`held`: how long
/// it has been observed without a break).
pub(crate) fn hopeless(pdb: &PdbInfo, held: Duration) -> Option<String> {
    let why = never_allows(pdb)?;
    (forbids_by_spec(pdb) || held >= HOPELESS_HOLD).then_some(why)
}

/// Why `pdb` can never allow a voluntary disruption, from its spec and observed status:
/// with every expected pod healthy it still allows none (`minAvailable` = replicas,
/// `maxUnavailable: 0`), and its status agrees. `None` while it allows one, when it only
/// waits for pods to become healthy again, or before the controller wrote a status.
pub(crate) fn never_allows(pdb: &PdbInfo) -> Option<String> {
    let st = pdb.status?;
    if st.expected_pods <= 0
        || st.disruptions_allowed > 0
        || st.current_healthy < st.expected_pods
        || pdb.steady_state_allowed(st.expected_pods) > 0
    {
        return None;
    }
    let rule = match (pdb.min_available, pdb.max_unavailable) {
        (Some(m), _) => format!("minAvailable {m}"),
        (None, Some(m)) => format!("maxUnavailable {m}"),
        (None, None) => "minAvailable 1 (the default)".to_string(),
    };
    Some(format!(
        "PDB {} allows no disruption even with all {} pods healthy ({rule}): its pods cannot be \
         evicted until the PDB or the workload changes",
        pdb.key(),
        st.expected_pods
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::snapshot::PdbStatus;

    #[test]
    fn a_transient_integer_min_available_status_is_not_hopeless_at_once() {
        // Regression: minAvailable 2 of 3 replicas, one StatefulSet pod being recreated: the
        // status says expected 2, healthy 2, allowed 0 for a moment; reported at once, the
        // node was blocked (and with a short --stuck-leave-after left cordoned) for nothing.
        let b = pdb(Some(IntOrPercent::Int(2)), None, Some((0, 2, 2)));
        assert!(never_allows(&b).is_some());
        assert!(!forbids_by_spec(&b));
        assert_eq!(hopeless(&b, Duration::ZERO), None);
        assert!(hopeless(&b, HOPELESS_HOLD).is_some());
        // maxUnavailable 0 forbids by spec: reported at once.
        let zero = pdb(None, Some(IntOrPercent::Int(0)), Some((0, 3, 3)));
        assert!(forbids_by_spec(&zero) && hopeless(&zero, Duration::ZERO).is_some());
        let all = pdb(Some(IntOrPercent::Percent(100)), None, Some((0, 3, 3)));
        assert!(hopeless(&all, Duration::ZERO).is_some());
    }

    fn pdb(
        min: Option<IntOrPercent>,
        max: Option<IntOrPercent>,
        status: Option<(i32, i32, i32)>,
    ) -> PdbInfo {
        PdbInfo {
            namespace: "shop".into(),
            name: "db".into(),
            selector: None,
            min_available: min,
            max_unavailable: max,
            always_allow_unhealthy: false,
            status: status.map(|(allowed, expected, healthy)| PdbStatus {
                disruptions_allowed: allowed,
                expected_pods: expected,
                current_healthy: healthy,
                desired_healthy: expected - allowed,
            }),
        }
    }

    #[test]
    fn a_pdb_that_can_never_allow_a_disruption_is_named_with_its_rule() {
        use IntOrPercent::*;
        let why = never_allows(&pdb(Some(Int(3)), None, Some((0, 3, 3)))).expect("never");
        assert!(
            why.contains("PDB shop/db") && why.contains("minAvailable 3"),
            "{why}"
        );
        assert!(why.contains("all 3 pods healthy"), "{why}");
        let why = never_allows(&pdb(None, Some(Int(0)), Some((0, 2, 2)))).expect("never");
        assert!(why.contains("maxUnavailable 0"), "{why}");
        assert!(never_allows(&pdb(Some(Percent(100)), None, Some((0, 5, 5)))).is_some());
        // A single replica under the default minAvailable 1.
        assert!(never_allows(&pdb(None, None, Some((0, 1, 1)))).is_some());
    }

    #[test]
    fn a_hopeless_drain_is_reported_at_once_then_follows_the_ladder() {
        let p = StuckDrainPolicy::default();
        assert_eq!(p.decide(s(0), false, true), StuckAction::Report);
        assert_eq!(p.decide(s(0), false, false), StuckAction::Wait);
        // Reported already: waits for the leave-cordoned deadline like any stuck drain.
        assert_eq!(p.decide(s(60), true, true), StuckAction::Wait);
        // ... even when it comes before the (skipped) report deadline.
        let quick = StuckDrainPolicy {
            leave_cordoned_after: s(2),
            ..StuckDrainPolicy::default()
        };
        assert_eq!(quick.decide(s(2), true, true), StuckAction::LeaveCordoned);
        assert_eq!(quick.decide(s(2), true, false), StuckAction::Wait);
        assert_eq!(
            p.decide(p.leave_cordoned_after, true, true),
            StuckAction::LeaveCordoned
        );
    }

    #[test]
    fn a_pdb_that_only_waits_is_not_reported_early() {
        use IntOrPercent::*;
        // Allows one now.
        assert!(never_allows(&pdb(Some(Int(2)), None, Some((1, 3, 3)))).is_none());
        // Budget used up by an unhealthy pod: it recovers once the pod is Ready.
        assert!(never_allows(&pdb(Some(Int(2)), None, Some((0, 3, 2)))).is_none());
        // minAvailable = replicas but a pod is still starting: not decided yet.
        assert!(never_allows(&pdb(Some(Int(3)), None, Some((0, 3, 2)))).is_none());
        // No status yet, or no pods.
        assert!(never_allows(&pdb(Some(Int(3)), None, None)).is_none());
        assert!(never_allows(&pdb(Some(Int(0)), None, Some((0, 0, 0)))).is_none());
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn ladder() {
        let p = StuckDrainPolicy::default();
        assert_eq!(p.decide(s(10), false, false), StuckAction::Wait);
        assert_eq!(p.decide(s(300), false, false), StuckAction::Report);
        assert_eq!(p.decide(s(301), true, false), StuckAction::Wait);
        assert_eq!(p.decide(s(1800), true, false), StuckAction::LeaveCordoned);
        // Never a force, whatever the time.
        assert_eq!(
            p.decide(s(100_000), true, false),
            StuckAction::LeaveCordoned
        );
        assert!(
            p.stop_early(1)
                && !StuckDrainPolicy {
                    max_blocked_nodes: 3,
                    ..p
                }
                .stop_early(2)
        );
    }

    #[test]
    fn backoff_is_capped_jittered_and_growing() {
        let delays: Vec<Duration> = EvictionBackoff::new(7).take(30).collect();
        for (i, d) in delays.iter().enumerate() {
            let ceiling = s(1).saturating_mul(1 << i.min(20)).min(s(60));
            assert!(*d <= ceiling && *d >= ceiling / 2, "step {i}: {d:?}");
        }
        assert!(delays[29] >= s(30));
        let other: Vec<Duration> = EvictionBackoff::new(8).take(30).collect();
        assert_ne!(delays, other, "jitter differs by seed");
        assert_eq!(delays, EvictionBackoff::new(7).take(30).collect::<Vec<_>>());
    }

    #[test]
    fn tokens_follow_disruptions_allowed() {
        let now = Instant::now();
        let mut t = EvictionTokens::default();
        t.observe("ns/web", 2);
        let c: [(&str, &[&str]); 6] = [
            ("a", &["ns/web"]),
            ("b", &["ns/web"]),
            ("c", &["ns/web"]),
            ("free", &[]),
            ("x", &["ns/web", "ns/other"]),
            ("d", &["ns/db"]),
        ];
        let mut go = Vec::new();
        let mut hold = Vec::new();
        for (pod, pdbs) in c {
            let pdbs: Vec<String> = pdbs.iter().map(|p| p.to_string()).collect();
            match t.try_take(pod, &pdbs, now) {
                Ok(()) => go.push(pod),
                Err(h) => hold.push((pod, h)),
            }
        }
        assert_eq!(go, vec!["a", "b", "free"]);
        assert_eq!(hold.len(), 3);
        let budget = |pdb: &str| Hold::Budget { pdb: pdb.into() };
        assert_eq!(hold[0], ("c", budget("ns/web")));
        assert!(matches!(&hold[1].1, Hold::MultiplePdbs { pdbs } if pdbs.len() == 2));
        assert_eq!(hold[2].1, budget("ns/db"));
        assert_eq!(t.available("ns/web"), 0);
        t.confirm("ns/web", "b");
        assert_eq!(t.available("ns/web"), 1);
        // The eviction's own write: a's entry in disruptedPods, the budget one lower.
        t.observe("ns/web", 1);
        t.confirm("ns/web", "a");
        assert_eq!(t.available("ns/web"), 1);
        assert!(t.try_take("c", &["ns/web".into()], now).is_ok());
        // A 429 holds the PDB until the next observation; a probe allows one retry.
        t.refused("ns/web", "c");
        assert_eq!(t.available("ns/web"), 0);
        // c's token is back too: the probe's one attempt is not eaten by it.
        t.probe("ns/web");
        assert_eq!(t.available("ns/web"), 1);
        t.observe("ns/web", 3);
        assert_eq!(t.available("ns/web"), 3);
    }

    /// Regression (300-node benchmark: 289 refused evictions, 15 pods evicted twice): a
    /// status written before an eviction but observed after it was sent must not give
    /// that eviction's token out again.
    #[test]
    fn a_status_older_than_an_eviction_does_not_return_its_token() {
        let now = Instant::now();
        let web = ["ns/web".to_string()];
        let mut t = EvictionTokens::default();
        t.observe("ns/web", 1);
        assert!(t.try_take("a", &web, now).is_ok());
        // The controller's recount from before the eviction arrives: still 1 allowed.
        t.observe("ns/web", 1);
        assert_eq!(
            t.available("ns/web"),
            0,
            "a's eviction is not in that status"
        );
        assert!(t.try_take("b", &web, now).is_err());
        // The eviction's write (disruptedPods lists a, 0 allowed), then the recount once
        // a terminates (entry dropped): counted from the first on.
        t.observe("ns/web", 0);
        t.confirm("ns/web", "a");
        assert_eq!(t.available("ns/web"), 0);
        // a's replacement is Ready.
        t.observe("ns/web", 1);
        assert_eq!(t.available("ns/web"), 1);
        // Confirming a pod this engine did not evict changes nothing.
        t.confirm("ns/web", "stranger");
        t.confirm("ns/other", "a");
        assert_eq!(t.available("ns/web"), 1);
    }

    #[test]
    fn unconfirmed_evictions_settle_after_the_grace() {
        let t0 = Instant::now();
        let web = ["ns/web".to_string()];
        let mut t = EvictionTokens::default();
        t.observe("ns/web", 2);
        assert!(t.try_take("a", &web, t0).is_ok());
        assert!(t.try_take("b", &web, t0 + s(3)).is_ok());
        t.observe("ns/web", 2);
        t.settle_older_than(t0 + s(4), UNCONFIRMED_GRACE);
        assert_eq!(t.available("ns/web"), 0);
        t.settle_older_than(t0 + UNCONFIRMED_GRACE, UNCONFIRMED_GRACE);
        assert_eq!(t.available("ns/web"), 1, "a settled, b not yet");
        t.settle_older_than(t0 + s(8), UNCONFIRMED_GRACE);
        assert_eq!(t.available("ns/web"), 2, "both settled");
    }
}
