//! The single-writer lock, **pure** decision part: given the Lease as read, may this
//! engine hold it? The kube calls (create / replace with resourceVersion) live in the
//! adapter; a conflict (409) means another writer won and the decision is re-made.

use chrono::{DateTime, Duration, Utc};

/// Default lease duration; the holder renews at a third of it.
pub(crate) const LEASE_SECONDS: i64 = 30;

/// The fields of a `coordination.k8s.io/v1` Lease that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseView {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renew_time: Option<DateTime<Utc>>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: Option<i64>,
}

/// What to do with the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseDecision {
    /// No Lease: create it.
    Create,
    /// Ours: renew it.
    Renew,
    /// Expired or released: take it over.
    TakeOver,
    /// Another live holder: do not write anything.
    HeldBy {
        holder: String,
        /// When it expires unless renewed.
        until: DateTime<Utc>,
    },
}

/// Decides for identity `me` at `now`.
pub(crate) fn decide(current: Option<&LeaseView>, me: &str, now: DateTime<Utc>) -> LeaseDecision {
    let Some(l) = current else {
        return LeaseDecision::Create;
    };
    match l.holder.as_deref().filter(|h| !h.is_empty()) {
        Some(h) if h == me => LeaseDecision::Renew,
        None => LeaseDecision::TakeOver,
        Some(h) => {
            let until = l.renew_time.unwrap_or(now - Duration::days(365))
                + Duration::seconds(l.duration_seconds.unwrap_or(LEASE_SECONDS));
            if until <= now {
                LeaseDecision::TakeOver
            } else {
                LeaseDecision::HeldBy {
                    holder: h.to_string(),
                    until,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn table() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        let lease = |h: Option<&str>, ago: i64| LeaseView {
            holder: h.map(str::to_string),
            renew_time: Some(now - Duration::seconds(ago)),
            duration_seconds: Some(30),
        };
        assert_eq!(decide(None, "me", now), LeaseDecision::Create);
        assert_eq!(
            decide(Some(&lease(Some("me"), 100)), "me", now),
            LeaseDecision::Renew
        );
        assert_eq!(
            decide(Some(&lease(None, 1)), "me", now),
            LeaseDecision::TakeOver
        );
        assert_eq!(
            decide(Some(&lease(Some("other"), 31)), "me", now),
            LeaseDecision::TakeOver
        );
        assert_eq!(
            decide(Some(&lease(Some("other"), 10)), "me", now),
            LeaseDecision::HeldBy {
                holder: "other".into(),
                until: now + Duration::seconds(20)
            }
        );
    }
}
