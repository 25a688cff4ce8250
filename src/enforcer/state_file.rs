//! A counter store kept in a JSON file, so that several `gauntlet enforce`
//! processes (one per stdio session, as external harnesses start them)
//! share their counters.
//!
//! Every reservation and refund takes an exclusive lock on the file
//! (`File::lock`), reads it, changes it and writes it back before
//! unlocking, so all-or-nothing reservations stay atomic across processes.
//! Within one process a mutex serialises threads, since a file lock is held
//! per open file, not per thread.
//!
//! The format is one JSON object:
//!
//! ```json
//! {"version":1,"next_id":7,"counters":{"[\"posts\",\"grant\",\"alice\"]":
//!     {"window":60,"entries":[[1785196799000000000,1,6]]}}}
//! ```
//!
//! Each counter keeps its charges as `[at_ns, amount, id]`, at times of the
//! store's clock (the system clock, shared by processes). Sliding windows
//! count the entries younger than the window; fixed windows count the
//! entries in the current calendar bucket. Entries that can no longer count
//! are pruned at every write, so the file stays as small as the live
//! windows. Receipts name entries by id (`Stamp::Sliding(id)`, in either
//! mode), and a refund removes exactly those entries.
//!
//! When the file cannot be read, parsed or written, reservations are
//! refused (fail closed) and the file is left as it was.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::{
    CounterKey, CounterRequest, CounterStore, LimitHit, Receipt, ReceiptItem, ScopeKey, Stamp,
    WindowMode,
};

/// Why the state file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("opening the state file `{path}`: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    next_id: u64,
    counters: BTreeMap<String, Counter>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counter {
    /// Window in seconds.
    window: u64,
    /// `[at_ns, amount, id]`, oldest first.
    entries: Vec<(u64, u64, u64)>,
}

impl Counter {
    fn counts(&self, mode: WindowMode, now_ns: u64) -> impl Iterator<Item = &(u64, u64, u64)> {
        let w = self.window.max(1).saturating_mul(1_000_000_000);
        let bucket_start = now_ns / w * w;
        self.entries.iter().filter(move |(at, _, _)| match mode {
            WindowMode::Sliding => at.saturating_add(w) > now_ns,
            WindowMode::Fixed => *at >= bucket_start,
        })
    }

    fn sum(&self, mode: WindowMode, now_ns: u64) -> u64 {
        self.counts(mode, now_ns)
            .fold(0u64, |s, (_, amount, _)| s.saturating_add(*amount))
    }

    /// Drops entries that can count in neither mode any more: older than
    /// one window (a fixed bucket never reaches further back either).
    fn prune(&mut self, now_ns: u64) {
        let w = self.window.max(1).saturating_mul(1_000_000_000);
        self.entries
            .retain(|(at, _, _)| at.saturating_add(w) > now_ns);
    }
}

fn key_text(key: &CounterKey) -> String {
    let (kind, who) = match &key.scope {
        ScopeKey::Grant(g) => ("grant", g.as_str()),
        ScopeKey::Session(s) => ("session", s.as_str()),
        ScopeKey::Global => ("global", ""),
    };
    serde_json::to_string(&[&*key.counter, kind, who]).unwrap_or_default()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Counters in a locked JSON file, shared between processes.
pub struct StateFileStore {
    path: PathBuf,
    file: Mutex<File>,
}

impl std::fmt::Debug for StateFileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateFileStore")
            .field("path", &self.path)
            .finish()
    }
}

impl StateFileStore {
    /// Opens (creating if needed) the state file at `path`.
    pub fn open(path: &Path) -> Result<StateFileStore, StateFileError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StateFileError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Ok(StateFileStore {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Runs `change` on the state under the file lock, writing the state
    /// back when it returns `true`.
    fn with_state<T>(&self, change: impl FnOnce(&mut State) -> (T, bool)) -> std::io::Result<T> {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.lock()?;
        let result = Self::locked(&mut file, change);
        let unlocked = file.unlock();
        let value = result?;
        unlocked?;
        Ok(value)
    }

    fn locked<T>(
        file: &mut File,
        change: impl FnOnce(&mut State) -> (T, bool),
    ) -> std::io::Result<T> {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_string(&mut text)?;
        let mut state = if text.trim().is_empty() {
            State {
                version: 1,
                ..State::default()
            }
        } else {
            serde_json::from_str(&text).map_err(std::io::Error::other)?
        };
        let (value, dirty) = change(&mut state);
        if dirty {
            let mut bytes = serde_json::to_vec(&state).map_err(std::io::Error::other)?;
            // Shorter state is padded with spaces (JSON allows them after
            // the value) instead of truncating the file: a truncation is a
            // journalled metadata change that cost more than the decision.
            // Only a file mostly made of padding is cut back.
            let cut = text.len() > 2 * bytes.len() + 4096;
            if bytes.len() < text.len() && !cut {
                bytes.resize(text.len(), b' ');
            }
            if cut {
                file.set_len(0)?;
            }
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&bytes)?;
            file.flush()?;
        }
        Ok(value)
    }
}

impl CounterStore for StateFileStore {
    fn reserve(
        &self,
        reqs: &[CounterRequest],
        mode: WindowMode,
        now: Duration,
    ) -> Result<Receipt, LimitHit> {
        if reqs.is_empty() {
            return Ok(Receipt::default());
        }
        let now_ns = nanos(now);
        let outcome = self.with_state(|state| {
            for c in state.counters.values_mut() {
                c.prune(now_ns);
            }
            state.counters.retain(|_, c| !c.entries.is_empty());
            // Check every request first: nothing is written unless all fit.
            let mut planned: BTreeMap<String, u64> = BTreeMap::new();
            for (index, req) in reqs.iter().enumerate() {
                let key = key_text(&req.key);
                let current = state
                    .counters
                    .get(&key)
                    .map_or(0, |c| c.sum(mode, now_ns))
                    .saturating_add(planned.get(&key).copied().unwrap_or(0));
                match current.checked_add(req.amount) {
                    Some(total) if total <= req.max => {
                        *planned.entry(key).or_default() += req.amount;
                    }
                    _ => {
                        return (
                            Err(LimitHit {
                                index,
                                key: req.key.clone(),
                                current,
                                amount: req.amount,
                                max: req.max,
                                loc: req.loc.clone(),
                                unavailable: None,
                            }),
                            true,
                        );
                    }
                }
            }
            let id = state.next_id;
            state.next_id += 1;
            let mut items = Vec::with_capacity(reqs.len());
            for req in reqs {
                let counter = state.counters.entry(key_text(&req.key)).or_default();
                counter.window = req.window.0;
                if req.amount > 0 {
                    counter.entries.push((now_ns, req.amount, id));
                }
                items.push(ReceiptItem {
                    key: req.key.clone(),
                    amount: req.amount,
                    stamp: Stamp::Sliding(id),
                });
            }
            (Ok(Receipt { items }), true)
        });
        match outcome {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "gauntlet enforce: state file `{}`: {e}; refusing the call",
                    self.path.display()
                );
                let req = &reqs[0];
                Err(LimitHit {
                    index: 0,
                    key: req.key.clone(),
                    current: req.max,
                    amount: req.amount,
                    max: req.max,
                    loc: req.loc.clone(),
                    unavailable: Some(format!("state file `{}`: {e}", self.path.display()).into()),
                })
            }
        }
    }

    fn refund(&self, receipt: &Receipt) {
        let result = self.with_state(|state| {
            for item in &receipt.items {
                let Stamp::Sliding(id) = item.stamp else {
                    continue;
                };
                if let Some(c) = state.counters.get_mut(&key_text(&item.key)) {
                    c.entries.retain(|(_, _, e)| *e != id);
                }
            }
            ((), true)
        });
        if let Err(e) = result {
            eprintln!(
                "gauntlet enforce: state file `{}`: {e}; refund lost",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{RuleLoc, Window};
    use std::sync::Arc;

    fn req(counter: &str, grant: &str, max: u64) -> CounterRequest {
        CounterRequest {
            key: CounterKey {
                counter: Arc::from(counter),
                scope: ScopeKey::Grant(grant.into()),
            },
            amount: 1,
            window: Window::MINUTE,
            max,
            loc: RuleLoc::default(),
        }
    }

    const T0: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn two_stores_on_one_file_share_counters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let a = StateFileStore::open(&path).unwrap();
        let b = StateFileStore::open(&path).unwrap();
        let r = [req("posts", "alice", 3)];
        let mut admitted = 0;
        for i in 0..10 {
            let store = if i % 2 == 0 { &a } else { &b };
            admitted += usize::from(store.reserve(&r, WindowMode::Sliding, T0).is_ok());
        }
        assert_eq!(admitted, 3);
        // Another grant has its own counter.
        assert!(
            b.reserve(&[req("posts", "bob", 3)], WindowMode::Sliding, T0)
                .is_ok()
        );
    }

    #[test]
    fn reservations_are_all_or_nothing_and_refunds_give_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateFileStore::open(&dir.path().join("s.json")).unwrap();
        let both = [req("wide", "alice", 10), req("narrow", "alice", 1)];
        let first = s.reserve(&both, WindowMode::Sliding, T0).unwrap();
        let hit = s.reserve(&both, WindowMode::Sliding, T0).unwrap_err();
        assert_eq!(hit.index, 1);
        // The refused reservation took nothing from `wide`.
        for _ in 0..9 {
            s.reserve(&both[..1], WindowMode::Sliding, T0).unwrap();
        }
        assert!(s.reserve(&both[..1], WindowMode::Sliding, T0).is_err());
        s.refund(&first);
        assert!(s.reserve(&both, WindowMode::Sliding, T0).is_ok());
    }

    #[test]
    fn windows_slide_or_align() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateFileStore::open(&dir.path().join("s.json")).unwrap();
        let r = [req("posts", "alice", 1)];
        // T0 is a whole minute: 59 s later is the same fixed bucket, 60 s
        // later a new one; a sliding window needs the full 60 s either way.
        s.reserve(&r, WindowMode::Sliding, T0).unwrap();
        assert!(
            s.reserve(&r, WindowMode::Sliding, T0 + Duration::from_secs(59))
                .is_err()
        );
        assert!(
            s.reserve(&r, WindowMode::Sliding, T0 + Duration::from_secs(60))
                .is_ok()
        );
        let f = [req("fixed", "alice", 1)];
        let late = T0 + Duration::from_secs(120 + 59);
        s.reserve(&f, WindowMode::Fixed, late).unwrap();
        assert!(s.reserve(&f, WindowMode::Fixed, late).is_err());
        assert!(
            s.reserve(&f, WindowMode::Fixed, T0 + Duration::from_secs(180))
                .is_ok()
        );
    }

    #[test]
    fn a_corrupt_file_fails_closed_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{not json").unwrap();
        let s = StateFileStore::open(&path).unwrap();
        assert!(
            s.reserve(&[req("posts", "alice", 5)], WindowMode::Sliding, T0)
                .is_err()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }

    #[test]
    fn old_entries_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let s = StateFileStore::open(&path).unwrap();
        for i in 0..50u64 {
            let r = [req(&format!("c{i}"), "alice", 5)];
            s.reserve(&r, WindowMode::Sliding, T0 + Duration::from_secs(i * 61))
                .unwrap();
        }
        let state: State = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(state.counters.len(), 1);
    }

    #[test]
    fn a_shrinking_state_is_padded_and_a_mostly_padded_file_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let s = StateFileStore::open(&path).unwrap();
        let fill = |n: u64, at: Duration| {
            for i in 0..n {
                s.reserve(
                    &[req(&format!("c{i}"), "alice", 5)],
                    WindowMode::Sliding,
                    at,
                )
                .unwrap();
            }
        };
        let read = || {
            let text = std::fs::read_to_string(&path).unwrap();
            let state: State = serde_json::from_str(&text).unwrap();
            (text.len(), state.counters.len())
        };
        fill(20, T0);
        let (big, counters) = read();
        assert_eq!(counters, 20);
        // A minute later every old entry is pruned: the state is one counter
        // long, the file as long as before, and still one valid state.
        fill(1, T0 + Duration::from_secs(61));
        assert_eq!(read(), (big, 1));
        // After a much larger state, the padding is cut away.
        fill(200, T0 + Duration::from_secs(122));
        fill(1, T0 + Duration::from_secs(183));
        let (len, counters) = read();
        assert_eq!(counters, 1);
        assert!(len < big, "{len} >= {big}");
    }
}
