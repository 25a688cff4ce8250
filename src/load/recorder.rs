//! The recorder: samples in, histograms out. Workers send one small sample
//! per call over a channel; nothing here keeps a sample once it is counted,
//! so memory stays flat however long the run.

use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::mix::Class;
use super::report::{ClassStats, Errors, Percentiles};

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
    passed: u64,
    refused: u64,
}

impl ClassRecord {
    fn new(like: &Histogram<u64>) -> ClassRecord {
        ClassRecord {
            corrected: Histogram::new_from(like),
            service: Histogram::new_from(like),
            interval: Histogram::new_from(like),
            passed: 0,
            refused: 0,
        }
    }
}

/// What the live view is told once an interval closes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    /// Seconds since the start of the phase.
    pub at_s: f64,
    /// Calls completed in the interval, per second.
    pub rate: f64,
    /// The interval's p99, corrected, in microseconds.
    pub p99_us: f64,
}

/// Counts and histograms of one phase.
pub struct Recorder {
    start: Instant,
    measure_from: Instant,
    classes: [ClassRecord; 2],
    all: Histogram<u64>,
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
    log: Vec<u8>,
    serializer: V2DeflateSerializer,
}

impl Recorder {
    /// A recorder for a phase that starts at `start` and measures from
    /// `measure_from`; `label` heads its interval log.
    pub fn new(
        start: Instant,
        measure_from: Instant,
        label: &str,
    ) -> Result<Recorder, super::LoadError> {
        let all = histogram()?;
        let mut log = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let now = SystemTime::now();
        // Headers only: the builder writes them when the log begins.
        let _ = IntervalLogWriterBuilder::new()
            .add_comment(&format!("gauntlet bench: {label}"))
            .add_comment("values are nanoseconds, corrected for coordinated omission")
            .with_start_time(now)
            .with_base_time(now)
            .with_max_value_divisor(1_000_000.0)
            .begin_log_with(&mut log, &mut serializer);
        Ok(Recorder {
            start,
            measure_from,
            classes: [ClassRecord::new(&all), ClassRecord::new(&all)],
            merged: Histogram::new_from(&all),
            all,
            completed: 0,
            measured: 0,
            last_done: None,
            transport: 0,
            timeout: 0,
            interval_start: start,
            interval_count: 0,
            log,
            serializer,
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
                    c.passed += 1;
                } else {
                    c.refused += 1;
                }
                let corrected = nanos(s.done.saturating_duration_since(s.due));
                let service = nanos(s.done.saturating_duration_since(s.sent));
                c.corrected.saturating_record(corrected);
                c.service.saturating_record(service);
                c.interval.saturating_record(corrected);
                self.all.saturating_record(corrected);
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
        for class in Class::ALL {
            let h = &mut self.classes[class.index()].interval;
            if !h.is_empty() {
                let _ = merged.add(&*h);
                let builder = IntervalLogWriterBuilder::new();
                if let Ok(mut w) = builder.begin_log_with(&mut self.log, &mut self.serializer) {
                    let _ = w.write_histogram(h, offset, len, Tag::new(class.as_str()));
                }
            }
            h.reset();
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

    /// Closes the last interval and hands back the figures and the log.
    pub fn finish(mut self, now: Instant) -> Recorded {
        self.close_interval(now);
        let class = |c: &ClassRecord| ClassStats {
            calls: c.passed + c.refused,
            passed: c.passed,
            refused: c.refused,
            corrected: Percentiles::of(&c.corrected),
            uncorrected: Percentiles::of(&c.service),
        };
        let allowed = &self.classes[Class::Allowed.index()];
        let denied = &self.classes[Class::Denied.index()];
        Recorded {
            last_done: self.last_done,
            completed: self.completed,
            measured: self.measured,
            allowed: class(allowed),
            denied: class(denied),
            all: Percentiles::of(&self.all),
            errors: Errors {
                denied: allowed.refused,
                admitted: denied.passed,
                transport: self.transport,
                timeout: self.timeout,
            },
            log: self.log,
        }
    }
}

/// A finished phase's counts.
pub struct Recorded {
    pub last_done: Option<Instant>,
    pub completed: u64,
    pub measured: u64,
    pub allowed: ClassStats,
    pub denied: ClassStats,
    pub all: Percentiles,
    pub errors: Errors,
    /// The HdrHistogram interval log (text), one tagged histogram per class
    /// and interval.
    pub log: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut r = Recorder::new(t0, t0, "test").unwrap();
        // Held 10 ms before it could be sent, answered 100 µs later.
        r.record(&sample(Class::Allowed, t0, 10_000, 10_100));
        let done = r.finish(t0 + Duration::from_millis(20));
        let p = done.allowed.corrected;
        let u = done.allowed.uncorrected;
        assert!((p.max_us - 10_100.0).abs() < 20.0, "{p:?}");
        assert!((u.max_us - 100.0).abs() < 1.0, "{u:?}");
        assert_eq!(done.allowed.calls, 1);
        assert_eq!(done.denied.calls, 0);
    }

    #[test]
    fn warm_up_calls_are_counted_but_not_measured() {
        let t0 = Instant::now();
        let from = t0 + Duration::from_secs(1);
        let mut r = Recorder::new(t0, from, "test").unwrap();
        r.record(&sample(Class::Allowed, t0, 0, 50));
        r.record(&sample(Class::Denied, from, 0, 50));
        let done = r.finish(from + Duration::from_millis(1));
        assert_eq!((done.completed, done.measured), (2, 1));
        assert_eq!((done.allowed.calls, done.denied.calls), (0, 1));
    }

    #[test]
    fn errors_are_sorted_by_kind() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, t0, "test").unwrap();
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
        let e = r.finish(t0).errors;
        assert_eq!((e.denied, e.admitted, e.timeout, e.transport), (1, 1, 1, 1));
    }

    #[test]
    fn the_interval_log_reads_back_with_both_classes() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, t0, "test").unwrap();
        for i in 0..10u64 {
            let due = t0 + Duration::from_millis(300 * i);
            let class = if i % 2 == 0 {
                Class::Allowed
            } else {
                Class::Denied
            };
            r.record(&sample(class, due, 0, 40));
        }
        let done = r.finish(t0 + Duration::from_secs(3));
        let mut tags = Vec::new();
        let mut total = 0;
        for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&done.log)
        {
            if let Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(h)) = entry {
                tags.push(h.tag().map(|t| t.as_str().to_owned()));
                let bytes = base64_decode(h.encoded_histogram());
                let hist: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
                total += hist.len();
            }
        }
        assert_eq!(total, 10);
        assert!(tags.contains(&Some("allowed".into())));
        assert!(tags.contains(&Some("denied".into())));
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = ALPHA.iter().position(|a| *a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }
}
