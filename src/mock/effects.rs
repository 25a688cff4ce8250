//! What a valid tool call does to the store, and what it answers.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::catalogue::{Effect, Tool};
use super::store::{ListQuery, Store};
use crate::mcp::jsonrpc::INTERNAL_ERROR;

/// The argument value that makes a call run and then answer a JSON-RPC
/// internal error: a partial failure, for attacks on enforcers that refund
/// quota when upstream fails. Any tool honours it, bundled or from a
/// manifest, as the value of any top-level argument (PostCustomers takes it
/// as its `reference_id`).
pub const WRITE_THEN_ERROR: &str = "gauntlet:write-then-error";

/// The argument value that makes the mock process die before it answers:
/// the upstream crashing mid-call, for fail-open probes. The arrival is
/// already in the ledger by then. Honoured like [`WRITE_THEN_ERROR`].
pub const CRASH: &str = "gauntlet:crash";

/// Whether a call's arguments hold `marker` ([`WRITE_THEN_ERROR`] or
/// [`CRASH`]) as the value of a top-level argument. Only the top level is
/// looked at: every tool call pays for this check.
pub fn carries(args: &Map<String, Value>, marker: &str) -> bool {
    args.values().any(|v| v.as_str() == Some(marker))
}

/// [`carries`] for arguments as a recorded value (anything but an object
/// carries nothing).
pub fn value_carries(args: Option<&Value>, marker: &str) -> bool {
    args.and_then(Value::as_object)
        .is_some_and(|a| carries(a, marker))
}

/// What executing a tool came to.
#[derive(Debug, Clone)]
pub enum Effected {
    /// A success payload, sent as text and as `structuredContent`;
    /// serialised once, straight from the store's types.
    Ok(Box<RawValue>),
    /// A failure reported in-band, as an `isError` result.
    ToolError(String),
    /// A failure reported as a JSON-RPC error (after any write happened).
    RpcError { code: i64, message: String },
}

/// The result of running one tool, and the customer it touched.
#[derive(Debug, Clone)]
pub struct Execution {
    pub effected: Effected,
    pub touched: Option<String>,
}

fn payload(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

fn not_found(id: &str) -> Execution {
    Execution {
        effected: Effected::ToolError(format!("customer `{id}` not found")),
        touched: None,
    }
}

/// Runs `tool` with arguments already checked against its schema. `seq` is
/// the ledger seq of the call, kept on created customers.
pub fn execute(tool: &Tool, args: &Map<String, Value>, store: &Store, seq: u64) -> Execution {
    let mut run = effect(tool, args, store, seq);
    if matches!(run.effected, Effected::Ok(_)) && carries(args, WRITE_THEN_ERROR) {
        let message = match (&run.touched, tool.effect()) {
            (Some(id), Effect::Create) => {
                format!("internal error: customer `{id}` was created but syncing it failed")
            }
            (Some(id), _) => {
                format!("internal error: customer `{id}` was changed but syncing it failed")
            }
            (None, _) => format!(
                "internal error: `{}` ran but syncing its result failed",
                tool.name()
            ),
        };
        run.effected = Effected::RpcError {
            code: INTERNAL_ERROR,
            message,
        };
    }
    run
}

fn effect(tool: &Tool, args: &Map<String, Value>, store: &Store, seq: u64) -> Execution {
    let customer_id = args
        .get("customer_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    match tool.effect() {
        Effect::Create => {
            let customer = store.create(args, seq);
            Execution {
                touched: Some(customer.id.clone()),
                effected: Effected::Ok(payload(&customer)),
            }
        }
        Effect::List => Execution {
            effected: Effected::Ok(payload(&store.list(&ListQuery::from_args(args)))),
            touched: None,
        },
        Effect::Get => match store.get(customer_id) {
            Some(c) => Execution {
                touched: None,
                effected: Effected::Ok(payload(&c)),
            },
            None => not_found(customer_id),
        },
        Effect::Update => match store.update(customer_id, args) {
            Some(c) => Execution {
                touched: Some(c.id.clone()),
                effected: Effected::Ok(payload(&c)),
            },
            None => not_found(customer_id),
        },
        Effect::Delete => match store.delete(customer_id) {
            Some(c) => Execution {
                touched: Some(c.id.clone()),
                effected: Effected::Ok(payload(&json!({"deleted": true, "id": c.id}))),
            },
            None => not_found(customer_id),
        },
        Effect::Echo => {
            let echo = json!({"tool": tool.name(), "arguments": args});
            Execution {
                effected: Effected::Ok(payload(&tool.fit_output(echo))),
                touched: None,
            }
        }
    }
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallResult<'a> {
    content: [TextContent<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    structured_content: Option<&'a RawValue>,
    is_error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_type: Option<&'static str>,
}

#[derive(Serialize)]
struct ResultResponse<'a, R> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: R,
}

/// The whole JSON-RPC response for a successful call carrying `payload`,
/// written in one pass with no intermediate `Value`: this is the hot path.
/// `structured` adds `structuredContent` (unknown before 2025-06-18);
/// `complete` adds 2026-07-28's `resultType`.
pub fn success_response(
    id: &Value,
    payload: &RawValue,
    structured: bool,
    complete: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ResultResponse {
        jsonrpc: "2.0",
        id,
        result: CallResult {
            content: [TextContent {
                kind: "text",
                text: payload.get(),
            }],
            structured_content: structured.then_some(payload),
            is_error: false,
            result_type: complete.then_some("complete"),
        },
    })
}

/// A `tools/call` result flagged `isError`, with `text` as its content.
pub fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::catalogue::{
        Catalogue, DELETE_CUSTOMER, GET_CUSTOMER_BY_ID, GET_CUSTOMERS, POST_CUSTOMERS, PUT_CUSTOMER,
    };
    use crate::names::NameMatching;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn each_effect_acts_on_the_store() {
        let cat = Catalogue::bundled().unwrap();
        let tool = |n: &str| cat.resolve(n, NameMatching::Exact).unwrap();
        let store = Store::new();
        let args =
            obj(json!({"company_name": "Acme", "first_name": "Ada", "email": "a@acme.test"}));
        let made = execute(tool(POST_CUSTOMERS), &args, &store, 7);
        assert_eq!(made.touched.as_deref(), Some("WC_000001"));
        assert!(
            matches!(&made.effected, Effected::Ok(v) if v.get().contains(r#""id":"WC_000001""#))
        );
        assert_eq!(store.get("WC_000001").map(|c| c.created_seq), Some(7));

        let listed = execute(tool(GET_CUSTOMERS), &Map::new(), &store, 8);
        assert!(matches!(&listed.effected, Effected::Ok(v) if v.get().contains(r#""total":1"#)));

        let id = obj(json!({"customer_id": "WC_000001"}));
        assert!(matches!(
            execute(tool(GET_CUSTOMER_BY_ID), &id, &store, 9).effected,
            Effected::Ok(_)
        ));
        let upd = obj(json!({"customer_id": "WC_000001", "credit_limit": 50}));
        assert!(
            matches!(execute(tool(PUT_CUSTOMER), &upd, &store, 10).effected,
            Effected::Ok(v) if v.get().contains(r#""credit_limit":50.0"#))
        );
        let del = execute(tool(DELETE_CUSTOMER), &id, &store, 11);
        assert_eq!(del.touched.as_deref(), Some("WC_000001"));
        assert!(store.is_empty());
        let again = execute(tool(DELETE_CUSTOMER), &id, &store, 12);
        assert!(matches!(
            again.effected,
            Effected::ToolError(t) if t == "customer `WC_000001` not found"
        ));
    }

    #[test]
    fn write_then_error_writes_and_then_fails() {
        let cat = Catalogue::bundled().unwrap();
        let post = cat.resolve(POST_CUSTOMERS, NameMatching::Exact).unwrap();
        let store = Store::new();
        let args = obj(json!({"company_name": "Acme", "first_name": "Ada",
                              "email": "a@acme.test", "reference_id": WRITE_THEN_ERROR}));
        let ran = execute(post, &args, &store, 1);
        assert!(matches!(
            ran.effected,
            Effected::RpcError {
                code: INTERNAL_ERROR,
                ..
            }
        ));
        assert_eq!(ran.touched.as_deref(), Some("WC_000001"));
        assert_eq!(store.len(), 1);
        assert!(post.validate(&Value::Object(args)).is_empty());
    }

    #[test]
    fn a_foreign_tool_echoes_and_honours_the_markers_in_any_argument() {
        let cat = Catalogue::from_manifest(
            r#"[{"name": "create_payment", "inputSchema": {"type": "object"}}]"#,
            "m.json",
        )
        .unwrap();
        let tool = cat.resolve("create_payment", NameMatching::Exact).unwrap();
        assert_eq!(tool.effect(), Effect::Echo);
        let store = Store::new();
        let args = obj(json!({"amount": 5, "customer": "cus_1"}));
        let ran = execute(tool, &args, &store, 1);
        let Effected::Ok(echo) = ran.effected else {
            panic!("{:?}", ran.effected)
        };
        let echo: Value = serde_json::from_str(echo.get()).unwrap();
        assert_eq!(
            echo,
            json!({"tool": "create_payment", "arguments": {"amount": 5, "customer": "cus_1"}})
        );
        let failing = obj(json!({"amount": 5, "customer": WRITE_THEN_ERROR}));
        assert!(matches!(
            execute(tool, &failing, &store, 2).effected,
            Effected::RpcError { code: INTERNAL_ERROR, message }
                if message == "internal error: `create_payment` ran but syncing its result failed"
        ));
        assert!(store.is_empty(), "an echo touches no customer");
        assert!(carries(&obj(json!({"note": CRASH})), CRASH));
        assert!(!carries(&obj(json!({"nested": {"note": CRASH}})), CRASH));
        assert!(value_carries(Some(&json!({"a": CRASH})), CRASH));
        assert!(!value_carries(Some(&json!([CRASH])), CRASH));
    }

    #[test]
    fn results_have_the_tools_call_shape() {
        let payload = payload(&json!({"id": 1}));
        let bytes = success_response(&json!(7), &payload, true, false).unwrap();
        let ok: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(ok["id"], 7);
        assert_eq!(ok["result"]["content"][0]["text"], "{\"id\":1}");
        assert_eq!(ok["result"]["structuredContent"]["id"], 1);
        assert_eq!(ok["result"]["isError"], false);
        assert!(ok["result"].get("resultType").is_none());
        let bytes = success_response(&json!("a"), &payload, false, true).unwrap();
        let bare: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(bare["result"].get("structuredContent").is_none());
        assert_eq!(bare["result"]["resultType"], "complete");
        assert_eq!(error_result("no")["isError"], true);
    }
}
