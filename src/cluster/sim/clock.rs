//! The scaled simulation clock: `time_scale` real seconds pass per simulated second,
//! so with `time_scale = 0.001` a 90 s boot takes 90 ms.

use chrono::{DateTime, Utc};
use std::time::Instant;

/// Simulated time since start, in seconds.
pub(crate) type SimTime = f64;

/// A clock that runs `1 / time_scale` times faster than the wall clock.
#[derive(Debug, Clone)]
pub(crate) struct SimClock {
    start: Instant,
    start_wall: DateTime<Utc>,
    time_scale: f64,
}

impl SimClock {
    /// A clock starting now. `time_scale` must be > 0.
    pub(crate) fn new(time_scale: f64) -> Self {
        Self {
            start: Instant::now(),
            start_wall: Utc::now(),
            time_scale: if time_scale > 0.0 { time_scale } else { 1.0 },
        }
    }
    /// Real seconds per simulated second.
    pub(crate) fn time_scale(&self) -> f64 {
        self.time_scale
    }
    /// Simulated seconds since start.
    pub(crate) fn now(&self) -> SimTime {
        self.start.elapsed().as_secs_f64() / self.time_scale
    }
    /// Simulated wall-clock time (for timestamps in objects).
    pub(crate) fn wall(&self) -> DateTime<Utc> {
        self.at(self.now())
    }
    /// The wall-clock time of simulated instant `t`.
    pub(crate) fn at(&self, t: SimTime) -> DateTime<Utc> {
        self.start_wall + chrono::Duration::milliseconds((t * 1000.0) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn scaled_clock_runs_fast() {
        let c = SimClock::new(0.001);
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now() >= 19.0, "{}", c.now());
    }
}
