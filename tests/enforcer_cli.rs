//! `gauntlet enforce` as a process, in front of `gauntlet mock` processes;
//! arrivals are read from the mocks' ledger files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod enforcer_support;

use std::path::Path;
use std::process::Stdio;

use enforcer_support::*;
use gauntlet::enforcer::{AuditRecord, DENIED};
use gauntlet::mcp::{Client, HttpOptions, Revision, StdioOptions};
use gauntlet::mock::ledger;
use tokio::io::AsyncBufReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_gauntlet");

fn calls_in(ledger_path: &Path) -> usize {
    ledger::read(ledger_path)
        .unwrap()
        .iter()
        .filter(|r| r.is_call_to(POST) && r.executed)
        .count()
}

fn audit_lines(path: &Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn stdio_enforcer(dir: &Path, n: usize, state: &Path) -> Client {
    let path = |name: String| dir.join(name).display().to_string();
    let args = vec![
        "enforce".to_owned(),
        "--policy".into(),
        path("seed.json".into()),
        "--state".into(),
        state.display().to_string(),
        "--audit".into(),
        path(format!("audit{n}.jsonl")),
        "--".into(),
        BIN.into(),
        "mock".into(),
        "--stdio".into(),
        "--ledger".into(),
        path(format!("ledger{n}.jsonl")),
    ];
    let opts = StdioOptions {
        program: BIN.into(),
        args,
        env: vec![("GAUNTLET_IDENTITY".into(), "alice".into())],
        cwd: None,
    };
    let c = Client::spawn(opts, HANG).await.unwrap();
    c.initialize(Revision::V2025_11_25).await.unwrap();
    c
}

#[tokio::test]
async fn two_stdio_processes_share_grant_counters_through_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.json"), SEED).unwrap();
    let state = dir.path().join("state.json");
    let a = stdio_enforcer(dir.path(), 1, &state).await;
    let b = stdio_enforcer(dir.path(), 2, &state).await;
    let mut denied = 0;
    for n in 0..20 {
        for c in [&a, &b] {
            let ex = c.call_tool(POST, customer(n)).await.unwrap();
            if error_code(ex.reply().unwrap()) == Some(DENIED) {
                denied += 1;
            }
        }
    }
    a.close().await;
    b.close().await;
    assert_eq!(denied, 10);
    let arrived =
        calls_in(&dir.path().join("ledger1.jsonl")) + calls_in(&dir.path().join("ledger2.jsonl"));
    assert_eq!(arrived, 30);
    let audit: Vec<AuditRecord> = [1, 2]
        .iter()
        .flat_map(|n| audit_lines(&dir.path().join(format!("audit{n}.jsonl"))))
        .collect();
    assert_eq!(audit.len(), 40);
    assert!(audit.iter().all(|l| l.grant == "alice"));
    // Two processes, two sessions, one grant.
    let sessions: std::collections::HashSet<&str> =
        audit.iter().map(|l| l.session.as_str()).collect();
    assert_eq!(sessions.len(), 2);
}

#[tokio::test]
async fn a_malformed_policy_stops_it_before_upstream_starts() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.json");
    std::fs::write(&policy, r#"{"version":"1","default":"deny","tools":{"T":{"limits":[{"counter":"c","window":"fortnight","max":-1,"scope":"grant"}]}}}"#).unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let out = tokio::process::Command::new(BIN)
        .args([
            "enforce",
            "--policy",
            policy.to_str().unwrap(),
            "--",
            BIN,
            "mock",
            "--stdio",
            "--ledger",
            ledger.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json:1:"), "{err}");
    assert!(err.contains("fortnight"), "{err}");
    assert!(!ledger.exists(), "the upstream was started");
}

#[tokio::test]
async fn the_http_form_prints_its_url_and_enforces_the_seed() {
    http_form(&[]).await;
}

#[tokio::test]
async fn the_http_form_on_one_thread_enforces_the_same() {
    http_form(&["--threads", "1"]).await;
}

#[test]
fn zero_threads_is_refused() {
    let out = std::process::Command::new(BIN)
        .args(["enforce", "--policy", "p.json", "--threads", "0"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream-url",
            "http://127.0.0.1:9/mcp",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--threads"), "{err}");
}

async fn http_form(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, SEED).unwrap();
    let ledger_path = dir.path().join("ledger.jsonl");
    let audit_path = dir.path().join("audit.jsonl");
    let mut mock = tokio::process::Command::new(BIN)
        .args([
            "mock",
            "--http",
            "127.0.0.1:0",
            "--ledger",
            ledger_path.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mock_url = first_line(&mut mock).await;
    let mut proxy = tokio::process::Command::new(BIN)
        .args([
            "enforce",
            "--policy",
            seed.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--upstream-url",
            &mock_url,
            "--audit",
            audit_path.to_str().unwrap(),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = first_line(&mut proxy).await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    let c = Client::connect(
        HttpOptions {
            url,
            token: Some("alice".into()),
            headers: Vec::new(),
        },
        HANG,
    )
    .unwrap();
    c.initialize(Revision::V2025_11_25).await.unwrap();
    for n in 0..40 {
        c.call_tool(POST, customer(n)).await.unwrap();
    }
    c.close().await;
    assert_eq!(calls_in(&ledger_path), 30);
    // SIGTERM lets the proxy write out its audit log before it exits.
    let pid = proxy.id().unwrap().to_string();
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await;
    let status = tokio::time::timeout(HANG, proxy.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(audit_lines(&audit_path).len(), 40);
    mock.start_kill().unwrap();
}

async fn first_line(child: &mut tokio::process::Child) -> String {
    let out = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(out).lines();
    tokio::time::timeout(HANG, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}
