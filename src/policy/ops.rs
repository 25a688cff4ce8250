//! Condition operators, judged in three-valued logic.
//!
//! Type rules (the same for both dialects):
//! - numbers compare by value: `10000`, `1e4` and `10000.0` are one number;
//! - `lt`, `lte`, `gt`, `gte` judge numbers only: a string `"10000"` is not a number;
//! - `eq`, `neq`, `in`, `not_in` judge values of the same JSON type only;
//! - `regex` judges strings only, and searches (it is not anchored);
//! - `contains` is a substring test on strings, an element test on arrays;
//! - `exists` is always judged: present and not null, or not.
//!
//! Anything else (a missing path, a value of another type) is *unknown*. A
//! `require` condition holds only when it is judged true, and a `deny_if`
//! condition lets the call through only when it is judged false, so an
//! unknown never turns a denial into an admission.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::model::{Condition, Op};

/// The outcome of judging one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The condition cannot be judged on this value (missing, wrong type).
    Unknown,
}

impl Truth {
    fn from_bool(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

/// Checks that `value` suits `op`, and compiles the pattern of `regex`.
pub(crate) fn check_value(op: Op, value: &Value) -> Result<Option<regex::Regex>, String> {
    match op {
        Op::In | Op::NotIn if !value.is_array() => {
            Err(format!("op `{op}` needs a list value, got {}", kind(value)))
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte if !value.is_number() => Err(format!(
            "op `{op}` needs a number value, got {}",
            kind(value)
        )),
        Op::Exists if !value.is_boolean() => Err(format!(
            "op `exists` needs `true` or `false`, got {}",
            kind(value)
        )),
        Op::Regex => match value {
            Value::String(pattern) => regex::Regex::new(pattern)
                .map(Some)
                .map_err(|e| format!("bad regex `{pattern}`: {}", last_line(&e.to_string()))),
            other => Err(format!(
                "op `regex` needs a string pattern, got {}",
                kind(other)
            )),
        },
        _ => Ok(None),
    }
}

fn last_line(s: &str) -> String {
    let last = s
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// A short name of a value's JSON type, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Condition {
    /// Judges the condition on a call's arguments.
    pub fn eval(&self, args: &Value) -> Truth {
        let actual = self.path.get(args);
        match self.op {
            Op::Exists => {
                let present = matches!(actual, Some(v) if !v.is_null());
                Truth::from_bool(present == (self.value == Value::Bool(true)))
            }
            _ => match actual {
                None => Truth::Unknown,
                Some(actual) => self.eval_present(actual),
            },
        }
    }

    fn eval_present(&self, actual: &Value) -> Truth {
        match self.op {
            Op::Eq => equal(actual, &self.value),
            Op::Neq => equal(actual, &self.value).not(),
            Op::In => member(actual, &self.value),
            Op::NotIn => member(actual, &self.value).not(),
            Op::Lt => compare(actual, &self.value, Ordering::is_lt),
            Op::Lte => compare(actual, &self.value, Ordering::is_le),
            Op::Gt => compare(actual, &self.value, Ordering::is_gt),
            Op::Gte => compare(actual, &self.value, Ordering::is_ge),
            Op::Regex => match (actual, &self.regex) {
                (Value::String(s), Some(re)) => Truth::from_bool(re.is_match(s)),
                _ => Truth::Unknown,
            },
            Op::Contains => match (actual, &self.value) {
                (Value::String(s), Value::String(needle)) => {
                    Truth::from_bool(s.contains(needle.as_str()))
                }
                (Value::Array(items), needle) => any(items.iter().map(|item| equal(item, needle))),
                _ => Truth::Unknown,
            },
            Op::Exists => Truth::Unknown,
        }
    }
}

/// Kleene OR: true if any is true, else unknown if any is unknown.
fn any(truths: impl Iterator<Item = Truth>) -> Truth {
    let mut out = Truth::False;
    for t in truths {
        match t {
            Truth::True => return Truth::True,
            Truth::Unknown => out = Truth::Unknown,
            Truth::False => {}
        }
    }
    out
}

fn member(actual: &Value, list: &Value) -> Truth {
    match list {
        Value::Array(items) => any(items.iter().map(|item| equal(actual, item))),
        _ => Truth::Unknown,
    }
}

fn compare(actual: &Value, expected: &Value, pick: fn(Ordering) -> bool) -> Truth {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => Truth::from_bool(pick(num_cmp(a, b))),
        _ => Truth::Unknown,
    }
}

/// Equality of same-typed values; numbers by value, containers deeply.
fn equal(a: &Value, b: &Value) -> Truth {
    match (a, b) {
        (Value::Null, Value::Null) => Truth::True,
        (Value::Bool(x), Value::Bool(y)) => Truth::from_bool(x == y),
        (Value::Number(x), Value::Number(y)) => Truth::from_bool(num_cmp(x, y).is_eq()),
        (Value::String(x), Value::String(y)) => Truth::from_bool(x == y),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            Truth::from_bool(deep_eq(a, b))
        }
        _ => Truth::Unknown,
    }
}

fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y).is_eq(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Exact numeric order across u64, i64 and f64 (JSON numbers are never NaN).
pub(crate) fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (int_of(a), int_of(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => float_vs_int(b.as_f64().unwrap_or(0.0), x).reverse(),
        (None, Some(y)) => float_vs_int(a.as_f64().unwrap_or(0.0), y),
        (None, None) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

fn int_of(n: &Number) -> Option<i128> {
    n.as_u64()
        .map(i128::from)
        .or_else(|| n.as_i64().map(i128::from))
}

/// Compares a float with an integer without rounding the integer.
fn float_vs_int(f: f64, i: i128) -> Ordering {
    // Beyond ±2^64 every u64/i64 is on one side; inside, floor() is exact.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    if f >= LIMIT {
        return Ordering::Greater;
    }
    if f <= -LIMIT {
        return Ordering::Less;
    }
    let floor = f.floor();
    #[allow(clippy::cast_possible_truncation)]
    let whole = floor as i128;
    match whole.cmp(&i) {
        Ordering::Equal if f > floor => Ordering::Greater,
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::policy::path::ArgPath;
    use serde_json::json;

    fn cond(path: &str, op: Op, value: Value) -> Condition {
        Condition::new(ArgPath::parse(path).unwrap(), op, value).unwrap()
    }

    fn judge(op: Op, value: Value, actual: Value) -> Truth {
        cond("args.x", op, value).eval(&json!({ "x": actual }))
    }

    use Truth::{False as F, True as T, Unknown as U};

    #[test]
    fn eq_and_neq() {
        assert_eq!(judge(Op::Eq, json!("main"), json!("main")), T);
        assert_eq!(judge(Op::Eq, json!("main"), json!("Main")), F);
        assert_eq!(judge(Op::Eq, json!(10000), json!(1e4)), T);
        assert_eq!(judge(Op::Eq, json!(10000), json!(10000.0)), T);
        assert_eq!(judge(Op::Eq, json!(10000), json!(10000.5)), F);
        // A string is never equal to a number: type confusion is unknown.
        assert_eq!(judge(Op::Eq, json!(10000), json!("10000")), U);
        assert_eq!(judge(Op::Neq, json!(10000), json!("10000")), U);
        assert_eq!(judge(Op::Neq, json!("draft"), json!("final")), T);
        assert_eq!(judge(Op::Neq, json!("draft"), json!("draft")), F);
        assert_eq!(judge(Op::Eq, json!({"a": [1]}), json!({"a": [1.0]})), T);
        assert_eq!(judge(Op::Eq, json!(null), json!(null)), T);
        assert_eq!(judge(Op::Eq, json!(true), json!(1)), U);
    }

    #[test]
    fn in_and_not_in() {
        let list = json!(["usd", "eur"]);
        assert_eq!(judge(Op::In, list.clone(), json!("usd")), T);
        assert_eq!(judge(Op::In, list.clone(), json!("gbp")), F);
        assert_eq!(judge(Op::In, list.clone(), json!(1)), U);
        assert_eq!(judge(Op::NotIn, list.clone(), json!("gbp")), T);
        assert_eq!(judge(Op::NotIn, list.clone(), json!("eur")), F);
        assert_eq!(judge(Op::NotIn, list, json!(["usd"])), U);
        assert_eq!(judge(Op::In, json!([1, "a"]), json!(1.0)), T);
        assert_eq!(judge(Op::In, json!([1, "a"]), json!(2)), U);
    }

    #[test]
    fn numeric_ops_judge_numbers_only() {
        assert_eq!(judge(Op::Gt, json!(10000), json!(10001)), T);
        assert_eq!(judge(Op::Gt, json!(10000), json!(10000)), F);
        assert_eq!(judge(Op::Gte, json!(10000), json!(1e4)), T);
        assert_eq!(judge(Op::Lt, json!(10000), json!(9999.99)), T);
        assert_eq!(judge(Op::Lte, json!(10000), json!(10000.0)), T);
        assert_eq!(judge(Op::Lte, json!(-1), json!(-2)), T);
        assert_eq!(judge(Op::Gt, json!(10000), json!("99999")), U);
        assert_eq!(judge(Op::Lt, json!(10000), json!(null)), U);
        assert_eq!(judge(Op::Lt, json!(10000), json!([1])), U);
        // Exact across representations, past 2^53.
        assert_eq!(
            judge(
                Op::Gt,
                json!(9_007_199_254_740_992_u64),
                json!(9_007_199_254_740_993_u64)
            ),
            T
        );
        assert_eq!(judge(Op::Gt, json!(1.5), json!(u64::MAX)), T);
        assert_eq!(judge(Op::Lt, json!(-1), json!(i64::MIN)), T);
        assert_eq!(judge(Op::Gt, json!(1e300), json!(u64::MAX)), F);
    }

    #[test]
    fn regex_searches_strings_only() {
        assert_eq!(judge(Op::Regex, json!("^feat/"), json!("feat/x")), T);
        assert_eq!(judge(Op::Regex, json!("^feat/"), json!("fix/x")), F);
        assert_eq!(judge(Op::Regex, json!("evil"), json!("an evil thing")), T);
        assert_eq!(judge(Op::Regex, json!("1"), json!(1)), U);
    }

    #[test]
    fn contains_on_strings_and_lists() {
        assert_eq!(judge(Op::Contains, json!("test"), json!("a test run")), T);
        assert_eq!(judge(Op::Contains, json!("test"), json!("prod")), F);
        assert_eq!(
            judge(Op::Contains, json!("admin"), json!(["user", "admin"])),
            T
        );
        assert_eq!(judge(Op::Contains, json!(3), json!([1, 2, 3.0])), T);
        assert_eq!(judge(Op::Contains, json!("admin"), json!(["user"])), F);
        assert_eq!(judge(Op::Contains, json!("admin"), json!([1])), U);
        assert_eq!(judge(Op::Contains, json!(1), json!("123")), U);
        assert_eq!(judge(Op::Contains, json!("a"), json!({"a": 1})), U);
    }

    #[test]
    fn exists_is_always_judged() {
        let present = cond("args.email", Op::Exists, json!(true));
        let absent = cond("args.email", Op::Exists, json!(false));
        assert_eq!(present.eval(&json!({"email": "a@b"})), T);
        assert_eq!(present.eval(&json!({"email": null})), F);
        assert_eq!(present.eval(&json!({})), F);
        assert_eq!(absent.eval(&json!({})), T);
        assert_eq!(absent.eval(&json!({"email": ""})), F);
    }

    #[test]
    fn missing_path_is_unknown() {
        assert_eq!(cond("args.x", Op::Eq, json!(1)).eval(&json!({})), U);
        assert_eq!(cond("args.x", Op::Neq, json!(1)).eval(&json!({})), U);
    }

    #[test]
    fn values_must_suit_the_op() {
        assert!(check_value(Op::In, &json!("usd")).is_err());
        assert!(check_value(Op::Lt, &json!("10")).is_err());
        assert!(check_value(Op::Exists, &json!(1)).is_err());
        assert!(check_value(Op::Regex, &json!(1)).is_err());
        let err = check_value(Op::Regex, &json!("[invalid(")).unwrap_err();
        assert!(err.starts_with("bad regex `[invalid(`"), "{err}");
        assert!(check_value(Op::Eq, &json!({"any": "thing"})).is_ok());
    }

    #[test]
    fn negations_complement_on_judged_values() {
        let samples = [
            json!(1),
            json!(2.5),
            json!("a"),
            json!(null),
            json!([1]),
            json!(true),
        ];
        let cases = [
            (Op::Eq, json!(1)),
            (Op::In, json!([1, "a"])),
            (Op::Lt, json!(2)),
            (Op::Lte, json!(2.5)),
        ];
        for (op, value) in cases {
            let neg = op.negation().unwrap();
            for actual in &samples {
                let t = judge(op, value.clone(), actual.clone());
                let n = judge(neg, value.clone(), actual.clone());
                assert_eq!(n, t.not(), "{op} vs {neg} on {actual}");
            }
        }
    }
}
