//! The `run` stage; see the crate docs for the layout.
