//! What a valid tool call does to the store, and what it answers.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::catalogue::{Effect, Tool};
use super::store::{ListQuery, Store};
use crate::mcp::jsonrpc::INTERNAL_ERROR;

/// The `reference_id` that makes PostCustomers create the customer and then
/// answer a JSON-RPC internal error: a partial failure, for attacks on
/// enforcers that refund quota when upstream fails.
pub const WRITE_THEN_ERROR: &str = "gauntlet:write-then-error";

/// The `reference_id` that makes PostCustomers kill the mock process before
/// it answers: the upstream crashing mid-call, for fail-open probes. The
/// arrival is already in the ledger by then.
pub const CRASH: &str = "gauntlet:crash";

/// What executing a tool came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Effected {
    /// A success payload, sent as text and as `structuredContent`.
    Ok(Value),
    /// A failure reported in-band, as an `isError` result.
    ToolError(String),
    /// A failure reported as a JSON-RPC error (after any write happened).
    RpcError { code: i64, message: String },
}

/// The result of running one tool, and the customer it touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub effected: Effected,
    pub touched: Option<String>,
}

fn payload(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
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
    let customer_id = args
        .get("customer_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    match tool.effect() {
        Effect::Create => {
            let customer = store.create(args, seq);
            let touched = Some(customer.id.clone());
            let effected =
                if args.get("reference_id").and_then(Value::as_str) == Some(WRITE_THEN_ERROR) {
                    Effected::RpcError {
                        code: INTERNAL_ERROR,
                        message: format!(
                            "internal error: customer `{}` was created but syncing it failed",
                            customer.id
                        ),
                    }
                } else {
                    Effected::Ok(payload(&customer))
                };
            Execution { effected, touched }
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
                effected: Effected::Ok(json!({"deleted": true, "id": c.id})),
            },
            None => not_found(customer_id),
        },
        Effect::Echo => Execution {
            effected: Effected::Ok(json!({"tool": tool.name(), "arguments": args})),
            touched: None,
        },
    }
}

/// A `tools/call` result carrying `payload`. `structured` adds
/// `structuredContent`, which revisions before 2025-06-18 do not know.
pub fn success_result(payload: &Value, structured: bool) -> Value {
    let mut result = Map::with_capacity(3);
    result.insert(
        "content".into(),
        json!([{"type": "text", "text": payload.to_string()}]),
    );
    if structured {
        result.insert("structuredContent".into(), payload.clone());
    }
    result.insert("isError".into(), Value::Bool(false));
    Value::Object(result)
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
        assert!(matches!(&made.effected, Effected::Ok(v) if v["id"] == "WC_000001"));
        assert_eq!(store.get("WC_000001").map(|c| c.created_seq), Some(7));

        let listed = execute(tool(GET_CUSTOMERS), &Map::new(), &store, 8);
        assert!(matches!(&listed.effected, Effected::Ok(v) if v["total"] == 1));

        let id = obj(json!({"customer_id": "WC_000001"}));
        assert!(matches!(
            execute(tool(GET_CUSTOMER_BY_ID), &id, &store, 9).effected,
            Effected::Ok(_)
        ));
        let upd = obj(json!({"customer_id": "WC_000001", "credit_limit": 50}));
        assert!(
            matches!(execute(tool(PUT_CUSTOMER), &upd, &store, 10).effected,
            Effected::Ok(v) if v["credit_limit"] == 50.0)
        );
        let del = execute(tool(DELETE_CUSTOMER), &id, &store, 11);
        assert_eq!(del.touched.as_deref(), Some("WC_000001"));
        assert!(store.is_empty());
        let again = execute(tool(DELETE_CUSTOMER), &id, &store, 12);
        assert_eq!(
            again.effected,
            Effected::ToolError("customer `WC_000001` not found".into())
        );
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
    fn results_have_the_tools_call_shape() {
        let ok = success_result(&json!({"id": 1}), true);
        assert_eq!(ok["content"][0]["text"], "{\"id\":1}");
        assert_eq!(ok["structuredContent"]["id"], 1);
        assert!(
            success_result(&json!({}), false)
                .get("structuredContent")
                .is_none()
        );
        assert_eq!(error_result("no")["isError"], true);
    }
}
