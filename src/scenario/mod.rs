//! The `scenario` stage; see the crate docs for the layout.
