//! The Streamable HTTP transport: one POST per send, JSON or SSE back.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::{ClientError, Exchange, Expect, SendOptions, id_key};
use crate::mcp::http as h;
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
    http: reqwest::Client,
    opts: HttpOptions,
    session: Mutex<Option<String>>,
}

impl HttpTransport {
    pub(super) fn new(opts: HttpOptions) -> Result<HttpTransport, ClientError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(HttpTransport {
            http,
            opts,
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
        let mut req = self
            .http
            .post(&self.opts.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = &self.opts.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if !opts.bare {
            for (name, value) in auto_headers(&bytes, rev, self.session()) {
                if !overridden(opts, &name) {
                    req = req.header(name, value);
                }
            }
        }
        for (name, value) in self.opts.headers.iter().chain(&opts.headers) {
            req = req.header(name.as_str(), value.as_str());
        }
        let send = async {
            let resp = req
                .body(bytes)
                .send()
                .await
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
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/event-stream"));
            let body = resp
                .bytes()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            Ok::<_, ClientError>((status, sse, body))
        };
        let (status, sse, body) = tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| ClientError::Timeout(timeout))??;
        let mut ex = Exchange {
            status: Some(status),
            ..Exchange::default()
        };
        let payloads = if sse {
            h::sse_data(&body)
        } else {
            vec![body.to_vec()]
        };
        for payload in payloads.iter().filter(|p| !p.is_empty()) {
            match serde_json::from_slice::<Value>(payload) {
                Ok(Value::Array(items)) => ex.replies.extend(items),
                Ok(v) => ex.replies.push(v),
                Err(_) => ex.raw_body = Some(String::from_utf8_lossy(payload).into_owned()),
            }
        }
        if let Expect::Ids(ids) = expect {
            // Keep matched replies first so `reply()` is the one asked for.
            let keys: Vec<String> = ids.iter().map(id_key).collect();
            ex.replies
                .sort_by_key(|r| r.get("id").map(id_key).is_none_or(|k| !keys.contains(&k)));
        }
        Ok(ex)
    }

    pub(super) async fn close(self) {
        if let Some(sid) = self.session() {
            let mut req = self.http.delete(&self.opts.url).header(h::SESSION_ID, sid);
            if let Some(token) = &self.opts.token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), req.send()).await;
        }
    }
}

fn overridden(opts: &SendOptions, name: &str) -> bool {
    opts.headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The headers a conforming client adds for these bytes: the session and
/// revision after initialize, and on stateless revisions the method and tool
/// name the body carries.
fn auto_headers(bytes: &[u8], rev: Revision, session: Option<String>) -> Vec<(String, String)> {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    let method = body
        .as_ref()
        .and_then(|b| b.get("method"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut out = Vec::new();
    if rev.is_stateless() {
        if let Some(m) = &method {
            out.push((h::MCP_METHOD.to_owned(), m.clone()));
            if m == "tools/call"
                && let Some(name) = body
                    .as_ref()
                    .and_then(|b| b.pointer("/params/name"))
                    .and_then(Value::as_str)
            {
                out.push((h::MCP_NAME.to_owned(), name.to_owned()));
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
