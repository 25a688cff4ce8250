//! The ledger's writing side: one JSON line per event, each written with a
//! single `write` and no buffering left behind, so a reader tailing the file
//! never waits on the mock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::LedgerError;
use super::record::{LedgerRecord, LineRef, OutcomeLine};

/// When and in which order a frame arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStamp {
    pub frame: u64,
    pub at_unix_ns: u64,
    pub mono_ns: u64,
}

#[derive(Debug, Default)]
struct Inner {
    file: Option<File>,
    memory: Option<Vec<LedgerRecord>>,
    /// The seq of `memory[0]`, so outcomes find their record after a clear.
    memory_base: u64,
    next_seq: u64,
    line: Vec<u8>,
}

/// Where the records go: a file, memory, both or nowhere.
#[derive(Debug)]
pub struct Ledger {
    inner: Mutex<Inner>,
    instance: String,
    frames: AtomicU64,
    started: Instant,
    changed: tokio::sync::Notify,
}

impl Ledger {
    fn with(file: Option<File>, memory: bool) -> Ledger {
        Ledger {
            inner: Mutex::new(Inner {
                file,
                memory: memory.then(Vec::new),
                memory_base: 1,
                next_seq: 1,
                line: Vec::with_capacity(8 * 1024),
            }),
            instance: super::instance_id(),
            frames: AtomicU64::new(0),
            started: Instant::now(),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Records kept in memory only, for in-process use.
    pub fn in_memory() -> Ledger {
        Ledger::with(None, true)
    }

    /// Records counted but kept nowhere.
    pub fn discard() -> Ledger {
        Ledger::with(None, false)
    }

    /// Records appended to `path` as JSON lines, and kept in memory too when
    /// `keep_in_memory` is set. The file is opened for appending so several
    /// mocks (one per enforcer session, say) can share one ledger: each line
    /// is a single write, and every record names its mock `instance`.
    pub fn to_file(path: &Path, keep_in_memory: bool) -> Result<Ledger, LedgerError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LedgerError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Ledger::with(Some(file), keep_in_memory))
    }

    /// This mock's instance id, as written into every record.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stamps a newly arrived frame. Call it before parsing, so the time is
    /// the time of arrival.
    pub fn stamp(&self) -> FrameStamp {
        let at_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        FrameStamp {
            frame: self.frames.fetch_add(1, Ordering::Relaxed) + 1,
            at_unix_ns,
            mono_ns: u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Writes the arrival line of `record`, giving it its `seq` and
    /// `instance`. Returns the seq.
    pub fn arrive(&self, record: &mut LedgerRecord) -> Result<u64, LedgerError> {
        let seq = {
            let mut inner = self.lock();
            record.seq = inner.next_seq;
            record.instance.clone_from(&self.instance);
            write_line(&mut inner, &LineRef::Arrival(record))?;
            inner.next_seq += 1;
            if let Some(memory) = &mut inner.memory {
                memory.push(record.clone());
            }
            record.seq
        };
        self.changed.notify_waiters();
        Ok(seq)
    }

    /// Writes what handling message `outcome.seq` did.
    pub fn conclude(&self, mut outcome: OutcomeLine) -> Result<(), LedgerError> {
        {
            let mut inner = self.lock();
            outcome.instance.clone_from(&self.instance);
            write_line(&mut inner, &LineRef::Outcome(&outcome))?;
            let base = inner.memory_base;
            if let Some(rec) = inner.memory.as_mut().and_then(|m| {
                let i = usize::try_from(outcome.seq.checked_sub(base)?).ok()?;
                m.get_mut(i)
            }) {
                rec.apply(outcome);
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// A copy of the records kept in memory.
    pub fn records(&self) -> Vec<LedgerRecord> {
        self.lock().memory.clone().unwrap_or_default()
    }

    /// How many messages have been recorded (kept in memory or not).
    pub fn count(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Empties the in-memory records; the file is left alone.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.memory_base = inner.next_seq;
        if let Some(memory) = &mut inner.memory {
            memory.clear();
        }
    }

    /// Waits until a record kept in memory satisfies `pred` (its outcome
    /// included, if `pred` asks for one), up to `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&LedgerRecord) -> bool,
    ) -> Option<LedgerRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so no write slips in between.
            notified.as_mut().enable();
            if let Some(found) = self
                .lock()
                .memory
                .as_ref()
                .and_then(|m| m.iter().find(|r| pred(r)).cloned())
            {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

fn write_line(inner: &mut Inner, line: &LineRef<'_>) -> Result<(), LedgerError> {
    let Some(file) = &mut inner.file else {
        return Ok(());
    };
    inner.line.clear();
    serde_json::to_writer(&mut inner.line, line).map_err(LedgerError::Encode)?;
    inner.line.push(b'\n');
    file.write_all(&inner.line).map_err(LedgerError::Io)
}

#[cfg(test)]
mod tests {
    use super::super::record::Outcome;
    use super::*;

    fn record(method: &str) -> LedgerRecord {
        LedgerRecord {
            method: Some(method.into()),
            ..LedgerRecord::default()
        }
    }

    #[test]
    fn seqs_and_frames_count_up_and_outcomes_land_on_their_record() {
        let ledger = Ledger::in_memory();
        let f1 = ledger.stamp();
        let f2 = ledger.stamp();
        assert_eq!((f1.frame, f2.frame), (1, 2));
        assert!(f2.mono_ns >= f1.mono_ns);
        let mut a = record("ping");
        let mut b = record("tools/call");
        assert_eq!(ledger.arrive(&mut a).unwrap(), 1);
        assert_eq!(ledger.arrive(&mut b).unwrap(), 2);
        ledger
            .conclude(OutcomeLine {
                seq: 2,
                executed: true,
                outcome: Outcome::Ok,
                touched: None,
                instance: String::new(),
            })
            .unwrap();
        let got = ledger.records();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].outcome, None);
        assert_eq!(
            (got[1].executed, got[1].outcome.clone()),
            (true, Some(Outcome::Ok))
        );
        assert_eq!(got[1].instance, ledger.instance());

        ledger.clear();
        let mut c = record("x");
        assert_eq!(ledger.arrive(&mut c).unwrap(), 3);
        ledger
            .conclude(OutcomeLine {
                seq: 3,
                executed: false,
                outcome: Outcome::Ignored,
                touched: None,
                instance: String::new(),
            })
            .unwrap();
        assert_eq!(ledger.records()[0].outcome, Some(Outcome::Ignored));
        assert_eq!(ledger.count(), 3);
    }

    #[tokio::test]
    async fn wait_for_sees_a_record_written_later() {
        let ledger = std::sync::Arc::new(Ledger::in_memory());
        let writer = ledger.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.arrive(&mut record("late")).unwrap();
        });
        let found = ledger
            .wait_for(Duration::from_secs(10), |r| {
                r.method.as_deref() == Some("late")
            })
            .await;
        task.await.unwrap();
        assert_eq!(found.map(|r| r.seq), Some(1));
        let none = ledger
            .wait_for(Duration::from_millis(1), |r| {
                r.method.as_deref() == Some("never")
            })
            .await;
        assert!(none.is_none());
    }
}
