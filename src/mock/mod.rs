//! The mock Aksjah MCP server; see the crate docs for the layout.

pub mod catalogue;
pub mod ledger;
pub mod store;
