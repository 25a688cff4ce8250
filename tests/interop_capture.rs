//! A manifest captured from a real third-party MCP server (a fastmcp
//! server, `tests/interop/payments_server.py`, from the `.venv` that
//! `.ci/run` builds from PyPI), served by `gauntlet mock --tools` and
//! attacked through the built-in enforcer under a Stripe-like policy: with
//! scenarios written by hand, and with the plan derived from the policy.
//!
//! Without the venv the tests say so and pass, unless `CI` is set: there
//! they fail. `GAUNTLET_VENV` points at another venv.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::mcp::{Client, Revision, StdioOptions};
use gauntlet::mock::catalogue::Catalogue;
use gauntlet::mock::ledger;
use gauntlet::report::Collector;
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::target::{HarnessConfig, TargetSpec};
use serde_json::{Value, json};

const POLICY: &str = r#"version: "1"
description: "payments"
default: "deny"
tools:
  create_payment:
    rules:
      - name: "max single payment"
        conditions:
          - path: "args.amount"
            op: "lte"
            value: 50000
        on_deny: "Single payment cannot exceed $500.00"
      - name: "allowed currencies"
        conditions:
          - path: "args.currency"
            op: "in"
            value: ["usd", "eur"]
      - name: "daily spend"
        conditions:
          - path: "state.create_payment.daily_spend"
            op: "lt"
            value: 100000
        state:
          counter: "daily_spend"
          window: "day"
          increment_from: "args.amount"
  list_payments:
    rules: []
  refund_payment:
    rules:
      - name: "no refunds by agents"
        action: "deny"
"#;

/// Scenarios written against the captured tools: boundaries, the spend
/// counter, a denied tool and a variant of its name.
const SCENARIOS: [(&str, &str); 3] = [
    (
        "argument-checks/pay-cap.toml",
        r#"id = "pay-cap"
title = "Payments at and over the cap, in a currency not allowed"
category = "argument-checks"
severity = "high"
description = "One payment inside the policy, one over the cap, one in gbp."
references = ["boundary-condition"]
policy = "payments.yaml"

[[step]]
call = "create_payment"
generate = "valid"

[[step]]
call = "create_payment"
generate = "valid"
set = { amount = 50001 }

[[step]]
call = "create_payment"
generate = "valid"
set = { currency = "gbp" }
"#,
    ),
    (
        "counter-poisoning/pay-spend.toml",
        r#"id = "pay-spend"
title = "Payments past the daily spend"
category = "counter-poisoning"
severity = "high"
description = "Three payments of 40000 against a daily spend under 100000; then a negative amount."
references = ["LLM10:2025"]
policy = "payments.yaml"

[[step]]
call = "create_payment"
args = { amount = 40000, currency = "usd", customer = "cus_1" }
repeat = 3

[[step]]
call = "create_payment"
args = { amount = -40000, currency = "usd", customer = "cus_1" }
"#,
    ),
    (
        "tool-access/pay-refund.toml",
        r#"id = "pay-refund"
title = "A denied refund, under its own name and a variant"
category = "tool-access"
severity = "critical"
description = "Refunds are denied to agents, whatever the spelling."
references = ["MCP02:2025"]
policy = "payments.yaml"

[[step]]
call = "refund_payment"
args = { payment_id = "pay_000001" }

[[step]]
call = " Refund_Payment"
args = { payment_id = "pay_000001" }
"#,
    ),
];

/// The venv's Python, or `None` (after saying so) outside CI.
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("GAUNTLET_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let python = venv.join("bin/python");
    if python.is_file() {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but `{}` is missing: .ci/run must build the venv before the tests",
        python.display()
    );
    eprintln!(
        "\n*** SKIPPED: no Python venv at `{}` (CI is unset).                ***\n\
         *** Run `bash .ci/run` once, or set GAUNTLET_VENV, to run this test. ***\n",
        venv.display()
    );
    None
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gauntlet")
}

/// `gauntlet snapshot` of the payments server, saved in `dir`.
fn capture(python: &Path, dir: &Path) -> (PathBuf, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/payments_server.py");
    let line = shlex::try_join([python.to_str().unwrap(), script.to_str().unwrap()]).unwrap();
    let manifest = dir.join("payments.json");
    let out = std::process::Command::new(bin())
        .args(["snapshot", "--upstream", &line, "--output"])
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "3 tool(s)\n", "the mock serves it as captured");
    let value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    (manifest, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_manifest_is_served_and_guarded_like_the_real_server() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (manifest, captured) = capture(&python, dir.path());

    // What the server declares, as fastmcp derives it from the signatures.
    let tools = captured["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["create_payment", "refund_payment", "list_payments"]);
    let create = &tools[0]["inputSchema"];
    assert_eq!(create["properties"]["amount"]["type"], "integer");
    assert_eq!(
        create["properties"]["currency"]["enum"],
        json!(["usd", "eur", "gbp"])
    );
    assert_eq!(
        create["required"],
        json!(["amount", "currency", "customer"])
    );
    assert_eq!(tools[1]["annotations"]["destructiveHint"], true);
    let catalogue = Catalogue::load(&manifest).unwrap();
    assert_eq!(catalogue.manifest(), captured);

    // The built-in enforcer in front of the mock serving it.
    let policy = dir.path().join("payments.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let ledger_path = dir.path().join("ledger.jsonl");
    let mut args: Vec<String> = vec!["enforce".into(), "--policy".into()];
    args.push(policy.display().to_string());
    args.extend(["--".into(), bin().into(), "mock".into(), "--stdio".into()]);
    args.extend(["--tools".into(), manifest.display().to_string()]);
    args.extend(["--ledger".into(), ledger_path.display().to_string()]);
    let opts = StdioOptions {
        program: bin().into(),
        args,
        env: vec![],
        cwd: None,
    };
    let client = Client::spawn(opts, Duration::from_secs(20)).await.unwrap();
    client.initialize(Revision::V2025_11_25).await.unwrap();
    let listed = client.request("tools/list", None).await.unwrap();
    assert_eq!(
        listed.reply().unwrap()["result"]["tools"],
        captured["tools"]
    );

    let ok = client
        .call_tool(
            "create_payment",
            json!({"amount": 1200, "currency": "usd", "customer": "cus_1"}),
        )
        .await
        .unwrap();
    assert!(!ok.denied(), "{:?}", ok.replies);
    for (name, args) in [
        (
            "create_payment",
            json!({"amount": 90000, "currency": "usd", "customer": "cus_1"}),
        ),
        (
            "create_payment",
            json!({"amount": 10, "currency": "gbp", "customer": "cus_1"}),
        ),
        ("refund_payment", json!({"payment_id": "pay_000001"})),
        ("REFUND_PAYMENT ", json!({"payment_id": "pay_000001"})),
    ] {
        let ex = client.call_tool(name, args).await.unwrap();
        assert!(ex.denied(), "{name}: {:?}", ex.replies);
    }
    client.close().await;

    // The ledger: the one allowed payment arrived, valid, and ran.
    let calls: Vec<_> = ledger::read(&ledger_path)
        .unwrap()
        .into_iter()
        .filter(|r| r.is_call())
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].tool.as_deref(), Some("create_payment"));
    assert_eq!(calls[0].valid, Some(true));
    assert!(calls[0].executed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_against_the_captured_tools_pass_the_builtin_and_land_on_the_bare_mock() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = capture(&python, dir.path());
    let catalogue_dir = dir.path().join("catalogue");
    std::fs::create_dir_all(catalogue_dir.join("policies")).unwrap();
    std::fs::write(catalogue_dir.join("policies/payments.yaml"), POLICY).unwrap();
    for (rel, text) in SCENARIOS {
        let path = catalogue_dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let scenarios = gauntlet::scenario::load_catalogue(&catalogue_dir).unwrap();
    let cfg = RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            tools: Some(manifest),
            ..HarnessConfig::new(PathBuf::from(bin()))
        },
        target: TargetSpec::Builtin,
        control: true,
        seed: 11,
        replay_prefix: "gauntlet run".into(),
        jobs: 2,
    };
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(&cfg, &scenarios, &mut collector, &mut rx).await;
    let report = collector.report();
    assert_eq!(report.scenarios.len(), 3);
    for s in &report.scenarios {
        let target = s.target.as_ref().unwrap();
        assert_eq!(
            s.status,
            Status::Passed,
            "{}: {:?} {:?}",
            s.id,
            s.errors,
            target.findings
        );
        assert!(s.control.as_ref().unwrap().landed, "{}", s.id);
        let verdicts: Vec<&str> = target.calls.iter().map(|c| c.verdict.as_str()).collect();
        let want: &[&str] = match s.id.as_str() {
            "pay-cap" => &["allowed", "blocked", "blocked"],
            "pay-spend" => &["allowed", "allowed", "blocked", "blocked"],
            _ => &["blocked", "blocked"],
        };
        assert_eq!(verdicts, want, "{}", s.id);
    }
}

/// A client that checks structured results against the tools' output
/// schemas (fastmcp's, as an SDK-based enforcer would) accepts what the
/// mock answers for the captured tools; fastmcp's wrapped list result
/// (`{"result": [...]}` required) included.
const SDK_CHECK: &str = r#"
import asyncio, json, sys
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

async def main():
    transport = StdioTransport(command=sys.argv[1], args=sys.argv[2:])
    async with Client(transport) as client:
        out = {}
        for name, args in [
            ("list_payments", {"limit": 3}),
            ("create_payment", {"amount": 5, "currency": "usd", "customer": "cus_1"}),
        ]:
            result = await client.call_tool(name, args)
            out[name] = result.structured_content
        print(json.dumps(out))

asyncio.run(main())
"#;

#[test]
fn an_sdk_client_accepts_the_mocks_results_for_the_captured_tools() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = capture(&python, dir.path());
    let out = std::process::Command::new(&python)
        .args(["-c", SDK_CHECK, bin(), "mock", "--stdio", "--tools"])
        .arg(&manifest)
        .env("FASTMCP_LOG_LEVEL", "WARNING")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        json!({
            "list_payments": {"result": [], "tool": "list_payments", "arguments": {"limit": 3}},
            "create_payment": {"tool": "create_payment",
                               "arguments": {"amount": 5, "currency": "usd", "customer": "cus_1"}}
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_derived_from_the_policy_passes_the_builtin_over_the_captured_tools() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = capture(&python, dir.path());
    let policy = dir.path().join("payments.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let prepared = gauntlet::plan::cli::prepare(
        &policy,
        Some(&manifest),
        &gauntlet::plan::Options::default(),
    )
    .unwrap();
    let plan = &prepared.plan;
    let patterns: std::collections::BTreeSet<&str> =
        plan.items.iter().map(|p| p.pattern.as_str()).collect();
    for want in [
        "bulk",
        "race",
        "rotation",
        "poison-negative",
        "names",
        "framing",
        "boundary",
        "types",
        "paths",
        "allowed",
    ] {
        assert!(patterns.contains(want), "{want} missing from {patterns:?}");
    }
    let cfg = RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            tools: Some(manifest),
            ..HarnessConfig::new(PathBuf::from(bin()))
        },
        target: TargetSpec::Builtin,
        control: true,
        seed: 0,
        replay_prefix: "gauntlet run --policy".into(),
        jobs: 4,
    };
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(&cfg, &plan.scenarios(), &mut collector, &mut rx).await;
    let report = collector.report();
    assert_eq!(report.scenarios.len(), plan.items.len());
    for s in &report.scenarios {
        let findings = s.target.as_ref().map(|t| &t.findings);
        assert!(
            matches!(s.status, Status::Passed | Status::Skipped),
            "{}: {:?} {:?} {findings:?}",
            s.id,
            s.status,
            s.errors
        );
        if s.status == Status::Passed {
            assert!(s.control.as_ref().unwrap().landed, "{}", s.id);
        }
    }
}
