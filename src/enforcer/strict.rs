//! One strict pass over a client frame: parse into a `Value` and notice any
//! duplicate or case-variant key on the way.
//!
//! The proxy judges the `Value` but forwards the original bytes, so the two
//! must mean the same thing to every parser behind it. With a repeated key
//! they may not (serde keeps the last, others keep the first, Go matches
//! keys ignoring case). Doing the check inside the parse costs a few
//! comparisons per key instead of a second walk; the slow, pointer-naming
//! walk of [`crate::mcp::keys`] runs only to explain a frame already refused.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a frame failed the strict parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictError {
    #[error("frame is not valid json: {0}")]
    Json(String),
    #[error("{0}")]
    AmbiguousKeys(String),
}

/// Parses `bytes` as one JSON value, refusing duplicate and case-variant
/// keys in any object at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let mut ambiguous = false;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Seed {
        ambiguous: &mut ambiguous,
    }
    .deserialize(&mut de)
    .map_err(|e| StrictError::Json(e.to_string()))?;
    de.end().map_err(|e| StrictError::Json(e.to_string()))?;
    if ambiguous {
        return Err(StrictError::AmbiguousKeys(explain(bytes)));
    }
    Ok(value)
}

fn explain(bytes: &[u8]) -> String {
    let issues = crate::mcp::keys::duplicate_keys(bytes).unwrap_or_default();
    let parts: Vec<String> = issues
        .iter()
        .map(|i| {
            let kind = match i.kind {
                crate::mcp::keys::KeyIssueKind::Duplicate => "duplicate",
                crate::mcp::keys::KeyIssueKind::CaseVariant => "case-variant",
            };
            let at = if i.pointer.is_empty() {
                "/"
            } else {
                &i.pointer
            };
            format!("{kind} key `{}` at `{at}`", i.key)
        })
        .collect();
    if parts.is_empty() {
        "frame has keys that are equal under unicode case folding".to_owned()
    } else {
        format!("frame has ambiguous keys: {}", parts.join(", "))
    }
}

/// Whether two keys are equal under case folding. Go's decoder folds
/// Unicode too, so the Kelvin sign matches `k` and the long s matches `s`:
/// upper-casing then lower-casing every char covers those orbits.
fn fold_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    let fold = |s: &str| {
        s.chars()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    fold(a) == fold(b)
}

struct Seed<'a> {
    ambiguous: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(Seed {
            ambiguous: &mut *self.ambiguous,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Objects in calls are small: a linear scan beats hashing here.
            if obj.keys().any(|k| fold_eq(k, &key)) {
                *self.ambiguous = true;
            }
            let v = map.next_value_seed(Seed {
                ambiguous: &mut *self.ambiguous,
            })?;
            obj.insert(key, v);
        }
        Ok(Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_frames_parse_like_serde_json() {
        let raw = br#"{"jsonrpc":"2.0","id":1,"params":{"name":"x","arguments":{"a":[1,2.5,-3,"s",null,true,{"b":{}}]}}}"#;
        let want: Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(parse(raw).unwrap(), want);
    }

    #[test]
    fn duplicate_and_case_variant_keys_are_refused_at_any_depth() {
        for raw in [
            &br#"{"method":"tools/list","method":"tools/call"}"#[..],
            br#"{"method":"ping","Method":"tools/call"}"#,
            br#"{"params":{"arguments":{"x":[{"amount":1,"AMOUNT":2}]}}}"#,
        ] {
            let err = parse(raw).unwrap_err();
            assert!(matches!(err, StrictError::AmbiguousKeys(_)), "{err}");
        }
        let err = parse(br#"{"params":{"name":"a","Name":"b"}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame has ambiguous keys: case-variant key `Name` at `/params`"
        );
    }

    #[test]
    fn unicode_case_folding_counts_as_a_variant() {
        // U+212A KELVIN SIGN and U+017F LATIN SMALL LETTER LONG S.
        for raw in [
            "{\"kind\":1,\"\u{212A}ind\":2}",
            "{\"arguments\":{},\"argument\u{17F}\":{}}",
        ] {
            assert!(
                matches!(parse(raw.as_bytes()), Err(StrictError::AmbiguousKeys(_))),
                "{raw}"
            );
        }
        assert!(parse("{\"caf\u{e9}\":1,\"cafe\":2}".as_bytes()).is_ok());
    }

    #[test]
    fn bad_json_and_trailing_bytes_are_refused() {
        assert!(matches!(parse(b"{oops"), Err(StrictError::Json(_))));
        assert!(matches!(parse(b"{} {}"), Err(StrictError::Json(_))));
        assert!(matches!(
            parse(b"\xEF\xBB\xBF{}"),
            Err(StrictError::Json(_))
        ));
    }
}
