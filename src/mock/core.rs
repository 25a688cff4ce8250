//! The transport-agnostic handler: bytes in, ledger records written, reply
//! bytes out. The servers only move bytes and apply the reply's delay.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Mock;
use super::catalogue::Tool;
use super::dispatch::Dispatched;
use super::ledger::{FrameStamp, LedgerError, LedgerRecord, Outcome, OutcomeLine, Transport};
use super::session::Session;
use crate::mcp::Revision;
use crate::mcp::framing::FrameError;
use crate::mcp::http as h;
use crate::mcp::jsonrpc::{self, INVALID_REQUEST, Invalid, Message, PARSE_ERROR};
use crate::mcp::keys::{self, KeyIssue};
use crate::names::NameMatching;

/// One connection's view: who is talking, over what, in which session.
#[derive(Debug)]
pub struct Conn {
    pub transport: Transport,
    pub identity: Option<String>,
    pub session: Option<Arc<Session>>,
    /// The request's HTTP side, on HTTP.
    pub http: Option<HttpMeta>,
}

impl Conn {
    /// A connection with no HTTP side.
    pub fn new(
        transport: Transport,
        identity: Option<String>,
        session: Option<Arc<Session>>,
    ) -> Conn {
        Conn {
            transport,
            identity,
            session,
            http: None,
        }
    }
}

/// The headers of one HTTP request that the mock reads.
#[derive(Debug, Clone, Default)]
pub struct HttpMeta {
    /// Every header, names lower-cased, in arrival order (for the ledger).
    pub headers: Vec<(String, String)>,
    pub origin: Option<String>,
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
    pub accepts_sse: bool,
}

impl HttpMeta {
    /// Picks the headers the mock cares about out of the full list.
    pub fn from_headers(headers: Vec<(String, String)>) -> HttpMeta {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        HttpMeta {
            origin: get("origin"),
            session_id: get(h::SESSION_ID),
            protocol_version: get(h::PROTOCOL_VERSION),
            mcp_method: get(h::MCP_METHOD),
            mcp_name: get(h::MCP_NAME),
            accepts_sse: get("accept").is_some_and(|a| a.contains("text/event-stream")),
            headers,
        }
    }
}

/// What to send back for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Each response message, serialised, in order.
    pub responses: Vec<Vec<u8>>,
    /// Send the responses as one JSON array (the frame was a batch).
    pub batch: bool,
    /// The HTTP status (stdio ignores it).
    pub status: u16,
    /// Simulated backend time to wait before sending.
    pub delay: Duration,
    /// A session opened by this frame, to announce in `Mcp-Session-Id`.
    pub new_session: Option<String>,
}

impl Reply {
    fn new(batch: bool) -> Reply {
        Reply {
            responses: Vec::new(),
            batch,
            status: 200,
            delay: Duration::ZERO,
            new_session: None,
        }
    }

    /// The reply as one JSON text (an array for a batch); `None` when there
    /// is nothing to send.
    pub fn body(&self) -> Option<Vec<u8>> {
        if self.responses.is_empty() {
            return None;
        }
        if !self.batch {
            return self.responses.first().cloned();
        }
        let len = self.responses.iter().map(|r| r.len() + 1).sum::<usize>() + 1;
        let mut out = Vec::with_capacity(len);
        out.push(b'[');
        for (i, r) in self.responses.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(r);
        }
        out.push(b']');
        Some(out)
    }
}

/// A frame turned away as a whole before dispatch.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rejection {
    pub status: u16,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Rejection {
    pub(super) fn new(status: u16, code: i64, message: String) -> Rejection {
        Rejection {
            status,
            code,
            message,
            data: None,
        }
    }

    fn outcome(&self) -> Outcome {
        if self.status == 200 {
            Outcome::RpcError {
                code: self.code,
                message: self.message.clone(),
            }
        } else {
            Outcome::Rejected {
                status: self.status,
                code: Some(self.code),
                message: self.message.clone(),
            }
        }
    }
}

/// One decoded message of a frame.
pub(super) struct Incoming<'a> {
    pub raw: &'a [u8],
    pub value: Value,
    /// `params.arguments` of a `tools/call`, moved out of `value` so it is
    /// owned once, by the record.
    pub arguments: Option<Value>,
    /// Duplicate and case-variant keys, found while parsing.
    pub key_issues: Vec<KeyIssue>,
    pub batch_index: Option<usize>,
}

/// The revision a message is judged under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Judged {
    /// Stateless: named by `_meta` (or, leniently, the HTTP header).
    Stateless(Revision),
    /// What the session negotiated.
    Session(Revision),
    /// `_meta` names a revision the mock does not know.
    Unsupported(String),
    /// No revision applies: no session yet, nothing in `_meta`.
    None,
}

impl Judged {
    pub(super) fn revision(&self) -> Option<Revision> {
        match self {
            Judged::Stateless(r) | Judged::Session(r) => Some(*r),
            _ => None,
        }
    }
}

/// What the handler knows about a message besides its record.
pub(super) struct Inbound<'m> {
    pub message: Result<Message, Invalid>,
    pub judged: Judged,
    pub tool: Option<&'m Tool>,
}

type Decoded<'a> = (Vec<Incoming<'a>>, bool);

/// Splits a frame into messages. A batch is split on the raw text, so each
/// message's record keeps its own bytes.
fn decode(raw: &[u8]) -> Result<Decoded<'_>, (i64, String)> {
    let parse_error = |e: serde_json::Error| (PARSE_ERROR, format!("frame is not valid json: {e}"));
    let first = raw.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        let (value, issues) = keys::parse_with_key_issues(raw).map_err(parse_error)?;
        return Ok((vec![incoming(raw, value, issues, None)], false));
    }
    let items: Vec<&RawValue> = serde_json::from_slice(raw).map_err(parse_error)?;
    if items.is_empty() {
        return Err((INVALID_REQUEST, "frame is an empty batch".into()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let bytes = item.get().as_bytes();
        let (value, issues) = keys::parse_with_key_issues(bytes).map_err(parse_error)?;
        out.push(incoming(bytes, value, issues, Some(i)));
    }
    Ok((out, true))
}

fn incoming(
    raw: &[u8],
    mut value: Value,
    key_issues: Vec<KeyIssue>,
    batch_index: Option<usize>,
) -> Incoming<'_> {
    let arguments = if value.get("method").and_then(Value::as_str) == Some("tools/call") {
        value
            .get_mut("params")
            .and_then(Value::as_object_mut)
            .and_then(|p| p.remove("arguments"))
    } else {
        None
    };
    Incoming {
        raw,
        value,
        arguments,
        key_issues,
        batch_index,
    }
}

/// The `_meta` revision string of a message, if it carries one.
pub(super) fn meta_version(value: &Value) -> Option<&str> {
    value
        .get("params")?
        .get("_meta")?
        .get(Revision::META_VERSION_KEY)?
        .as_str()
}

impl Mock {
    /// Handles one frame: records every message in it, dispatches them
    /// (unless the frame is turned away) and builds the reply.
    pub fn handle(&self, conn: &mut Conn, raw: &[u8]) -> Result<Reply, LedgerError> {
        let stamp = self.ledger.stamp();
        let (items, batch) = match decode(raw) {
            Ok(decoded) => decoded,
            Err((code, error)) => {
                let status = if code == PARSE_ERROR { 400 } else { 200 };
                return self.refuse_frame(conn, stamp, raw, raw.len(), true, error, code, status);
            }
        };
        let mut rejection = if conn.http.is_some() {
            self.gate(conn, &items)
        } else {
            None
        };
        if rejection.is_none() && batch && self.config.strict {
            rejection = self.batch_rejection(conn);
        }
        let mut reply = Reply::new(batch);
        let mut first_id = None;
        for item in items {
            let (mut rec, inbound) = self.record(conn, &stamp, item);
            self.ledger.arrive(&mut rec)?;
            if first_id.is_none() {
                first_id = rec.id.clone();
            }
            let done = match &rejection {
                Some(r) => Dispatched::outcome_only(r.outcome()),
                None => self.dispatch(conn, &rec, &inbound, &mut reply),
            };
            self.ledger.conclude(OutcomeLine {
                seq: rec.seq,
                instance: String::new(),
                executed: done.executed,
                outcome: done.outcome,
                touched: done.touched,
            })?;
            if !rec.notification {
                match (done.serialized, done.response) {
                    (Some(bytes), _) => reply.responses.push(bytes),
                    (None, Some(response)) => reply
                        .responses
                        .push(serde_json::to_vec(&response).map_err(LedgerError::Encode)?),
                    (None, None) => {}
                }
            }
            reply.delay = reply.delay.max(done.delay);
            if let (false, Some(status), Some(_)) = (batch, done.status, &conn.http) {
                reply.status = status;
            }
        }
        if let Some(r) = rejection {
            let id = if batch { None } else { first_id };
            let body = jsonrpc::error_response(
                &id.unwrap_or(Value::Null),
                r.code,
                &r.message,
                r.data.clone(),
            );
            reply.responses = vec![serde_json::to_vec(&body).map_err(LedgerError::Encode)?];
            reply.batch = false;
            reply.status = r.status;
        }
        Ok(reply)
    }

    /// Records a frame the reader could not even deliver (too long, not
    /// UTF-8) and builds its -32700 reply.
    pub fn handle_frame_error(
        &self,
        conn: &mut Conn,
        err: &FrameError,
    ) -> Result<Reply, LedgerError> {
        let stamp = self.ledger.stamp();
        let (kept, total, whole, status): (&[u8], usize, bool, u16) = match err {
            FrameError::Oversized { seen, head, .. } => (head, *seen, false, 413),
            FrameError::InvalidUtf8 { bytes, .. } => (bytes, bytes.len(), true, 400),
            FrameError::Io(_) => (&[], 0, false, 400),
        };
        self.refuse_frame(
            conn,
            stamp,
            kept,
            total,
            whole,
            err.to_string(),
            PARSE_ERROR,
            status,
        )
    }

    #[allow(clippy::too_many_arguments)] // one call site each, all positional facts
    fn refuse_frame(
        &self,
        conn: &Conn,
        stamp: FrameStamp,
        kept: &[u8],
        total: usize,
        whole: bool,
        error: String,
        code: i64,
        status: u16,
    ) -> Result<Reply, LedgerError> {
        let mut rec = self.blank_record(conn, &stamp);
        rec.set_raw(kept, total, whole);
        rec.error = Some(error.clone());
        self.ledger.arrive(&mut rec)?;
        let status = if conn.http.is_some() { status } else { 200 };
        let rejection = Rejection::new(status, code, error);
        self.ledger.conclude(OutcomeLine {
            seq: rec.seq,
            instance: String::new(),
            executed: false,
            outcome: rejection.outcome(),
            touched: None,
        })?;
        let body = jsonrpc::error_response(&Value::Null, code, &rejection.message, None);
        let mut reply = Reply::new(false);
        reply.responses = vec![serde_json::to_vec(&body).map_err(LedgerError::Encode)?];
        reply.status = status;
        Ok(reply)
    }

    fn batch_rejection(&self, conn: &Conn) -> Option<Rejection> {
        let negotiated = conn.session.as_ref().and_then(|s| s.state().revision);
        if negotiated.is_some_and(Revision::allows_batches) {
            return None;
        }
        let status = if conn.http.is_some() { 400 } else { 200 };
        let message = match negotiated {
            Some(r) => format!("batches are not part of revision `{r}`"),
            None => "batches are only accepted in a 2025-03-26 session".to_owned(),
        };
        Some(Rejection::new(status, INVALID_REQUEST, message))
    }

    fn blank_record(&self, conn: &Conn, stamp: &FrameStamp) -> LedgerRecord {
        LedgerRecord {
            frame: stamp.frame,
            at_unix_ns: stamp.at_unix_ns,
            mono_ns: stamp.mono_ns,
            transport: conn.transport,
            session: conn
                .session
                .as_ref()
                .map(|s| s.id().to_owned())
                .or_else(|| conn.http.as_ref().and_then(|h| h.session_id.clone())),
            identity: conn.identity.clone(),
            headers: conn
                .http
                .as_ref()
                .map(|h| h.headers.clone())
                .unwrap_or_default(),
            ..LedgerRecord::default()
        }
    }

    /// Builds the record of one message: what it is, which tool it names
    /// and whether its arguments are valid. Nothing is executed here.
    fn record<'m>(
        &'m self,
        conn: &Conn,
        stamp: &FrameStamp,
        item: Incoming<'_>,
    ) -> (LedgerRecord, Inbound<'m>) {
        let mut rec = self.blank_record(conn, stamp);
        rec.batch_index = item.batch_index;
        rec.set_raw(item.raw, item.raw.len(), true);
        rec.key_issues = item.key_issues;
        let message = jsonrpc::classify(&item.value);
        let mut params = None;
        match &message {
            Ok(Message::Request {
                id,
                method,
                params: p,
            }) => {
                rec.id = Some(id.clone());
                rec.method = Some(method.clone());
                params = p.as_ref();
            }
            Ok(Message::Notification { method, params: p }) => {
                rec.method = Some(method.clone());
                rec.notification = true;
                params = p.as_ref();
            }
            Ok(Message::Response { id, .. } | Message::Error { id, .. }) => {
                rec.id = Some(id.clone()).filter(|i| !i.is_null());
            }
            Err(invalid) => {
                rec.id = jsonrpc::id_of(&item.value).cloned();
                rec.error = Some(invalid.to_string());
            }
        }
        let judged = self.judge(conn, &item.value);
        rec.revision = judged.revision().map(|r| r.as_str().to_owned());
        let mut tool = None;
        if rec.is_call() {
            rec.raw_name = params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let matching = if self.config.strict {
                NameMatching::Exact
            } else {
                NameMatching::Lenient
            };
            tool = rec
                .raw_name
                .as_deref()
                .and_then(|n| self.catalogue.resolve(n, matching));
            if let Some(t) = tool {
                rec.tool = Some(t.name().to_owned());
                let errors = match &item.arguments {
                    None | Some(Value::Null) => t.validate(&Value::Object(Map::new())),
                    Some(args) => t.validate(args),
                };
                rec.valid = Some(errors.is_empty());
                rec.schema_errors = errors;
            }
            rec.arguments = item.arguments;
        }
        let inbound = Inbound {
            message,
            judged,
            tool,
        };
        (rec, inbound)
    }

    /// Which revision a message is judged under: its own `_meta` first,
    /// then (leniently) a stateless HTTP header, then its session.
    fn judge(&self, conn: &Conn, value: &Value) -> Judged {
        if let Some(v) = meta_version(value) {
            match Revision::parse(v) {
                Some(r) if r.is_stateless() => return Judged::Stateless(r),
                Some(_) => {}
                None => return Judged::Unsupported(v.to_owned()),
            }
        }
        let header = conn
            .http
            .as_ref()
            .and_then(|h| h.protocol_version.as_deref())
            .and_then(Revision::parse);
        if let Some(r) = header.filter(|r| r.is_stateless()) {
            return Judged::Stateless(r);
        }
        match conn.session.as_ref().and_then(|s| s.state().revision) {
            Some(r) => Judged::Session(r),
            None => Judged::None,
        }
    }
}
