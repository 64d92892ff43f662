//! chrono is the crate's one datetime type (octocrab's models use it); k8s-openapi's
//! timestamps are jiff. This is the one bridge between them.

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

/// A k8s-openapi timestamp (`metav1.Time`, `MicroTime`) as chrono, to the nanosecond
/// (jiff gives a negative fraction before 1970, so go through total nanoseconds; i64
/// nanoseconds span 1677–2262, past which the nearest end is taken).
pub(crate) fn to_chrono(t: Timestamp) -> DateTime<Utc> {
    let nanos = t.as_nanosecond();
    let clamped = nanos.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    DateTime::from_timestamp_nanos(clamped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_instant_to_the_nanosecond() {
        let t: Timestamp = "2026-12-05T12:00:01.123456789Z".parse().unwrap();
        assert_eq!(
            to_chrono(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2026-12-05T12:00:01.123456789Z"
        );
        let before: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(to_chrono(before).timestamp_millis(), -500);
    }
}
