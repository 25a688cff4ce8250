//! Attacks across replicas: `gauntlet run --replicas 3` against the
//! built-in enforcer, with counters in each replica's memory and in one
//! Redis, checked against the mock's ledger; and an enforcer that loses its
//! Redis mid-run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod redis_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::mcp::{Client, Revision, StdioOptions};
use gauntlet::mock::ledger;
use gauntlet::report::{Collector, RunReport};
use gauntlet::run::{RunConfig, Status, run};
use gauntlet::target::{HarnessConfig, TargetSpec, Transport};
use redis_support::RedisServer;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_gauntlet");
const POST: &str = "WizCommerce Open API_PostCustomers";
const SCENARIO: &str = "rl-replica-round-robin";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config(transport: Transport, redis: Option<String>, keep: &Path) -> RunConfig {
    RunConfig {
        harness: HarnessConfig {
            timeout: Duration::from_secs(10),
            transport,
            keep_workdirs: Some(keep.to_path_buf()),
            replicas: 3,
            redis,
            ..HarnessConfig::new(PathBuf::from(BIN))
        },
        target: TargetSpec::Builtin,
        control: false,
        seed: 7,
        replay_prefix: "gauntlet run".into(),
        jobs: 1,
    }
}

async fn run_scenario(cfg: &RunConfig) -> RunReport {
    let all = gauntlet::scenario::load_catalogue(&root().join("attacks")).unwrap();
    let picked = gauntlet::scenario::select(&all, &[SCENARIO.to_owned()]).unwrap();
    assert_eq!(picked.len(), 1);
    let mut collector = Collector::default();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    run(cfg, &picked, &mut collector, &mut rx).await;
    collector.report()
}

/// Creates the mock executed, read from the kept ledger.
fn executed_posts(keep: &Path) -> usize {
    let path = keep.join(format!("{SCENARIO}-target")).join("ledger.jsonl");
    ledger::read(&path)
        .unwrap()
        .iter()
        .filter(|r| r.is_call_to(POST) && r.executed)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_in_memory_replicas_admit_three_times_the_limit_and_that_is_a_finding() {
    let keep = tempfile::tempdir().unwrap();
    let report = run_scenario(&config(Transport::Stdio, None, keep.path())).await;
    let s = &report.scenarios[0];
    assert_eq!(s.status, Status::Failed, "{:?}", s.errors);
    assert_eq!(executed_posts(keep.path()), 90, "each replica admitted 30");
    let judged = s.target.as_ref().unwrap();
    let leaked = judged
        .calls
        .iter()
        .filter(|c| c.verdict.as_str() == "leaked")
        .count();
    assert_eq!(leaked, 60);
}

async fn on_redis(transport: Transport) {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let keep = tempfile::tempdir().unwrap();
    let base = format!("redis://127.0.0.1:{}", server.port);
    let report = run_scenario(&config(transport, Some(base), keep.path())).await;
    let s = &report.scenarios[0];
    assert_eq!(s.status, Status::Passed, "{:?} {:?}", s.errors, s.target);
    let posts = executed_posts(keep.path());
    assert!(posts <= 30, "{posts} arrived across three replicas");
    assert_eq!(
        posts, 30,
        "sequential sends under the limit are all admitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_stdio_replicas_on_redis_admit_at_most_the_limit() {
    on_redis(Transport::Stdio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_http_replicas_on_redis_admit_at_most_the_limit() {
    on_redis(Transport::Http).await;
}

fn customer(n: usize) -> serde_json::Value {
    json!({"company_name": format!("Acme {n}"), "first_name": "Ann", "email": format!("a{n}@acme.test")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_mid_run_makes_the_enforcer_deny_and_leaks_nothing() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let policy = root().join("attacks/policies/seed.json");
    let ledger_path = dir.path().join("ledger.jsonl");
    let args = [
        "enforce",
        "--policy",
        policy.to_str().unwrap(),
        "--state",
        &server.url(4),
        "--redis-timeout",
        "100",
        "--",
        BIN,
        "mock",
        "--stdio",
        "--ledger",
        ledger_path.to_str().unwrap(),
    ];
    let client = Client::spawn(
        StdioOptions {
            program: BIN.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("GAUNTLET_IDENTITY".into(), "alice".into())],
            cwd: None,
        },
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    client.initialize(Revision::V2025_11_25).await.unwrap();
    for n in 0..5 {
        let ex = client.call_tool(POST, customer(n)).await.unwrap();
        let reply = ex.reply().unwrap();
        assert!(reply.get("error").is_none(), "{reply}");
    }
    server.kill();
    for n in 5..15 {
        let ex = client.call_tool(POST, customer(n)).await.unwrap();
        let reply = ex.reply().unwrap();
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("counter store is unavailable"),
            "call {n} was not refused for the store: {reply}"
        );
    }
    client.close().await;
    let arrived = ledger::read(&ledger_path)
        .unwrap()
        .iter()
        .filter(|r| r.is_call_to(POST))
        .count();
    assert_eq!(arrived, 5, "nothing reached the mock once Redis was gone");
}
