//! Pure gate decision from commit statuses, check runs, soak time and "now".
//!
//! Every required context is evaluated on its own (never GitHub's combined state), from both
//! commit statuses and check runs, latest per context, case-insensitively. A context with no
//! status and no check run counts as pending ("missing"). When a context has both a status and
//! a check run, both must be `success` (as in GitHub branch protection).

use crate::status::StatusState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// One commit status as read from `GET /commits/{sha}/statuses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub(crate) context: String,
    pub(crate) state: StatusState,
    /// When it was posted.
    pub(crate) created_at: DateTime<Utc>,
}

/// One check run as read from `GET /commits/{sha}/check-runs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Check {
    /// Check name (matched like a context).
    pub(crate) name: String,
    /// `queued`, `in_progress`, `completed`, …
    pub(crate) status: String,
    /// `success`, `failure`, `neutral`, `skipped`, … once completed.
    pub(crate) conclusion: Option<String>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
}

/// Why the gate is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The latest status or check run of a required context is not successful.
    Failing {
        /// Context.
        context: String,
        /// `failure`, `error`, `cancelled`, `timed_out`, …
        state: String,
        /// `status` or `check_run`.
        source: &'static str,
    },
    /// A required context is still running.
    Pending {
        /// Context.
        context: String,
    },
    /// A required context was never reported on the commit (counts as pending).
    Missing {
        /// Context.
        context: String,
    },
    /// A required context has not been green for the soak time yet.
    Soak {
        /// Context.
        context: String,
        /// Seconds still to wait.
        remaining_secs: u64,
    },
    /// The target cannot be fast-forwarded to the source head.
    NotFastForward {
        /// `behind` or `diverged`.
        ancestry: String,
        /// Explanation and the way out.
        message: String,
    },
    /// The target moved while promoting, twice.
    TargetMoved {
        /// Explanation.
        message: String,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Failing {
                context,
                state,
                source,
            } => write!(f, "{context}: {state} ({})", source.replace('_', " ")),
            Reason::Pending { context } => write!(f, "{context}: pending"),
            Reason::Missing { context } => {
                write!(f, "{context}: missing (never reported on this commit)")
            }
            Reason::Soak {
                context,
                remaining_secs,
            } => write!(
                f,
                "{context}: soak not reached, {} remaining",
                humantime::format_duration(Duration::from_secs(*remaining_secs))
            ),
            Reason::NotFastForward { message, .. } | Reason::TargetMoved { message } => {
                f.write_str(message)
            }
        }
    }
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Move the target.
    Promote,
    /// The target already has the source head.
    NothingToDo {
        /// Why.
        why: String,
    },
    /// Refused, with every reason.
    Closed {
        /// Reasons, in required-context order.
        reasons: Vec<Reason>,
    },
}

enum Eval {
    Success(DateTime<Utc>),
    Pending,
    Failing(String, &'static str),
}

fn eval_status(context: &str, statuses: &[Observed]) -> Option<Eval> {
    let mut mine: Vec<&Observed> = statuses
        .iter()
        .filter(|s| s.context.eq_ignore_ascii_case(context))
        .collect();
    // latest first; the API already returns latest first, the stable sort keeps ties in order
    mine.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let latest = mine.first()?;
    Some(match latest.state {
        StatusState::Success => {
            // green since the oldest success of the unbroken run of successes at the top
            let since = mine
                .iter()
                .take_while(|s| s.state == StatusState::Success)
                .last()
                .map(|s| s.created_at)
                .unwrap_or(latest.created_at);
            Eval::Success(since)
        }
        StatusState::Pending => Eval::Pending,
        other => Eval::Failing(other.as_str().to_string(), "status"),
    })
}

fn eval_check(context: &str, checks: &[Check]) -> Option<Eval> {
    let latest = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name.eq_ignore_ascii_case(context))
        // latest start wins; on equal times the one listed first (GitHub lists newest first)
        .max_by_key(|(i, c)| (c.started_at.or(c.completed_at), std::cmp::Reverse(*i)))
        .map(|(_, c)| c)?;
    if latest.status != "completed" {
        return Some(Eval::Pending);
    }
    Some(match latest.conclusion.as_deref() {
        Some("success") => Eval::Success(
            latest
                .completed_at
                .or(latest.started_at)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        ),
        Some(other) => Eval::Failing(other.to_string(), "check_run"),
        None => Eval::Pending,
    })
}

/// Every reason the required contexts keep the gate closed (empty: open).
pub(crate) fn evaluate_contexts(
    required: &[String],
    statuses: &[Observed],
    checks: &[Check],
    soak: Option<Duration>,
    now: DateTime<Utc>,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    for context in required {
        let evals: Vec<Eval> = [eval_status(context, statuses), eval_check(context, checks)]
            .into_iter()
            .flatten()
            .collect();
        if evals.is_empty() {
            reasons.push(Reason::Missing {
                context: context.clone(),
            });
            continue;
        }
        let mut failing = false;
        for e in &evals {
            if let Eval::Failing(state, source) = e {
                failing = true;
                reasons.push(Reason::Failing {
                    context: context.clone(),
                    state: state.clone(),
                    source,
                });
            }
        }
        if failing {
            continue;
        }
        if evals.iter().any(|e| matches!(e, Eval::Pending)) {
            reasons.push(Reason::Pending {
                context: context.clone(),
            });
            continue;
        }
        let since = evals
            .iter()
            .filter_map(|e| match e {
                Eval::Success(t) => Some(*t),
                _ => None,
            })
            .max()
            .unwrap_or(now);
        if let Some(soak) = soak {
            let green_for = (now - since).to_std().unwrap_or(Duration::ZERO);
            if green_for < soak {
                let remaining = soak - green_for;
                reasons.push(Reason::Soak {
                    context: context.clone(),
                    remaining_secs: remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0),
                });
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mins_ago: i64) -> DateTime<Utc> {
        now() - chrono::Duration::minutes(mins_ago)
    }
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }
    fn st(context: &str, state: StatusState, mins_ago: i64) -> Observed {
        Observed {
            context: context.into(),
            state,
            created_at: t(mins_ago),
        }
    }
    fn check(name: &str, status: &str, conclusion: Option<&str>, mins_ago: i64) -> Check {
        Check {
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_string),
            started_at: Some(t(mins_ago + 1)),
            completed_at: Some(t(mins_ago)),
        }
    }
    fn req(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_green_is_open() {
        use StatusState::*;
        let statuses = [st("E2E-Gate/Conformance", Success, 10)];
        let checks = [check("lint", "completed", Some("success"), 5)];
        let r = evaluate_contexts(
            &req(&["e2e-gate/conformance", "lint"]),
            &statuses,
            &checks,
            None,
            now(),
        );
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn latest_wins_and_every_reason_is_listed() {
        use StatusState::*;
        let statuses = [
            st("a", Failure, 1),
            st("a", Success, 30), // older success does not count
            st("b", Success, 1),
            st("b", Pending, 30),
            st("c", Pending, 2),
        ];
        let checks = [
            check("d", "completed", Some("timed_out"), 1),
            check("d", "completed", Some("success"), 50),
            check("e", "in_progress", None, 1),
        ];
        let r = evaluate_contexts(
            &req(&["a", "b", "c", "d", "e", "f"]),
            &statuses,
            &checks,
            None,
            now(),
        );
        let shown: Vec<String> = r.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "a: failure (status)",
                "c: pending",
                "d: timed_out (check run)",
                "e: pending",
                "f: missing (never reported on this commit)"
            ]
        );
    }

    #[test]
    fn status_and_check_with_same_name_both_count() {
        use StatusState::*;
        let statuses = [st("ci", Success, 1)];
        let checks = [check("CI", "completed", Some("failure"), 1)];
        let r = evaluate_contexts(&req(&["ci"]), &statuses, &checks, None, now());
        assert_eq!(r.len(), 1);
        assert!(matches!(
            &r[0],
            Reason::Failing {
                source: "check_run",
                ..
            }
        ));
    }

    #[test]
    fn soak_counts_from_first_of_the_current_run_of_successes() {
        use StatusState::*;
        let soak = Some(Duration::from_secs(24 * 3600));
        let statuses = [
            st("a", Success, 60),
            st("a", Success, 25 * 60), // green for 25 h in total
            st("b", Success, 60),
            st("b", Failure, 25 * 60), // green only for 1 h
        ];
        let r = evaluate_contexts(&req(&["a", "b"]), &statuses, &[], soak, now());
        assert_eq!(
            r,
            vec![Reason::Soak {
                context: "b".into(),
                remaining_secs: 23 * 3600
            }]
        );
        assert_eq!(r[0].to_string(), "b: soak not reached, 23h remaining");
    }
}
