//! The history store: what the engine remembers between requests, keyed by tenant and user
//! (and session), so tenants never share. [`MemoryStore`] is for tests and replay; the
//! `stepup-store` crate adds the embedded on-disk default and Redis.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::state::{HistoryUpdate, SessionState, UserHistory};

/// Why the store failed. Evaluation fails closed on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached.
    #[error("history store unavailable: {0}")]
    Unavailable(String),
    /// The store answered later than its deadline.
    #[error("history store timed out after {0} ms")]
    Timeout(u64),
    /// The store returned data that cannot be decoded.
    #[error("history store returned undecodable data: {0}")]
    Corrupt(String),
}

/// A history and session store. `commit` is atomic: all of it is written, or nothing.
pub trait Store: Send + Sync {
    /// Reads a user's history and a session's state.
    ///
    /// # Errors
    /// When the store is unavailable, slow past its deadline, or its data cannot be decoded.
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError>;

    /// Writes a session's new state and applies a history update, atomically.
    ///
    /// # Errors
    /// As [`Store::load`]; on error nothing was written.
    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError>;

    /// Replaces a user's history (for seeding scenarios and migrations).
    ///
    /// # Errors
    /// As [`Store::commit`].
    fn put_history(
        &self,
        tenant: &str,
        user: &str,
        history: &UserHistory,
    ) -> Result<(), StoreError>;
}

/// An in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    history: HashMap<(String, String), UserHistory>,
    sessions: HashMap<(String, String, String), SessionState>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".to_string())
}

impl Store for MemoryStore {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        let g = self.inner.lock().map_err(poisoned)?;
        let h = g
            .history
            .get(&(tenant.to_string(), user.to_string()))
            .cloned()
            .unwrap_or_default();
        let s = g
            .sessions
            .get(&(tenant.to_string(), user.to_string(), session.to_string()))
            .cloned()
            .unwrap_or_default();
        Ok((h, s))
    }

    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        let mut g = self.inner.lock().map_err(poisoned)?;
        if let Some(u) = update {
            u.apply(
                g.history
                    .entry((tenant.to_string(), user.to_string()))
                    .or_default(),
            );
        }
        if let Some(s) = state {
            g.sessions.insert(
                (tenant.to_string(), user.to_string(), session.to_string()),
                s.clone(),
            );
        }
        Ok(())
    }

    fn put_history(
        &self,
        tenant: &str,
        user: &str,
        history: &UserHistory,
    ) -> Result<(), StoreError> {
        let mut g = self.inner.lock().map_err(poisoned)?;
        g.history
            .insert((tenant.to_string(), user.to_string()), history.clone());
        Ok(())
    }
}
