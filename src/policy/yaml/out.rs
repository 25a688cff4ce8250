//! Writing a model in the Intercept YAML dialect.
//!
//! The output is plain Intercept wherever Intercept can say the same thing;
//! a `deny_if` whose operator has no negation (`regex`, `contains`), a
//! `require_approval` action, a non-global scope or a window that is not a
//! minute, hour or day use this crate's extensions.

use serde_json::Value;

use super::{Ordered, YamlCondition, YamlPolicy, YamlRule, YamlState, YamlTool};
use crate::policy::lower;
use crate::policy::model::{
    Action, Condition, Limit, Op, Policy, Scope, ToolRule, WILDCARD, WindowMode,
};

impl Policy {
    /// The policy in the Intercept YAML dialect.
    pub fn to_yaml(&self) -> String {
        let mut tools: Vec<(String, Option<YamlTool>)> = Vec::new();
        let mut wildcard_seen = false;
        for tool in &self.tools {
            let wildcard = tool.name == WILDCARD;
            let mut rules = raise_tool(tool, wildcard);
            if wildcard && !wildcard_seen {
                wildcard_seen = true;
                rules.extend(
                    self.all_tools
                        .iter()
                        .map(|l| raise_limit(l, "_global", None)),
                );
            }
            tools.push((tool.name.clone(), Some(YamlTool { rules: Some(rules) })));
        }
        if !wildcard_seen && !self.all_tools.is_empty() {
            let rules = self
                .all_tools
                .iter()
                .map(|l| raise_limit(l, "_global", None))
                .collect();
            tools.push((WILDCARD.to_owned(), Some(YamlTool { rules: Some(rules) })));
        }
        let raw = YamlPolicy {
            version: Value::String("1".to_owned()),
            description: self.description.clone(),
            default: Some(lower::default_name(self.default).to_owned()),
            hide: self.hide.clone(),
            window_mode: (self.window_mode == WindowMode::Sliding).then(|| "sliding".to_owned()),
            refund_on_error: (!self.refund_on_error).then_some(false),
            tools: Ordered(tools),
        };
        serde_norway::to_string(&raw).unwrap_or_default()
    }
}

fn raise_tool(tool: &ToolRule, wildcard: bool) -> Vec<YamlRule> {
    let scope_name = if wildcard {
        "_global"
    } else {
        tool.name.as_str()
    };
    let mut rules = Vec::new();
    match tool.action {
        Action::Allow => {}
        Action::Deny | Action::RequireApproval => {
            let action = if tool.action == Action::Deny {
                "deny"
            } else {
                "require_approval"
            };
            rules.push(YamlRule {
                name: Some(action.replace('_', " ")),
                action: Some(action.to_owned()),
                on_deny: tool.reason.clone(),
                ..YamlRule::default()
            });
        }
    }
    for c in &tool.require {
        rules.push(YamlRule {
            name: Some(format!("require {} {}", c.path, c.op)),
            conditions: Some(vec![raise_condition(c, c.op, c.value.clone())]),
            on_deny: c.message.clone().or_else(|| tool.reason.clone()),
            ..YamlRule::default()
        });
    }
    for c in &tool.deny_if {
        let on_deny = c.message.clone().or_else(|| tool.reason.clone());
        let name = Some(format!("deny if {} {}", c.path, c.op));
        // deny_if c lets a call through exactly when `not c` is judged true.
        let negated = match (c.op, &c.value) {
            (Op::Exists, Value::Bool(b)) => Some((Op::Exists, Value::Bool(!b))),
            (op, value) => op.negation().map(|neg| (neg, value.clone())),
        };
        let rule = match negated {
            Some((op, value)) => YamlRule {
                name,
                conditions: Some(vec![raise_condition(c, op, value)]),
                on_deny,
                ..YamlRule::default()
            },
            None => YamlRule {
                name,
                deny_if: Some(vec![raise_condition(c, c.op, c.value.clone())]),
                on_deny,
                ..YamlRule::default()
            },
        };
        rules.push(rule);
    }
    rules.extend(
        tool.limits
            .iter()
            .map(|l| raise_limit(l, scope_name, tool.reason.as_ref())),
    );
    rules
}

fn raise_condition(c: &Condition, op: Op, value: Value) -> YamlCondition {
    YamlCondition {
        path: c.path.as_str().to_owned(),
        op: op.as_str().to_owned(),
        value,
    }
}

fn raise_limit(l: &Limit, scope_name: &str, reason: Option<&String>) -> YamlRule {
    let prefix = format!("{scope_name}.");
    let counter = l
        .counter
        .strip_prefix(&prefix)
        .unwrap_or(&l.counter)
        .to_owned();
    YamlRule {
        name: Some(format!("limit {counter}")),
        conditions: Some(vec![YamlCondition {
            path: format!("state.{scope_name}.{counter}"),
            op: "lte".to_owned(),
            value: Value::from(l.max),
        }]),
        on_deny: l.message.clone().or_else(|| reason.cloned()),
        state: Some(YamlState {
            counter,
            window: lower::window_value(l.window),
            increment: (l.increment != 1).then(|| Value::from(l.increment)),
            increment_from: l.increment_from.as_ref().map(|p| p.as_str().to_owned()),
            scope: (l.scope != Scope::Global).then(|| lower::scope_name(l.scope).to_owned()),
        }),
        ..YamlRule::default()
    }
}
