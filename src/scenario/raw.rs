//! The file as serde sees it. Every field is optional or loosely typed here
//! so that range and exclusivity checks happen in `convert`, where they can
//! name the step and field; serde only refuses unknown keys and wrong kinds.

use serde::Deserialize;

use super::types::{At, Category, Severity, Spread, TransportFilter};

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub id: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    pub references: Vec<String>,
    pub policy: Option<String>,
    pub policy_inline: Option<String>,
    pub revision: Option<String>,
    pub transport: Option<TransportFilter>,
    pub strict_mock: Option<bool>,
    pub rule: Option<RawRuleRef>,
    #[serde(default)]
    pub step: Vec<RawStep>,
    pub expect: Option<RawExpect>,
}

/// The `[rule]` table of a derived scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleRef {
    pub file: String,
    pub line: Option<i64>,
    pub pointer: String,
}

/// One `[[step]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub call: Option<String>,
    pub args: Option<toml::Value>,
    pub args_json: Option<String>,
    pub generate: Option<toml::Value>,
    pub set: Option<toml::Table>,

    pub raw: Option<String>,
    pub raw_hex: Option<String>,
    pub headers: Option<toml::Table>,
    pub bare: Option<bool>,

    pub list: Option<bool>,

    pub skip_handshake: Option<bool>,
    pub repeat: Option<i64>,
    pub concurrency: Option<i64>,
    pub pipeline: Option<bool>,
    pub identity: Option<String>,
    pub identities: Option<Vec<String>>,
    pub session: Option<String>,
    pub sessions: Option<i64>,
    pub delay_ms: Option<i64>,
    pub at: Option<At>,
    pub after_ms: Option<i64>,
    pub replicas: Option<Spread>,
    pub expand: Option<Vec<RawExpand>>,
}

/// One `expand` entry: a mark in the frame or arguments, replaced by a
/// repeated piece, so a bounded flood fits in a short file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpand {
    pub mark: String,
    pub text: Option<String>,
    pub hex: Option<String>,
    pub times: Option<i64>,
}

/// The `[expect]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub max_arrivals: Option<i64>,
    pub no_success: Option<bool>,
}
