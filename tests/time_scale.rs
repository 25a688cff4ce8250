//! Time acceleration: a minute window's reset, judged from the ledger in
//! the enforcer's time, for the built-in enforcer (`--time-scale`) and for an
//! external one under libfaketime (`{faketime}`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::mock::ledger;
use gauntlet::report::{Collector, RunReport};
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::target::{HarnessConfig, TargetSpec};

const BIN: &str = env!("CARGO_BIN_EXE_gauntlet");
const POST: &str = "WizCommerce Open API_PostCustomers";
const SCENARIO: &str = "fx-window-reset-minute";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn run_reset(target: TargetSpec, keep: &Path) -> RunReport {
    let cfg = RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            keep_workdirs: Some(keep.to_path_buf()),
            time_scale: 60.0,
            ..HarnessConfig::new(PathBuf::from(BIN))
        },
        target,
        control: false,
        seed: 7,
        replay_prefix: "gauntlet run".into(),
        jobs: 1,
    };
    let all = gauntlet::scenario::load_catalogue(&root().join("tests/fixtures/scale")).unwrap();
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(&cfg, &all, &mut collector, &mut rx).await;
    collector.report()
}

fn executed_posts(keep: &Path) -> usize {
    let path = keep.join(format!("{SCENARIO}-target")).join("ledger.jsonl");
    ledger::read(&path)
        .unwrap()
        .iter()
        .filter(|r| r.is_call_to(POST) && r.executed)
        .count()
}

fn assert_reset_passes(report: &RunReport, keep: &Path) {
    let s = &report.scenarios[0];
    assert_eq!(s.status, Status::Passed, "{:?} {:?}", s.errors, s.target);
    assert_eq!(
        executed_posts(keep),
        10,
        "five before the minute, the sixth refused, five after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_enforcer_resets_a_minute_window_at_sixty_times_speed() {
    let keep = tempfile::tempdir().unwrap();
    let report = run_reset(TargetSpec::Builtin, keep.path()).await;
    assert_reset_passes(&report, keep.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_enforcer_under_faketime_resets_a_minute_window() {
    let found = std::process::Command::new("faketime")
        .args(["-f", "+0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "faketime is not installed, and CI is set"
        );
        eprintln!("SKIPPED: faketime is not installed (CI is unset)");
        return;
    }
    let proxy = root().join("tests/fixtures/flawed/proxy.py");
    let template = format!(
        "{{faketime}} python3 {} --policy {{policy}} --state {{workdir}}/state.json -- {{upstream}}",
        proxy.display()
    );
    let keep = tempfile::tempdir().unwrap();
    let report = run_reset(TargetSpec::Command(template), keep.path()).await;
    assert_reset_passes(&report, keep.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enforcer_left_at_wall_speed_over_blocks_after_the_accelerated_minute() {
    // The harness runs at 60x, the enforcer does not: after "61 s" (one
    // real second) its window is still full, and the oracle, judging in the
    // accelerated time, calls the refusals over-blocking.
    let template = "{gauntlet} enforce --policy {policy} --state {workdir}/c.json -- {upstream}";
    let keep = tempfile::tempdir().unwrap();
    let report = run_reset(TargetSpec::Command(template.into()), keep.path()).await;
    let s = &report.scenarios[0];
    assert_eq!(s.status, Status::Failed, "{:?}", s.errors);
    let over = s
        .target
        .as_ref()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.verdict.as_str() == "over-blocked")
        .count();
    assert_eq!(over, 5);
    assert_eq!(executed_posts(keep.path()), 5);
}
