//! The `oracle` stage; see the crate docs for the layout.
