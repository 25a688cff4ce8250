//! What both dialects share on the way from raw text to the model: the
//! diagnostic collector, value checks, and the whole-policy checks.

use std::collections::HashMap;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::{Diagnostic, PolicyError};
use super::locate;
use super::model::{
    Condition, Dialect, NameIndex, Op, Policy, RuleLoc, Scope, Source, WILDCARD, Window,
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
pub(crate) fn window(value: &Value) -> Result<Window, String> {
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

pub(crate) fn scope(s: &str) -> Result<Scope, String> {
    match s {
        "grant" => Ok(Scope::Grant),
        "session" => Ok(Scope::Session),
        "global" => Ok(Scope::Global),
        other => Err(format!(
            "unknown scope `{other}`, expected grant, session or global"
        )),
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

/// Checks that span the whole policy, then builds its name index.
pub(crate) fn finish_policy(
    ctx: &mut Ctx<'_>,
    mut policy: Policy,
    hide_at: &DocPath,
    tool_paths: &[DocPath],
    counter_paths: &[(String, DocPath)],
) -> Policy {
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
    for (rule, at) in policy.tools.iter().zip(tool_paths) {
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
    for (counter, at) in counter_paths {
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
