//! One arena for many scenarios in turn.
//!
//! Starting a stdio session costs two processes, a handshake and a schema
//! fetch: some milliseconds, against a fraction of one for a call. A
//! campaign of thousands of short scenarios would spend nearly all its time
//! starting and stopping processes, so the fuzzer keeps arenas and their
//! sessions, and resets them between scenarios instead.
//!
//! A reset is only offered where the harness knows where *all* of the
//! target's state lives: the built-in stdio enforcer keeps every counter in
//! its state files and nothing else between calls, so emptying them gives
//! the next scenario the counters of a fresh arena. External enforcers keep
//! their state wherever they like, so they always get fresh arenas.

use std::sync::Arc;

use super::{Arena, HarnessConfig, SessionKey, TargetError, TargetSpec, Transport};

/// Whether arenas for `target` under `cfg` can be reset between uses (see
/// [`Arena::reset`]): the built-in enforcer over stdio, with its counters
/// in files of the arena's folder (not in Redis).
pub fn resettable(target: &TargetSpec, cfg: &HarnessConfig) -> bool {
    *target == TargetSpec::Builtin && cfg.transport == Transport::Stdio && cfg.redis.is_none()
}

impl Arena {
    /// Whether [`Arena::reset`] can give this arena a fresh state.
    pub fn resettable(&self) -> bool {
        self.counter_files.is_some()
    }

    /// Starts a new use of the arena: every counter of the target is
    /// emptied, and [`Arena::records`] starts again from the ledger's end.
    /// Call it with nothing in flight. Sessions stay open.
    pub fn reset(&mut self) -> Result<(), TargetError> {
        let Some(files) = &self.counter_files else {
            return Err(TargetError::NotResettable);
        };
        for path in files {
            empty_locked(path).map_err(|source| TargetError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        self.tail.poll()?;
        self.tail.forget();
        self.base = 0;
        Ok(())
    }

    /// The sessions open now.
    pub fn session_keys(&self) -> Vec<SessionKey> {
        self.sessions.keys().cloned().collect()
    }

    /// The sessions whose process has exited.
    pub fn exited_sessions(&self) -> Vec<SessionKey> {
        self.sessions
            .iter()
            .filter(|(_, c)| c.exit_status().is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Closes one session (its process exits); the next use of its key
    /// opens a new one.
    pub async fn close_session(&mut self, key: &SessionKey) {
        if let Some(client) = self.sessions.remove(key)
            && let Ok(client) = Arc::try_unwrap(client)
        {
            client.close().await;
        }
    }
}

/// Empties a state file under the lock its enforcers take for every change,
/// so that none of them reads it half-written.
fn empty_locked(path: &std::path::Path) -> std::io::Result<()> {
    let file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        // No session has counted anything yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    file.lock()?;
    let emptied = file.set_len(0);
    let unlocked = file.unlock();
    emptied?;
    unlocked
}
