//! `gauntlet bench` end to end: the coordinated-omission correction against
//! a mock that stalls, and the load's honesty against the mock's ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::load::{BENCH_POLICY, BenchConfig, Mix, Schedule, run_bench};
use gauntlet::run::{NoSink, PhaseReport};
use gauntlet::target::{HarnessConfig, TargetSpec, Transport};

fn config(target: TargetSpec, transport: Transport, keep: Option<&Path>) -> BenchConfig {
    BenchConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            transport,
            keep_workdirs: keep.map(Path::to_path_buf),
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target,
        policy: gauntlet::policy::parse_json(BENCH_POLICY, "bench-policy.json").unwrap(),
        policy_label: "bundled".into(),
        schedule: Schedule::Closed,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(2),
        mix: Mix::default(),
        connections: 1,
        lanes: 1,
        baseline: false,
        null_relay: false,
        rounds: 1,
        threads: None,
        max_calls: None,
        mock_args: Vec::new(),
        shard: None,
        start_at: None,
    }
}

async fn bench(cfg: &BenchConfig) -> gauntlet::run::BenchReport {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    run_bench(cfg, &mut NoSink, rx).await.unwrap().report
}

fn ledger_calls(dir: &Path) -> u64 {
    let records = gauntlet::mock::ledger::read(&dir.join("ledger.jsonl")).unwrap();
    records.iter().filter(|r| r.is_call()).count() as u64
}

/// The mock stalls one call in 500 for 50 ms. A closed loop with one call
/// in flight waits the stall out and sends nothing meanwhile, so only one
/// call in 500 is slow and its p99 hides the stall. An open loop keeps the
/// calls due during the stall on the books: every one of them is late,
/// and the corrected p99 shows it while the uncorrected one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correction_charges_a_stall_to_every_call_it_held_up() {
    let mut cfg = config(TargetSpec::None, Transport::Stdio, None);
    cfg.mix = Mix {
        allow: 100,
        deny: 0,
    };
    // Reads of an empty store only: writes would grow the store that each
    // GetCustomers scans, and that slow creep (not the stall) would set the
    // uncorrected tail.
    cfg.policy = gauntlet::policy::parse_json(
        r#"{"version":"1","default":"deny","tools":{"WizCommerce Open API_GetCustomers":{}}}"#,
        "reads.json",
    )
    .unwrap();
    cfg.mock_args = ["--stall-every", "500", "--stall-ms", "50"]
        .map(String::from)
        .to_vec();
    // Bounded by count (four stalls' worth), with time as the backstop.
    cfg.duration = Duration::from_secs(20);
    cfg.max_calls = Some(2000);

    // Both ratios are measured against latencies of a millisecond or so,
    // which a busy machine can stretch for a moment; a broken correction
    // never reaches 10x, so a noisy attempt is retried, at most three times.
    let stall_us = 50_000.0;
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let mut cfg = cfg.clone();
        let closed = bench(&cfg).await.target;
        assert!(
            closed.allowed.calls >= 1500,
            "the closed loop must cross a few stalls: {closed:?}"
        );
        // The stalls happened: the closed loop saw them, one call each.
        assert!(closed.allowed.corrected.max_us >= stall_us, "{closed:?}");

        // Half the closed loop's pace: the target keeps up between stalls.
        // At least 200/s, so a stall holds up more than 1 % of the calls.
        let rate = (closed.achieved_rate / 2.0).max(200.0);
        cfg.schedule = Schedule::Open { rate };
        let open = bench(&cfg).await.target;
        assert!(open.allowed.calls >= 1500, "{open:?}");
        let (corrected, uncorrected) = (open.allowed.corrected, open.allowed.uncorrected);
        // The correction charges the stall to the calls it held up...
        let charged = corrected.p99_us >= 10.0 * uncorrected.p99_us;
        // ...and the closed loop's p99 hides what the open loop shows,
        // though both met the same stalls.
        let hidden = corrected.p99_us >= 10.0 * closed.allowed.corrected.p99_us;
        attempts.push(format!(
            "at {rate:.0}/s: open corrected {corrected:?}\n  open uncorrected {uncorrected:?}\n  closed {:?}",
            closed.allowed.corrected
        ));
        if charged && hidden {
            return;
        }
    }
    panic!("{}", attempts.join("\n"));
}

fn check_honest(phase: &PhaseReport, dir: &Path, through_enforcer: bool) {
    let answered = phase.allowed.calls + phase.denied.calls;
    assert_eq!(
        phase.errors.transport + phase.errors.timeout,
        0,
        "{phase:?}"
    );
    assert_eq!(phase.sent, answered, "{phase:?}");
    assert!(phase.sent >= 100, "{phase:?}");
    let arrived = ledger_calls(dir);
    if through_enforcer {
        // Denied calls stop at the enforcer; everything else arrives.
        assert_eq!(phase.errors.denied, 0, "{phase:?}");
        assert_eq!(phase.errors.admitted, 0, "{phase:?}");
        assert_eq!(arrived, phase.allowed.calls, "{phase:?}");
        assert_eq!(phase.denied.refused, phase.denied.calls);
    } else {
        assert_eq!(arrived, phase.sent, "{phase:?}");
    }
}

/// One bench through the built-in enforcer with all three phases: the
/// target, its baseline straight at the mock, and `--null-relay`, the same
/// load through `gauntlet relay`. Each phase's ledger counts what the bench
/// says it sent: through the enforcer only what it allowed, through the
/// relay everything, the calls the policy denies too, since it reads
/// nothing. The report carries every phase, what the target adds over the
/// baseline and the relay, and a log per phase.
async fn honest_over(transport: Transport, rounds: u32) {
    let keep = tempfile::tempdir().unwrap();
    let mut cfg = config(TargetSpec::Builtin, transport, Some(keep.path()));
    cfg.rounds = rounds;
    cfg.schedule = Schedule::Open { rate: 150.0 };
    cfg.connections = 2;
    cfg.lanes = if transport == Transport::Http { 2 } else { 8 };
    cfg.baseline = true;
    cfg.null_relay = true;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let outcome = run_bench(&cfg, &mut NoSink, rx).await.unwrap();
    let report = &outcome.report;
    check_honest(&report.target, &keep.path().join("target"), true);
    let baseline = report.baseline.as_ref().unwrap();
    check_honest(baseline, &keep.path().join("baseline"), false);
    assert_eq!(report.target.transport, transport);
    assert_eq!(baseline.transport, transport);
    assert!(report.added.is_some());
    let relay = report.relay.as_ref().unwrap();
    assert_eq!(relay.name, "relay");
    assert!(relay.target.contains("relay"), "{}", relay.target);
    check_honest(relay, &keep.path().join("relay"), false);
    assert!(relay.denied.calls > 0);
    assert!(report.over_relay.is_some());
    let names: Vec<&str> = outcome.logs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["target.hlog", "baseline.hlog", "relay.hlog"]);
    // The relay passing what the policy denies is not the target's leak.
    assert_ne!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phases_ledger_counts_what_the_bench_says_it_sent_over_stdio() {
    honest_over(Transport::Stdio, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phases_ledger_counts_what_the_bench_says_it_sent_over_http() {
    // Interleaved: each phase's ledger adds up both of its slices, and
    // the idle connections of a phase waiting its turn are used again.
    honest_over(Transport::Http, 2).await;
}

/// The slices a bench announces: phase, round, rounds.
struct Slices(Vec<(String, u32, u32)>);

impl gauntlet::run::EventSink for Slices {
    fn event(&mut self, event: &gauntlet::run::Event) {
        if let gauntlet::run::Event::BenchPhase {
            name,
            round,
            rounds,
            ..
        } = event
        {
            self.0.push((name.clone(), *round, *rounds));
        }
    }
}

/// When each interval of a phase's log began, in seconds since the epoch.
fn interval_starts(log: &mut gauntlet::load::log::IntervalLog) -> Vec<f64> {
    let text = String::from_utf8(log.to_vec().unwrap()).unwrap();
    let base = text
        .lines()
        .find_map(|l| l.strip_prefix("#[StartTime: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("Tag=allowed,"))
        .map(|l| base + l.split(',').nth(1).unwrap().parse::<f64>().unwrap())
        .collect()
}

/// `--rounds 2`: the target and its baseline take turns (target, baseline;
/// then baseline, target), so the baseline's measurements lie between the
/// target's two slices on the clock, and each phase still measures the
/// whole duration, added up over its slices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_interleave_the_phases_on_the_clock() {
    let mut cfg = config(TargetSpec::Builtin, Transport::Stdio, None);
    cfg.schedule = Schedule::Open { rate: 200.0 };
    cfg.lanes = 4;
    cfg.baseline = true;
    cfg.rounds = 2;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut slices = Slices(Vec::new());
    let mut outcome = run_bench(&cfg, &mut slices, rx).await.unwrap();
    let report = &outcome.report;
    assert_eq!(report.rounds, 2);
    // The order rotates every round: target, baseline; baseline, target.
    assert_eq!(
        slices.0,
        [
            ("target", 1),
            ("baseline", 1),
            ("baseline", 2),
            ("target", 2)
        ]
        .map(|(n, r)| (n.to_owned(), r, 2))
    );
    let baseline = report.baseline.as_ref().unwrap();
    for phase in [&report.target, baseline] {
        let measured = phase.measured_s;
        assert!((1.7..=2.3).contains(&measured), "{phase:?}");
        // Both slices sent their share of 200/s over 1 s each.
        assert!(phase.sent >= 380, "{phase:?}");
        assert!(!phase.generator_bound, "{phase:?}");
    }
    let [(_, target), (_, base)] = &mut outcome.logs[..] else {
        panic!("two logs");
    };
    let (t, b) = (interval_starts(target), interval_starts(base));
    let (b_first, b_last) = (b[0], b[b.len() - 1]);
    assert!(t.iter().any(|x| *x < b_first), "{t:?} {b:?}");
    assert!(t.iter().any(|x| *x > b_last), "{t:?} {b:?}");
    // The baseline ran its two slices back to back, in the middle.
    assert!(b_last - b_first >= 0.9, "{b:?}");
}
