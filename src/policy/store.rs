//! Counter stores: where reservations against limits are kept.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use super::hash::FastHash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::judge::{CounterKey, CounterRequest};
use super::model::{RuleLoc, WindowMode};

/// What a successful reservation took, so that it can be given back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// One entry per counter charged.
    pub items: Vec<ReceiptItem>,
}

/// One charged counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptItem {
    /// The counter and scope key.
    pub key: CounterKey,
    /// How much was added.
    pub amount: u64,
    /// Which entry or bucket holds it.
    pub stamp: Stamp,
}

/// Identifies the charge inside its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// An entry of a sliding log.
    Sliding(u64),
    /// A fixed bucket, by its index since the epoch.
    Fixed(u64),
}

/// A reservation refused because one request would pass its max.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// Index of the refused request in the slice given to `reserve`.
    pub index: usize,
    /// The counter and scope key.
    pub key: CounterKey,
    /// What the counter held in the window.
    pub current: u64,
    /// What the call would have added.
    pub amount: u64,
    /// The counter's max.
    pub max: u64,
    /// Where the limit sits in the source.
    pub loc: RuleLoc,
    /// Set when the store could not be asked at all (down, slow, corrupt):
    /// the call is refused, never allowed, and this says why.
    pub unavailable: Option<Box<str>>,
}

/// Keeps counters for `decide`.
pub trait CounterStore: Send + Sync {
    /// All-or-nothing: reserve every request, or none and say which one hit its max. Atomic under concurrency.
    // Refusals are the common case under attack; boxing them would allocate on each one.
    #[allow(clippy::result_large_err)]
    fn reserve(
        &self,
        reqs: &[CounterRequest],
        mode: WindowMode,
        now: Duration,
    ) -> Result<Receipt, LimitHit>;
    /// Gives back what a receipt took (a charge whose window has passed is left alone).
    /// Refund a receipt at most once: a fixed bucket keeps only its total.
    fn refund(&self, receipt: &Receipt);
}

enum Counter {
    /// Exact log of charges (time, amount, id); the sum is kept alongside.
    Sliding {
        window: Duration,
        log: VecDeque<(Duration, u64, u64)>,
        sum: u64,
    },
    Fixed {
        window: u64,
        bucket: u64,
        sum: u64,
    },
}

impl Counter {
    fn new(mode: WindowMode, window: Duration, now: Duration) -> Counter {
        match mode {
            WindowMode::Sliding => Counter::Sliding {
                window,
                log: VecDeque::new(),
                sum: 0,
            },
            WindowMode::Fixed => {
                let secs = window.as_secs().max(1);
                Counter::Fixed {
                    window: secs,
                    bucket: now.as_secs() / secs,
                    sum: 0,
                }
            }
        }
    }

    fn suits(&self, mode: WindowMode, window: Duration) -> bool {
        match self {
            Counter::Sliding { window: w, .. } => mode == WindowMode::Sliding && *w == window,
            Counter::Fixed { window: w, .. } => {
                mode == WindowMode::Fixed && *w == window.as_secs().max(1)
            }
        }
    }

    /// Forgets what has left the window ending at `now`, and returns the sum.
    fn current(&mut self, now: Duration) -> u64 {
        match self {
            Counter::Sliding { window, log, sum } => {
                // An entry at `t` counts while `t + window > now`, so any span
                // of one window holds at most `max`.
                while let Some(&(at, amount, _)) = log.front() {
                    if at.saturating_add(*window) > now {
                        break;
                    }
                    *sum -= amount;
                    log.pop_front();
                }
                *sum
            }
            Counter::Fixed {
                window,
                bucket,
                sum,
            } => {
                let now_bucket = now.as_secs() / *window;
                if now_bucket != *bucket {
                    *bucket = now_bucket;
                    *sum = 0;
                }
                *sum
            }
        }
    }

    fn add(&mut self, amount: u64, now: Duration, id: u64) -> Stamp {
        match self {
            Counter::Sliding { log, sum, .. } => {
                *sum += amount;
                if amount > 0 {
                    log.push_back((now, amount, id));
                }
                Stamp::Sliding(id)
            }
            Counter::Fixed { bucket, sum, .. } => {
                *sum += amount;
                Stamp::Fixed(*bucket)
            }
        }
    }

    fn take_back(&mut self, amount: u64, stamp: Stamp) {
        match (self, stamp) {
            (Counter::Sliding { log, sum, .. }, Stamp::Sliding(id)) => {
                if let Some(pos) = log.iter().rposition(|e| e.2 == id)
                    && let Some((_, amount, _)) = log.remove(pos)
                {
                    *sum -= amount;
                }
            }
            (Counter::Fixed { bucket, sum, .. }, Stamp::Fixed(b)) if *bucket == b => {
                *sum = sum.saturating_sub(amount);
            }
            _ => {}
        }
    }

    fn is_idle(&mut self, now: Duration) -> bool {
        self.current(now) == 0
    }
}

/// Adds a request to a counter if it stays within max; else says what the counter holds.
fn charge(
    counter: &mut Counter,
    req: &CounterRequest,
    mode: WindowMode,
    now: Duration,
    id: u64,
) -> Result<Stamp, u64> {
    let window = req.window.duration();
    if !counter.suits(mode, window) {
        *counter = Counter::new(mode, window, now);
    }
    let current = counter.current(now);
    match current.checked_add(req.amount) {
        Some(total) if total <= req.max => Ok(counter.add(req.amount, now, id)),
        _ => Err(current),
    }
}

struct Shard {
    counters: HashMap<CounterKey, Counter, FastHash>,
    ops: u64,
}

/// An in-memory store: sharded maps, each behind its own mutex.
///
/// A reservation locks only the shards of its keys, in index order, so two
/// reservations never deadlock and one that spans two counters is atomic.
/// Counters are pruned as they are touched, and every few thousand
/// operations a shard drops the counters that have gone idle, so memory
/// stays bounded by the live windows.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    next_id: AtomicU64,
}

const SWEEP_EVERY: u64 = 4096;

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(32)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .finish()
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic elsewhere while holding the lock leaves consistent counters:
    // every mutation is a single step on one counter.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// A store with `shards` shards (at least one).
    pub fn new(shards: usize) -> MemoryStore {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    counters: HashMap::default(),
                    ops: 0,
                })
            })
            .collect();
        MemoryStore {
            shards,
            next_id: AtomicU64::new(1),
        }
    }

    fn shard_of(&self, key: &CounterKey) -> usize {
        // The map uses the low bits of the same hash; mix so shards do not correlate with buckets.
        let spread = FastHash.hash_one(key).rotate_right(29);
        usize::try_from(spread % self.shards.len() as u64).unwrap_or(0)
    }

    /// How many counters are held (for tests of memory bounds).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).counters.len()).sum()
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What `key` holds in the window ending at `now`, if the store has it.
    pub fn current(&self, key: &CounterKey, now: Duration) -> Option<u64> {
        let mut shard = lock(&self.shards[self.shard_of(key)]);
        shard.counters.get_mut(key).map(|c| c.current(now))
    }

    /// Drops every idle counter now (the store also does this on its own).
    pub fn sweep(&self, now: Duration) {
        for shard in self.shards.iter() {
            lock(shard).counters.retain(|_, c| !c.is_idle(now));
        }
    }
}

impl CounterStore for MemoryStore {
    fn reserve(
        &self,
        reqs: &[CounterRequest],
        mode: WindowMode,
        now: Duration,
    ) -> Result<Receipt, LimitHit> {
        if reqs.is_empty() {
            return Ok(Receipt::default());
        }
        // Up to eight requests (the usual case) need no heap for the shard ids.
        let mut ids_buf = [0usize; 8];
        let mut order_buf = [0usize; 8];
        let (ids_vec, mut order_vec);
        let (shard_ids, order): (&[usize], &mut [usize]) = if reqs.len() <= ids_buf.len() {
            for (slot, r) in ids_buf.iter_mut().zip(reqs) {
                *slot = self.shard_of(&r.key);
            }
            order_buf[..reqs.len()].copy_from_slice(&ids_buf[..reqs.len()]);
            (&ids_buf[..reqs.len()], &mut order_buf[..reqs.len()])
        } else {
            ids_vec = reqs
                .iter()
                .map(|r| self.shard_of(&r.key))
                .collect::<Vec<_>>();
            order_vec = ids_vec.clone();
            (&ids_vec, &mut order_vec)
        };
        // Lock each shard once, in index order, so that reservations never deadlock.
        order.sort_unstable();
        let mut guards: Vec<(usize, MutexGuard<'_, Shard>)> = Vec::with_capacity(reqs.len());
        for (n, &i) in order.iter().enumerate() {
            if n == 0 || order[n - 1] != i {
                guards.push((i, lock(&self.shards[i])));
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut items: Vec<ReceiptItem> = Vec::with_capacity(reqs.len());
        let mut failed = None;
        for (index, (req, shard_id)) in reqs.iter().zip(shard_ids).enumerate() {
            let Some((_, shard)) = guards.iter_mut().find(|(i, _)| i == shard_id) else {
                continue;
            };
            let charged = match shard.counters.get_mut(&req.key) {
                Some(counter) => charge(counter, req, mode, now, id),
                None => {
                    let mut counter = Counter::new(mode, req.window.duration(), now);
                    let charged = charge(&mut counter, req, mode, now, id);
                    shard.counters.insert(req.key.clone(), counter);
                    charged
                }
            };
            match charged {
                Ok(stamp) => items.push(ReceiptItem {
                    key: req.key.clone(),
                    amount: req.amount,
                    stamp,
                }),
                Err(current) => {
                    failed = Some(LimitHit {
                        index,
                        key: req.key.clone(),
                        current,
                        amount: req.amount,
                        max: req.max,
                        loc: req.loc.clone(),
                        unavailable: None,
                    });
                    break;
                }
            }
        }
        if let Some(hit) = failed {
            for item in &items {
                let shard_id = self.shard_of(&item.key);
                if let Some((_, shard)) = guards.iter_mut().find(|(i, _)| *i == shard_id)
                    && let Some(counter) = shard.counters.get_mut(&item.key)
                {
                    counter.take_back(item.amount, item.stamp);
                }
            }
            return Err(hit);
        }
        for (_, shard) in &mut guards {
            shard.ops += 1;
            if shard.ops % SWEEP_EVERY == 0 {
                shard.counters.retain(|_, c| !c.is_idle(now));
            }
        }
        Ok(Receipt { items })
    }

    fn refund(&self, receipt: &Receipt) {
        for item in &receipt.items {
            let mut shard = lock(&self.shards[self.shard_of(&item.key)]);
            if let Some(counter) = shard.counters.get_mut(&item.key) {
                counter.take_back(item.amount, item.stamp);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::judge::ScopeKey;
    use crate::policy::model::Window;

    fn req(session: &str, amount: u64, max: u64, window: u64) -> CounterRequest {
        CounterRequest {
            key: CounterKey {
                counter: Arc::from("c"),
                scope: ScopeKey::Session(session.to_owned()),
            },
            amount,
            window: Window(window),
            max,
            loc: RuleLoc::default(),
        }
    }

    #[test]
    fn memory_stays_bounded_as_sessions_come_and_go() {
        let store = MemoryStore::new(2);
        for i in 0..20_000u64 {
            let r = req(&format!("session-{i}"), 1, 5, 1);
            store
                .reserve(&[r], WindowMode::Sliding, Duration::from_secs(i))
                .unwrap();
        }
        // Each shard sweeps every 4096 reservations; only recent sessions remain.
        assert!(
            store.len() <= 2 * SWEEP_EVERY as usize,
            "{} counters held",
            store.len()
        );
    }

    #[test]
    fn a_sliding_refund_removes_exactly_its_entry() {
        let store = MemoryStore::new(1);
        let t = Duration::from_secs(10);
        let first = store
            .reserve(&[req("s", 2, 5, 60)], WindowMode::Sliding, t)
            .unwrap();
        store
            .reserve(&[req("s", 3, 5, 60)], WindowMode::Sliding, t)
            .unwrap();
        assert!(
            store
                .reserve(&[req("s", 1, 5, 60)], WindowMode::Sliding, t)
                .is_err()
        );
        store.refund(&first);
        store.refund(&first);
        let key = req("s", 0, 0, 60).key;
        assert_eq!(
            store.current(&key, t),
            Some(3),
            "a second refund of one receipt gives nothing back"
        );
        assert!(
            store
                .reserve(&[req("s", 2, 5, 60)], WindowMode::Sliding, t)
                .is_ok()
        );
    }

    #[test]
    fn a_hit_reports_what_the_counter_held() {
        let store = MemoryStore::new(1);
        let t = Duration::from_secs(10);
        store
            .reserve(&[req("s", 4, 5, 60)], WindowMode::Fixed, t)
            .unwrap();
        let hit = store
            .reserve(
                &[req("x", 1, 5, 60), req("s", 2, 5, 60)],
                WindowMode::Fixed,
                t,
            )
            .unwrap_err();
        assert_eq!((hit.index, hit.current, hit.amount, hit.max), (1, 4, 2, 5));
        assert_eq!(
            store.current(&req("x", 0, 0, 60).key, t),
            Some(0),
            "the first request was rolled back"
        );
    }

    #[test]
    fn repeated_keys_in_one_reservation_add_up() {
        let store = MemoryStore::new(3);
        let t = Duration::from_secs(10);
        assert!(
            store
                .reserve(
                    &[req("s", 3, 5, 60), req("s", 3, 5, 60)],
                    WindowMode::Sliding,
                    t
                )
                .is_err()
        );
        assert_eq!(store.current(&req("s", 0, 0, 60).key, t), Some(0));
        assert!(
            store
                .reserve(
                    &[req("s", 2, 5, 60), req("s", 3, 5, 60)],
                    WindowMode::Sliding,
                    t
                )
                .is_ok()
        );
    }
}
