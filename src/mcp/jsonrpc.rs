//! The JSON-RPC 2.0 envelope, kept loose on purpose.
//!
//! Messages stay `serde_json::Value` until they are classified, because both
//! sides of gauntlet must see a frame exactly as sent: the mock records what
//! arrived and the attack client sends what a well-typed SDK would refuse to.

use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// One frame off the wire: a single message or a batch (an array).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Single(Value),
    Batch(Vec<Value>),
}

/// Why bytes are not a JSON-RPC frame at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame is not valid json: {0}")]
    Json(String),
    #[error("frame is neither an object nor an array")]
    NotAnObjectOrArray,
    #[error("frame is an empty batch")]
    EmptyBatch,
}

/// Parses one frame. A leading UTF-8 byte-order mark is not skipped: a
/// strict JSON parser refuses it, and whether a peer tolerates it is exactly
/// what some attacks probe.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, ParseError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
    match value {
        Value::Array(items) if items.is_empty() => Err(ParseError::EmptyBatch),
        Value::Array(items) => Ok(Frame::Batch(items)),
        v @ Value::Object(_) => Ok(Frame::Single(v)),
        _ => Err(ParseError::NotAnObjectOrArray),
    }
}

/// A classified message. Ids are kept as raw values so a reply echoes back
/// exactly what was sent, odd types included.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    Response {
        id: Value,
        result: Value,
    },
    Error {
        id: Value,
        error: ErrorObject,
    },
}

/// The `error` member of an error response.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Why a JSON value is not a valid JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("message is not an object")]
    NotAnObject,
    #[error("`jsonrpc` is missing or not \"2.0\"")]
    Version,
    #[error("`method` is not a string")]
    MethodType,
    #[error("`id` must be a string or a number, got {0}")]
    IdType(&'static str),
    #[error("`params` must be an object or an array")]
    ParamsType,
    #[error("response has neither `result` nor a well-formed `error`")]
    ResponseShape,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Classifies a value by the JSON-RPC 2.0 rules, with MCP's refinement that
/// request ids are never null.
pub fn classify(value: &Value) -> Result<Message, Invalid> {
    let obj = value.as_object().ok_or(Invalid::NotAnObject)?;
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Invalid::Version);
    }
    let id = obj.get("id");
    if let Some(method) = obj.get("method") {
        if let Some(id) = id
            && !(id.is_string() || id.is_number())
        {
            return Err(Invalid::IdType(kind(id)));
        }
        let method = method.as_str().ok_or(Invalid::MethodType)?.to_owned();
        let params = obj.get("params").cloned();
        if let Some(p) = &params
            && !(p.is_object() || p.is_array())
        {
            return Err(Invalid::ParamsType);
        }
        return Ok(match id {
            Some(id) => Message::Request {
                id: id.clone(),
                method,
                params,
            },
            None => Message::Notification { method, params },
        });
    }
    let id = id.cloned().unwrap_or(Value::Null);
    if let Some(result) = obj.get("result") {
        return Ok(Message::Response {
            id,
            result: result.clone(),
        });
    }
    match obj.get("error").map(|e| serde_json::from_value(e.clone())) {
        Some(Ok(error)) => Ok(Message::Error { id, error }),
        _ => Err(Invalid::ResponseShape),
    }
}

/// Builds a request object.
pub fn request(id: impl Into<Value>, method: &str, params: Option<Value>) -> Value {
    let mut obj = Map::with_capacity(4);
    obj.insert("jsonrpc".into(), Value::from("2.0"));
    obj.insert("id".into(), id.into());
    obj.insert("method".into(), Value::from(method));
    if let Some(p) = params {
        obj.insert("params".into(), p);
    }
    Value::Object(obj)
}

/// Builds a notification object.
pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut obj = Map::with_capacity(3);
    obj.insert("jsonrpc".into(), Value::from("2.0"));
    obj.insert("method".into(), Value::from(method));
    if let Some(p) = params {
        obj.insert("params".into(), p);
    }
    Value::Object(obj)
}

/// Builds a success response echoing `id`.
pub fn result_response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Builds an error response echoing `id` (null when the id is unknown).
pub fn error_response(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = Map::with_capacity(3);
    error.insert("code".into(), Value::from(code));
    error.insert("message".into(), Value::from(message));
    if let Some(d) = data {
        error.insert("data".into(), d);
    }
    json!({"jsonrpc": "2.0", "id": id, "error": Value::Object(error)})
}

/// The id of a message-shaped value, if it has a usable one.
pub fn id_of(value: &Value) -> Option<&Value> {
    value
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
}

/// Whether a reply denies the call, in either form real enforcers use: a
/// JSON-RPC error, or a `tools/call` result flagged `isError`.
pub fn is_denial(reply: &Value) -> bool {
    reply.get("error").is_some()
        || reply
            .get("result")
            .and_then(|r| r.get("isError"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

/// The human-readable text of a reply: the error message and data, or the
/// text content blocks of a result. Kept for reports.
pub fn reply_text(reply: &Value) -> String {
    if let Some(err) = reply.get("error") {
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
        return match err.get("data") {
            Some(d) => format!("{msg} {d}"),
            None => msg.to_owned(),
        };
    }
    let blocks = reply
        .get("result")
        .and_then(|r| r.get("content"))
        .and_then(Value::as_array);
    blocks
        .map(|b| {
            b.iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind() {
        let req = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
        assert!(matches!(classify(&req), Ok(Message::Request { .. })));
        let note = json!({"jsonrpc":"2.0","method":"tools/call","params":{}});
        assert!(matches!(classify(&note), Ok(Message::Notification { .. })));
        let res = json!({"jsonrpc":"2.0","id":"a","result":{}});
        assert!(matches!(classify(&res), Ok(Message::Response { .. })));
        let err = json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}});
        assert!(matches!(classify(&err), Ok(Message::Error { .. })));
    }

    #[test]
    fn refuses_malformed_messages() {
        let cases = [
            (json!([]), Invalid::NotAnObject),
            (json!({"id":1,"method":"x"}), Invalid::Version),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"x"}),
                Invalid::IdType("null"),
            ),
            (
                json!({"jsonrpc":"2.0","id":[1],"method":"x"}),
                Invalid::IdType("an array"),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":7}),
                Invalid::MethodType,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":"x","params":"s"}),
                Invalid::ParamsType,
            ),
            (json!({"jsonrpc":"2.0","id":1}), Invalid::ResponseShape),
        ];
        for (value, want) in cases {
            assert_eq!(classify(&value), Err(want), "{value}");
        }
    }

    #[test]
    fn parses_frames() {
        assert!(matches!(parse_frame(br#"{"a":1}"#), Ok(Frame::Single(_))));
        assert!(
            matches!(parse_frame(br#"[{"a":1},{"b":2}]"#), Ok(Frame::Batch(v)) if v.len() == 2)
        );
        assert_eq!(parse_frame(b"[]"), Err(ParseError::EmptyBatch));
        assert_eq!(parse_frame(b"3"), Err(ParseError::NotAnObjectOrArray));
        assert!(matches!(
            parse_frame(b"{not json"),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            parse_frame(b"\xEF\xBB\xBF{}"),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn recognises_both_denial_forms() {
        let rpc = error_response(&json!(1), -32000, "rate limited", None);
        let tool = json!({"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[{"type":"text","text":"[DENIED] no"}]}});
        let ok = result_response(&json!(1), json!({"content":[]}));
        assert!(is_denial(&rpc) && is_denial(&tool) && !is_denial(&ok));
        assert_eq!(reply_text(&tool), "[DENIED] no");
        assert_eq!(reply_text(&rpc), "rate limited");
    }
}
