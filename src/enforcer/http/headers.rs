//! The 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`) checked
//! against the body, and the headers that may travel upstream.
//!
//! A gateway may route or rate-limit on the headers while the server runs
//! the body; if the two disagree, the proxy would judge one call and the
//! server run another, so a disagreement is refused before anything moves.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::mcp::http as h;
use crate::mcp::revision::Revision;

/// Request headers passed upstream as they are. Everything else stays
/// here: above all `Authorization`, since the bearer token is the grant
/// and passing it on would be token passthrough, and `Mcp-Session-Id`,
/// which is mapped to upstream's own.
const PASSED: [&str; 6] = [
    "accept",
    "content-type",
    h::PROTOCOL_VERSION,
    h::MCP_METHOD,
    h::MCP_NAME,
    "last-event-id",
];

/// The headers of a client request that go upstream.
pub(crate) fn passed(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    headers.iter().filter(|(name, _)| {
        let n = name.as_str();
        PASSED.contains(&n) || n.starts_with("mcp-param-")
    })
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct NamedParams<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
}

/// The body member `Mcp-Name` mirrors, for the methods that have one.
fn named_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<Cow<'a, str>>, String> {
    let Some(raw) = headers.get(name) else {
        return Ok(None);
    };
    let text = raw
        .to_str()
        .map_err(|_| format!("`{name}` header holds invalid characters"))?;
    if let Some(coded) = text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    {
        let bytes =
            base64_decode(coded).ok_or_else(|| format!("`{name}` header is not valid base64"))?;
        let s = String::from_utf8(bytes)
            .map_err(|_| format!("`{name}` header does not decode to utf-8"))?;
        return Ok(Some(Cow::Owned(s)));
    }
    Ok(Some(Cow::Borrowed(text)))
}

/// Checks the routing headers against the body. Bodies that are not a
/// single JSON object are left to the frame checks, which refuse them.
pub(crate) fn check(headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let method_h = header_text(headers, h::MCP_METHOD)?;
    let name_h = header_text(headers, h::MCP_NAME)?;
    let stateless = headers
        .get(h::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .and_then(Revision::parse)
        .is_some_and(Revision::is_stateless);
    if method_h.is_none() && name_h.is_none() && !stateless {
        return Ok(());
    }
    let Ok(head) = serde_json::from_slice::<Head<'_>>(body) else {
        return Ok(());
    };
    let Some(method) = head.method.as_deref() else {
        // A response to the server carries no method to mirror.
        return match (&method_h, &name_h) {
            (None, None) => Ok(()),
            _ => Err("routing headers on a message without a method".into()),
        };
    };
    match &method_h {
        Some(m) if m != method => {
            return Err(format!(
                "`Mcp-Method` header `{m}` does not match the body's method `{method}`"
            ));
        }
        None if stateless => return Err("`Mcp-Method` header is missing".into()),
        _ => {}
    }
    let body_name = named_member(method).and_then(|member| {
        let params: NamedParams<'_> = serde_json::from_str(head.params?.get()).ok()?;
        let raw = if member == "uri" {
            params.uri
        } else {
            params.name
        }?;
        match serde_json::from_str::<Value>(raw.get()).ok()? {
            Value::String(s) => Some(s),
            _ => None,
        }
    });
    match (&name_h, body_name) {
        (Some(n), Some(b)) if *n != b => Err(format!(
            "`Mcp-Name` header `{n}` does not match the body's `{b}`"
        )),
        (Some(n), None) => Err(format!("`Mcp-Name` header `{n}` names nothing in the body")),
        (None, Some(_)) if stateless => Err("`Mcp-Name` header is missing".into()),
        _ => Ok(()),
    }
}

/// Standard base64 with optional padding.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"WizCommerce Open API_PostCustomers","arguments":{}}}"#;
    const POST: &str = "WizCommerce Open API_PostCustomers";

    #[test]
    fn matching_headers_pass() {
        let hs = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", POST),
        ]);
        assert_eq!(check(&hs, CALL), Ok(()));
        // Base64-wrapped names are decoded first.
        let hs = headers(&[
            ("mcp-method", "tools/call"),
            (
                "mcp-name",
                "=?base64?V2l6Q29tbWVyY2UgT3BlbiBBUElfUG9zdEN1c3RvbWVycw==?=",
            ),
        ]);
        assert_eq!(check(&hs, CALL), Ok(()));
        // Older revisions without the headers are not asked for them.
        assert_eq!(check(&HeaderMap::new(), CALL), Ok(()));
    }

    #[test]
    fn disagreement_or_absence_on_2026_is_refused() {
        let cases: Vec<HeaderMap> = vec![
            headers(&[("mcp-method", "tools/list")]),
            headers(&[
                ("mcp-method", "tools/call"),
                ("mcp-name", "WizCommerce Open API_GetCustomers"),
            ]),
            headers(&[
                ("mcp-method", "tools/call"),
                ("mcp-name", "wizcommerce open api_postcustomers"),
            ]),
            headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-name", POST)]),
            headers(&[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ]),
            headers(&[("mcp-method", "tools/call"), ("mcp-name", "=?base64?***?=")]),
        ];
        for hs in cases {
            assert!(check(&hs, CALL).is_err(), "{hs:?}");
        }
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(
            check(
                &headers(&[("mcp-method", "tools/list"), ("mcp-name", POST)]),
                list
            )
            .is_err()
        );
    }

    #[test]
    fn only_safe_headers_travel() {
        let hs = headers(&[
            ("authorization", "Bearer alice"),
            ("cookie", "a=b"),
            ("mcp-session-id", "ours"),
            ("accept", "application/json"),
            ("mcp-param-region", "eu"),
        ]);
        let names: Vec<&str> = passed(&hs).map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"accept") && names.contains(&"mcp-param-region"));
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("a*"), None);
    }
}
