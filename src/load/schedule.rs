//! When each call is meant to be sent. The one load loop asks the schedule
//! for the intended time of call `i`; open and closed loops differ only here.

use std::time::{Duration, Instant};

/// How calls are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Call `i` is due at `start + i / rate`, whether or not earlier calls
    /// have come back. A call that finds every lane busy at its due time
    /// has its latency measured from that due time, so a stall is charged
    /// to every call it held up (coordinated-omission correction, as wrk2
    /// does); a call that finds a lane idle is measured from its send, so
    /// the timer's own wake-up slack is not charged to the target.
    Open { rate: f64 },
    /// A call is sent as soon as a lane is free; its due time is its send
    /// time. This is what hides a stall.
    Closed,
}

impl Schedule {
    /// The due time of call `i`, or `None` when the call is due whenever a
    /// lane takes it.
    pub fn due(&self, start: Instant, i: u64) -> Option<Instant> {
        match *self {
            Schedule::Open { rate } => {
                // Exact for any realistic count: f64 holds integers to 2^53.
                Some(start + Duration::from_secs_f64(i as f64 / rate))
            }
            Schedule::Closed => None,
        }
    }

    /// The offered rate, for an open loop.
    pub fn offered(&self) -> Option<f64> {
        match *self {
            Schedule::Open { rate } => Some(rate),
            Schedule::Closed => None,
        }
    }

    /// A short name for reports.
    pub fn label(&self) -> String {
        label(self.offered())
    }
}

/// A schedule's name from its offered rate: a merge names the sum of its
/// shards' rates.
pub fn label(offered: Option<f64>) -> String {
    match offered {
        Some(rate) => format!("open loop at {rate}/s"),
        None => "closed loop".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_spaces_calls_evenly_from_the_start() {
        let start = Instant::now();
        let s = Schedule::Open { rate: 1000.0 };
        assert_eq!(s.due(start, 0), Some(start));
        assert_eq!(s.due(start, 250), Some(start + Duration::from_millis(250)));
        assert_eq!(s.offered(), Some(1000.0));
    }

    #[test]
    fn closed_loop_has_no_due_times() {
        assert_eq!(Schedule::Closed.due(Instant::now(), 7), None);
        assert_eq!(Schedule::Closed.offered(), None);
    }
}
