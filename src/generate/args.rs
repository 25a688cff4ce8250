//! Arguments from a tool's JSON Schema: a valid value, or a valid value with
//! exactly one named rule broken.
//!
//! This is the deterministic generator the catalogue uses (`generate =
//! "valid"`); `n` varies the values so repeated calls are distinct records
//! (unique emails, reference ids) without any randomness in a replay.

use serde_json::{Map, Value, json};

pub use crate::scenario::Rule;

/// A value that satisfies `schema`, with every property filled (so the
/// largest realistic body is what crosses the enforcer).
pub fn valid(schema: &Value, n: u64) -> Value {
    gen_value(schema, n, "")
}

fn gen_value(schema: &Value, n: u64, name: &str) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match type_of(schema) {
        "object" => {
            let mut obj = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in props {
                    obj.insert(key.clone(), gen_value(sub, n, key));
                }
            }
            Value::Object(obj)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let count = min
                .max(1)
                .min(schema.get("maxItems").and_then(Value::as_u64).unwrap_or(2));
            let items = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            Value::Array(
                (0..count)
                    .map(|i| gen_value(&items, n * 10 + i, name))
                    .collect(),
            )
        }
        "integer" => Value::from(number_in(schema, n)),
        "number" => Value::from(number_in(schema, n) as f64),
        "boolean" => Value::Bool(n.is_multiple_of(2)),
        "null" => Value::Null,
        _ => Value::String(string_for(schema, n, name)),
    }
}

fn type_of(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    }
}

fn number_in(schema: &Value, n: u64) -> i64 {
    let min = schema
        .get("minimum")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .ceil() as i64;
    let max = schema
        .get("maximum")
        .and_then(Value::as_f64)
        .map_or(min.saturating_add(1000), |m| m.floor() as i64);
    let span = (max - min).max(0) as u64 + 1;
    // Small values: a generated call should sit well inside policy limits.
    min + (n % span.min(100)) as i64
}

fn string_for(schema: &Value, n: u64, name: &str) -> String {
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .unwrap_or(64) as usize;
    let base = match schema.get("format").and_then(Value::as_str) {
        Some("email") => format!("buyer{n}@example.com"),
        Some("date") => "2026-01-15".to_owned(),
        Some("date-time") => "2026-01-15T09:30:00Z".to_owned(),
        Some("uri") => format!("https://example.com/{n}"),
        Some("uuid") => format!("00000000-0000-4000-8000-{n:012}"),
        _ if name.contains("phone") => format!("+1-555-01{:02}", n % 100),
        _ if name.ends_with("_id") || name == "id" => format!("WC_{n:06}"),
        _ if name.contains("country") => "US".to_owned(),
        _ if name.contains("zip") => format!("{:05}", 10000 + n % 89999),
        _ => format!("{} {n}", name.replace('_', " ").trim()),
    };
    fit(base, min, max)
}

fn fit(mut s: String, min: usize, max: usize) -> String {
    while s.chars().count() < min {
        s.push('x');
    }
    if s.chars().count() > max {
        s = s.chars().take(max).collect();
    }
    s
}

/// A value valid against `schema` except for one instance of `rule`, and the
/// JSON pointer where it was broken; `None` when the schema has no place
/// where that rule applies.
pub fn violating(schema: &Value, rule: Rule, n: u64) -> Option<(Value, String)> {
    let mut value = valid(schema, n);
    let pointer = break_rule(schema, &mut value, rule, String::new())?;
    Some((value, pointer))
}

fn break_rule(schema: &Value, value: &mut Value, rule: Rule, at: String) -> Option<String> {
    if type_of(schema) != "object" {
        return None;
    }
    let obj = value.as_object_mut()?;
    match rule {
        Rule::Required => {
            let first = schema.get("required")?.as_array()?.first()?.as_str()?;
            obj.remove(first);
            return Some(format!("{at}/{first}"));
        }
        Rule::Additional if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
            obj.insert("unexpected_field".into(), Value::from("x"));
            return Some(format!("{at}/unexpected_field"));
        }
        _ => {}
    }
    let props = schema.get("properties")?.as_object()?;
    for (key, sub) in props {
        let here = format!("{at}/{key}");
        let slot = obj.get_mut(key)?;
        let broken = match rule {
            Rule::Type if type_of(sub) == "string" => Some(json!(12345)),
            Rule::Type if matches!(type_of(sub), "integer" | "number") => Some(json!("12345")),
            Rule::Enum if sub.get("enum").is_some() => Some(json!("not-a-listed-value")),
            Rule::Format if sub.get("format").and_then(Value::as_str) == Some("email") => {
                Some(json!("not-an-email"))
            }
            Rule::MaxLength => sub
                .get("maxLength")
                .and_then(Value::as_u64)
                .map(|m| Value::String("x".repeat(m as usize + 1))),
            Rule::MinLength => sub
                .get("minLength")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0)
                .map(|m| Value::String("x".repeat(m as usize - 1))),
            Rule::Minimum => sub
                .get("minimum")
                .and_then(Value::as_f64)
                .map(|m| json!(m - 1.0)),
            _ => None,
        };
        if let Some(b) = broken {
            *slot = b;
            return Some(here);
        }
        if type_of(sub) == "object"
            && let Some(p) = break_rule(sub, slot, rule, here.clone())
        {
            return Some(p);
        }
    }
    None
}

/// Sets `value` at a dot path (`addresses.0.city`), creating objects on the
/// way; numeric segments index arrays (extended with nulls as needed).
pub fn set_path(target: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path.split('.').collect();
    set_in(target, &segs, value);
}

fn set_in(cur: &mut Value, segs: &[&str], value: Value) {
    let Some((seg, rest)) = segs.split_first() else {
        *cur = value;
        return;
    };
    if let Ok(i) = seg.parse::<usize>()
        && (cur.is_array() || cur.is_null())
    {
        if cur.is_null() {
            *cur = Value::Array(Vec::new());
        }
        if let Value::Array(items) = cur {
            if items.len() <= i {
                items.resize(i + 1, Value::Null);
            }
            set_in(&mut items[i], rest, value);
        }
        return;
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(obj) = cur {
        set_in(
            obj.entry(seg.to_string()).or_insert(Value::Null),
            rest,
            value,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["email", "company_name"],
            "properties": {
                "email": {"type": "string", "format": "email"},
                "company_name": {"type": "string", "minLength": 2, "maxLength": 10},
                "credit_limit": {"type": "number", "minimum": 0},
                "freight_term": {"type": "string", "enum": ["prepaid", "collect"]},
                "addresses": {"type": "array", "items": {"type": "object", "properties": {"city": {"type": "string"}}}}
            }
        })
    }

    #[test]
    fn valid_values_fill_every_property_within_bounds() {
        let v = valid(&schema(), 3);
        assert_eq!(v["email"], "buyer3@example.com");
        assert_eq!(v["freight_term"], "prepaid");
        let name = v["company_name"].as_str().unwrap();
        assert!((2..=10).contains(&name.len()), "{name}");
        assert!(v["addresses"][0]["city"].is_string());
        assert_ne!(valid(&schema(), 1), valid(&schema(), 2));
    }

    #[test]
    fn each_violation_breaks_one_named_place() {
        let cases = [
            (Rule::Required, "/email"),
            (Rule::Additional, "/unexpected_field"),
            (Rule::Type, "/company_name"),
            (Rule::Enum, "/freight_term"),
            (Rule::Format, "/email"),
            (Rule::MaxLength, "/company_name"),
            (Rule::MinLength, "/company_name"),
            (Rule::Minimum, "/credit_limit"),
        ];
        for (rule, pointer) in cases {
            let (v, at) = violating(&schema(), rule, 1).unwrap();
            assert_eq!(at, pointer, "{rule:?}");
            assert_ne!(v, valid(&schema(), 1), "{rule:?}");
        }
    }

    #[test]
    fn set_path_reaches_into_arrays_and_creates_objects() {
        let mut v = json!({"addresses": [{"city": "a"}]});
        set_path(&mut v, "addresses.0.city", json!("b"));
        set_path(&mut v, "meta.source", json!(1));
        set_path(&mut v, "tags.2", json!("t"));
        assert_eq!(v["addresses"][0]["city"], "b");
        assert_eq!(v["meta"]["source"], 1);
        assert_eq!(v["tags"], json!([null, null, "t"]));
    }
}
