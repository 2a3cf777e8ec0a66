//! The embedded default: redb, one file, ACID transactions, crash-safe commits, no server. A
//! commit is one write transaction: the session's version is compared and the session and the
//! history written in it, so two processes sharing the file cannot both spend one challenge.
//!
//! A write that fails with an I/O error (a full disk) leaves redb refusing every later
//! transaction until the file is opened again; the store then closes and reopens it on the
//! next call, so it recovers by itself when the disk has room again (until then every call
//! fails, and decisions fail closed).
//!
//! redb panics on some damaged files instead of returning an error (`Invalid page type byte`
//! while it opens one): an open runs under `catch_unwind`, so a damaged file is a corrupt
//! store, refused, and never a panic of the caller (nor a poisoned lock for the next call).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use stepup_engine::state::{HistoryUpdate, SessionState, UserHistory};
use stepup_engine::store::{Forgotten, MAX_SESSIONS_PER_USER, check_version, next_version};
use stepup_engine::{Store, StoreError};

const HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("history");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Per user (keyed as the history), the ids of the user's sessions, written longest ago first:
/// at most [`MAX_SESSIONS_PER_USER`] are kept. (A store written before it has sessions it does
/// not list; they are kept, and only the listed ones counted.)
const USER_SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("user_sessions");

/// A store in one redb file.
pub struct DiskStore {
    /// `None` only while it is being reopened, or when reopening failed.
    db: RwLock<Option<Database>>,
    path: PathBuf,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore").finish_non_exhaustive()
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Whether redb refuses because an earlier write failed (`StorageError::PreviousIo`): only
/// closing and reopening the file clears it.
fn needs_reopen(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m.contains("Previous I/O error"))
}

/// Opens the file, turning a panic of redb on a damaged file into [`StoreError::Corrupt`].
/// Unwind safety is asserted: nothing the closure touches outlives it but the path, and a
/// half-opened database is dropped by the unwind.
fn open_db(path: &Path) -> Result<Database, StoreError> {
    catch_unwind(AssertUnwindSafe(|| open_db_unguarded(path))).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the database panicked");
        Err(StoreError::Corrupt(format!(
            "cannot open `{}`: the file is damaged ({why})",
            path.display()
        )))
    })
}

fn open_db_unguarded(path: &Path) -> Result<Database, StoreError> {
    let db = Database::create(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open `{}`: {e}", path.display())))?;
    let txn = db.begin_write().map_err(err)?;
    txn.open_table(HISTORY).map_err(err)?;
    txn.open_table(SESSIONS).map_err(err)?;
    txn.open_table(USER_SESSIONS).map_err(err)?;
    txn.commit().map_err(err)?;
    Ok(db)
}

/// An unambiguous key for any tenant, user and session strings.
fn key(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl DiskStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a redb database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        Ok(DiskStore {
            db: RwLock::new(Some(open_db(path)?)),
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` on the database; when redb refuses because of an earlier I/O error, closes and
    /// reopens the file and runs `f` once more.
    ///
    /// A poisoned lock is taken anyway: what it guards is a handle or `None`, both states the
    /// next call handles (`None` reopens), and refusing forever would make one panic an outage
    /// until the process restarts.
    fn with_db<T>(&self, f: impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let first = {
            let g = self.db.read().unwrap_or_else(PoisonError::into_inner);
            match g.as_ref() {
                Some(db) => f(db),
                None => Err(StoreError::Unavailable(
                    "Previous I/O error: reopening".into(),
                )),
            }
        };
        match first {
            Err(e) if needs_reopen(&e) => {
                let mut g = self.db.write().unwrap_or_else(PoisonError::into_inner);
                // redb holds the file exclusively: the old handle goes before the new one opens.
                drop(g.take());
                *g = Some(open_db(&self.path)?);
                match g.as_ref() {
                    Some(db) => f(db),
                    None => Err(e),
                }
            }
            other => other,
        }
    }
}

impl Store for DiskStore {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        self.with_db(|db| load(db, tenant, user, session))
    }

    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        self.with_db(|db| commit(db, tenant, user, session, state, update))
    }

    fn put_history(
        &self,
        tenant: &str,
        user: &str,
        history: &UserHistory,
    ) -> Result<(), StoreError> {
        self.with_db(|db| put_history(db, tenant, user, history))
    }

    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
        self.with_db(|db| reset_session(db, tenant, user, session))
    }
}

fn load(
    db: &Database,
    tenant: &str,
    user: &str,
    session: &str,
) -> Result<(UserHistory, SessionState), StoreError> {
    {
        let txn = db.begin_read().map_err(err)?;
        let h = txn.open_table(HISTORY).map_err(err)?;
        let s = txn.open_table(SESSIONS).map_err(err)?;
        let history = match h.get(key(&[tenant, user]).as_str()).map_err(err)? {
            Some(v) => decode(v.value())?,
            None => UserHistory::default(),
        };
        let state = match s.get(key(&[tenant, user, session]).as_str()).map_err(err)? {
            Some(v) => decode(v.value())?,
            None => {
                let list = txn.open_table(USER_SESSIONS).map_err(err)?;
                user_sessions(&list, tenant, user)?.forgotten.absent()
            }
        };
        Ok((history, state))
    }
}

fn commit(
    db: &Database,
    tenant: &str,
    user: &str,
    session: &str,
    state: Option<&SessionState>,
    update: Option<&HistoryUpdate>,
) -> Result<(), StoreError> {
    {
        let txn = db.begin_write().map_err(err)?;
        {
            let sk = key(&[tenant, user, session]);
            if let Some(st) = state {
                let s = txn.open_table(SESSIONS).map_err(err)?;
                let stored: u64 = match s.get(sk.as_str()).map_err(err)? {
                    Some(v) => decode::<SessionState>(v.value())?.version,
                    None => {
                        let list = txn.open_table(USER_SESSIONS).map_err(err)?;
                        user_sessions(&list, tenant, user)?.forgotten.version
                    }
                };
                check_version(stored, st)?;
            }
            if let Some(u) = update {
                let mut h = txn.open_table(HISTORY).map_err(err)?;
                let k = key(&[tenant, user]);
                let mut history: UserHistory = match h.get(k.as_str()).map_err(err)? {
                    Some(v) => decode(v.value())?,
                    None => UserHistory::default(),
                };
                u.apply(&mut history);
                h.insert(k.as_str(), encode(&history)?.as_slice())
                    .map_err(err)?;
            }
            if let Some(st) = state {
                let mut s = txn.open_table(SESSIONS).map_err(err)?;
                s.insert(sk.as_str(), encode(&next_version(st))?.as_slice())
                    .map_err(err)?;
                written(&txn, &mut s, tenant, user, session)?;
            }
        }
        // Dropping an uncommitted transaction aborts it: an error above writes nothing.
        txn.commit().map_err(err)
    }
}

/// Notes that `session` of the user was just written (in `txn`, with its table `sessions`): it
/// becomes the user's latest, and beyond [`MAX_SESSIONS_PER_USER`] the one written longest ago
/// is deleted (new again when next loaded: not established, fail closed).
fn written(
    txn: &redb::WriteTransaction,
    sessions: &mut redb::Table<'_, &str, &[u8]>,
    tenant: &str,
    user: &str,
    session: &str,
) -> Result<(), StoreError> {
    let mut list = txn.open_table(USER_SESSIONS).map_err(err)?;
    let mut us = user_sessions(&list, tenant, user)?;
    us.ids.retain(|s| s != session);
    us.ids.push(session.to_string());
    while us.ids.len() > MAX_SESSIONS_PER_USER {
        let oldest = us.ids.remove(0);
        let gone = sessions
            .remove(key(&[tenant, user, &oldest]).as_str())
            .map_err(err)?;
        // What single use needs of it is kept (a session that cannot be read refuses the
        // commit: its spent authentications would be lost).
        if let Some(v) = gone {
            us.forgotten.forget(&decode::<SessionState>(v.value())?);
        }
    }
    list.insert(key(&[tenant, user]).as_str(), encode(&us)?.as_slice())
        .map_err(err)?;
    Ok(())
}

/// A user's sessions, written longest ago first, and what the forgotten ones leave.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct UserSessions {
    ids: Vec<String>,
    #[serde(default)]
    forgotten: Forgotten,
}

fn user_sessions(
    list: &impl ReadableTable<&'static str, &'static [u8]>,
    tenant: &str,
    user: &str,
) -> Result<UserSessions, StoreError> {
    match list.get(key(&[tenant, user]).as_str()).map_err(err)? {
        Some(v) => decode(v.value()),
        None => Ok(UserSessions::default()),
    }
}

fn put_history(
    db: &Database,
    tenant: &str,
    user: &str,
    history: &UserHistory,
) -> Result<(), StoreError> {
    {
        let txn = db.begin_write().map_err(err)?;
        {
            let mut h = txn.open_table(HISTORY).map_err(err)?;
            h.insert(key(&[tenant, user]).as_str(), encode(history)?.as_slice())
                .map_err(err)?;
        }
        txn.commit().map_err(err)
    }
}

fn reset_session(db: &Database, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
    {
        let txn = db.begin_write().map_err(err)?;
        {
            let mut s = txn.open_table(SESSIONS).map_err(err)?;
            let k = key(&[tenant, user, session]);
            let forgotten = {
                let list = txn.open_table(USER_SESSIONS).map_err(err)?;
                user_sessions(&list, tenant, user)?.forgotten
            };
            let stored: Option<SessionState> = match s.get(k.as_str()).map_err(err)? {
                Some(v) => Some(decode(v.value())?),
                None => None,
            };
            let fresh = forgotten.reset(stored.as_ref());
            s.insert(k.as_str(), encode(&fresh)?.as_slice())
                .map_err(err)?;
            written(&txn, &mut s, tenant, user, session)?;
        }
        txn.commit().map_err(err)
    }
}
