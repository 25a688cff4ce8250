//! The PolicyLayer JSON dialect.
//!
//! Beyond the seed format it accepts, as extensions: top-level `description`,
//! `refund_on_error` (default false) and `window_mode` (`sliding`, the
//! default, or `fixed`); `increment` and `message` on a limit; `message` on a
//! condition; and a `"*"` tool entry whose rules apply to every listed tool.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::PolicyError;
use super::lower::{self, Ctx, Ordered};
use super::model::{
    Action, Condition, DefaultAction, Dialect, Limit, NameIndex, Policy, ToolRule, WindowMode,
};
use super::path::{ArgPath, DocPath};

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

fn pos_of(e: &serde_json::Error) -> (u32, u32) {
    (
        u32::try_from(e.line()).unwrap_or(u32::MAX),
        u32::try_from(e.column()).unwrap_or(0),
    )
}

fn lower_policy(ctx: &mut Ctx<'_>, raw: JsonPolicy) -> Policy {
    let root = DocPath::default();
    if raw.version != "1" {
        ctx.error(
            &root.key("version"),
            format!("version must be `1`, got `{}`", raw.version),
        );
    }
    let default = match raw.default.as_str() {
        "allow" => DefaultAction::Allow,
        "deny" => DefaultAction::Deny,
        other => {
            ctx.error(
                &root.key("default"),
                format!("default must be `allow` or `deny`, got `{other}`"),
            );
            DefaultAction::Deny
        }
    };
    let window_mode = match raw.window_mode.as_deref() {
        None | Some("sliding") => WindowMode::Sliding,
        Some("fixed") => WindowMode::Fixed,
        Some(other) => {
            ctx.error(
                &root.key("window_mode"),
                format!("window_mode must be `sliding` or `fixed`, got `{other}`"),
            );
            WindowMode::Sliding
        }
    };
    let mut counters = Vec::new();
    let all_at = root.key("all_tools").key("limits");
    let all_tools = raw
        .all_tools
        .map(|a| lower_limits(ctx, &all_at, a.limits, &mut counters))
        .unwrap_or_default();
    let mut tools = Vec::new();
    let mut tool_paths = Vec::new();
    for (name, tool) in raw.tools.0 {
        let at = root.key("tools").key(&name);
        tools.push(lower_tool(ctx, &at, name, tool, &mut counters));
        tool_paths.push(at);
    }
    let policy = Policy {
        default,
        hide: raw.hide,
        all_tools,
        tools,
        refund_on_error: raw.refund_on_error.unwrap_or(false),
        window_mode,
        description: raw.description,
        source: ctx.source(),
        index: NameIndex::default(),
    };
    lower::finish_policy(ctx, policy, &root.key("hide"), &tool_paths, &counters)
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
        let mut ok = true;
        if l.counter.trim().is_empty() {
            ctx.error(&here.key("counter"), "counter must not be empty");
            ok = false;
        }
        let window = lower::window(&l.window)
            .map_err(|e| ctx.error(&here.key("window"), e))
            .ok();
        let max = lower::whole(&l.max, "max", false)
            .map_err(|e| ctx.error(&here.key("max"), e))
            .ok();
        let scope = lower::scope(&l.scope)
            .map_err(|e| ctx.error(&here.key("scope"), e))
            .ok();
        let increment = match &l.increment {
            Some(v) => lower::whole(v, "increment", true)
                .map_err(|e| ctx.error(&here.key("increment"), e))
                .ok(),
            None => Some(1),
        };
        let increment_from = match &l.increment_from {
            Some(p) => ArgPath::parse(p)
                .map(Some)
                .map_err(|e| ctx.error(&here.key("increment_from"), e))
                .ok(),
            None => Some(None),
        };
        let (Some(window), Some(max), Some(scope), Some(increment), Some(increment_from), true) =
            (window, max, scope, increment, increment_from, ok)
        else {
            continue;
        };
        counters.push((l.counter.clone(), here.key("counter")));
        out.push(Limit {
            counter: l.counter,
            window,
            max,
            scope,
            increment,
            increment_from,
            message: l.message,
            loc: ctx.loc(&here),
        });
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
            default: match self.default {
                DefaultAction::Allow => "allow".to_owned(),
                DefaultAction::Deny => "deny".to_owned(),
            },
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
