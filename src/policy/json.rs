//! The PolicyLayer JSON dialect.
//!
//! Beyond the seed format it accepts, as extensions: top-level `description`,
//! `refund_on_error` (default false) and `window_mode` (`sliding`, the
//! default, or `fixed`); `increment` and `message` on a limit; `message` on a
//! condition; and a `"*"` tool entry whose rules apply to every listed tool.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::PolicyError;
use super::lower::{self, Ctx, Lowered, Ordered, RawLimit, Settings};
use super::model::{Action, Condition, Dialect, Limit, Policy, ToolRule, WindowMode};
use super::path::DocPath;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPolicy {
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    default: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hide: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all_tools: Option<JsonAllTools>,
    #[serde(default)]
    tools: Ordered<JsonTool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refund_on_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_mode: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonAllTools {
    #[serde(default)]
    limits: Vec<JsonLimit>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    limits: Vec<JsonLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    require: Vec<JsonCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deny_if: Vec<JsonCondition>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLimit {
    counter: String,
    window: Value,
    max: Value,
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    increment: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    increment_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCondition {
    path: String,
    op: String,
    value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Loads a policy written in the PolicyLayer JSON dialect.
pub fn parse_json(src: &str, file: &str) -> Result<Policy, PolicyError> {
    let mut ctx = Ctx::new(file, src, Dialect::Json);
    let mut de = serde_json::Deserializer::from_str(src);
    let pos_of = |e: &serde_json::Error| lower::parser_pos(e.line(), e.column());
    let raw: Option<JsonPolicy> =
        lower::parse_tracked(&mut ctx, &mut de, |e: &serde_json::Error| {
            (e.line() > 0).then(|| pos_of(e))
        });
    let raw = raw.and_then(|raw| match de.end() {
        Ok(()) => Some(raw),
        Err(e) => {
            ctx.parser_error(DocPath::default(), &e.to_string(), Some(pos_of(&e)));
            None
        }
    });
    let policy = raw.map(|raw| lower_policy(&mut ctx, raw));
    ctx.finish(policy)
}

fn lower_policy(ctx: &mut Ctx<'_>, raw: JsonPolicy) -> Policy {
    let root = DocPath::default();
    if raw.version != "1" {
        ctx.error(
            &root.key("version"),
            format!("version must be `1`, got `{}`", raw.version),
        );
    }
    let settings = Settings {
        default: lower::default_action(ctx, &raw.default),
        window_mode: lower::window_mode(ctx, raw.window_mode.as_deref(), WindowMode::Sliding),
        refund_on_error: raw.refund_on_error.unwrap_or(false),
        hide: raw.hide,
        description: raw.description,
    };
    let mut lowered = Lowered::default();
    if let Some(all) = raw.all_tools {
        let at = root.key("all_tools").key("limits");
        lowered.all_tools = lower_limits(ctx, &at, all.limits, &mut lowered.counters);
    }
    lowered.tools(ctx, raw.tools, lower_tool);
    lower::finish_policy(ctx, settings, lowered)
}

fn lower_tool(
    ctx: &mut Ctx<'_>,
    at: &DocPath,
    name: String,
    tool: JsonTool,
    counters: &mut Vec<(String, DocPath)>,
) -> ToolRule {
    let action = match tool.action.as_deref() {
        None | Some("allow") => Action::Allow,
        Some("deny") => Action::Deny,
        Some("require_approval") => Action::RequireApproval,
        Some(other) => {
            ctx.error(
                &at.key("action"),
                format!("unknown action `{other}`, expected one of allow, deny, require_approval"),
            );
            Action::Deny
        }
    };
    let limits = lower_limits(ctx, &at.key("limits"), tool.limits, counters);
    let require = lower_conditions(ctx, &at.key("require"), tool.require);
    let deny_if = lower_conditions(ctx, &at.key("deny_if"), tool.deny_if);
    ToolRule {
        name,
        action,
        reason: tool.reason,
        limits,
        require,
        deny_if,
        loc: ctx.loc(at),
    }
}

fn lower_conditions(ctx: &mut Ctx<'_>, at: &DocPath, raw: Vec<JsonCondition>) -> Vec<Condition> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            lower::condition(
                ctx,
                &at.index(i),
                &c.path,
                &c.op,
                &c.value,
                c.message.as_ref(),
            )
        })
        .collect()
}

fn lower_limits(
    ctx: &mut Ctx<'_>,
    at: &DocPath,
    raw: Vec<JsonLimit>,
    counters: &mut Vec<(String, DocPath)>,
) -> Vec<Limit> {
    let mut out = Vec::new();
    for (i, l) in raw.into_iter().enumerate() {
        let here = at.index(i);
        let fields = RawLimit {
            counter: &l.counter,
            window: &l.window,
            increment: l.increment.as_ref(),
            increment_from: l.increment_from.as_deref(),
            scope: Some(&l.scope),
        }
        .check(ctx, &here);
        let max = lower::whole(&l.max, "max", false)
            .map_err(|e| ctx.error(&here.key("max"), e))
            .ok();
        let (Some(fields), Some(max)) = (fields, max) else {
            continue;
        };
        counters.push((l.counter.clone(), here.key("counter")));
        out.push(fields.limit(l.counter, max, l.message, ctx.loc(&here)));
    }
    out
}

fn raise_limit(l: &Limit) -> JsonLimit {
    JsonLimit {
        counter: l.counter.clone(),
        window: lower::window_value(l.window),
        max: Value::from(l.max),
        scope: lower::scope_name(l.scope).to_owned(),
        increment: (l.increment != 1).then(|| Value::from(l.increment)),
        increment_from: l.increment_from.as_ref().map(|p| p.as_str().to_owned()),
        message: l.message.clone(),
    }
}

fn raise_condition(c: &Condition) -> JsonCondition {
    JsonCondition {
        path: c.path.as_str().to_owned(),
        op: c.op.as_str().to_owned(),
        value: c.value.clone(),
        message: c.message.clone(),
    }
}

impl Policy {
    /// The policy in the PolicyLayer JSON dialect (pretty-printed).
    pub fn to_json(&self) -> String {
        let tools = self
            .tools
            .iter()
            .map(|t| {
                let action = match t.action {
                    Action::Allow => None,
                    Action::Deny => Some("deny".to_owned()),
                    Action::RequireApproval => Some("require_approval".to_owned()),
                };
                let tool = JsonTool {
                    action,
                    reason: t.reason.clone(),
                    limits: t.limits.iter().map(raise_limit).collect(),
                    require: t.require.iter().map(raise_condition).collect(),
                    deny_if: t.deny_if.iter().map(raise_condition).collect(),
                };
                (t.name.clone(), tool)
            })
            .collect();
        let raw = JsonPolicy {
            version: "1".to_owned(),
            description: self.description.clone(),
            default: lower::default_name(self.default).to_owned(),
            hide: self.hide.clone(),
            all_tools: (!self.all_tools.is_empty()).then(|| JsonAllTools {
                limits: self.all_tools.iter().map(raise_limit).collect(),
            }),
            tools: Ordered(tools),
            refund_on_error: self.refund_on_error.then_some(true),
            window_mode: (self.window_mode == WindowMode::Fixed).then(|| "fixed".to_owned()),
        };
        serde_json::to_string_pretty(&raw).unwrap_or_default()
    }
}
