//! The reference enforcer: a stdio and Streamable HTTP proxy that judges
//! every `tools/call` with [`crate::policy`] before it may reach upstream.
//!
//! # Shape
//!
//! An [`Enforcer`] holds the policy, the counter store, the clock and the
//! audit sink. Every downstream session (a [`stdio::serve`] call, an HTTP
//! `Mcp-Session-Id`) gets its own in-flight table and learned schemas but
//! shares the enforcer's counter store, which is what makes `scope: grant`
//! hold across sessions. [`state_file::StateFileStore`] extends that to
//! several processes.
//!
//! # What is refused before the policy is asked
//!
//! The proxy judges a parsed frame but forwards the original bytes, so it
//! refuses every frame whose meaning a parser behind it could read
//! differently, and every frame it cannot judge. Nothing refused is
//! forwarded:
//!
//! - invalid JSON (-32700, id null), invalid UTF-8 (-32700), a frame over the
//!   size limit (-32600);
//! - duplicate or case-variant keys in any object at any depth, Unicode case
//!   folding included (-32600): `"name":"a","name":"b"` or `Name` would let
//!   the proxy judge one tool while a lenient server runs another;
//! - a message that is not JSON-RPC 2.0 (`jsonrpc` missing, `id` null or not
//!   a string or number, `params` not structured) (-32600);
//! - a `tools/call` whose params are not an object, whose name is not a
//!   string, or whose arguments are present but not an object (-32602);
//! - a method that is a variant of `tools/call` (`Tools/Call`, padded,
//!   full-width): a lenient upstream might route it to its tools (-32600);
//! - a `tools/call` notification: dropped, no reply, since a lenient server
//!   would run it but nobody could be told it was denied;
//! - a request whose id is already in flight in the session (-32600): the
//!   reply could not be matched to the right call, and refunds with it;
//!   and any request id starting with `gauntlet-enforcer/`, the prefix of
//!   the proxy's own requests;
//! - **batches, whole** (-32600 for each request in it). Batches left the
//!   protocol in 2025-06-18 and no current client sends them. Inspecting
//!   element by element would forward a different batch from the one sent
//!   (some elements removed), and the per-element rules above would all have
//!   to hold inside arrays too; refusing is one rule with nothing to get
//!   wrong, and no call can reach upstream through a batch.
//! - on HTTP 2026-07-28, `Mcp-Method`/`Mcp-Name` headers that disagree with
//!   the body (HTTP 400, -32020 HeaderMismatch).
//!
//! A policy denial is a JSON-RPC error with code [`DENIED`] (-32010),
//! message `denied by policy: <reason>` and `data: {rule, reason, kind}`.
//! Protocol refusals carry `data: {kind, reason}`.
//!
//! # Schemas
//!
//! The proxy learns input schemas by sending its own `tools/list` upstream
//! (ids prefixed `gauntlet-enforcer/`), right after it forwards the client's
//! `notifications/initialized`, or at the first `tools/call` if no
//! handshake came first (stateless revisions; its `_meta` is reused). A call
//! waits until the schemas are in. It does not learn from the client's own
//! `tools/list` replies: those are shaped by the client's paging and may
//! never be asked for. If upstream refuses to list its tools, calls are
//! judged by the policy alone, exactly as for a tool upstream does not
//! describe. `notifications/tools/list_changed` makes the next call refetch.
//! Learned sets are cached by content, so many sessions against one upstream
//! compile each schema once.

pub mod audit;
pub mod cli;
pub mod http;
mod inbound;
mod session;
pub mod state_file;
pub mod stdio;
mod strict;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use audit::{AuditRecord, AuditSink};
pub use inbound::TOOLS_CALL;

use crate::names::lenient_key;
use crate::policy::{Clock, CounterStore, Policy, SchemaSet};

/// The JSON-RPC error code of a policy denial.
pub const DENIED: i64 = -32010;

/// The JSON-RPC error code of a header that disagrees with the body
/// (2026-07-28 HeaderMismatch).
pub const HEADER_MISMATCH: i64 = -32020;

/// The default largest client frame: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = crate::mcp::framing::DEFAULT_MAX_FRAME;

/// Who a session acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The identity counters of `scope: grant` are kept for.
    pub grant: String,
    /// Unique per session; counters of `scope: session` are kept for it.
    pub session_id: String,
}

/// What went wrong running the proxy itself (not a refused frame).
#[derive(Debug, thiserror::Error)]
pub enum EnforcerError {
    #[error("reading from the client: {0}")]
    Client(std::io::Error),
    #[error("binding `{addr}`: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("upstream url `{url}`: {reason}")]
    UpstreamUrl { url: String, reason: String },
    #[error("http server: {0}")]
    Serve(std::io::Error),
}

/// Schemas and canonical names learned from one `tools/list`.
pub(crate) struct Learned {
    pub(crate) schemas: SchemaSet,
    /// Lenient key to the name upstream lists.
    pub(crate) names: HashMap<String, String>,
}

/// The reference enforcer: policy, counters, clock and audit, shared by all
/// its sessions.
pub struct Enforcer {
    pub(crate) policy: Arc<Policy>,
    pub(crate) store: Arc<dyn CounterStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: Option<AuditSink>,
    pub(crate) max_frame: usize,
    learned: Mutex<HashMap<[u8; 32], Arc<Learned>>>,
}

/// How many distinct learned tool sets are cached before the cache is reset.
const LEARNED_CACHE: usize = 64;

impl Enforcer {
    /// An enforcer with the default frame limit.
    pub fn new(
        policy: Arc<Policy>,
        store: Arc<dyn CounterStore>,
        clock: Arc<dyn Clock>,
        audit: Option<AuditSink>,
    ) -> Arc<Enforcer> {
        Enforcer::with_max_frame(policy, store, clock, audit, DEFAULT_MAX_FRAME)
    }

    /// An enforcer that refuses client frames over `max_frame` bytes.
    pub fn with_max_frame(
        policy: Arc<Policy>,
        store: Arc<dyn CounterStore>,
        clock: Arc<dyn Clock>,
        audit: Option<AuditSink>,
        max_frame: usize,
    ) -> Arc<Enforcer> {
        Arc::new(Enforcer {
            policy,
            store,
            clock,
            audit,
            max_frame,
            learned: Mutex::new(HashMap::new()),
        })
    }

    /// The policy it enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit sink, if any (to `sync` it in tests and at shutdown).
    pub fn audit(&self) -> Option<&AuditSink> {
        self.audit.as_ref()
    }

    /// Compiles (or finds in the cache) the schemas of a `tools/list`.
    pub(crate) fn learn(&self, tools: &[Value]) -> Arc<Learned> {
        let mut hasher = Sha256::new();
        for t in tools {
            hasher.update(t.to_string().as_bytes());
            hasher.update(b"\n");
        }
        let digest: [u8; 32] = hasher.finalize().into();
        let mut cache = self
            .learned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(l) = cache.get(&digest) {
            return l.clone();
        }
        let names = tools
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(|n| (lenient_key(n), n.to_owned()))
            .collect();
        let learned = Arc::new(Learned {
            schemas: SchemaSet::from_tools(tools),
            names,
        });
        if cache.len() >= LEARNED_CACHE {
            cache.clear();
        }
        cache.insert(digest, learned.clone());
        learned
    }
}
