//! Talking to the upstream endpoint: one POST per client POST, the reply
//! split into its JSON-RPC messages (plain JSON or SSE) and settled one by
//! one, and the proxy's own `tools/list` pages.

use axum::http::{HeaderMap, HeaderValue, Method, Request};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use super::super::inbound::id_key;
use super::super::session::{InFlight, Outbound, Session};
use super::headers;
use crate::mcp::http as h;
use crate::mcp::link::{Endpoint, LinkError};

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

/// The upstream endpoint and the connections that reach it.
pub(crate) struct Upstream {
    endpoint: Endpoint,
}

/// A header value from text the proxy holds (a session id, a version);
/// text a header cannot carry is left out rather than sent mangled.
fn value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

impl Upstream {
    pub(crate) fn new(url: &str) -> Result<Upstream, String> {
        Ok(Upstream {
            endpoint: Endpoint::parse(url)?,
        })
    }

    fn request(&self, method: Method, body: Bytes) -> Request<Full<Bytes>> {
        self.endpoint.request(method, body)
    }

    /// Forwards a client POST body with the headers that may travel.
    pub(crate) async fn post(
        &self,
        client_headers: &HeaderMap,
        session: Option<&str>,
        body: Bytes,
    ) -> Result<UpReply, LinkError> {
        let mut req = self.request(Method::POST, body);
        let out = req.headers_mut();
        for (name, value) in headers::passed(client_headers) {
            out.append(name.clone(), value.clone());
        }
        if let Some(sid) = session.and_then(value) {
            out.insert(h::SESSION_ID, sid);
        }
        self.send(req).await
    }

    /// Ends an upstream session.
    pub(crate) async fn delete(&self, session: &str) -> Result<u16, LinkError> {
        let mut req = self.request(Method::DELETE, Bytes::new());
        if let Some(sid) = value(session) {
            req.headers_mut().insert(h::SESSION_ID, sid);
        }
        Ok(self.send(req).await?.status)
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<UpReply, LinkError> {
        let (resp, body) = self.endpoint.send(req).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(UpReply {
            status: resp.status().as_u16(),
            content_type: header("content-type"),
            session: header(h::SESSION_ID),
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
            let mut req = self.endpoint.post_json(bytes.into());
            let out = req.headers_mut();
            out.insert(h::MCP_METHOD, HeaderValue::from_static("tools/list"));
            if let Some(sid) = upstream_session.and_then(value) {
                out.insert(h::SESSION_ID, sid);
            }
            if let Some(v) = version.and_then(value) {
                out.insert(h::PROTOCOL_VERSION, v);
            }
            let Ok(reply) = self.send(req).await else {
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
    // The common case, one plain JSON reply, is settled in place.
    if !reply.is_sse() && !reply.body.iter().all(u8::is_ascii_whitespace) {
        return match session.outbound(inflight, &reply.body) {
            Outbound::Rewritten(bytes) => bytes.into(),
            _ => reply.body.clone(),
        };
    }
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
