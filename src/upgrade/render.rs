//! Human rendering of a [`Plan`] (stderr). JSON is the serde form of the same struct.

use super::plan::Plan;
use std::fmt::Write;

fn hms(s: u64) -> String {
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The plan as a few human-readable sections.
pub(crate) fn render_plan(p: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "upgrade plan → {}: {} outdated node(s) in {} wave(s), estimated {} (lower bound {})",
        p.target_version,
        p.outdated.len(),
        p.waves.len(),
        hms(p.estimate.estimated_seconds),
        hms(p.estimate.lower_bound_seconds)
    );
    for w in &p.waves {
        let surge: Vec<String> = w
            .surge
            .iter()
            .map(|s| format!("{}/{}+{}", s.pool, s.zone, s.nodes))
            .collect();
        let _ = writeln!(
            o,
            "  wave {:>2} [{:?}] {} ({}){}",
            w.index,
            w.class,
            w.nodes.join(" "),
            hms(w.estimated_seconds),
            if surge.is_empty() {
                String::new()
            } else {
                format!(" surge {}", surge.join(" "))
            }
        );
    }
    if !p.surge.is_empty() {
        let _ = writeln!(o, "peak surge per pool/zone:");
        for s in &p.surge {
            let _ = writeln!(o, "  {}/{}: {}", s.pool, s.zone, s.nodes);
        }
    }
    for s in &p.skipped {
        let _ = writeln!(o, "skipped {}: {}", s.name, s.reason);
    }
    if p.blockers.is_empty() {
        let _ = writeln!(o, "no blockers");
    } else {
        let _ = writeln!(o, "{} blocker(s):", p.blockers.len());
        for b in &p.blockers {
            let _ = writeln!(o, "  {}", b.line());
        }
    }
    o
}
