//! Per-method handling, after a message has been recorded.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::core::{Conn, Inbound, Judged, Reply};
use super::effects::{self, Effected};
use super::ledger::{LedgerRecord, Outcome};
use super::{Mock, SERVER_NAME};
use crate::mcp::Revision;
use crate::mcp::jsonrpc::{
    self, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Message,
};
use crate::mcp::keys::KeyIssueKind;

/// 2026-07-28: the request names a revision the server does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

const INSTRUCTIONS: &str = "Aksjah: WizCommerce customer tools backed by an in-memory store.";

/// What handling one message came to.
#[derive(Debug)]
pub(super) struct Dispatched {
    /// The response, before notifications are filtered out.
    pub response: Option<Value>,
    /// A response already serialised (the hot path); wins over `response`.
    pub serialized: Option<Vec<u8>>,
    pub outcome: Outcome,
    pub executed: bool,
    pub touched: Option<String>,
    /// An HTTP status this answer implies (single messages only).
    pub status: Option<u16>,
    pub delay: Duration,
}

impl Dispatched {
    pub(super) fn outcome_only(outcome: Outcome) -> Dispatched {
        Dispatched {
            response: None,
            serialized: None,
            outcome,
            executed: false,
            touched: None,
            status: None,
            delay: Duration::ZERO,
        }
    }

    fn ok(id: &Value, result: Value) -> Dispatched {
        Dispatched {
            response: Some(jsonrpc::result_response(id, result)),
            ..Dispatched::outcome_only(Outcome::Ok)
        }
    }

    fn error(id: &Value, code: i64, message: String, data: Option<Value>) -> Dispatched {
        Dispatched {
            response: Some(jsonrpc::error_response(id, code, &message, data)),
            ..Dispatched::outcome_only(Outcome::RpcError { code, message })
        }
    }

    fn tool_error(id: &Value, text: String, result_type: bool) -> Dispatched {
        let mut result = effects::error_result(&text);
        if result_type {
            mark_complete(&mut result);
        }
        Dispatched {
            response: Some(jsonrpc::result_response(id, result)),
            ..Dispatched::outcome_only(Outcome::ToolError { message: text })
        }
    }

    fn with_status(mut self, status: u16) -> Dispatched {
        self.status = Some(status);
        self
    }
}

/// 2026-07-28 results say they are complete (not an input request).
fn mark_complete(result: &mut Value) {
    if let Some(obj) = result.as_object_mut() {
        obj.insert("resultType".into(), Value::from("complete"));
    }
}

/// 2026-07-28 (SEP-2549): complete results of these methods MUST carry
/// caching hints; strict clients (the Python SDK) reject them otherwise.
fn is_cacheable(method: &str) -> bool {
    matches!(method, "tools/list" | "server/discover")
}

/// "Immediately stale, this caller only": the mock's store changes under
/// every call, so no client may reuse a listing.
fn add_cache_hints(result: &mut Value) {
    if let Some(obj) = result.as_object_mut() {
        obj.entry("ttlMs").or_insert(Value::from(0));
        obj.entry("cacheScope").or_insert(Value::from("private"));
    }
}

fn server_info() -> Value {
    json!({"name": SERVER_NAME, "title": "Aksjah (gauntlet mock)", "version": env!("CARGO_PKG_VERSION")})
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// Methods a strict session-era server serves before `initialize`.
fn allowed_before_initialize(method: &str) -> bool {
    matches!(method, "initialize" | "ping" | "server/discover")
}

/// Methods 2026-07-28 removed.
fn removed_in_stateless(method: &str) -> bool {
    matches!(
        method,
        "initialize" | "ping" | "logging/setLevel" | "notifications/initialized"
    )
}

impl Mock {
    pub(super) fn dispatch(
        &self,
        conn: &mut Conn,
        rec: &LedgerRecord,
        inbound: &Inbound<'_>,
        reply: &mut Reply,
    ) -> Dispatched {
        let (id, method, params) = match &inbound.message {
            Err(invalid) => {
                let id = rec.id.clone().unwrap_or(Value::Null);
                return Dispatched::error(&id, INVALID_REQUEST, invalid.to_string(), None);
            }
            Ok(Message::Response { .. } | Message::Error { .. }) => {
                return Dispatched::outcome_only(Outcome::Ignored);
            }
            Ok(Message::Request { id, method, params }) => (id.clone(), method, params.as_ref()),
            Ok(Message::Notification { method, params }) => (Value::Null, method, params.as_ref()),
        };
        if self.config.strict
            && let Some(refused) = self.strict_refusal(&id, method, params, rec, &inbound.judged)
        {
            return refused;
        }
        let rev = inbound.judged.revision();
        let stateless = rev.is_some_and(Revision::is_stateless);
        let mut done = match method.as_str() {
            "initialize" => self.initialize(conn, &id, params, reply),
            "notifications/initialized" => {
                if let Some(s) = &conn.session {
                    s.confirmed();
                }
                Dispatched::outcome_only(Outcome::Ok)
            }
            "ping" => Dispatched::ok(&id, json!({})),
            "tools/list" => self.list_tools(&id, params),
            "tools/call" => self.call_tool(&id, params, rec, inbound),
            "server/discover" => Dispatched::ok(
                &id,
                json!({
                    "supportedVersions": Revision::ALL.map(Revision::as_str),
                    "capabilities": capabilities(),
                    "serverInfo": server_info(),
                    "instructions": INSTRUCTIONS,
                }),
            ),
            m if m.starts_with("notifications/") => Dispatched::outcome_only(Outcome::Ignored),
            m => Dispatched::error(
                &id,
                METHOD_NOT_FOUND,
                format!("method `{m}` not found"),
                None,
            ),
        };
        if stateless && let Some(result) = done.response.as_mut().and_then(|r| r.get_mut("result"))
        {
            mark_complete(result);
            if is_cacheable(method) {
                add_cache_hints(result);
            }
        }
        done
    }

    /// What `--strict` refuses before looking at the method.
    fn strict_refusal(
        &self,
        id: &Value,
        method: &str,
        params: Option<&Value>,
        rec: &LedgerRecord,
        judged: &Judged,
    ) -> Option<Dispatched> {
        if let Some(dup) = rec
            .key_issues
            .iter()
            .find(|k| k.kind == KeyIssueKind::Duplicate)
        {
            let msg = format!("duplicate key `{}` at `{}`", dup.key, dup.pointer);
            return Some(Dispatched::error(id, INVALID_REQUEST, msg, None));
        }
        if rec.notification {
            return None;
        }
        match judged {
            Judged::Unsupported(v) => Some(
                Dispatched::error(
                    id,
                    UNSUPPORTED_PROTOCOL_VERSION,
                    format!("unsupported protocol version `{v}`"),
                    Some(json!({"supported": Revision::ALL.map(Revision::as_str), "requested": v})),
                )
                .with_status(400),
            ),
            Judged::Stateless(_) if removed_in_stateless(method) => Some(Dispatched::error(
                id,
                METHOD_NOT_FOUND,
                format!("method `{method}` is not part of a stateless revision"),
                None,
            )),
            Judged::Stateless(_) => {
                let meta = params.and_then(|p| p.get("_meta"));
                let caps = meta.and_then(|m| m.get(Revision::META_CAPABILITIES_KEY));
                let has_version = meta
                    .and_then(|m| m.get(Revision::META_VERSION_KEY))
                    .is_some();
                (!has_version || !caps.is_some_and(Value::is_object)).then(|| {
                    Dispatched::error(
                        id,
                        INVALID_PARAMS,
                        format!(
                            "`_meta` must carry `{}` and `{}`",
                            Revision::META_VERSION_KEY,
                            Revision::META_CAPABILITIES_KEY
                        ),
                        None,
                    )
                    .with_status(400)
                })
            }
            Judged::None if !allowed_before_initialize(method) => Some(Dispatched::error(
                id,
                INVALID_REQUEST,
                "session not initialized: send `initialize` first".into(),
                None,
            )),
            _ => None,
        }
    }

    fn initialize(
        &self,
        conn: &mut Conn,
        id: &Value,
        params: Option<&Value>,
        reply: &mut Reply,
    ) -> Dispatched {
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        if self.config.strict && requested.is_none() {
            let msg = "`params.protocolVersion` must be a string".to_owned();
            return Dispatched::error(id, INVALID_PARAMS, msg, None);
        }
        // A client asking for the stateless revision through initialize is
        // a session-era client; it gets the newest session revision.
        let revision = requested
            .and_then(Revision::parse)
            .filter(|r| !r.is_stateless())
            .unwrap_or(Revision::LATEST_STATEFUL);
        let session = match &conn.session {
            Some(s) => {
                if self.config.strict && s.state().revision.is_some() {
                    let msg = "session already initialized".to_owned();
                    return Dispatched::error(id, INVALID_REQUEST, msg, None);
                }
                s.clone()
            }
            None => {
                let s = self.sessions.open();
                reply.new_session = Some(s.id().to_owned());
                conn.session = Some(s.clone());
                s
            }
        };
        session.negotiated(revision);
        Dispatched::ok(
            id,
            json!({
                "protocolVersion": revision.as_str(),
                "capabilities": capabilities(),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            }),
        )
    }

    fn list_tools(&self, id: &Value, params: Option<&Value>) -> Dispatched {
        let total = self.listing.len();
        let start = match params.and_then(|p| p.get("cursor")) {
            None | Some(Value::Null) => 0,
            Some(cursor) => {
                let parsed = cursor
                    .as_str()
                    .and_then(|c| c.parse::<usize>().ok())
                    .filter(|n| *n < total);
                match (parsed, self.config.strict) {
                    (Some(n), _) => n,
                    // Lenient servers that ignore cursors start over.
                    (None, false) => 0,
                    (None, true) => {
                        let msg = format!("invalid cursor `{cursor}`");
                        return Dispatched::error(id, INVALID_PARAMS, msg, None);
                    }
                }
            }
        };
        let end = self
            .config
            .page_size
            .map_or(total, |n| start.saturating_add(n.max(1)).min(total));
        let mut result = Map::with_capacity(2);
        result.insert(
            "tools".into(),
            Value::Array(self.listing[start..end].to_vec()),
        );
        if end < total {
            result.insert("nextCursor".into(), Value::from(end.to_string()));
        }
        Dispatched::ok(id, Value::Object(result))
    }

    fn call_tool(
        &self,
        id: &Value,
        params: Option<&Value>,
        rec: &LedgerRecord,
        inbound: &Inbound<'_>,
    ) -> Dispatched {
        let rev = inbound.judged.revision();
        let stateless = rev.is_some_and(Revision::is_stateless);
        let Some(name) = params.and_then(|p| p.get("name")) else {
            let msg = "`params.name` is missing".to_owned();
            return Dispatched::error(id, INVALID_PARAMS, msg, None);
        };
        let Some(tool) = inbound.tool else {
            let msg = match name.as_str() {
                Some(n) => format!("unknown tool `{n}`"),
                None => format!("`params.name` must be a string, got `{name}`"),
            };
            return Dispatched::error(id, INVALID_PARAMS, msg, None);
        };
        if rec.notification && self.config.strict {
            return Dispatched::outcome_only(Outcome::Ignored);
        }
        if rec.valid == Some(false) {
            let listed: Vec<String> = rec
                .schema_errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        if e.path.is_empty() { "/" } else { &e.path },
                        e.message
                    )
                })
                .collect();
            let text = format!(
                "invalid arguments for tool `{}`: {}",
                tool.name(),
                listed.join("; ")
            );
            if self.config.strict && rev.is_some_and(|r| !r.invalid_args_as_tool_error()) {
                let data = json!({"errors": rec.schema_errors});
                return Dispatched::error(id, INVALID_PARAMS, text, Some(data));
            }
            return Dispatched::tool_error(id, text, stateless);
        }
        let empty = Map::new();
        let args = rec
            .arguments
            .as_ref()
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if effects::carries(args, effects::CRASH) {
            if self.config.crash_exits {
                // The exit code says why, for whoever reaps the process.
                std::process::exit(70);
            }
            return Dispatched::error(
                id,
                crate::mcp::jsonrpc::INTERNAL_ERROR,
                "the upstream crashed".into(),
                None,
            );
        }
        let run = effects::execute(tool, args, &self.store, rec.seq);
        let mut done = match run.effected {
            Effected::Ok(payload) => {
                let structured = rev.is_none_or(|r| r >= Revision::V2025_06_18);
                match effects::success_response(id, &payload, structured, stateless) {
                    Ok(bytes) => Dispatched {
                        serialized: Some(bytes),
                        ..Dispatched::outcome_only(Outcome::Ok)
                    },
                    Err(e) => Dispatched::error(id, INTERNAL_ERROR, e.to_string(), None),
                }
            }
            Effected::ToolError(text) => Dispatched::tool_error(id, text, stateless),
            Effected::RpcError { code, message } => Dispatched::error(id, code, message, None),
        };
        done.executed = true;
        done.touched = run.touched;
        done.delay = self.call_delay();
        done
    }

    /// Simulated backend time for one executed call, with the periodic stall.
    fn call_delay(&self) -> Duration {
        let n = self.tool_calls.fetch_add(1, Ordering::Relaxed) + 1;
        let stalled = self.config.stall_every > 0 && n.is_multiple_of(self.config.stall_every);
        if stalled {
            self.config.latency + self.config.stall
        } else {
            self.config.latency
        }
    }
}
