//! Results that satisfy a tool's `outputSchema`.
//!
//! A manifest's tools echo their arguments, but a tool that declares an
//! output schema must answer with structured content that satisfies it:
//! SDK clients (and the proxies built on them) check it and turn a
//! mismatch into an error, which would make every call through such an
//! enforcer look over-blocked. So the echo is fitted to the schema: kept
//! as is when it already satisfies it, else merged into the smallest
//! instance of the schema that can be built.

use serde_json::{Map, Value, json};

/// How deep `$ref`s and nesting are followed before giving up.
const MAX_DEPTH: usize = 32;

/// A tool's output schema, compiled, and its smallest instance.
#[derive(Debug)]
pub(super) struct Output {
    validator: jsonschema::Validator,
    /// The smallest instance found, when the schema accepts it.
    base: Option<Value>,
}

impl Output {
    /// Compiles `schema`; the error is the compiler's message.
    pub(super) fn new(schema: &Value) -> Result<Output, String> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| e.to_string())?;
        let base = smallest(schema, schema, 0).filter(|v| validator.is_valid(v));
        Ok(Output { validator, base })
    }

    /// `echo` when it satisfies the schema; else the smallest instance with
    /// `echo`'s keys added where they do not break it; `echo` unchanged when
    /// no instance is known (the client will see what the schema rejects).
    pub(super) fn fit(&self, echo: Value) -> Value {
        if self.validator.is_valid(&echo) {
            return echo;
        }
        let Some(base) = &self.base else {
            return echo;
        };
        if let (Value::Object(base_map), Value::Object(extra)) = (base, &echo) {
            let mut merged = base_map.clone();
            for (k, v) in extra {
                merged.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let merged = Value::Object(merged);
            if self.validator.is_valid(&merged) {
                return merged;
            }
        }
        base.clone()
    }
}

/// The smallest value `schema` plausibly accepts (checked by the caller).
fn smallest(schema: &Value, root: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let Value::Object(s) = schema else {
        // `true` (or a schema that is not an object) accepts anything.
        return Some(Value::Null);
    };
    if let Some(c) = s.get("const") {
        return Some(c.clone());
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Some(first.clone());
    }
    if let Some(target) = s.get("$ref").and_then(Value::as_str) {
        let resolved = target.strip_prefix('#').and_then(|p| root.pointer(p))?;
        return smallest(resolved, root, depth + 1);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array) {
            return options.iter().find_map(|o| smallest(o, root, depth + 1));
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in all {
            match smallest(part, root, depth + 1)? {
                Value::Object(m) => merged.extend(m),
                other if all.len() == 1 => return Some(other),
                _ => return None,
            }
        }
        return Some(Value::Object(merged));
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if s.contains_key("properties") || s.contains_key("required") => vec!["object"],
        _ => vec!["null"],
    };
    let kind = if types.contains(&"null") {
        "null"
    } else {
        types.first().copied().unwrap_or("null")
    };
    Some(match kind {
        "object" => {
            let props = s.get("properties").and_then(Value::as_object);
            let mut out = Map::new();
            for name in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let sub = props
                    .and_then(|p| p.get(name))
                    .unwrap_or(&Value::Bool(true));
                out.insert(name.to_owned(), smallest(sub, root, depth + 1)?);
            }
            Value::Object(out)
        }
        "array" => {
            let n = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let items = s.get("items").unwrap_or(&Value::Bool(true));
            let one = if n > 0 {
                smallest(items, root, depth + 1)?
            } else {
                Value::Null
            };
            Value::Array((0..n.min(64)).map(|_| one.clone()).collect())
        }
        "string" => json!(string(s)),
        "integer" | "number" => number(s),
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    })
}

fn string(s: &Map<String, Value>) -> String {
    let base = match s.get("format").and_then(Value::as_str) {
        Some("date-time") => "1970-01-01T00:00:00Z",
        Some("date") => "1970-01-01",
        Some("time") => "00:00:00Z",
        Some("email") => "a@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "00000000-0000-0000-0000-000000000000",
        Some("ipv4") => "127.0.0.1",
        _ => "",
    };
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let mut out = base.to_owned();
    while out.chars().count() < min.min(4096) {
        out.push('x');
    }
    out
}

fn number(s: &Map<String, Value>) -> Value {
    let integer = s.get("type").and_then(Value::as_str) == Some("integer");
    let mut n = match (
        s.get("minimum").and_then(Value::as_f64),
        s.get("exclusiveMinimum").and_then(Value::as_f64),
    ) {
        (Some(min), _) => min,
        (None, Some(above)) if integer => above.floor() + 1.0,
        (None, Some(above)) => above + 1.0,
        (None, None) => 0.0,
    };
    if let Some(max) = s.get("maximum").and_then(Value::as_f64)
        && n > max
    {
        n = max;
    }
    if integer {
        json!(n.ceil() as i64)
    } else {
        json!(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(schema: Value, echo: Value) -> Value {
        Output::new(&schema).unwrap().fit(echo)
    }

    #[test]
    fn an_echo_that_fits_is_kept_and_one_that_does_not_is_fitted() {
        let echo = json!({"tool": "t", "arguments": {"a": 1}});
        assert_eq!(
            fit(
                json!({"type": "object", "additionalProperties": true}),
                echo.clone()
            ),
            echo
        );
        // fastmcp's wrapped list result: a required `result` array.
        let wrapped = json!({"type": "object", "required": ["result"],
            "properties": {"result": {"type": "array", "items": {"type": "object"}}},
            "x-fastmcp-wrap-result": true});
        assert_eq!(
            fit(wrapped, echo.clone()),
            json!({"result": [], "tool": "t", "arguments": {"a": 1}})
        );
        // Closed objects get the smallest instance alone.
        let closed = json!({"type": "object", "additionalProperties": false,
            "required": ["id", "n", "at", "kind", "tags"],
            "properties": {"id": {"type": "string", "minLength": 3},
                           "n": {"type": "integer", "exclusiveMinimum": 4, "maximum": 9},
                           "at": {"type": "string", "format": "date-time"},
                           "kind": {"$ref": "#/$defs/kind"},
                           "tags": {"type": "array", "minItems": 2,
                                    "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
            "$defs": {"kind": {"enum": ["charge", "refund"]}}});
        assert_eq!(
            fit(closed, echo.clone()),
            json!({"id": "xxx", "n": 5, "at": "1970-01-01T00:00:00Z", "kind": "charge",
                   "tags": ["", ""]})
        );
        // No instance known (a pattern it cannot guess): the echo as it is.
        let hopeless = json!({"type": "string", "pattern": "^pay_[0-9]+$"});
        assert_eq!(fit(hopeless, echo.clone()), echo);
    }
}
