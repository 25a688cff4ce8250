//! A counter store in Redis, shared by every replica of an enforcer.
//!
//! Each decision is one Lua script (`reserve.lua`) that prunes, checks and
//! charges every applicable counter or none, so reservations stay atomic
//! across processes and machines. A counter is a sorted set of charges
//! (score = time in µs, member = `id.index:amount`) with its sum kept in a
//! string beside it; both expire one window after their last charge, so
//! Redis holds only live windows. Scripts are sent by SHA (`EVALSHA`) and
//! loaded again only when Redis answers `NOSCRIPT`.
//!
//! The trait is synchronous, and so is this store: it uses blocking
//! connections from a small pool, each with a read, write and connect
//! timeout. `decide` is a plain function called in the middle of a frame's
//! handling, and the file store already blocks at the same spot, so a
//! blocking call bounded by the timeout keeps one code path for every store,
//! and a loopback round trip costs less than the task hops an async client
//! would add. Any failure (Redis down, slow, or answering nonsense) refuses
//! the call with the reason: the store fails closed. A reservation whose
//! reply timed out may still have run on Redis; its charge then stays until
//! its window passes, which errs towards refusing, never towards leaking.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, Script, Value};

use super::judge::{CounterKey, CounterRequest, ScopeKey};
use super::model::WindowMode;
use super::store::{CounterStore, LimitHit, Receipt, ReceiptItem, Stamp};

/// Why a Redis store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    /// The URL is not one the client understands.
    #[error("the Redis URL `{url}` is not valid: {source}")]
    Url {
        /// The URL as given.
        url: String,
        /// The client's complaint.
        source: redis::RedisError,
    },
    /// The server did not answer.
    #[error("cannot reach Redis at `{url}`: {source}")]
    Connect {
        /// The URL as given.
        url: String,
        /// The client's complaint.
        source: redis::RedisError,
    },
}

/// How patient the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// Bound on connecting and on every read and write.
    pub timeout: Duration,
    /// Idle connections kept for reuse.
    pub pool: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            timeout: Duration::from_millis(250),
            pool: 16,
        }
    }
}

/// Counters in Redis (see the module docs).
pub struct RedisStore {
    client: Client,
    url: String,
    options: RedisOptions,
    idle: Mutex<Vec<Connection>>,
    reserve: Script,
    refund: Script,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("options", &self.options)
            .finish()
    }
}

/// Whether `s` names a Redis server rather than a file.
pub fn is_redis_url(s: &str) -> bool {
    s.starts_with("redis://") || s.starts_with("redis+unix://") || s.starts_with("unix://")
}

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT/DB`), checks that the server
    /// answers and loads the scripts.
    pub fn open(url: &str, options: RedisOptions) -> Result<RedisStore, RedisStoreError> {
        let client = Client::open(url).map_err(|source| RedisStoreError::Url {
            url: url.to_owned(),
            source,
        })?;
        let store = RedisStore {
            client,
            url: url.to_owned(),
            options,
            idle: Mutex::new(Vec::new()),
            reserve: Script::new(include_str!("reserve.lua")),
            refund: Script::new(include_str!("refund.lua")),
            prefix: "gauntlet:".to_owned(),
        };
        let mut con = store.connect().map_err(|source| RedisStoreError::Connect {
            url: url.to_owned(),
            source,
        })?;
        store
            .reserve
            .load(&mut con)
            .and_then(|_| store.refund.load(&mut con))
            .map_err(|source| RedisStoreError::Connect {
                url: url.to_owned(),
                source,
            })?;
        store.give_back(con);
        Ok(store)
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        let con = self
            .client
            .get_connection_with_timeout(self.options.timeout)?;
        con.set_read_timeout(Some(self.options.timeout))?;
        con.set_write_timeout(Some(self.options.timeout))?;
        Ok(con)
    }

    fn take(&self) -> redis::RedisResult<Connection> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match pooled {
            Some(con) => Ok(con),
            None => self.connect(),
        }
    }

    fn give_back(&self, con: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.options.pool {
            idle.push(con);
        }
    }

    /// Runs `op` on a pooled connection; a connection that failed is dropped,
    /// since a timed-out reply may still arrive on it later.
    fn with_con<T>(
        &self,
        op: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let mut con = self.take()?;
        let out = op(&mut con)?;
        self.give_back(con);
        Ok(out)
    }

    fn set_key(&self, key: &CounterKey) -> String {
        let (kind, who) = match &key.scope {
            ScopeKey::Grant(g) => ("grant", g.as_str()),
            ScopeKey::Session(s) => ("session", s.as_str()),
            ScopeKey::Global => ("global", ""),
        };
        // JSON keeps names with colons or quotes from colliding.
        let text = serde_json::to_string(&[&*key.counter, kind, who]).unwrap_or_default();
        format!("{}{text}", self.prefix)
    }

    fn id_key(&self) -> String {
        format!("{}next_id", self.prefix)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The cutoff argument: entries at or before it (sliding), or before the
/// bucket's start (fixed, exclusive), no longer count.
fn cutoff(mode: WindowMode, now_us: u64, window_us: u64) -> String {
    match mode {
        WindowMode::Sliding => now_us.saturating_sub(window_us).to_string(),
        WindowMode::Fixed => {
            let w = window_us.max(1_000_000);
            format!("({}", now_us / w * w)
        }
    }
}

fn member(id: u64, index: usize, amount: u64) -> String {
    format!("{id}.{}:{amount}", index + 1)
}

/// What the reserve script answered.
enum Outcome {
    Reserved(u64),
    Hit { index: usize, current: u64 },
}

fn outcome(v: &Value) -> Option<Outcome> {
    let Value::Array(items) = v else {
        return None;
    };
    let int = |i: usize| match items.get(i) {
        Some(Value::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    match int(0)? {
        0 => Some(Outcome::Reserved(int(1)?)),
        1 => Some(Outcome::Hit {
            index: usize::try_from(int(1)?).ok()?.checked_sub(1)?,
            current: int(2)?,
        }),
        _ => None,
    }
}

impl RedisStore {
    fn refused(&self, reqs: &[CounterRequest], why: String) -> LimitHit {
        let (key, amount, max, loc) = reqs.first().map_or_else(
            || {
                let key = CounterKey {
                    counter: std::sync::Arc::from(""),
                    scope: ScopeKey::Global,
                };
                (key, 0, 0, Default::default())
            },
            |r| (r.key.clone(), r.amount, r.max, r.loc.clone()),
        );
        LimitHit {
            index: 0,
            key,
            current: max,
            amount,
            max,
            loc,
            unavailable: Some(format!("redis at `{}`: {why}", self.url).into()),
        }
    }
}

impl CounterStore for RedisStore {
    fn reserve(
        &self,
        reqs: &[CounterRequest],
        mode: WindowMode,
        now: Duration,
    ) -> Result<Receipt, LimitHit> {
        if reqs.is_empty() {
            return Ok(Receipt::default());
        }
        let now_us = micros(now);
        let mut call = self.reserve.prepare_invoke();
        call.key(self.id_key()).arg(now_us.to_string());
        for req in reqs {
            let set = self.set_key(&req.key);
            let window_us = micros(req.window.duration());
            call.key(&set).key(format!("{set}:sum"));
            call.arg(cutoff(mode, now_us, window_us))
                .arg(req.amount)
                .arg(req.max)
                .arg(window_us / 1000 + 1000);
        }
        let answer: redis::RedisResult<Value> = self.with_con(|con| call.invoke(con));
        let answer = match answer {
            Ok(v) => v,
            Err(e) => return Err(self.refused(reqs, e.to_string())),
        };
        match outcome(&answer) {
            Some(Outcome::Reserved(id)) => Ok(Receipt {
                items: reqs
                    .iter()
                    .map(|r| ReceiptItem {
                        key: r.key.clone(),
                        amount: r.amount,
                        stamp: Stamp::Sliding(id),
                    })
                    .collect(),
            }),
            Some(Outcome::Hit { index, current }) => match reqs.get(index) {
                Some(r) => Err(LimitHit {
                    index,
                    key: r.key.clone(),
                    current,
                    amount: r.amount,
                    max: r.max,
                    loc: r.loc.clone(),
                    unavailable: None,
                }),
                None => Err(self.refused(reqs, format!("the script named request {index}"))),
            },
            None => Err(self.refused(reqs, format!("unexpected answer {answer:?}"))),
        }
    }

    fn refund(&self, receipt: &Receipt) {
        let mut call = self.refund.prepare_invoke();
        let mut any = false;
        for (index, item) in receipt.items.iter().enumerate() {
            let Stamp::Sliding(id) = item.stamp else {
                continue;
            };
            if item.amount == 0 {
                continue;
            }
            let set = self.set_key(&item.key);
            call.key(&set)
                .key(format!("{set}:sum"))
                .arg(member(id, index, item.amount));
            any = true;
        }
        if !any {
            return;
        }
        let done: redis::RedisResult<Value> = self.with_con(|con| call.invoke(con));
        if let Err(e) = done {
            // The charge stays and expires with its window: it errs on the side of refusing.
            eprintln!("gauntlet: redis at `{}`: {e}; refund lost", self.url);
        }
    }
}
