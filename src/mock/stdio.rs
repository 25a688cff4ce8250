//! The stdio server: newline-delimited JSON in, replies out.
//!
//! Frames are handled in arrival order on the reading task, so the client
//! can pipeline freely. Immediate replies collect into a batch that goes to
//! the writer task whenever the reader runs out of buffered frames (just
//! before it might block), so a burst of calls costs one hand-off and one
//! write rather than one of each per call. A reply with simulated latency
//! waits on a timer of its own, so a stall holds back only its own call.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::Mock;
use super::ledger::LedgerError;
use crate::mcp::framing::{FrameError, FrameReader};

/// Batches waiting for the writer; bounded so a client that never reads
/// pushes back on the reader instead of growing memory.
const QUEUE: usize = 64;

/// A batch of replies is handed over once it reaches this size.
const BATCH: usize = 64 * 1024;

/// Why a server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading frames: {0}")]
    Read(FrameError),
    #[error("writing replies: {0}")]
    Write(std::io::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Serves one stdio connection until its input ends and every reply is out.
pub async fn serve<R, W>(
    mock: Arc<Mock>,
    input: R,
    output: W,
    identity: Option<String>,
) -> Result<(), ServeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let writer = tokio::spawn(write_replies(rx, output));
    let mut conn = mock.stdio_conn(identity);
    let mut frames = FrameReader::new(input, mock.config().max_frame);
    let read = async {
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH);
        loop {
            if !batch.is_empty() && (batch.len() >= BATCH || !frames.frame_ready()) {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).await.is_err() {
                    return Ok(());
                }
            }
            let reply = match frames.next_frame().await {
                Ok(Some(frame)) => mock.handle(&mut conn, &frame)?,
                Ok(None) => break,
                Err(e) if e.is_recoverable() => mock.handle_frame_error(&mut conn, &e)?,
                Err(e) => return Err(ServeError::Read(e)),
            };
            let Some(mut body) = reply.body() else {
                continue;
            };
            body.push(b'\n');
            if reply.delay.is_zero() {
                batch.extend_from_slice(&body);
            } else {
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(reply.delay).await;
                    let _ = tx.send(body).await;
                });
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        Ok(())
    };
    let outcome = read.await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| ServeError::Write(std::io::Error::other(e)))?;
    outcome?;
    written
}

async fn write_replies<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Vec<u8>>,
    output: W,
) -> Result<(), ServeError> {
    let mut out = BufWriter::with_capacity(BATCH, output);
    while let Some(first) = rx.recv().await {
        let mut result = out.write_all(&first).await;
        while result.is_ok() {
            match rx.try_recv() {
                Ok(more) => result = out.write_all(&more).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        match result {
            Ok(()) => {}
            // The client went away: not an error of ours.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(ServeError::Write(e)),
        }
    }
    Ok(())
}
