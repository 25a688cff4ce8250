//! Finds duplicate and case-variant object keys in raw JSON.
//!
//! `serde_json` keeps the last of duplicate keys, Go's decoder matches keys
//! case-insensitively, and others keep the first: a frame with
//! `"name":"allowed","name":"denied"` or `"Name":…` can mean one tool to an
//! enforcer and another to the server behind it. A `Value` has already lost
//! that information, so this walks the bytes.
//!
//! Which spellings count as "the same key" is a [`CaseFold`]: ASCII for the
//! mock's ledger, Go's Unicode folding for an enforcer that must refuse
//! whatever a Go server behind it could read as one field.

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
    /// A key equal to this one under the scan's [`CaseFold`] appeared before.
    CaseVariant,
}

/// Which spellings of a key count as case variants of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseFold {
    /// ASCII letters only.
    #[default]
    Ascii,
    /// Go's `encoding/json` field matching (Go 1.21 on): every char lowered
    /// then uppered with Unicode's one-to-one mappings, so the Kelvin sign
    /// matches `k`, `ſ` matches `s` and `İ` matches `i`, while `ß` and `ss`
    /// stay apart. Older Go (`bytes.EqualFold`) joins the same keys, except
    /// that it keeps `İ` and `ı` apart from `i`.
    Go,
}

impl CaseFold {
    /// The char `c` stands for in comparisons: ASCII comes out lower-case.
    fn canon(self, c: char) -> char {
        if c.is_ascii() {
            return c.to_ascii_lowercase();
        }
        let folded = match self {
            CaseFold::Ascii => return c,
            CaseFold::Go => go_fold(c),
        };
        folded.to_ascii_lowercase()
    }

    fn eq(self, a: &str, b: &str) -> bool {
        if self == CaseFold::Ascii || (a.is_ascii() && b.is_ascii()) {
            return a.eq_ignore_ascii_case(b);
        }
        a.chars()
            .map(|c| self.canon(c))
            .eq(b.chars().map(|c| self.canon(c)))
    }

    /// FNV-1a over the folded key, so keys equal under the fold collide.
    fn hash(self, key: &str) -> u64 {
        const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        let step = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        if self == CaseFold::Ascii || key.is_ascii() {
            return key
                .bytes()
                .fold(BASIS, |h, b| step(h, b.to_ascii_lowercase()));
        }
        let mut buf = [0u8; 4];
        key.chars().fold(BASIS, |h, c| {
            self.canon(c).encode_utf8(&mut buf).bytes().fold(h, step)
        })
    }
}

/// Go's `unicode.ToUpper(unicode.ToLower(c))`. Rust only offers the full
/// mappings; they differ from the simple ones where they give more than one
/// char. Lower-casing does that only for `İ`, whose simple mapping is the
/// first char (`i`); upper-casing does it for `ß`, ligatures and some Greek,
/// and keeping the char there leaves every fold class as Go draws it.
fn go_fold(c: char) -> char {
    let lower = c.to_lowercase().next().unwrap_or(c);
    let mut upper = lower.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => lower,
    }
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
    parse_with_key_issues_folding(bytes, CaseFold::Ascii)
}

/// [`parse_with_key_issues`], with case variants found under `fold`.
pub fn parse_with_key_issues_folding(
    bytes: &[u8],
    fold: CaseFold,
) -> Result<(Value, Vec<KeyIssue>), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut state = Build {
        fold,
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
    fold: CaseFold,
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
            let fold = self.0.fold;
            let print = fold.hash(&key);
            let kind = if !folded.contains(&print) {
                None
            } else if obj.contains_key(&key) {
                Some(KeyIssueKind::Duplicate)
            } else if obj.keys().any(|k| fold.eq(k, &key)) {
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
            let (go_value, go_issues) =
                parse_with_key_issues_folding(text.as_bytes(), CaseFold::Go).unwrap();
            proptest::prop_assert_eq!(&go_issues, &issues);
            proptest::prop_assert_eq!(Some(issues), duplicate_keys(text.as_bytes()));
            proptest::prop_assert_eq!(&go_value, &value);
            proptest::prop_assert_eq!(value, serde_json::from_str::<Value>(&text).unwrap());
        }

        #[test]
        fn keys_equal_under_a_fold_share_its_fingerprint(
            a in "[kKsSiI\u{212A}\u{17F}\u{130}\u{131}\u{DF}\u{1E9E}\u{E9}\u{C9}]{0,4}",
            b in "[kKsSiI\u{212A}\u{17F}\u{130}\u{131}\u{DF}\u{1E9E}\u{E9}\u{C9}]{0,4}",
        ) {
            for fold in [CaseFold::Ascii, CaseFold::Go] {
                if fold.eq(&a, &b) {
                    proptest::prop_assert_eq!(fold.hash(&a), fold.hash(&b));
                }
            }
            if CaseFold::Ascii.eq(&a, &b) {
                proptest::prop_assert!(CaseFold::Go.eq(&a, &b));
            }
        }
    }

    #[test]
    fn go_folding_finds_case_variants_beyond_ascii() {
        // U+017F LONG S, U+212A KELVIN SIGN, U+0130 DOTTED CAPITAL I, U+1E9E CAPITAL SHARP S.
        let raw = "{\"arguments\":{\"s\":1,\"\u{17F}\":2},\"kind\":0,\"\u{212A}IND\":1,\"\u{130}d\":2,\"id\":3,\"\u{DF}\":4,\"\u{1E9E}\":5}";
        let (_, issues) = parse_with_key_issues_folding(raw.as_bytes(), CaseFold::Go).unwrap();
        let found: Vec<(&str, &str, KeyIssueKind)> = issues
            .iter()
            .map(|i| (i.pointer.as_str(), i.key.as_str(), i.kind))
            .collect();
        assert_eq!(
            found,
            [
                ("/arguments", "\u{17F}", KeyIssueKind::CaseVariant),
                ("", "\u{212A}IND", KeyIssueKind::CaseVariant),
                ("", "id", KeyIssueKind::CaseVariant),
                ("", "\u{1E9E}", KeyIssueKind::CaseVariant),
            ]
        );
        let (_, ascii) = parse_with_key_issues(raw.as_bytes()).unwrap();
        assert_eq!(ascii, vec![]);
    }

    #[test]
    fn go_folding_keeps_apart_what_go_keeps_apart() {
        // Full case mapping would join `ß` with `ss` and `ﬀ` with `ff`; Go's
        // one-to-one mapping does not, nor does it strip accents.
        for raw in [
            "{\"\u{DF}\":1,\"ss\":2}",
            "{\"\u{FB00}\":1,\"FF\":2}",
            "{\"caf\u{E9}\":1,\"cafe\":2}",
        ] {
            let (_, issues) = parse_with_key_issues_folding(raw.as_bytes(), CaseFold::Go).unwrap();
            assert_eq!(issues, vec![], "{raw}");
        }
    }

    #[test]
    fn not_json_is_none() {
        assert_eq!(duplicate_keys(b"{oops"), None);
        assert_eq!(duplicate_keys(b"{} trailing"), None);
    }
}
