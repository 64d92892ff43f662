//! Pure retry policy: exponential backoff with jitter, and how long GitHub asks us to wait
//! (`Retry-After`, `x-ratelimit-reset`). No I/O here; the loop that sleeps is in `client.rs`.
//!
//! octocrab's own retry layer is switched off (`RetryConfig::None`) so that this policy is the
//! only one in effect.

use rand::{Rng, SeedableRng};
use std::time::Duration;

/// How hard to retry one GitHub call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub attempts: u32,
    /// Delay before the first retry (doubles each time, then jitter in (50 %, 100 %]).
    pub base_delay: Duration,
    /// Upper bound of one backoff delay.
    pub max_delay: Duration,
    /// Give up when waiting (backoff or rate limit) would go past this much time since the
    /// first attempt.
    pub deadline: Duration,
    /// Wait used for a rate limit that does not say how long (429 without headers, 403
    /// "secondary rate limit" without headers).
    pub default_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(10 * 60),
            default_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff delays (attempts − 1 of them) with random jitter.
    pub(crate) fn backoff(&self) -> Backoff {
        self.backoff_seeded(rand::random())
    }

    /// Backoff delays with a fixed jitter seed (tests).
    pub(crate) fn backoff_seeded(&self, seed: u64) -> Backoff {
        Backoff {
            next: self.base_delay,
            max: self.max_delay,
            remaining: self.attempts.saturating_sub(1),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }
}

/// Exponential backoff delays with jitter in (50 %, 100 %] of the nominal delay.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
    remaining: u32,
    rng: rand::rngs::StdRng,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let nominal = self.next.min(self.max);
        self.next = self.next.saturating_mul(2);
        let factor = 0.5 + 0.5 * self.rng.random_range(0.0..=1.0f64);
        Some(
            nominal
                .mul_f64(factor)
                .max(Duration::from_millis(1))
                .min(self.max),
        )
    }
}

/// What we know about one failed call.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailureFacts<'a> {
    /// HTTP status, `None` for a transport error (connect, reset, timeout).
    pub(crate) status: Option<u16>,
    pub(crate) retry_after: Option<&'a str>,
    pub(crate) ratelimit_remaining: Option<&'a str>,
    /// `x-ratelimit-reset` header (Unix seconds).
    pub(crate) ratelimit_reset: Option<&'a str>,
    pub(crate) message: &'a str,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Retry after the next backoff delay.
    Backoff,
    /// Rate limited: retry after exactly this wait.
    RateLimited(Duration),
    /// Do not retry (validation error, auth, not found, …).
    GiveUp,
}

/// Classifies a failure: 5xx and transport errors back off; 429 and rate-limit 403s wait as
/// GitHub says; every other 4xx gives up.
pub(crate) fn classify(f: &FailureFacts<'_>, now_unix: i64, policy: &RetryPolicy) -> Verdict {
    let Some(status) = f.status else {
        return Verdict::Backoff;
    };
    if (500..600).contains(&status) {
        return Verdict::Backoff;
    }
    if status != 403 && status != 429 {
        return Verdict::GiveUp;
    }
    if let Some(wait) = f.retry_after.and_then(|v| parse_retry_after(v, now_unix)) {
        return Verdict::RateLimited(wait);
    }
    let exhausted = f.ratelimit_remaining.map(str::trim) == Some("0");
    if exhausted {
        if let Some(wait) = f.ratelimit_reset.and_then(|v| reset_wait(v, now_unix)) {
            return Verdict::RateLimited(wait);
        }
    }
    if status == 429 || exhausted || f.message.to_ascii_lowercase().contains("rate limit") {
        return Verdict::RateLimited(policy.default_rate_limit_wait);
    }
    Verdict::GiveUp
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(Duration::from_secs(
        (at.timestamp() - now_unix).max(0) as u64
    ))
}

/// `x-ratelimit-reset` (Unix seconds) → wait from now, plus one second of slack.
pub(crate) fn reset_wait(value: &str, now_unix: i64) -> Option<Duration> {
    let reset: i64 = value.trim().parse().ok()?;
    Some(Duration::from_secs((reset - now_unix).max(0) as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: Option<u16>) -> FailureFacts<'static> {
        FailureFacts {
            status,
            ..FailureFacts::default()
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let delays: Vec<Duration> = p.backoff_seeded(7).collect();
        assert_eq!(delays.len(), 4);
        let nominal = [100u64, 200, 400, 500];
        for (d, n) in delays.iter().zip(nominal) {
            let n = Duration::from_millis(n);
            assert!(*d <= n && *d >= n / 2, "{d:?} vs {n:?}");
        }
        // different seeds jitter differently
        let other: Vec<Duration> = p.backoff_seeded(8).collect();
        assert_ne!(delays, other);
    }

    #[test]
    fn classify_rules() {
        let p = RetryPolicy::default();
        assert_eq!(classify(&facts(None), 0, &p), Verdict::Backoff);
        assert_eq!(classify(&facts(Some(502)), 0, &p), Verdict::Backoff);
        assert_eq!(classify(&facts(Some(422)), 0, &p), Verdict::GiveUp);
        assert_eq!(classify(&facts(Some(404)), 0, &p), Verdict::GiveUp);
        // plain 403: permission problem, not retried
        assert_eq!(classify(&facts(Some(403)), 0, &p), Verdict::GiveUp);
        let f = FailureFacts {
            status: Some(403),
            retry_after: Some("3"),
            ..FailureFacts::default()
        };
        assert_eq!(
            classify(&f, 0, &p),
            Verdict::RateLimited(Duration::from_secs(3))
        );
        let f = FailureFacts {
            status: Some(403),
            ratelimit_remaining: Some("0"),
            ratelimit_reset: Some("1010"),
            ..FailureFacts::default()
        };
        assert_eq!(
            classify(&f, 1000, &p),
            Verdict::RateLimited(Duration::from_secs(11))
        );
        let f = FailureFacts {
            status: Some(403),
            message: "You have exceeded a secondary rate limit. Please wait",
            ..FailureFacts::default()
        };
        assert_eq!(
            classify(&f, 0, &p),
            Verdict::RateLimited(p.default_rate_limit_wait)
        );
        assert_eq!(
            classify(&facts(Some(429)), 0, &p),
            Verdict::RateLimited(p.default_rate_limit_wait)
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after(" 120 ", 0),
            Some(Duration::from_secs(120))
        );
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .timestamp();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(reset_wait("100", 90), Some(Duration::from_secs(11)));
        assert_eq!(reset_wait("50", 90), Some(Duration::from_secs(1)));
    }
}
