//! What both dialects share on the way from raw text to the model: the
//! diagnostic collector, the top-level settings, tool entries in file order,
//! limits and conditions, value checks, and the whole-policy checks. Each
//! dialect keeps only what it spells its own way (and its defaults).

use std::collections::HashMap;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::{Diagnostic, PolicyError};
use super::locate;
use super::model::{
    Condition, DefaultAction, Dialect, Limit, NameIndex, Op, Policy, RuleLoc, Scope, Source,
    ToolRule, WILDCARD, Window, WindowMode,
};
use super::ops::{check_value, kind};
use super::path::{ArgPath, DocPath, Seg};
use crate::names::lenient_key;

/// Collects diagnostics while a raw document is lowered into the model.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) src: &'a str,
    pub(crate) dialect: Dialect,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a str, src: &'a str, dialect: Dialect) -> Ctx<'a> {
        Ctx {
            file,
            src,
            dialect,
            diagnostics: Vec::new(),
        }
    }

    fn pos(&self, path: &DocPath) -> locate::Pos {
        match self.dialect {
            Dialect::Json => locate::json(self.src, path),
            Dialect::Yaml => locate::yaml(self.src, path),
        }
    }

    pub(crate) fn error(&mut self, path: &DocPath, message: impl Into<String>) {
        let (line, column) = self.pos(path);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.render(self.dialect),
            message: message.into(),
        });
    }

    pub(crate) fn loc(&self, path: &DocPath) -> RuleLoc {
        RuleLoc {
            pointer: path.render(self.dialect),
            line: Some(self.pos(path).0),
        }
    }

    pub(crate) fn source(&self) -> Source {
        Source {
            file: self.file.to_owned(),
            dialect: self.dialect,
        }
    }

    /// Records a parser error at `path`, at the parser's position when it gave one.
    pub(crate) fn parser_error(&mut self, path: DocPath, message: &str, at: Option<locate::Pos>) {
        let (line, column) = at.unwrap_or_else(|| self.pos(&path));
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.render(self.dialect),
            message: tidy_serde_message(message),
        });
    }

    pub(crate) fn finish(mut self, policy: Option<Policy>) -> Result<Policy, PolicyError> {
        match policy {
            Some(policy) if self.diagnostics.is_empty() => Ok(policy),
            _ => {
                self.diagnostics.sort_by_key(|d| (d.line, d.column));
                Err(PolicyError {
                    diagnostics: self.diagnostics,
                })
            }
        }
    }
}

/// serde wraps names in backticks already; drop the location and path some
/// parsers add, since the diagnostic carries both.
fn tidy_serde_message(message: &str) -> String {
    let cut = message.find(" at line ").unwrap_or(message.len());
    let message = &message[..cut];
    // The YAML parser prefixes its own rendering of the path.
    match message.split_once(": ") {
        Some((head, rest)) if !head.contains(char::is_whitespace) => rest.to_owned(),
        _ => message.to_owned(),
    }
}

/// A parser's 1-based line and column as a diagnostic position.
pub(crate) fn parser_pos(line: usize, column: usize) -> locate::Pos {
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(0),
    )
}

/// Parses a document with path tracking, reporting the first structural error.
pub(crate) fn parse_tracked<'de, T, D>(
    ctx: &mut Ctx<'_>,
    de: D,
    at: impl Fn(&D::Error) -> Option<locate::Pos>,
) -> Option<T>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    match serde_path_to_error::deserialize(de) {
        Ok(raw) => Some(raw),
        Err(err) => {
            let pos = at(err.inner());
            let message = err.inner().to_string();
            ctx.parser_error(doc_path(err.path()), &message, pos);
            None
        }
    }
}

fn doc_path(path: &serde_path_to_error::Path) -> DocPath {
    let mut segs = Vec::new();
    for seg in path {
        match seg {
            serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    DocPath(segs)
}

/// A map that keeps its keys in file order and refuses duplicate keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ordered<T>(pub(crate) Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of tool names")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A policy's top-level settings, each read with its dialect's defaults.
pub(crate) struct Settings {
    pub(crate) default: DefaultAction,
    pub(crate) window_mode: WindowMode,
    pub(crate) refund_on_error: bool,
    pub(crate) hide: Vec<String>,
    pub(crate) description: Option<String>,
}

/// `default`: `allow` or `deny`; anything else is reported and denies.
pub(crate) fn default_action(ctx: &mut Ctx<'_>, value: &str) -> DefaultAction {
    match value {
        "allow" => DefaultAction::Allow,
        "deny" => DefaultAction::Deny,
        other => {
            ctx.error(
                &DocPath::default().key("default"),
                format!("default must be `allow` or `deny`, got `{other}`"),
            );
            DefaultAction::Deny
        }
    }
}

/// `window_mode`: `sliding` or `fixed`; absent or misspelt, the dialect's own.
pub(crate) fn window_mode(ctx: &mut Ctx<'_>, value: Option<&str>, own: WindowMode) -> WindowMode {
    match value {
        None => own,
        Some("sliding") => WindowMode::Sliding,
        Some("fixed") => WindowMode::Fixed,
        Some(other) => {
            ctx.error(
                &DocPath::default().key("window_mode"),
                format!("window_mode must be `sliding` or `fixed`, got `{other}`"),
            );
            own
        }
    }
}

/// The rules and limits lowered so far, with where each tool and each
/// counter was written, for the whole-policy checks.
#[derive(Default)]
pub(crate) struct Lowered {
    pub(crate) all_tools: Vec<Limit>,
    pub(crate) tools: Vec<ToolRule>,
    tool_paths: Vec<DocPath>,
    pub(crate) counters: Vec<(String, DocPath)>,
}

impl Lowered {
    /// Lowers every `tools` entry in file order with `one`, which gets the
    /// entry's place, name and raw form, and the counters to add its own to.
    pub(crate) fn tools<T>(
        &mut self,
        ctx: &mut Ctx<'_>,
        entries: Ordered<T>,
        mut one: impl FnMut(&mut Ctx<'_>, &DocPath, String, T, &mut Vec<(String, DocPath)>) -> ToolRule,
    ) {
        for (name, entry) in entries.0 {
            let at = DocPath::default().key("tools").key(&name);
            let rule = one(ctx, &at, name, entry, &mut self.counters);
            self.tools.push(rule);
            self.tool_paths.push(at);
        }
    }
}

/// The fields of a counter limit that both dialects spell alike.
pub(crate) struct RawLimit<'a> {
    pub(crate) counter: &'a str,
    pub(crate) window: &'a Value,
    /// Absent: 1.
    pub(crate) increment: Option<&'a Value>,
    pub(crate) increment_from: Option<&'a str>,
    /// Absent: global.
    pub(crate) scope: Option<&'a str>,
}

/// A limit's checked fields; its name, `max`, message and place are the
/// dialect's to give.
pub(crate) struct LimitFields {
    window: Window,
    increment: u64,
    increment_from: Option<ArgPath>,
    scope: Scope,
}

impl RawLimit<'_> {
    /// Checks every field of a limit written at `at`, reporting each bad one.
    pub(crate) fn check(&self, ctx: &mut Ctx<'_>, at: &DocPath) -> Option<LimitFields> {
        // Diagnostics at one place keep the order they are made in, and a
        // one-line YAML mapping is one place: keep this order.
        let mut ok = true;
        if self.counter.trim().is_empty() {
            ctx.error(&at.key("counter"), "counter must not be empty");
            ok = false;
        }
        let span = window(self.window)
            .map_err(|e| ctx.error(&at.key("window"), e))
            .ok();
        let increment = match self.increment {
            Some(v) => whole(v, "increment", true)
                .map_err(|e| ctx.error(&at.key("increment"), e))
                .ok(),
            None => Some(1),
        };
        let increment_from = match self.increment_from {
            Some(p) => ArgPath::parse(p)
                .map(Some)
                .map_err(|e| ctx.error(&at.key("increment_from"), e))
                .ok(),
            None => Some(None),
        };
        let shared_by = match self.scope {
            Some(s) => scope(s).map_err(|e| ctx.error(&at.key("scope"), e)).ok(),
            None => Some(Scope::Global),
        };
        let (Some(window), Some(increment), Some(increment_from), Some(scope), true) =
            (span, increment, increment_from, shared_by, ok)
        else {
            return None;
        };
        Some(LimitFields {
            window,
            increment,
            increment_from,
            scope,
        })
    }
}

impl LimitFields {
    /// The limit on `counter`, admitting `max` per window.
    pub(crate) fn limit(
        self,
        counter: String,
        max: u64,
        message: Option<String>,
        loc: RuleLoc,
    ) -> Limit {
        Limit {
            counter,
            window: self.window,
            max,
            scope: self.scope,
            increment: self.increment,
            increment_from: self.increment_from,
            message,
            loc,
        }
    }
}

/// Lowers one `{path, op, value}` condition on the arguments.
pub(crate) fn condition(
    ctx: &mut Ctx<'_>,
    at: &DocPath,
    path: &str,
    op: &str,
    value: &Value,
    message: Option<&String>,
) -> Option<Condition> {
    let parsed_path = ArgPath::parse(path)
        .map_err(|e| ctx.error(&at.key("path"), e))
        .ok();
    let Some(op) = Op::parse(op) else {
        let all: Vec<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
        ctx.error(
            &at.key("op"),
            format!("unknown op `{op}`, expected one of {}", all.join(", ")),
        );
        return None;
    };
    let regex = check_value(op, value)
        .map_err(|e| ctx.error(&at.key("value"), e))
        .ok()?;
    Some(Condition {
        path: parsed_path?,
        op,
        value: value.clone(),
        message: message.cloned(),
        loc: ctx.loc(at),
        regex,
    })
}

/// `second`, `minute`, `hour`, `day`, or a whole number of seconds.
fn window(value: &Value) -> Result<Window, String> {
    let secs = match value {
        Value::String(s) => match s.as_str() {
            "second" => 1,
            "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            other => {
                return Err(format!(
                    "unknown window `{other}`, expected second, minute, hour, day or a number of seconds"
                ));
            }
        },
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("window must be a whole number of seconds, got `{n}`"))?,
        other => {
            return Err(format!(
                "window must be a unit name or a number of seconds, got {}",
                kind(other)
            ));
        }
    };
    if secs == 0 {
        return Err("window must be at least one second".to_owned());
    }
    Ok(Window(secs))
}

/// A whole number ≥ 0 (`max`), or ≥ 1 when `positive` (`increment`).
pub(crate) fn whole(value: &Value, what: &str, positive: bool) -> Result<u64, String> {
    let Value::Number(n) = value else {
        return Err(format!(
            "{what} must be a whole number, got {}",
            kind(value)
        ));
    };
    if let Some(v) = n.as_u64() {
        if positive && v == 0 {
            return Err(format!("{what} must be at least 1, got `0`"));
        }
        return Ok(v);
    }
    if n.as_i64().is_some() || n.as_f64().is_some_and(|f| f < 0.0) {
        return Err(format!("{what} must not be negative, got `{n}`"));
    }
    Err(format!("{what} must be a whole number, got `{n}`"))
}

fn scope(s: &str) -> Result<Scope, String> {
    match s {
        "grant" => Ok(Scope::Grant),
        "session" => Ok(Scope::Session),
        "global" => Ok(Scope::Global),
        other => Err(format!(
            "unknown scope `{other}`, expected grant, session or global"
        )),
    }
}

pub(crate) fn default_name(default: DefaultAction) -> &'static str {
    match default {
        DefaultAction::Allow => "allow",
        DefaultAction::Deny => "deny",
    }
}

pub(crate) fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Grant => "grant",
        Scope::Session => "session",
        Scope::Global => "global",
    }
}

/// The spelling of a window in either dialect: a unit name, else seconds.
pub(crate) fn window_value(window: Window) -> Value {
    match window.unit_name() {
        Some(unit) => Value::String(unit.to_owned()),
        None => Value::from(window.0),
    }
}

/// Assembles the policy, runs the checks that span all of it, then builds
/// its name index.
pub(crate) fn finish_policy(ctx: &mut Ctx<'_>, settings: Settings, lowered: Lowered) -> Policy {
    let mut policy = Policy {
        default: settings.default,
        hide: settings.hide,
        all_tools: lowered.all_tools,
        tools: lowered.tools,
        refund_on_error: settings.refund_on_error,
        window_mode: settings.window_mode,
        description: settings.description,
        source: ctx.source(),
        index: NameIndex::default(),
    };
    let hide_at = DocPath::default().key("hide");
    let (tool_paths, counter_paths) = (lowered.tool_paths, lowered.counters);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, name) in policy.hide.iter().enumerate() {
        let key = lenient_key(name);
        if key.is_empty() {
            ctx.error(&hide_at.index(i), "hidden tool name must not be empty");
        } else if let Some(first) = seen.insert(key, i) {
            ctx.error(
                &hide_at.index(i),
                format!("`{name}` is hidden twice (also at index {first})"),
            );
        }
    }
    let mut tools: HashMap<String, &str> = HashMap::new();
    for (rule, at) in policy.tools.iter().zip(&tool_paths) {
        if rule.name == WILDCARD {
            continue;
        }
        if let Some(first) = tools.insert(lenient_key(&rule.name), &rule.name) {
            ctx.error(
                at,
                format!(
                    "tool `{}` is the same tool as `{first}` once names are folded",
                    rule.name
                ),
            );
        }
    }
    let mut counters: HashMap<&str, &DocPath> = HashMap::new();
    for (counter, at) in &counter_paths {
        if let Some(first) = counters.insert(counter, at) {
            let first = first.render(ctx.dialect);
            ctx.error(
                at,
                format!("duplicate counter `{counter}` (also used at `{first}`)"),
            );
        }
    }
    policy.index = NameIndex::build(&policy);
    policy
}
