//! The planner over the catalogue's own policies and the bundled tools.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
