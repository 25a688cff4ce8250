//! Sharded load, for real: two half-rate shards against the built-in
//! enforcer, merged from their interval logs, read as one machine running
//! the whole load would; and `gauntlet bench --shard` / `gauntlet merge`
//! through the binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use gauntlet::load::log::{self, PhaseLog};
use gauntlet::load::{BENCH_POLICY, BenchConfig, BenchOutcome, Class, Mix, Schedule, run_bench};
use gauntlet::run::{NoSink, Percentiles, PhaseReport, Shard};
use gauntlet::target::{HarnessConfig, TargetSpec};
use hdrhistogram::Histogram;

const RATE: f64 = 300.0;

fn config(shard: Shard, keep: &Path) -> BenchConfig {
    BenchConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            keep_workdirs: Some(keep.to_path_buf()),
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target: TargetSpec::Builtin,
        policy: gauntlet::policy::parse_json(BENCH_POLICY, "bench-policy.json").unwrap(),
        policy_label: "bundled".into(),
        // The whole load's rate: each shard sends every other call of it.
        schedule: Schedule::Open { rate: RATE },
        warmup: Duration::ZERO,
        duration: Duration::from_secs(2),
        mix: Mix::default(),
        connections: 1,
        lanes: 4,
        baseline: true,
        null_relay: false,
        rounds: 1,
        threads: None,
        // Bounded by count as well as time.
        max_calls: Some(2 * RATE as u64 * 4),
        mock_args: Vec::new(),
        shard: Some(shard),
        start_at: None,
    }
}

async fn shard(index: u32, keep: &Path) -> BenchOutcome {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let cfg = config(Shard { index, count: 2 }, keep);
    run_bench(&cfg, &mut NoSink, rx).await.unwrap()
}

fn logs(outcome: &mut BenchOutcome) -> Vec<PhaseLog> {
    outcome
        .logs
        .iter_mut()
        .map(|(name, log)| log::parse(&log.to_vec().unwrap(), name).unwrap())
        .collect()
}

fn ledger_calls(dir: &Path) -> u64 {
    let records = gauntlet::mock::ledger::read(&dir.join("ledger.jsonl")).unwrap();
    records.iter().filter(|r| r.is_call()).count() as u64
}

fn sum(a: &Histogram<u64>, b: &Histogram<u64>) -> Histogram<u64> {
    let mut s = a.clone();
    s.add(b).unwrap();
    s
}

/// The percentiles each shard's log gives are the ones that shard reported.
fn check_faithful(phase: &PhaseReport, log: &PhaseLog) {
    let h = &log.hists;
    assert_eq!(
        phase.allowed.corrected,
        Percentiles::of(&h.corrected[Class::Allowed.index()])
    );
    assert_eq!(
        phase.allowed.uncorrected,
        Percentiles::of(&h.uncorrected[Class::Allowed.index()])
    );
    assert_eq!(
        phase.denied.corrected,
        Percentiles::of(&h.corrected[Class::Denied.index()])
    );
    assert_eq!(phase.sent, log.meta.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_half_rate_shards_merge_into_the_whole_load() {
    let (keep0, keep1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Side by side, as shards run.
    let (mut a, mut b) = tokio::join!(shard(0, keep0.path()), shard(1, keep1.path()));
    assert_eq!(a.report.shard, Some(Shard { index: 0, count: 2 }));
    assert_eq!(a.report.target.offered_rate, Some(RATE / 2.0));
    let names: Vec<&str> = b.logs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["target.shard-1-of-2.hlog", "baseline.shard-1-of-2.hlog"]
    );

    let (la, lb) = (logs(&mut a), logs(&mut b));
    for (outcome, logs) in [(&a, &la), (&b, &lb)] {
        check_faithful(&outcome.report.target, &logs[0]);
        check_faithful(outcome.report.baseline.as_ref().unwrap(), &logs[1]);
    }
    let all: Vec<PhaseLog> = la.iter().chain(&lb).cloned().collect();
    let merged = gauntlet::load::merge::merge(&all).unwrap();
    assert_eq!(merged.merged.map(|m| m.shards), Some(2));

    for (i, (phase, (pa, pb))) in [
        (&merged.target, (&a.report.target, &b.report.target)),
        (
            merged.baseline.as_ref().unwrap(),
            (
                a.report.baseline.as_ref().unwrap(),
                b.report.baseline.as_ref().unwrap(),
            ),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // The merge is the histograms' own add, for both classes and kinds.
        let (ha, hb) = (&la[i].hists, &lb[i].hists);
        for class in Class::ALL {
            let c = class.index();
            let stats = if class == Class::Allowed {
                &phase.allowed
            } else {
                &phase.denied
            };
            let corrected = sum(&ha.corrected[c], &hb.corrected[c]);
            assert!(!corrected.is_empty());
            assert_eq!(stats.corrected, Percentiles::of(&corrected));
            assert_eq!(
                stats.uncorrected,
                Percentiles::of(&sum(&ha.uncorrected[c], &hb.uncorrected[c]))
            );
        }
        // Counts and rates add up.
        assert_eq!(phase.sent, pa.sent + pb.sent);
        assert_eq!(phase.allowed.calls, pa.allowed.calls + pb.allowed.calls);
        assert_eq!(phase.denied.calls, pa.denied.calls + pb.denied.calls);
        assert_eq!(phase.offered_rate, Some(RATE));
        assert!((phase.achieved_rate - (pa.achieved_rate + pb.achieved_rate)).abs() < 1e-9);
        assert_eq!(
            phase.errors.transport + phase.errors.timeout,
            0,
            "{phase:?}"
        );
    }
    // The ledgers agree: through the enforcer only allowed calls arrive;
    // straight at the mock every call does.
    let arrived = |dir: &Path, phase: &str| ledger_calls(&dir.join(phase));
    assert_eq!(
        arrived(keep0.path(), "target") + arrived(keep1.path(), "target"),
        merged.target.allowed.calls
    );
    assert_eq!(
        arrived(keep0.path(), "baseline") + arrived(keep1.path(), "baseline"),
        merged.baseline.as_ref().unwrap().sent
    );
    // Each shard keeps the asked mix over its own calls, so the whole does.
    for o in [&a, &b] {
        let t = &o.report.target;
        let denied = (0..t.sent)
            .filter(|j| Mix::default().class_of(*j) == Class::Denied)
            .count() as u64;
        assert_eq!(t.denied.calls, denied, "{t:?}");
    }
}

fn gauntlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn bench_shards_and_merge_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = |i: u32| dir.path().join(format!("shard-{i}"));
    let run = |i: u32| {
        let shard = format!("{i}/2");
        let folder = out(i).display().to_string();
        // One shard's generator runs on a single thread, the other on two
        // workers: both must send what the merge then adds up.
        let threads = if i == 0 { "1" } else { "2" };
        std::thread::spawn(move || {
            gauntlet(&[
                "bench",
                "--threads",
                threads,
                "--shard",
                &shard,
                "--rate",
                "200",
                "--duration",
                "1s",
                "--warmup",
                "0",
                "--max-calls",
                "800",
                "--out",
                &folder,
                "--format",
                "json",
            ])
        })
    };
    let (a, b) = (run(0), run(1));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let logs: Vec<String> = (0..2)
        .map(|i| {
            out(i)
                .join(format!("target.shard-{i}-of-2.hlog"))
                .display()
                .to_string()
        })
        .collect();
    for o in [&a, &b] {
        // With --out and no table asked for, nothing goes to stdout.
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let saved = |i: u32| -> serde_json::Value {
        let text = std::fs::read_to_string(out(i).join("report.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (ja, jb) = (saved(0), saved(1));
    assert_eq!(
        ja["bench"]["shard"],
        serde_json::json!({"index": 0, "count": 2})
    );
    assert_eq!(ja["bench"]["target"]["offered_rate"], 100.0);
    // How the load was made is part of the report.
    assert_eq!(ja["bench"]["generator_threads"], 1);
    assert_eq!(jb["bench"]["generator_threads"], 2);

    let merged = gauntlet(&["merge", &logs[0], &logs[1], "--format", "json"]);
    let jm = json_of(&merged);
    let bench = &jm["bench"];
    assert_eq!(bench["merged"]["shards"], 2);
    assert_eq!(bench["target"]["offered_rate"], 200.0);
    let sent = |j: &serde_json::Value| j["bench"]["target"]["sent"].as_u64().unwrap();
    assert_eq!(
        bench["target"]["sent"].as_u64().unwrap(),
        sent(&ja) + sent(&jb)
    );
    assert!(bench["target"]["series"].as_array().unwrap().len() == 2);
    // The exit code follows the merged report, as bench's does.
    let troubled = bench["target"]["generator_bound"] == true;
    assert_eq!(merged.status.code(), Some(if troubled { 2 } else { 0 }));

    // With --out the merge writes the whole load's log, second by second,
    // which reads back alone to the same figures.
    let whole = dir.path().join("whole");
    let written = gauntlet(&[
        "merge",
        &logs[0],
        &logs[1],
        "--out",
        &whole.display().to_string(),
    ]);
    assert_eq!(written.status.code(), merged.status.code());
    let one = whole.join("target.hlog");
    let text = std::fs::read_to_string(&one).unwrap();
    assert!(!text.contains("\"shard\""), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("Tag=allowed,")),
        "{text}"
    );
    let again = gauntlet(&["merge", &one.display().to_string(), "--format", "json"]);
    let again = &json_of(&again)["bench"];
    for field in ["sent", "allowed", "denied", "offered_rate"] {
        assert_eq!(again["target"][field], bench["target"][field], "{field}");
    }
    let rate = |j: &serde_json::Value| j["target"]["achieved_rate"].as_f64().unwrap();
    assert!((rate(again) - rate(bench)).abs() < 1e-6 * rate(bench));

    // The saved bench re-renders through `gauntlet report`.
    let saved = out(0).join("report.json").display().to_string();
    let md = gauntlet(&["report", &saved, "--format", "md"]);
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("Decision latency of `builtin`"), "{md}");
    assert!(md.contains("shard 0/2"), "{md}");

    // A broken log is named with its line.
    let text = std::fs::read_to_string(&logs[1]).unwrap();
    let broken = dir.path().join("broken.hlog");
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("Tag=")).unwrap();
    lines[at] = "Tag=allowed,0.0,1.0,0.1,not*base64";
    std::fs::write(&broken, lines.join("\n")).unwrap();
    let bad = gauntlet(&["merge", &logs[0], &broken.display().to_string()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(&format!("`{}` line {}:", broken.display(), at + 1)),
        "{err}"
    );
    // Half the load alone is not the whole.
    let half = gauntlet(&["merge", &logs[0]]);
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("1/2 missing"));
    // A shard index counts from 0.
    let wrong = gauntlet(&[
        "bench",
        "--shard",
        "2/2",
        "--rate",
        "10",
        "--duration",
        "1s",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("must be below 2"));
}
