//! The `mcp` stage; see the crate docs for the layout.
