//! The `policy` stage; see the crate docs for the layout.
