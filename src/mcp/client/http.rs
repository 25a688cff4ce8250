//! The Streamable HTTP transport: one POST per send, JSON or SSE back.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::{ClientError, Exchange, Expect, SendOptions, id_key, skeleton};
use crate::mcp::http as h;
use crate::mcp::link::Endpoint;
use crate::mcp::revision::Revision;

/// Where and as whom to connect.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub url: String,
    /// Sent as `Authorization: Bearer …`; the identity (grant) of the session.
    pub token: Option<String>,
    /// Sent on every request.
    pub headers: Vec<(String, String)>,
}

pub(super) struct HttpTransport {
    endpoint: Endpoint,
    opts: HttpOptions,
    /// `Bearer …` from the token, made once.
    authorization: Option<HeaderValue>,
    session: Mutex<Option<String>>,
}

/// Appends one header, naming it when it cannot be sent.
fn append(map: &mut HeaderMap, name: &str, value: &str) -> Result<(), ClientError> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ClientError::Transport(format!("`{name}` is not a valid header name")))?;
    let v = HeaderValue::from_str(value).map_err(|_| {
        ClientError::Transport(format!("the value of header `{name}` is not valid"))
    })?;
    map.append(n, v);
    Ok(())
}

impl HttpTransport {
    pub(super) fn new(opts: HttpOptions) -> Result<HttpTransport, ClientError> {
        let authorization = opts
            .token
            .as_ref()
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .map_err(|_| ClientError::Transport("the token cannot be sent in a header".into()))?;
        Ok(HttpTransport {
            endpoint: Endpoint::parse(&opts.url).map_err(ClientError::Transport)?,
            opts,
            authorization,
            session: Mutex::new(None),
        })
    }

    fn session(&self) -> Option<String> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    pub(super) async fn exchange(
        &self,
        bytes: Vec<u8>,
        expect: &Expect,
        opts: &SendOptions,
        rev: Revision,
        timeout: Duration,
    ) -> Result<Exchange, ClientError> {
        let auto = if opts.bare {
            Vec::new()
        } else {
            auto_headers(&bytes, rev, self.session())
        };
        let mut req = self.endpoint.post_json(bytes.into());
        let map = req.headers_mut();
        if let Some(auth) = &self.authorization {
            map.append(header::AUTHORIZATION, auth.clone());
        }
        for (name, value) in &auto {
            if !overridden(opts, name) {
                append(map, name, value)?;
            }
        }
        // Appended, not replacing: an attack may send a header twice.
        for (name, value) in self.opts.headers.iter().chain(&opts.headers) {
            append(map, name, value)?;
        }
        let (resp, body) = tokio::time::timeout(timeout, self.endpoint.send(req))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        if let Some(sid) = resp
            .headers()
            .get(h::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            && let Ok(mut s) = self.session.lock()
        {
            s.get_or_insert_with(|| sid.to_owned());
        }
        let sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let mut ex = Exchange {
            status: Some(status),
            ..Exchange::default()
        };
        let events;
        let payloads: Vec<&[u8]> = if sse {
            events = h::sse_data(&body);
            events.iter().map(Vec::as_slice).collect()
        } else {
            vec![&body[..]]
        };
        for payload in payloads.into_iter().filter(|p| !p.is_empty()) {
            if opts.skeleton
                && let Some(bones) = skeleton::read(payload)
            {
                ex.replies.push(bones);
                continue;
            }
            match serde_json::from_slice::<Value>(payload) {
                Ok(Value::Array(items)) => ex.replies.extend(items),
                Ok(v) => ex.replies.push(v),
                Err(_) => ex.raw_body = Some(String::from_utf8_lossy(payload).into_owned()),
            }
        }
        if let Expect::Ids(ids) = expect
            && ex.replies.len() > 1
        {
            // Keep matched replies first so `reply()` is the one asked for.
            let keys: Vec<String> = ids.iter().map(id_key).collect();
            ex.replies
                .sort_by_key(|r| r.get("id").map(id_key).is_none_or(|k| !keys.contains(&k)));
        }
        Ok(ex)
    }

    pub(super) async fn close(self: Box<Self>) {
        if let Some(sid) = self.session() {
            let mut req = self.endpoint.request(Method::DELETE, Bytes::new());
            let map = req.headers_mut();
            let _ = append(map, h::SESSION_ID, &sid);
            if let Some(auth) = &self.authorization {
                map.append(header::AUTHORIZATION, auth.clone());
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.send(req)).await;
        }
    }
}

fn overridden(opts: &SendOptions, name: &str) -> bool {
    opts.headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The parts of a JSON-RPC message its HTTP headers repeat, read as a full
/// parse into a `Value` would read them (a repeated key keeps its last
/// value, a field of another type is absent) without building the body.
#[derive(Default)]
struct Head {
    method: Option<String>,
    name: Option<String>,
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Head, D::Error> {
        d.deserialize_any(Fields { top: true })
    }
}

/// Reads the message object (`top`) or its `params` object.
struct Fields {
    top: bool,
}

/// A value that is kept only if it is a string.
struct StrOrNone;

impl<'de> serde::de::DeserializeSeed<'de> for StrOrNone {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        Ok(Scalar::deserialize(d)?.0)
    }
}

struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::de::Visitor<'de> for Fields {
    type Value = Head;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        while let Some(key) = a.next_key::<std::borrow::Cow<'de, str>>()? {
            match (self.top, key.as_ref()) {
                (true, "method") => head.method = a.next_value_seed(StrOrNone)?,
                (true, "params") => {
                    head.name = a.next_value_seed(ParamsName)?;
                }
                (false, "name") => head.name = a.next_value_seed(StrOrNone)?,
                _ => {
                    a.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Head, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Head::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Head, E> {
        Ok(Head::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Head, E> {
        Ok(Head::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Head, E> {
        Ok(Head::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Head, E> {
        Ok(Head::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Head, E> {
        Ok(Head::default())
    }
    fn visit_unit<E>(self) -> Result<Head, E> {
        Ok(Head::default())
    }
}

/// `params`: its `name`, when it is an object with a string there.
struct ParamsName;

impl<'de> serde::de::DeserializeSeed<'de> for ParamsName {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        Ok(d.deserialize_any(Fields { top: false })?.name)
    }
}

/// The headers a conforming client adds for these bytes: the session and
/// revision after initialize, and on stateless revisions the method and tool
/// name the body carries.
fn auto_headers(bytes: &[u8], rev: Revision, session: Option<String>) -> Vec<(String, String)> {
    // Only the method and tool name are wanted: read them without building
    // the whole body as a `Value` on every send. A session revision needs
    // only to know whether this is `initialize`, which a body without
    // escapes cannot be unless it spells the word out.
    let maybe_initialize = rev.is_stateless()
        || bytes.contains(&b'\\')
        || bytes.windows(10).any(|w| w == b"initialize");
    let head: Option<Head> = if maybe_initialize {
        serde_json::from_slice(bytes).ok()
    } else {
        None
    };
    let (method, name) = head.map(|h| (h.method, h.name)).unwrap_or_default();
    let mut out = Vec::new();
    if rev.is_stateless() {
        if let Some(m) = &method {
            out.push((h::MCP_METHOD.to_owned(), m.clone()));
            if m == "tools/call"
                && let Some(name) = name
            {
                out.push((h::MCP_NAME.to_owned(), name));
            }
        }
        out.push((h::PROTOCOL_VERSION.to_owned(), rev.as_str().to_owned()));
        return out;
    }
    if let Some(sid) = session {
        out.push((h::SESSION_ID.to_owned(), sid));
    }
    if method.as_deref() != Some("initialize") && rev.requires_version_header() {
        out.push((h::PROTOCOL_VERSION.to_owned(), rev.as_str().to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_reads_method_and_name_as_a_full_parse_does() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"T","arguments":{"name":"no"}}}"#,
            r#"{"method":"tools/list","method":"tools/call","params":{"name":"A","name":"B"}}"#,
            r#"{"method":"tools/call","params":{"name":"A"},"params":{"other":1}}"#,
            r#"{"method":7,"params":{"name":["x"]}}"#,
            r#"{"method":"tools/call","params":[{"name":"x"}]}"#,
            r#"{"params":{"name":"\u0054"},"method":"tools\/call"}"#,
            r#"[{"method":"tools/call","params":{"name":"T"}}]"#,
            r#""tools/call""#,
        ];
        for raw in cases {
            let v: Value = serde_json::from_str(raw).unwrap();
            let method = v.get("method").and_then(Value::as_str).map(str::to_owned);
            let name = v
                .pointer("/params/name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let head: Head = serde_json::from_str(raw).unwrap();
            assert_eq!((head.method, head.name), (method, name), "{raw}");
        }
        assert!(serde_json::from_str::<Head>("{oops").is_err());
    }

    #[test]
    fn session_headers_skip_the_parse_only_when_the_body_cannot_be_initialize() {
        let escaped = br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#;
        assert!(auto_headers(escaped, Revision::V2025_11_25, None).is_empty());
        let call =
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"initialize"}}"#;
        let hs = auto_headers(call, Revision::V2025_11_25, None);
        assert!(hs.contains(&(h::PROTOCOL_VERSION.into(), "2025-11-25".into())));
    }

    #[test]
    fn stateless_requests_carry_method_and_name() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"T"}}"#;
        let hs = auto_headers(body, Revision::V2026_07_28, Some("s".into()));
        assert!(hs.contains(&(h::MCP_METHOD.into(), "tools/call".into())));
        assert!(hs.contains(&(h::MCP_NAME.into(), "T".into())));
        assert!(!hs.iter().any(|(n, _)| n == h::SESSION_ID));
    }

    #[test]
    fn session_requests_carry_session_and_version_after_initialize() {
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#;
        assert!(auto_headers(init, Revision::V2025_11_25, None).is_empty());
        let call = br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        let hs = auto_headers(call, Revision::V2025_11_25, Some("abc".into()));
        assert!(hs.contains(&(h::SESSION_ID.into(), "abc".into())));
        assert!(hs.contains(&(h::PROTOCOL_VERSION.into(), "2025-11-25".into())));
        let old = auto_headers(call, Revision::V2025_03_26, None);
        assert!(old.is_empty());
    }
}
