//! The Streamable HTTP server: POST `/mcp` answers JSON (or SSE with
//! `--sse` when the client accepts it), DELETE ends a session, GET is 405.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;

use super::core::{Conn, HttpMeta};
use super::ledger::{RAW_KEPT, Transport};
use super::{Mock, Reply};
use crate::mcp::framing::FrameError;
use crate::mcp::http as h;

/// The path the endpoint is served on.
pub const PATH: &str = "/mcp";

/// The router for the endpoint, ready for `axum::serve`.
pub fn router(mock: Arc<Mock>) -> Router {
    Router::new()
        .route(PATH, post(on_post).delete(on_delete).get(on_get))
        .with_state(mock)
}

/// Serves the endpoint on an already bound listener until `shutdown` ends.
pub async fn serve(
    mock: Arc<Mock>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(crate::mcp::http::no_delay(listener), router(mock))
        .with_graceful_shutdown(shutdown)
        .await
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Reads the body up to `max` bytes. Past the limit only the head is kept
/// and the rest is counted, so an oversized POST is recorded like an
/// oversized stdio line.
async fn read_body(body: Body, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FrameError::Io(std::io::Error::other(e)))?;
        seen += chunk.len();
        if seen <= max {
            kept.extend_from_slice(&chunk);
        } else if kept.len() < RAW_KEPT {
            let room = RAW_KEPT - kept.len().min(RAW_KEPT);
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    if seen > max {
        kept.truncate(RAW_KEPT);
        return Err(FrameError::Oversized {
            limit: max,
            seen,
            head: kept,
        });
    }
    Ok(kept)
}

async fn on_post(State(mock): State<Arc<Mock>>, headers: HeaderMap, body: Body) -> Response {
    let meta = HttpMeta::from_headers(header_list(&headers));
    let identity = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(h::bearer)
        .map(str::to_owned);
    let sse = mock.config().sse && meta.accepts_sse;
    let mut conn = Conn::new(Transport::Http, identity, None);
    conn.http = Some(meta);
    let handled = match read_body(body, mock.config().max_frame).await {
        Ok(bytes) => mock.handle(&mut conn, &bytes),
        Err(e) => mock.handle_frame_error(&mut conn, &e),
    };
    let reply = match handled {
        Ok(reply) => reply,
        Err(e) => {
            // The ground truth could not be written: say so loudly.
            eprintln!("gauntlet mock: {e}");
            return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    respond(reply, sse)
}

fn respond(reply: Reply, sse: bool) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = match reply.body() {
        None if status == StatusCode::OK => StatusCode::ACCEPTED.into_response(),
        None => status.into_response(),
        Some(body) if sse && status == StatusCode::OK => {
            let events = h::sse_event(&body);
            let mut r = (status, events).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            r
        }
        Some(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
    };
    if let Some(sid) = reply
        .new_session
        .and_then(|s| HeaderValue::from_str(&s).ok())
    {
        response.headers_mut().insert(h::SESSION_ID, sid);
    }
    response
}

async fn on_delete(State(mock): State<Arc<Mock>>, headers: HeaderMap) -> StatusCode {
    match headers.get(h::SESSION_ID).and_then(|v| v.to_str().ok()) {
        Some(sid) if mock.sessions().close(sid) => StatusCode::OK,
        Some(_) => StatusCode::NOT_FOUND,
        None => StatusCode::BAD_REQUEST,
    }
}

async fn on_get() -> Response {
    let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
    r
}
