//! stdio framing: one JSON-RPC message per line (NDJSON).
//!
//! The reader never trusts its peer: a line longer than the limit is
//! discarded up to its newline and reported, and invalid UTF-8 is reported
//! with the bytes that carried it, so the mock can still record what arrived.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The default largest frame accepted: 4 MiB, well above any real tool call.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// How many bytes of a bad frame are kept for the record.
pub const KEPT_BYTES: usize = 4096;

/// A line that could not be turned into a frame. Reading can go on after any
/// of these except `Io`.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {seen} bytes exceeds the limit of {limit} bytes")]
    Oversized {
        limit: usize,
        seen: usize,
        /// The first bytes of the frame.
        head: Vec<u8>,
    },
    #[error("frame is not valid utf-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        offset: usize,
        /// The whole frame, as received.
        bytes: Vec<u8>,
    },
    #[error("reading a frame: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the stream can still be read after this error.
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, FrameError::Io(_))
    }
}

/// Reads newline-delimited frames from a byte stream.
pub struct FrameReader<R> {
    inner: BufReader<R>,
    max: usize,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader that refuses frames longer than `max` bytes.
    pub fn new(reader: R, max: usize) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(64 * 1024, reader),
            max,
            line: Vec::with_capacity(4096),
        }
    }

    /// Whether a whole frame is already buffered, so the next
    /// [`next_frame`](Self::next_frame) needs no read. A server flushes its
    /// replies when this turns false, before it may block.
    pub fn frame_ready(&self) -> bool {
        self.inner.buffer().contains(&b'\n')
    }

    /// The next non-empty frame without its line ending, `Ok(None)` at end of
    /// stream. A final line without a newline still counts as a frame.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            self.line.clear();
            let mut seen = 0usize;
            let mut oversized = false;
            let mut eof = false;
            loop {
                let buf = self.inner.fill_buf().await?;
                if buf.is_empty() {
                    eof = true;
                    break;
                }
                let (chunk, found) = match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => (&buf[..i], Some(i)),
                    None => (buf, None),
                };
                seen += chunk.len();
                if seen > self.max {
                    // Keep only the head; the rest is drained without growing memory.
                    if !oversized {
                        let room = KEPT_BYTES.saturating_sub(self.line.len());
                        self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        self.line.truncate(KEPT_BYTES);
                    }
                    oversized = true;
                } else {
                    self.line.extend_from_slice(chunk);
                }
                let consumed = found.map_or(chunk.len(), |i| i + 1);
                self.inner.consume(consumed);
                if found.is_some() {
                    break;
                }
            }
            if oversized {
                return Err(FrameError::Oversized {
                    limit: self.max,
                    seen,
                    head: std::mem::take(&mut self.line),
                });
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                if eof {
                    return Ok(None);
                }
                continue;
            }
            if let Err(e) = std::str::from_utf8(&self.line) {
                return Err(FrameError::InvalidUtf8 {
                    offset: e.valid_up_to(),
                    bytes: std::mem::take(&mut self.line),
                });
            }
            return Ok(Some(std::mem::take(&mut self.line)));
        }
    }
}

/// Writes one frame and its newline. The caller decides when to flush, so a
/// burst of replies can leave in one write.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame).await?;
    w.write_all(b"\n").await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut r = FrameReader::new(input, max);
        let mut out = Vec::new();
        loop {
            match r.next_frame().await {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_skips_blank_ones() {
        let got = frames(b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\":3}", 100).await;
        let want: Vec<Result<Vec<u8>, String>> = vec![
            Ok(b"{\"a\":1}".to_vec()),
            Ok(b"{\"b\":2}".to_vec()),
            Ok(b"{\"c\":3}".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn frame_ready_says_whether_a_read_is_needed() {
        let mut r = FrameReader::new(&b"{}\n{}\n{\"partial\""[..], 100);
        assert!(!r.frame_ready(), "nothing read yet");
        assert_eq!(r.next_frame().await.unwrap(), Some(b"{}".to_vec()));
        assert!(r.frame_ready());
        assert_eq!(r.next_frame().await.unwrap(), Some(b"{}".to_vec()));
        assert!(!r.frame_ready(), "only a partial frame is left");
    }

    #[tokio::test]
    async fn oversized_frame_is_reported_and_reading_goes_on() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\n{}\n");
        let got = frames(&input, 10).await;
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Err("frame of 50 bytes exceeds the limit of 10 bytes".into())
        );
        assert_eq!(got[1], Ok(b"{}".to_vec()));
    }

    #[tokio::test]
    async fn invalid_utf8_is_reported_with_its_offset() {
        let got = frames(b"{\"a\":\"\xff\"}\n{}\n", 100).await;
        assert_eq!(
            got[0],
            Err("frame is not valid utf-8 (first bad byte at offset 6)".into())
        );
        assert_eq!(got[1], Ok(b"{}".to_vec()));
    }

    #[tokio::test]
    async fn long_frames_across_buffer_refills_stay_whole() {
        let body = "y".repeat(200_000);
        let input = format!("\"{body}\"\n");
        let got = frames(input.as_bytes(), DEFAULT_MAX_FRAME).await;
        assert_eq!(got, vec![Ok(input.trim_end().as_bytes().to_vec())]);
    }
}
