//! The Streamable HTTP proxy: POST `/mcp` is judged and forwarded, DELETE
//! ends a session, GET is 405 (no server-initiated stream is relayed).
//!
//! - The bearer token is the grant (`anonymous` without one) and is never
//!   sent upstream.
//! - Each downstream session has its own upstream session: the proxy issues
//!   its own `Mcp-Session-Id`, bound to the grant that opened it, and maps
//!   it to upstream's. A request naming a session of another grant is 403,
//!   an unknown session 404.
//! - Requests without a session (2026-07-28 is stateless) pass through
//!   without one; they share one session per grant for schemas and
//!   `scope: session` counters.
//! - Origins other than loopback are 403 (DNS rebinding).
//! - Protocol refusals are HTTP 400 with a JSON-RPC error body; policy
//!   denials are 200 with the -32010 error, as any JSON-RPC reply.

mod headers;
mod upstream;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::upstream::{UpReply, Upstream};
use super::inbound::{self, Forward, Inbound, Refused, protocol_error};
use super::session::{InFlight, Session};
use super::{Enforcer, EnforcerError, HEADER_MISMATCH, SessionInfo};
use crate::mcp::http as h;
use crate::mcp::jsonrpc::{self, INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR};

/// The path the endpoint is served on.
pub const PATH: &str = "/mcp";

/// The grant of a request without a bearer token.
pub const ANONYMOUS: &str = "anonymous";

struct Downstream {
    grant: String,
    upstream: Option<String>,
    core: Arc<Session>,
}

struct Proxy {
    enforcer: Arc<Enforcer>,
    upstream: Upstream,
    sessions: Mutex<HashMap<String, Arc<Downstream>>>,
    stateless: Mutex<HashMap<String, Arc<Session>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running HTTP proxy. Dropping it stops the server.
pub struct HttpProxy {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HttpProxy {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Stops accepting, lets requests in progress finish, and returns.
    pub async fn shutdown(mut self) -> Result<(), EnforcerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Runs until the server stops (it only stops when told to).
    pub async fn wait(&mut self) -> Result<(), EnforcerError> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(r) => r.map_err(EnforcerError::Serve),
                Err(e) => Err(EnforcerError::Serve(std::io::Error::other(e))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `addr` and serves the proxy in front of `upstream_url`.
pub async fn bind(
    enforcer: Arc<Enforcer>,
    addr: SocketAddr,
    upstream_url: &str,
) -> Result<HttpProxy, EnforcerError> {
    let upstream = Upstream::new(upstream_url).map_err(|reason| EnforcerError::UpstreamUrl {
        url: upstream_url.to_owned(),
        reason,
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EnforcerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EnforcerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let proxy = Arc::new(Proxy {
        enforcer,
        upstream,
        sessions: Mutex::new(HashMap::new()),
        stateless: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route(PATH, post(on_post).delete(on_delete).get(on_get))
        .with_state(proxy);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(h::no_delay(listener), app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(HttpProxy {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn grant_of(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(h::bearer)
        .unwrap_or(ANONYMOUS)
        .to_owned()
}

/// An unguessable session id: 16 bytes of the OS's randomness, else a hash
/// of time and a per-process random seed.
fn new_session_id() -> String {
    let mut buf = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for chunk in buf.chunks_mut(8) {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(nanos);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Proxy {
    fn stateless(self: &Arc<Self>, grant: &str) -> Arc<Session> {
        lock(&self.stateless)
            .entry(grant.to_owned())
            .or_insert_with(|| {
                Arc::new(Session::new(
                    self.enforcer.clone(),
                    SessionInfo {
                        grant: grant.to_owned(),
                        session_id: format!("stateless:{grant}"),
                    },
                    "http",
                ))
            })
            .clone()
    }

    /// The downstream session a request names, or why it is refused.
    fn downstream(
        &self,
        headers: &HeaderMap,
        grant: &str,
    ) -> Result<Option<Arc<Downstream>>, SessionRefusal> {
        let Some(sid) = headers.get(h::SESSION_ID) else {
            return Ok(None);
        };
        let found = sid
            .to_str()
            .ok()
            .and_then(|s| lock(&self.sessions).get(s).cloned());
        match found {
            Some(d) if d.grant == grant => Ok(Some(d)),
            Some(_) => Err(SessionRefusal::OtherGrant),
            None => Err(SessionRefusal::Unknown),
        }
    }
}

/// Why a named session cannot be used.
enum SessionRefusal {
    OtherGrant,
    Unknown,
}

impl SessionRefusal {
    fn response(&self) -> Response {
        let (status, kind, reason) = match self {
            SessionRefusal::OtherGrant => (
                StatusCode::FORBIDDEN,
                "session-grant",
                "the session belongs to another grant",
            ),
            SessionRefusal::Unknown => {
                (StatusCode::NOT_FOUND, "unknown-session", "unknown session")
            }
        };
        json_response(
            status,
            &protocol_error(&Value::Null, INVALID_REQUEST, kind, reason),
        )
    }
}

fn refusal_response(
    session: &Session,
    status: StatusCode,
    refused: Refused,
    code: i64,
) -> Response {
    session.audit_refusal(&refused);
    json_response(
        status,
        &protocol_error(&refused.id, code, refused.kind, &refused.reason),
    )
}

async fn on_post(State(proxy): State<Arc<Proxy>>, headers: HeaderMap, body: Body) -> Response {
    let grant = grant_of(&headers);
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("\u{0}"));
    if !h::origin_allowed(origin) {
        let refused = Refused {
            id: Value::Null,
            tool: None,
            kind: "origin",
            reason: format!("origin `{}` is not allowed", origin.unwrap_or_default()),
        };
        return refusal_response(
            &proxy.stateless(&grant),
            StatusCode::FORBIDDEN,
            refused,
            INVALID_REQUEST,
        );
    }
    let down = match proxy.downstream(&headers, &grant) {
        Ok(d) => d,
        Err(r) => return r.response(),
    };
    let session = match &down {
        Some(d) => d.core.clone(),
        None => proxy.stateless(&grant),
    };
    let max = proxy.enforcer.max_frame;
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            let refused = Refused {
                id: Value::Null,
                tool: None,
                kind: "oversized",
                reason: format!("request body exceeds the limit of {max} bytes"),
            };
            return refusal_response(
                &session,
                StatusCode::PAYLOAD_TOO_LARGE,
                refused,
                INVALID_REQUEST,
            );
        }
    };
    if let Err(e) = std::str::from_utf8(&bytes) {
        let refused = Refused {
            id: Value::Null,
            tool: None,
            kind: "invalid-utf8",
            reason: format!(
                "body is not valid utf-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        };
        return refusal_response(&session, StatusCode::BAD_REQUEST, refused, PARSE_ERROR);
    }
    if let Err(reason) = headers::check(&headers, &bytes) {
        let loose: Option<Value> = serde_json::from_slice(&bytes).ok();
        let refused = Refused {
            id: loose
                .as_ref()
                .and_then(jsonrpc::id_of)
                .cloned()
                .unwrap_or(Value::Null),
            tool: loose
                .as_ref()
                .and_then(|v| v.pointer("/params/name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            kind: "header-mismatch",
            reason,
        };
        return refusal_response(&session, StatusCode::BAD_REQUEST, refused, HEADER_MISMATCH);
    }
    let upstream_sid = down.as_ref().and_then(|d| d.upstream.clone());
    let version = headers
        .get(h::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let inflight = InFlight::default();
    let mut initialized = false;
    match inbound::sort(&bytes) {
        Inbound::Refuse(refusal) => {
            for a in &refusal.audit {
                session.audit_refusal(a);
            }
            let body = refusal.reply.unwrap_or_else(|| {
                let reason = refusal
                    .audit
                    .first()
                    .map_or("refused", |a| a.reason.as_str());
                protocol_error(&Value::Null, INVALID_REQUEST, "notification", reason)
            });
            return json_response(StatusCode::BAD_REQUEST, &body);
        }
        Inbound::Forward(Forward::Request { key, list }) => {
            inflight.track(key, list);
        }
        Inbound::Forward(Forward::Initialized) => initialized = true,
        Inbound::Forward(Forward::Plain) => {}
        Inbound::Call(call) => {
            if session.begin_fetch(call.meta.as_ref()) {
                proxy
                    .upstream
                    .fetch_schemas(&session, upstream_sid.as_deref(), version.as_deref())
                    .await;
            }
            let learned = session.schemas().await;
            if let Err(reply) = session.decide(&inflight, &call, learned.as_deref()) {
                return json_response(StatusCode::OK, &reply);
            }
        }
    }
    let reply = match proxy
        .upstream
        .post(&headers, upstream_sid.as_deref(), bytes)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let ids = inflight.drain_client_ids();
            let id = ids.into_iter().next().unwrap_or(Value::Null);
            let why = format!("upstream unreachable: {e}");
            return json_response(
                StatusCode::BAD_GATEWAY,
                &protocol_error(&id, INTERNAL_ERROR, "upstream-unreachable", &why),
            );
        }
    };
    if initialized && (200..300).contains(&reply.status) && session.begin_fetch(None) {
        let proxy = proxy.clone();
        let session = session.clone();
        tokio::spawn(async move {
            proxy
                .upstream
                .fetch_schemas(&session, upstream_sid.as_deref(), version.as_deref())
                .await;
        });
    }
    respond(&proxy, &session, &inflight, &grant, down.is_none(), reply)
}

fn respond(
    proxy: &Arc<Proxy>,
    session: &Session,
    inflight: &InFlight,
    grant: &str,
    sessionless: bool,
    reply: UpReply,
) -> Response {
    let body = upstream::settle(session, inflight, &reply);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, body).into_response();
    if let Some(ct) = reply
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    // Upstream opened a session: open ours, bound to this grant.
    if sessionless && let Some(up) = reply.session {
        let id = new_session_id();
        let core = Arc::new(Session::new(
            proxy.enforcer.clone(),
            SessionInfo {
                grant: grant.to_owned(),
                session_id: id.clone(),
            },
            "http",
        ));
        lock(&proxy.sessions).insert(
            id.clone(),
            Arc::new(Downstream {
                grant: grant.to_owned(),
                upstream: Some(up),
                core,
            }),
        );
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(h::SESSION_ID, v);
        }
    }
    response
}

async fn on_delete(State(proxy): State<Arc<Proxy>>, headers: HeaderMap) -> Response {
    let grant = grant_of(&headers);
    let down = match proxy.downstream(&headers, &grant) {
        Ok(Some(d)) => d,
        Ok(None) => return StatusCode::BAD_REQUEST.into_response(),
        Err(r) => return r.response(),
    };
    if let Some(sid) = headers.get(h::SESSION_ID).and_then(|v| v.to_str().ok()) {
        lock(&proxy.sessions).remove(sid);
    }
    match &down.upstream {
        Some(up) => match proxy.upstream.delete(up).await {
            Ok(code) => StatusCode::from_u16(code)
                .unwrap_or(StatusCode::OK)
                .into_response(),
            Err(_) => StatusCode::BAD_GATEWAY.into_response(),
        },
        None => StatusCode::OK.into_response(),
    }
}

async fn on_get() -> Response {
    let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
    r
}
