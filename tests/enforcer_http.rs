//! The reference enforcer over Streamable HTTP, in process, in front of the
//! mock's HTTP server; what got through is read from the mock's ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod enforcer_support;

use std::sync::Arc;
use std::time::Duration;

use enforcer_support::*;
use gauntlet::enforcer::http::HttpProxy;
use gauntlet::enforcer::{DENIED, Enforcer, HEADER_MISMATCH};
use gauntlet::mcp::{Client, Expect, HttpOptions, Revision, SendOptions};
use gauntlet::mock::Mock;
use serde_json::json;

struct HttpRig {
    mock: Arc<Mock>,
    proxy: HttpProxy,
    _stop_mock: tokio::sync::oneshot::Sender<()>,
}

async fn start(enforcer: Arc<Enforcer>) -> HttpRig {
    let mock = mock();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let m = mock.clone();
    tokio::spawn(async move {
        gauntlet::mock::http::serve(m, listener, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let proxy = gauntlet::enforcer::http::bind(enforcer, "127.0.0.1:0".parse().unwrap(), &mock_url)
        .await
        .unwrap();
    HttpRig {
        mock,
        proxy,
        _stop_mock: stop,
    }
}

fn client(rig: &HttpRig, token: Option<&str>) -> Client {
    Client::connect(
        HttpOptions {
            url: rig.proxy.url(),
            token: token.map(str::to_owned),
            headers: Vec::new(),
        },
        HANG,
    )
    .unwrap()
}

#[tokio::test]
async fn seed_policy_lets_30_of_40_calls_through_over_http() {
    let audit = AuditBuf::default();
    let enforcer = enforcer(policy(SEED), Some(audit.sink(true)));
    let rig = start(enforcer.clone()).await;
    let c = client(&rig, Some("alice"));
    c.initialize(Revision::V2025_11_25).await.unwrap();
    let mut denied = 0;
    for n in 0..40 {
        let ex = c.call_tool(POST, customer(n)).await.unwrap();
        let r = ex.reply().unwrap();
        if error_code(r) == Some(DENIED) {
            denied += 1;
            assert_eq!(r["error"]["data"]["kind"], "limit");
        } else {
            assert_eq!(r["result"]["isError"], false, "{r}");
        }
    }
    assert_eq!(denied, 10);
    assert_eq!(arrived(&rig.mock, POST).len(), 30);
    enforcer.audit().unwrap().sync();
    let lines = audit.records();
    assert_eq!(lines.len(), 40);
    assert!(
        lines
            .iter()
            .all(|l| l.grant == "alice" && l.transport == "http")
    );
    assert_eq!(lines[0].args.as_ref().unwrap()["email"], "ada0@acme.test");
    c.close().await;
}

#[tokio::test]
async fn the_bearer_token_is_the_grant_and_never_goes_upstream() {
    let rig = start(enforcer(policy(SEED), None)).await;
    let c = client(&rig, Some("secret-token-alice"));
    c.initialize(Revision::V2025_11_25).await.unwrap();
    c.call_tool(POST, customer(1)).await.unwrap();
    let records = rig.mock.ledger().records();
    assert!(records.len() >= 3, "{records:?}");
    for r in &records {
        assert_eq!(r.identity, None, "{r:?}");
        assert!(
            r.headers
                .iter()
                .all(|(n, v)| n != "authorization" && !v.contains("secret-token")),
            "{:?}",
            r.headers
        );
    }
    c.close().await;
}

#[tokio::test]
async fn grant_limits_hold_across_http_sessions() {
    let rig = start(enforcer(policy(SEED), None)).await;
    let a = client(&rig, Some("alice"));
    let b = client(&rig, Some("alice"));
    let other = client(&rig, Some("bob"));
    for c in [&a, &b, &other] {
        c.initialize(Revision::V2025_11_25).await.unwrap();
    }
    for n in 0..20 {
        a.call_tool(POST, customer(n)).await.unwrap();
        b.call_tool(POST, customer(100 + n)).await.unwrap();
    }
    assert_eq!(arrived(&rig.mock, POST).len(), 30);
    // Another grant has its own quota.
    let ex = other.call_tool(POST, customer(500)).await.unwrap();
    assert!(ex.reply().unwrap().get("result").is_some());
    assert_eq!(arrived(&rig.mock, POST).len(), 31);
}

#[tokio::test]
async fn a_session_cannot_be_used_by_another_grant() {
    let rig = start(enforcer(policy(SEED), None)).await;
    let alice = client(&rig, Some("alice"));
    alice.initialize(Revision::V2025_11_25).await.unwrap();
    // Learn alice's session id by asking the proxy through a raw exchange.
    let init = reqwest::Client::new()
        .post(rig.proxy.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth("alice")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let stolen = reqwest::Client::new()
        .post(rig.proxy.url())
        .header("content-type", "application/json")
        .header("mcp-session-id", &sid)
        .bearer_auth("mallory")
        .body(call(2, POST, customer(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 403);
    assert!(arrived(&rig.mock, POST).is_empty());
}

#[tokio::test]
async fn unjudgeable_posts_never_reach_upstream() {
    let rig = start(enforcer(
        policy(r#"{"version":"1","default":"allow"}"#),
        None,
    ))
    .await;
    let c = client(&rig, Some("alice"));
    c.initialize(Revision::V2025_11_25).await.unwrap();
    let args = customer(1).to_string();
    let cases = [
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{GET}","name":"{POST}","arguments":{args}}}}}"#
        ),
        format!(
            r#"[{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{POST}","arguments":{args}}}}}]"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"{POST}","arguments":{args}}}}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"TOOLS/CALL","params":{{"name":"{POST}","arguments":{args}}}}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"{POST}","arguments":[{args}]}}}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{POST}","arguments":{args}"#
        ),
    ];
    for raw in cases {
        let before = rig.mock.ledger().count();
        let ex = c
            .send_raw(
                raw.clone().into_bytes(),
                Expect::Nothing(Duration::ZERO),
                &SendOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(ex.status, Some(400), "{raw}");
        assert!(ex.denied(), "{raw}");
        assert_eq!(rig.mock.ledger().count(), before, "{raw} reached the mock");
    }
    assert!(arrived(&rig.mock, POST).is_empty());
    // A bad Origin is refused before anything else.
    let c2 = Client::connect(
        HttpOptions {
            url: rig.proxy.url(),
            token: Some("alice".into()),
            headers: vec![("origin".into(), "http://evil.example".into())],
        },
        HANG,
    )
    .unwrap();
    let ex = c2.call_tool(POST, customer(2)).await.unwrap();
    assert_eq!(ex.status, Some(403));
    assert!(arrived(&rig.mock, POST).is_empty());
}

#[tokio::test]
async fn stateless_requests_pass_and_header_mismatches_do_not() {
    let rig = start(enforcer(policy(SEED), None)).await;
    let c = client(&rig, Some("alice"));
    c.initialize(Revision::V2026_07_28).await.unwrap();
    let ex = c.call_tool(POST, customer(1)).await.unwrap();
    assert!(
        ex.reply().unwrap().get("result").is_some(),
        "{:?}",
        ex.replies
    );
    assert_eq!(arrived(&rig.mock, POST).len(), 1);
    // The header names an allowed read while the body creates a customer.
    let body = json!({"jsonrpc":"2.0","id":50,"method":"tools/call","params":{
        "name": POST, "arguments": customer(2),
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let opts = SendOptions {
        headers: vec![("mcp-name".into(), GET.into())],
        ..SendOptions::default()
    };
    let ex = c
        .send_raw(
            body.to_string().into_bytes(),
            Expect::Ids(vec![json!(50)]),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(ex.status, Some(400));
    assert_eq!(error_code(ex.reply().unwrap()), Some(HEADER_MISMATCH));
    assert_eq!(arrived(&rig.mock, POST).len(), 1);
}

#[tokio::test]
async fn hidden_tools_are_filtered_over_http() {
    let p = format!(r#"{{"version":"1","default":"allow","hide":["{DELETE}"]}}"#);
    let rig = start(enforcer(policy(&p), None)).await;
    let c = client(&rig, None);
    c.initialize(Revision::V2025_11_25).await.unwrap();
    let ex = c.request("tools/list", Some(json!({}))).await.unwrap();
    let tools = ex.reply().unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tools.len(), 4);
    assert!(tools.iter().all(|t| t["name"] != DELETE));
    let ex = c
        .call_tool(&DELETE.to_lowercase(), json!({"customer_id": "WC_000001"}))
        .await
        .unwrap();
    assert_eq!(ex.reply().unwrap()["error"]["data"]["kind"], "hidden");
    assert!(arrived(&rig.mock, DELETE).is_empty());
}
