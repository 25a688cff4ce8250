//! The real `gauntlet mock --stdio`, judged by its ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_support;

use std::process::Stdio;
use std::time::Duration;

use gauntlet::mcp::{Expect, Revision, SendOptions};
use gauntlet::mock::ledger::{self, Outcome};
use mock_support::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Waits for the reply a frame without a usable id gets (id null); it
/// returns as soon as that reply is in.
fn null_id_reply() -> Expect {
    Expect::Nothing(WAIT)
}

#[tokio::test]
async fn every_revision_handshakes_or_goes_without() {
    for rev in Revision::ALL {
        let s = Scratch::new();
        let client = stdio_mock(&s.ledger(), &[], &[]).await;
        client.initialize(rev).await.or_stderr(&client);
        let listed = client.request("tools/list", None).await.or_stderr(&client);
        assert_eq!(
            listed.reply().unwrap()["result"]["tools"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );
        let ex = client
            .call_tool(POST, customer("a@x.test"))
            .await
            .or_stderr(&client);
        assert_eq!(ex.reply().unwrap()["result"]["isError"], false, "{rev}");

        let records = ledger::read(&s.ledger()).unwrap();
        let methods: Vec<&str> = records.iter().filter_map(|r| r.method.as_deref()).collect();
        if rev.is_stateless() {
            assert_eq!(methods, ["tools/list", "tools/call"], "{rev}");
        } else {
            assert_eq!(
                methods,
                [
                    "initialize",
                    "notifications/initialized",
                    "tools/list",
                    "tools/call"
                ],
                "{rev}"
            );
        }
        let call = records.last().unwrap();
        assert_eq!(call.revision.as_deref(), Some(rev.as_str()));
        assert!(call.executed && call.valid == Some(true));
        assert_eq!(call.transport, ledger::Transport::Stdio);
        client.close().await;
    }
}

#[tokio::test]
async fn tools_list_snapshot() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &[], &[]).await;
    client
        .initialize(Revision::V2025_11_25)
        .await
        .or_stderr(&client);
    let ex = client.request("tools/list", None).await.or_stderr(&client);
    insta::assert_json_snapshot!("tools_list", ex.reply().unwrap()["result"]);
    client.close().await;
}

#[tokio::test]
async fn the_ledger_is_valid_jsonl_and_readable_while_the_mock_runs() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &["--identity", "alice"], &[]).await;
    client
        .initialize(Revision::V2025_06_18)
        .await
        .or_stderr(&client);
    for i in 0..3 {
        client
            .call_tool(POST, customer(&format!("u{i}@x.test")))
            .await
            .or_stderr(&client);
    }
    // Still running: the tail and a full read both see every call, concluded.
    let mut tail = ledger::Tail::new(s.ledger());
    tail.poll().unwrap();
    let seen: Vec<_> = tail.records().iter().filter(|r| r.is_call()).collect();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|r| r.outcome == Some(Outcome::Ok)));
    assert_eq!(seen[2].touched.as_deref(), Some("WC_000003"));
    assert_eq!(seen[0].identity.as_deref(), Some("alice"));
    let text = std::fs::read_to_string(s.ledger()).unwrap();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["kind"] == "arrival" || v["kind"] == "outcome", "{line}");
    }
    assert_eq!(ledger::read(&s.ledger()).unwrap(), tail.records());
    assert!(client.exit_status().is_none());
    client.close().await;
}

#[tokio::test]
async fn identity_comes_from_the_environment_too() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &[], &[("GAUNTLET_IDENTITY", "grant-7")]).await;
    client.request("ping", None).await.or_stderr(&client);
    let rec = wait_record(&s.ledger(), |r| r.method.as_deref() == Some("ping")).await;
    assert_eq!(rec.identity.as_deref(), Some("grant-7"));
    client.close().await;
}

#[tokio::test]
async fn batches_notifications_and_duplicate_keys_leniently() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &[], &[]).await;
    client
        .initialize(Revision::V2025_11_25)
        .await
        .or_stderr(&client);
    let batch = json!([
        {"jsonrpc": "2.0", "id": 10, "method": "tools/call",
         "params": {"name": POST, "arguments": customer("b1@x.test")}},
        {"jsonrpc": "2.0", "method": "tools/call",
         "params": {"name": POST, "arguments": customer("b2@x.test")}},
        {"jsonrpc": "2.0", "id": 11, "method": "tools/call",
         "params": {"name": GET, "arguments": {}}},
    ]);
    let bytes = serde_json::to_vec(&batch).unwrap();
    let ex = client
        .send_raw(
            bytes.clone(),
            Expect::for_bytes(&bytes, Duration::ZERO),
            &SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ex.replies.len(), 2);
    let dup = format!(
        r#"{{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{{"name":"{GET}","name":"{POST}","arguments":{}}}}}"#,
        customer("dup@x.test")
    );
    client
        .send_raw(
            dup.into_bytes(),
            Expect::Ids(vec![json!(12)]),
            &SendOptions::default(),
        )
        .await
        .unwrap();

    let calls = calls(&s.ledger());
    assert_eq!(calls.len(), 4);
    assert!(calls[..3].iter().all(|r| r.frame == calls[0].frame));
    assert!(
        calls[1].notification && calls[1].executed,
        "the call notification ran"
    );
    assert_eq!(calls[2].touched, None);
    assert_eq!(calls[3].tool.as_deref(), Some(POST), "last duplicate wins");
    assert_eq!(calls[3].key_issues.len(), 1);
    assert_eq!(calls[3].arg_str("email"), Some("dup@x.test"));
    client.close().await;
}

#[tokio::test]
async fn strict_refuses_variants_batches_and_duplicates() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &["--strict"], &[]).await;
    client
        .initialize(Revision::V2025_11_25)
        .await
        .or_stderr(&client);
    let ex = client
        .call_tool("wizcommerce open api_postcustomers", customer("a@x.test"))
        .await
        .or_stderr(&client);
    assert_eq!(ex.reply().unwrap()["error"]["code"], -32602);
    let batch = format!(
        r#"[{{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{{"name":"{POST}","arguments":{}}}}}]"#,
        customer("b@x.test")
    );
    let ex = client
        .send_raw(batch.into_bytes(), null_id_reply(), &SendOptions::default())
        .await
        .unwrap();
    assert_eq!(ex.reply().unwrap()["error"]["code"], -32600);
    let note = json!({"jsonrpc": "2.0", "method": "tools/call",
                      "params": {"name": POST, "arguments": customer("n@x.test")}});
    client
        .notify("tools/call", note.get("params").cloned())
        .await
        .unwrap();
    let bad = json!({"company_name": "Acme", "first_name": "Ada", "email": "nope"});
    let ex = client.call_tool(POST, bad).await.or_stderr(&client);
    assert_eq!(
        ex.reply().unwrap()["result"]["isError"],
        true,
        "2025-11-25: isError"
    );

    let records = settled(&s.ledger(), 6).await;
    let calls: Vec<_> = records.iter().filter(|r| r.is_call()).collect();
    assert_eq!(calls.len(), 4);
    assert!(calls.iter().all(|r| !r.executed), "nothing ran: {calls:#?}");
    assert_eq!(calls[0].tool, None);
    assert_eq!(calls[1].batch_index, Some(0));
    assert!(calls[2].notification);
    assert_eq!(calls[3].valid, Some(false));
    client.close().await;
}

#[tokio::test]
async fn write_then_error_leaves_the_customer_behind() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &[], &[]).await;
    let mut args = customer("w@x.test");
    args["reference_id"] = json!("gauntlet:write-then-error");
    let ex = client.call_tool(POST, args).await.or_stderr(&client);
    assert_eq!(ex.reply().unwrap()["error"]["code"], -32603);
    let listed = client
        .call_tool(GET, json!({"search": "gauntlet:write"}))
        .await
        .or_stderr(&client);
    assert_eq!(
        listed.reply().unwrap()["result"]["structuredContent"]["total"],
        1
    );
    let calls = calls(&s.ledger());
    assert!(calls[0].executed);
    assert_eq!(calls[0].touched.as_deref(), Some("WC_000001"));
    assert_eq!(
        calls[0].outcome.as_ref().and_then(Outcome::rpc_code),
        Some(-32603)
    );
    client.close().await;
}

#[tokio::test]
async fn oversized_and_non_utf8_frames_are_recorded_and_the_server_goes_on() {
    let s = Scratch::new();
    let client = stdio_mock(&s.ledger(), &["--max-frame", "2048"], &[]).await;
    let mut big = customer("big@x.test");
    big["display_name"] = json!("x".repeat(5000));
    let frame = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": POST, "arguments": big}});
    let bytes = serde_json::to_vec(&frame).unwrap();
    let ex = client
        .send_raw(bytes.clone(), null_id_reply(), &SendOptions::default())
        .await
        .unwrap();
    assert_eq!(ex.reply().unwrap()["error"]["code"], -32700);
    let ex = client
        .send_raw(
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"p\xffng\"}".to_vec(),
            null_id_reply(),
            &SendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ex.reply().unwrap()["error"]["code"], -32700);
    let ok = client.request("ping", None).await.or_stderr(&client);
    assert_eq!(ok.reply().unwrap()["result"], json!({}));

    let records = ledger::read(&s.ledger()).unwrap();
    assert_eq!(records.len(), 3);
    let (over, utf) = (&records[0], &records[1]);
    assert!(
        over.error
            .as_deref()
            .unwrap()
            .contains("exceeds the limit of 2048"),
        "{over:?}"
    );
    assert_eq!(over.raw_len, bytes.len());
    assert!(over.raw_truncated() && over.raw_sha256.is_none());
    assert!(bytes.starts_with(&over.raw_bytes()));
    assert!(utf.error.as_deref().unwrap().contains("utf-8"));
    assert_eq!(
        utf.raw_bytes(),
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"p\xffng\"}"
    );
    assert!(utf.raw_base64.is_some());
    assert!(records[..2].iter().all(|r| !r.executed));
    client.close().await;
}

#[tokio::test]
async fn pipelined_calls_flow_past_a_stalled_one() {
    let s = Scratch::new();
    let mut child = tokio::process::Command::new(bin())
        .args([
            "mock",
            "--stdio",
            "--stall-every",
            "2",
            "--stall-ms",
            "500",
            "--ledger",
        ])
        .arg(s.ledger())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut frames = String::new();
    for id in 1..=3 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": GET, "arguments": {}}});
        frames.push_str(&format!("{call}\n"));
    }
    stdin.write_all(frames.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut order = Vec::new();
    for _ in 0..3 {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        order.push(v["id"].as_i64().unwrap());
    }
    assert_eq!(order, [1, 3, 2], "the second call stalls alone");
    drop(stdin);
    assert!(child.wait().await.unwrap().success());
    assert_eq!(calls(&s.ledger()).len(), 3);
}

#[tokio::test]
async fn a_user_manifest_replaces_the_bundled_tools() {
    let s = Scratch::new();
    let manifest = s.dir.path().join("tools.json");
    let tools = json!({"tools": [{"name": "Other_Tool", "description": "x",
        "inputSchema": {"type": "object", "required": ["q"],
                        "properties": {"q": {"type": "string"}}}}]});
    std::fs::write(&manifest, tools.to_string()).unwrap();
    let path = manifest.display().to_string();
    let client = stdio_mock(&s.ledger(), &["--manifest", &path], &[]).await;
    let listed = client.request("tools/list", None).await.or_stderr(&client);
    assert_eq!(listed.reply().unwrap()["result"], tools);
    let ex = client
        .call_tool("other_tool", json!({"q": "hi"}))
        .await
        .or_stderr(&client);
    assert_eq!(
        ex.reply().unwrap()["result"]["structuredContent"]["arguments"]["q"],
        "hi"
    );
    let bad = client
        .call_tool("Other_Tool", json!({}))
        .await
        .or_stderr(&client);
    assert_eq!(bad.reply().unwrap()["result"]["isError"], true);
    let calls = calls(&s.ledger());
    assert_eq!(calls[0].tool.as_deref(), Some("Other_Tool"));
    assert!(calls[0].executed && !calls[1].executed);
    client.close().await;
}

/// Skeleton sends (what a bench lane makes) are sorted exactly as whole
/// ones, over stdio and HTTP, and a whole send on the same client after
/// them still gets its whole reply.
#[tokio::test]
async fn skeleton_replies_sort_calls_as_whole_replies_do() {
    let s = Scratch::new();
    let stdio = stdio_mock(&s.ledger(), &[], &[]).await;
    let http_ledger = s.ledger().with_extension("http.jsonl");
    let server = HttpMock::start(&http_ledger, &[]).await;
    let http = server.client(None);
    http.initialize(Revision::V2025_11_25).await.unwrap();
    let bones = SendOptions {
        skeleton: true,
        ..SendOptions::default()
    };
    for client in [&stdio, &http] {
        let calls = [
            (GET, json!({}), false),
            (POST, customer("skeleton@acme.test"), false),
            ("NoSuchTool", json!({}), true),
            (POST, json!({"email": 7}), true),
        ];
        for (tool, args, denied) in calls {
            let id = client.next_id();
            let frame = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                               "params":{"name":tool,"arguments":args}});
            let bytes = serde_json::to_vec(&frame).unwrap();
            let ex = client
                .send_raw(bytes.clone(), Expect::Ids(vec![json!(id)]), &bones)
                .await
                .unwrap();
            assert_eq!(ex.replies.len(), 1, "{tool}");
            assert_eq!(ex.replies[0]["id"], json!(id), "{tool}");
            assert_eq!(ex.denied(), denied, "{tool}: {:?}", ex.replies);
            assert!(ex.replies[0]["result"].get("content").is_none());
        }
        let whole = client.call_tool(GET, json!({})).await.unwrap();
        assert!(whole.replies[0]["result"].get("content").is_some());
    }
}
