//! The real `gauntlet mock --http`, judged by its ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_support;

use gauntlet::mcp::{Expect, Revision, SendOptions};
use gauntlet::mock::ledger::{self, Outcome, Transport};
use mock_support::*;
use serde_json::{Value, json};

fn headers(pairs: &[(&str, &str)]) -> SendOptions {
    SendOptions {
        headers: pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        ..SendOptions::default()
    }
}

fn stateless_call(id: i64, name: &str, args: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": args,
                   "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}}}}))
    .unwrap()
}

#[tokio::test]
async fn every_revision_handshakes_or_goes_without_and_sessions_follow() {
    let s = Scratch::new();
    let mock = HttpMock::start(&s.ledger(), &["--strict"]).await;
    for rev in Revision::ALL {
        let client = mock.client(Some(&format!("token-{rev}")));
        let init = client.initialize(rev).await.unwrap();
        assert_eq!(
            init.status,
            if rev.is_stateless() { None } else { Some(200) }
        );
        let ex = client
            .call_tool(POST, customer(&format!("{rev}@x.test")))
            .await
            .unwrap();
        assert_eq!(ex.status, Some(200), "{rev}: {}", ex.text());
        assert_eq!(ex.reply().unwrap()["result"]["isError"], false, "{rev}");
        client.close().await;
    }
    let calls = calls(&s.ledger());
    assert_eq!(calls.len(), 4);
    for (call, rev) in calls.iter().zip(Revision::ALL) {
        assert_eq!(call.revision.as_deref(), Some(rev.as_str()));
        assert_eq!(call.identity, Some(format!("token-{rev}")));
        assert_eq!(call.transport, Transport::Http);
        assert!(call.executed);
        // Session revisions run in the session initialize opened; the
        // stateless one has none.
        assert_eq!(call.session.is_some(), !rev.is_stateless(), "{rev}");
        assert!(call.headers.iter().any(|(n, _)| n == "authorization"));
    }
    let sessions: std::collections::HashSet<_> =
        calls.iter().filter_map(|c| c.session.clone()).collect();
    assert_eq!(sessions.len(), 3);
}

#[tokio::test]
async fn a_bad_origin_is_refused_and_recorded() {
    let s = Scratch::new();
    let mock = HttpMock::start(&s.ledger(), &[]).await;
    let client = mock.client(None);
    client.initialize(Revision::V2025_11_25).await.unwrap();
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": POST, "arguments": customer("o@x.test")}}))
    .unwrap();
    let ex = client
        .send_raw(
            body,
            Expect::Ids(vec![json!(5)]),
            &headers(&[("origin", "http://evil.example")]),
        )
        .await
        .unwrap();
    assert_eq!(ex.status, Some(403));
    let rec = &calls(&s.ledger())[0];
    assert!(!rec.executed);
    assert!(matches!(
        rec.outcome,
        Some(Outcome::Rejected { status: 403, .. })
    ));
    assert!(
        rec.headers
            .contains(&("origin".into(), "http://evil.example".into()))
    );
    assert_eq!(
        rec.tool.as_deref(),
        Some(POST),
        "it arrived, and is recorded as such"
    );
    client.close().await;
}

#[tokio::test]
async fn stateless_headers_must_match_the_body() {
    let s = Scratch::new();
    let mock = HttpMock::start(&s.ledger(), &[]).await;
    let client = mock.client(None);
    client.initialize(Revision::V2026_07_28).await.unwrap();
    let cases: [(&[(&str, &str)], u16); 4] = [
        (&[("mcp-name", GET)], 400),
        (&[("mcp-method", "tools/list")], 400),
        (&[("mcp-protocol-version", "2025-11-25")], 400),
        (&[], 200),
    ];
    for (i, (extra, status)) in cases.iter().enumerate() {
        let id = i64::try_from(i).unwrap();
        let ex = client
            .send_raw(
                stateless_call(id, POST, customer("h@x.test")),
                Expect::Ids(vec![json!(id)]),
                &headers(extra),
            )
            .await
            .unwrap();
        assert_eq!(ex.status, Some(*status), "{extra:?}: {}", ex.text());
        if *status == 400 {
            assert_eq!(ex.reply().unwrap()["error"]["code"], -32020, "{extra:?}");
        }
    }
    let calls = calls(&s.ledger());
    assert_eq!(calls.len(), 4);
    assert!(calls[..3].iter().all(|r| !r.executed
        && matches!(
            r.outcome,
            Some(Outcome::Rejected {
                status: 400,
                code: Some(-32020),
                ..
            })
        )));
    assert!(calls[3].executed);
    // A non-ASCII name travels base64-encoded in the header.
    let name = "ＷｉｚＣｏｍｍｅｒｃｅ Open API_PostCustomers";
    let coded = format!("=?base64?{}?=", encode_b64(name.as_bytes()));
    let ex = client
        .send_raw(
            stateless_call(9, name, customer("u@x.test")),
            Expect::Ids(vec![json!(9)]),
            &headers(&[("mcp-name", &coded)]),
        )
        .await
        .unwrap();
    assert_eq!(ex.status, Some(200), "{}", ex.text());
    client.close().await;
}

fn encode_b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(A[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test]
async fn sse_batches_and_oversized_bodies() {
    let s = Scratch::new();
    let mock = HttpMock::start(&s.ledger(), &["--sse", "--max-frame", "4096"]).await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": "2025-03-26", "capabilities": {}}});
    let resp = http
        .post(&mock.url)
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = resp.bytes().await.unwrap();
    let events = gauntlet::mcp::http::sse_data(&body);
    let first: Value = serde_json::from_slice(&events[0]).unwrap();
    assert_eq!(first["result"]["protocolVersion"], "2025-03-26");

    let batch = json!([
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": POST, "arguments": customer("s@x.test")}},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
    ]);
    let resp = http
        .post(&mock.url)
        .header("accept", "application/json")
        .header("mcp-session-id", &sid)
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let replies: Vec<Value> = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(replies.len(), 2);

    let huge = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                      "params": {"name": POST, "arguments": {"display_name": "y".repeat(10_000)}}});
    let resp = http
        .post(&mock.url)
        .body(huge.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    let gone = http.get(&mock.url).send().await.unwrap();
    assert_eq!(gone.status(), 405);
    let deleted = http
        .delete(&mock.url)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let again = http
        .delete(&mock.url)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    let records = ledger::read(&s.ledger()).unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(records[1].frame, records[2].frame);
    assert_eq!(records[1].session.as_deref(), Some(sid.as_str()));
    assert!(records[1].executed);
    let over = &records[3];
    assert!(
        over.error
            .as_deref()
            .unwrap()
            .contains("exceeds the limit of 4096")
    );
    assert_eq!(over.raw_len, huge.to_string().len());
    assert!(matches!(
        over.outcome,
        Some(Outcome::Rejected { status: 413, .. })
    ));
}

#[tokio::test]
async fn strict_http_wants_its_session_and_version_headers() {
    let s = Scratch::new();
    let mock = HttpMock::start(&s.ledger(), &["--strict"]).await;
    let client = mock.client(None);
    client.initialize(Revision::V2025_06_18).await.unwrap();
    let list = br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#.to_vec();
    let bare = SendOptions {
        bare: true,
        ..SendOptions::default()
    };
    let ex = client
        .send_raw(list.clone(), Expect::Ids(vec![json!(7)]), &bare)
        .await
        .unwrap();
    assert_eq!(ex.status, Some(400), "{}", ex.text());
    let ex = client
        .send_raw(
            list.clone(),
            Expect::Ids(vec![json!(7)]),
            &headers(&[("mcp-session-id", "forged")]),
        )
        .await
        .unwrap();
    assert_eq!(ex.status, Some(404));
    let ex = client
        .send_raw(
            list,
            Expect::Ids(vec![json!(7)]),
            &headers(&[("mcp-protocol-version", "1999-01-01")]),
        )
        .await
        .unwrap();
    assert_eq!(ex.status, Some(400));
    let ok = client.request("tools/list", None).await.unwrap();
    assert_eq!(ok.status, Some(200));
    let records = settled(&s.ledger(), 6).await;
    let lists: Vec<_> = records
        .iter()
        .filter(|r| r.method.as_deref() == Some("tools/list"))
        .collect();
    assert_eq!(lists.len(), 4);
    assert_eq!(lists[1].session.as_deref(), Some("forged"));
    assert!(matches!(
        lists[0].outcome,
        Some(Outcome::Rejected { status: 400, .. })
    ));
    assert_eq!(lists[3].outcome, Some(Outcome::Ok));
    client.close().await;
}
