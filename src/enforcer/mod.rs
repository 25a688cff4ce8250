//! The `enforcer` stage; see the crate docs for the layout.
