//! A load run's figures, as `gauntlet bench` and `gauntlet merge` emit them
//! in [`super::Event::Bench`]: each phase's counts, percentiles and latency
//! series, and what the target adds over its baseline. Every reporter reads
//! this one type.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::latency::{LatencySeries, SeriesKind};
use crate::load::Mix;
use crate::target::Transport;

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Percentiles {
    /// Reads the percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1000.0,
        }
    }
}

/// One class of calls (allowed or denied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassStats {
    /// Calls answered (successes and denials).
    pub calls: u64,
    pub passed: u64,
    pub refused: u64,
    /// Latency from each call's due time (coordinated-omission corrected).
    pub corrected: Percentiles,
    /// Latency from each call's send time.
    pub uncorrected: Percentiles,
}

/// Calls that did not end as their class says they should.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    /// Calls the policy allows that were denied (a limit, an over-block).
    pub denied: u64,
    /// Calls the policy denies that were answered with success.
    pub admitted: u64,
    pub transport: u64,
    pub timeout: u64,
}

/// Which share of a sharded load a bench carried. `index` counts from 0,
/// as a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole load, unsharded.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// This shard's part of `total` things dealt out in turn: the first
    /// `total % count` shards take one more.
    pub fn share(self, total: u64) -> u64 {
        let (i, n) = (u64::from(self.index), u64::from(self.count.max(1)));
        total / n + u64::from(i < total % n)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard like `0/4` (index from 0, then the count)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!("`{s}`: the shard count must be at least 1"));
        }
        if index >= count {
            return Err(format!(
                "`{s}`: the index counts from 0, so it must be below {count}"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// One phase: the load against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseReport {
    /// What was measured: `target`, `baseline` (straight at the mock), or
    /// `relay` (through `gauntlet relay`, the null enforcer).
    pub name: String,
    pub target: String,
    pub transport: Transport,
    pub schedule: String,
    /// Connections (HTTP) or sessions (stdio).
    pub connections: usize,
    /// Calls allowed in flight at once.
    pub lanes: usize,
    /// Calls due per second, for an open loop.
    pub offered_rate: Option<f64>,
    /// Calls answered per second over the measured window.
    pub achieved_rate: f64,
    pub measured_s: f64,
    /// Every call sent, warm-up included: what the upstream should count
    /// when nothing stands in front of it.
    pub sent: u64,
    /// Calls answered, warm-up included.
    pub completed: u64,
    /// Calls due in the measured window.
    pub measured: u64,
    /// Calls the schedule had due that were never sent before the run's
    /// hard stop (the generator fell behind).
    pub unsent: u64,
    /// All answered calls, corrected.
    pub all: Percentiles,
    pub allowed: ClassStats,
    pub denied: ClassStats,
    pub errors: Errors,
    /// The generator could not keep up: it achieved < 99 % of the offer,
    /// so the figures describe the harness as much as the target.
    pub generator_bound: bool,
    /// The corrected latency of allowed and denied calls, for charts.
    #[serde(default)]
    pub series: Vec<LatencySeries>,
}

impl PhaseReport {
    /// Whether this phase ran straight at the mock.
    pub fn is_baseline(&self) -> bool {
        self.name == "baseline"
    }

    /// Whether this phase is a reference the target is compared with (the
    /// bare mock, or the null relay) rather than the target itself.
    pub fn is_reference(&self) -> bool {
        self.name != "target"
    }
}

/// What the enforcer adds over the bare mock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Added {
    pub p50_us: f64,
    pub p99_us: f64,
    /// Target throughput over baseline throughput.
    pub throughput_ratio: f64,
}

impl Added {
    /// The difference of the allowed calls' corrected latencies (the calls
    /// that cross the whole path), and the throughput ratio.
    pub fn between(target: &PhaseReport, baseline: &PhaseReport) -> Added {
        let (t, b) = (&target.allowed.corrected, &baseline.allowed.corrected);
        Added {
            p50_us: t.p50_us - b.p50_us,
            p99_us: t.p99_us - b.p99_us,
            throughput_ratio: if baseline.achieved_rate > 0.0 {
                target.achieved_rate / baseline.achieved_rate
            } else {
                0.0
            },
        }
    }
}

/// How a report was put together from shards' interval logs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merged {
    /// Shards per phase.
    pub shards: u32,
    /// Latest minus earliest start of the target phase across the shards,
    /// in seconds: shards are not started together, and rates add up as
    /// if they had been.
    pub start_spread_s: f64,
}

/// A whole bench: the target phase and, with `--baseline`, the same load
/// straight at the mock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchReport {
    pub version: String,
    pub mix: Mix,
    pub policy: String,
    pub allowed_tools: Vec<String>,
    pub denied_tools: Vec<String>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Slices each phase ran in, taking turns with the others
    /// (`--rounds`); 1 when the phases ran one after another.
    #[serde(default = "one_round")]
    pub rounds: u32,
    /// The load generator's worker threads (`--threads`); absent for one
    /// per core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_threads: Option<u16>,
    /// The share of a sharded load this bench carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Set when the report merges shards' logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    pub target: PhaseReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<PhaseReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Added>,
    /// With `--null-relay`: the same load through `gauntlet relay`, which
    /// moves bytes and reads none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<PhaseReport>,
    /// What the target adds over the null relay: its own work, beyond what
    /// one more process on the path costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_relay: Option<Added>,
    /// Set when the bench stopped early (Ctrl-C, a dead server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn one_round() -> u32 {
    1
}

impl BenchReport {
    /// The phases, target first.
    pub fn phases(&self) -> impl Iterator<Item = &PhaseReport> {
        std::iter::once(&self.target)
            .chain(self.baseline.as_ref())
            .chain(self.relay.as_ref())
    }

    /// Every phase's latency series, target first.
    pub fn series(&self) -> impl Iterator<Item = &LatencySeries> {
        self.phases().flat_map(|p| p.series.iter())
    }

    /// The exit code: 2 when the bench could not measure cleanly (errors,
    /// generator-bound, cut short); 1 when an enforcer answered a call its
    /// policy denies with success; else 0.
    pub fn exit_code(&self) -> u8 {
        // A relay passes what a policy denies by design; only the target's
        // leaks count.
        let leaked = self.target.target != "none" && self.target.errors.admitted > 0;
        let troubled = |p: &PhaseReport| {
            p.generator_bound || p.errors.transport > 0 || p.errors.timeout > 0 || p.measured == 0
        };
        if self.message.is_some() || self.phases().any(troubled) {
            2
        } else if leaked {
            1
        } else {
            0
        }
    }
}

/// What the live view is told once an interval closes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// Seconds since the start of the phase.
    pub at_s: f64,
    /// Calls completed in the interval, per second.
    pub rate: f64,
    /// The interval's p99, corrected, in microseconds.
    pub p99_us: f64,
}

impl LatencySeries {
    /// A histogram of nanoseconds as `(µs, count)` pairs: each bucket's
    /// highest equivalent value (as percentiles read it), rounded to the
    /// microsecond.
    pub fn of(label: &str, kind: SeriesKind, baseline: bool, h: &Histogram<u64>) -> LatencySeries {
        let mut buckets: Vec<(u64, u64)> = Vec::new();
        for v in h.iter_recorded() {
            let us = ((v.value_iterated_to() + 500) / 1000).max(1);
            let n = v.count_since_last_iteration();
            match buckets.last_mut() {
                Some((last, count)) if *last == us => *count += n,
                _ => buckets.push((us, n)),
            }
        }
        LatencySeries {
            label: label.to_owned(),
            kind,
            baseline,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_zero_and_deal_out_the_remainder() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s, Shard { index: 1, count: 3 });
        assert_eq!(s.to_string(), "1/3");
        assert!("3/3".parse::<Shard>().unwrap_err().contains("below 3"));
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        // 10 among 3: 4, 3, 3; the shares always add up to the total.
        let shares: Vec<u64> = (0..3)
            .map(|i| Shard { index: i, count: 3 }.share(10))
            .collect();
        assert_eq!(shares, [4, 3, 3]);
        for total in 0..50 {
            let sum: u64 = (0..7)
                .map(|i| Shard { index: i, count: 7 }.share(total))
                .sum();
            assert_eq!(sum, total);
        }
        assert_eq!(Shard::WHOLE.share(9), 9);
    }

    #[test]
    fn series_keep_every_count_in_microseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
        for ns in [1_000, 1_200, 1_400, 15_000, 15_001, 2_000_000] {
            h.record(ns).unwrap();
        }
        let s = LatencySeries::of("allowed", SeriesKind::Allowed, false, &h);
        assert_eq!(s.count(), 6);
        assert_eq!(s.buckets.first().map(|b| b.0), Some(1));
        // Values read as the top of their bucket, as percentiles do.
        assert!(matches!(s.max(), Some(2000..=2001)), "{:?}", s.max());
        assert!(s.buckets.windows(2).all(|w| w[0].0 < w[1].0));
    }

    fn phase(rate: f64, p50: f64, p99: f64) -> PhaseReport {
        let corrected = Percentiles {
            p50_us: p50,
            p99_us: p99,
            ..Percentiles::default()
        };
        PhaseReport {
            name: "target".into(),
            target: "builtin".into(),
            transport: Transport::Stdio,
            schedule: "closed loop".into(),
            connections: 1,
            lanes: 1,
            offered_rate: None,
            achieved_rate: rate,
            measured_s: 1.0,
            sent: 10,
            completed: 10,
            measured: 10,
            unsent: 0,
            all: corrected,
            allowed: ClassStats {
                calls: 10,
                passed: 10,
                corrected,
                ..ClassStats::default()
            },
            denied: ClassStats::default(),
            errors: Errors::default(),
            generator_bound: false,
            series: Vec::new(),
        }
    }

    #[test]
    fn added_latency_is_the_difference_over_the_baseline() {
        let a = Added::between(&phase(500.0, 40.0, 90.0), &phase(1000.0, 30.0, 60.0));
        assert_eq!(
            a,
            Added {
                p50_us: 10.0,
                p99_us: 30.0,
                throughput_ratio: 0.5
            }
        );
    }

    #[test]
    fn a_generator_bound_run_is_not_a_clean_exit() {
        let mut r = BenchReport {
            version: "0".into(),
            mix: Mix::default(),
            policy: "bundled".into(),
            allowed_tools: vec![],
            denied_tools: vec![],
            warmup_s: 0.0,
            duration_s: 1.0,
            rounds: 1,
            generator_threads: None,
            shard: None,
            merged: None,
            target: phase(10.0, 1.0, 2.0),
            baseline: None,
            added: None,
            relay: None,
            over_relay: None,
            message: None,
        };
        assert_eq!(r.exit_code(), 0);
        r.target.errors.admitted = 1;
        assert_eq!(r.exit_code(), 1);
        let mut b = phase(10.0, 1.0, 2.0);
        b.generator_bound = true;
        r.baseline = Some(b);
        assert_eq!(r.exit_code(), 2);
    }
}
