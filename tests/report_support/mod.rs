//! A bench report with fixed figures, for the reporters' tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gauntlet::load::Mix;
use gauntlet::run::{
    Added, BenchReport, ClassStats, Errors, LatencySeries, Percentiles, PhaseReport, SeriesKind,
};
use gauntlet::target::Transport;

pub fn phase(name: &str, series: Vec<LatencySeries>, p50: f64, p99: f64) -> PhaseReport {
    let q = Percentiles {
        p50_us: p50,
        p90_us: p50 * 1.5,
        p99_us: p99,
        p999_us: p99 * 3.0,
        max_us: 2100.0,
        mean_us: p50 * 1.2,
    };
    let class = |calls| ClassStats {
        calls,
        passed: calls,
        refused: 0,
        corrected: q,
        uncorrected: q,
    };
    PhaseReport {
        name: name.into(),
        target: if name == "baseline" {
            "none"
        } else {
            "builtin"
        }
        .into(),
        transport: Transport::Stdio,
        schedule: "open loop at 2000/s".into(),
        connections: 1,
        lanes: 64,
        offered_rate: Some(2000.0),
        achieved_rate: 1998.5,
        measured_s: 30.0,
        sent: 70_000,
        completed: 70_000,
        measured: 60_000,
        unsent: 0,
        all: q,
        allowed: class(42_000),
        denied: ClassStats {
            passed: 0,
            refused: 18_000,
            ..class(18_000)
        },
        errors: Errors {
            timeout: 2,
            ..Errors::default()
        },
        generator_bound: false,
        series,
    }
}

pub fn bench() -> BenchReport {
    let series = |label: &str, kind, baseline, buckets: Vec<(u64, u64)>| LatencySeries {
        label: label.into(),
        kind,
        baseline,
        buckets,
    };
    let target = phase(
        "target",
        vec![
            series(
                "allowed",
                SeriesKind::Allowed,
                false,
                vec![(18, 400), (22, 9000), (30, 500), (95, 80), (2100, 3)],
            ),
            series(
                "denied",
                SeriesKind::Denied,
                false,
                vec![(12, 300), (15, 4000), (26, 200), (70, 20)],
            ),
        ],
        22.0,
        95.0,
    );
    let baseline = phase(
        "baseline",
        vec![series(
            "baseline allowed",
            SeriesKind::Allowed,
            true,
            vec![(8, 3000), (10, 6000), (14, 900), (60, 10)],
        )],
        10.0,
        60.0,
    );
    BenchReport {
        version: "0.0.0".into(),
        mix: Mix::default(),
        policy: "bundled bench policy".into(),
        allowed_tools: vec!["WizCommerce Open API_PostCustomers".into()],
        denied_tools: vec!["WizCommerce Open API_DeleteCustomer".into()],
        warmup_s: 5.0,
        duration_s: 30.0,
        rounds: 1,
        generator_threads: None,
        shard: None,
        merged: None,
        added: Some(Added::between(&target, &baseline)),
        relay: None,
        over_relay: None,
        target,
        baseline: Some(baseline),
        message: None,
    }
}

/// The bench with no samples in any series.
pub fn bench_without_samples() -> BenchReport {
    let mut b = bench();
    b.target.series.clear();
    if let Some(base) = b.baseline.as_mut() {
        base.series.clear();
    }
    b
}
