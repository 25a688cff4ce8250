//! Smoke tests of the flawed-enforcer fixtures (`tests/fixtures/flawed/`):
//! the proxy runs with no flaw and with one flaw in front of the real
//! `gauntlet mock --stdio`, and the mock's ledger says what got through.
//!
//! They need `python3` (stdlib only) on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use gauntlet::mock::ledger::{self, LedgerIndex, LedgerRecord};
use serde_json::{Value, json};

const POST: &str = "WizCommerce Open API_PostCustomers";
const DELETE: &str = "WizCommerce Open API_DeleteCustomer";
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The seed policy: PostCustomers 30 a minute per grant, with conditions.
fn seed_policy() -> Value {
    json!({
        "version": "1",
        "default": "deny",
        "hide": [DELETE],
        "tools": {
            POST: {
                "limits": [{"counter": "post_customers", "window": "minute", "max": 30, "scope": "grant"}],
                "require": [{"path": "args.email", "op": "exists", "value": true}],
                "deny_if": [{"path": "args.credit_limit", "op": "gt", "value": 10000}]
            },
            "WizCommerce Open API_GetCustomers": {}
        }
    })
}

fn valid_post(i: usize) -> Value {
    json!({
        "company_name": format!("Fjord Supply {i}"),
        "first_name": "Ingrid",
        "email": format!("buyer{i}@fjordsupply.example"),
        "credit_limit": 5000
    })
}

/// One enforcer process (one session) with the mock behind it.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Session {
    fn start(dir: &Path, flaw: Option<&str>, identity: &str) -> Session {
        let proxy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flawed/proxy.py");
        let mut cmd = Command::new("python3");
        cmd.arg(proxy)
            .arg("--policy")
            .arg(dir.join("policy.json"))
            .arg("--state")
            .arg(dir.join("state.json"));
        if let Some(flaw) = flaw {
            cmd.args(["--flaw", flaw]);
        }
        cmd.arg("--")
            .arg(env!("CARGO_BIN_EXE_gauntlet"))
            .args(["mock", "--stdio", "--ledger"])
            .arg(dir.join("ledger.jsonl"))
            .env("GAUNTLET_IDENTITY", identity)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("python3 runs the fixture proxy");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        // A reader thread, so that a fixture that hangs fails the test
        // after a timeout instead of blocking it forever.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut session = Session {
            child,
            stdin,
            lines,
            next_id: 0,
        };
        let init = session.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "flawed-fixtures-test", "version": "0"}}),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        session
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let line = self
            .lines
            .recv_timeout(REPLY_TIMEOUT)
            .unwrap_or_else(|_| panic!("no reply to `{method}` id {id}"));
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["id"], json!(id), "reply out of order: {reply}");
        reply
    }

    fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// Closes stdin and waits for the proxy (and so the mock) to exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "proxy exited with {status}");
    }
}

fn is_success(reply: &Value) -> bool {
    reply
        .get("result")
        .is_some_and(|r| r.get("isError") != Some(&json!(true)))
}

fn scenario_dir(policy: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
    dir
}

fn ledger_of(dir: &Path) -> Vec<LedgerRecord> {
    ledger::read(&PathBuf::from(dir).join("ledger.jsonl")).unwrap()
}

/// Sends `n` valid PostCustomers calls one after another in one session;
/// returns how many the client saw succeed.
fn post_burst(session: &mut Session, n: usize) -> usize {
    (0..n)
        .filter(|i| is_success(&session.call(POST, valid_post(*i))))
        .count()
}

fn seed_run(flaw: Option<&str>) -> (usize, usize) {
    let dir = scenario_dir(&seed_policy());
    let mut session = Session::start(dir.path(), flaw, "alice");
    let succeeded = post_burst(&mut session, 35);
    session.finish();
    let records = ledger_of(dir.path());
    let index = LedgerIndex::new(&records);
    let arrived = index.calls_to(POST).count();
    assert_eq!(
        index.executed(POST),
        arrived,
        "every arrived call was valid"
    );
    (succeeded, arrived)
}

#[test]
fn seed_limit_admits_thirty_and_off_by_one_admits_thirty_one() {
    assert_eq!(seed_run(None), (30, 30));
    assert_eq!(seed_run(Some("off-by-one")), (31, 31));
}

fn two_sessions(flaw: Option<&str>) -> usize {
    let dir = scenario_dir(&seed_policy());
    for _ in 0..2 {
        let mut session = Session::start(dir.path(), flaw, "alice");
        post_burst(&mut session, 20);
        session.finish();
    }
    let records = ledger_of(dir.path());
    let alice = records
        .iter()
        .filter(|r| r.is_call_to(POST) && r.identity.as_deref() == Some("alice"))
        .count();
    assert_eq!(alice, LedgerIndex::new(&records).calls_to(POST).count());
    alice
}

#[test]
fn grant_scope_holds_across_sessions_but_not_with_memory_counters() {
    assert_eq!(two_sessions(None), 30);
    assert_eq!(two_sessions(Some("memory-counters")), 40);
}

/// Calls the hidden tool by its own name and by two variants the mock
/// resolves leniently; returns the raw names that reached the mock.
///
/// The policy allows by default: under `default: deny` a variant the
/// enforcer fails to recognise is unlisted, and so denied anyway.
fn hidden_variants(flaw: Option<&str>) -> Vec<String> {
    let mut policy = seed_policy();
    policy["default"] = json!("allow");
    let dir = scenario_dir(&policy);
    let mut session = Session::start(dir.path(), flaw, "alice");
    let listed = session.request("tools/list", json!({}));
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&POST),
        "tools/list lost PostCustomers: {names:?}"
    );
    // Upstream lists the exact name, which every variant of the proxy hides.
    assert!(
        !names.contains(&DELETE),
        "the hidden tool is listed: {names:?}"
    );
    let variants = [
        DELETE.to_owned(),
        DELETE.to_lowercase(),
        format!("  {}\u{200B}", DELETE.replace('A', "\u{FF21}")),
    ];
    for name in &variants {
        session.call(name, json!({"customer_id": "WC_000001"}));
    }
    session.finish();
    ledger_of(dir.path())
        .into_iter()
        .filter(|r| r.is_call_to(DELETE))
        .filter_map(|r| r.raw_name)
        .collect()
}

#[test]
fn hidden_tool_variants_are_denied_unless_names_match_exactly() {
    assert!(hidden_variants(None).is_empty());
    let leaked = hidden_variants(Some("exact-name"));
    assert_eq!(leaked.len(), 2, "both variants reach the mock: {leaked:?}");
    assert!(
        !leaked.iter().any(|n| n == DELETE),
        "the exact name is still denied"
    );
}
