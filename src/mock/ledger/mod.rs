//! The ledger: the mock's own record of every message that reached it, and
//! of what it made of each. It is the ground truth the oracle judges from.
//!
//! # File format
//!
//! JSON lines, two kinds, each written with one `write` as soon as it is
//! known:
//!
//! - `{"kind":"arrival", "seq":…, "instance":…, "frame":…, …}` when a message
//!   has been decoded and before it is dispatched. A frame that cannot be
//!   decoded (oversized, invalid UTF-8, bad JSON) still gets one, with
//!   `error` and the raw bytes that were kept.
//! - `{"kind":"outcome", "seq":…, "instance":…, "executed":…, "outcome":…}`
//!   once it has been handled.
//!
//! [`read`] and [`Tail`] fold both into one [`LedgerRecord`] per message. The
//! cheap fields come first on each line, so even `grep` can answer "did a
//! call to X arrive" without parsing the raw bytes at the end.

pub(crate) mod b64;
mod reader;
mod record;
mod writer;

pub use reader::{LedgerIndex, Tail, read};
pub use record::{LedgerLine, LedgerRecord, Outcome, OutcomeLine, RAW_KEPT, Transport, sha256_hex};
pub use writer::{FrameStamp, Ledger};

/// What can go wrong writing or reading a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("opening ledger `{path}`: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("ledger i/o: {0}")]
    Io(std::io::Error),
    #[error("encoding a ledger line: {0}")]
    Encode(serde_json::Error),
    #[error("ledger line {line} is not a ledger line: {source}")]
    Line {
        line: usize,
        source: serde_json::Error,
    },
    #[error("ledger line {line} concludes message {seq}, which never arrived")]
    Orphan { line: usize, seq: u64 },
}

/// A token that tells this mock process apart from any other writing to the
/// same ledger.
pub(crate) fn instance_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sha256_hex(seed.as_bytes())[..12].to_owned()
}
