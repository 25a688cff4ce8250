//! The `mock` stage; see the crate docs for the layout.
