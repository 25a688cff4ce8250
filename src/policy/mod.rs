//! Policies: two dialects loaded into one model, validation with located
//! diagnostics, a pure `judge`, and `decide` over counter stores.
//!
//! - [`parse_json`] reads the PolicyLayer JSON dialect, [`parse_yaml`] the
//!   Intercept YAML dialect (see the `yaml` module docs for how Intercept's
//!   semantics are mapped); [`load_file`] picks one by extension.
//! - [`Policy::judge`] is the static part of a decision and never touches a
//!   counter; [`decide`] adds an all-or-nothing reservation in a [`CounterStore`].
//! - Conditions are judged in three-valued logic so that type confusion or a
//!   missing argument never turns a denial into an admission (see `ops`).

mod clock;
mod decide;
mod error;
mod hash;
mod json;
mod judge;
mod locate;
mod lower;
mod model;
mod ops;
mod path;
mod schema;
mod store;
mod yaml;

pub mod cli;

use std::path::Path;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decide::{Decision, decide, on_upstream_error};
pub use error::{Diagnostic, PolicyError};
pub use json::parse_json;
pub use judge::{Call, CounterKey, CounterRequest, Denial, DenyKind, Judgement, ScopeKey};
pub use model::{
    Action, Condition, DefaultAction, Dialect, Limit, Op, Policy, RuleLoc, Scope, Source, ToolRule,
    WILDCARD, Window, WindowMode,
};
pub use ops::Truth;
pub use path::ArgPath;
pub use schema::SchemaSet;
pub use store::{CounterStore, LimitHit, MemoryStore, Receipt, ReceiptItem, Stamp};
pub use yaml::parse_yaml;

/// Loads a policy file: `.json` is JSON, `.yaml`/`.yml` is YAML; otherwise
/// the first non-blank character decides (`{` means JSON).
pub fn load_file(path: &Path) -> Result<Policy, PolicyError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| PolicyError::whole_file(&file, format!("cannot read the policy file: {e}")))?;
    match sniff(path, &src) {
        Dialect::Json => parse_json(&src, &file),
        Dialect::Yaml => parse_yaml(&src, &file),
    }
}

/// The dialect of a file, by extension, else by its first character.
pub fn sniff(path: &Path, src: &str) -> Dialect {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Dialect::Json,
        Some("yaml" | "yml") => Dialect::Yaml,
        _ if src.trim_start().starts_with('{') => Dialect::Json,
        _ => Dialect::Yaml,
    }
}

/// The 1-based line of a top-level key (`hide`, `default`) in a policy's
/// source, for reports that point at the rule a finding broke; `None` when
/// the key is not written out.
pub(crate) fn top_level_line(src: &str, dialect: Dialect, key: &str) -> Option<u32> {
    let path = path::DocPath::default().key(key);
    let (line, _) = match dialect {
        Dialect::Json => locate::json(src, &path),
        Dialect::Yaml => locate::yaml(src, &path),
    };
    // The locators fall back to the document's start for a missing key.
    let text = src
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let written = match dialect {
        Dialect::Json => text.contains(&format!("\"{key}\"")),
        Dialect::Yaml => text.trim_start().starts_with(key),
    };
    written.then_some(line)
}
