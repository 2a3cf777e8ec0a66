//! Redis, for services running as many instances: history kept in native Redis structures so
//! concurrent instances merge instead of overwriting (a set of devices, hashes of countries and
//! accesses whose times only move forward), keys namespaced per tenant and hash-tagged per
//! (tenant, user) so one user's keys live in one Redis Cluster slot, every key expiring after
//! the retention.
//!
//! Each load and each commit is one Lua script, so a commit is atomic: it compares the
//! session's version with the one the decision was made on and writes nothing on a mismatch
//! (SPEC §10 single use). Connections come from a small pool (requests of one process run in
//! parallel instead of queueing on one connection); every call has a deadline, and a connection
//! that failed is dropped, so the store recovers by itself when Redis comes back.
//!
//! The URL chooses the deployment: `redis://host:port/` for one server, and
//! `redis+cluster://host:port,host:port,…` for a Redis Cluster (any reachable nodes; the rest
//! of the topology is discovered).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::ConnectionLike;
use stepup_core::Timestamp;
use stepup_engine::engine::MAX_COMMIT_ATTEMPTS;
use stepup_engine::state::{
    HistoryUpdate, LastSignIn, MAX_ACCESSES, MAX_COUNTRIES, MAX_DEVICES, MAX_LEARNED_BYTES,
    SessionState, UserHistory,
};
use stepup_engine::{Store, StoreError};

/// Default deadline of one call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(250);
/// Idle connections kept per store.
pub const MAX_IDLE_CONNECTIONS: usize = 16;
/// The scheme of Redis Cluster URLs.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";
/// The longest retention, 100 years in seconds: what a deployment means by "forever". Redis
/// refuses an `EXPIRE` whose time overflows its clock, and a commit that set its keys' times
/// after writing them would be a failed commit that wrote.
pub const MAX_RETENTION_SECS: u64 = 100 * 365 * 86_400;
/// The shortest retention, a day. A session that expires comes back new, at version 0: while a
/// challenge can still be completed (five minutes) the HTTP layer's record of a login's spent
/// step-ups must not expire (one step-up would pay twice), nor a session while a decision that
/// loaded it may still commit (a stale commit at its old version would pass once the session is
/// written again as often). A day is far beyond both (a review: a retention of 2 seconds did
/// both).
pub const MIN_RETENTION_SECS: u64 = 86_400;

enum Backend {
    Single(redis::Client),
    Cluster {
        client: redis::cluster::ClusterClient,
        nodes: Vec<String>,
    },
}

fn cluster_client(
    nodes: &[String],
    deadline: Duration,
) -> redis::RedisResult<redis::cluster::ClusterClient> {
    redis::cluster::ClusterClient::builder(nodes.to_vec())
        .connection_timeout(deadline)
        .response_timeout(deadline)
        .build()
}

enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }
}

/// A Redis-backed store (one server or a cluster).
pub struct RedisStore {
    backend: Backend,
    idle: Mutex<Vec<Conn>>,
    deadline: Duration,
    retention_secs: u64,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("cluster", &matches!(self.backend, Backend::Cluster { .. }))
            .finish_non_exhaustive()
    }
}

/// Escapes `:`, `%` and the hash-tag braces so names can never forge another tenant's key or
/// move a key out of its user's slot.
fn esc(s: &str) -> String {
    s.replace('%', "%25")
        .replace(':', "%3A")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

fn fail(e: &redis::RedisError, deadline: Duration) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Whether a version as stored is one the store wrote: decimal digits, no leading zero. Shared
/// by `load` and the scripts, which compare versions as text (a Lua number is a double: from
/// 2^53 on `v + 1 == v`, so two commits on one loaded version would both pass, and from 10^17
/// `HSET` would store `1e+17`).
fn is_version(v: &str) -> bool {
    v == "0" || (!v.starts_with('0') && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// A version as stored, read as a number: one that is not decimal digits, or that does not fit
/// a `u64`, is corrupt (the session cannot be told apart from another one).
fn parse_version(v: &str) -> Result<u64, StoreError> {
    if !is_version(v) {
        return Err(corrupt(
            "session",
            format!("the version `{v}` is not a number"),
        ));
    }
    v.parse()
        .map_err(|_| corrupt("session", format!("the version `{v}` is out of range")))
}

/// A session as stored: its json (absent: a new session) at the hash's version (the one commits
/// compare; absent: 0).
fn session_of(json: Option<Vec<u8>>, version: Option<String>) -> Result<SessionState, StoreError> {
    let mut state: SessionState = match json {
        Some(b) => serde_json::from_slice(&b).map_err(|e| corrupt("session", e))?,
        None => SessionState::default(),
    };
    state.version = match version {
        Some(v) => parse_version(&v)?,
        None => 0,
    };
    Ok(state)
}

/// Lua checks the scripts that write run before their first write (put before each script's
/// text when it is compiled: nothing is assembled per call). `ttl_ok(t)`: a retention as
/// `with_retention` caps it (at most 10 digits, so `EXPIRE` cannot overflow the server's
/// clock). `version_of(key)`: the session's stored version as text (`0` when none), or nil
/// when it is not one the store wrote. `below_max(v)`: whether `HINCRBY` can add one to `v`
/// (Redis counts in a signed 64-bit integer; digits compared by byte, not by the server's
/// locale).
macro_rules! checks {
    () => {
        r"
local function digits(s)
  return s == '0' or string.find(s, '^[1-9][0-9]*$') ~= nil
end
local function ttl_ok(t)
  return digits(t) and t ~= '0' and #t <= 10
end
local function version_of(key)
  local v = redis.call('HGET', key, 'v') or '0'
  if digits(v) then return v end
  return nil
end
local function below_max(v)
  local max = '9223372036854775807'
  if #v ~= #max then return #v < #max end
  for i = 1, #v do
    local a, b = string.byte(v, i), string.byte(max, i)
    if a ~= b then return a < b end
  end
  return false
end
"
    };
}

/// Reads one session (KEYS[1]): its json and version. Missing values are `false` (nil).
const LOAD_SESSION: &str = r"
return { redis.call('HGET', KEYS[1], 'json'), redis.call('HGET', KEYS[1], 'v') }";

/// Writes one session (KEYS[1]) as ARGV[3] when its stored version, as text, is ARGV[2], with
/// the next version (`HINCRBY`); every check before the first write. Returns 1 when written,
/// 0 on a version conflict (nothing written). The history's keys are not read: a session is
/// reset whatever they hold.
const SET_SESSION: &str = concat!(
    checks!(),
    r"
local ttl = ARGV[1]
if not ttl_ok(ttl) then return redis.error_reply('corrupt: the retention is out of range') end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('corrupt: the session key holds a ' .. t)
end
local cur = version_of(KEYS[1])
if cur == nil then return redis.error_reply('corrupt: the session version is not a number') end
if cur ~= ARGV[2] then return 0 end
if not below_max(cur) then
  return redis.error_reply('corrupt: the session version is at its greatest')
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'json', ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
return 1"
);

/// Reads the keys of one user (and one session) in one step. Missing values are `false` (nil).
const LOAD: &str = r"
return {
  redis.call('SMEMBERS', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGET', KEYS[3], 'json'),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGET', KEYS[5], 'json'),
  redis.call('HGET', KEYS[5], 'v')
}";

/// Compares the session's version (ARGV[2], its decimal text; empty: no session write) with the
/// stored one, as text, and, when they are equal, merges the history update and writes the
/// session with the next version (`HINCRBY`: Redis's integers, never a Lua double). Optional
/// values are `=value` or empty; ARGV[11..13] are the most devices, countries and resource
/// classes a history keeps (the engine's `HistoryUpdate::apply`, whose forgetting this mirrors:
/// the first device by name, the entry seen least recently, never one newer than the new
/// entry); ARGV[14] is how far ahead a stored time may be and still count (further, the
/// update's time replaces it: `risk::HISTORY_CLOCK_SKEW_SECS`). Returns 1 when committed, 0 on a version conflict (nothing written). Every read and
/// check comes before the first write: Redis does not undo the writes of a script that fails
/// half way, and a failed commit must write nothing.
const COMMIT: &str = concat!(
    checks!(),
    r"
local ttl = ARGV[1]
if not ttl_ok(ttl) then return redis.error_reply('corrupt: the retention is out of range') end
local expected = ARGV[2]
local writes_session = expected ~= ''
local skew = tonumber(ARGV[14]) or 0
local kinds = {'set', 'hash', 'hash', 'hash', 'hash'}
for i = 1, 5 do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= 'none' and t ~= kinds[i] then
    return redis.error_reply('corrupt: a key of the history or session holds a ' .. t)
  end
end
if writes_session then
  local cur = version_of(KEYS[5])
  if cur == nil then return redis.error_reply('corrupt: the session version is not a number') end
  if cur ~= expected then return 0 end
  -- Checked here, not left to HINCRBY: its error would come after the history's writes.
  if not below_max(cur) then
    return redis.error_reply('corrupt: the session version is at its greatest')
  end
end
-- Byte order, as Rust orders strings (Lua's own order follows the server's locale): the
-- first byte that differs, found by halving the common prefix (substring compares are the
-- server's, not byte by byte in the script).
local function before(a, b)
  if a == b then return false end
  local lo, hi = 0, math.min(#a, #b)
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if string.sub(a, 1, mid) == string.sub(b, 1, mid) then lo = mid else hi = mid - 1 end
  end
  if lo == math.min(#a, #b) then return #a < #b end
  return string.byte(a, lo + 1) < string.byte(b, lo + 1)
end
local function times(key)
  local flat = redis.call('HGETALL', key)
  local out, n = {}, 0
  for i = 1, #flat, 2 do
    local at = tonumber(flat[i + 1])
    -- A time is a whole number: `nan`, `inf` and fractions (which `tonumber` reads) are corrupt.
    if at == nil or at ~= at or at == math.huge or at == -math.huge or at ~= math.floor(at) then
      return nil
    end
    out[flat[i]] = at
    n = n + 1
  end
  return out, n
end
local countries, ncountries, accesses, naccesses
if ARGV[5] ~= '' then
  countries, ncountries = times(KEYS[2])
  if countries == nil then return redis.error_reply('corrupt: a country time is not a number') end
end
if ARGV[9] ~= '' then
  accesses, naccesses = times(KEYS[4])
  if accesses == nil then return redis.error_reply('corrupt: an access time is not a number') end
end
local last_at, last_placeless = nil, false
if ARGV[7] ~= '' then
  local old = redis.call('HGET', KEYS[3], 'at')
  if old then
    last_at = tonumber(old)
    if last_at == nil then return redis.error_reply('corrupt: the last sign-in time is not a number') end
    local ok, v = pcall(cjson.decode, redis.call('HGET', KEYS[3], 'json') or 'null')
    if not ok or type(v) ~= 'table' then return redis.error_reply('corrupt: the last sign-in') end
    last_placeless = v.location == nil or v.location == cjson.null
  end
end
local members = nil
if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[1], string.sub(ARGV[4], 2)) == 0 then
  members = redis.call('SMEMBERS', KEYS[1])
end
-- Writes.
-- Names in the order of their scores, then of their bytes, sorted by the server (a sorted
-- set orders equal scores by their bytes): for a history written before the bound, which may
-- hold thousands of entries to forget at once. KEYS[6] is a scratch key of the user's slot.
local function in_order(names, scores)
  redis.call('DEL', KEYS[6])
  for i = 1, #names, 256 do
    local args = {}
    for j = i, math.min(i + 255, #names) do
      args[#args + 1] = scores[j]
      args[#args + 1] = names[j]
    end
    redis.call('ZADD', KEYS[6], unpack(args))
  end
  local out = redis.call('ZRANGE', KEYS[6], 0, -1)
  redis.call('DEL', KEYS[6])
  return out
end
local function remember(key, map, n, name, at_text, max)
  local at = tonumber(at_text)
  max = math.max(max, 1)
  local old = map[name]
  if old ~= nil then
    if old < at or old > at + skew then redis.call('HSET', key, name, at_text) end
  elseif n == max then
    -- One to forget: the entry seen least recently (by name among equal times).
    local oldest, seen = nil, nil
    for k, t in pairs(map) do
      if oldest == nil or t < seen or (t == seen and before(k, oldest)) then
        oldest, seen = k, t
      end
    end
    if seen <= at then
      redis.call('HDEL', key, oldest)
      redis.call('HSET', key, name, at_text)
    end
  elseif n > max then
    local names, scores = {}, {}
    for k, t in pairs(map) do
      names[#names + 1] = k
      scores[#scores + 1] = t
    end
    local order = in_order(names, scores)
    local i = 1
    while n >= max and order[i] ~= nil and map[order[i]] <= at do
      redis.call('HDEL', key, order[i])
      n = n - 1
      i = i + 1
    end
    if n < max then redis.call('HSET', key, name, at_text) end
  else
    redis.call('HSET', key, name, at_text)
  end
  redis.call('EXPIRE', key, ttl)
end
if members ~= nil then
  local max = math.max(tonumber(ARGV[11]), 1)
  local extra = #members - max + 1
  if extra == 1 then
    local first = 1
    for i = 2, #members do
      if before(members[i], members[first]) then first = i end
    end
    redis.call('SREM', KEYS[1], members[first])
  elseif extra > 1 then
    -- A set written before the bound: its first names by bytes forgotten.
    local zeros = {}
    for i = 1, #members do zeros[i] = 0 end
    local order = in_order(members, zeros)
    for i = 1, extra do redis.call('SREM', KEYS[1], order[i]) end
  end
  redis.call('SADD', KEYS[1], string.sub(ARGV[4], 2))
end
if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[1], ttl) end
if countries ~= nil then
  remember(KEYS[2], countries, ncountries, string.sub(ARGV[5], 2), ARGV[6], tonumber(ARGV[12]))
end
if ARGV[7] ~= '' then
  local new_at = tonumber(ARGV[8])
  if (not last_at) or last_placeless or last_at <= new_at or last_at > new_at + skew then
    redis.call('HSET', KEYS[3], 'at', ARGV[8], 'json', string.sub(ARGV[7], 2))
  end
  redis.call('EXPIRE', KEYS[3], ttl)
end
if accesses ~= nil then
  remember(KEYS[4], accesses, naccesses, string.sub(ARGV[9], 2), ARGV[10], tonumber(ARGV[13]))
end
if writes_session then
  redis.call('HINCRBY', KEYS[5], 'v', 1)
  redis.call('HSET', KEYS[5], 'json', ARGV[3])
  redis.call('EXPIRE', KEYS[5], ttl)
end
return 1"
);

/// Replaces a user's history: ARGV[2] devices (JSON array), ARGV[3] countries and ARGV[5]
/// accesses (JSON objects of times), ARGV[4] the last sign-in (`=json` or empty), ARGV[6] its time.
/// Decodes and checks everything before its first write (the `DEL`).
const PUT_HISTORY: &str = concat!(
    checks!(),
    r"
local ttl = ARGV[1]
if not ttl_ok(ttl) then return redis.error_reply('corrupt: the retention is out of range') end
local devices = cjson.decode(ARGV[2])
local countries = cjson.decode(ARGV[3])
local accesses = cjson.decode(ARGV[5])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
for _, d in ipairs(devices) do redis.call('SADD', KEYS[1], d) end
for c, at in pairs(countries) do redis.call('HSET', KEYS[2], c, string.format('%d', at)) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], 'at', ARGV[6], 'json', string.sub(ARGV[4], 2)) end
for r, at in pairs(accesses) do redis.call('HSET', KEYS[4], r, string.format('%d', at)) end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
return 1"
);

fn eval(script: &str, keys: &[String]) -> redis::Cmd {
    let mut c = redis::cmd("EVAL");
    c.arg(script).arg(keys.len()).arg(keys);
    c
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(String::new, |s| format!("={s}"))
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
    Option<String>,
);

impl RedisStore {
    /// A store at `url`: `redis://127.0.0.1:6379/` for one server, or
    /// `redis+cluster://127.0.0.1:7000,127.0.0.1:7001` for a Redis Cluster. Connects lazily.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let bad = |e: redis::RedisError| StoreError::Unavailable(format!("`{url}`: {e}"));
        let backend = match url.strip_prefix(CLUSTER_SCHEME) {
            Some(nodes) => {
                let nodes: Vec<String> = nodes
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| format!("redis://{}", n.trim_end_matches('/')))
                    .collect();
                if nodes.is_empty() {
                    return Err(StoreError::Unavailable(format!(
                        "`{url}` names no cluster node; write {CLUSTER_SCHEME}host:port,host:port"
                    )));
                }
                Backend::Cluster {
                    client: cluster_client(&nodes, DEFAULT_DEADLINE).map_err(bad)?,
                    nodes,
                }
            }
            None => Backend::Single(redis::Client::open(url).map_err(bad)?),
        };
        Ok(RedisStore {
            backend,
            idle: Mutex::new(Vec::new()),
            deadline: DEFAULT_DEADLINE,
            retention_secs: 90 * 86_400,
            prefix: "stepup".to_string(),
        })
    }
    /// Sets the per-call deadline.
    #[must_use]
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        if let Backend::Cluster { client, nodes } = &mut self.backend
            && let Ok(rebuilt) = cluster_client(nodes, d)
        {
            *client = rebuilt;
        }
        self
    }
    /// Sets how long data lives after its last write, in seconds: at least
    /// [`MIN_RETENTION_SECS`] (a day), at most [`MAX_RETENTION_SECS`] (100 years; a longer
    /// one, such as `u64::MAX` meant as "forever", is cut to it).
    #[must_use]
    pub fn with_retention(mut self, secs: u64) -> Self {
        self.retention_secs = secs.clamp(MIN_RETENTION_SECS, MAX_RETENTION_SECS);
        self
    }
    /// Sets the key prefix (one per deployment).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = esc(prefix);
        self
    }

    /// Whether the store talks to a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster { .. })
    }

    /// The keys of one user: `{prefix:tenant:user}:what`, the braces a hash tag, so every key
    /// of a user is in one cluster slot and one script may touch them all.
    fn user_key(&self, tenant: &str, user: &str, what: &str) -> String {
        format!("{{{}:{}:{}}}:{what}", self.prefix, esc(tenant), esc(user))
    }

    fn session_key(&self, tenant: &str, user: &str, session: &str) -> String {
        self.user_key(tenant, user, &format!("session:{}", esc(session)))
    }

    fn keys(&self, tenant: &str, user: &str, session: &str) -> Vec<String> {
        vec![
            self.user_key(tenant, user, "devices"),
            self.user_key(tenant, user, "countries"),
            self.user_key(tenant, user, "last"),
            self.user_key(tenant, user, "accesses"),
            self.session_key(tenant, user, session),
            // A scratch key in the user's slot (the commit sorts a history past its bound in it).
            self.user_key(tenant, user, "scratch"),
        ]
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let d = self.deadline;
        match &self.backend {
            Backend::Single(client) => {
                let c = client
                    .get_connection_with_timeout(d)
                    .map_err(|e| fail(&e, d))?;
                c.set_read_timeout(Some(d)).map_err(|e| fail(&e, d))?;
                c.set_write_timeout(Some(d)).map_err(|e| fail(&e, d))?;
                Ok(Conn::Single(c))
            }
            Backend::Cluster { client, .. } => {
                let c = client.get_connection().map_err(|e| fail(&e, d))?;
                c.set_read_timeout(Some(d)).map_err(|e| fail(&e, d))?;
                c.set_write_timeout(Some(d)).map_err(|e| fail(&e, d))?;
                Ok(Conn::Cluster(Box::new(c)))
            }
        }
    }

    /// Runs `f` on a pooled connection. A connection that failed may have a reply in flight: it
    /// is dropped, never returned to the pool.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .idle
            .lock()
            .map_err(|_| StoreError::Unavailable("redis pool lock poisoned".into()))?
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(conn.as_dyn()).map_err(|e| fail(&e, self.deadline))?;
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
        Ok(out)
    }
}

impl Store for RedisStore {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        let keys = self.keys(tenant, user, session);
        let (devices, countries, last, accesses, sess, version): Loaded =
            self.with_conn(|c| eval(LOAD, &keys).query(c))?;
        let last_sign_in: Option<LastSignIn> = match last {
            Some(b) => Some(serde_json::from_slice(&b).map_err(|e| corrupt("last sign-in", e))?),
            None => None,
        };
        let history = UserHistory {
            devices: devices.into_iter().collect(),
            countries: parse_ts(countries),
            last_sign_in,
            accesses: parse_ts(accesses),
        };
        Ok((history, session_of(sess, version)?))
    }

    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        let keys = self.keys(tenant, user, session);
        // As text: the script compares it with the stored text, exactly.
        let expected = state.map_or_else(String::new, |s| s.version.to_string());
        let session_json = match state {
            Some(s) => {
                let mut next = s.clone();
                next.version = s.version.wrapping_add(1);
                serde_json::to_string(&next).map_err(|e| corrupt("session", e))?
            }
            None => String::new(),
        };
        let mut u = update.cloned().unwrap_or_default();
        // A name longer than a history learns is not learned (as `HistoryUpdate::apply`).
        let learnable = |name: &str| name.len() <= MAX_LEARNED_BYTES;
        u.device = u.device.filter(|d| learnable(d));
        u.country = u.country.filter(|(c, _)| learnable(c));
        u.access = u.access.filter(|(r, _)| learnable(r));
        // Only a sign-in with a place is a travel reference (as `HistoryUpdate::apply`): one
        // without would make the next sign-in's travel unknown-free (no reference, false).
        u.last_sign_in = u
            .last_sign_in
            .filter(|l| l.location.is_some_and(|p| p.is_valid()));
        let last = match &u.last_sign_in {
            Some(l) => Some(serde_json::to_string(l).map_err(|e| corrupt("last sign-in", e))?),
            None => None,
        };
        let mut cmd = eval(COMMIT, &keys);
        cmd.arg(self.retention_secs)
            .arg(expected)
            .arg(session_json)
            .arg(opt(u.device.as_deref()))
            .arg(opt(u.country.as_ref().map(|(c, _)| c.as_str())))
            .arg(u.country.as_ref().map_or(0, |(_, at)| at.0))
            .arg(opt(last.as_deref()))
            .arg(u.last_sign_in.as_ref().map_or(0, |l| l.at.0))
            .arg(opt(u.access.as_ref().map(|(r, _)| r.as_str())))
            .arg(u.access.as_ref().map_or(0, |(_, at)| at.0))
            .arg(MAX_DEVICES)
            .arg(MAX_COUNTRIES)
            .arg(MAX_ACCESSES)
            .arg(stepup_engine::risk::HISTORY_CLOCK_SKEW_SECS);
        let done: i64 = self.with_conn(|c| cmd.query(c))?;
        if done == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                expected: state.map_or(0, |s| s.version),
            })
        }
    }

    fn put_history(&self, tenant: &str, user: &str, h: &UserHistory) -> Result<(), StoreError> {
        let keys = self.keys(tenant, user, "");
        let json = |v: &dyn erased::Json| v.to_json().map_err(|e| corrupt("history", e));
        let times = |m: &std::collections::BTreeMap<String, Timestamp>| {
            m.iter()
                .map(|(k, t)| (k.clone(), t.0))
                .collect::<std::collections::BTreeMap<String, i64>>()
        };
        let last = match &h.last_sign_in {
            Some(l) => Some(serde_json::to_string(l).map_err(|e| corrupt("last sign-in", e))?),
            None => None,
        };
        let mut cmd = eval(PUT_HISTORY, keys.get(..4).unwrap_or(&keys));
        cmd.arg(self.retention_secs)
            .arg(json(&h.devices.iter().collect::<Vec<_>>())?)
            .arg(json(&times(&h.countries))?)
            .arg(opt(last.as_deref()))
            .arg(json(&times(&h.accesses))?)
            .arg(h.last_sign_in.as_ref().map_or(0, |l| l.at.0));
        self.with_conn(|c| cmd.query::<i64>(c)).map(|_| ())
    }

    /// The session afresh, committed over the version it was read at (another instance's
    /// write in between: read again), with what it recorded as spent still spent (as the
    /// memory and disk stores reset it; a review found the spent authentications dropped).
    /// (Only the session's key is read and written: a reset does not depend on the history.)
    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
        let keys = [self.session_key(tenant, user, session)];
        let mut last = 0;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let (json, version): (Option<Vec<u8>>, Option<String>) =
                self.with_conn(|c| eval(LOAD_SESSION, &keys).query(c))?;
            let cur = session_of(json, version)?;
            last = cur.version;
            // Redis keeps nothing of expired sessions: the reset forgets this one alone (its
            // json's version is the one it will have, as a commit writes it).
            let fresh = stepup_engine::store::Forgotten::default().reset(Some(&cur));
            let fresh = serde_json::to_string(&fresh).map_err(|e| corrupt("session", e))?;
            let mut cmd = eval(SET_SESSION, &keys);
            cmd.arg(self.retention_secs)
                .arg(cur.version.to_string())
                .arg(fresh);
            let done: i64 = self.with_conn(|c| cmd.query(c))?;
            if done == 1 {
                return Ok(());
            }
        }
        // Written by others at every attempt: nothing was written.
        Err(StoreError::Conflict { expected: last })
    }
}

/// JSON for the values `put_history` sends (sets, maps) without naming their types.
mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<String> {
            serde_json::to_string(self)
        }
    }
}
