//! `gauntlet mock --tools`: any manifest, served with the same ledger,
//! leniency switches and special inputs as the bundled Aksjah tools.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_support;

use std::path::Path;

use gauntlet::mcp::Revision;
use mock_support::*;
use serde_json::{Value, json};

fn payment_tools() -> [Value; 2] {
    [
        json!({"name": "create_payment", "description": "Create a payment",
            "inputSchema": {"type": "object", "required": ["amount", "currency"],
                "properties": {"amount": {"type": "integer", "minimum": 1},
                               "currency": {"type": "string", "enum": ["usd", "eur"]},
                               "customer": {"type": "string"}}}}),
        json!({"name": "refund_payment",
            "inputSchema": {"type": "object", "properties": {"payment": {"type": "string"}}},
            "annotations": {"destructiveHint": true}}),
    ]
}

/// A folder of tool files, written so that file-name order differs from
/// the order they were written in.
fn tool_folder(dir: &Path) -> std::path::PathBuf {
    let folder = dir.join("tools");
    std::fs::create_dir(&folder).unwrap();
    let [create, refund] = payment_tools();
    std::fs::write(folder.join("2-refund.json"), refund.to_string()).unwrap();
    std::fs::write(folder.join("1-create.json"), create.to_string()).unwrap();
    folder
}

#[tokio::test]
async fn a_folder_of_tool_files_is_served_with_the_ledger_and_the_special_inputs() {
    let s = Scratch::new();
    let folder = tool_folder(s.dir.path());
    let client = stdio_mock(
        &s.ledger(),
        &["--tools", &folder.display().to_string()],
        &[],
    )
    .await;
    client
        .initialize(Revision::V2025_11_25)
        .await
        .or_stderr(&client);

    let listed = client.request("tools/list", None).await.or_stderr(&client);
    assert_eq!(
        listed.reply().unwrap()["result"],
        json!({"tools": payment_tools()})
    );

    // Lenient names reach the foreign tool too, and it echoes.
    let ok = client
        .call_tool(" Create_Payment ", json!({"amount": 5, "currency": "usd"}))
        .await
        .or_stderr(&client);
    assert_eq!(
        ok.reply().unwrap()["result"]["structuredContent"],
        json!({"tool": "create_payment", "arguments": {"amount": 5, "currency": "usd"}})
    );
    // Schema checks apply: not executed.
    let bad = client
        .call_tool("create_payment", json!({"amount": 0, "currency": "gbp"}))
        .await
        .or_stderr(&client);
    assert_eq!(bad.reply().unwrap()["result"]["isError"], true);
    // The partial failure works on any tool through any string argument.
    let partial = client
        .call_tool(
            "create_payment",
            json!({"amount": 7, "currency": "eur", "customer": "gauntlet:write-then-error"}),
        )
        .await
        .or_stderr(&client);
    assert_eq!(partial.reply().unwrap()["error"]["code"], -32603);

    let calls = calls(&s.ledger());
    let seen: Vec<(Option<&str>, Option<bool>, bool)> = calls
        .iter()
        .map(|r| (r.tool.as_deref(), r.valid, r.executed))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("create_payment"), Some(true), true),
            (Some("create_payment"), Some(false), false),
            (Some("create_payment"), Some(true), true),
        ]
    );
    assert_eq!(calls[0].raw_name.as_deref(), Some(" Create_Payment "));
    client.close().await;
}

#[tokio::test]
async fn strict_mode_and_the_crash_input_hold_for_foreign_tools() {
    let s = Scratch::new();
    let folder = tool_folder(s.dir.path());
    let path = folder.display().to_string();
    let client = stdio_mock(&s.ledger(), &["--tools", &path, "--strict"], &[]).await;
    client
        .initialize(Revision::V2025_11_25)
        .await
        .or_stderr(&client);
    let mangled = client
        .call_tool("Create_Payment", json!({"amount": 5, "currency": "usd"}))
        .await
        .or_stderr(&client);
    assert_eq!(mangled.reply().unwrap()["error"]["code"], -32602);
    let crash = client
        .call_tool("refund_payment", json!({"payment": "gauntlet:crash"}))
        .await;
    match crash {
        Err(gauntlet::mcp::ClientError::Closed(Some(status))) => {
            assert_eq!(status, "exit status: 70")
        }
        other => panic!("the mock must die before it answers: {other:?}"),
    }
    let record = wait_record(&s.ledger(), |r| r.tool.as_deref() == Some("refund_payment")).await;
    assert_eq!(record.valid, Some(true));
}

/// fastmcp wraps a list result in `{"result": [...]}` and says so in the
/// output schema; SDK clients reject structured content that does not
/// satisfy it, so the echo is fitted to it.
#[tokio::test]
async fn structured_results_satisfy_the_declared_output_schema() {
    let s = Scratch::new();
    let manifest = s.dir.path().join("m.json");
    let tools = json!([{"name": "list_payments", "inputSchema": {"type": "object"},
        "outputSchema": {"type": "object", "required": ["result"],
            "properties": {"result": {"type": "array", "items": {"type": "object"}}}}}]);
    std::fs::write(&manifest, tools.to_string()).unwrap();
    let path = manifest.display().to_string();
    let client = stdio_mock(&s.ledger(), &["--tools", &path], &[]).await;
    client
        .initialize(Revision::V2025_11_25)
        .await
        .or_stderr(&client);
    let ex = client
        .call_tool("list_payments", json!({"limit": 3}))
        .await
        .or_stderr(&client);
    let result = &ex.reply().unwrap()["result"];
    assert_eq!(
        result["structuredContent"],
        json!({"result": [], "tool": "list_payments", "arguments": {"limit": 3}})
    );
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    client.close().await;
}

#[test]
fn a_bad_manifest_stops_the_mock_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("stripe.json");
    let [create, _] = payment_tools();
    let broken = json!({"name": "refund_payment", "inputSchema": {"type": "object"},
                        "annotations": {"destructiveHint": "very"}});
    std::fs::write(&manifest, json!({"tools": [create, broken]}).to_string()).unwrap();
    let out = std::process::Command::new(bin())
        .args(["mock", "--stdio", "--tools"])
        .arg(&manifest)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "gauntlet mock: `{}` at `/tools/1/annotations/destructiveHint` (tool `refund_payment`): \
         not a tool entry: invalid type: string \"very\", expected a boolean",
        manifest.display()
    );
    assert_eq!(stderr.trim(), want);
}

#[test]
fn the_help_documents_tools_and_hides_the_old_switch() {
    let out = std::process::Command::new(bin())
        .args(["mock", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--tools <MANIFEST>"), "{help}");
    assert!(!help.contains("--manifest"), "{help}");
}
