//! Reproductions the fuzzer once saved against the reference enforcer, each
//! a false finding of the oracle's: replayed against that enforcer they must
//! pass, with exactly the denials the policy calls for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::oracle::Verdict;
use gauntlet::report::Collector;
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::target::{HarnessConfig, TargetSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_false_findings_pass_against_the_reference_enforcer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oracle-regressions");
    let scenarios = gauntlet::scenario::load_catalogue(&dir).unwrap();
    assert_eq!(scenarios.len(), 2);
    let cfg = RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target: TargetSpec::Builtin,
        control: false,
        seed: 0,
        replay_prefix: "gauntlet run".into(),
        jobs: 2,
    };
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(&cfg, &scenarios, &mut collector, &mut rx).await;
    let report = collector.report();
    for s in &report.scenarios {
        let judged = s.target.as_ref().unwrap();
        assert_eq!(s.status, Status::Passed, "{}: {:#?}", s.id, judged.findings);
        assert_eq!(
            judged.calls.len(),
            if s.id.contains("unknown") { 9 } else { 7 }
        );
        let blocked: Vec<usize> = judged
            .calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.verdict == Verdict::Blocked)
            .map(|(i, _)| i)
            .collect();
        let want = match s.id.as_str() {
            // The ninth call on Alice's grant quota of 8, counting the one
            // the mock refused.
            "or-charged-unknown-name" => vec![8],
            // Six reads on Alice's session, its limit; one on Bob's.
            "or-session-per-identity" => vec![],
            other => panic!("unexpected scenario `{other}`"),
        };
        assert_eq!(blocked, want, "{}", s.id);
    }
}
