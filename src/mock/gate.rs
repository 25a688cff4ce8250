//! The HTTP checks a frame must pass before dispatch: Origin, the session,
//! `MCP-Protocol-Version`, and on 2026-07-28 the `Mcp-Method`/`Mcp-Name`
//! headers against the body. A frame that fails is still recorded, message
//! by message, with the rejection as its outcome.

use serde_json::Value;

use super::Mock;
use super::core::{Conn, HttpMeta, Incoming, Rejection, meta_version};
use super::dispatch::UNSUPPORTED_PROTOCOL_VERSION;
use super::ledger::b64;
use crate::mcp::Revision;
use crate::mcp::http as h;
use crate::mcp::jsonrpc::INVALID_REQUEST;

/// 2026-07-28: a mirrored header is missing or disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// A header value in the sentinel form `=?base64?…?=` decoded; any other
/// value as it is. `None` when the sentinel's payload is not base64 UTF-8.
pub fn decode_header_value(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(coded) => b64::decode(coded).and_then(|b| String::from_utf8(b).ok()),
        None => Some(value.to_owned()),
    }
}

fn mismatch(message: String) -> Rejection {
    Rejection::new(400, HEADER_MISMATCH, message)
}

fn method_of(value: &Value) -> Option<&str> {
    value.get("method").and_then(Value::as_str)
}

impl Mock {
    /// Checks an HTTP frame and attaches its session to `conn`.
    pub(super) fn gate(&self, conn: &mut Conn, items: &[Incoming<'_>]) -> Option<Rejection> {
        let http = conn.http.as_ref()?;
        if !h::origin_allowed(http.origin.as_deref()) {
            let origin = http.origin.as_deref().unwrap_or_default();
            return Some(Rejection::new(
                403,
                INVALID_REQUEST,
                format!("origin `{origin}` is not allowed"),
            ));
        }
        let header_rev = http.protocol_version.as_deref().map(Revision::parse);
        let single = match items {
            [one] => Some(&one.value),
            _ => None,
        };
        let meta_stateless = single
            .and_then(|v| meta_version(v))
            .and_then(Revision::parse)
            .is_some_and(Revision::is_stateless);
        let header_stateless = matches!(header_rev, Some(Some(r)) if r.is_stateless());
        if meta_stateless || header_stateless {
            // Stateless: no session; a session id that came along is ignored.
            return single.and_then(|v| self.stateless_headers(http, v));
        }
        let has_init = items
            .iter()
            .any(|i| method_of(&i.value) == Some("initialize"));
        let strict = self.config.strict;
        match http.session_id.as_deref() {
            Some(sid) => match self.sessions.get(sid) {
                Some(s) => conn.session = Some(s),
                None if strict && !has_init => {
                    return Some(Rejection::new(
                        404,
                        INVALID_REQUEST,
                        format!("session `{sid}` not found"),
                    ));
                }
                None => {}
            },
            None if strict && !has_init => {
                return Some(Rejection::new(
                    400,
                    INVALID_REQUEST,
                    format!("missing `{}` header", h::SESSION_ID),
                ));
            }
            None => {}
        }
        let negotiated = conn.session.as_ref().and_then(|s| s.state().revision);
        match (header_rev, http.protocol_version.as_deref()) {
            (Some(None), Some(v)) => Some(Rejection::new(
                400,
                INVALID_REQUEST,
                format!("unsupported protocol version `{v}`"),
            )),
            (Some(Some(r)), _) if strict && !has_init && negotiated.is_some_and(|n| n != r) => {
                Some(Rejection::new(
                    400,
                    INVALID_REQUEST,
                    format!(
                        "protocol version header `{r}` differs from the negotiated `{}`",
                        negotiated.map_or("", Revision::as_str)
                    ),
                ))
            }
            (None, _)
                if strict
                    && !has_init
                    && negotiated.is_some_and(Revision::requires_version_header) =>
            {
                Some(Rejection::new(
                    400,
                    INVALID_REQUEST,
                    format!("missing `{}` header", h::PROTOCOL_VERSION),
                ))
            }
            _ => None,
        }
    }

    /// 2026-07-28: the headers that mirror the body must agree with it. A
    /// missing header is refused only under `--strict`.
    fn stateless_headers(&self, http: &HttpMeta, body: &Value) -> Option<Rejection> {
        let strict = self.config.strict;
        let missing = |name: &str| strict.then(|| mismatch(format!("missing `{name}` header")));
        match http.protocol_version.as_deref() {
            None => {
                if let Some(r) = missing(h::PROTOCOL_VERSION) {
                    return Some(r);
                }
            }
            Some(v) if Revision::parse(v).is_none() => {
                return Some(Rejection::new(
                    400,
                    UNSUPPORTED_PROTOCOL_VERSION,
                    format!("unsupported protocol version `{v}`"),
                ));
            }
            Some(v) => {
                if let Some(m) = meta_version(body).filter(|m| *m != v) {
                    return Some(mismatch(format!(
                        "`{}` header `{v}` does not match `_meta` version `{m}`",
                        h::PROTOCOL_VERSION
                    )));
                }
            }
        }
        let method = method_of(body);
        match (http.mcp_method.as_deref(), method) {
            (None, Some(_)) => {
                if let Some(r) = missing(h::MCP_METHOD) {
                    return Some(r);
                }
            }
            (Some(hm), m) if Some(hm) != m => {
                return Some(mismatch(format!(
                    "`{}` header `{hm}` does not match body method `{}`",
                    h::MCP_METHOD,
                    m.unwrap_or_default()
                )));
            }
            _ => {}
        }
        let body_name = (method == Some("tools/call"))
            .then(|| body.pointer("/params/name").and_then(Value::as_str))
            .flatten();
        match (http.mcp_name.as_deref(), body_name) {
            (None, Some(_)) => missing(h::MCP_NAME),
            (Some(raw), Some(name)) => match decode_header_value(raw) {
                Some(decoded) if decoded == name => None,
                _ => Some(mismatch(format!(
                    "`{}` header `{raw}` does not match body name `{name}`",
                    h::MCP_NAME
                ))),
            },
            (Some(raw), None) if strict => Some(mismatch(format!(
                "`{}` header `{raw}` on a request that names nothing",
                h::MCP_NAME
            ))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_header_values_decode() {
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        let coded = format!("=?base64?{}?=", b64::encode("Ｗiz".as_bytes()));
        assert_eq!(decode_header_value(&coded).as_deref(), Some("Ｗiz"));
        assert_eq!(decode_header_value("=?base64?!!?="), None);
    }
}
