//! Values at a policy's boundaries: for each condition the exact edge, one
//! step either side, type confusions and string-number spellings; for each
//! `increment_from` path the amounts that break naive counters.
//!
//! Enforcers rarely get the middle of a range wrong; they get the edge, the
//! type or the spelling wrong, so these are the values worth sending.

use serde_json::{Value, json};

use crate::policy::{Condition, Op};

/// Why a boundary value was chosen; reported in the coverage summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Edge {
    /// Exactly the condition's value (or one element of its list).
    Exact,
    /// One step past the value.
    Above,
    /// One step short of the value.
    Below,
    /// The same number written as a string, or with another spelling.
    Spelling,
    /// A value of another JSON type.
    TypeConfusion,
    /// A value that matches or contains the pattern or needle.
    Match,
    /// Absent or null.
    Missing,
    /// A negative amount.
    Negative,
    /// Zero.
    Zero,
    /// Beyond any counter's range.
    Huge,
    /// A fraction.
    Float,
}

impl Edge {
    /// The word used in the coverage summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Exact => "exact",
            Edge::Above => "above",
            Edge::Below => "below",
            Edge::Spelling => "spelling",
            Edge::TypeConfusion => "type-confusion",
            Edge::Match => "match",
            Edge::Missing => "missing",
            Edge::Negative => "negative",
            Edge::Zero => "zero",
            Edge::Huge => "huge",
            Edge::Float => "float",
        }
    }
}

fn number_edges(n: &serde_json::Number) -> Vec<(Edge, Value)> {
    let mut out = vec![(Edge::Exact, Value::Number(n.clone()))];
    if let Some(i) = n.as_i64() {
        out.push((Edge::Above, json!(i.saturating_add(1))));
        out.push((Edge::Below, json!(i.saturating_sub(1))));
        out.push((Edge::Spelling, json!(format!("{i}"))));
        out.push((Edge::Spelling, json!(i as f64 + 0.0)));
        out.push((Edge::Spelling, json!(format!("{i}.0"))));
        out.push((Edge::Float, json!(i as f64 + 0.5)));
        out.push((Edge::Float, json!(i as f64 - 0.5)));
    } else if let Some(f) = n.as_f64() {
        out.push((Edge::Above, json!(f + 1.0)));
        out.push((Edge::Below, json!(f - 1.0)));
        out.push((Edge::Spelling, json!(format!("{f}"))));
    }
    out
}

fn type_confusions(v: &Value) -> Vec<(Edge, Value)> {
    let mut out = vec![
        (Edge::TypeConfusion, json!([v.clone()])),
        (Edge::TypeConfusion, json!({"value": v.clone()})),
        (Edge::TypeConfusion, Value::Bool(true)),
        (Edge::Missing, Value::Null),
    ];
    if let Value::String(s) = v {
        out.push((Edge::Spelling, json!(s.to_uppercase())));
        out.push((Edge::Spelling, json!(format!(" {s}"))));
        if let Ok(n) = s.parse::<i64>() {
            out.push((Edge::TypeConfusion, json!(n)));
        }
    }
    out
}

/// Values at the edges of one condition, each with the reason it was chosen.
pub fn condition_values(c: &Condition) -> Vec<(Edge, Value)> {
    let mut out = Vec::new();
    match (c.op, &c.value) {
        (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Value::Number(n)) => {
            out.extend(number_edges(n));
            out.extend(type_confusions(&c.value));
        }
        (Op::In | Op::NotIn, Value::Array(items)) => {
            // Every element, not just the first: a check that stops early
            // only shows on the later ones.
            for item in items {
                out.push((Edge::Exact, item.clone()));
                if let Value::Number(n) = item {
                    out.extend(number_edges(n).into_iter().skip(1));
                }
                out.extend(type_confusions(item));
            }
            out.push((Edge::Above, json!("ZZ")));
        }
        (Op::Eq | Op::Neq, v) => {
            out.push((Edge::Exact, v.clone()));
            if let Value::Number(n) = v {
                out.extend(number_edges(n).into_iter().skip(1));
            }
            out.extend(type_confusions(v));
        }
        (Op::Regex, Value::String(pattern)) => {
            for m in regex_samples(pattern) {
                out.push((Edge::Match, json!(m)));
            }
            out.push((Edge::TypeConfusion, json!(["x"])));
            out.push((Edge::Missing, Value::Null));
        }
        (Op::Contains, v) => {
            if let Value::String(s) = v {
                out.push((Edge::Match, json!(format!("x{s}y"))));
                out.push((Edge::Exact, json!(s)));
                out.push((Edge::Spelling, json!(s.to_uppercase())));
            }
            out.push((Edge::TypeConfusion, json!([v.clone()])));
            out.push((Edge::Missing, Value::Null));
        }
        (Op::Exists, _) => {
            out.push((Edge::Missing, Value::Null));
            out.push((Edge::Exact, json!("")));
            out.push((Edge::Zero, json!(0)));
            out.push((Edge::TypeConfusion, json!(false)));
        }
        (_, v) => out.extend(type_confusions(v)),
    }
    out
}

/// Amounts for an `increment_from` path.
pub fn increment_values() -> Vec<(Edge, Value)> {
    vec![
        (Edge::Negative, json!(-1)),
        (Edge::Negative, json!(-100_000)),
        (Edge::Negative, json!(-0.5)),
        (Edge::Zero, json!(0)),
        (Edge::Zero, json!(-0.0)),
        (Edge::Huge, json!(u64::MAX)),
        (Edge::Huge, json!(i64::MAX)),
        (Edge::Huge, json!(1e300)),
        (Edge::Float, json!(0.5)),
        (Edge::Float, json!(2.5)),
        (Edge::Spelling, json!("100")),
        (Edge::Spelling, json!("-100")),
        (Edge::TypeConfusion, json!([1])),
        (Edge::TypeConfusion, json!(true)),
        (Edge::Missing, Value::Null),
    ]
}

/// Strings a regular expression matches, built from its literal pieces and
/// character classes; not exhaustive, but enough to hit the pattern.
pub fn regex_samples(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let body = pattern.trim_start_matches("(?i)");
    // A class like `[$`|;&<>]`: each member inside innocent text.
    if let (Some(open), Some(close)) = (body.find('['), body.rfind(']'))
        && open < close
    {
        let class = &body[open + 1..close];
        let prefix = unescape(&body[..open]);
        let prefix = if prefix.chars().any(|c| "[]()|?*+{}^$".contains(c)) {
            String::new()
        } else {
            prefix
        };
        for ch in unescape(class).chars().filter(|c| *c != '^').take(4) {
            out.push(format!("acme{prefix}{ch}co"));
        }
    }
    // Alternatives like `(a|b|c)`: each literal alternative.
    for alt in body
        .split(['|', '(', ')'])
        .map(unescape)
        .filter(|a| !a.is_empty() && a.chars().all(|c| !"[]?*+{}\\^$".contains(c)))
        .take(6)
    {
        out.push(format!("x {alt} y"));
    }
    if out.is_empty() {
        out.push(unescape(body));
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('b' | 's' | 'd' | 'w') => {}
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ArgPath;

    fn cond(op: Op, value: Value) -> Condition {
        Condition::new(ArgPath::parse("args.x").unwrap(), op, value).unwrap()
    }

    #[test]
    fn numeric_edges_include_the_edge_and_both_neighbours() {
        let v = condition_values(&cond(Op::Gte, json!(10000)));
        let values: Vec<&Value> = v.iter().map(|(_, v)| v).collect();
        for want in [json!(10000), json!(10001), json!(9999), json!("10000")] {
            assert!(values.contains(&&want), "{want} missing from {values:?}");
        }
    }

    #[test]
    fn every_list_element_is_tried() {
        let v = condition_values(&cond(Op::In, json!(["KP", "IR", "CU"])));
        for want in ["KP", "IR", "CU"] {
            assert!(
                v.iter().any(|(e, v)| *e == Edge::Exact && v == want),
                "{want}"
            );
        }
    }

    #[test]
    fn regex_samples_match_their_pattern() {
        for p in [
            "[$`|;&<>]",
            "(?i)(union|select|drop)",
            "[\\r\\n]",
            "\\.\\.[/\\\\]",
        ] {
            let re = regex::Regex::new(p).unwrap();
            let samples = regex_samples(p);
            assert!(samples.iter().any(|s| re.is_match(s)), "{p}: {samples:?}");
        }
    }
}
