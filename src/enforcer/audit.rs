//! The audit log: one JSON line per decision.
//!
//! The proxy's hot path only builds a record and hands it to a channel; a
//! background thread serialises, writes through a buffer, and flushes once
//! the channel is empty, so a burst of calls costs one flush, and a quiet
//! log is never more than one record behind.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One decision, as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Wall-clock time of the decision, RFC 3339 in UTC.
    pub time: String,
    /// `stdio` or `http`.
    pub transport: String,
    pub grant: String,
    pub session: String,
    /// The JSON-RPC id of the request, null for notifications and frames
    /// that had none.
    pub id: Value,
    /// The tool name exactly as sent, when the frame had one.
    pub tool_raw: Option<String>,
    /// The tool the name resolves to upstream (or in the policy), if any.
    pub tool: Option<String>,
    /// Top-level argument keys, sorted.
    pub arg_keys: Vec<String>,
    /// The arguments themselves, only when values are audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// `allow` or `deny`.
    pub decision: Decision,
    /// Why a denial happened, in snake case (`limit`, `hidden`, `malformed`...).
    pub kind: Option<String>,
    /// Pointer of the deciding rule in the policy file.
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// How long the decision took, in nanoseconds.
    pub decide_ns: u64,
}

/// The outcome written to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

enum Msg {
    Record(Box<AuditRecord>),
    Sync(mpsc::Sender<()>),
}

/// Where audit records go. Dropping it writes out what is queued.
pub struct AuditSink {
    tx: Option<mpsc::Sender<Msg>>,
    values: bool,
    thread: Option<JoinHandle<()>>,
}

impl AuditSink {
    /// Appends to the file at `path`, creating it if needed. With `values`,
    /// records carry the call arguments, not only their keys.
    pub fn to_file(path: &Path, values: bool) -> std::io::Result<AuditSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditSink::to_writer(Box::new(file), values))
    }

    /// Writes to any writer (a `Vec` behind a lock in tests, say).
    pub fn to_writer(writer: Box<dyn Write + Send>, values: bool) -> AuditSink {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("gauntlet-audit".into())
            .spawn(move || write_loop(writer, rx))
            .ok();
        AuditSink {
            tx: Some(tx),
            values,
            thread,
        }
    }

    /// Whether records carry argument values.
    pub fn values(&self) -> bool {
        self.values
    }

    /// Queues one record.
    pub fn record(&self, record: AuditRecord) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Record(Box::new(record)));
        }
    }

    /// Blocks until every record queued before this call is written and
    /// flushed.
    pub fn sync(&self) {
        let (done, wait) = mpsc::channel();
        if let Some(tx) = &self.tx
            && tx.send(Msg::Sync(done)).is_ok()
        {
            let _ = wait.recv();
        }
    }
}

impl Drop for AuditSink {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(writer: Box<dyn Write + Send>, rx: mpsc::Receiver<Msg>) {
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    let mut line = Vec::with_capacity(512);
    while let Ok(mut msg) = rx.recv() {
        loop {
            match msg {
                Msg::Record(rec) => {
                    line.clear();
                    if serde_json::to_writer(&mut line, &rec).is_ok() {
                        line.push(b'\n');
                        let _ = out.write_all(&line);
                    }
                }
                Msg::Sync(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

/// The current time as RFC 3339 UTC with microseconds.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_micros())
}

fn rfc3339(secs: u64, micros: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), to avoid a date crate for one timestamp.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(n: u64) -> AuditRecord {
        AuditRecord {
            time: now_rfc3339(),
            transport: "stdio".into(),
            grant: "alice".into(),
            session: "s1".into(),
            id: Value::from(n),
            tool_raw: Some("T".into()),
            tool: Some("T".into()),
            arg_keys: vec!["a".into()],
            args: None,
            decision: Decision::Allow,
            kind: None,
            rule: None,
            reason: None,
            decide_ns: 10,
        }
    }

    #[test]
    fn records_become_json_lines_in_order_and_sync_waits_for_them() {
        let buf = Shared::default();
        let sink = AuditSink::to_writer(Box::new(buf.clone()), false);
        for n in 0..100 {
            sink.record(record(n));
        }
        sink.sync();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<AuditRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 100);
        assert!(lines.iter().enumerate().all(|(i, r)| r.id == i));
    }

    #[test]
    fn dropping_the_sink_writes_what_is_queued() {
        let buf = Shared::default();
        let sink = AuditSink::to_writer(Box::new(buf.clone()), false);
        sink.record(record(1));
        drop(sink);
        assert_eq!(
            String::from_utf8(buf.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(rfc3339(1_785_196_799, 0), "2026-07-27T23:59:59.000000Z");
    }
}
