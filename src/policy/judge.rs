//! The static part of a decision: everything but the counters.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::model::{
    Action, Condition, DefaultAction, Limit, Policy, RuleLoc, Scope, ToolRule, Window, fold_name,
};
use super::ops::Truth;
use super::schema::SchemaSet;

/// One `tools/call` as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The tool name exactly as sent.
    pub tool: &'a str,
    /// The `arguments` member, if the call had one.
    pub args: Option<&'a Value>,
    /// The caller's identity.
    pub grant: &'a str,
    /// The session the call came in.
    pub session: &'a str,
}

/// Why a call is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyKind {
    /// The tool is hidden.
    Hidden,
    /// The tool is not listed and the default is deny.
    Unlisted,
    /// The tool's action is deny.
    Action,
    /// The tool needs an approval nobody can give here.
    ApprovalRequired,
    /// A `require` condition does not hold, or a `deny_if` one does.
    Condition,
    /// A counter would go over its max.
    Limit,
    /// The amount of an `increment_from` limit is missing or unusable.
    BadIncrement,
    /// The arguments fail the tool's input schema.
    Schema,
    /// The arguments are not an object.
    Malformed,
}

impl DenyKind {
    /// A short lowercase name, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyKind::Hidden => "hidden",
            DenyKind::Unlisted => "unlisted",
            DenyKind::Action => "action",
            DenyKind::ApprovalRequired => "approval-required",
            DenyKind::Condition => "condition",
            DenyKind::Limit => "limit",
            DenyKind::BadIncrement => "bad-increment",
            DenyKind::Schema => "schema",
            DenyKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for DenyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A denial: what kind, which rule decided, and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub kind: DenyKind,
    /// The location (pointer or YAML path) of the deciding rule; empty when no rule decided.
    pub rule: String,
    /// A human-readable reason.
    pub reason: String,
}

/// Which calls share a counter: the counter's name and the scope's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    /// The counter's name.
    pub counter: Arc<str>,
    /// Whose share of the counter.
    pub scope: ScopeKey,
}

/// The scope part of a counter key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopeKey {
    /// One grant (identity).
    Grant(String),
    /// One session.
    Session(String),
    /// Everybody.
    Global,
}

impl fmt::Display for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            ScopeKey::Grant(g) => write!(f, "{} [grant {g}]", self.counter),
            ScopeKey::Session(s) => write!(f, "{} [session {s}]", self.counter),
            ScopeKey::Global => write!(f, "{} [global]", self.counter),
        }
    }
}

/// A request to add `amount` to a counter, allowed while it stays ≤ `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRequest {
    /// The counter and scope key.
    pub key: CounterKey,
    /// How much this call adds.
    pub amount: u64,
    /// The window of the limit.
    pub window: Window,
    /// The most the counter may hold within one window.
    pub max: u64,
    /// Where the limit sits in the source.
    pub loc: RuleLoc,
}

/// The static judgement of a call: denied outright, or admitted subject to counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Denied whatever the counters say.
    Deny(Denial),
    /// Allowed if every one of these counter requests can be reserved.
    Admit(Vec<CounterRequest>),
}

fn deny(kind: DenyKind, rule: &str, reason: String) -> Judgement {
    Judgement::Deny(Denial {
        kind,
        rule: rule.to_owned(),
        reason,
    })
}

static EMPTY_ARGS: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Map::new()));

impl Policy {
    /// Judges a call without consulting counters. Pure: the oracle uses it too.
    ///
    /// Order: hidden, unlisted, the tool's action, malformed arguments, the
    /// input schema, `require`, `deny_if` (the tool's, then `"*"`'s), then the
    /// amounts of the limits that apply (the tool's, `"*"`'s, `all_tools`).
    pub fn judge(&self, call: &Call<'_>, schemas: Option<&SchemaSet>) -> Judgement {
        let key = fold_name(call.tool);
        let key = key.as_ref();
        if self.index.hide_all || (!self.index.hidden.is_empty() && self.index.hidden.contains(key))
        {
            return deny(
                DenyKind::Hidden,
                self.top_level("hide"),
                format!("tool `{}` is hidden by policy", call.tool),
            );
        }
        let tool = self
            .index
            .tools
            .get(key)
            .and_then(|&i| self.tools.get(i).map(|t| (i, t)));
        if tool.is_none() && self.default == DefaultAction::Deny {
            return deny(
                DenyKind::Unlisted,
                self.top_level("default"),
                format!("tool `{}` is not permitted by policy", call.tool),
            );
        }
        let wildcard = self
            .index
            .wildcard
            .and_then(|i| self.tools.get(i).map(|t| (i, t)));
        for (_, rule) in tool.iter().chain(wildcard.iter()) {
            if let Some(denial) = action_denial(rule, call.tool) {
                return Judgement::Deny(denial);
            }
        }
        let args = match call.args {
            None | Some(Value::Null) => &*EMPTY_ARGS,
            Some(args @ Value::Object(_)) => args,
            Some(other) => {
                return deny(
                    DenyKind::Malformed,
                    "",
                    format!("arguments must be an object, got {}", kind_of(other)),
                );
            }
        };
        if let Some(Err(errors)) = schemas.and_then(|s| s.check_key(key, args)) {
            return deny(
                DenyKind::Schema,
                "",
                format!("arguments fail the input schema: {}", errors.join("; ")),
            );
        }
        for (_, rule) in tool.iter().chain(wildcard.iter()) {
            if let Some(denial) = condition_denial(rule, args) {
                return Judgement::Deny(denial);
            }
        }
        let mut requests = Vec::new();
        for (i, rule) in tool.iter().chain(wildcard.iter()) {
            for (j, limit) in rule.limits.iter().enumerate() {
                let name = self.index.tool_counters.get(*i).and_then(|c| c.get(j));
                if let Err(denial) = push_request(&mut requests, limit, name, call, args) {
                    return Judgement::Deny(denial);
                }
            }
        }
        for (j, limit) in self.all_tools.iter().enumerate() {
            if let Err(denial) =
                push_request(&mut requests, limit, self.index.counters.get(j), call, args)
            {
                return Judgement::Deny(denial);
            }
        }
        Judgement::Admit(requests)
    }
}

impl Policy {
    /// The location of a top-level key, in the source's notation.
    fn top_level(&self, key: &str) -> &'static str {
        match (self.source.dialect, key) {
            (super::model::Dialect::Json, "hide") => "/hide",
            (super::model::Dialect::Json, _) => "/default",
            (super::model::Dialect::Yaml, "hide") => "hide",
            (super::model::Dialect::Yaml, _) => "default",
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    super::ops::kind(value)
}

fn action_denial(rule: &ToolRule, tool: &str) -> Option<Denial> {
    let (kind, what) = match rule.action {
        Action::Allow => return None,
        Action::Deny => (DenyKind::Action, "is denied by policy"),
        Action::RequireApproval => (DenyKind::ApprovalRequired, "needs an approval"),
    };
    let reason = rule
        .reason
        .clone()
        .unwrap_or_else(|| format!("tool `{tool}` {what}"));
    Some(Denial {
        kind,
        rule: rule.loc.pointer.clone(),
        reason,
    })
}

fn condition_denial(rule: &ToolRule, args: &Value) -> Option<Denial> {
    let failing = |c: &Condition, pass: Truth| {
        let t = c.eval(args);
        (t != pass).then_some((t, pass))
    };
    for c in &rule.require {
        if let Some((t, _)) = failing(c, Truth::True) {
            let what = format!("requires `{} {} {}`", c.path, c.op, c.value);
            return Some(condition_reason(rule, c, t, &what));
        }
    }
    for c in &rule.deny_if {
        if let Some((t, _)) = failing(c, Truth::False) {
            let what = format!("denies when `{} {} {}`", c.path, c.op, c.value);
            return Some(condition_reason(rule, c, t, &what));
        }
    }
    None
}

fn condition_reason(rule: &ToolRule, c: &Condition, truth: Truth, what: &str) -> Denial {
    let reason = match (&c.message, &rule.reason) {
        (Some(m), _) | (None, Some(m)) => m.clone(),
        (None, None) if truth == Truth::Unknown => {
            format!(
                "policy {what}, and `{}` is missing or of another type",
                c.path
            )
        }
        (None, None) => format!("policy {what}"),
    };
    Denial {
        kind: DenyKind::Condition,
        rule: c.loc.pointer.clone(),
        reason,
    }
}

fn push_request(
    requests: &mut Vec<CounterRequest>,
    limit: &Limit,
    name: Option<&Arc<str>>,
    call: &Call<'_>,
    args: &Value,
) -> Result<(), Denial> {
    let amount = match &limit.increment_from {
        None => limit.increment,
        Some(path) => amount_at(path.get(args)).map_err(|why| Denial {
            kind: DenyKind::BadIncrement,
            rule: limit.loc.pointer.clone(),
            reason: format!(
                "`{path}` {why}, so counter `{}` cannot be charged",
                limit.counter
            ),
        })?,
    };
    let scope = match limit.scope {
        Scope::Grant => ScopeKey::Grant(call.grant.to_owned()),
        Scope::Session => ScopeKey::Session(call.session.to_owned()),
        Scope::Global => ScopeKey::Global,
    };
    let counter = name
        .cloned()
        .unwrap_or_else(|| Arc::from(limit.counter.as_str()));
    requests.push(CounterRequest {
        key: CounterKey { counter, scope },
        amount,
        window: limit.window,
        max: limit.max,
        loc: limit.loc.clone(),
    });
    Ok(())
}

/// The amount an `increment_from` argument charges.
///
/// Only a whole, non-negative number that fits in a u64 will do. Strings,
/// fractions (`99.9` would under-charge if truncated, and rounding would
/// invite games with the last cent), negatives (a refund in disguise) and
/// anything too large are refused, so the call is denied.
pub(crate) fn amount_at(value: Option<&Value>) -> Result<u64, &'static str> {
    let Some(value) = value else {
        return Err("is missing");
    };
    let Value::Number(n) = value else {
        return Err("is not a number");
    };
    if let Some(v) = n.as_u64() {
        return Ok(v);
    }
    if n.as_i64().is_some() {
        return Err("is negative");
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f < 0.0 {
        Err("is negative")
    } else if f.fract() != 0.0 {
        Err("is not a whole number")
    } else if f >= 18_446_744_073_709_551_616.0 {
        Err("is too large")
    } else {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(f as u64)
    }
}
