//! Redis, for services running as many instances: history kept in native Redis structures so
//! concurrent instances merge instead of overwriting (a set of devices, hashes of countries and
//! accesses), keys namespaced per tenant, every key expiring after the retention, one round
//! trip to load and one `MULTI`/`EXEC` to commit. Every call has a deadline; on any failure the
//! connection is dropped and re-opened on the next call, so the store recovers by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use stepup_core::Timestamp;
use stepup_engine::state::{HistoryUpdate, LastSignIn, SessionState, UserHistory};
use stepup_engine::{Store, StoreError};

/// Default deadline of one call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(250);

/// A Redis-backed store.
pub struct RedisStore {
    client: redis::Client,
    conn: Mutex<Option<redis::Connection>>,
    deadline: Duration,
    retention_secs: u64,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Escapes `:` and `%` so names can never forge another tenant's key.
fn esc(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

fn fail(e: &redis::RedisError, deadline: Duration) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

impl RedisStore {
    /// A store at `url` (`redis://127.0.0.1:6379/`). Connects lazily.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(RedisStore {
            client,
            conn: Mutex::new(None),
            deadline: DEFAULT_DEADLINE,
            retention_secs: 90 * 86_400,
            prefix: "stepup".to_string(),
        })
    }
    /// Sets the per-call deadline.
    #[must_use]
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }
    /// Sets how long data lives after its last write.
    #[must_use]
    pub fn with_retention(mut self, secs: u64) -> Self {
        self.retention_secs = secs.max(1);
        self
    }
    /// Sets the key prefix (one per deployment).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = esc(prefix);
        self
    }

    fn user_key(&self, tenant: &str, user: &str, what: &str) -> String {
        format!("{}:{}:{}:{what}", self.prefix, esc(tenant), esc(user))
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| StoreError::Unavailable("redis connection lock poisoned".into()))?;
        if guard.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(self.deadline)
                .map_err(|e| fail(&e, self.deadline))?;
            c.set_read_timeout(Some(self.deadline))
                .map_err(|e| fail(&e, self.deadline))?;
            c.set_write_timeout(Some(self.deadline))
                .map_err(|e| fail(&e, self.deadline))?;
            *guard = Some(c);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(StoreError::Unavailable("no connection".into()));
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                // A broken or timed-out connection may have a reply in flight: never reuse it.
                *guard = None;
                Err(fail(&e, self.deadline))
            }
        }
    }
}

fn parse_ts(map: HashMap<String, i64>) -> std::collections::BTreeMap<String, Timestamp> {
    map.into_iter().map(|(k, v)| (k, Timestamp(v))).collect()
}

type Loaded = (
    Vec<String>,
    HashMap<String, i64>,
    Option<Vec<u8>>,
    HashMap<String, i64>,
    Option<Vec<u8>>,
);

impl Store for RedisStore {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        let (dk, ck, lk, ak) = (
            self.user_key(tenant, user, "devices"),
            self.user_key(tenant, user, "countries"),
            self.user_key(tenant, user, "last"),
            self.user_key(tenant, user, "accesses"),
        );
        let sk = self.user_key(tenant, user, &format!("session:{}", esc(session)));
        let (devices, countries, last, accesses, sess): Loaded = self.with_conn(|c| {
            redis::pipe()
                .cmd("SMEMBERS")
                .arg(&dk)
                .cmd("HGETALL")
                .arg(&ck)
                .cmd("GET")
                .arg(&lk)
                .cmd("HGETALL")
                .arg(&ak)
                .cmd("GET")
                .arg(&sk)
                .query(c)
        })?;
        let last_sign_in: Option<LastSignIn> = match last {
            Some(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| StoreError::Corrupt(format!("last sign-in: {e}")))?,
            ),
            None => None,
        };
        let history = UserHistory {
            devices: devices.into_iter().collect(),
            countries: parse_ts(countries),
            last_sign_in,
            accesses: parse_ts(accesses),
        };
        let state = match sess {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| StoreError::Corrupt(format!("session: {e}")))?,
            None => SessionState::default(),
        };
        Ok((history, state))
    }

    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        let ttl = self.retention_secs;
        let mut p = redis::pipe();
        p.atomic();
        if let Some(u) = update {
            if let Some(d) = &u.device {
                let k = self.user_key(tenant, user, "devices");
                p.cmd("SADD")
                    .arg(&k)
                    .arg(d)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&k)
                    .arg(ttl)
                    .ignore();
            }
            if let Some((c, at)) = &u.country {
                let k = self.user_key(tenant, user, "countries");
                p.cmd("HSET")
                    .arg(&k)
                    .arg(c)
                    .arg(at.0)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&k)
                    .arg(ttl)
                    .ignore();
            }
            if let Some(l) = &u.last_sign_in {
                let k = self.user_key(tenant, user, "last");
                let v = serde_json::to_vec(l).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                p.cmd("SET").arg(&k).arg(v).arg("EX").arg(ttl).ignore();
            }
            if let Some((r, at)) = &u.access {
                let k = self.user_key(tenant, user, "accesses");
                p.cmd("HSET")
                    .arg(&k)
                    .arg(r)
                    .arg(at.0)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&k)
                    .arg(ttl)
                    .ignore();
            }
        }
        if let Some(s) = state {
            let k = self.user_key(tenant, user, &format!("session:{}", esc(session)));
            let v = serde_json::to_vec(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            p.cmd("SET").arg(&k).arg(v).arg("EX").arg(ttl).ignore();
        }
        self.with_conn(|c| p.query::<()>(c))
    }

    fn put_history(&self, tenant: &str, user: &str, h: &UserHistory) -> Result<(), StoreError> {
        let ttl = self.retention_secs;
        let keys =
            ["devices", "countries", "last", "accesses"].map(|w| self.user_key(tenant, user, w));
        let mut p = redis::pipe();
        p.atomic();
        for k in &keys {
            p.cmd("DEL").arg(k).ignore();
        }
        let [dk, ck, lk, ak] = &keys;
        for d in &h.devices {
            p.cmd("SADD").arg(dk).arg(d).ignore();
        }
        for (c, at) in &h.countries {
            p.cmd("HSET").arg(ck).arg(c).arg(at.0).ignore();
        }
        if let Some(l) = &h.last_sign_in {
            p.cmd("SET")
                .arg(lk)
                .arg(serde_json::to_vec(l).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                .ignore();
        }
        for (r, at) in &h.accesses {
            p.cmd("HSET").arg(ak).arg(r).arg(at.0).ignore();
        }
        for k in &keys {
            p.cmd("EXPIRE").arg(k).arg(ttl).ignore();
        }
        self.with_conn(|c| p.query::<()>(c))
    }
}
