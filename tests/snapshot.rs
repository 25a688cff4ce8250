//! `gauntlet snapshot` against the real mock: the bundled manifest comes
//! back exactly, over stdio and HTTP, across pages, and no tool is called.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_support;

use std::path::Path;
use std::process::Output;

use gauntlet::mock::catalogue::Catalogue;
use gauntlet::mock::ledger;
use mock_support::*;
use serde_json::{Value, json};

fn snapshot(args: &[&str]) -> Output {
    std::process::Command::new(bin())
        .arg("snapshot")
        .args(args)
        .output()
        .unwrap()
}

fn captured(out: &Output) -> (Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn bundled_text() -> String {
    serde_json::to_string_pretty(&Catalogue::bundled().unwrap().manifest()).unwrap() + "\n"
}

fn stdio_mock_line(ledger: &Path, extra: &[&str]) -> String {
    let ledger = ledger.display().to_string();
    let mut words = vec![bin(), "mock", "--stdio", "--ledger", &ledger];
    words.extend(extra);
    shlex::try_join(words).unwrap()
}

/// Only the handshake and listing reached the mock: nothing was called.
fn methods(ledger: &Path) -> Vec<String> {
    ledger::read(ledger)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.method)
        .collect()
}

#[test]
fn a_stdio_mock_gives_back_the_bundled_manifest_exactly_across_pages() {
    let s = Scratch::new();
    let line = stdio_mock_line(&s.ledger(), &["--page-size", "2"]);
    let out = snapshot(&["--upstream", &line]);
    let (manifest, text) = captured(&out);
    assert_eq!(manifest, Catalogue::bundled().unwrap().manifest());
    assert_eq!(text, bundled_text());
    assert_eq!(
        methods(&s.ledger()),
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/list",
            "tools/list"
        ]
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "5 tool(s)\n");
}

#[tokio::test]
async fn an_http_mock_gives_back_the_bundled_manifest_exactly() {
    let s = Scratch::new();
    let mock = HttpMock::start(&s.ledger(), &["--page-size", "3"]).await;
    let url = mock.url.clone();
    let out = tokio::task::spawn_blocking(move || snapshot(&["--upstream-url", &url]))
        .await
        .unwrap();
    let (manifest, text) = captured(&out);
    assert_eq!(manifest, Catalogue::bundled().unwrap().manifest());
    assert_eq!(text, bundled_text());
    let listed = methods(&s.ledger());
    assert!(!listed.iter().any(|m| m == "tools/call"), "{listed:?}");
    assert_eq!(listed.iter().filter(|m| *m == "tools/list").count(), 2);
}

/// Captured, saved, served with `--tools`, captured again: the same.
#[test]
fn a_saved_snapshot_is_served_as_it_was_captured() {
    let s = Scratch::new();
    let manifest = s.dir.path().join("manifest.json");
    let foreign = json!({"tools": [
        {"name": "list_payments", "title": "List payments",
         "inputSchema": {"type": "object", "properties": {"limit": {"type": "integer"}}},
         "outputSchema": {"type": "object"},
         "annotations": {"readOnlyHint": true}, "_meta": {"vendor/x": 1}},
        {"name": "create_payment", "inputSchema": {"type": "object"}}]});
    std::fs::write(&manifest, foreign.to_string()).unwrap();
    let line = stdio_mock_line(&s.ledger(), &["--tools", &manifest.display().to_string()]);
    let again = s.dir.path().join("again.json");
    let out = snapshot(&[
        "--upstream",
        &line,
        "--output",
        &again.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&again).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), foreign);
}

#[test]
fn a_policy_gives_a_synthesised_manifest_and_says_so() {
    let s = Scratch::new();
    let policy = s.dir.path().join("p.json");
    std::fs::write(
        &policy,
        r#"{"version": "1", "default": "deny", "tools": {"create_payment": {
            "deny_if": [{"path": "args.amount", "op": "gt", "value": 100}]}}}"#,
    )
    .unwrap();
    let out = snapshot(&["--policy", &policy.display().to_string()]);
    let (manifest, _) = captured(&out);
    let names: Vec<&str> = manifest["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["create_payment", "gauntlet_unlisted"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "note: no manifest given: synthesised 1 tool from the policy's names in its tool rules\n"
        ),
        "{stderr}"
    );
    assert!(stderr.ends_with("2 tool(s)\n"), "{stderr}");
}

#[test]
fn unreachable_or_broken_servers_are_harness_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let out = snapshot(&["--upstream-url", &url, "--timeout", "5000"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("gauntlet snapshot: talking to `{url}`: ")),
        "{stderr}"
    );

    let out = snapshot(&["--upstream", "sh -c 'echo starting >&2; exit 3'"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("talking to `sh -c"), "{stderr}");

    let out = snapshot(&["--upstream-url", &url, "--header", "no colon"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gauntlet snapshot: header `no colon` is not `Name: value`\n"
    );
}
