//! The mock MCP server: a tool catalogue whose schemas are data, an
//! in-memory customer store the bundled tools act on, and the ledger, the
//! record of every message that reached the server.
//!
//! The bundled manifest is the Aksjah server's five WizCommerce tools
//! (`src/mock/tools/`); any other manifest (`gauntlet mock --tools`) loads
//! through the same path, and its tools echo their arguments. Everything
//! else (the ledger, the leniency switches, the special inputs below) is the
//! same for every tool.
//!
//! # Layout
//!
//! | module        | owns                                                         |
//! |---------------|--------------------------------------------------------------|
//! | [`catalogue`] | tool entries (the bundled folder or a user manifest), compiled schemas, name resolution |
//! | [`store`]     | the customers                                                 |
//! | [`effects`]   | what each tool does and answers                               |
//! | [`ledger`]    | the JSONL ground truth, its typed reader, tail and index      |
//! | [`session`]   | negotiated revisions, the HTTP session table                  |
//! | `core`, `dispatch`, `gate` | the transport-agnostic handler: [`Mock::handle`] |
//! | [`stdio`], [`http`] | the two servers over the handler                        |
//! | [`cli`]       | `gauntlet mock`                                               |
//!
//! # Behaviour
//!
//! By default the mock behaves like the most lenient real server, since that
//! is where a leak does damage: names resolve case-insensitively with
//! whitespace trimmed, NFKC applied and invisible characters dropped;
//! batches are accepted in any revision; a `tools/call` notification is
//! executed (and recorded, with no reply); the last of duplicate keys wins;
//! requests before `initialize` are served. A call executes only when its
//! arguments satisfy the tool's schema; otherwise it gets an `isError`
//! result listing the violations.
//!
//! [`MockConfig::strict`] gives the specification's behaviour: exact names
//! (an unknown one is -32602), batches only in a 2025-03-26 session,
//! `tools/call` notifications not executed, duplicate keys -32600, invalid
//! arguments -32602 in 2025-03-26 and an `isError` result after it, requests
//! before `initialize` refused, and on 2026-07-28 a `_meta` without client
//! capabilities refused.
//!
//! # The partial failure
//!
//! A call to any tool with a top-level argument whose value is
//! [`effects::WRITE_THEN_ERROR`] (`gauntlet:write-then-error`; on
//! PostCustomers, its `reference_id`) runs (PostCustomers creates the
//! customer) and then answers JSON-RPC error -32603. The ledger shows it
//! executed; an enforcer that refunds quota on upstream errors is fooled.
//! With [`effects::CRASH`] (`gauntlet:crash`) the process exits (code 70)
//! right after the arrival is recorded: the upstream dying mid-call.

pub mod catalogue;
pub mod cli;
mod core;
mod dispatch;
pub mod effects;
mod gate;
pub mod http;
pub mod ledger;
pub mod session;
pub mod stdio;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;

use self::catalogue::Catalogue;
pub use self::core::{Conn, HttpMeta, Reply};
pub use self::dispatch::UNSUPPORTED_PROTOCOL_VERSION;
pub use self::gate::{HEADER_MISMATCH, decode_header_value};
use self::ledger::{Ledger, Transport};
use self::session::{Session, Sessions};
use self::store::Store;
use crate::mcp::framing::DEFAULT_MAX_FRAME;

/// The server name announced at `initialize` and `server/discover`.
pub const SERVER_NAME: &str = "aksjah";

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Specification-exact behaviour instead of the most lenient.
    pub strict: bool,
    /// Simulated backend latency added to every executed tool call.
    pub latency: Duration,
    /// Every this many tool calls, one is held for `stall` more (0 = never).
    pub stall_every: u64,
    pub stall: Duration,
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
    /// Answer over SSE when the client accepts it (HTTP).
    pub sse: bool,
    /// Tools per `tools/list` page; `None` lists them all at once.
    pub page_size: Option<usize>,
    /// Let [`effects::CRASH`] end the process (only a mock that is a
    /// process of its own may do that; in-process it answers an error).
    pub crash_exits: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            strict: false,
            latency: Duration::ZERO,
            stall_every: 0,
            stall: Duration::ZERO,
            max_frame: DEFAULT_MAX_FRAME,
            sse: false,
            page_size: None,
            crash_exits: false,
        }
    }
}

/// The mock server: catalogue, store, ledger and sessions, shared by every
/// connection.
#[derive(Debug)]
pub struct Mock {
    config: MockConfig,
    catalogue: Catalogue,
    store: Store,
    ledger: Ledger,
    sessions: Sessions,
    tool_calls: AtomicU64,
    /// Each catalogue entry as a JSON value, built once for `tools/list`.
    listing: Vec<Value>,
}

impl Mock {
    /// A mock serving `catalogue` and writing to `ledger`.
    pub fn new(config: MockConfig, catalogue: Catalogue, ledger: Ledger) -> Mock {
        let listing = catalogue
            .tools()
            .iter()
            .map(|t| serde_json::to_value(t.entry()).unwrap_or(Value::Null))
            .collect();
        Mock {
            sessions: Sessions::new(ledger.instance()),
            config,
            catalogue,
            store: Store::new(),
            ledger,
            tool_calls: AtomicU64::new(0),
            listing,
        }
    }

    /// The bundled catalogue with an in-memory ledger, for in-process use.
    pub fn in_memory(config: MockConfig) -> Result<Mock, catalogue::CatalogueError> {
        Ok(Mock::new(
            config,
            Catalogue::bundled()?,
            Ledger::in_memory(),
        ))
    }

    /// How it behaves.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// The tools it serves.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The customers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The HTTP sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// A connection over stdio: one session for the life of the process,
    /// named after the mock instance.
    pub fn stdio_conn(&self, identity: Option<String>) -> Conn {
        Conn::new(
            Transport::Stdio,
            identity,
            Some(Arc::new(Session::new(self.ledger.instance().to_owned()))),
        )
    }
}

#[cfg(test)]
mod tests;
