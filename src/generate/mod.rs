//! Generators: arguments from tool schemas (valid, or with one named rule
//! broken). Later stages add name variants, frame mutations and call
//! sequences as proptest strategies.

pub mod args;

pub use args::{Rule, set_path, valid, violating};
