//! An MCP client that sends typed requests *and* arbitrary bytes.
//!
//! SDK clients refuse to send what attacks are made of (batches after
//! 2025-06-18, duplicate keys, ids of odd types, invalid UTF-8), so the
//! envelope here is ours. Replies are matched to ids and every exchange is
//! timed from the moment its bytes were handed to the transport.

mod http;
mod skeleton;
mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use http::HttpOptions;
pub use skeleton::read as reply_skeleton;
pub use stdio::StdioOptions;

use super::jsonrpc;
use super::revision::Revision;

/// What went wrong talking to a peer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("starting `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the peer closed the connection{}", exit_suffix(.0))]
    Closed(Option<String>),
    #[error("transport: {0}")]
    Transport(String),
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

fn exit_suffix(status: &Option<String>) -> String {
    status
        .as_ref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

/// One send and what came back for it.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Replies matched to this send, in the order they arrived.
    pub replies: Vec<Value>,
    /// The HTTP status, on HTTP.
    pub status: Option<u16>,
    /// Bytes that came back but were not JSON (a plain-text 415, say).
    pub raw_body: Option<String>,
    /// From handing the bytes to the transport to the last matched reply.
    pub elapsed: Duration,
}

impl Exchange {
    /// The first reply, if any.
    pub fn reply(&self) -> Option<&Value> {
        self.replies.first()
    }

    /// Whether the exchange ended in a denial (either form) or an HTTP error.
    pub fn denied(&self) -> bool {
        self.status.is_some_and(|s| s >= 400) || self.replies.iter().any(jsonrpc::is_denial)
    }

    /// The readable text of every reply, for reports.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.replies.iter().map(jsonrpc::reply_text).collect();
        if let Some(raw) = &self.raw_body {
            parts.push(raw.clone());
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" | ")
    }
}

/// What a raw send waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Replies to these ids (as JSON values).
    Ids(Vec<Value>),
    /// Any reply that carries a null id (parse errors), or none within the
    /// quiet period: used for notifications and unparseable frames.
    Nothing(Duration),
}

impl Expect {
    /// What a well-behaved peer would answer for these bytes: the ids of the
    /// requests they hold, or nothing for notifications and garbage.
    pub fn for_bytes(bytes: &[u8], quiet: Duration) -> Expect {
        let ids: Vec<Value> = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) => items
                .iter()
                .filter(|m| m.get("method").is_some())
                .filter_map(|m| jsonrpc::id_of(m).cloned())
                .collect(),
            Ok(v) if v.get("method").is_some() => jsonrpc::id_of(&v).cloned().into_iter().collect(),
            _ => Vec::new(),
        };
        if ids.is_empty() {
            Expect::Nothing(quiet)
        } else {
            Expect::Ids(ids)
        }
    }
}

/// Headers an attack may set or override on one HTTP send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    pub headers: Vec<(String, String)>,
    /// Leave out the headers the client would add itself (session, version,
    /// `Mcp-Method`/`Mcp-Name`), to probe what a peer does without them.
    pub bare: bool,
    /// Keep of each reply only its `id`, whether it has an `error`, and
    /// `result.isError`: what a load generator needs to sort a call, read
    /// without building the rest. A reply of any other shape (a batch, a
    /// repeated member) is kept whole.
    pub skeleton: bool,
}

enum Transport {
    Stdio(Box<stdio::StdioTransport>),
    Http(Box<http::HttpTransport>),
}

/// An MCP client over stdio or Streamable HTTP.
pub struct Client {
    transport: Transport,
    next_id: AtomicI64,
    revision: std::sync::Mutex<Revision>,
    timeout: Duration,
}

impl Client {
    /// Starts a child process and talks to it over its stdin/stdout.
    pub async fn spawn(opts: StdioOptions, timeout: Duration) -> Result<Client, ClientError> {
        Ok(Client::with(
            Transport::Stdio(Box::new(stdio::StdioTransport::spawn(opts)?)),
            timeout,
        ))
    }

    /// Talks to a Streamable HTTP endpoint.
    pub fn connect(opts: HttpOptions, timeout: Duration) -> Result<Client, ClientError> {
        Ok(Client::with(
            Transport::Http(Box::new(http::HttpTransport::new(opts)?)),
            timeout,
        ))
    }

    fn with(transport: Transport, timeout: Duration) -> Client {
        Client {
            transport,
            next_id: AtomicI64::new(1),
            revision: std::sync::Mutex::new(Revision::LATEST_STATEFUL),
            timeout,
        }
    }

    /// The revision requests are shaped for.
    pub fn revision(&self) -> Revision {
        self.revision
            .lock()
            .map(|r| *r)
            .unwrap_or(Revision::LATEST_STATEFUL)
    }

    fn set_revision(&self, rev: Revision) {
        if let Ok(mut r) = self.revision.lock() {
            *r = rev;
        }
    }

    /// A fresh numeric request id.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs the handshake for `rev`: initialize and `notifications/initialized`
    /// for session revisions, nothing for stateless ones.
    pub async fn initialize(&self, rev: Revision) -> Result<Exchange, ClientError> {
        self.set_revision(rev);
        if rev.is_stateless() {
            return Ok(Exchange::default());
        }
        let params = json!({
            "protocolVersion": rev.as_str(),
            "capabilities": {},
            "clientInfo": {"name": "gauntlet", "version": env!("CARGO_PKG_VERSION")},
        });
        let ex = self.request("initialize", Some(params)).await?;
        let reply = ex
            .reply()
            .ok_or_else(|| ClientError::Protocol("initialize got no reply".into()))?;
        if let Some(err) = reply.get("error") {
            return Err(ClientError::Protocol(format!("initialize refused: {err}")));
        }
        if let Some(v) = reply
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .and_then(Revision::parse)
        {
            self.set_revision(v);
        }
        self.notify("notifications/initialized", None).await?;
        Ok(ex)
    }

    /// Sends a request and waits for its reply. On a stateless revision the
    /// `_meta` the revision requires is added to the params.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Exchange, ClientError> {
        let id = Value::from(self.next_id());
        let params = self.with_meta(params);
        let msg = jsonrpc::request(id.clone(), method, params);
        let bytes = serde_json::to_vec(&msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_raw(bytes, Expect::Ids(vec![id]), &SendOptions::default())
            .await
    }

    /// Sends a notification; nothing is awaited beyond the transport.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ClientError> {
        let msg = jsonrpc::notification(method, params);
        let bytes = serde_json::to_vec(&msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_raw(
            bytes,
            Expect::Nothing(Duration::ZERO),
            &SendOptions::default(),
        )
        .await
        .map(|_| ())
    }

    /// Calls a tool.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Exchange, ClientError> {
        self.request(
            "tools/call",
            Some(json!({"name": name, "arguments": arguments})),
        )
        .await
    }

    /// Sends bytes exactly as given and waits for what `expect` names, until
    /// the client's timeout.
    pub async fn send_raw(
        &self,
        bytes: Vec<u8>,
        expect: Expect,
        opts: &SendOptions,
    ) -> Result<Exchange, ClientError> {
        let started = Instant::now();
        let mut ex = match &self.transport {
            Transport::Stdio(s) => {
                s.exchange(bytes, &expect, opts.skeleton, self.timeout)
                    .await?
            }
            Transport::Http(h) => {
                h.exchange(bytes, &expect, opts, self.revision(), self.timeout)
                    .await?
            }
        };
        ex.elapsed = started.elapsed();
        Ok(ex)
    }

    fn with_meta(&self, params: Option<Value>) -> Option<Value> {
        let rev = self.revision();
        if !rev.is_stateless() {
            return params;
        }
        let mut params = params.unwrap_or_else(|| json!({}));
        if let Some(obj) = params.as_object_mut() {
            let meta = obj.entry("_meta").or_insert_with(|| json!({}));
            if let Some(meta) = meta.as_object_mut() {
                meta.entry(Revision::META_VERSION_KEY)
                    .or_insert_with(|| Value::from(rev.as_str()));
                meta.entry(Revision::META_CAPABILITIES_KEY)
                    .or_insert_with(|| json!({}));
            }
        }
        Some(params)
    }

    /// What the peer wrote to stderr so far (stdio), capped; for reports on
    /// crashes.
    pub fn stderr_tail(&self) -> String {
        match &self.transport {
            Transport::Stdio(s) => s.stderr_tail(),
            Transport::Http(_) => String::new(),
        }
    }

    /// Whether a stdio peer has exited, with its status.
    pub fn exit_status(&self) -> Option<String> {
        match &self.transport {
            Transport::Stdio(s) => s.exit_status(),
            Transport::Http(_) => None,
        }
    }

    /// Closes the connection: stdin is closed and the child is given a moment
    /// to exit before it is killed; an HTTP session is deleted.
    pub async fn close(self) {
        match self.transport {
            Transport::Stdio(s) => s.close().await,
            Transport::Http(h) => h.close().await,
        }
    }
}

/// A map key for an id that keeps `1` and `"1"` apart.
pub(crate) fn id_key(id: &Value) -> String {
    id.to_string()
}

/// Someone waiting for the reply to one id.
pub(crate) struct Waiter {
    pub tx: tokio::sync::oneshot::Sender<Value>,
    /// Only the reply's skeleton is wanted ([`SendOptions::skeleton`]).
    pub skeleton: bool,
}

/// Waiters by id key.
pub(crate) type Pending = HashMap<String, Waiter>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_follow_the_bytes() {
        let q = Duration::from_millis(5);
        assert_eq!(
            Expect::for_bytes(br#"{"jsonrpc":"2.0","id":7,"method":"x"}"#, q),
            Expect::Ids(vec![json!(7)])
        );
        assert_eq!(
            Expect::for_bytes(
                br#"[{"jsonrpc":"2.0","id":"a","method":"x"},{"jsonrpc":"2.0","method":"n"}]"#,
                q
            ),
            Expect::Ids(vec![json!("a")])
        );
        assert_eq!(
            Expect::for_bytes(br#"{"jsonrpc":"2.0","method":"x"}"#, q),
            Expect::Nothing(q)
        );
        assert_eq!(Expect::for_bytes(b"{oops", q), Expect::Nothing(q));
    }

    #[test]
    fn ids_of_different_types_do_not_collide() {
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
    }
}
