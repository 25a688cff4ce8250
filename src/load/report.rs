//! What a bench found: the figures of each phase, the enforcer's added
//! latency over the baseline, and the table people read.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::mix::Mix;

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
pub struct Errors {
    /// Calls the policy allows that were denied (a limit, an over-block).
    pub denied: u64,
    /// Calls the policy denies that were answered with success.
    pub admitted: u64,
    pub transport: u64,
    pub timeout: u64,
}

/// One phase: the load against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// What was measured: the target's label, or `baseline`.
    pub name: String,
    pub target: String,
    pub transport: crate::target::Transport,
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
}

/// What the enforcer adds over the bare mock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// A whole bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub version: String,
    pub mix: Mix,
    pub policy: String,
    pub allowed_tools: Vec<String>,
    pub denied_tools: Vec<String>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub target: PhaseReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<PhaseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<Added>,
    /// Set when the bench stopped early (Ctrl-C, a dead server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl BenchReport {
    /// The exit code: 2 when the bench could not measure cleanly (errors,
    /// generator-bound, cut short); 1 when an enforcer answered a call its
    /// policy denies with success; else 0.
    pub fn exit_code(&self) -> u8 {
        let leaked = self.target.target != "none" && self.target.errors.admitted > 0;
        let troubled = |p: &PhaseReport| {
            p.generator_bound || p.errors.transport > 0 || p.errors.timeout > 0 || p.measured == 0
        };
        if self.message.is_some()
            || troubled(&self.target)
            || self.baseline.as_ref().is_some_and(troubled)
        {
            2
        } else if leaked {
            1
        } else {
            0
        }
    }
}

fn ms(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.1}µs")
    }
}

fn row(out: &mut String, label: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {label:<22} {:>10} {:>10} {:>10} {:>10} {:>10}",
        ms(p.p50_us),
        ms(p.p90_us),
        ms(p.p99_us),
        ms(p.p999_us),
        ms(p.max_us)
    );
}

fn phase(out: &mut String, p: &PhaseReport) {
    let _ = writeln!(
        out,
        "{} — {} over {}, {}, {} connection(s), {} in flight",
        p.name, p.target, p.transport, p.schedule, p.connections, p.lanes
    );
    let offered = p
        .offered_rate
        .map_or_else(|| "—".to_owned(), |r| format!("{r:.0}/s"));
    let _ = writeln!(
        out,
        "  offered {offered}, achieved {:.0}/s over {:.1}s; sent {}, measured {}, unsent {}{}",
        p.achieved_rate,
        p.measured_s,
        p.sent,
        p.measured,
        p.unsent,
        if p.generator_bound {
            "  [GENERATOR-BOUND: achieved < 99 % of offered]"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  {:<22} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, c) in [("allowed", &p.allowed), ("denied", &p.denied)] {
        if c.calls == 0 {
            continue;
        }
        row(out, &format!("{name} ({})", c.calls), &c.corrected);
        row(out, &format!("{name}, uncorrected"), &c.uncorrected);
    }
    let e = &p.errors;
    let _ = writeln!(
        out,
        "  errors: denied {} · admitted {} · transport {} · timeout {}",
        e.denied, e.admitted, e.transport, e.timeout
    );
}

/// The final table.
pub fn table(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gauntlet bench {} · mix allow:{},deny:{} · policy {} · warm-up {:.1}s, {:.1}s measured",
        r.version, r.mix.allow, r.mix.deny, r.policy, r.warmup_s, r.duration_s
    );
    out.push('\n');
    phase(&mut out, &r.target);
    if let Some(b) = &r.baseline {
        out.push('\n');
        phase(&mut out, b);
    }
    if let Some(a) = &r.added {
        let _ = writeln!(
            out,
            "\nadded by the target (allowed calls, corrected): Δp50 {} · Δp99 {} · throughput {:.2}× baseline",
            ms(a.p50_us),
            ms(a.p99_us),
            a.throughput_ratio
        );
    }
    if let Some(m) = &r.message {
        let _ = writeln!(out, "\nstopped early: {m}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase_report(rate: f64, p50: f64, p99: f64) -> PhaseReport {
        let corrected = Percentiles {
            p50_us: p50,
            p99_us: p99,
            ..Percentiles::default()
        };
        PhaseReport {
            name: "target".into(),
            target: "builtin".into(),
            transport: crate::target::Transport::Stdio,
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
        }
    }

    #[test]
    fn added_latency_is_the_difference_over_the_baseline() {
        let a = Added::between(
            &phase_report(500.0, 40.0, 90.0),
            &phase_report(1000.0, 30.0, 60.0),
        );
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
            target: phase_report(10.0, 1.0, 2.0),
            baseline: None,
            added: None,
            message: None,
        };
        assert_eq!(r.exit_code(), 0);
        r.target.generator_bound = true;
        assert_eq!(r.exit_code(), 2);
        assert!(table(&r).contains("GENERATOR-BOUND"));
    }
}
