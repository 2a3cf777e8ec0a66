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
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use stepup_core::Timestamp;

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

    /// Starts a session afresh (for replaying scenarios on a persistent store): it is emptied
    /// but for the authentications it recorded as spent, and its version moves on, so a
    /// decision made on the old session cannot commit.
    ///
    /// # Errors
    /// As [`Store::load`]; a store shared by instances may also give [`StoreError::Conflict`]
    /// when the session keeps changing while it is reset (nothing is then written).
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

/// What a store keeps of a user's forgotten sessions (see [`MAX_SESSIONS_PER_USER`]), so that
/// forgetting one never lets anything be used twice. A session the store does not have loads
/// as [`Forgotten::absent`]: at a version above every version a forgotten session had (a
/// decision that loaded one before it was forgotten conflicts, never commits over what was
/// written since), and with every authentication a forgotten session recorded as spent
/// counted as spent (`completed_floor`: the record of a login's spent authentications, which
/// the HTTP layer keeps as a session, must not forget one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    /// The version an absent session has: above every forgotten session's.
    #[serde(default)]
    pub version: u64,
    /// The latest authentication a forgotten session recorded as spent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<Timestamp>,
}

impl Forgotten {
    /// Notes that `s` is forgotten.
    pub fn forget(&mut self, s: &SessionState) {
        self.version = self.version.max(s.version.saturating_add(1));
        let spent = s.completed.iter().copied().chain(s.completed_floor).max();
        self.spent = self.spent.max(spent);
    }

    /// A session the store does not have.
    #[must_use]
    pub fn absent(&self) -> SessionState {
        SessionState {
            version: self.version,
            completed_floor: self.spent,
            ..SessionState::default()
        }
    }

    /// A session reset ([`Store::reset_session`]), as a forgotten one comes back: `stored`, the
    /// session as stored (`None`: absent, at [`Forgotten::version`]), forgotten, so the fresh
    /// session is above its version and keeps what it and the forgotten ones recorded as spent.
    #[must_use]
    pub fn reset(mut self, stored: Option<&SessionState>) -> SessionState {
        match stored {
            Some(old) => self.forget(old),
            None => self.version = self.version.saturating_add(1),
        }
        self.absent()
    }
}

/// A user's history and sessions.
#[derive(Debug, Default)]
struct User {
    history: UserHistory,
    /// Each session, with the user's commit count when it was last written.
    sessions: HashMap<String, (SessionState, u64)>,
    /// Commits of the user's sessions so far.
    commits: u64,
    /// What the forgotten sessions leave.
    forgotten: Forgotten,
}

impl User {
    /// The session `id` (absent: as [`Forgotten::absent`]).
    fn session(&self, id: &str) -> SessionState {
        self.sessions
            .get(id)
            .map_or_else(|| self.forgotten.absent(), |(s, _)| s.clone())
    }

    /// The version of session `id` as stored.
    fn version(&self, id: &str) -> u64 {
        self.sessions
            .get(id)
            .map_or(self.forgotten.version, |(s, _)| s.version)
    }

    /// Writes `state` as session `id`: at most [`MAX_SESSIONS_PER_USER`] are kept, the one
    /// written longest ago forgotten for a new one.
    fn write(&mut self, id: &str, state: SessionState) {
        self.commits = self.commits.wrapping_add(1);
        let tick = self.commits;
        if let Some(cur) = self.sessions.get_mut(id) {
            *cur = (state, tick);
            return;
        }
        if self.sessions.len() >= MAX_SESSIONS_PER_USER
            && let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            && let Some((gone, _)) = self.sessions.remove(&oldest)
        {
            self.forgotten.forget(&gone);
        }
        self.sessions.insert(id.to_string(), (state, tick));
    }
}

/// The most sessions a store keeps per user (the memory and disk stores; Redis expires them).
/// Beyond, the session written longest ago is forgotten for a new one: forgotten, a session is
/// new again, not established, with no grant and no open challenge, so a limit only asks more
/// (every login of a user's kept its session, about 2 KB, forever: a review). What single use
/// needs of it is kept ([`Forgotten`]). A user's logins at once are far fewer.
pub const MAX_SESSIONS_PER_USER: usize = 64;

/// Users by tenant, then by id: a tenant's names never meet another's.
type Tenants = HashMap<String, HashMap<String, User>>;

/// An in-memory store, for tests, replay and a service that runs as one process (nothing is
/// kept across restarts). Entries are found by tenant, then user, then session, so a load and
/// a commit look their names up without building owned keys. Single use holds within the
/// process (a commit compares the session's version under the lock); across instances it needs
/// a shared store (`stepup_store::RedisStore`).
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
        Ok((u.history.clone(), u.session(session)))
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
                .map_or(0, |u| u.version(session));
            check_version(stored, s)?;
        }
        let u = user_mut(&mut g, tenant, user);
        if let Some(h) = update {
            h.apply(&mut u.history);
        }
        if let Some(s) = state {
            u.write(session, next_version(s));
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
        // A reset forgot what the session recorded as spent (a review).
        let fresh = u.forgotten.reset(u.sessions.get(session).map(|(s, _)| s));
        u.write(session, fresh);
        Ok(())
    }
}
