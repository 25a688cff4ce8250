//! In-process tests of the handler, asserting on the ledger first.

use serde_json::{Value, json};

use super::catalogue::{GET_CUSTOMERS, POST_CUSTOMERS};
use super::core::{Conn, HttpMeta};
use super::effects::WRITE_THEN_ERROR;
use super::ledger::{LedgerRecord, Outcome, Transport};
use super::{Mock, MockConfig, Reply};
use crate::mcp::Revision;
use crate::mcp::framing::FrameError;
use crate::mcp::keys::KeyIssueKind;

fn mock(strict: bool) -> Mock {
    Mock::in_memory(MockConfig {
        strict,
        ..MockConfig::default()
    })
    .unwrap()
}

fn replies(reply: &Reply) -> Vec<Value> {
    match reply.body() {
        None => vec![],
        Some(body) => match serde_json::from_slice(&body).unwrap() {
            Value::Array(items) => items,
            v => vec![v],
        },
    }
}

fn send(m: &Mock, conn: &mut Conn, frame: &str) -> Vec<Value> {
    replies(&m.handle(conn, frame.as_bytes()).unwrap())
}

fn init(m: &Mock, conn: &mut Conn, rev: Revision) {
    let frame = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize",
        "params": {"protocolVersion": rev.as_str(), "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}});
    let got = send(m, conn, &frame.to_string());
    assert_eq!(got[0]["result"]["protocolVersion"], rev.as_str());
    send(
        m,
        conn,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
}

fn customer(email: &str) -> Value {
    json!({"company_name": "Acme", "first_name": "Ada", "email": email})
}

fn call(id: i64, name: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": args}})
    .to_string()
}

fn calls(m: &Mock) -> Vec<LedgerRecord> {
    m.ledger()
        .records()
        .into_iter()
        .filter(LedgerRecord::is_call)
        .collect()
}

#[test]
fn a_valid_call_is_recorded_executed_and_answered() {
    let m = mock(false);
    let mut conn = m.stdio_conn(Some("alice".into()));
    init(&m, &mut conn, Revision::V2025_06_18);
    let got = send(
        &m,
        &mut conn,
        &call(7, POST_CUSTOMERS, customer("a@x.test")),
    );
    assert_eq!(got[0]["result"]["structuredContent"]["id"], "WC_000001");
    let rec = &calls(&m)[0];
    assert_eq!(rec.tool.as_deref(), Some(POST_CUSTOMERS));
    assert_eq!(rec.identity.as_deref(), Some("alice"));
    assert_eq!(rec.revision.as_deref(), Some("2025-06-18"));
    assert_eq!(rec.session.as_deref(), Some(m.ledger().instance()));
    assert_eq!((rec.valid, rec.executed), (Some(true), true));
    assert_eq!(rec.outcome, Some(Outcome::Ok));
    assert_eq!(rec.touched.as_deref(), Some("WC_000001"));
    assert_eq!(rec.id, Some(json!(7)));
    assert_eq!(rec.raw_sha256.as_deref().map(str::len), Some(64));
    assert_eq!(m.store().len(), 1);
}

#[test]
fn name_variants_resolve_leniently_and_not_strictly() {
    let variant = "  wizcommerce OPEN api_Post\u{200B}Customers ";
    let lenient = mock(false);
    let mut conn = lenient.stdio_conn(None);
    let got = send(&lenient, &mut conn, &call(1, variant, customer("a@x.test")));
    assert_eq!(got[0]["result"]["isError"], false);
    let rec = &calls(&lenient)[0];
    assert_eq!(rec.raw_name.as_deref(), Some(variant));
    assert_eq!(rec.tool.as_deref(), Some(POST_CUSTOMERS));
    assert!(rec.executed);

    let strict = mock(true);
    let mut conn = strict.stdio_conn(None);
    init(&strict, &mut conn, Revision::V2025_11_25);
    let got = send(&strict, &mut conn, &call(1, variant, customer("a@x.test")));
    assert_eq!(got[0]["error"]["code"], -32602);
    let rec = &calls(&strict)[0];
    assert_eq!((rec.tool.as_deref(), rec.executed), (None, false));
    assert_eq!(
        rec.outcome.as_ref().and_then(Outcome::rpc_code),
        Some(-32602)
    );
    assert!(strict.store().is_empty());
}

#[test]
fn invalid_arguments_never_execute_and_are_answered_per_revision() {
    let bad = json!({"company_name": "Acme", "first_name": "Ada", "email": "nope"});
    let lenient = mock(false);
    let mut conn = lenient.stdio_conn(None);
    let got = send(&lenient, &mut conn, &call(1, POST_CUSTOMERS, bad.clone()));
    assert_eq!(got[0]["result"]["isError"], true);
    let rec = &calls(&lenient)[0];
    assert_eq!((rec.valid, rec.executed), (Some(false), false));
    assert_eq!(rec.schema_errors[0].path, "/email");
    assert!(matches!(rec.outcome, Some(Outcome::ToolError { .. })));

    for (rev, want_rpc) in [
        (Revision::V2025_03_26, true),
        (Revision::V2025_06_18, false),
        (Revision::V2025_11_25, false),
    ] {
        let strict = mock(true);
        let mut conn = strict.stdio_conn(None);
        init(&strict, &mut conn, rev);
        let got = send(&strict, &mut conn, &call(1, POST_CUSTOMERS, bad.clone()));
        assert_eq!(got[0].get("error").is_some(), want_rpc, "{rev}: {}", got[0]);
        if want_rpc {
            assert_eq!(got[0]["error"]["data"]["errors"][0]["path"], "/email");
        }
        assert!(!calls(&strict)[0].executed);
        assert!(strict.store().is_empty());
    }
}

#[test]
fn write_then_error_writes_and_answers_an_rpc_error() {
    let m = mock(false);
    let mut conn = m.stdio_conn(None);
    let mut args = customer("a@x.test");
    args["reference_id"] = json!(WRITE_THEN_ERROR);
    let got = send(&m, &mut conn, &call(1, POST_CUSTOMERS, args));
    assert_eq!(got[0]["error"]["code"], -32603);
    let rec = &calls(&m)[0];
    assert!(rec.executed);
    assert_eq!(rec.touched.as_deref(), Some("WC_000001"));
    assert_eq!(
        rec.outcome.as_ref().and_then(Outcome::rpc_code),
        Some(-32603)
    );
    assert!(m.store().get("WC_000001").is_some());
}

#[test]
fn batches_are_accepted_leniently_and_only_in_2025_03_26_strictly() {
    let batch = format!(
        "[{},{},{}]",
        call(1, POST_CUSTOMERS, customer("a@x.test")),
        r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#,
        call(2, GET_CUSTOMERS, json!({}))
    );
    let m = mock(false);
    let mut conn = m.stdio_conn(None);
    init(&m, &mut conn, Revision::V2025_11_25);
    let got = send(&m, &mut conn, &batch);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["result"]["structuredContent"]["total"], 1);
    let recs: Vec<_> = m
        .ledger()
        .records()
        .into_iter()
        .filter(|r| r.batch_index.is_some())
        .collect();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.frame == recs[0].frame));
    assert_eq!(
        recs.iter().map(|r| r.batch_index).collect::<Vec<_>>(),
        [Some(0), Some(1), Some(2)]
    );
    // Each message keeps its own bytes.
    let first = call(1, POST_CUSTOMERS, customer("a@x.test"));
    assert_eq!(recs[0].raw.as_deref(), Some(first.as_str()));
    assert_eq!(recs[0].raw_len, first.len());

    let strict = mock(true);
    let mut conn = strict.stdio_conn(None);
    init(&strict, &mut conn, Revision::V2025_11_25);
    let got = send(&strict, &mut conn, &batch);
    assert_eq!(
        (got.len(), got[0]["error"]["code"].clone()),
        (1, json!(-32600))
    );
    assert!(strict.store().is_empty());
    let recs: Vec<_> = strict
        .ledger()
        .records()
        .into_iter()
        .filter(|r| r.batch_index.is_some())
        .collect();
    assert_eq!(recs.len(), 3);
    assert!(
        recs.iter()
            .all(|r| !r.executed && r.outcome.as_ref().and_then(Outcome::rpc_code) == Some(-32600))
    );

    let old = mock(true);
    let mut conn = old.stdio_conn(None);
    init(&old, &mut conn, Revision::V2025_03_26);
    assert_eq!(send(&old, &mut conn, &batch).len(), 2);
    assert_eq!(old.store().len(), 1);
}

#[test]
fn call_notifications_execute_leniently_only() {
    let note = json!({"jsonrpc": "2.0", "method": "tools/call",
        "params": {"name": POST_CUSTOMERS, "arguments": customer("a@x.test")}})
    .to_string();
    for (strict, executes) in [(false, true), (true, false)] {
        let m = mock(strict);
        let mut conn = m.stdio_conn(None);
        init(&m, &mut conn, Revision::V2025_06_18);
        assert!(send(&m, &mut conn, &note).is_empty());
        let rec = &calls(&m)[0];
        assert!(rec.notification);
        assert_eq!(rec.executed, executes);
        assert_eq!(m.store().len(), usize::from(executes));
    }
}

#[test]
fn duplicate_keys_last_wins_leniently_and_are_refused_strictly() {
    let frame = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{GET_CUSTOMERS}","name":"{POST_CUSTOMERS}","arguments":{}}}}}"#,
        customer("a@x.test")
    );
    let m = mock(false);
    let mut conn = m.stdio_conn(None);
    send(&m, &mut conn, &frame);
    let rec = &calls(&m)[0];
    assert_eq!(rec.tool.as_deref(), Some(POST_CUSTOMERS));
    assert_eq!(rec.key_issues[0].kind, KeyIssueKind::Duplicate);
    assert_eq!(rec.key_issues[0].pointer, "/params");
    assert!(rec.executed);

    let strict = mock(true);
    let mut conn = strict.stdio_conn(None);
    init(&strict, &mut conn, Revision::V2025_11_25);
    let got = send(&strict, &mut conn, &frame);
    assert_eq!(got[0]["error"]["code"], -32600);
    assert!(!calls(&strict)[0].executed);
}

#[test]
fn strict_refuses_requests_before_initialize_lenient_serves_them() {
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let m = mock(false);
    let mut conn = m.stdio_conn(None);
    assert_eq!(
        send(&m, &mut conn, list)[0]["result"]["tools"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    let strict = mock(true);
    let mut conn = strict.stdio_conn(None);
    assert_eq!(send(&strict, &mut conn, list)[0]["error"]["code"], -32600);
    assert_eq!(
        send(
            &strict,
            &mut conn,
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#
        )[0]["result"],
        json!({})
    );
}

#[test]
fn stateless_requests_need_no_handshake_and_say_they_are_complete() {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let frame = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": POST_CUSTOMERS, "arguments": customer("a@x.test"), "_meta": meta}});
    for strict in [false, true] {
        let m = mock(strict);
        let mut conn = m.stdio_conn(None);
        let got = send(&m, &mut conn, &frame.to_string());
        assert_eq!(got[0]["result"]["resultType"], "complete", "{}", got[0]);
        let rec = &calls(&m)[0];
        assert_eq!(rec.revision.as_deref(), Some("2026-07-28"));
        assert!(rec.executed);
    }
    let discover =
        json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": meta}});
    let m = mock(true);
    let mut conn = m.stdio_conn(None);
    let got = send(&m, &mut conn, &discover.to_string());
    assert_eq!(got[0]["result"]["supportedVersions"][3], "2026-07-28");
    assert_eq!(
        got[0]["result"]["capabilities"]["tools"],
        json!({"listChanged": false})
    );

    let no_caps = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    assert_eq!(
        send(&m, &mut conn, &no_caps.to_string())[0]["error"]["code"],
        -32602
    );
    let unknown = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
                             "io.modelcontextprotocol/clientCapabilities": {}}}});
    assert_eq!(
        send(&m, &mut conn, &unknown.to_string())[0]["error"]["code"],
        -32022
    );
}

#[test]
fn initialize_negotiates_down_to_a_session_revision() {
    let m = mock(false);
    for (asked, got) in [
        ("2025-03-26", "2025-03-26"),
        ("2026-07-28", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let mut conn = m.stdio_conn(None);
        let frame = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"protocolVersion": asked, "capabilities": {}}});
        assert_eq!(
            send(&m, &mut conn, &frame.to_string())[0]["result"]["protocolVersion"],
            got
        );
    }
}

#[test]
fn garbage_unknown_methods_and_framing_errors_are_recorded_and_answered() {
    let m = mock(false);
    let mut conn = m.stdio_conn(None);
    assert_eq!(send(&m, &mut conn, "{oops")[0]["error"]["code"], -32700);
    assert_eq!(send(&m, &mut conn, "[]")[0]["error"]["code"], -32600);
    assert_eq!(
        send(&m, &mut conn, r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#)[0]["error"]["code"],
        -32600
    );
    assert_eq!(
        send(
            &m,
            &mut conn,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#
        )[0]["error"]["code"],
        -32601
    );
    let big = FrameError::Oversized {
        limit: 10,
        seen: 5000,
        head: b"{\"jsonrpc\"".to_vec(),
    };
    let reply = m.handle_frame_error(&mut conn, &big).unwrap();
    assert_eq!(replies(&reply)[0]["error"]["code"], -32700);
    let utf = FrameError::InvalidUtf8 {
        offset: 1,
        bytes: b"{\xff}".to_vec(),
    };
    m.handle_frame_error(&mut conn, &utf).unwrap();

    let recs = m.ledger().records();
    assert_eq!(recs.len(), 6);
    assert!(
        recs[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("frame is not valid json")
    );
    assert_eq!(recs[1].error.as_deref(), Some("frame is an empty batch"));
    assert_eq!((recs[4].raw_len, recs[4].raw_sha256.clone()), (5000, None));
    assert!(recs[4].raw_truncated());
    assert_eq!(recs[5].raw_bytes(), b"{\xff}");
    assert!(recs[5].raw_base64.is_some());
    assert!(recs.iter().all(|r| r.outcome.is_some() && !r.executed));
}

#[test]
fn tools_list_pages_with_a_cursor() {
    let m = Mock::in_memory(MockConfig {
        page_size: Some(2),
        ..MockConfig::default()
    })
    .unwrap();
    let mut conn = m.stdio_conn(None);
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..5 {
        let frame = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": cursor}});
        let got = send(&m, &mut conn, &frame.to_string());
        for t in got[0]["result"]["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_owned());
        }
        cursor = got[0]["result"]["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(names.len(), 5);
    assert_eq!(names[0], POST_CUSTOMERS);
}

fn http_conn(headers: &[(&str, &str)]) -> Conn {
    let mut conn = Conn::new(Transport::Http, Some("bob".into()), None);
    let list = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    conn.http = Some(HttpMeta::from_headers(list));
    conn
}

#[test]
fn http_gate_rejects_bad_origin_and_mismatched_headers_but_records_them() {
    let m = mock(false);
    let frame = call(1, POST_CUSTOMERS, customer("a@x.test"));
    let mut conn = http_conn(&[("origin", "http://evil.example")]);
    let reply = m.handle(&mut conn, frame.as_bytes()).unwrap();
    assert_eq!(reply.status, 403);
    let rec = &calls(&m)[0];
    assert!(!rec.executed);
    assert!(matches!(
        rec.outcome,
        Some(Outcome::Rejected { status: 403, .. })
    ));
    assert!(
        rec.headers
            .contains(&("origin".into(), "http://evil.example".into()))
    );

    let stateless = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": POST_CUSTOMERS, "arguments": customer("b@x.test"),
                   "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let mut conn = http_conn(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", GET_CUSTOMERS),
    ]);
    let reply = m.handle(&mut conn, stateless.as_bytes()).unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(replies(&reply)[0]["error"]["code"], -32020);
    assert!(matches!(
        calls(&m)[1].outcome,
        Some(Outcome::Rejected {
            status: 400,
            code: Some(-32020),
            ..
        })
    ));

    let mut conn = http_conn(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", POST_CUSTOMERS),
    ]);
    let reply = m.handle(&mut conn, stateless.as_bytes()).unwrap();
    assert_eq!((reply.status, reply.new_session.clone()), (200, None));
    assert!(calls(&m)[2].executed);
    assert_eq!(m.store().len(), 1);
}

#[test]
fn http_sessions_are_issued_at_initialize_and_required_strictly() {
    let m = mock(true);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": "2025-06-18", "capabilities": {}}})
    .to_string();
    let reply = m.handle(&mut http_conn(&[]), init.as_bytes()).unwrap();
    let sid = reply.new_session.clone().unwrap();
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    assert_eq!(
        m.handle(&mut http_conn(&[]), list.as_bytes())
            .unwrap()
            .status,
        400
    );
    let unknown = http_conn(&[
        ("mcp-session-id", "nope"),
        ("mcp-protocol-version", "2025-06-18"),
    ]);
    assert_eq!(
        m.handle(&mut { unknown }, list.as_bytes()).unwrap().status,
        404
    );
    let no_version = http_conn(&[("mcp-session-id", &sid)]);
    assert_eq!(
        m.handle(&mut { no_version }, list.as_bytes())
            .unwrap()
            .status,
        400
    );
    let mut good = http_conn(&[
        ("mcp-session-id", &sid),
        ("mcp-protocol-version", "2025-06-18"),
    ]);
    let reply = m.handle(&mut good, list.as_bytes()).unwrap();
    assert_eq!(reply.status, 200);
    let recs = m.ledger().records();
    assert_eq!(recs.last().and_then(|r| r.session.clone()), Some(sid));
    assert_eq!(
        recs.last().and_then(|r| r.identity.clone()),
        Some("bob".into())
    );
}

#[test]
fn latency_and_stalls_delay_only_executed_calls() {
    let m = Mock::in_memory(MockConfig {
        latency: std::time::Duration::from_millis(5),
        stall_every: 2,
        stall: std::time::Duration::from_millis(100),
        ..MockConfig::default()
    })
    .unwrap();
    let mut conn = m.stdio_conn(None);
    let delays: Vec<u128> = (0..4)
        .map(|i| {
            m.handle(&mut conn, call(i, GET_CUSTOMERS, json!({})).as_bytes())
                .unwrap()
                .delay
                .as_millis()
        })
        .collect();
    assert_eq!(delays, [5, 105, 5, 105]);
    let ping = m
        .handle(&mut conn, br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#)
        .unwrap();
    assert!(ping.delay.is_zero());
}
