//! Talking to the upstream endpoint: one POST per client POST, the reply
//! split into its JSON-RPC messages (plain JSON or SSE) and settled one by
//! one, and the proxy's own `tools/list` pages.

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use super::super::inbound::id_key;
use super::super::session::{InFlight, Outbound, Session};
use super::headers;
use crate::mcp::http as h;

/// What upstream answered one POST.
pub(crate) struct UpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub session: Option<String>,
    pub body: Bytes,
}

impl UpReply {
    fn is_sse(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("text/event-stream"))
    }
}

/// The upstream endpoint and the client that reaches it.
pub(crate) struct Upstream {
    http: reqwest::Client,
    url: String,
}

impl Upstream {
    pub(crate) fn new(url: &str) -> Result<Upstream, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("scheme `{}` is not http", parsed.scheme()));
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            // A proxy from the environment must not see upstream traffic.
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Upstream {
            http,
            url: url.to_owned(),
        })
    }

    /// Forwards a client POST body with the headers that may travel.
    pub(crate) async fn post(
        &self,
        client_headers: &HeaderMap,
        session: Option<&str>,
        body: Bytes,
    ) -> Result<UpReply, reqwest::Error> {
        let mut req = self.http.post(&self.url);
        for (name, value) in headers::passed(client_headers) {
            req = req.header(name, value);
        }
        if let Some(sid) = session {
            req = req.header(h::SESSION_ID, sid);
        }
        self.send(req.body(body)).await
    }

    /// Ends an upstream session.
    pub(crate) async fn delete(&self, session: &str) -> Result<u16, reqwest::Error> {
        let resp = self
            .http
            .delete(&self.url)
            .header(h::SESSION_ID, session)
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<UpReply, reqwest::Error> {
        let resp = req.send().await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = resp.status().as_u16();
        let content_type = header("content-type");
        let session = header(h::SESSION_ID);
        let body = resp.bytes().await?;
        Ok(UpReply {
            status,
            content_type,
            session,
            body,
        })
    }

    /// Learns the session's schemas with the proxy's own `tools/list`,
    /// following pages. Whatever happens, the session's schemas are settled
    /// when this returns.
    pub(crate) async fn fetch_schemas(
        &self,
        session: &Session,
        upstream_session: Option<&str>,
        version: Option<&str>,
    ) {
        let mut next = Some(session.own_request(None));
        while let Some((key, bytes)) = next.take() {
            let mut req = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header(h::MCP_METHOD, "tools/list");
            if let Some(sid) = upstream_session {
                req = req.header(h::SESSION_ID, sid);
            }
            if let Some(v) = version {
                req = req.header(h::PROTOCOL_VERSION, v);
            }
            let Ok(reply) = self.send(req.body(bytes)).await else {
                break;
            };
            let found = messages(&reply)
                .into_iter()
                .filter_map(|m| serde_json::from_slice::<Value>(&m).ok())
                .find(|v| v.get("id").map(id_key).as_deref() == Some(key.as_str()));
            match found {
                Some(v) => match session.own_reply(&v) {
                    Some(more) => next = Some(more),
                    None => return,
                },
                None => break,
            }
        }
        session.settle();
    }
}

/// The JSON-RPC payloads of a reply body.
fn messages(reply: &UpReply) -> Vec<Vec<u8>> {
    if reply.is_sse() {
        h::sse_data(&reply.body)
    } else if reply.body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        vec![reply.body.to_vec()]
    }
}

/// Settles every message of an upstream reply (refunds, in-flight entries)
/// and returns the body for the client, with hidden tools removed from any
/// `tools/list` result.
pub(crate) fn settle(session: &Session, inflight: &InFlight, reply: &UpReply) -> Bytes {
    let payloads = messages(reply);
    let mut changed = false;
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(payloads.len());
    for p in payloads {
        match session.outbound(inflight, &p) {
            Outbound::Rewritten(bytes) => {
                changed = true;
                out.push(bytes);
            }
            _ => out.push(p),
        }
    }
    if !changed {
        return reply.body.clone();
    }
    if reply.is_sse() {
        out.iter().flat_map(|m| h::sse_event(m)).collect()
    } else {
        out.into_iter().next().unwrap_or_default().into()
    }
}
