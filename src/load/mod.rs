//! The `load` stage; see the crate docs for the layout.
