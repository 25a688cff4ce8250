//! The stdio proxy over any pair of byte streams: the CLI wires it to its
//! own stdin/stdout and a child's pipes, the harness to in-memory pipes.
//!
//! Frames are forwarded as soon as they are judged; replies are matched by
//! id in the session's in-flight table, so a client may pipeline freely.
//! Both directions run in one task: no hop between threads on the hot path.
//!
//! Each direction flushes what it wrote once no whole frame is left in its
//! read buffer, not after every frame: frames that arrived together leave
//! together, one write (and one wake-up of the peer) for the lot. Nothing
//! waits in a buffer while the loop waits for input, and the proxy's own
//! requests, which it waits on, are always flushed at once.

use std::pin::pin;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::Mutex;

use super::inbound::{self, Forward, Inbound};
use super::session::{InFlight, Outbound, Session};
use super::{Enforcer, EnforcerError, SessionInfo};
use crate::mcp::framing::{FrameError, FrameReader, write_frame};

/// Frames from upstream may be much larger than calls (a big `tools/list`).
const UPSTREAM_FRAME_FACTOR: usize = 16;

/// One direction's writer. Closing drops it: a child's stdin pipe only
/// signals end of input once its handle is gone (`shutdown` on a pipe is a
/// flush), and an upstream that never sees end of input never exits.
struct Side<W> {
    w: Mutex<Option<BufWriter<W>>>,
}

impl<W: AsyncWrite + Unpin> Side<W> {
    fn new(w: W) -> Self {
        Side {
            w: Mutex::new(Some(BufWriter::with_capacity(64 * 1024, w))),
        }
    }

    /// Writes a frame into the buffer; it leaves with the next flush.
    async fn write(&self, frame: &[u8]) -> std::io::Result<()> {
        let mut guard = self.w.lock().await;
        let w = guard
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        write_frame(&mut *w, frame).await
    }

    async fn flush(&self) -> std::io::Result<()> {
        match self.w.lock().await.as_mut() {
            Some(w) => w.flush().await,
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        }
    }

    /// Writes a frame and flushes it.
    async fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        self.write(frame).await?;
        self.flush().await
    }

    async fn write_value(&self, v: &Value) -> std::io::Result<()> {
        match serde_json::to_vec(v) {
            Ok(bytes) => self.write(&bytes).await,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    async fn send_value(&self, v: &Value) -> std::io::Result<()> {
        self.write_value(v).await?;
        self.flush().await
    }

    async fn close(&self) {
        if let Some(mut w) = self.w.lock().await.take() {
            let _ = w.flush().await;
            let _ = w.shutdown().await;
        }
    }
}

/// Runs one session until the client closes its side and every forwarded
/// request is answered (or upstream closes). Closing the client side shuts
/// down the upstream writer, so a child upstream sees end of input.
pub async fn serve<CR, CW, UR, UW>(
    enforcer: Arc<Enforcer>,
    info: SessionInfo,
    client: (CR, CW),
    upstream: (UR, UW),
) -> Result<(), EnforcerError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let max = enforcer.max_frame;
    let session = Session::new(enforcer, info, "stdio");
    let inflight = InFlight::default();
    let to_client = Side::new(client.1);
    let to_upstream = Side::new(upstream.1);
    let mut from_client = FrameReader::new(client.0, max);
    let mut from_upstream = FrameReader::new(upstream.0, max.saturating_mul(UPSTREAM_FRAME_FACTOR));

    let mut down = pin!(client_loop(
        &session,
        &inflight,
        &mut from_client,
        &to_client,
        &to_upstream
    ));
    let mut up = pin!(upstream_loop(
        &session,
        &inflight,
        &mut from_upstream,
        &to_client,
        &to_upstream
    ));
    let mut up_done = false;
    let result = tokio::select! {
        r = &mut down => {
            to_upstream.close().await;
            // Let pipelined replies come back before returning.
            loop {
                let idle = inflight.idle().notified();
                let mut idle = pin!(idle);
                idle.as_mut().enable();
                if inflight.count() == 0 {
                    break;
                }
                tokio::select! {
                    () = &mut up => {
                        up_done = true;
                        break;
                    }
                    () = idle => {}
                }
            }
            r
        }
        () = &mut up => {
            up_done = true;
            Ok(())
        }
    };
    let finish = async {
        for reply in session.upstream_closed(&inflight) {
            let _ = to_client.send_value(&reply).await;
        }
        to_client.close().await;
        to_upstream.close().await;
    };
    if up_done {
        finish.await;
    } else {
        // The upstream loop may be suspended half-way through writing a reply
        // to the client, holding that side: keep driving it while closing,
        // or the close waits forever for a lock nobody will release.
        let mut finish = pin!(finish);
        tokio::select! {
            () = &mut finish => {}
            () = &mut up => finish.await,
        }
    }
    result
}

async fn client_loop<CR, CW, UW>(
    session: &Session,
    inflight: &InFlight,
    frames: &mut FrameReader<CR>,
    to_client: &Side<CW>,
    to_upstream: &Side<UW>,
) -> Result<(), EnforcerError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UW: AsyncWrite + Unpin,
{
    let (mut client_dirty, mut upstream_dirty) = (false, false);
    loop {
        if !frames.frame_ready() {
            if std::mem::take(&mut client_dirty) {
                let _ = to_client.flush().await;
            }
            if std::mem::take(&mut upstream_dirty) && to_upstream.flush().await.is_err() {
                // Upstream stopped reading; the upstream loop ends the session.
                std::future::pending::<()>().await;
            }
        }
        let frame = match frames.next_frame().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                let _ = to_client.flush().await;
                let _ = to_upstream.flush().await;
                return Ok(());
            }
            Err(FrameError::Oversized { limit, seen, .. }) => {
                let why = format!("frame of {seen} bytes exceeds the limit of {limit} bytes");
                refuse(session, to_client, inbound::unreadable("oversized", why)).await;
                client_dirty = true;
                continue;
            }
            Err(FrameError::InvalidUtf8 { offset, .. }) => {
                let why = format!("frame is not valid utf-8 (first bad byte at offset {offset})");
                refuse(session, to_client, inbound::unreadable("invalid-utf8", why)).await;
                client_dirty = true;
                continue;
            }
            Err(FrameError::Io(e)) => return Err(EnforcerError::Client(e)),
        };
        let sent = match inbound::sort(&frame) {
            Inbound::Forward(Forward::Request { key, list }) => {
                if inflight.track(key.clone(), list) {
                    upstream_dirty = true;
                    to_upstream.write(&frame).await
                } else {
                    let id = serde_json::from_str::<Value>(&key).unwrap_or(Value::Null);
                    let _ = to_client
                        .write_value(&session.duplicate_id(&id, None))
                        .await;
                    client_dirty = true;
                    Ok(())
                }
            }
            Inbound::Forward(Forward::Initialized) => {
                upstream_dirty = true;
                let r = to_upstream.write(&frame).await;
                if r.is_ok() && session.begin_fetch(None) {
                    send_own(inflight, to_upstream, session.own_request(None)).await
                } else {
                    r
                }
            }
            Inbound::Forward(Forward::Plain) => {
                upstream_dirty = true;
                to_upstream.write(&frame).await
            }
            r @ Inbound::Refuse(_) => {
                refuse(session, to_client, r).await;
                client_dirty = true;
                Ok(())
            }
            Inbound::Call(call) => {
                if session.begin_fetch(call.meta.as_ref()) {
                    // Upstream is gone if this fails; the wait below ends
                    // when the upstream loop notices.
                    let _ = send_own(inflight, to_upstream, session.own_request(None)).await;
                }
                let learned = session.schemas().await;
                match session.decide(inflight, &call, learned.as_deref()) {
                    Ok(()) => {
                        upstream_dirty = true;
                        to_upstream.write(&frame).await
                    }
                    Err(reply) => {
                        let _ = to_client.write_value(&reply).await;
                        client_dirty = true;
                        Ok(())
                    }
                }
            }
        };
        if sent.is_err() {
            // Upstream stopped reading; the upstream loop ends the session.
            std::future::pending::<()>().await;
        }
    }
}

/// Sends one of the proxy's own requests, flushing it (and whatever was
/// written before it): the proxy may wait on its reply.
async fn send_own<UW: AsyncWrite + Unpin>(
    inflight: &InFlight,
    to_upstream: &Side<UW>,
    (key, bytes): (String, Vec<u8>),
) -> std::io::Result<()> {
    inflight.track_own(key);
    to_upstream.send(&bytes).await
}

async fn refuse<CW: AsyncWrite + Unpin>(session: &Session, to_client: &Side<CW>, r: Inbound) {
    let Inbound::Refuse(refusal) = r else { return };
    for a in &refusal.audit {
        session.audit_refusal(a);
    }
    if let Some(reply) = &refusal.reply {
        let _ = to_client.write_value(reply).await;
    }
}

async fn upstream_loop<UR, CW, UW>(
    session: &Session,
    inflight: &InFlight,
    frames: &mut FrameReader<UR>,
    to_client: &Side<CW>,
    to_upstream: &Side<UW>,
) where
    UR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UW: AsyncWrite + Unpin,
{
    let mut dirty = false;
    loop {
        if !frames.frame_ready() && std::mem::take(&mut dirty) && to_client.flush().await.is_err() {
            return;
        }
        let frame = match frames.next_frame().await {
            Ok(Some(f)) => f,
            Ok(None) | Err(FrameError::Io(_)) => {
                let _ = to_client.flush().await;
                return;
            }
            // Server bytes are the client's to judge; only our own limit
            // stops them.
            Err(FrameError::InvalidUtf8 { bytes, .. }) => bytes,
            Err(FrameError::Oversized { .. }) => continue,
        };
        let sent = match session.outbound(inflight, &frame) {
            Outbound::Forward => {
                dirty = true;
                to_client.write(&frame).await
            }
            Outbound::Rewritten(bytes) => {
                dirty = true;
                to_client.write(&bytes).await
            }
            Outbound::Own(Some(next)) => {
                let _ = send_own(inflight, to_upstream, next).await;
                Ok(())
            }
            Outbound::Own(None) => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}
