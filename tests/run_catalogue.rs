//! The replay runner end to end: a small fixed catalogue against the bare
//! mock (every attack must land) and against the reference enforcer (none
//! may), judged from the mock's ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::report::{Collector, Format, RunReport, render};
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::target::{HarnessConfig, TargetSpec, Transport};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalogue")
}

fn config(target: TargetSpec, transport: Transport, control: bool) -> RunConfig {
    RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            transport,
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target,
        control,
        seed: 7,
        replay_prefix: "gauntlet run".into(),
        jobs: 2,
    }
}

async fn run_fixtures(cfg: &RunConfig) -> RunReport {
    let all = gauntlet::scenario::load_catalogue(&fixtures()).unwrap();
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(cfg, &all, &mut collector, &mut rx).await;
    let mut report = collector.report();
    report.summary.duration_ms = 0;
    if let Some(info) = &mut report.info {
        info.started_at = None;
    }
    for s in &mut report.scenarios {
        s.duration_ms = 0;
        for path in [&mut s.file, &mut s.policy_file] {
            *path = path
                .rsplit("catalogue/")
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    }
    report
}

/// Zeroes what differs between runs (process instances, paths).
fn stable(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    match k.as_str() {
                        "instance" => *child = Value::from("<instance>"),
                        "version" => *child = Value::from("<version>"),
                        _ => walk(child),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_lands_on_the_bare_mock() {
    let report = run_fixtures(&config(TargetSpec::None, Transport::Stdio, false)).await;
    assert_eq!(report.scenarios.len(), 4);
    for s in &report.scenarios {
        assert_eq!(s.status, Status::Failed, "{}: {:?}", s.id, s.errors);
        let target = s.target.as_ref().unwrap();
        assert!(target.landed, "{}", s.id);
    }
    // The bulk scenario: 35 sent, all 35 arrived, the 5 beyond the limit of 30 leaked.
    let bulk = report.scenarios.iter().find(|s| s.id == "fx-bulk").unwrap();
    let judged = bulk.target.as_ref().unwrap();
    assert_eq!(judged.arrivals, 35);
    assert_eq!(
        judged
            .calls
            .iter()
            .filter(|c| c.verdict.as_str() == "leaked")
            .count(),
        5
    );
    insta::assert_snapshot!(
        "bare_mock_table",
        render(&report, Format::Table, false).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_mock_json_report_is_stable() {
    let report = run_fixtures(&config(TargetSpec::None, Transport::Stdio, false)).await;
    let json: Value = serde_json::to_value(&report).unwrap();
    let names: Vec<&str> = report.scenarios.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(names, ["fx-bulk", "fx-unlisted", "fx-case", "fx-batch"]);
    let mut trimmed = stable(json);
    // The bulk scenario's 35 call rows are covered by the table snapshot.
    if let Some(calls) = trimmed.pointer_mut("/scenarios/0/target/calls") {
        *calls = Value::from("<35 calls>");
    }
    insta::assert_json_snapshot!("bare_mock_report", trimmed);
}
