//! The single-writer lock, **pure** part: given the Lease as read, may this engine hold
//! it, and the Lease it writes. The kube calls (create / replace with resourceVersion) live in
//! the adapter; a conflict (409) means another writer won and the decision is re-made.

use super::state::LEASE_NAME;
use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// Default lease duration; the holder renews at a third of it.
pub(crate) const LEASE_SECONDS: i64 = 30;

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

/// Decides for identity `me` at `now`, from the Lease as read (`None`: there is none).
pub(crate) fn decide(current: Option<&Lease>, me: &str, now: DateTime<Utc>) -> LeaseDecision {
    let Some(l) = current else {
        return LeaseDecision::Create;
    };
    let spec = l.spec.as_ref();
    match spec
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
    {
        Some(h) if h == me => LeaseDecision::Renew,
        None => LeaseDecision::TakeOver,
        Some(h) => {
            let renewed = spec.and_then(|s| s.renew_time.as_ref());
            let seconds = spec.and_then(|s| s.lease_duration_seconds).map(i64::from);
            let until = renewed.map_or(now - Duration::days(365), |t| {
                crate::kube_time::to_chrono(t.0)
            }) + Duration::seconds(seconds.unwrap_or(LEASE_SECONDS));
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

/// The Lease `me` writes at `now`: over `current` (its resourceVersion as the precondition,
/// and its annotations, the run-wide state such as the base capacity, kept), or a new one.
pub(crate) fn object(
    namespace: &str,
    me: &str,
    now: DateTime<Utc>,
    lease_seconds: i64,
    current: Option<&Lease>,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "e2e-gate".into(),
            )])),
            resource_version: current.and_then(|l| l.metadata.resource_version.clone()),
            annotations: current.and_then(|l| l.metadata.annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.into()),
            lease_duration_seconds: Some(i32::try_from(lease_seconds).unwrap_or(i32::MAX)),
            renew_time: Timestamp::from_microsecond(now.timestamp_micros())
                .ok()
                .map(MicroTime),
            ..LeaseSpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn table() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        let lease = |h: Option<&str>, ago: i64| {
            let mut l = object(
                "kube-system",
                h.unwrap_or(""),
                now - Duration::seconds(ago),
                30,
                None,
            );
            if let Some(s) = l.spec.as_mut().filter(|_| h.is_none()) {
                s.holder_identity = None;
            }
            l
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

    #[test]
    fn a_written_lease_reads_back_and_keeps_the_run_state() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        let mut before = object("kube-system", "old", now, LEASE_SECONDS, None);
        before.metadata.resource_version = Some("7".into());
        before.metadata.annotations = Some(BTreeMap::from([("k".into(), "v".into())]));
        let l = object("kube-system", "me@host", now, LEASE_SECONDS, Some(&before));
        assert_eq!(l.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(l.metadata.annotations, before.metadata.annotations);
        // Holder, renew time and duration read back as written.
        assert_eq!(decide(Some(&l), "me@host", now), LeaseDecision::Renew);
        assert_eq!(
            decide(Some(&l), "other", now),
            LeaseDecision::HeldBy {
                holder: "me@host".into(),
                until: now + Duration::seconds(LEASE_SECONDS)
            }
        );
    }
}
