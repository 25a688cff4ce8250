//! What one ledger record holds, and the two kinds of line it is written as.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::b64;
use crate::mcp::keys::KeyIssue;
use crate::mock::catalogue::SchemaError;

/// How many bytes of a message are kept in its record.
pub const RAW_KEPT: usize = 4096;

/// How a message reached the mock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    Stdio,
    Http,
}

/// What the mock answered, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// A success result (for a notification: handled, nothing sent back).
    Ok,
    /// A `tools/call` result flagged `isError`.
    ToolError { message: String },
    /// A JSON-RPC error, on a 200 (or on stdio).
    RpcError { code: i64, message: String },
    /// Turned away at the HTTP layer with a non-200 status, before dispatch.
    Rejected {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i64>,
        message: String,
    },
    /// A response or an unknown notification: nothing to do.
    Ignored,
}

impl Outcome {
    /// The JSON-RPC error code, for either error form.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            Outcome::RpcError { code, .. } => Some(*code),
            Outcome::Rejected { code, .. } => *code,
            _ => None,
        }
    }
}

/// One message that arrived, with what the mock made of it.
///
/// The arrival line is written before the message is dispatched; `executed`,
/// `outcome` and `touched` come from a second line written afterwards, so a
/// record without an outcome is a message still in flight (or one the mock
/// died on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerRecord {
    /// Per message, from 1, in the order lines were written.
    pub seq: u64,
    /// The mock process that wrote it; `(instance, seq)` is unique even
    /// when several mocks share one ledger file.
    #[serde(default)]
    pub instance: String,
    /// Per frame, from 1; the messages of one batch share it.
    pub frame: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<usize>,
    /// Arrival of the frame, nanoseconds since the Unix epoch.
    pub at_unix_ns: u64,
    /// Arrival of the frame, nanoseconds since the mock started (monotonic).
    pub mono_ns: u64,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The bearer token on HTTP, `--identity` or `GAUNTLET_IDENTITY` on stdio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The revision the message was judged under, when one applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notification: bool,
    /// The catalogue name `raw_name` resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `params.name` exactly as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_name: Option<String>,
    /// `params.arguments` as the mock read them (last of duplicate keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// Whether the arguments satisfy the tool's input schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_errors: Vec<SchemaError>,
    /// Duplicate and case-variant keys in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_issues: Vec<KeyIssue>,
    /// Why the bytes are not a usable message (framing, JSON, JSON-RPC shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// HTTP request headers, names lower-cased, in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Length of the whole message in bytes.
    pub raw_len: usize,
    /// SHA-256 of the whole message; absent when only its head was kept
    /// (an oversized frame is never held in full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    /// The first [`RAW_KEPT`] bytes, when they are UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The first [`RAW_KEPT`] bytes in base64, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    /// Whether the call took effect on the store (a tool ran).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The customer a call created, changed or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touched: Option<String>,
}

impl LedgerRecord {
    /// Fills the raw fields from the bytes of the message. `whole` says
    /// whether `bytes` is the entire message, so the hash means something.
    pub fn set_raw(&mut self, bytes: &[u8], total_len: usize, whole: bool) {
        self.raw_len = total_len;
        self.raw_sha256 = whole.then(|| sha256_hex(bytes));
        let kept = &bytes[..bytes.len().min(RAW_KEPT)];
        match std::str::from_utf8(kept) {
            Ok(text) => self.raw = Some(text.to_owned()),
            // A cut through a multi-byte character is still text.
            Err(e) if e.error_len().is_none() => {
                self.raw = Some(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned());
            }
            Err(_) => self.raw_base64 = Some(b64::encode(kept)),
        }
    }

    /// The kept bytes of the message, whichever way they were stored.
    pub fn raw_bytes(&self) -> Vec<u8> {
        match (&self.raw, &self.raw_base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(coded)) => b64::decode(coded).unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    /// Whether only part of the message was kept.
    pub fn raw_truncated(&self) -> bool {
        let kept = match (&self.raw, &self.raw_base64) {
            (Some(text), _) => text.len(),
            (None, Some(coded)) => {
                let pad = coded.len() - coded.trim_end_matches('=').len();
                coded.len() / 4 * 3 - pad
            }
            (None, None) => 0,
        };
        kept < self.raw_len
    }

    /// Whether this record is a `tools/call` (request or notification).
    pub fn is_call(&self) -> bool {
        self.method.as_deref() == Some("tools/call")
    }

    /// Whether this is a `tools/call` that resolved to `tool`.
    pub fn is_call_to(&self, tool: &str) -> bool {
        self.is_call() && self.tool.as_deref() == Some(tool)
    }

    /// Takes in what an outcome line says.
    pub fn apply(&mut self, line: OutcomeLine) {
        self.executed = line.executed;
        self.outcome = Some(line.outcome);
        self.touched = line.touched;
    }

    /// A string argument of a call, by top-level key.
    pub fn arg_str(&self, key: &str) -> Option<&str> {
        self.arguments.as_ref()?.get(key)?.as_str()
    }
}

/// The second line for a message: what handling it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeLine {
    pub seq: u64,
    #[serde(default)]
    pub instance: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executed: bool,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touched: Option<String>,
}

/// One line of the ledger file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerLine {
    Arrival(Box<LedgerRecord>),
    Outcome(OutcomeLine),
}

/// The borrowed twin of [`LedgerLine`], so writing needs no clone.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum LineRef<'a> {
    Arrival(&'a LedgerRecord),
    Outcome(&'a OutcomeLine),
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_text_when_it_can_be_and_base64_otherwise() {
        let mut r = LedgerRecord::default();
        let text = b"{\"a\":\"\xc3\xa9\"}";
        r.set_raw(text, text.len(), true);
        assert_eq!(r.raw.as_deref(), Some("{\"a\":\"é\"}"));
        assert_eq!(r.raw_bytes(), b"{\"a\":\"\xc3\xa9\"}");
        assert!(!r.raw_truncated());
        assert_eq!(r.raw_sha256.as_deref().map(str::len), Some(64));

        let mut r = LedgerRecord::default();
        let bad = b"{\"a\":\"\xff\"}";
        r.set_raw(bad, bad.len(), true);
        assert_eq!((r.raw.as_deref(), r.raw_base64.is_some()), (None, true));
        assert!(!r.raw_truncated());
        assert_eq!(r.raw_bytes(), b"{\"a\":\"\xff\"}");
    }

    #[test]
    fn long_raw_is_capped_at_a_character_boundary() {
        let mut text = "x".repeat(RAW_KEPT - 1);
        text.push('é');
        let mut r = LedgerRecord::default();
        r.set_raw(text.as_bytes(), text.len(), true);
        assert_eq!(r.raw.as_ref().map(String::len), Some(RAW_KEPT - 1));
        assert!(r.raw_truncated());
        assert_eq!(r.raw_sha256, Some(sha256_hex(text.as_bytes())));
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn lines_round_trip_and_refuse_unknown_fields() {
        let rec = LedgerRecord {
            seq: 3,
            frame: 2,
            method: Some("tools/call".into()),
            outcome: None,
            ..LedgerRecord::default()
        };
        let text = serde_json::to_string(&LineRef::Arrival(&rec)).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"arrival","seq":3,"instance":"","frame":2,"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<LedgerLine>(&text).unwrap(),
            LedgerLine::Arrival(Box::new(rec))
        );
        let out = OutcomeLine {
            seq: 3,
            executed: true,
            outcome: Outcome::RpcError {
                code: -32603,
                message: "x".into(),
            },
            touched: Some("WC_000001".into()),
            instance: "i".into(),
        };
        let text = serde_json::to_string(&LineRef::Outcome(&out)).unwrap();
        assert_eq!(
            serde_json::from_str::<LedgerLine>(&text).unwrap(),
            LedgerLine::Outcome(out)
        );
        let extra = r#"{"kind":"outcome","seq":1,"outcome":{"type":"ok"},"surprise":1}"#;
        assert!(serde_json::from_str::<LedgerLine>(extra).is_err());
    }
}
