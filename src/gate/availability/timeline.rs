//! **Pure**: turns availability observations into disruption intervals, per-subject totals and
//! the worst moments. A subject is a PDB (healthy pods versus `desiredHealthy`) or a Service
//! (ready endpoints versus one). Times are seconds since the probe started.

use serde::Serialize;
use std::collections::BTreeMap;

/// What is being watched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Subject {
    /// A PodDisruptionBudget: `currentHealthy` must stay ≥ `desiredHealthy`.
    Pdb { namespace: String, name: String },
    /// A Service with a selector: at least one ready endpoint.
    Service { namespace: String, name: String },
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Pdb { namespace, name } => write!(f, "PDB {namespace}/{name}"),
            Subject::Service { namespace, name } => write!(f, "Service {namespace}/{name}"),
        }
    }
}

/// One stretch of time a subject spent below its minimum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Moment {
    pub(crate) subject: Subject,
    /// Seconds after the probe started.
    pub(crate) start_seconds: f64,
    /// How long (up to the end of the probe when still open).
    pub(crate) duration_seconds: f64,
    /// The lowest healthy count seen in the stretch (pods, or ready endpoints).
    pub(crate) lowest: i64,
    /// What was required (desiredHealthy, or 1 ready endpoint).
    pub(crate) required: i64,
    /// Nodes cordoned when it began (what the upgrade was doing then).
    pub(crate) cordoned_nodes: Vec<String>,
    /// Still below at the end of the probe.
    pub(crate) open_at_end: bool,
}

/// Per-subject result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SubjectSummary {
    pub(crate) subject: Subject,
    /// Total seconds below the minimum.
    pub(crate) disrupted_seconds: f64,
    /// Stretches below the minimum.
    pub(crate) disruptions: usize,
    /// Observations received.
    pub(crate) observations: u64,
}

/// The probe's result (written to `availability.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvailabilityReport {
    /// How long the probe watched.
    pub(crate) watched_seconds: f64,
    /// Σ over subjects of seconds below their minimum.
    pub(crate) disruption_seconds: f64,
    /// PDBs watched.
    pub(crate) pdbs: usize,
    /// Services watched (those that had a ready endpoint at some point).
    pub(crate) services: usize,
    /// Every subject, most disrupted first.
    pub(crate) subjects: Vec<SubjectSummary>,
    /// The longest stretches below minimum, longest first (at most [`WORST_MOMENTS`]).
    pub(crate) worst_moments: Vec<Moment>,
    /// Why the probe could not watch everything (watch errors), if anything.
    pub(crate) errors: Vec<String>,
}

/// How many worst moments the report keeps.
pub(crate) const WORST_MOMENTS: usize = 5;

#[derive(Debug, Default)]
struct Track {
    observations: u64,
    /// Services count only once they have had a ready endpoint (a Service that never had
    /// one is not something the upgrade broke).
    armed: bool,
    open: Option<Moment>,
    closed: Vec<Moment>,
}

/// Accumulates observations.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    tracks: BTreeMap<Subject, Track>,
    errors: Vec<String>,
}

impl Timeline {
    /// Records that at `t` the subject had `healthy` against `required`; `cordoned` is the set of
    /// cordoned nodes at that instant.
    pub(crate) fn observe(
        &mut self,
        subject: &Subject,
        t: f64,
        healthy: i64,
        required: i64,
        cordoned: &[String],
    ) {
        let track = self.tracks.entry(subject.clone()).or_default();
        track.observations += 1;
        let below = healthy < required;
        if !track.armed {
            match subject {
                Subject::Pdb { .. } => track.armed = true,
                Subject::Service { .. } if !below => track.armed = true,
                Subject::Service { .. } => return,
            }
        }
        match (&mut track.open, below) {
            (None, true) => {
                track.open = Some(Moment {
                    subject: subject.clone(),
                    start_seconds: t,
                    duration_seconds: 0.0,
                    lowest: healthy,
                    required,
                    cordoned_nodes: cordoned.to_vec(),
                    open_at_end: false,
                });
            }
            (Some(m), true) => {
                m.lowest = m.lowest.min(healthy);
                m.required = m.required.max(required);
            }
            (Some(_), false) => {
                let mut m = track.open.take().expect("open");
                m.duration_seconds = (t - m.start_seconds).max(0.0);
                track.closed.push(m);
            }
            (None, false) => {}
        }
    }

    /// The subject disappeared (deleted): an open stretch ends at `t`.
    pub(crate) fn forget(&mut self, subject: &Subject, t: f64) {
        if let Some(track) = self.tracks.get_mut(subject) {
            if let Some(mut m) = track.open.take() {
                m.duration_seconds = (t - m.start_seconds).max(0.0);
                track.closed.push(m);
            }
        }
    }

    /// Records a watch problem (reported, and it makes the measurement untrustworthy).
    pub(crate) fn error(&mut self, e: String) {
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    /// The report at `end` (open stretches are counted up to `end`).
    pub(crate) fn finish(&self, end: f64) -> AvailabilityReport {
        let mut subjects = Vec::new();
        let mut moments = Vec::new();
        let (mut pdbs, mut services) = (0, 0);
        for (subject, track) in &self.tracks {
            match subject {
                Subject::Pdb { .. } => pdbs += 1,
                Subject::Service { .. } if track.armed => services += 1,
                Subject::Service { .. } => continue,
            }
            let mut all = track.closed.clone();
            if let Some(m) = &track.open {
                let mut m = m.clone();
                m.duration_seconds = (end - m.start_seconds).max(0.0);
                m.open_at_end = true;
                all.push(m);
            }
            subjects.push(SubjectSummary {
                subject: subject.clone(),
                disrupted_seconds: all.iter().fold(0.0, |acc, m| acc + m.duration_seconds),
                disruptions: all.len(),
                observations: track.observations,
            });
            moments.extend(all);
        }
        subjects.sort_by(|a, b| {
            b.disrupted_seconds
                .total_cmp(&a.disrupted_seconds)
                .then_with(|| a.subject.cmp(&b.subject))
        });
        // Longest first; among equals, the deepest (largest shortfall), then the earliest.
        moments.sort_by(|a, b| {
            b.duration_seconds
                .total_cmp(&a.duration_seconds)
                .then_with(|| (b.required - b.lowest).cmp(&(a.required - a.lowest)))
                .then_with(|| a.start_seconds.total_cmp(&b.start_seconds))
        });
        moments.truncate(WORST_MOMENTS);
        AvailabilityReport {
            watched_seconds: end,
            disruption_seconds: subjects
                .iter()
                .fold(0.0, |acc, s| acc + s.disrupted_seconds),
            pdbs,
            services,
            subjects,
            worst_moments: moments,
            errors: self.errors.clone(),
        }
    }
}

impl Moment {
    /// One line: who, when, how long, how deep, what the upgrade was doing.
    pub(crate) fn describe(&self) -> String {
        let depth = match self.subject {
            Subject::Pdb { .. } => format!("{} healthy of {} required", self.lowest, self.required),
            Subject::Service { .. } => "no ready endpoint".to_string(),
        };
        let nodes = if self.cordoned_nodes.is_empty() {
            String::new()
        } else {
            format!(" while {} cordoned", self.cordoned_nodes.join(", "))
        };
        format!(
            "{} at +{:.1}s for {:.1}s{}: {depth}{nodes}",
            self.subject,
            self.start_seconds,
            self.duration_seconds,
            if self.open_at_end {
                " (still at the end)"
            } else {
                ""
            },
        )
    }
}

/// **Pure**: whether availability held within `max_disruption_seconds`; both arms say what was
/// measured, the failure names the disrupted subjects and the worst moments.
pub(crate) fn judge(r: &AvailabilityReport, max_disruption_seconds: f64) -> Result<String, String> {
    let scope = format!(
        "{} PDBs and {} Services watched for {:.1}s",
        r.pdbs, r.services, r.watched_seconds
    );
    if !r.errors.is_empty() {
        return Err(format!(
            "availability could not be measured ({scope}): {}",
            r.errors.join("; ")
        ));
    }
    if r.disruption_seconds <= max_disruption_seconds {
        return Ok(format!(
            "no disruption above {max_disruption_seconds:.1}s: {:.1}s in total; {scope}",
            r.disruption_seconds
        ));
    }
    let who: Vec<String> = r
        .subjects
        .iter()
        .filter(|s| s.disrupted_seconds > 0.0 || s.disruptions > 0)
        .map(|s| format!("{} {:.1}s", s.subject, s.disrupted_seconds))
        .collect();
    let mut msg = format!(
        "disruption: {:.1}s below minimum (allowed {max_disruption_seconds:.1}s): {}; {scope}\nworst moments:",
        r.disruption_seconds,
        who.join(", ")
    );
    for m in &r.worst_moments {
        msg.push_str("\n  ");
        msg.push_str(&m.describe());
    }
    Err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(n: &str) -> Subject {
        Subject::Pdb {
            namespace: "default".into(),
            name: n.into(),
        }
    }
    fn svc(n: &str) -> Subject {
        Subject::Service {
            namespace: "default".into(),
            name: n.into(),
        }
    }
    fn nodes(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn intervals_below_minimum_are_summed_per_subject() {
        let mut t = Timeline::default();
        t.observe(&pdb("web"), 0.0, 3, 2, &[]);
        t.observe(&pdb("web"), 1.0, 2, 2, &[]); // at the minimum is fine
        t.observe(&pdb("web"), 2.0, 1, 2, &nodes(&["n1"]));
        t.observe(&pdb("web"), 2.5, 0, 2, &nodes(&["n1", "n2"]));
        t.observe(&pdb("web"), 4.0, 2, 2, &[]);
        t.observe(&pdb("web"), 6.0, 1, 2, &[]);
        t.observe(&pdb("web"), 6.5, 3, 2, &[]);
        t.observe(&pdb("db"), 0.0, 3, 2, &[]);
        let r = t.finish(10.0);
        assert_eq!(r.pdbs, 2);
        assert_eq!(r.disruption_seconds, 2.5);
        assert_eq!(r.subjects[0].subject, pdb("web"));
        assert_eq!(r.subjects[0].disruptions, 2);
        assert_eq!(r.subjects[1].disrupted_seconds, 0.0);
        let worst = &r.worst_moments[0];
        assert_eq!(
            (
                worst.start_seconds,
                worst.duration_seconds,
                worst.lowest,
                worst.required
            ),
            (2.0, 2.0, 0, 2)
        );
        assert_eq!(worst.cordoned_nodes, nodes(&["n1"]));
        assert_eq!(
            worst.describe(),
            "PDB default/web at +2.0s for 2.0s: 0 healthy of 2 required while n1 cordoned"
        );
    }

    #[test]
    fn an_open_stretch_counts_until_the_end() {
        let mut t = Timeline::default();
        t.observe(&pdb("web"), 1.0, 1, 2, &[]);
        let r = t.finish(4.0);
        assert_eq!(r.disruption_seconds, 3.0);
        assert!(r.worst_moments[0].open_at_end);
        assert!(r.worst_moments[0].describe().contains("(still at the end)"));
    }

    #[test]
    fn services_count_only_after_they_had_a_ready_endpoint() {
        let mut t = Timeline::default();
        // Never had an endpoint: not watched, not a disruption.
        t.observe(&svc("idle"), 0.0, 0, 1, &[]);
        t.observe(&svc("idle"), 5.0, 0, 1, &[]);
        // Had one, lost it for 1.5 s.
        t.observe(&svc("api"), 0.0, 1, 1, &[]);
        t.observe(&svc("api"), 2.0, 0, 1, &nodes(&["old-1"]));
        t.observe(&svc("api"), 3.5, 1, 1, &[]);
        let r = t.finish(10.0);
        assert_eq!(r.services, 1);
        assert_eq!(r.disruption_seconds, 1.5);
        assert_eq!(
            r.worst_moments[0].describe(),
            "Service default/api at +2.0s for 1.5s: no ready endpoint while old-1 cordoned"
        );
    }

    #[test]
    fn a_deleted_subject_closes_its_stretch() {
        let mut t = Timeline::default();
        t.observe(&pdb("gone"), 1.0, 0, 1, &[]);
        t.forget(&pdb("gone"), 2.0);
        let r = t.finish(9.0);
        assert_eq!(r.disruption_seconds, 1.0);
        assert!(!r.worst_moments[0].open_at_end);
    }

    #[test]
    fn worst_moments_are_the_longest_then_deepest_and_capped() {
        let mut t = Timeline::default();
        for i in 0..8 {
            let s = pdb(&format!("w{i}"));
            t.observe(&s, 0.0, 1 - (i % 2), 2, &[]);
            t.observe(&s, 1.0 + (i / 2) as f64, 2, 2, &[]);
        }
        let r = t.finish(10.0);
        assert_eq!(r.worst_moments.len(), WORST_MOMENTS);
        let got: Vec<(f64, i64)> = r
            .worst_moments
            .iter()
            .map(|m| (m.duration_seconds, m.lowest))
            .collect();
        assert_eq!(got, vec![(4.0, 0), (4.0, 1), (3.0, 0), (3.0, 1), (2.0, 0)]);
    }

    #[test]
    fn judge_names_subjects_and_worst_moments() {
        let mut t = Timeline::default();
        t.observe(&pdb("fragile"), 0.0, 3, 2, &[]);
        t.observe(&pdb("fragile"), 5.0, 1, 2, &nodes(&["old-b"]));
        t.observe(&pdb("fragile"), 8.0, 2, 2, &[]);
        t.observe(&pdb("calm"), 0.0, 3, 2, &[]);
        let r = t.finish(12.0);
        let e = judge(&r, 0.0).unwrap_err();
        assert!(
            e.starts_with("disruption: 3.0s below minimum (allowed 0.0s): PDB default/fragile 3.0s; 2 PDBs and 0 Services watched for 12.0s"),
            "{e}"
        );
        assert!(
            e.contains("\n  PDB default/fragile at +5.0s for 3.0s: 1 healthy of 2 required while old-b cordoned"),
            "{e}"
        );
        assert!(!e.contains("calm"), "{e}");
        assert!(judge(&r, 3.0).is_ok());
        assert_eq!(
            judge(&Timeline::default().finish(1.0), 0.0).unwrap(),
            "no disruption above 0.0s: 0.0s in total; 0 PDBs and 0 Services watched for 1.0s"
        );
    }

    #[test]
    fn watch_errors_make_the_measurement_fail() {
        let mut t = Timeline::default();
        t.error("watch poddisruptionbudgets: 403 Forbidden".into());
        t.error("watch poddisruptionbudgets: 403 Forbidden".into());
        let r = t.finish(1.0);
        assert_eq!(r.errors.len(), 1);
        assert!(judge(&r, 100.0)
            .unwrap_err()
            .contains("could not be measured"));
    }
}
