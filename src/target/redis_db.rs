//! Fresh Redis databases for scenarios: `{redis_url}`.
//!
//! Scenarios run in parallel (`--jobs`), so each arena takes the next of
//! databases 1..=15 in turn (0 is left to whoever else uses the server) and
//! empties it first. Sixteen databases is Redis's default; more jobs than
//! fifteen at once would share one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::TargetError;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Takes the next database of the server at `base`, empties it, and returns
/// its URL.
pub fn fresh(base: &str, timeout: Duration) -> Result<String, TargetError> {
    let db = 1 + NEXT.fetch_add(1, Ordering::Relaxed) % 15;
    let server = strip_db(base);
    let url = format!("{server}/{db}");
    let err = |e: redis::RedisError| TargetError::Redis(format!("`{url}`: {e}"));
    let client = redis::Client::open(url.as_str()).map_err(err)?;
    let mut con = client.get_connection_with_timeout(timeout).map_err(err)?;
    con.set_read_timeout(Some(timeout)).map_err(err)?;
    redis::cmd("FLUSHDB").query::<()>(&mut con).map_err(err)?;
    Ok(url)
}

/// `redis://host:port/3` → `redis://host:port`.
fn strip_db(base: &str) -> &str {
    let base = base.trim_end_matches('/');
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    match base[after_scheme..].rfind('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced() {
        assert_eq!(strip_db("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            strip_db("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(strip_db("redis://h:1/7"), "redis://h:1");
    }
}
