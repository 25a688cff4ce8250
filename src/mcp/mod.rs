//! The wire layer: JSON-RPC 2.0 and MCP messages, stdio and Streamable HTTP
//! framing, and a client that can send malformed frames on purpose.
//!
//! Nothing here knows about policies or the mock; both build on it.

pub mod client;
pub mod framing;
pub mod http;
pub mod jsonrpc;
pub mod keys;
pub mod link;
pub mod pipes;
pub mod revision;

pub use client::{Client, ClientError, Exchange, Expect, HttpOptions, SendOptions, StdioOptions};
pub use revision::Revision;
