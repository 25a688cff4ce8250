//! `gauntlet enforce`.
