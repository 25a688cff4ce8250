//! Frame mutations: one `tools/call` written the ways a parser might
//! misread it. Each returns the frame's text; the fuzzer sends it raw.

use serde_json::{Value, json};

/// What a mutated frame changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutation {
    /// A JSON-RPC batch: an allowed call, then the target call.
    Batch,
    /// The call without an `id`.
    Notification,
    /// `params.name` twice: the allowed name and the target.
    DuplicateKey,
    /// A second, case-variant `Name` / `Params` key.
    CaseKey,
    /// A number, negative, fractional or huge id.
    IdType,
    /// One id for every such frame of a sequence, so later calls reuse the
    /// id of earlier ones. (Not two in one batch: the harness's client
    /// cannot tell their replies apart.)
    IdReuse,
    /// `params` or `arguments` of another shape than an object.
    ParamsShape,
    /// A byte-order mark, `\u` escapes in the name, or a method in odd case.
    Encoding,
    /// HTTP only: routing headers naming the allowed tool.
    HeaderMismatch,
}

impl Mutation {
    /// Every mutation; `HeaderMismatch` only means something over HTTP.
    pub const ALL: [Mutation; 9] = [
        Mutation::Batch,
        Mutation::Notification,
        Mutation::DuplicateKey,
        Mutation::CaseKey,
        Mutation::IdType,
        Mutation::IdReuse,
        Mutation::ParamsShape,
        Mutation::Encoding,
        Mutation::HeaderMismatch,
    ];

    /// The word used in the coverage summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutation::Batch => "batch",
            Mutation::Notification => "notification",
            Mutation::DuplicateKey => "duplicate-key",
            Mutation::CaseKey => "case-key",
            Mutation::IdType => "id-type",
            Mutation::IdReuse => "id-reuse",
            Mutation::ParamsShape => "params-shape",
            Mutation::Encoding => "encoding",
            Mutation::HeaderMismatch => "header-mismatch",
        }
    }
}

/// A mutated frame: its text and, over HTTP, headers to add.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub text: String,
    pub headers: Vec<(String, String)>,
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn call(id: &Value, name: &str, args: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": args}})
}

/// The `pick`th frame of kind `m` calling `target` (`allowed` is an
/// innocent tool to hide it behind), with request id `fz-{id}`.
pub fn frame(
    m: Mutation,
    pick: usize,
    target: &str,
    allowed: &str,
    args: &Value,
    id: u64,
) -> Frame {
    let sid = json!(format!("fz-{id}"));
    let a = args.to_string();
    let text = match m {
        Mutation::Batch => {
            let first = call(&json!(format!("fz-{id}a")), allowed, &json!({}));
            let second = call(&sid, target, args);
            if pick.is_multiple_of(2) {
                json!([first, second]).to_string()
            } else {
                json!([second, first]).to_string()
            }
        }
        Mutation::Notification => json!({"jsonrpc": "2.0", "method": "tools/call",
            "params": {"name": target, "arguments": args}})
        .to_string(),
        Mutation::DuplicateKey => {
            let (first, last) = if pick.is_multiple_of(2) { (allowed, target) } else { (target, allowed) };
            format!(
                r#"{{"jsonrpc":"2.0","id":"fz-{id}","method":"tools/call","params":{{"name":{},"name":{},"arguments":{a}}}}}"#,
                q(first),
                q(last)
            )
        }
        Mutation::CaseKey => match pick % 2 {
            0 => format!(
                r#"{{"jsonrpc":"2.0","id":"fz-{id}","method":"tools/call","params":{{"name":{},"Name":{},"arguments":{a}}}}}"#,
                q(allowed),
                q(target)
            ),
            _ => format!(
                r#"{{"jsonrpc":"2.0","id":"fz-{id}","method":"tools/call","params":{{"name":{},"arguments":{a}}},"Params":{{"name":{},"arguments":{a}}}}}"#,
                q(allowed),
                q(target)
            ),
        },
        Mutation::IdType => {
            let ids = [json!(id), json!(-(id as i64) - 1), json!(id as f64 + 0.5), json!(u64::MAX)];
            call(&ids[pick % ids.len()], target, args).to_string()
        }
        Mutation::IdReuse => {
            let name = if pick.is_multiple_of(2) { target } else { allowed };
            call(&json!("fz-reuse"), name, args).to_string()
        }
        Mutation::ParamsShape => match pick % 4 {
            0 => json!({"jsonrpc": "2.0", "id": sid, "method": "tools/call", "params": [target, args]})
                .to_string(),
            1 => json!({"jsonrpc": "2.0", "id": sid, "method": "tools/call",
                        "params": {"name": target, "arguments": [args]}})
            .to_string(),
            2 => json!({"jsonrpc": "2.0", "id": sid, "method": "tools/call",
                        "params": {"name": target, "arguments": a}})
            .to_string(),
            _ => json!({"jsonrpc": "2.0", "id": sid, "method": "tools/call",
                        "params": {"name": target}})
            .to_string(),
        },
        Mutation::Encoding => {
            let plain = call(&sid, target, args).to_string();
            match pick % 3 {
                0 => format!("\u{feff}{plain}"),
                1 => {
                    // Every letter of the name as a `\u` escape.
                    let escaped: String = target
                        .chars()
                        .map(|c| format!("\\u{:04x}", c as u32))
                        .collect();
                    format!(
                        r#"{{"jsonrpc":"2.0","id":"fz-{id}","method":"tools/call","params":{{"name":"{escaped}","arguments":{a}}}}}"#
                    )
                }
                _ => plain.replace("\"tools/call\"", "\"Tools/Call\""),
            }
        }
        Mutation::HeaderMismatch => {
            let mut v = call(&sid, target, args);
            v["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            });
            return Frame {
                text: v.to_string(),
                headers: vec![("Mcp-Name".into(), allowed.into())],
            };
        }
    };
    Frame {
        text,
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_is_one_line_and_names_the_target() {
        for m in Mutation::ALL {
            for pick in 0..4 {
                let f = frame(m, pick, "Del", "Get", &json!({"x": 1}), 7);
                assert!(!f.text.contains('\n'), "{m:?}");
                let mentions = f.text.contains("Del") || f.text.contains("\\u0044");
                let reuse_of_allowed = m == Mutation::IdReuse && pick % 2 == 1;
                assert!(mentions || reuse_of_allowed, "{m:?} {pick}: {}", f.text);
            }
        }
    }

    #[test]
    fn duplicate_keys_survive_as_text() {
        let f = frame(Mutation::DuplicateKey, 0, "Del", "Get", &json!({}), 1);
        assert_eq!(f.text.matches("\"name\"").count(), 2);
        assert!(crate::mcp::keys::duplicate_keys(f.text.as_bytes()).is_some_and(|v| !v.is_empty()));
    }
}
