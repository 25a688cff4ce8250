//! Sorting a client frame: forward it, refuse it, drop it, or judge it as a
//! tool call. Pure apart from the session's in-flight table.
//!
//! Everything the proxy cannot judge is refused here, before any policy is
//! consulted, and nothing refused is forwarded.

use serde_json::{Map, Value, json};

use super::strict::{self, StrictError};
use crate::mcp::jsonrpc::{self, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};
use crate::names::lenient_key;

/// The method every policy decision is about.
pub const TOOLS_CALL: &str = "tools/call";

/// Ids of the proxy's own requests start with this. Client requests may
/// not use such ids at all: one sent just before the proxy's own request
/// would have its reply taken for the proxy's schemas.
pub const OWN_ID_PREFIX: &str = "gauntlet-enforcer/";

/// What to do with one client frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    /// Forward the bytes unchanged.
    Forward(Forward),
    /// Refuse: send this reply (if any) to the client, forward nothing.
    Refuse(Refusal),
    /// A well-formed `tools/call` request, to be judged.
    Call(CallFrame),
}

/// A frame that passes through, and what the proxy must remember of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Forward {
    /// A request the proxy tracks until its reply (by id key).
    Request { key: String, list: bool },
    /// `notifications/initialized`: the handshake is over.
    Initialized,
    /// Anything else (other notifications, responses to the server).
    Plain,
}

/// A refused frame: the reply for the client and what goes to the audit log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// The reply (a single error, or an array for a batch); `None` when the
    /// frame expects no reply (a notification).
    pub reply: Option<Value>,
    /// One entry per refused message, for the audit log.
    pub audit: Vec<Refused>,
}

/// One refused message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refused {
    pub id: Value,
    pub tool: Option<String>,
    pub kind: &'static str,
    pub reason: String,
}

/// A `tools/call` request that passed every structural check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallFrame {
    pub id: Value,
    pub key: String,
    pub tool: String,
    /// Always an object (`{}` when the call had none).
    pub args: Value,
    /// `params._meta`, reused when the proxy asks upstream for its tools on
    /// a stateless revision.
    pub meta: Option<Value>,
}

/// The in-flight key of an id: its JSON text, so `1` and `"1"` stay apart.
pub(crate) fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A protocol-level refusal reply, with the same `data` shape as denials.
pub(crate) fn protocol_error(id: &Value, code: i64, kind: &str, reason: &str) -> Value {
    jsonrpc::error_response(
        id,
        code,
        reason,
        Some(json!({"kind": kind, "reason": reason})),
    )
}

fn refuse(
    id: Value,
    code: i64,
    kind: &'static str,
    reason: String,
    tool: Option<String>,
) -> Inbound {
    let reply = protocol_error(&id, code, kind, &reason);
    Inbound::Refuse(Refusal {
        reply: Some(reply),
        audit: vec![Refused {
            id,
            tool,
            kind,
            reason,
        }],
    })
}

fn usable_id(v: &Value) -> Value {
    jsonrpc::id_of(v).cloned().unwrap_or(Value::Null)
}

/// Refuses a frame the reader could not even deliver (oversized, bad UTF-8).
pub(crate) fn unreadable(kind: &'static str, reason: String) -> Inbound {
    let code = if kind == "oversized" {
        INVALID_REQUEST
    } else {
        PARSE_ERROR
    };
    refuse(Value::Null, code, kind, reason, None)
}

/// Sorts one client frame.
pub(crate) fn sort(bytes: &[u8]) -> Inbound {
    let value = match strict::parse(bytes) {
        Ok(v) => v,
        Err(StrictError::Json(e)) => {
            return refuse(
                Value::Null,
                PARSE_ERROR,
                "parse-error",
                format!("parse error: {e}"),
                None,
            );
        }
        Err(StrictError::AmbiguousKeys(why)) => {
            // Reply to the id serde would see, if it has one; the frame
            // itself goes nowhere.
            let loose: Option<Value> = serde_json::from_slice(bytes).ok();
            let id = loose.as_ref().map(usable_id).unwrap_or(Value::Null);
            let tool = loose
                .as_ref()
                .and_then(|v| v.pointer("/params/name"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            return refuse(id, INVALID_REQUEST, "ambiguous-keys", why, tool);
        }
    };
    match value {
        Value::Object(obj) => sort_message(obj),
        Value::Array(items) => batch(&items),
        _ => refuse(
            Value::Null,
            INVALID_REQUEST,
            "invalid-request",
            "frame is neither an object nor an array".into(),
            None,
        ),
    }
}

/// Batches are refused whole; see the module docs of `enforcer` for why.
fn batch(items: &[Value]) -> Inbound {
    let reason = "batches are refused: each message must be sent on its own";
    let mut replies = Vec::new();
    let mut audit = Vec::new();
    for item in items {
        let id = usable_id(item);
        let is_request = item.get("method").is_some() && !id.is_null();
        if is_request {
            replies.push(protocol_error(&id, INVALID_REQUEST, "batch", reason));
        }
        let tool = item
            .pointer("/params/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        audit.push(Refused {
            id,
            tool,
            kind: "batch",
            reason: reason.into(),
        });
    }
    if items.is_empty() {
        replies.push(protocol_error(
            &Value::Null,
            INVALID_REQUEST,
            "batch",
            "empty batch",
        ));
    }
    Inbound::Refuse(Refusal {
        reply: (!replies.is_empty()).then_some(Value::Array(replies)),
        audit,
    })
}

fn sort_message(mut obj: Map<String, Value>) -> Inbound {
    let id = obj.get("id").cloned();
    let reply_id = id
        .as_ref()
        .filter(|i| i.is_string() || i.is_number())
        .cloned()
        .unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return refuse(
            reply_id,
            INVALID_REQUEST,
            "invalid-request",
            "`jsonrpc` is missing or not \"2.0\"".into(),
            None,
        );
    }
    let Some(method) = obj.get("method") else {
        // A response to a server request.
        if reply_id.is_null() || !(obj.contains_key("result") || obj.contains_key("error")) {
            return refuse(
                reply_id,
                INVALID_REQUEST,
                "invalid-request",
                "message has no `method` and is not a well-formed response".into(),
                None,
            );
        }
        return Inbound::Forward(Forward::Plain);
    };
    let Some(method) = method.as_str().map(str::to_owned) else {
        return refuse(
            reply_id,
            INVALID_REQUEST,
            "invalid-request",
            "`method` is not a string".into(),
            None,
        );
    };
    if let Some(id) = &id
        && !(id.is_string() || id.is_number())
    {
        return refuse(
            Value::Null,
            INVALID_REQUEST,
            "invalid-request",
            "`id` must be a string or a number".into(),
            None,
        );
    }
    if let Some(p) = obj.get("params")
        && !(p.is_object() || p.is_array())
    {
        return refuse(
            reply_id,
            INVALID_REQUEST,
            "invalid-request",
            "`params` must be an object or an array".into(),
            None,
        );
    }
    let is_call = method == TOOLS_CALL;
    if !is_call && lenient_key(&method) == TOOLS_CALL {
        // A lenient server may route `Tools/Call` to its tool handler.
        let tool = obj
            .get("params")
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut r = refuse(
            reply_id,
            INVALID_REQUEST,
            "method-variant",
            format!("method `{method}` is a variant of `tools/call`"),
            tool,
        );
        if id.is_none()
            && let Inbound::Refuse(refusal) = &mut r
        {
            refusal.reply = None;
        }
        return r;
    }
    if id
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with(OWN_ID_PREFIX))
    {
        return refuse(
            reply_id,
            INVALID_REQUEST,
            "reserved-id",
            format!("request ids starting with `{OWN_ID_PREFIX}` are reserved by the enforcer"),
            None,
        );
    }
    let Some(id) = id else {
        if is_call {
            let tool = obj
                .get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Inbound::Refuse(Refusal {
                reply: None,
                audit: vec![Refused {
                    id: Value::Null,
                    tool,
                    kind: "notification",
                    reason: "a `tools/call` sent as a notification is dropped".into(),
                }],
            });
        }
        if method == "notifications/initialized" {
            return Inbound::Forward(Forward::Initialized);
        }
        return Inbound::Forward(Forward::Plain);
    };
    if !is_call {
        return Inbound::Forward(Forward::Request {
            key: id_key(&id),
            list: method == "tools/list",
        });
    }
    let params = match obj.remove("params") {
        Some(Value::Object(p)) => p,
        _ => {
            return refuse(
                id,
                INVALID_PARAMS,
                "invalid-params",
                "`params` of `tools/call` must be an object".into(),
                None,
            );
        }
    };
    call_frame(id, params)
}

fn call_frame(id: Value, mut params: Map<String, Value>) -> Inbound {
    let tool = match params.remove("name") {
        Some(Value::String(s)) => s,
        _ => {
            return refuse(
                id,
                INVALID_PARAMS,
                "invalid-params",
                "`params.name` of `tools/call` must be a string".into(),
                None,
            );
        }
    };
    let args = match params.remove("arguments") {
        None => Value::Object(Map::new()),
        Some(a @ Value::Object(_)) => a,
        Some(_) => {
            return refuse(
                id,
                INVALID_PARAMS,
                "invalid-params",
                "`params.arguments` of `tools/call` must be an object".into(),
                Some(tool),
            );
        }
    };
    Inbound::Call(CallFrame {
        key: id_key(&id),
        id,
        tool,
        args,
        meta: params.remove("_meta"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(raw: &str) -> (&'static str, Option<Value>) {
        match sort(raw.as_bytes()) {
            Inbound::Refuse(r) => (r.audit[0].kind, r.reply),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn well_formed_calls_are_extracted() {
        let raw = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"T","arguments":{"a":1},"_meta":{"k":1}}}"#;
        let Inbound::Call(c) = sort(raw.as_bytes()) else {
            panic!("not a call")
        };
        assert_eq!(
            (c.id, c.key.as_str(), c.tool.as_str(), c.args, c.meta),
            (json!(7), "7", "T", json!({"a":1}), Some(json!({"k":1})))
        );
        let raw = r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"T"}}"#;
        let Inbound::Call(c) = sort(raw.as_bytes()) else {
            panic!("not a call")
        };
        assert_eq!((c.key.as_str(), c.args), ("\"x\"", json!({})));
    }

    #[test]
    fn everything_unjudgeable_is_refused() {
        let cases = [
            (r#"{not json"#, "parse-error", Some(PARSE_ERROR)),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"A","name":"B"}}"#,
                "ambiguous-keys",
                Some(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}"#,
                "ambiguous-keys",
                Some(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
                "invalid-params",
                Some(INVALID_PARAMS),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
                "invalid-params",
                Some(INVALID_PARAMS),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
                "invalid-params",
                Some(INVALID_PARAMS),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"T","arguments":"{}"}}"#,
                "invalid-params",
                Some(INVALID_PARAMS),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"T","arguments":null}}"#,
                "invalid-params",
                Some(INVALID_PARAMS),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"T"}}"#,
                "method-variant",
                Some(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":" tools/call","params":{"name":"T"}}"#,
                "method-variant",
                Some(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"T"}}"#,
                "notification",
                None,
            ),
            (
                r#"{"id":1,"method":"tools/call","params":{"name":"T"}}"#,
                "invalid-request",
                Some(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"T"}}"#,
                "invalid-request",
                Some(INVALID_REQUEST),
            ),
            (
                r#"{"jsonrpc":"2.0","id":[1],"method":"tools/list"}"#,
                "invalid-request",
                Some(INVALID_REQUEST),
            ),
            (r#""tools/call""#, "invalid-request", Some(INVALID_REQUEST)),
            (
                r#"{"jsonrpc":"2.0","id":"gauntlet-enforcer/1","method":"tools/list"}"#,
                "reserved-id",
                Some(INVALID_REQUEST),
            ),
        ];
        for (raw, kind, code) in cases {
            let (got, reply) = kind_of(raw);
            assert_eq!(got, kind, "{raw}");
            let got_code = reply
                .as_ref()
                .and_then(|r| r.pointer("/error/code"))
                .and_then(Value::as_i64);
            assert_eq!(got_code, code, "{raw}");
        }
    }

    proptest::proptest! {
        /// Sorting never panics, and nothing that is not a single
        /// well-formed `tools/call` request comes out as a call.
        #[test]
        fn sorting_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            if let Inbound::Call(c) = sort(&bytes) {
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                proptest::prop_assert_eq!(&v["method"], "tools/call");
                proptest::prop_assert!(c.args.is_object());
            }
        }

        /// Any call frame with a key repeated in its arguments, in any case,
        /// is refused.
        #[test]
        fn repeated_argument_keys_are_always_refused(key in "[a-z]{1,8}", upper in proptest::bool::ANY) {
            let twin = if upper { key.to_uppercase() } else { key.clone() };
            let raw = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"T","arguments":{{"{key}":1,"{twin}":2}}}}}}"#
            );
            let refused = matches!(sort(raw.as_bytes()), Inbound::Refuse(r) if r.audit[0].kind == "ambiguous-keys");
            proptest::prop_assert!(refused);
        }
    }

    #[test]
    fn batches_are_refused_with_one_error_per_request() {
        let raw = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"A"}},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"b","method":"ping"}]"#;
        let Inbound::Refuse(r) = sort(raw.as_bytes()) else {
            panic!("batch not refused")
        };
        let reply = r.reply.unwrap();
        let ids: Vec<&Value> = reply.as_array().unwrap().iter().map(|e| &e["id"]).collect();
        assert_eq!(ids, vec![&json!(1), &json!("b")]);
        assert_eq!(r.audit.len(), 3);
        assert_eq!(r.audit[0].tool.as_deref(), Some("A"));
    }

    #[test]
    fn other_traffic_passes_and_is_tracked() {
        let fwd = |raw: &str| match sort(raw.as_bytes()) {
            Inbound::Forward(f) => f,
            other => panic!("not forwarded: {other:?}"),
        };
        assert_eq!(
            fwd(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#),
            Forward::Request {
                key: "3".into(),
                list: true
            }
        );
        assert_eq!(
            fwd(r#"{"jsonrpc":"2.0","id":"i","method":"initialize","params":{}}"#),
            Forward::Request {
                key: "\"i\"".into(),
                list: false
            }
        );
        assert_eq!(
            fwd(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Forward::Initialized
        );
        assert_eq!(
            fwd(r#"{"jsonrpc":"2.0","id":9,"result":{}}"#),
            Forward::Plain
        );
    }
}
