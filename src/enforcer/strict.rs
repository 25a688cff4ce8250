//! One strict pass over a client frame: parse into a `Value` and notice any
//! duplicate or case-variant key on the way.
//!
//! The proxy judges the `Value` but forwards the original bytes, so the two
//! must mean the same thing to every parser behind it. With a repeated key
//! they may not (serde keeps the last, others keep the first, Go matches
//! keys ignoring case, Unicode included). The scan is the one-pass parse of
//! [`crate::mcp::keys`] under Go's folding, the widest a common upstream
//! applies.

use serde_json::Value;

use crate::mcp::keys::{self, CaseFold, KeyIssue, KeyIssueKind};

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
    let (value, issues) = keys::parse_with_key_issues_folding(bytes, CaseFold::Go)
        .map_err(|e| StrictError::Json(e.to_string()))?;
    if issues.is_empty() {
        Ok(value)
    } else {
        Err(StrictError::AmbiguousKeys(explain(&issues)))
    }
}

fn explain(issues: &[KeyIssue]) -> String {
    let parts: Vec<String> = issues
        .iter()
        .map(|i| {
            let kind = match i.kind {
                KeyIssueKind::Duplicate => "duplicate",
                KeyIssueKind::CaseVariant => "case-variant",
            };
            let at = if i.pointer.is_empty() {
                "/"
            } else {
                &i.pointer
            };
            format!("{kind} key `{}` at `{at}`", i.key)
        })
        .collect();
    format!("frame has ambiguous keys: {}", parts.join(", "))
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
        let err = parse("{\"arguments\":{\"s\":1,\"\u{17F}\":2}}".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame has ambiguous keys: case-variant key `\u{17F}` at `/arguments`"
        );
    }

    #[test]
    fn keys_go_reads_apart_pass() {
        // Go maps `ß` to itself, never to `ss`, so a Go upstream sees two fields.
        assert!(parse("{\"stra\u{DF}e\":1,\"strasse\":2}".as_bytes()).is_ok());
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
