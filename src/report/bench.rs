//! The bench's part of the table, Markdown and HTML reports: each phase's
//! rates, percentiles and errors, and what the target adds over the bare
//! mock. A report of a bench alone (`gauntlet bench`, `gauntlet merge`)
//! shows only this.

use std::fmt::Write;

use super::RunReport;
use crate::run::{BenchReport, ClassStats, Percentiles, PhaseReport};

/// Whether the report holds a bench and nothing else.
pub(super) fn only(report: &RunReport) -> Option<&BenchReport> {
    match (&report.info, report.scenarios.is_empty(), &report.bench) {
        (None, true, Some(b)) => Some(b),
        _ => None,
    }
}

/// `12.3 µs`, `1.25 ms`, `3.40 s`.
pub(super) fn fmt(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// The settings line: version, mix, policy, timing, and the sharding.
pub(super) fn settings(r: &BenchReport) -> String {
    let mut s = format!(
        "gauntlet {} · mix allow:{},deny:{} · policy {} · warm-up {:.1} s, {:.1} s measured",
        r.version, r.mix.allow, r.mix.deny, r.policy, r.warmup_s, r.duration_s
    );
    if let Some(n) = r.generator_threads {
        let _ = write!(s, " · generator on {n} thread(s)");
    }
    if r.rounds > 1 {
        let _ = write!(
            s,
            " · phases interleaved in {} rounds of {:.1} s each",
            r.rounds,
            r.duration_s / f64::from(r.rounds)
        );
    }
    if let Some(shard) = r.shard {
        let _ = write!(
            s,
            " · shard {shard}: this part of the load alone (`gauntlet merge` combines the shards' logs)"
        );
    }
    if let Some(m) = r.merged {
        let _ = write!(
            s,
            " · merged from {} shard(s) whose starts spread over {:.3} s (rates add up as if they ran together)",
            m.shards, m.start_spread_s
        );
        // Within the warm-up, every shard is already sending while any
        // other measures; past it, some measured time saw less than the
        // whole load.
        if m.shards > 1 && m.start_spread_s > r.warmup_s {
            s.push_str(
                " · the spread exceeds the warm-up: part of the measured time saw less than the whole load (use a longer --warmup or --start-at)",
            );
        }
    }
    s
}

/// One phase's rates line.
pub(super) fn rates(p: &PhaseReport) -> String {
    let offered = p
        .offered_rate
        .map_or_else(|| "—".to_owned(), |r| format!("{r:.0}/s"));
    format!(
        "{} over {}, {}, {} connection(s), {} in flight · offered {offered}, achieved {:.0}/s over {:.1} s · sent {}, measured {}, unsent {}{}",
        p.target,
        p.transport,
        p.schedule,
        p.connections,
        p.lanes,
        p.achieved_rate,
        p.measured_s,
        p.sent,
        p.measured,
        p.unsent,
        if p.generator_bound {
            " · GENERATOR-BOUND: achieved < 99 % of offered"
        } else {
            ""
        }
    )
}

/// One phase's errors line.
pub(super) fn errors(p: &PhaseReport) -> String {
    let e = &p.errors;
    format!(
        "errors: denied {} · admitted {} · transport {} · timeout {}",
        e.denied, e.admitted, e.transport, e.timeout
    )
}

/// The added-latency line, when there is a baseline or a null relay.
pub(super) fn added(r: &BenchReport) -> Option<String> {
    let over_mock = r.added.map(|a| {
        format!(
            "added by the target (allowed calls, corrected): Δp50 {} · Δp99 {} · throughput {:.2}× baseline",
            fmt(a.p50_us),
            fmt(a.p99_us),
            a.throughput_ratio
        )
    });
    let over_relay = r.over_relay.map(|a| {
        format!(
            "over the null relay: Δp50 {} · Δp99 {} · throughput {:.2}× relay",
            fmt(a.p50_us),
            fmt(a.p99_us),
            a.throughput_ratio
        )
    });
    match (over_mock, over_relay) {
        (Some(m), Some(r)) => Some(format!("{m}; {r}")),
        (m, r) => m.or(r),
    }
}

/// The rows of a phase's latency table: `(label, calls, percentiles)`.
pub(super) fn rows(p: &PhaseReport) -> Vec<(String, u64, Percentiles)> {
    let mut rows = Vec::new();
    for (name, c) in [("allowed", &p.allowed), ("denied", &p.denied)] {
        let ClassStats {
            calls,
            corrected,
            uncorrected,
            ..
        } = *c;
        if calls == 0 {
            continue;
        }
        rows.push((name.to_owned(), calls, corrected));
        rows.push((format!("{name}, uncorrected"), calls, uncorrected));
    }
    rows
}

/// The bench for a terminal.
pub(super) fn table(out: &mut String, r: &BenchReport) {
    let _ = writeln!(out, "{}\n", settings(r));
    for p in r.phases() {
        let _ = writeln!(out, "{} — {}", p.name, rates(p));
        let _ = writeln!(
            out,
            "  {:<22} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "latency", "p50", "p90", "p99", "p99.9", "max"
        );
        for (label, calls, q) in rows(p) {
            let label = if label.contains(',') {
                label
            } else {
                format!("{label} ({calls})")
            };
            let _ = writeln!(
                out,
                "  {label:<22} {:>10} {:>10} {:>10} {:>10} {:>10}",
                fmt(q.p50_us),
                fmt(q.p90_us),
                fmt(q.p99_us),
                fmt(q.p999_us),
                fmt(q.max_us)
            );
        }
        let _ = writeln!(out, "  {}\n", errors(p));
    }
    if let Some(a) = added(r) {
        let _ = writeln!(out, "{a}");
    }
    if let Some(m) = &r.message {
        let _ = writeln!(out, "stopped early: {m}");
    }
}

/// The bench in Markdown, under a heading of `level`.
pub(super) fn md(out: &mut String, r: &BenchReport, level: &str) {
    let mark = if r.exit_code() == 0 { "✅" } else { "❌" };
    let _ = writeln!(
        out,
        "{level} {mark} Decision latency of {}\n\n{}\n",
        super::md::code(&r.target.target),
        super::md::cell(&settings(r))
    );
    out.push_str(
        "| phase | calls | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n",
    );
    for p in r.phases() {
        for (label, calls, q) in rows(p) {
            let _ = writeln!(
                out,
                "| {} {} | {calls} | {} | {} | {} | {} | {} |",
                p.name,
                label,
                fmt(q.p50_us),
                fmt(q.p90_us),
                fmt(q.p99_us),
                fmt(q.p999_us),
                fmt(q.max_us)
            );
        }
    }
    out.push('\n');
    for p in r.phases() {
        let _ = writeln!(
            out,
            "- **{}**: {} · {}",
            p.name,
            super::md::cell(&rates(p)),
            errors(p)
        );
    }
    if let Some(a) = added(r) {
        let _ = writeln!(out, "\n**{a}**");
    }
    if let Some(m) = &r.message {
        let _ = writeln!(out, "\n> **Stopped early:** {}", super::md::cell(m));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_spread_past_the_warm_up_is_pointed_out() {
        let text = |spread: f64| {
            let mut r: BenchReport = serde_json::from_value(serde_json::json!({
                "version": "0", "mix": {"allow": 1, "deny": 0}, "policy": "p",
                "allowed_tools": [], "denied_tools": [], "warmup_s": 2.0, "duration_s": 10.0,
                "target": {
                    "name": "target", "target": "builtin", "transport": "stdio",
                    "schedule": "closed loop", "connections": 1, "lanes": 1,
                    "offered_rate": null, "achieved_rate": 1.0, "measured_s": 10.0,
                    "sent": 10, "completed": 10, "measured": 10, "unsent": 0,
                    "all": Percentiles::default(),
                    "allowed": ClassStats::default(), "denied": ClassStats::default(),
                    "errors": crate::run::Errors::default(), "generator_bound": false
                }
            }))
            .unwrap();
            r.merged = Some(crate::run::Merged {
                shards: 2,
                start_spread_s: spread,
            });
            settings(&r)
        };
        assert!(!text(1.5).contains("exceeds the warm-up"));
        assert!(text(2.5).contains("exceeds the warm-up"));
    }

    #[test]
    fn latencies_read_in_their_unit() {
        assert_eq!(fmt(12.34), "12.3 µs");
        assert_eq!(fmt(1250.0), "1.25 ms");
        assert_eq!(fmt(3_400_000.0), "3.40 s");
    }
}
