//! The history store: what the engine remembers between requests, keyed by tenant and user
//! (and session), so tenants never share. [`MemoryStore`] is for tests and replay; the
//! `stepup-store` crate adds the embedded on-disk default and Redis.
//!
//! Single use across a fleet (SPEC §10): every session carries a version. A commit writes the
//! session only if its stored version is still the one the decision was made on (compare and
//! set), and bumps it; otherwise it fails with [`StoreError::Conflict`] and the engine decides
//! again on the fresh state. History updates are merges (sets grow, times only move forward),
//! so concurrent sign-ins lose nothing.

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
    /// The session changed since it was loaded (another instance decided on it first): nothing
    /// was written; decide again on the fresh state.
    #[error("the session changed since it was loaded (version {expected}); nothing was written")]
    Conflict {
        /// The version the decision was made on.
        expected: u64,
    },
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

    /// Writes a session's new state and applies a history update, atomically. The session is
    /// written only if its stored version equals `state.version` (the version it was loaded
    /// at); it is stored with the next version. The history update is merged, unconditionally.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the session changed since it was loaded; otherwise as
    /// [`Store::load`]. On error nothing was written.
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
    /// As [`Store::load`].
    fn put_history(
        &self,
        tenant: &str,
        user: &str,
        history: &UserHistory,
    ) -> Result<(), StoreError>;

    /// Starts a session afresh (for replaying scenarios on a persistent store): it is emptied,
    /// and its version moves on, so a decision made on the old session cannot commit.
    ///
    /// # Errors
    /// As [`Store::load`].
    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError>;
}

/// Checks a commit's expected version against the stored one.
///
/// # Errors
/// [`StoreError::Conflict`] when they differ.
pub fn check_version(stored: u64, new: &SessionState) -> Result<(), StoreError> {
    if stored == new.version {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            expected: new.version,
        })
    }
}

/// The session as stored after a commit: the next version.
#[must_use]
pub fn next_version(new: &SessionState) -> SessionState {
    let mut s = new.clone();
    s.version = new.version.wrapping_add(1);
    s
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
        let key = (tenant.to_string(), user.to_string(), session.to_string());
        if let Some(s) = state {
            check_version(g.sessions.get(&key).map_or(0, |cur| cur.version), s)?;
        }
        if let Some(u) = update {
            u.apply(
                g.history
                    .entry((tenant.to_string(), user.to_string()))
                    .or_default(),
            );
        }
        if let Some(s) = state {
            g.sessions.insert(key, next_version(s));
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

    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
        let mut g = self.inner.lock().map_err(poisoned)?;
        let key = (tenant.to_string(), user.to_string(), session.to_string());
        let version = g
            .sessions
            .get(&key)
            .map_or(1, |s| s.version.wrapping_add(1));
        g.sessions.insert(
            key,
            SessionState {
                version,
                ..SessionState::default()
            },
        );
        Ok(())
    }
}
