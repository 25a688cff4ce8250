//! The recorder: samples in, histograms out. Workers send one small sample
//! per call over a channel; nothing here keeps a sample once it is counted,
//! so memory stays flat however long the run.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;

use super::log::{self, Hists, Tally};
use super::mix::Class;
use super::timeline;
use crate::run::Tick;

/// Lowest and highest latency recorded, in nanoseconds: 1 µs to 60 s.
const LOWEST_NS: u64 = 1_000;
const HIGHEST_NS: u64 = 60_000_000_000;
const SIGFIG: u8 = 3;

/// How long one interval of the log (and of the live view) lasts.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call got a success reply.
    Passed,
    /// The call got a denial (a JSON-RPC error, or `isError: true`).
    Refused,
    /// The transport failed.
    Transport,
    /// No reply within the timeout.
    Timeout,
}

/// One finished call.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub class: Class,
    /// When the schedule meant it to go out.
    pub due: Instant,
    /// When its bytes were handed to the transport.
    pub sent: Instant,
    pub done: Instant,
    pub outcome: Outcome,
}

/// A new histogram with the bench's bounds.
pub fn histogram() -> Result<Histogram<u64>, super::LoadError> {
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGFIG)
        .map_err(|e| super::LoadError::Config(format!("histogram bounds: {e:?}")))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
/// One class's histograms.
struct ClassRecord {
    /// From the due time: what a user of the enforcer waits.
    corrected: Histogram<u64>,
    /// From the send time: what a closed-loop tool would report.
    service: Histogram<u64>,
    interval: Histogram<u64>,
    interval_service: Histogram<u64>,
    tally: Tally,
}

impl ClassRecord {
    fn new(like: &Histogram<u64>) -> ClassRecord {
        ClassRecord {
            corrected: Histogram::new_from(like),
            service: Histogram::new_from(like),
            interval: Histogram::new_from(like),
            interval_service: Histogram::new_from(like),
            tally: Tally::default(),
        }
    }
}

/// Counts and histograms of one phase.
pub struct Recorder {
    start: Instant,
    measure_from: Instant,
    classes: [ClassRecord; 2],
    /// Scratch space for the live view's p99 over both classes.
    merged: Histogram<u64>,
    /// Every call whose sample arrived, warm-up included.
    pub completed: u64,
    /// Calls that count toward the figures (due after the warm-up).
    pub measured: u64,
    /// When the last measured call ended.
    last_done: Option<Instant>,
    transport: u64,
    timeout: u64,
    interval_start: Instant,
    interval_count: u64,
    /// The interval lines of the log; [`log::write`] puts the header, known
    /// only at the end, in front.
    intervals: log::Spool,
    serializer: V2DeflateSerializer,
}

impl Recorder {
    /// A recorder for a phase that starts at `start` and measures from
    /// `measure_from`.
    pub fn new(start: Instant, measure_from: Instant) -> Result<Recorder, super::LoadError> {
        let like = histogram()?;
        Ok(Recorder {
            start,
            measure_from,
            classes: [ClassRecord::new(&like), ClassRecord::new(&like)],
            merged: like,
            completed: 0,
            measured: 0,
            last_done: None,
            transport: 0,
            timeout: 0,
            interval_start: start,
            interval_count: 0,
            intervals: log::Spool::default(),
            serializer: V2DeflateSerializer::new(),
        })
    }

    /// Counts one sample; returns a tick when it closed an interval.
    pub fn record(&mut self, s: &Sample) -> Option<Tick> {
        let tick = if s.done.saturating_duration_since(self.interval_start) >= INTERVAL {
            Some(self.close_interval(s.done))
        } else {
            None
        };
        self.completed += 1;
        if s.due < self.measure_from {
            return tick;
        }
        self.measured += 1;
        self.last_done = Some(self.last_done.map_or(s.done, |t| t.max(s.done)));
        let c = &mut self.classes[s.class.index()];
        match s.outcome {
            Outcome::Transport => self.transport += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Passed | Outcome::Refused => {
                if s.outcome == Outcome::Passed {
                    c.tally.passed += 1;
                } else {
                    c.tally.refused += 1;
                }
                let corrected = nanos(s.done.saturating_duration_since(s.due));
                let service = nanos(s.done.saturating_duration_since(s.sent));
                c.corrected.saturating_record(corrected);
                c.service.saturating_record(service);
                c.interval.saturating_record(corrected);
                c.interval_service.saturating_record(service);
                self.interval_count += 1;
            }
        }
        tick
    }

    /// Writes the interval's histograms to the log and starts the next one.
    fn close_interval(&mut self, now: Instant) -> Tick {
        let len = now.saturating_duration_since(self.interval_start);
        let offset = self.interval_start.saturating_duration_since(self.start);
        let merged = &mut self.merged;
        merged.reset();
        let mut hists = Vec::with_capacity(4);
        for class in Class::ALL {
            let c = &self.classes[class.index()];
            let _ = merged.add(&c.interval);
            hists.push((log::tag(class, true), &c.interval));
            hists.push((log::tag(class, false), &c.interval_service));
        }
        let mut lines = Vec::new();
        // A histogram that does not serialize leaves its interval out of
        // the log; the phase's totals still count it.
        let _ = timeline::write_interval(&mut lines, &mut self.serializer, offset, len, &hists);
        self.intervals.append(&lines);
        for c in &mut self.classes {
            c.interval.reset();
            c.interval_service.reset();
        }
        let tick = Tick {
            at_s: (offset + len).as_secs_f64(),
            rate: self.interval_count as f64 / len.as_secs_f64().max(1e-9),
            p99_us: merged.value_at_quantile(0.99) as f64 / 1000.0,
        };
        self.interval_start = now;
        self.interval_count = 0;
        tick
    }

    /// Closes the slice's last interval; the phase waits, idle, for its
    /// next slice. Returns when the slice's last measured call ended.
    pub fn pause(&mut self, now: Instant) -> Option<Instant> {
        self.close_interval(now);
        self.last_done.take()
    }

    /// Starts the phase's next slice: calls due from `measure_from` count.
    /// The idle gap since [`Recorder::pause`] is in no interval.
    pub fn resume(&mut self, start: Instant, measure_from: Instant) {
        self.measure_from = measure_from;
        self.interval_start = start;
        self.interval_count = 0;
    }

    /// Closes the last interval and hands back the counts, the histograms
    /// and the log's interval lines.
    pub fn finish(mut self, now: Instant) -> Recorded {
        self.close_interval(now);
        let [allowed, denied] = self.classes;
        Recorded {
            last_done: self.last_done,
            completed: self.completed,
            measured: self.measured,
            allowed: allowed.tally,
            denied: denied.tally,
            transport: self.transport,
            timeout: self.timeout,
            hists: Hists {
                corrected: [allowed.corrected, denied.corrected],
                uncorrected: [allowed.service, denied.service],
            },
            intervals: self.intervals,
        }
    }
}

/// A finished phase's counts.
pub struct Recorded {
    pub last_done: Option<Instant>,
    pub completed: u64,
    pub measured: u64,
    pub allowed: Tally,
    pub denied: Tally,
    pub transport: u64,
    pub timeout: u64,
    pub hists: Hists,
    /// The interval log's lines: per interval and class, the corrected
    /// histogram tagged `allowed`/`denied` and the uncorrected one tagged
    /// `allowed-uncorrected`/`denied-uncorrected`.
    pub intervals: log::Spool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Percentiles;

    fn sample(class: Class, due: Instant, sent_after: u64, done_after: u64) -> Sample {
        Sample {
            class,
            due,
            sent: due + Duration::from_micros(sent_after),
            done: due + Duration::from_micros(done_after),
            outcome: Outcome::Passed,
        }
    }

    #[test]
    fn corrected_latency_counts_from_the_due_time() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, t0).unwrap();
        // Held 10 ms before it could be sent, answered 100 µs later.
        r.record(&sample(Class::Allowed, t0, 10_000, 10_100));
        let done = r.finish(t0 + Duration::from_millis(20));
        let p = Percentiles::of(&done.hists.corrected[0]);
        let u = Percentiles::of(&done.hists.uncorrected[0]);
        assert!((p.max_us - 10_100.0).abs() < 20.0, "{p:?}");
        assert!((u.max_us - 100.0).abs() < 1.0, "{u:?}");
        assert_eq!(
            done.allowed,
            Tally {
                passed: 1,
                refused: 0
            }
        );
        assert_eq!(done.denied, Tally::default());
    }

    #[test]
    fn warm_up_calls_are_counted_but_not_measured() {
        let t0 = Instant::now();
        let from = t0 + Duration::from_secs(1);
        let mut r = Recorder::new(t0, from).unwrap();
        r.record(&sample(Class::Allowed, t0, 0, 50));
        r.record(&sample(Class::Denied, from, 0, 50));
        let done = r.finish(from + Duration::from_millis(1));
        assert_eq!((done.completed, done.measured), (2, 1));
        assert_eq!((done.allowed.passed, done.denied.passed), (0, 1));
        assert_eq!(done.hists.corrected[0].len(), 0);
    }

    #[test]
    fn errors_are_sorted_by_kind() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, t0).unwrap();
        let mut s = sample(Class::Allowed, t0, 0, 10);
        s.outcome = Outcome::Refused;
        r.record(&s);
        s.class = Class::Denied;
        s.outcome = Outcome::Passed;
        r.record(&s);
        s.outcome = Outcome::Timeout;
        r.record(&s);
        s.outcome = Outcome::Transport;
        r.record(&s);
        let done = r.finish(t0);
        assert_eq!((done.allowed.refused, done.denied.passed), (1, 1));
        assert_eq!((done.timeout, done.transport), (1, 1));
    }

    #[test]
    fn the_intervals_add_up_to_the_whole_phase() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, t0).unwrap();
        for i in 0..10u64 {
            let due = t0 + Duration::from_millis(300 * i);
            let class = if i % 2 == 0 {
                Class::Allowed
            } else {
                Class::Denied
            };
            r.record(&sample(class, due, 5, 40 + i));
        }
        let mut done = r.finish(t0 + Duration::from_secs(3));
        let lines = done.intervals.read_all().unwrap();
        let text = String::from_utf8(lines.clone()).unwrap();
        // Intervals close at the first answer a second or more after their
        // start (1.2 s, 2.4 s) and at the end: three, each with both classes
        // in both kinds.
        assert_eq!(text.lines().count(), 12, "{text}");
        assert!(text.lines().all(|l| l.starts_with("Tag=")), "{text}");
        let read = log::parse_intervals(&lines, "test").unwrap();
        assert_eq!(read.corrected, done.hists.corrected);
        assert_eq!(read.uncorrected, done.hists.uncorrected);
    }
}
