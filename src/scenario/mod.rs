//! The attack catalogue's file format: one TOML file per attack pattern under
//! `attacks/<category>/<id>.toml`, its loader, and its checks.
//!
//! Loading goes in two passes. serde reads the file into loosely typed raw
//! structs (`deny_unknown_fields` everywhere), so it only refuses unknown keys
//! and wrong kinds; `convert` and `step` then check ranges, exclusive fields
//! and cross-field rules, naming the line and field of each problem, e.g.
//! `attacks/framing/x.toml:12:1: step[2].concurrency: must be between 1 and
//! 256, got 0`. Every problem of a file is reported at once.
//!
//! The format is also described by the JSON Schema committed at
//! `attacks/scenario.schema.json`; a test keeps the two in agreement.

pub mod cli;
mod convert;
pub mod embedded;
mod error;
mod expand;
mod load;
pub mod locate;
mod raw;
mod step;
mod types;

pub use convert::{
    MAX_CONCURRENCY, MAX_DELAY_MS, MAX_IDENTITIES, MAX_REPEAT, MAX_SESSIONS, MAX_STEPS,
    MAX_TOTAL_SENDS,
};
pub use error::{Diagnostic, ScenarioError};
pub use load::{Loader, POLICIES_DIR, load_catalogue, load_file, select};
pub use step::decode_hex;
pub use types::{
    ArgSpec, At, Category, DEFAULT_IDENTITY, DEFAULT_SESSION, Expect, Generation, PolicySource,
    Rule, RuleRef, Scenario, SessionSpec, Severity, Spread, Step, StepKind, Transport,
    TransportFilter, Who,
};

#[cfg(test)]
mod tests;
