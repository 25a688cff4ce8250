//! A manifest synthesised from a policy, for when there is no server to
//! capture: one permissive tool per tool name the policy mentions, whose
//! input schema declares what the policy's argument paths imply.
//!
//! Permissive means the mock executes whatever the policy might be asked
//! to judge: no property is required, every object takes additional
//! properties, and a property's type is only what the operators on its path
//! need (`lt`… a number, `regex` a string, `in` the types of its list). An
//! attack that lands on the bare mock then proves the enforcer's job, not
//! the schema's.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::names::lenient_key;
use crate::policy::{ArgPath, Condition, Limit, Op, Policy, ToolRule, WILDCARD};

/// The tool every synthesised manifest adds besides the policy's own: a
/// tool the policy does not name, so calls to unlisted tools (denied under
/// `default: deny`, allowed under `default: allow`) have something to reach.
/// When the policy names a tool `gauntlet_unlisted`, a suffix is added.
pub const UNLISTED_TOOL: &str = "gauntlet_unlisted";

/// A manifest synthesised from a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesized {
    /// A `tools/list` result, `{"tools": [...]}`, ready for
    /// [`crate::mock::catalogue::Catalogue::from_manifest`] or for a file
    /// handed to `gauntlet mock --tools`.
    pub manifest: Value,
    /// What was synthesised, one line each, for the user: the first says how
    /// many tools came from which names.
    pub notes: Vec<String>,
    /// The name of the added tool the policy does not mention
    /// ([`UNLISTED_TOOL`] unless that name is taken).
    pub unlisted: String,
}

/// Synthesises a permissive manifest from `policy`: one tool per name in its
/// tool rules (but `"*"`) and its `hide` list, in that order, names folding
/// to one key counted once; plus [`UNLISTED_TOOL`]. Each tool's input schema
/// declares the properties its conditions and `increment_from` paths reach
/// (its own rule's, the `"*"` rule's and the all-tools limits'), nested
/// objects for nested paths and an array for a numeric segment.
pub fn synthesize(policy: &Policy) -> Synthesized {
    let mut names: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    let mut from_rules = 0;
    let mut from_hide = 0;
    for rule in policy.tools.iter().filter(|r| r.name != WILDCARD) {
        if seen.insert(lenient_key(&rule.name)) {
            names.push(&rule.name);
            from_rules += 1;
        }
    }
    for name in policy.hide.iter().filter(|n| *n != WILDCARD) {
        if seen.insert(lenient_key(name)) {
            names.push(name);
            from_hide += 1;
        }
    }
    let unlisted = (1..)
        .map(|i| match i {
            1 => UNLISTED_TOOL.to_owned(),
            n => format!("{UNLISTED_TOOL}_{n}"),
        })
        .find(|n| !seen.contains(&lenient_key(n)))
        .unwrap_or_else(|| UNLISTED_TOOL.to_owned());

    let file = Path::new(&policy.source.file).file_name().map_or_else(
        || policy.source.file.clone(),
        |f| f.to_string_lossy().into_owned(),
    );
    let mut shared = Shape::default();
    if let Some(w) = policy.wildcard_rule() {
        shared.add_rule(w);
    }
    shared.add_limits(&policy.all_tools);

    let mut notes = vec![synthesised_note(from_rules, from_hide)];
    let mut tools = Vec::with_capacity(names.len() + 1);
    for name in &names {
        let mut shape = shared.clone();
        if let Some(rule) = policy.tool_rule(name) {
            shape.add_rule(rule);
        }
        if !shape.props.is_empty() {
            notes.push(format!("`{name}`: {}", shape.describe()));
        }
        tools.push(tool(
            name,
            &shape,
            &format!("Synthesised from the policy `{file}`."),
        ));
    }
    let verdict = match policy.default {
        crate::policy::DefaultAction::Deny => "denies",
        crate::policy::DefaultAction::Allow => "allows",
    };
    notes.push(format!(
        "added `{unlisted}`, a tool the policy does not name (its default {verdict} it)"
    ));
    tools.push(tool(
        &unlisted,
        &shared,
        &format!("Not named by the policy `{file}`: a target for calls to unlisted tools."),
    ));
    Synthesized {
        manifest: json!({ "tools": tools }),
        notes,
        unlisted,
    }
}

fn synthesised_note(from_rules: usize, from_hide: usize) -> String {
    let total = from_rules + from_hide;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let from = match (from_rules, from_hide) {
        (_, 0) => "its tool rules".to_owned(),
        (0, _) => "its `hide` list".to_owned(),
        (r, h) => format!("its tool rules ({r}) and its `hide` list ({h})"),
    };
    if total == 0 {
        "no manifest given, and the policy names no tool: synthesised none from it".to_owned()
    } else {
        format!(
            "no manifest given: synthesised {total} tool{} from the policy's names in {from}",
            plural(total)
        )
    }
}

fn tool(name: &str, shape: &Shape, description: &str) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": shape.schema(true),
    })
}

/// What the policy's paths imply about one value: the types its operators
/// need, and what lies below it.
#[derive(Debug, Clone, Default)]
struct Shape {
    /// JSON Schema type names, in the order first implied.
    types: Vec<&'static str>,
    props: BTreeMap<String, Shape>,
    items: Option<Box<Shape>>,
}

impl Shape {
    fn add_rule(&mut self, rule: &ToolRule) {
        for c in rule.require.iter().chain(&rule.deny_if) {
            self.add_condition(c);
        }
        self.add_limits(&rule.limits);
    }

    fn add_limits(&mut self, limits: &[Limit]) {
        for path in limits.iter().filter_map(|l| l.increment_from.as_ref()) {
            // Counters only take whole amounts.
            self.at(path).imply(&["integer"]);
        }
    }

    fn add_condition(&mut self, c: &Condition) {
        let types: Vec<&'static str> = match c.op {
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => vec!["number"],
            Op::Regex => vec!["string"],
            Op::Contains => vec!["string", "array"],
            Op::Eq | Op::Neq => vec![type_name(&c.value)],
            Op::In | Op::NotIn => c
                .value
                .as_array()
                .map(|items| items.iter().map(type_name).collect())
                .unwrap_or_default(),
            Op::Exists => Vec::new(),
        };
        self.at(&c.path).imply(&types);
    }

    /// The shape at `path`, created on the way; a numeric segment is taken
    /// as an array index.
    fn at(&mut self, path: &ArgPath) -> &mut Shape {
        let rest = path.as_str().strip_prefix("args.").unwrap_or(path.as_str());
        let mut here = self;
        for seg in rest.split('.') {
            here = if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                here.imply(&["array"]);
                here.items.get_or_insert_with(Box::default)
            } else {
                here.imply(&["object"]);
                here.props.entry(seg.to_owned()).or_default()
            };
        }
        here
    }

    fn imply(&mut self, types: &[&'static str]) {
        for t in types {
            if !self.types.contains(t) {
                self.types.push(t);
            }
        }
        // Every integer is a number: the wider type alone says it.
        if self.types.contains(&"number") {
            self.types.retain(|t| *t != "integer");
        }
    }

    fn schema(&self, top: bool) -> Value {
        let mut out = Map::new();
        let types: Vec<&str> = if top {
            vec!["object"]
        } else {
            self.types.clone()
        };
        match types.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".into(), json!(one));
            }
            many => {
                out.insert("type".into(), json!(many));
            }
        }
        if !self.props.is_empty() {
            let props: Map<String, Value> = self
                .props
                .iter()
                .map(|(k, v)| (k.clone(), v.schema(false)))
                .collect();
            out.insert("properties".into(), Value::Object(props));
        }
        if let Some(items) = &self.items {
            out.insert("items".into(), items.schema(false));
        }
        if types.contains(&"object") {
            out.insert("additionalProperties".into(), Value::Bool(true));
        }
        Value::Object(out)
    }

    /// `amount (number), meta.region (string)`: every leaf path below.
    fn describe(&self) -> String {
        let mut leaves = Vec::new();
        self.leaves("", &mut leaves);
        format!("properties {}", leaves.join(", "))
    }

    fn leaves(&self, prefix: &str, out: &mut Vec<String>) {
        for (key, sub) in &self.props {
            sub.leaf(&format!("{prefix}{key}"), out);
        }
        if let Some(items) = &self.items {
            items.leaf(&format!("{prefix}0"), out);
        }
    }

    fn leaf(&self, path: &str, out: &mut Vec<String>) {
        if self.props.is_empty() && self.items.is_none() {
            let types = if self.types.is_empty() {
                "any".to_owned()
            } else {
                self.types.join(" or ")
            };
            out.push(format!("`{path}` ({types})"));
        } else {
            self.leaves(&format!("{path}."), out);
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
