//! The in-memory store for a service that runs as one process (the example service's
//! `--memory`): what the engine's `MemoryStore` keeps, with the same compare-and-set, but found
//! by tenant, then user, then session, so a request's load and commit look their names up
//! without building owned keys (the engine's store, for tests and replay, allocates a key of
//! two or three strings for every lookup). Nothing is kept across restarts.
//!
//! Single use holds within the process (a commit compares the session's version under the
//! lock); across instances it needs a shared store ([`crate::RedisStore`], [`crate::DiskStore`]).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use stepup_engine::state::{HistoryUpdate, SessionState, UserHistory};
use stepup_engine::store::{check_version, next_version};
use stepup_engine::{Store, StoreError};

/// A user's history and sessions.
#[derive(Debug, Default)]
struct User {
    history: UserHistory,
    sessions: HashMap<String, SessionState>,
}

/// Users by tenant, then by id: a tenant's names never meet another's.
type Tenants = HashMap<String, HashMap<String, User>>;

/// An in-memory store (see the module's documentation).
#[derive(Debug, Default)]
pub struct MemoryStore {
    tenants: Mutex<Tenants>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A poisoned lock (a panic while it was held) is an unavailable store: decisions fail
    /// closed.
    fn lock(&self) -> Result<MutexGuard<'_, Tenants>, StoreError> {
        self.tenants
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".to_string()))
    }
}

/// The user's entry, made when it does not exist. Only writes build owned keys; a commit is
/// rarer than a load (an allow that changes nothing commits nothing).
fn user_mut<'a>(tenants: &'a mut Tenants, tenant: &str, user: &str) -> &'a mut User {
    tenants
        .entry(tenant.to_string())
        .or_default()
        .entry(user.to_string())
        .or_default()
}

impl Store for MemoryStore {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        let g = self.lock()?;
        let Some(u) = g.get(tenant).and_then(|users| users.get(user)) else {
            return Ok((UserHistory::default(), SessionState::default()));
        };
        let s = u.sessions.get(session).cloned().unwrap_or_default();
        Ok((u.history.clone(), s))
    }

    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        if state.is_none() && update.is_none() {
            return Ok(());
        }
        let mut g = self.lock()?;
        if let Some(s) = state {
            let stored = g
                .get(tenant)
                .and_then(|users| users.get(user))
                .and_then(|u| u.sessions.get(session))
                .map_or(0, |cur| cur.version);
            check_version(stored, s)?;
        }
        let u = user_mut(&mut g, tenant, user);
        if let Some(h) = update {
            h.apply(&mut u.history);
        }
        if let Some(s) = state {
            match u.sessions.get_mut(session) {
                Some(cur) => *cur = next_version(s),
                None => {
                    u.sessions.insert(session.to_string(), next_version(s));
                }
            }
        }
        Ok(())
    }

    fn put_history(
        &self,
        tenant: &str,
        user: &str,
        history: &UserHistory,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        user_mut(&mut g, tenant, user).history = history.clone();
        Ok(())
    }

    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let u = user_mut(&mut g, tenant, user);
        let version = u
            .sessions
            .get(session)
            .map_or(1, |s| s.version.wrapping_add(1));
        u.sessions.insert(
            session.to_string(),
            SessionState {
                version,
                ..SessionState::default()
            },
        );
        Ok(())
    }
}
