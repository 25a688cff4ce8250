//! The reference enforcer over stdio, in process, in front of the mock:
//! every assertion on what got through reads the mock's ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod enforcer_support;

use enforcer_support::*;
use gauntlet::enforcer::{DENIED, Enforcer};
use gauntlet::mock::effects::WRITE_THEN_ERROR;
use gauntlet::policy::{Clock, CounterStore, MemoryStore, SystemClock};
use serde_json::{Value, json};
use std::sync::Arc;

#[tokio::test]
async fn seed_policy_lets_30_of_40_pipelined_calls_through() {
    let audit = AuditBuf::default();
    let enforcer = enforcer(policy(SEED), Some(audit.sink(false)));
    let mock = mock();
    let mut rig = Rig::start(enforcer.clone(), mock.clone(), "alice", "s1");
    rig.handshake().await;
    // Pipelined: every call is written before any reply is read.
    for n in 0..40 {
        rig.send(&call(n, POST, customer(n as usize))).await;
    }
    let mut denied = 0;
    for n in 0..40 {
        let r = rig.reply(n).await;
        if error_code(&r) == Some(DENIED) {
            denied += 1;
            assert_eq!(r["error"]["data"]["kind"], "limit", "{r}");
            assert!(
                r["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("denied by policy: "),
                "{r}"
            );
            assert_eq!(
                r["error"]["data"]["rule"],
                "/tools/WizCommerce Open API_PostCustomers/limits/0"
            );
        } else {
            assert!(r.get("result").is_some(), "{r}");
        }
    }
    rig.close().await;
    assert_eq!(denied, 10);
    let through = arrived(&mock, POST);
    assert_eq!(through.len(), 30);
    assert!(through.iter().all(|r| r.executed));
    enforcer.audit().unwrap().sync();
    let lines = audit.records();
    assert_eq!(lines.len(), 40);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.kind.as_deref() == Some("limit"))
            .count(),
        10
    );
    let first = &lines[0];
    assert_eq!(
        (first.grant.as_str(), first.session.as_str()),
        ("alice", "s1")
    );
    assert_eq!(first.tool.as_deref(), Some(POST));
    assert!(first.args.is_none(), "values are off by default");
    assert!(first.arg_keys.contains(&"email".to_owned()));
}

/// A policy that allows everything, so every refusal below is structural.
const OPEN: &str = r#"{"version":"1","default":"allow"}"#;

#[tokio::test]
async fn unjudgeable_frames_never_reach_upstream() {
    let enforcer = Enforcer::with_max_frame(
        policy(OPEN),
        Arc::new(MemoryStore::default()) as Arc<dyn CounterStore>,
        Arc::new(SystemClock) as Arc<dyn Clock>,
        None,
        4096,
    );
    let mock = mock();
    let mut rig = Rig::start(enforcer, mock.clone(), "alice", "s1");
    rig.handshake().await;
    // The proxy's own tools/list must be in before counting starts.
    let r = rig
        .request(0, "tools/call", json!({"name": GET, "arguments": {}}))
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let args = customer(1).to_string();
    let big = call(
        900,
        POST,
        json!({"company_name": "x".repeat(5000), "first_name": "a", "email": "a@b.c"}),
    );
    let cases: Vec<(&str, Vec<u8>, Option<Value>)> = vec![
        ("invalid json", format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{POST}""#).into_bytes(), Some(Value::Null)),
        ("duplicate name", format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{GET}","name":"{POST}","arguments":{args}}}}}"#).into_bytes(), Some(json!(2))),
        ("case-variant Name", format!(r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{GET}","Name":"{POST}","arguments":{args}}}}}"#).into_bytes(), Some(json!(3))),
        ("case-variant arguments", format!(r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"{POST}","arguments":{args},"Arguments":{{}}}}}}"#).into_bytes(), Some(json!(4))),
        ("params array", format!(r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":["{POST}",{args}]}}"#).into_bytes(), Some(json!(5))),
        ("name not a string", br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":["x"],"arguments":{}}}"#.to_vec(), Some(json!(6))),
        ("arguments a string", format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{POST}","arguments":"{{}}"}}}}"#).into_bytes(), Some(json!(7))),
        ("batch", format!(r#"[{{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{{"name":"{POST}","arguments":{args}}}}}]"#).into_bytes(), Some(json!(8))),
        ("notification", format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"{POST}","arguments":{args}}}}}"#).into_bytes(), None),
        ("method variant", format!(r#"{{"jsonrpc":"2.0","id":10,"method":"Tools/Call","params":{{"name":"{POST}","arguments":{args}}}}}"#).into_bytes(), Some(json!(10))),
        ("null id", format!(r#"{{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{{"name":"{POST}","arguments":{args}}}}}"#).into_bytes(), Some(Value::Null)),
        ("no jsonrpc", format!(r#"{{"id":12,"method":"tools/call","params":{{"name":"{POST}","arguments":{args}}}}}"#).into_bytes(), Some(json!(12))),
        ("oversized", big.into_bytes(), Some(Value::Null)),
        ("invalid utf-8", invalid_utf8_call(), Some(Value::Null)),
    ];
    for (i, (name, bytes, reply_id)) in cases.into_iter().enumerate() {
        let before = mock.ledger().count();
        rig.send_bytes(&bytes).await;
        let barrier = format!("after-{i}");
        if let Some(id) = reply_id {
            // Nothing else is in flight, so the next reply is this one's.
            let r = rig.next().await;
            let r = match r {
                Value::Array(mut items) => items.remove(0),
                other => other,
            };
            assert_eq!(r["id"], id, "{name}: {r}");
            assert!(r.get("error").is_some(), "{name}: {r}");
        }
        rig.barrier(&barrier).await;
        // Only the barrier's ping arrived.
        assert_eq!(mock.ledger().count(), before + 1, "{name} reached the mock");
    }
    assert!(arrived(&mock, POST).is_empty());
    // The session is still usable and the policy does allow the call.
    let r = rig
        .request(
            99,
            "tools/call",
            json!({"name": POST, "arguments": customer(99)}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(arrived(&mock, POST).len(), 1);
    rig.close().await;
}

/// A call whose company name holds the byte 0xff.
fn invalid_utf8_call() -> Vec<u8> {
    let mut bytes = format!(
        r#"{{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{{"name":"{POST}","arguments":{{"first_name":"a","email":"a@b.c","company_name":""#
    )
    .into_bytes();
    bytes.push(0xff);
    bytes.extend_from_slice(br#""}}}"#);
    bytes
}

#[tokio::test]
async fn hidden_tools_are_not_listed_and_denied_in_every_spelling() {
    let p = format!(r#"{{"version":"1","default":"allow","hide":["{DELETE}"]}}"#);
    let mock = mock();
    let mut rig = Rig::start(enforcer(policy(&p), None), mock.clone(), "alice", "s1");
    rig.handshake().await;
    let list = rig.request(1, "tools/list", json!({})).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(!names.contains(&DELETE));
    for (i, name) in [
        DELETE.to_owned(),
        format!(" {} ", DELETE.to_uppercase()),
        DELETE.replace('_', "\u{200b}_"),
    ]
    .iter()
    .enumerate()
    {
        let r = rig
            .request(
                10 + i,
                "tools/call",
                json!({"name": name, "arguments": {"customer_id": "WC_000001"}}),
            )
            .await;
        assert_eq!(error_code(&r), Some(DENIED), "{name}: {r}");
        assert_eq!(r["error"]["data"]["kind"], "hidden");
    }
    rig.barrier("b").await;
    assert!(arrived(&mock, DELETE).is_empty());
    rig.close().await;
}

#[tokio::test]
async fn grant_limits_hold_across_sessions_of_one_enforcer() {
    let enforcer = enforcer(policy(SEED), None);
    let mock = mock();
    let mut a = Rig::start(enforcer.clone(), mock.clone(), "alice", "s1");
    let mut b = Rig::start(enforcer.clone(), mock.clone(), "alice", "s2");
    a.handshake().await;
    b.handshake().await;
    for n in 0..40 {
        a.send(&call(n, POST, customer(n))).await;
        b.send(&call(n, POST, customer(100 + n))).await;
    }
    for n in 0..40 {
        a.reply(n).await;
        b.reply(n).await;
    }
    a.close().await;
    b.close().await;
    assert_eq!(arrived(&mock, POST).len(), 30);
}

#[tokio::test]
async fn arguments_are_checked_against_the_schema_learned_from_upstream() {
    let mock = mock();
    let p = r#"{"version":"1","default":"allow"}"#;
    let mut rig = Rig::start(enforcer(policy(p), None), mock.clone(), "alice", "s1");
    rig.handshake().await;
    let r = rig
        .request(
            1,
            "tools/call",
            json!({"name": POST, "arguments": {"company_name": "Acme", "first_name": "Ada"}}),
        )
        .await;
    assert_eq!(error_code(&r), Some(DENIED), "{r}");
    assert_eq!(r["error"]["data"]["kind"], "schema");
    rig.barrier("b").await;
    assert!(arrived(&mock, POST).is_empty());
    rig.close().await;
}

async fn write_then_error_arrivals(refund: bool) -> usize {
    let p = format!(
        r#"{{"version":"1","default":"deny","refund_on_error":{refund},"tools":{{"{POST}":{{"limits":[{{"counter":"posts","window":"minute","max":2,"scope":"grant"}}]}}}}}}"#
    );
    let mock = mock();
    let mut rig = Rig::start(enforcer(policy(&p), None), mock.clone(), "alice", "s1");
    rig.handshake().await;
    for n in 0..5 {
        let mut args = customer(n);
        args["reference_id"] = Value::from(WRITE_THEN_ERROR);
        let r = rig
            .request(n, "tools/call", json!({"name": POST, "arguments": args}))
            .await;
        assert!(r.get("error").is_some(), "{r}");
    }
    rig.close().await;
    let through = arrived(&mock, POST);
    assert!(
        through.iter().all(|r| r.executed),
        "write-then-error writes"
    );
    through.len()
}

#[tokio::test]
async fn refunds_follow_the_policy() {
    // Without refunds the quota of 2 holds even though every call errored.
    assert_eq!(write_then_error_arrivals(false).await, 2);
    // With refunds, every errored call gives its quota back: all 5 arrive,
    // and all 5 wrote. That is the abuse refunds open up.
    assert_eq!(write_then_error_arrivals(true).await, 5);
}

#[tokio::test]
async fn a_request_id_already_in_flight_is_refused_and_not_forwarded() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (client, proxy_down) = tokio::io::duplex(1 << 16);
    let (proxy_up, upstream) = tokio::io::duplex(1 << 16);
    let info = gauntlet::enforcer::SessionInfo {
        grant: "alice".into(),
        session_id: "s1".into(),
    };
    let served = tokio::spawn(gauntlet::enforcer::stdio::serve(
        enforcer(policy(OPEN), None),
        info,
        tokio::io::split(proxy_down),
        tokio::io::split(proxy_up),
    ));
    let (client_r, mut client_w) = tokio::io::split(client);
    let (up_r, mut up_w) = tokio::io::split(upstream);
    let mut from_proxy = BufReader::new(client_r).lines();
    let mut at_upstream = BufReader::new(up_r).lines();
    let ping = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n";
    client_w.write_all(ping).await.unwrap();
    client_w.write_all(ping).await.unwrap();
    // The upstream (this test) has not answered, so the second is refused.
    let refused: Value =
        serde_json::from_str(&from_proxy.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(refused["id"], 7);
    assert_eq!(refused["error"]["data"]["kind"], "duplicate-id");
    let first = at_upstream.next_line().await.unwrap().unwrap();
    assert!(first.contains("\"ping\""));
    // Once answered, the id may be used again.
    up_w.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n")
        .await
        .unwrap();
    let answered: Value =
        serde_json::from_str(&from_proxy.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(answered, json!({"jsonrpc":"2.0","id":7,"result":{}}));
    client_w.write_all(ping).await.unwrap();
    assert!(
        at_upstream
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .contains("\"ping\"")
    );
    // The client leaves; the proxy answers what upstream never did, and ends.
    client_w.shutdown().await.unwrap();
    drop(up_w);
    drop(at_upstream);
    let last: Value =
        serde_json::from_str(&from_proxy.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(last["id"], 7);
    assert_eq!(last["error"]["data"]["kind"], "upstream-closed");
    tokio::time::timeout(HANG, served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Counts the writes that reach the wrapped stream.
struct CountingWriter<W> {
    inner: W,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn frames_that_arrive_together_leave_together_and_none_is_held_back() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let enforcer = enforcer(policy(OPEN), None);
    let mock = mock();
    let (client, proxy_down) = tokio::io::duplex(1 << 16);
    let (proxy_up, mock_side) = tokio::io::duplex(1 << 16);
    let (mock_r, mock_w) = tokio::io::split(mock_side);
    let m = mock.clone();
    tokio::spawn(async move {
        let _ = gauntlet::mock::stdio::serve(m, mock_r, mock_w, Some("alice".into())).await;
    });
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (up_r, up_w) = tokio::io::split(proxy_up);
    let up_w = CountingWriter {
        inner: up_w,
        writes: writes.clone(),
    };
    let info = gauntlet::enforcer::SessionInfo {
        grant: "alice".into(),
        session_id: "s1".into(),
    };
    tokio::spawn(gauntlet::enforcer::stdio::serve(
        enforcer,
        info,
        tokio::io::split(proxy_down),
        (up_r, up_w),
    ));
    let (from_proxy, mut to_proxy) = tokio::io::split(client);
    let mut lines = tokio::io::BufReader::new(from_proxy).lines();
    // The handshake, then twenty calls in one write.
    to_proxy
        .write_all(
            format!(
                "{}\n{}\n",
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
                json!({"jsonrpc":"2.0","method":"notifications/initialized"})
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let first: Value = serde_json::from_str(
        &tokio::time::timeout(HANG, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["id"], 0, "{first}");
    let before = writes.load(std::sync::atomic::Ordering::SeqCst);
    let burst: String = (1..=20)
        .map(|n| format!("{}\n", call(n, GET, json!({}))))
        .collect();
    to_proxy.write_all(burst.as_bytes()).await.unwrap();
    // Every reply comes back with nothing more sent: nothing was held in
    // a buffer waiting for input.
    for _ in 1..=20 {
        let line = tokio::time::timeout(HANG, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let r: Value = serde_json::from_str(&line).unwrap();
        assert!(r.get("result").is_some(), "{r}");
    }
    let burst_writes = writes.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(arrived(&mock, GET).len(), 20);
    // One write for the lot when they were read at once; a few if the read
    // split them. One write per frame would be twenty.
    assert!(burst_writes <= 4, "{burst_writes} writes for 20 frames");
}
