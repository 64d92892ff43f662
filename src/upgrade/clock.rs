//! The engine's one clock seam: monotonic time, wall time and sleeps all follow tokio's
//! clock, so a test with paused tokio time (`#[tokio::test(start_paused = true)]`) drives
//! every deadline, hold and timestamp of the engine; in production they are the real clocks.

use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// Monotonic and wall time from one origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
    origin_wall: DateTime<Utc>,
}

impl Clock {
    /// A clock whose wall time is the system's now.
    pub(crate) fn start() -> Self {
        Clock {
            origin: tokio::time::Instant::now(),
            origin_wall: Utc::now(),
        }
    }

    /// Monotonic now (tokio's, as a std `Instant`).
    pub(crate) fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// Time since the clock started.
    pub(crate) fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }

    /// Wall time now: the origin's wall time plus the monotonic time since (so it advances
    /// with paused tokio time too).
    pub(crate) fn wall(&self) -> DateTime<Utc> {
        self.origin_wall + chrono::Duration::from_std(self.elapsed()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_monotonic_and_wall_time_together() {
        let c = Clock::start();
        let (t0, w0) = (c.now(), c.wall());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(c.now() - t0, Duration::from_secs(3600));
        assert_eq!((c.wall() - w0).num_seconds(), 3600);
        assert_eq!(c.elapsed(), Duration::from_secs(3600));
    }
}
