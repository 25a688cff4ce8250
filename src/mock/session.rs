//! Sessions of the session-era revisions: what was negotiated, and whether
//! the handshake finished. stdio has exactly one; HTTP issues one per
//! `initialize` and finds it again by `Mcp-Session-Id`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::mcp::Revision;

/// What a session has agreed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionState {
    /// Set by `initialize`.
    pub revision: Option<Revision>,
    /// Set by `notifications/initialized`.
    pub initialized: bool,
}

/// One session.
#[derive(Debug)]
pub struct Session {
    id: String,
    state: Mutex<SessionState>,
}

impl Session {
    /// A session with nothing negotiated yet.
    pub fn new(id: String) -> Session {
        Session {
            id,
            state: Mutex::new(SessionState::default()),
        }
    }

    /// Its id (the `Mcp-Session-Id` on HTTP).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of its state.
    pub fn state(&self) -> SessionState {
        *self.lock()
    }

    /// Records the revision `initialize` settled on.
    pub fn negotiated(&self, revision: Revision) {
        let mut s = self.lock();
        s.revision = Some(revision);
        s.initialized = false;
    }

    /// Records `notifications/initialized`.
    pub fn confirmed(&self) {
        self.lock().initialized = true;
    }
}

/// The HTTP session table.
#[derive(Debug)]
pub struct Sessions {
    prefix: String,
    next: AtomicU64,
    table: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// An empty table whose ids start with `prefix` (the mock's instance).
    pub fn new(prefix: &str) -> Sessions {
        Sessions {
            prefix: prefix.to_owned(),
            next: AtomicU64::new(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a new session with a fresh id.
    pub fn open(&self) -> Arc<Session> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(format!("{}-{n}", self.prefix)));
        self.lock()
            .insert(session.id().to_owned(), Arc::clone(&session));
        session
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().get(id).cloned()
    }

    /// Ends a session; whether it existed.
    pub fn close(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_find_and_close() {
        let table = Sessions::new("abc");
        let a = table.open();
        let b = table.open();
        assert_ne!(a.id(), b.id());
        assert!(a.id().starts_with("abc-"));
        a.negotiated(Revision::V2025_06_18);
        a.confirmed();
        let found = table.get(a.id()).unwrap();
        assert_eq!(
            found.state(),
            SessionState {
                revision: Some(Revision::V2025_06_18),
                initialized: true
            }
        );
        assert!(table.close(a.id()));
        assert!(!table.close(a.id()));
        assert!(table.get(a.id()).is_none());
        assert_eq!(table.len(), 1);
    }
}
