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
    fn not_json_is_none() {
        assert_eq!(duplicate_keys(b"{oops"), None);
        assert_eq!(duplicate_keys(b"{} trailing"), None);
    }
}
