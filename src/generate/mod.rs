//! The `generate` stage; see the crate docs for the layout.
