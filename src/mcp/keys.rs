//! Finds duplicate and case-variant object keys in raw JSON.
//!
//! `serde_json` keeps the last of duplicate keys, Go's decoder matches keys
//! case-insensitively, and others keep the first: a frame with
//! `"name":"allowed","name":"denied"` or `"Name":…` can mean one tool to an
//! enforcer and another to the server behind it. A `Value` has already lost
//! that information, so this walks the bytes.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A key that makes a JSON object ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyIssue {
    /// JSON pointer of the object that holds the key.
    pub pointer: String,
    pub key: String,
    pub kind: KeyIssueKind,
}

/// How a key collides with an earlier one in the same object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyIssueKind {
    /// The exact key appeared before.
    Duplicate,
    /// A key equal to this one ignoring ASCII case appeared before.
    CaseVariant,
}

/// Every duplicate or case-variant key in `bytes`, or `None` when the bytes
/// are not JSON at all (the parse error is reported elsewhere).
pub fn duplicate_keys(bytes: &[u8]) -> Option<Vec<KeyIssue>> {
    let mut issues = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk {
        pointer: String::new(),
        issues: &mut issues,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(issues)
}

struct Walk<'a> {
    pointer: String,
    issues: &'a mut Vec<KeyIssue>,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let child = Walk {
                pointer: format!("{}/{i}", self.pointer),
                issues: &mut *self.issues,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Lower-cased key -> whether the exact spelling was seen, by spelling.
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let spellings = seen.entry(key.to_ascii_lowercase()).or_default();
            let kind = if spellings.contains(&key) {
                Some(KeyIssueKind::Duplicate)
            } else if !spellings.is_empty() {
                Some(KeyIssueKind::CaseVariant)
            } else {
                None
            };
            if let Some(kind) = kind {
                self.issues.push(KeyIssue {
                    pointer: self.pointer.clone(),
                    key: key.clone(),
                    kind,
                });
            }
            let child = Walk {
                pointer: format!("{}/{}", self.pointer, escape(&key)),
                issues: &mut *self.issues,
            };
            spellings.push(key);
            map.next_value_seed(child)?;
        }
        Ok(())
    }
}

/// Parses `bytes` into a `Value` (the last of duplicate keys wins, as in
/// `serde_json`) and finds the same issues as [`duplicate_keys`] in the one
/// pass. A server that must both read a frame and record its ambiguities
/// pays for one parse instead of two.
pub fn parse_with_key_issues(bytes: &[u8]) -> Result<(Value, Vec<KeyIssue>), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut state = Build {
        path: Vec::new(),
        issues: Vec::new(),
    };
    let value = BuildSeed(&mut state).deserialize(&mut de)?;
    de.end()?;
    Ok((value, state.issues))
}

enum Segment {
    Key(String),
    Index(usize),
}

struct Build {
    /// Where the value being built sits; turned into a pointer only when an
    /// issue is found, so clean frames pay nothing for it.
    path: Vec<Segment>,
    issues: Vec<KeyIssue>,
}

impl Build {
    fn pointer(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            out.push('/');
            match seg {
                Segment::Key(k) => out.push_str(&escape(k)),
                Segment::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

struct BuildSeed<'s>(&'s mut Build);

impl<'de> DeserializeSeed<'de> for BuildSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BuildSeed<'_> {
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
        Ok(Value::from(v))
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            self.0.path.push(Segment::Index(items.len()));
            let item = seq.next_element_seed(BuildSeed(&mut *self.0));
            self.0.path.pop();
            match item? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        // Case-folded fingerprints of the keys so far: a clean object costs
        // one short hash per key, and only a fingerprint hit looks closer.
        let mut folded: Vec<u64> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let print = fold_hash(&key);
            let kind = if !folded.contains(&print) {
                None
            } else if obj.contains_key(&key) {
                Some(KeyIssueKind::Duplicate)
            } else if obj.keys().any(|k| k.eq_ignore_ascii_case(&key)) {
                Some(KeyIssueKind::CaseVariant)
            } else {
                None
            };
            folded.push(print);
            if let Some(kind) = kind {
                let pointer = self.0.pointer();
                self.0.issues.push(KeyIssue {
                    pointer,
                    key: key.clone(),
                    kind,
                });
            }
            self.0.path.push(Segment::Key(key));
            let value = map.next_value_seed(BuildSeed(&mut *self.0));
            let key = match self.0.path.pop() {
                Some(Segment::Key(k)) => k,
                _ => String::new(),
            };
            obj.insert(key, value?);
        }
        Ok(Value::Object(obj))
    }
}

/// FNV-1a over the ASCII-lower-cased bytes of a key.
fn fold_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_json_has_no_issues() {
        let raw = br#"{"jsonrpc":"2.0","id":1,"params":{"name":"x","arguments":{"a":[{"b":1},{"b":2}]}}}"#;
        assert_eq!(duplicate_keys(raw), Some(vec![]));
    }

    #[test]
    fn finds_duplicates_and_case_variants_with_pointers() {
        let raw = br#"{"params":{"name":"allowed","name":"denied","arguments":{"x":[{"k":1,"K":2}]}},"Params":{}}"#;
        let issues = duplicate_keys(raw).unwrap();
        assert_eq!(
            issues,
            vec![
                KeyIssue {
                    pointer: "/params".into(),
                    key: "name".into(),
                    kind: KeyIssueKind::Duplicate
                },
                KeyIssue {
                    pointer: "/params/arguments/x/0".into(),
                    key: "K".into(),
                    kind: KeyIssueKind::CaseVariant
                },
                KeyIssue {
                    pointer: "".into(),
                    key: "Params".into(),
                    kind: KeyIssueKind::CaseVariant
                },
            ]
        );
    }

    #[test]
    fn one_pass_parse_agrees_with_the_scan_and_with_serde_json() {
        let frames: [&[u8]; 5] = [
            br#"{"params":{"name":"allowed","name":"denied","arguments":{"x":[{"k":1,"K":2}]}},"Params":{}}"#,
            br#"{"a":"b","a":"c","A":1,"a/b~c":{"q":1,"q":[1,2,{"z":null,"Z":true}]}}"#,
            br#"[{"id":1},{"id":2,"id":3}]"#,
            br#"{"na\u006de":1,"name":2,"n":1.5e3,"m":-7,"u":18446744073709551615}"#,
            br#""just a string""#,
        ];
        for raw in frames {
            let (value, issues) = parse_with_key_issues(raw).unwrap();
            assert_eq!(
                Some(issues),
                duplicate_keys(raw),
                "{}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(value, serde_json::from_slice::<Value>(raw).unwrap());
        }
        assert!(parse_with_key_issues(b"{oops").is_err());
        assert!(parse_with_key_issues(b"{} trailing").is_err());
    }

    /// JSON text whose objects draw keys from a tiny alphabet, so duplicates
    /// and case variants are common.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<i32>().prop_map(|n| n.to_string()),
            "[a-z]{0,3}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec(
                    (prop_oneof![Just("a"), Just("A"), Just("b/~")], inner),
                    0..5
                )
                .prop_map(|pairs| {
                    let body: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn one_pass_parse_matches_the_scan_on_any_json(text in json_text()) {
            let (value, issues) = parse_with_key_issues(text.as_bytes()).unwrap();
            proptest::prop_assert_eq!(Some(issues), duplicate_keys(text.as_bytes()));
            proptest::prop_assert_eq!(value, serde_json::from_str::<Value>(&text).unwrap());
        }
    }

    #[test]
    fn not_json_is_none() {
        assert_eq!(duplicate_keys(b"{oops"), None);
        assert_eq!(duplicate_keys(b"{} trailing"), None);
    }
}
