//! The policy model both dialects load into.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::hash::FastHash;
use super::path::ArgPath;
use crate::names::lenient_key;

/// What happens to a call to a tool the policy does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Unlisted tools are allowed (subject to limits that apply to all tools).
    Allow,
    /// Unlisted tools are denied; `"*"` rules do not rescue them.
    Deny,
}

/// What a tool rule does before conditions and limits are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The call goes on to conditions and limits.
    Allow,
    /// The call is always denied.
    Deny,
    /// The call needs a human approval; with no approval channel, it is denied.
    RequireApproval,
}

/// Which calls share one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One counter per grant (identity), across its sessions.
    Grant,
    /// One counter per session.
    Session,
    /// One counter for everybody.
    Global,
}

/// How windows are laid on the time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowMode {
    /// An exact sliding log: any span of one window holds at most `max`.
    #[default]
    Sliding,
    /// Calendar-aligned buckets (multiples of the window since the clock's epoch).
    Fixed,
}

/// The span of a limit, in whole seconds (never zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window(pub u64);

impl Window {
    /// One second.
    pub const SECOND: Window = Window(1);
    /// One minute.
    pub const MINUTE: Window = Window(60);
    /// One hour.
    pub const HOUR: Window = Window(3600);
    /// One day.
    pub const DAY: Window = Window(86_400);

    /// The window as a duration.
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }

    /// The unit name when the window is exactly one unit.
    pub fn unit_name(self) -> Option<&'static str> {
        match self.0 {
            1 => Some("second"),
            60 => Some("minute"),
            3600 => Some("hour"),
            86_400 => Some("day"),
            _ => None,
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit_name() {
            Some(unit) => f.write_str(unit),
            None => write!(f, "{} s", self.0),
        }
    }
}

/// Which dialect a policy was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PolicyLayer JSON.
    Json,
    /// Intercept YAML.
    Yaml,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Json => "policylayer json",
            Dialect::Yaml => "intercept yaml",
        })
    }
}

/// Where a policy came from, so reports can point into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file name as given to the loader.
    pub file: String,
    /// The dialect it was written in.
    pub dialect: Dialect,
}

/// Where a rule sits in its source file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleLoc {
    /// A JSON pointer (JSON dialect) or a YAML path (YAML dialect).
    pub pointer: String,
    /// 1-based line, when it could be located.
    pub line: Option<u32>,
}

/// A comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal; numbers compare by value, other types must match exactly.
    Eq,
    /// Not equal.
    Neq,
    /// Equal to one element of a list.
    In,
    /// Equal to no element of a list.
    NotIn,
    /// Number less than.
    Lt,
    /// Number less than or equal.
    Lte,
    /// Number greater than.
    Gt,
    /// Number greater than or equal.
    Gte,
    /// String matches a regular expression (unanchored).
    Regex,
    /// Substring of a string, or element of a list.
    Contains,
    /// The path is present and not null (`true`) or absent or null (`false`).
    Exists,
}

impl Op {
    /// Every operator, in the order they are documented.
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Neq,
        Op::In,
        Op::NotIn,
        Op::Lt,
        Op::Lte,
        Op::Gt,
        Op::Gte,
        Op::Regex,
        Op::Contains,
        Op::Exists,
    ];

    /// The spelling used in both dialects.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Regex => "regex",
            Op::Contains => "contains",
            Op::Exists => "exists",
        }
    }

    /// Parses the dialect spelling.
    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// The operator that holds exactly when this one fails on a value it can
    /// judge. `regex` and `contains` have none among the eleven.
    pub fn negation(self) -> Option<Op> {
        Some(match self {
            Op::Eq => Op::Neq,
            Op::Neq => Op::Eq,
            Op::In => Op::NotIn,
            Op::NotIn => Op::In,
            Op::Lt => Op::Gte,
            Op::Gte => Op::Lt,
            Op::Lte => Op::Gt,
            Op::Gt => Op::Lte,
            Op::Regex | Op::Contains | Op::Exists => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One test on the call's arguments.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Where in the arguments to look.
    pub path: ArgPath,
    /// How to compare.
    pub op: Op,
    /// What to compare with (already checked to suit `op`).
    pub value: Value,
    /// The denial message for this condition, if the source gave one.
    pub message: Option<String>,
    /// Where the condition sits in the source.
    pub loc: RuleLoc,
    pub(crate) regex: Option<regex::Regex>,
}

/// A counter limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The counter's name, unique in the policy.
    pub counter: String,
    /// The span the limit applies over.
    pub window: Window,
    /// The most the counter may hold within one window.
    pub max: u64,
    /// Which calls share the counter.
    pub scope: Scope,
    /// How much each call adds when `increment_from` is absent (usually 1).
    pub increment: u64,
    /// Take each call's amount from this argument instead.
    pub increment_from: Option<ArgPath>,
    /// The denial message for this limit, if the source gave one.
    pub message: Option<String>,
    /// Where the limit sits in the source.
    pub loc: RuleLoc,
}

/// The rules of one tool (or of `"*"`, every listed tool).
#[derive(Debug, Clone)]
pub struct ToolRule {
    /// The tool name as written in the source.
    pub name: String,
    /// What the rule does before conditions and limits.
    pub action: Action,
    /// Why, shown in denials.
    pub reason: Option<String>,
    /// Counter limits on this tool.
    pub limits: Vec<Limit>,
    /// Conditions that must hold (a condition that cannot be judged does not hold).
    pub require: Vec<Condition>,
    /// Conditions that deny when they hold (or when they cannot be judged).
    pub deny_if: Vec<Condition>,
    /// Where the rule sits in the source.
    pub loc: RuleLoc,
}

/// The tool name under which rules apply to every listed tool.
pub const WILDCARD: &str = "*";

/// A loaded, validated policy.
///
/// The public fields may be edited; call [`Policy::reindex`] afterwards so
/// the name index matches them again.
#[derive(Debug, Clone)]
pub struct Policy {
    /// What happens to unlisted tools.
    pub default: DefaultAction,
    /// Tool names hidden from `tools/list` and denied on call; `"*"` hides all.
    pub hide: Vec<String>,
    /// Limits that apply to every admitted tool call.
    pub all_tools: Vec<Limit>,
    /// Per-tool rules, in file order; a rule named `"*"` applies to every listed tool.
    pub tools: Vec<ToolRule>,
    /// Whether a call that fails upstream gets its quota back.
    pub refund_on_error: bool,
    /// Sliding or fixed windows.
    pub window_mode: WindowMode,
    /// Free text from the source.
    pub description: Option<String>,
    /// Where the policy came from.
    pub source: Source,
    pub(crate) index: NameIndex,
}

/// Lenient keys computed once at load, so the hot path only hashes.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameIndex {
    pub(crate) tools: HashMap<String, usize, FastHash>,
    pub(crate) wildcard: Option<usize>,
    pub(crate) hidden: HashSet<String, FastHash>,
    pub(crate) hide_all: bool,
    pub(crate) counters: Vec<Arc<str>>,
    pub(crate) tool_counters: Vec<Vec<Arc<str>>>,
}

impl NameIndex {
    pub(crate) fn build(policy: &Policy) -> NameIndex {
        let mut index = NameIndex::default();
        for (i, rule) in policy.tools.iter().enumerate() {
            if rule.name == WILDCARD {
                index.wildcard.get_or_insert(i);
            } else {
                index.tools.entry(lenient_key(&rule.name)).or_insert(i);
            }
            index.tool_counters.push(
                rule.limits
                    .iter()
                    .map(|l| Arc::from(l.counter.as_str()))
                    .collect(),
            );
        }
        for name in &policy.hide {
            if name == WILDCARD {
                index.hide_all = true;
            } else {
                index.hidden.insert(lenient_key(name));
            }
        }
        index.counters = policy
            .all_tools
            .iter()
            .map(|l| Arc::from(l.counter.as_str()))
            .collect();
        index
    }
}

/// [`lenient_key`], without its Unicode machinery for the common case.
///
/// For printable ASCII, NFKC changes nothing, no character is invisible and
/// the only whitespace is the space, so trimming spaces and lower-casing
/// ASCII gives the same key. Anything else goes the long way.
pub(crate) fn fold_name(name: &str) -> Cow<'_, str> {
    if !name.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Cow::Owned(lenient_key(name));
    }
    let trimmed = name.trim_matches(' ');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

impl Policy {
    /// Rebuilds the name index after the public fields were edited.
    pub fn reindex(&mut self) {
        self.index = NameIndex::build(self);
    }

    /// Whether `tool` (a raw name, folded leniently) is hidden by the policy.
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.index.hide_all || self.index.hidden.contains(fold_name(tool).as_ref())
    }

    /// The rule for `tool` (a raw name, folded leniently), not counting `"*"`.
    pub fn tool_rule(&self, tool: &str) -> Option<&ToolRule> {
        self.index
            .tools
            .get(fold_name(tool).as_ref())
            .and_then(|&i| self.tools.get(i))
    }

    /// The `"*"` rule, if any.
    pub fn wildcard_rule(&self) -> Option<&ToolRule> {
        self.index.wildcard.and_then(|i| self.tools.get(i))
    }
}

impl Condition {
    /// Builds a condition, checking that `value` suits `op` (a list for `in`,
    /// a number for `lt`, a compiling pattern for `regex`, ...).
    pub fn new(path: ArgPath, op: Op, value: Value) -> Result<Condition, String> {
        let regex = super::ops::check_value(op, &value)?;
        Ok(Condition {
            path,
            op,
            value,
            message: None,
            loc: RuleLoc::default(),
            regex,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_fast_fold_equals_the_lenient_key(name in "\\PC{0,40}|[ -~\t\0]{0,40}") {
            prop_assert_eq!(fold_name(&name).into_owned(), lenient_key(&name));
        }
    }

    #[test]
    fn the_fast_fold_handles_the_edges() {
        for name in [
            "  WizCommerce Open API_PostCustomers ",
            "a\tb",
            "\0x",
            "x\u{200B}",
            "Ｗ",
            " ",
            "",
        ] {
            assert_eq!(fold_name(name).as_ref(), lenient_key(name), "{name:?}");
        }
    }
}
