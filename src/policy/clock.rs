//! Time sources for windows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now", as time since an arbitrary epoch.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Duration;
}

/// The wall clock, since the UNIX epoch (fixed windows align to UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock set before 1970 reads as the epoch rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// The wall clock run `scale` times faster, so that windows of minutes pass
/// in seconds. It reads `origin + (wall - origin) * scale`: every process
/// given the same scale and origin reads the same time, so replicas sharing
/// counters agree on their windows. An origin near the present keeps the
/// readings small (time since the epoch times 600 would not fit in u64
/// nanoseconds).
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    scale: f64,
    origin: Duration,
}

/// The default origin of [`ScaledClock`]: 2026-01-01T00:00:00Z.
pub const SCALE_ORIGIN: Duration = Duration::from_secs(1_767_225_600);

impl ScaledClock {
    /// A clock running `scale` times faster than the wall clock from
    /// `origin` on (a scale that is not finite or not positive counts as 1).
    pub fn new(scale: f64, origin: Duration) -> ScaledClock {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScaledClock { scale, origin }
    }

    /// Maps a wall-clock reading to this clock's time.
    pub fn at(&self, wall: Duration) -> Duration {
        let since = wall.saturating_sub(self.origin);
        self.origin.saturating_add(since.mul_f64(self.scale))
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Duration {
        self.at(SystemClock.now())
    }
}

/// A clock that only moves when told to; clones share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Duration) -> ManualClock {
        let clock = ManualClock::default();
        clock.set(start);
        clock
    }

    /// Sets the time.
    pub fn set(&self, now: Duration) {
        self.nanos.store(
            u64::try_from(now.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_between_clones() {
        let a = ManualClock::new(Duration::from_secs(10));
        let b = a.clone();
        b.advance(Duration::from_millis(1500));
        assert_eq!(a.now(), Duration::from_millis(11_500));
        a.set(Duration::from_secs(1));
        assert_eq!(b.now(), Duration::from_secs(1));
    }

    #[test]
    fn a_scaled_clock_stretches_time_after_its_origin() {
        let c = ScaledClock::new(60.0, SCALE_ORIGIN);
        let t = SCALE_ORIGIN + Duration::from_secs(10);
        assert_eq!(c.at(t), SCALE_ORIGIN + Duration::from_secs(600));
        assert_eq!(
            c.at(t + Duration::from_millis(500)) - c.at(t),
            Duration::from_secs(30)
        );
        assert_eq!(
            ScaledClock::new(-3.0, SCALE_ORIGIN).at(t),
            t,
            "a bad scale means none"
        );
    }

    #[test]
    fn system_clock_is_past_2020() {
        assert!(SystemClock.now() > Duration::from_secs(1_577_836_800));
    }
}
