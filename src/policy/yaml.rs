//! The Intercept YAML dialect, mapped onto the model.
//!
//! How Intercept's semantics are modelled:
//! - a rule's `args.` conditions become `require` conditions of its tool
//!   (conditions are ANDed within a rule and rules are ANDed, so flattening
//!   keeps the meaning), each carrying the rule's `on_deny`;
//! - a `state` block plus a condition `state.<tool>.<counter>` `lt N` / `lte N`
//!   in the same rule is a limit with `max` N-1 / N (Intercept reserves only
//!   when the post-increment value stays within that bound); a `state` block
//!   that no `lt`/`lte` condition bounds never limits, so it adds nothing;
//! - `rate_limit: N/window` is a limit on the counter `_rate_<window>`;
//! - counters are named `<tool>.<counter>` (`_global.<counter>` under `"*"`)
//!   and are global: Intercept keeps one store per proxy, with no identity;
//! - windows are calendar-aligned, so a file loads with `window_mode: fixed`;
//! - Intercept rolls quota back when upstream fails, so `refund_on_error`
//!   defaults to true;
//! - `action: deny` makes the whole tool denied (any failing rule denies);
//! - `"*"` rules join every listed tool's; their limits go to `all_tools`.
//!
//! Where the model is stricter, it is on purpose: a condition that reads
//! another rule's or tool's counter, a non-whole limit, or a negative
//! `increment` is refused at load, and a type mismatch (`"10000"` vs 10000)
//! is unknown rather than compared as text.
//!
//! Extensions, so that every model can be written in this dialect:
//! `window_mode`, `refund_on_error`; `deny_if` lists and
//! `action: require_approval` in a rule; `scope` and numeric windows in a
//! `state` block. Files that use them load here but not in Intercept.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::PolicyError;
use super::lower::{self, Ctx, Lowered, Ordered, RawLimit, Settings};
use super::model::{
    Action, DefaultAction, Dialect, Limit, Op, Policy, Scope, ToolRule, WILDCARD, WindowMode,
};
use super::path::DocPath;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlPolicy {
    #[serde(default)]
    version: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hide: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refund_on_error: Option<bool>,
    #[serde(default)]
    tools: Ordered<Option<YamlTool>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlTool {
    #[serde(default)]
    rules: Option<Vec<YamlRule>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conditions: Option<Vec<YamlCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deny_if: Option<Vec<YamlCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_deny: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<YamlState>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlCondition {
    path: String,
    op: String,
    value: Value,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlState {
    #[serde(default)]
    counter: String,
    #[serde(default)]
    window: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    increment: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    increment_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Loads a policy written in the Intercept YAML dialect.
pub fn parse_yaml(src: &str, file: &str) -> Result<Policy, PolicyError> {
    let mut ctx = Ctx::new(file, src, Dialect::Yaml);
    let de = serde_norway::Deserializer::from_str(src);
    let raw: Option<YamlPolicy> = lower::parse_tracked(&mut ctx, de, |e: &serde_norway::Error| {
        e.location()
            .map(|l| lower::parser_pos(l.line(), l.column()))
    });
    let policy = raw.map(|raw| lower_policy(&mut ctx, raw));
    ctx.finish(policy)
}

fn lower_policy(ctx: &mut Ctx<'_>, raw: YamlPolicy) -> Policy {
    let root = DocPath::default();
    let version_ok = match &raw.version {
        Value::String(s) => s == "1",
        Value::Number(n) => n.as_u64() == Some(1),
        _ => false,
    };
    if !version_ok {
        let got = match &raw.version {
            Value::Null => "nothing".to_owned(),
            Value::String(s) => format!("`{s}`"),
            other => format!("`{other}`"),
        };
        ctx.error(
            &root.key("version"),
            format!("version must be `1`, got {got}"),
        );
    }
    let settings = Settings {
        default: raw
            .default
            .as_deref()
            .map_or(DefaultAction::Allow, |d| lower::default_action(ctx, d)),
        window_mode: lower::window_mode(ctx, raw.window_mode.as_deref(), WindowMode::Fixed),
        refund_on_error: raw.refund_on_error.unwrap_or(true),
        hide: raw.hide,
        description: raw.description,
    };
    let mut lowered = Lowered::default();
    lowered.tools(ctx, raw.tools, |ctx, at, name, tool, counters| {
        let rules = tool.and_then(|t| t.rules).unwrap_or_default();
        lower_tool(ctx, at, &name, rules, counters)
    });
    for rule in lowered.tools.iter_mut().filter(|t| t.name == WILDCARD) {
        lowered.all_tools.append(&mut rule.limits);
    }
    lower::finish_policy(ctx, settings, lowered)
}

fn lower_tool(
    ctx: &mut Ctx<'_>,
    at: &DocPath,
    name: &str,
    rules: Vec<YamlRule>,
    counters: &mut Vec<(String, DocPath)>,
) -> ToolRule {
    let scope_name = if name == WILDCARD { "_global" } else { name };
    let mut tool = ToolRule {
        name: name.to_owned(),
        action: Action::Allow,
        reason: None,
        limits: Vec::new(),
        require: Vec::new(),
        deny_if: Vec::new(),
        loc: ctx.loc(at),
    };
    for (i, rule) in rules.into_iter().enumerate() {
        let here = at.key("rules").index(i);
        if rule.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            ctx.error(&here.key("name"), "rule must have a name");
        }
        if let Some(rate) = &rule.rate_limit {
            lower_rate_limit(ctx, &here, scope_name, &rule, rate, &mut tool, counters);
            continue;
        }
        let conditions = rule.conditions.as_deref().unwrap_or_default();
        let deny_if = rule.deny_if.as_deref().unwrap_or_default();
        match rule.action.as_deref() {
            Some("deny") | Some("require_approval") => {
                if !conditions.is_empty() || !deny_if.is_empty() {
                    ctx.error(
                        &here.key("conditions"),
                        "a deny rule must not have conditions",
                    );
                }
                let approval = rule.action.as_deref() == Some("require_approval");
                if tool.action != Action::Deny {
                    tool.action = if approval {
                        Action::RequireApproval
                    } else {
                        Action::Deny
                    };
                    tool.reason = rule.on_deny.clone();
                }
                continue;
            }
            None | Some("evaluate") => {}
            Some(other) => {
                ctx.error(
                    &here.key("action"),
                    format!("unknown action `{other}`, expected evaluate or deny"),
                );
                continue;
            }
        }
        if conditions.is_empty() && deny_if.is_empty() {
            ctx.error(&here, "an evaluate rule needs at least one condition");
        }
        let mut bound: Option<(u64, DocPath)> = None;
        for (j, c) in conditions.iter().enumerate() {
            let c_at = here.key("conditions").index(j);
            if c.path.starts_with("state.") {
                if let Some(max) = state_bound(ctx, &c_at, scope_name, &rule, c) {
                    if bound.is_some() {
                        ctx.error(&c_at, "a rule may bound its counter only once");
                    } else {
                        bound = Some((max, c_at));
                    }
                }
            } else if c.path.starts_with("args.") {
                let cond =
                    lower::condition(ctx, &c_at, &c.path, &c.op, &c.value, rule.on_deny.as_ref());
                tool.require.extend(cond);
            } else {
                ctx.error(
                    &c_at.key("path"),
                    format!("path must start with `args.` or `state.`, got `{}`", c.path),
                );
            }
        }
        for (j, c) in deny_if.iter().enumerate() {
            let c_at = here.key("deny_if").index(j);
            let cond =
                lower::condition(ctx, &c_at, &c.path, &c.op, &c.value, rule.on_deny.as_ref());
            tool.deny_if.extend(cond);
        }
        if let Some(state) = &rule.state {
            let limit = lower_state(
                ctx,
                &here,
                scope_name,
                state,
                bound.map(|b| b.0),
                rule.on_deny.clone(),
            );
            if let Some(limit) = limit {
                counters.push((limit.counter.clone(), here.key("state").key("counter")));
                tool.limits.push(limit);
            }
        }
    }
    tool
}

/// The `max` a `state.<scope>.<counter>` condition puts on its own rule's counter.
fn state_bound(
    ctx: &mut Ctx<'_>,
    at: &DocPath,
    scope: &str,
    rule: &YamlRule,
    c: &YamlCondition,
) -> Option<u64> {
    let Some(state) = &rule.state else {
        ctx.error(
            &at.key("path"),
            format!("condition on `{}` needs a `state` block in the same rule (only there is it enforced)", c.path),
        );
        return None;
    };
    let own = format!("state.{scope}.{}", state.counter);
    if c.path != own {
        ctx.error(
            &at.key("path"),
            format!(
                "condition reads `{}`, but this rule's counter is `{own}`",
                c.path
            ),
        );
        return None;
    }
    let op = Op::parse(&c.op);
    if !matches!(op, Some(Op::Lt | Op::Lte)) {
        ctx.error(
            &at.key("op"),
            format!("a counter is bounded with `lt` or `lte`, got `{}`", c.op),
        );
        return None;
    }
    let bound = lower::whole(&c.value, "a counter bound", false)
        .map_err(|e| ctx.error(&at.key("value"), e))
        .ok()?;
    if op == Some(Op::Lt) {
        let Some(max) = bound.checked_sub(1) else {
            ctx.error(
                &at.key("value"),
                "`lt 0` admits nothing: max must not be negative",
            );
            return None;
        };
        return Some(max);
    }
    Some(bound)
}

fn lower_state(
    ctx: &mut Ctx<'_>,
    rule_at: &DocPath,
    scope_name: &str,
    state: &YamlState,
    max: Option<u64>,
    message: Option<String>,
) -> Option<Limit> {
    let fields = RawLimit {
        counter: &state.counter,
        window: &state.window,
        // Intercept reads `increment: 0` as "not given", that is 1.
        increment: state.increment.as_ref().filter(|v| v.as_u64() != Some(0)),
        increment_from: state.increment_from.as_deref(),
        scope: state.scope.as_deref(),
    }
    .check(ctx, &rule_at.key("state"))?;
    Some(fields.limit(
        format!("{scope_name}.{}", state.counter),
        max?,
        message,
        ctx.loc(rule_at),
    ))
}

fn lower_rate_limit(
    ctx: &mut Ctx<'_>,
    at: &DocPath,
    scope_name: &str,
    rule: &YamlRule,
    rate: &Value,
    tool: &mut ToolRule,
    counters: &mut Vec<(String, DocPath)>,
) {
    // Intercept only expands a rate_limit it can use alone; report every clash.
    let mut clash = false;
    if rule.conditions.is_some() || rule.state.is_some() || rule.deny_if.is_some() {
        ctx.error(at, "rate_limit cannot be combined with conditions or state");
        clash = true;
    }
    if rule.action.as_deref().is_some_and(|a| a != "evaluate") {
        ctx.error(
            &at.key("action"),
            "rate_limit cannot be used with action `deny`",
        );
        clash = true;
    }
    let parsed = match rate {
        Value::String(s) => parse_rate(s),
        other => Err(format!(
            "rate_limit must look like `N/window` (e.g. `5/hour`), got `{other}`"
        )),
    };
    let (max, window) = match parsed {
        Ok(ok) => ok,
        Err(e) => {
            ctx.error(&at.key("rate_limit"), e);
            return;
        }
    };
    if clash {
        return;
    }
    let unit = window.unit_name().unwrap_or("window");
    let counter = format!("{scope_name}._rate_{unit}");
    counters.push((counter.clone(), at.key("rate_limit")));
    tool.limits.push(Limit {
        counter,
        window,
        max,
        scope: Scope::Global,
        increment: 1,
        increment_from: None,
        message: Some(rule.on_deny.clone().unwrap_or_else(|| {
            format!("Rate limit of {max} per {unit} reached. Try again later.")
        })),
        loc: ctx.loc(at),
    });
}

fn parse_rate(s: &str) -> Result<(u64, super::model::Window), String> {
    let Some((count, unit)) = s.split_once('/') else {
        return Err(format!(
            "rate_limit must look like `N/window` (e.g. `5/hour`), got `{s}`"
        ));
    };
    let max = match count.trim().parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(format!(
                "rate_limit count must be a positive whole number, got `{count}`"
            ));
        }
    };
    let window = match unit.trim() {
        "second" => super::model::Window::SECOND,
        "minute" => super::model::Window::MINUTE,
        "hour" => super::model::Window::HOUR,
        "day" => super::model::Window::DAY,
        other => {
            return Err(format!(
                "rate_limit window must be second, minute, hour or day, got `{other}`"
            ));
        }
    };
    Ok((max, window))
}

mod out;
