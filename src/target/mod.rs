//! The `target` stage; see the crate docs for the layout.
