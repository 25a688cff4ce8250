//! The `report` stage; see the crate docs for the layout.
