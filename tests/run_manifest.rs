//! The harness with a manifest (`HarnessConfig::tools`): every mock it
//! starts serves the manifest, arguments are generated from its schemas,
//! and the oracle judges against it, over stdio and HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::report::{Collector, RunReport};
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::target::{HarnessConfig, TargetSpec, Transport};
use serde_json::json;

const POLICY: &str = r#"{"version": "1", "default": "deny", "tools": {
  "create_payment": {
    "deny_if": [{"path": "args.amount", "op": "gt", "value": 100}],
    "limits": [{"counter": "payments", "window": "minute", "max": 2, "scope": "grant"}]
  },
  "list_payments": {}
}}"#;

const CAP: &str = r#"
id = "pm-amount-cap"
title = "A payment over the cap"
category = "argument-checks"
severity = "high"
description = "One payment within the cap, one over it."
references = ["boundary-condition"]
policy = "pay.json"

[[step]]
call = "create_payment"
generate = "valid"

[[step]]
call = "create_payment"
generate = "valid"
set = { amount = 500 }
"#;

const REFUND: &str = r#"
id = "pm-write-then-error"
title = "Failing payments use up the quota"
category = "quota-refund"
severity = "high"
description = "Two payments that run and then fail spend the quota of two."
references = ["quota-refund-abuse"]
policy = "pay.json"

[[step]]
call = "create_payment"
args = { amount = 5, currency = "usd", customer = "gauntlet:write-then-error" }
repeat = 2

[[step]]
call = "create_payment"
args = { amount = 5, currency = "usd", customer = "cus_1" }
repeat = 2
"#;

/// A catalogue of the two scenarios, and the manifest they are written for.
fn world(dir: &Path) -> PathBuf {
    for (rel, text) in [
        ("policies/pay.json", POLICY),
        ("argument-checks/pm-amount-cap.toml", CAP),
        ("quota-refund/pm-write-then-error.toml", REFUND),
    ] {
        let path = dir.join("catalogue").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let manifest = dir.join("manifest.json");
    let tools = json!({"tools": [
        {"name": "create_payment",
         "inputSchema": {"type": "object", "required": ["amount", "currency"],
            "additionalProperties": false,
            "properties": {"amount": {"type": "integer", "minimum": 1, "maximum": 90},
                           "currency": {"type": "string", "enum": ["usd", "eur"]},
                           "customer": {"type": "string"}}}},
        {"name": "list_payments", "inputSchema": {"type": "object"}}]});
    std::fs::write(&manifest, tools.to_string()).unwrap();
    manifest
}

fn config(target: TargetSpec, transport: Transport, tools: &Path) -> RunConfig {
    RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            transport,
            tools: Some(tools.to_path_buf()),
            ..HarnessConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet")))
        },
        target,
        control: true,
        seed: 3,
        replay_prefix: "gauntlet run".into(),
        jobs: 2,
    }
}

async fn run_world(cfg: &RunConfig, dir: &Path) -> RunReport {
    let all = gauntlet::scenario::load_catalogue(&dir.join("catalogue")).unwrap();
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(cfg, &all, &mut collector, &mut rx).await;
    collector.report()
}

fn verdicts(report: &RunReport, id: &str) -> Vec<String> {
    let s = report.scenarios.iter().find(|s| s.id == id).unwrap();
    s.target
        .as_ref()
        .unwrap()
        .calls
        .iter()
        .map(|c| c.verdict.as_str().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_enforcer_holds_in_front_of_a_manifest_mock_and_the_control_lands() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = world(dir.path());
    for transport in [Transport::Stdio, Transport::Http] {
        let report = run_world(
            &config(TargetSpec::Builtin, transport, &manifest),
            dir.path(),
        )
        .await;
        for s in &report.scenarios {
            assert_eq!(
                s.status,
                Status::Passed,
                "{transport}: {}: {:?} {:?}",
                s.id,
                s.errors,
                s.target.as_ref().map(|t| &t.findings)
            );
            assert!(s.control.as_ref().unwrap().landed, "{transport}: {}", s.id);
        }
        // The first payment ran on the manifest's mock: it was generated
        // from the manifest's schema and the mock executed it.
        assert_eq!(
            verdicts(&report, "pm-amount-cap"),
            ["allowed", "blocked"],
            "{transport}"
        );
        // Both failing payments ran and counted; the next two were refused.
        assert_eq!(
            verdicts(&report, "pm-write-then-error"),
            ["allowed", "allowed", "blocked", "blocked"],
            "{transport}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_manifest_mock_lets_every_attack_land() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = world(dir.path());
    let report = run_world(
        &config(TargetSpec::None, Transport::Stdio, &manifest),
        dir.path(),
    )
    .await;
    for s in &report.scenarios {
        assert_eq!(s.status, Status::Failed, "{}: {:?}", s.id, s.errors);
        assert_eq!(
            s.target.as_ref().unwrap().arrivals,
            s.target.as_ref().unwrap().calls.len() as u64
        );
    }
    assert_eq!(verdicts(&report, "pm-amount-cap"), ["allowed", "leaked"]);
    assert_eq!(
        verdicts(&report, "pm-write-then-error"),
        ["allowed", "allowed", "leaked", "leaked"]
    );
}

fn gauntlet_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `gauntlet run --tools` with paths relative to where it runs: the mocks
/// (started by an enforcer, from their own folder) still find the manifest.
#[test]
fn gauntlet_run_takes_the_manifest_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    world(dir.path());
    let out = gauntlet_in(
        dir.path(),
        &[
            "run",
            "--catalogue",
            "catalogue",
            "--tools",
            "manifest.json",
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["passed"], 2, "{report}");
    let replay = report["scenarios"][0]["replay"].as_str().unwrap();
    let manifest = std::path::absolute(dir.path().join("manifest.json")).unwrap();
    assert!(
        replay.contains(&format!("--tools {}", manifest.display())),
        "{replay}"
    );
}

/// `gauntlet bench --tools` without a policy makes one for the manifest:
/// the last tool (none is destructive) denied, the rest allowed.
#[test]
fn gauntlet_bench_serves_the_manifest_under_a_policy_made_for_it() {
    let dir = tempfile::tempdir().unwrap();
    world(dir.path());
    let out = gauntlet_in(
        dir.path(),
        &[
            "bench",
            "--tools",
            "manifest.json",
            "--concurrency",
            "1",
            "--duration",
            "10s",
            "--warmup",
            "0",
            "--max-calls",
            "60",
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bench"]["policy"], "bench policy for the manifest");
    assert_eq!(report["bench"]["allowed_tools"], json!(["create_payment"]));
    assert_eq!(report["bench"]["denied_tools"], json!(["list_payments"]));
    assert_eq!(
        report["bench"]["target"]["errors"]["admitted"], 0,
        "{report}"
    );
    assert!(
        report["bench"]["target"]["allowed"]["calls"]
            .as_u64()
            .unwrap()
            > 0,
        "{report}"
    );
}
