//! The Streamable HTTP proxy.
