//! Reading a ledger file back: all at once, or tailing it while the mock
//! still writes, plus an index for "did call X arrive".

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::LedgerError;
use super::record::{LedgerLine, LedgerRecord};

/// Folds lines into records: arrivals append, outcomes patch.
#[derive(Debug, Default)]
struct Fold {
    records: Vec<LedgerRecord>,
    by_key: HashMap<(String, u64), usize>,
    lines: usize,
    /// Records dropped by [`Tail::forget`]; an outcome may still come for
    /// one of them, and is then ignored.
    forgotten: usize,
}

impl Fold {
    fn push(&mut self, line: &[u8]) -> Result<(), LedgerError> {
        self.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let parsed: LedgerLine =
            serde_json::from_slice(line).map_err(|source| LedgerError::Line {
                line: self.lines,
                source,
            })?;
        match parsed {
            LedgerLine::Arrival(rec) => {
                let rec = *rec;
                self.by_key
                    .insert((rec.instance.clone(), rec.seq), self.records.len());
                self.records.push(rec);
            }
            LedgerLine::Outcome(out) => {
                let key = (out.instance.clone(), out.seq);
                let Some(&i) = self.by_key.get(&key) else {
                    if self.forgotten > 0 {
                        return Ok(());
                    }
                    return Err(LedgerError::Orphan {
                        line: self.lines,
                        seq: out.seq,
                    });
                };
                if let Some(rec) = self.records.get_mut(i) {
                    rec.apply(out);
                }
            }
        }
        Ok(())
    }

    /// Feeds every complete line of `buf`, returning how many bytes were
    /// used; a trailing line without its newline is still being written.
    fn feed(&mut self, buf: &[u8]) -> Result<usize, LedgerError> {
        let mut used = 0;
        while let Some(end) = buf[used..].iter().position(|b| *b == b'\n') {
            self.push(&buf[used..used + end])?;
            used += end + 1;
        }
        Ok(used)
    }
}

/// Every record in a ledger file, outcomes merged in. A last line still
/// being written is left out.
pub fn read(path: &Path) -> Result<Vec<LedgerRecord>, LedgerError> {
    let bytes = std::fs::read(path).map_err(|source| LedgerError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let mut fold = Fold::default();
    fold.feed(&bytes)?;
    Ok(fold.records)
}

/// Follows a ledger file that is still growing.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    file: Option<File>,
    partial: Vec<u8>,
    fold: Fold,
}

impl Tail {
    /// A tail on `path`; the file need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Tail {
        Tail {
            path: path.into(),
            file: None,
            partial: Vec::new(),
            fold: Fold::default(),
        }
    }

    /// Reads whatever was appended since the last poll. Returns how many
    /// new records arrived (outcome lines patch older records silently).
    pub fn poll(&mut self) -> Result<usize, LedgerError> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(source) => {
                    return Err(LedgerError::Open {
                        path: self.path.display().to_string(),
                        source,
                    });
                }
            }
        }
        let Some(file) = &mut self.file else {
            return Ok(0);
        };
        file.read_to_end(&mut self.partial)
            .map_err(LedgerError::Io)?;
        let before = self.fold.records.len();
        let used = self.fold.feed(&self.partial)?;
        self.partial.drain(..used);
        Ok(self.fold.records.len() - before)
    }

    /// The records read so far (since the last [`Tail::forget`]).
    pub fn records(&self) -> &[LedgerRecord] {
        &self.fold.records
    }

    /// Drops every record read so far, keeping the place in the file: a
    /// long-lived arena reads millions of records, and each use needs only
    /// its own. Outcome lines for dropped records are ignored from now on.
    pub fn forget(&mut self) {
        self.take();
    }

    /// Like [`Tail::forget`], handing the records over instead of dropping
    /// them.
    pub fn take(&mut self) -> Vec<LedgerRecord> {
        self.fold.forgotten += self.fold.records.len();
        self.fold.by_key.clear();
        std::mem::take(&mut self.fold.records)
    }

    /// Polls until a record satisfies `pred`, up to `timeout`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&LedgerRecord) -> bool,
    ) -> Result<Option<LedgerRecord>, LedgerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.poll()?;
            if let Some(found) = self.fold.records.iter().find(|r| pred(r)) {
                return Ok(Some(found.clone()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Records by resolved tool and by request id, for quick questions.
#[derive(Debug)]
pub struct LedgerIndex<'a> {
    records: &'a [LedgerRecord],
    by_tool: HashMap<&'a str, Vec<usize>>,
    by_id: HashMap<String, Vec<usize>>,
}

impl<'a> LedgerIndex<'a> {
    /// Indexes `records` (read from a file or taken from memory).
    pub fn new(records: &'a [LedgerRecord]) -> LedgerIndex<'a> {
        let mut by_tool: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if let (true, Some(tool)) = (r.is_call(), r.tool.as_deref()) {
                by_tool.entry(tool).or_default().push(i);
            }
            if let Some(id) = &r.id {
                by_id.entry(id.to_string()).or_default().push(i);
            }
        }
        LedgerIndex {
            records,
            by_tool,
            by_id,
        }
    }

    /// Every `tools/call` that resolved to `tool`, in ledger order.
    pub fn calls_to(&self, tool: &str) -> impl Iterator<Item = &'a LedgerRecord> + '_ {
        self.by_tool
            .get(tool)
            .into_iter()
            .flatten()
            .filter_map(|i| self.records.get(*i))
    }

    /// Every message that carried this request id (ids of different JSON
    /// types stay apart: `1` is not `"1"`).
    pub fn with_id(&self, id: &Value) -> impl Iterator<Item = &'a LedgerRecord> + '_ {
        self.by_id
            .get(&id.to_string())
            .into_iter()
            .flatten()
            .filter_map(|i| self.records.get(*i))
    }

    /// Whether a call to `tool` whose arguments satisfy `pred` arrived.
    pub fn arrived(&self, tool: &str, mut pred: impl FnMut(&Value) -> bool) -> bool {
        self.calls_to(tool)
            .any(|r| r.arguments.as_ref().is_some_and(&mut pred))
    }

    /// How many calls to `tool` took effect.
    pub fn executed(&self, tool: &str) -> usize {
        self.calls_to(tool).filter(|r| r.executed).count()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::super::Ledger;
    use super::super::record::{Outcome, OutcomeLine};
    use super::*;

    fn call(tool: &str, id: i64, args: Value) -> LedgerRecord {
        LedgerRecord {
            method: Some("tools/call".into()),
            tool: Some(tool.into()),
            id: Some(json!(id)),
            arguments: Some(args),
            ..LedgerRecord::default()
        }
    }

    #[test]
    fn file_round_trip_merges_outcomes_and_skips_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let ledger = Ledger::to_file(&path, true).unwrap();
        let seq = ledger.arrive(&mut call("t", 1, json!({"a": 1}))).unwrap();
        ledger
            .conclude(OutcomeLine {
                seq,
                instance: String::new(),
                executed: true,
                outcome: Outcome::Ok,
                touched: Some("WC_000001".into()),
            })
            .unwrap();
        ledger.arrive(&mut call("t", 2, json!({"a": 2}))).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"kind":"arrival","seq":9"#).unwrap();

        let got = read(&path).unwrap();
        assert_eq!(got, ledger.records());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].touched.as_deref(), Some("WC_000001"));
        assert!(got[0].executed && got[1].outcome.is_none());
    }

    #[test]
    fn tail_sees_lines_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut tail = Tail::new(&path);
        assert_eq!(tail.poll().unwrap(), 0);
        let ledger = Ledger::to_file(&path, false).unwrap();
        ledger.arrive(&mut call("t", 1, json!({}))).unwrap();
        assert_eq!(tail.poll().unwrap(), 1);
        ledger
            .conclude(OutcomeLine {
                seq: 1,
                instance: String::new(),
                executed: false,
                outcome: Outcome::Ignored,
                touched: None,
            })
            .unwrap();
        ledger.arrive(&mut call("t", 2, json!({}))).unwrap();
        assert_eq!(tail.poll().unwrap(), 1);
        assert_eq!(tail.records()[0].outcome, Some(Outcome::Ignored));
        assert_eq!(tail.records().len(), 2);
    }

    #[test]
    fn a_forgetful_tail_keeps_its_place_and_ignores_late_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut tail = Tail::new(&path);
        let ledger = Ledger::to_file(&path, false).unwrap();
        ledger.arrive(&mut call("t", 1, json!({}))).unwrap();
        assert_eq!(tail.poll().unwrap(), 1);
        tail.forget();
        assert!(tail.records().is_empty());
        let outcome = |seq| OutcomeLine {
            seq,
            instance: String::new(),
            executed: true,
            outcome: Outcome::Ok,
            touched: None,
        };
        // The outcome of the forgotten record lands after the forget.
        ledger.conclude(outcome(1)).unwrap();
        ledger.arrive(&mut call("t", 2, json!({}))).unwrap();
        ledger.conclude(outcome(2)).unwrap();
        assert_eq!(tail.poll().unwrap(), 1);
        assert_eq!(tail.records().len(), 1);
        assert_eq!(tail.records()[0].seq, 2);
        assert!(tail.records()[0].executed);
    }

    #[test]
    fn shared_file_keeps_two_mocks_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let a = Ledger::to_file(&path, false).unwrap();
        let b = Ledger::to_file(&path, false).unwrap();
        a.arrive(&mut call("t", 1, json!({}))).unwrap();
        b.arrive(&mut call("t", 1, json!({}))).unwrap();
        b.conclude(OutcomeLine {
            seq: 1,
            instance: String::new(),
            executed: true,
            outcome: Outcome::Ok,
            touched: None,
        })
        .unwrap();
        let got = read(&path).unwrap();
        assert_eq!(got.len(), 2);
        assert_ne!(got[0].instance, got[1].instance);
        assert!(!got[0].executed && got[1].executed);
    }

    #[test]
    fn garbage_and_orphans_are_errors_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        std::fs::write(&path, "\n{\"kind\":\"nope\"}\n").unwrap();
        assert!(matches!(
            read(&path),
            Err(LedgerError::Line { line: 2, .. })
        ));
        std::fs::write(
            &path,
            "{\"kind\":\"outcome\",\"seq\":4,\"outcome\":{\"type\":\"ok\"}}\n",
        )
        .unwrap();
        assert!(matches!(
            read(&path),
            Err(LedgerError::Orphan { line: 1, seq: 4 })
        ));
    }

    #[test]
    fn index_answers_by_tool_id_and_arguments() {
        let mut records = vec![
            call("post", 1, json!({"email": "a@x.test"})),
            call("get", 2, json!({})),
            call("post", 3, json!({"email": "b@x.test"})),
        ];
        records[2].executed = true;
        let idx = LedgerIndex::new(&records);
        assert_eq!(idx.calls_to("post").count(), 2);
        assert_eq!(idx.calls_to("nothing").count(), 0);
        assert_eq!(idx.with_id(&json!(2)).count(), 1);
        assert_eq!(idx.with_id(&json!("2")).count(), 0);
        assert!(idx.arrived("post", |a| a["email"] == "b@x.test"));
        assert!(!idx.arrived("get", |a| a["email"] == "b@x.test"));
        assert_eq!(idx.executed("post"), 1);
    }
}
