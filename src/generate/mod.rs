//! Generators: arguments from tool schemas (valid, or with one named rule
//! broken), values at a policy's edges, tool-name variants and frame
//! mutations, each also as a proptest strategy (`strategy`). Call sequences
//! built from these against the policy model live in `run::fuzz`.

pub mod args;
pub mod boundary;
pub mod frames;
pub mod names;
pub mod strategy;

pub use args::{Rule, set_path, valid, violating};
