//! The conformance suite on every store, the shared-Redis story, a Redis outage, and a crash of
//! a process writing to the disk store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::decision::DenyReason;
use stepup_engine::state::{HistoryUpdate, SessionState};
use stepup_engine::{
    CompiledSet, Context, DecisionKind, Engine, Event, MemoryStore, Request, Store, StoreError,
};
use stepup_store::conformance::{
    Race, a_forgotten_session_leaves_what_single_use_needs, prepare_races, race_engine, races,
    run_all, run_races, sessions_per_user_are_bounded,
};
use stepup_store::{DiskStore, RedisStore};

/// A store on `url` whose calls wait long enough for a loaded test machine (these tests are of
/// behaviour; the deadline's own tests set theirs): the default 250 ms was missed once under
/// load by a newly started server, and a refused load reads as a `deny`.
fn patient_redis(url: &str) -> RedisStore {
    RedisStore::new(url)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_deadline(std::time::Duration::from_secs(5))
}

/// A Redis server of the test's own, a store on it, and a connection to read and write its keys
/// directly (the server stops when it is dropped).
fn redis_with_connection() -> (common::RedisServer, RedisStore, redis::Connection) {
    let server = common::RedisServer::start();
    let store = patient_redis(&server.url());
    let client = redis::Client::open(server.url()).unwrap_or_else(|e| panic!("{e}"));
    let c = client.get_connection().unwrap_or_else(|e| panic!("{e}"));
    (server, store, c)
}

#[test]
fn memory_store_conforms() {
    run_all(&MemoryStore::new(), "mem");
    sessions_per_user_are_bounded(&MemoryStore::new(), "mem");
    a_forgotten_session_leaves_what_single_use_needs(&MemoryStore::new(), "mem");
}

#[test]
fn the_services_memory_store_conforms() {
    run_all(&stepup_store::MemoryStore::new(), "svc-mem");
}

#[test]
fn disk_store_conforms() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = DiskStore::open(&dir.path().join("h.redb")).unwrap_or_else(|e| panic!("{e}"));
    run_all(&store, "disk");
    sessions_per_user_are_bounded(&store, "disk");
    a_forgotten_session_leaves_what_single_use_needs(&store, "disk");
}

#[test]
fn redis_store_conforms() {
    let server = common::RedisServer::start();
    let store = patient_redis(&server.url());
    run_all(&store, "redis");
}

/// Races per store: each is 8 requests at the same moment, to complete one challenge and then
/// to spend one `every time` grant.
const RACES: usize = 1_000;
const THREADS: usize = 8;

#[test]
fn redis_cluster_conforms_and_keeps_single_use_under_races() {
    let cluster = common::RedisCluster::start();
    let store = RedisStore::new(&cluster.url())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_deadline(Duration::from_secs(2));
    assert!(store.is_cluster());
    run_all(&store, "cluster");
    races(&store, "cluster", RACES, THREADS);
    // The users' keys are spread over the three masters (hash tags are per user, not global).
    let mut masters_with_keys = 0;
    for node in &cluster.nodes {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut c = client.get_connection().unwrap_or_else(|e| panic!("{e}"));
        let n: i64 = redis::cmd("DBSIZE")
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{e}"));
        masters_with_keys += usize::from(n > 0);
    }
    assert_eq!(masters_with_keys, 3, "every master holds some users");
}

#[test]
fn memory_store_single_use_under_races() {
    races(&MemoryStore::new(), "mem", RACES, THREADS);
}

#[test]
fn the_services_memory_store_keeps_single_use_under_races() {
    races(&stepup_store::MemoryStore::new(), "svcmem", RACES, THREADS);
}

#[test]
fn disk_store_single_use_under_races() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = DiskStore::open(&dir.path().join("h.redb")).unwrap_or_else(|e| panic!("{e}"));
    races(&store, "disk", RACES, THREADS);
}

#[test]
fn redis_store_single_use_under_races() {
    let server = common::RedisServer::start();
    let store = RedisStore::new(&server.url())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_deadline(Duration::from_secs(2));
    races(&store, "redis", RACES, THREADS);
}

const RULES: &str = "tenant acme {\n  operation change_email sensitive\n  policy new_device_sign_in \"You're signing in from a new device — let's verify.\" { when new_device require aal2 }\n}\n";

fn sign_in(session: &str, device: &str, now: i64) -> Request {
    Request {
        tenant: "acme".into(),
        application: "".into(),
        user: "alice".into(),
        enrolled: [Factor::Password, Factor::Totp]
            .into_iter()
            .collect::<FactorSet>(),
        session: session.into(),
        event: Event::SignIn {
            context: Context {
                device: Some(device.into()),
                ..Context::default()
            },
            factors: FactorSet::one(Factor::Password),
        },
        now: Timestamp(now),
    }
}

/// The user answers the open challenge with TOTP.
fn totp(session: &str, now: i64) -> Request {
    Request {
        event: Event::StepUp {
            factor: Factor::Totp,
            success: true,
        },
        ..sign_in(session, "-", now)
    }
}

fn engine() -> Engine {
    Engine::new(CompiledSet::from_text("acme.policy", RULES).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn two_engines_sharing_one_redis_see_each_others_history() {
    let server = common::RedisServer::start();
    let (a, b) = (engine(), engine());
    let (sa, sb) = (patient_redis(&server.url()), patient_redis(&server.url()));
    let d = a.process(&sa, &sign_in("s1", "phone-1", 1_000), false);
    assert_eq!(
        d.kind,
        DecisionKind::StepUp,
        "instance A: the device is new"
    );
    let done = a.process(&sa, &totp("s1", 1_010), false);
    assert_eq!(done.kind, DecisionKind::Completed);
    let d = b.process(&sb, &sign_in("s2", "phone-1", 2_000), false);
    assert_eq!(
        d.kind,
        DecisionKind::Allow,
        "instance B no longer calls the device new"
    );
}

#[test]
fn a_redis_outage_fails_closed_and_recovers() {
    let mut server = common::RedisServer::start();
    let port = server.port;
    let e = engine();
    let store = RedisStore::new(&server.url())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_deadline(Duration::from_millis(200));
    // Teach the device, through a store patient enough that a loaded machine cannot fail the
    // set-up (the short deadline is what the outage is judged on).
    let patient = RedisStore::new(&server.url())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_deadline(Duration::from_secs(10));
    e.process(&patient, &sign_in("s1", "laptop", 1_000), false);
    e.process(&patient, &totp("s1", 1_010), false);
    assert_eq!(
        e.process(&patient, &sign_in("s2", "laptop", 1_100), false)
            .kind,
        DecisionKind::Allow
    );
    assert_eq!(
        e.process(&store, &sign_in("s2", "laptop", 1_150), false)
            .kind,
        DecisionKind::Allow,
        "the store under test answers before the outage"
    );
    server.stop();
    let d = e.process(&store, &sign_in("s3", "laptop", 1_200), true);
    assert_eq!(
        (d.kind, d.deny),
        (DecisionKind::Deny, Some(DenyReason::StoreUnavailable)),
        "store down: the session cannot be read, so nothing is allowed"
    );
    assert!(
        d.errors.iter().any(|m| m.contains("unavailable")),
        "{:?}",
        d.errors
    );
    assert!(
        !d.audit.is_empty() && d.audit.iter().all(|a| !a.errors.is_empty()),
        "the audit record says so"
    );
    let _server = common::RedisServer::start_on(port);
    // History was in memory of the old server (no persistence): the device is new again, but the
    // store answers by itself (a call timed out on a loaded machine is asked again; a refusal is
    // never an allow), and what is learned now sticks.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let d = loop {
        let d = e.process(&store, &sign_in("s4", "laptop", 1_300), false);
        if d.deny != Some(DenyReason::StoreUnavailable) || std::time::Instant::now() > until {
            break d;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(d.errors.is_empty(), "recovered: {:?}", d.errors);
    // (The patient store's pooled connection went with the old server.)
    let patient = RedisStore::new(&server.url())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_deadline(Duration::from_secs(10));
    e.process(&patient, &totp("s4", 1_310), false);
    assert_eq!(
        e.process(&patient, &sign_in("s5", "laptop", 1_400), false)
            .kind,
        DecisionKind::Allow
    );
}

#[test]
fn undecodable_data_fails_closed() {
    let (_server, store, mut c) = redis_with_connection();
    let _: () = redis::cmd("HSET")
        .arg("{stepup:acme:alice}:last")
        .arg("json")
        .arg("{not json")
        .query(&mut c)
        .unwrap_or_else(|e| panic!("{e}"));
    let d = engine().process(&store, &sign_in("s", "laptop", 10), false);
    assert_eq!(d.deny, Some(DenyReason::StoreUnavailable));
    assert!(
        d.errors.iter().any(|m| m.contains("undecodable")),
        "{:?}",
        d.errors
    );
}

/// A commit that fails on a corrupt key writes nothing: Redis does not undo the writes a script
/// made before its error, so the commit reads and checks every key first. (A review found the
/// device of a failed commit learned: `SADD` ran, then the last sign-in's time failed to
/// parse.) Also a key of the wrong type, and a corrupt country time.
#[test]
fn a_commit_that_fails_on_a_corrupt_key_writes_nothing() {
    use stepup_engine::state::{HistoryUpdate, LastSignIn};
    let (_server, store, mut c) = redis_with_connection();
    let update = HistoryUpdate {
        device: Some("attacker-laptop".into()),
        country: Some(("NZ".into(), stepup_core::Timestamp(50))),
        last_sign_in: Some(LastSignIn {
            at: stepup_core::Timestamp(50),
            country: None,
            location: Some(stepup_engine::Location {
                lat: 48.85,
                lon: 2.35,
            }),
        }),
        access: Some(("payments".into(), stepup_core::Timestamp(50))),
    };
    let corruptions: [(&str, &[&str]); 4] = [
        ("HSET", &["{stepup:acme:alice}:last", "at", "not-a-time"]),
        (
            "HSET",
            &["{stepup:acme:alice}:countries", "FR", "yesterday"],
        ),
        ("SET", &["{stepup:acme:alice}:accesses", "a string"]),
        ("HSET", &["{stepup:acme:alice}:accesses", "reports", "nan"]),
    ];
    for (cmd, args) in corruptions {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{e}"));
        let _: () = redis::cmd(cmd)
            .arg(args)
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{e}"));
        let session = stepup_engine::SessionState::default();
        let r = store.commit("acme", "alice", "s", Some(&session), Some(&update));
        assert!(r.is_err(), "{args:?}: {r:?}");
        let devices: Vec<String> = redis::cmd("SMEMBERS")
            .arg("{stepup:acme:alice}:devices")
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(devices.is_empty(), "{args:?}: {devices:?}");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.len(), 1, "{args:?}: only the corrupt key: {keys:?}");
    }
}

const SESSION_KEY: &str = "{stepup:acme:alice}:session:s";

fn stored_version(c: &mut redis::Connection) -> Option<String> {
    redis::cmd("HGET")
        .arg(SESSION_KEY)
        .arg("v")
        .query(c)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn stored_devices(c: &mut redis::Connection) -> Vec<String> {
    redis::cmd("SMEMBERS")
        .arg("{stepup:acme:alice}:devices")
        .query(c)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Writes a session whose version field is `v`, as text, over a flushed server.
fn put_version(c: &mut redis::Connection, v: &str) {
    let _: () = redis::cmd("FLUSHALL")
        .query(c)
        .unwrap_or_else(|e| panic!("{e}"));
    let _: () = redis::cmd("HSET")
        .arg(SESSION_KEY)
        .arg("v")
        .arg(v)
        .arg("json")
        .arg(serde_json::to_string(&SessionState::default()).unwrap())
        .query(c)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Two decisions loaded on one session version: one commits, the other conflicts, at any
/// version up to Redis's greatest integer. (A review found the versions compared and bumped as
/// Lua numbers, doubles: from 2^53 on `v + 1 == v`, so both commits passed and a challenge or a
/// grant could be used twice; from 10^17 the version was stored as `1e+17` and every later load
/// failed.) A reset bumps such a version exactly too.
#[test]
fn a_session_version_past_two_to_the_53_is_compared_and_bumped_exactly() {
    let (_server, store, mut c) = redis_with_connection();
    for (v, next) in [
        ("9007199254740992", "9007199254740993"),
        ("99999999999999999", "100000000000000000"),
        ("9223372036854775806", "9223372036854775807"),
    ] {
        put_version(&mut c, v);
        let (_, a) = store
            .load("acme", "alice", "s")
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, b) = store
            .load("acme", "alice", "s")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.version.to_string(), v);
        assert_eq!(store.commit("acme", "alice", "s", Some(&a), None), Ok(()));
        assert_eq!(
            store.commit("acme", "alice", "s", Some(&b), None),
            Err(StoreError::Conflict {
                expected: b.version
            }),
            "v = {v}: the second decision on one loaded version"
        );
        assert_eq!(stored_version(&mut c).as_deref(), Some(next), "v = {v}");
        let (_, after) = store
            .load("acme", "alice", "s")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(after.version.to_string(), next);

        put_version(&mut c, v);
        store
            .reset_session("acme", "alice", "s")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            stored_version(&mut c).as_deref(),
            Some(next),
            "reset at {v}"
        );
    }
}

/// A session version the store did not write (not decimal digits, a leading zero, past a
/// `u64`) is corrupt: the load refuses, and a commit or a reset refuses with nothing written.
/// So is one at Redis's greatest integer, or past it, which no commit can bump: the refusal
/// comes before the history's writes (`HINCRBY` failing after them would be a failed commit
/// that wrote).
#[test]
fn a_session_version_the_store_did_not_write_or_cannot_bump_is_refused_with_nothing_written() {
    let (_server, store, mut c) = redis_with_connection();
    let update = HistoryUpdate {
        device: Some("attacker-laptop".into()),
        ..HistoryUpdate::default()
    };
    let corrupt = [
        "1e+17",
        "-1",
        "007",
        " 5",
        "5.0",
        "",
        "18446744073709551616",
    ];
    let greatest = ["9223372036854775807", "18446744073709551615"];
    for v in corrupt.into_iter().chain(greatest) {
        put_version(&mut c, v);
        let loaded = store.load("acme", "alice", "s");
        if corrupt.contains(&v) {
            assert!(
                matches!(loaded, Err(StoreError::Corrupt(_))),
                "v = {v:?}: {loaded:?}"
            );
        } else {
            assert_eq!(
                loaded.map(|(_, s)| s.version.to_string()),
                Ok(v.to_string())
            );
        }
        // The version a caller may hold: the stored one when it reads as one, else any.
        let held = SessionState {
            version: v.parse().unwrap_or(0),
            ..SessionState::default()
        };
        let r = store.commit("acme", "alice", "s", Some(&held), Some(&update));
        assert!(r.is_err(), "v = {v:?}: {r:?}");
        assert!(stored_devices(&mut c).is_empty(), "v = {v:?}");
        assert_eq!(stored_version(&mut c).as_deref(), Some(v));
        let r = store.reset_session("acme", "alice", "s");
        assert!(r.is_err(), "v = {v:?}: {r:?}");
        assert_eq!(stored_version(&mut c).as_deref(), Some(v));
    }
}

/// A retention shorter than a day is made a day (a review: with 2 seconds, the HTTP layer's
/// record of a login's spent step-ups expired while its challenge could still be completed, and
/// a session came back at version 0 under a decision that had loaded it).
#[test]
fn a_retention_shorter_than_a_day_is_a_day() {
    use stepup_store::redis_store::MIN_RETENTION_SECS;
    let (_server, store, mut c) = redis_with_connection();
    let store = store.with_retention(2);
    assert_eq!(
        store.commit("acme", "alice", "s", Some(&SessionState::default()), None),
        Ok(())
    );
    let ttl = ttl_of(&mut c, SESSION_KEY);
    let min = i64::try_from(MIN_RETENTION_SECS).unwrap();
    assert!(min - 60 < ttl && ttl <= min, "{ttl}");
}

/// The time `key` has left to live, in seconds.
fn ttl_of(c: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query(c)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A retention meant as "forever" (`u64::MAX`) is cut to [`MAX_RETENTION_SECS`], and a commit
/// with it works. (A review found `EXPIRE` refusing it after the commit's `SADD` had run: the
/// commit failed and the device was learned anyway.)
#[test]
fn a_retention_meant_as_forever_is_capped_and_commits_whole() {
    use stepup_store::redis_store::MAX_RETENTION_SECS;
    let (_server, store, mut c) = redis_with_connection();
    let store = store.with_retention(u64::MAX);
    let update = HistoryUpdate {
        device: Some("laptop".into()),
        country: Some(("NZ".into(), Timestamp(50))),
        ..HistoryUpdate::default()
    };
    assert_eq!(
        store.commit(
            "acme",
            "alice",
            "s",
            Some(&SessionState::default()),
            Some(&update)
        ),
        Ok(())
    );
    assert_eq!(stored_devices(&mut c), ["laptop"]);
    for key in ["{stepup:acme:alice}:devices", SESSION_KEY] {
        let ttl = ttl_of(&mut c, key);
        let max = i64::try_from(MAX_RETENTION_SECS).unwrap();
        assert!(max - 60 < ttl && ttl <= max, "{key}: {ttl}");
    }
    store
        .reset_session("acme", "alice", "s")
        .unwrap_or_else(|e| panic!("{e}"));
    let (history, _) = store
        .load("acme", "alice", "s")
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .put_history("acme", "alice", &history)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A history written before the bound (thousands of devices and countries, long names sharing
/// a prefix) is cut to the bound by its next commit, forgetting what `HistoryUpdate::apply`
/// forgets, in one sort (a review's first version of the trim compared names byte by byte, once
/// per forgotten name: 3,000 such devices held Redis for minutes).
#[test]
fn a_history_written_before_the_bound_is_cut_to_it_by_its_next_commit() {
    use stepup_engine::state::{HistoryUpdate, MAX_COUNTRIES, MAX_DEVICES};
    let (_server, store, mut c) = redis_with_connection();
    let prefix = "x".repeat(250);
    let mut legacy = stepup_engine::UserHistory::default();
    let mut sadd = redis::cmd("SADD");
    sadd.arg("{stepup:acme:alice}:devices");
    let mut hset = redis::cmd("HSET");
    hset.arg("{stepup:acme:alice}:countries");
    for i in 0..3_000 {
        let name = format!("{prefix}{:05}", (i * 7_919) % 3_000);
        sadd.arg(&name);
        hset.arg(&name).arg(1_000 + (i % 5));
        legacy.devices.insert(name.clone());
        legacy
            .countries
            .insert(name, stepup_core::Timestamp(1_000 + i64::from(i % 5)));
    }
    let _: () = sadd.query(&mut c).unwrap_or_else(|e| panic!("{e}"));
    let _: () = hset.query(&mut c).unwrap_or_else(|e| panic!("{e}"));
    // Commits `u`, applies it to the engine's own copy, and reads the store's back.
    let mut commit = |u: HistoryUpdate| {
        store
            .commit("acme", "alice", "s", None, Some(&u))
            .unwrap_or_else(|e| panic!("{e}"));
        u.apply(&mut legacy);
        let (h, _) = store
            .load("acme", "alice", "s")
            .unwrap_or_else(|e| panic!("{e}"));
        (h, legacy.clone())
    };
    let (h, want) = commit(HistoryUpdate {
        device: Some("newdev".into()),
        country: Some(("NZ".into(), stepup_core::Timestamp(2_000))),
        ..HistoryUpdate::default()
    });
    assert_eq!(h.devices.len(), MAX_DEVICES);
    assert_eq!(h.countries.len(), MAX_COUNTRIES);
    assert_eq!(h, want);
    // A country seen before every one left is not learned, and forgets none of them.
    let (h, want) = commit(HistoryUpdate {
        country: Some(("AU".into(), stepup_core::Timestamp(999))),
        ..HistoryUpdate::default()
    });
    assert_eq!(h, want);
    assert!(!h.countries.contains_key("AU"));
}

const RACE_CHILD_ENV: &str = "STEPUP_RACE_CHILD_URL";
const PROCESS_RACES: usize = 300;

/// Not a test on its own: the second process of the two-process race. Waits for `go` before
/// each kind of race and prints its winners per user.
#[test]
fn race_child() {
    let Some(url) = std::env::var_os(RACE_CHILD_ENV) else {
        return;
    };
    let store = RedisStore::new(&url.to_string_lossy())
        .unwrap()
        .with_deadline(Duration::from_secs(2));
    let engine = race_engine("procs").unwrap();
    let mut out = std::io::stdout().lock();
    let mut lines = std::io::stdin().lock().lines();
    for which in [Race::Complete, Race::Spend] {
        let _ = writeln!(out, "ready");
        let _ = out.flush();
        let _go = lines.next();
        let won = run_races(&engine, &store, "procs", PROCESS_RACES, 4, which);
        let _ = writeln!(out, "won {}", serde_json::to_string(&won).unwrap());
        let _ = out.flush();
    }
}

#[test]
fn two_processes_on_one_redis_complete_a_challenge_and_spend_a_grant_once() {
    let server = common::RedisServer::start();
    let store = RedisStore::new(&server.url())
        .unwrap()
        .with_deadline(Duration::from_secs(2));
    let engine = race_engine("procs").unwrap();
    prepare_races(&engine, &store, "procs", PROCESS_RACES);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "race_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(RACE_CHILD_ENV, server.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = |prefix: &str| loop {
        let line = from_child.next().unwrap().unwrap();
        // The harness may print `test race_child ... ` on the same line first.
        if let Some((_, rest)) = line.split_once(prefix) {
            return rest.to_string();
        }
    };
    for which in [Race::Complete, Race::Spend] {
        next_line("ready");
        writeln!(to_child, "go").unwrap();
        let mine = run_races(&engine, &store, "procs", PROCESS_RACES, 4, which);
        let theirs: Vec<usize> = serde_json::from_str(next_line("won ").trim()).unwrap();
        for (r, (a, b)) in mine.iter().zip(&theirs).enumerate() {
            assert_eq!(
                a + b,
                1,
                "{which:?} race {r}: {a} + {b} winners in two processes"
            );
        }
    }
    let _ = child.wait();
}

/// redb holds its file exclusively: a second process (or a second open) cannot write beside
/// the first, so two processes can never both spend one challenge through one file.
#[test]
fn a_disk_store_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.redb");
    let _first = DiskStore::open(&path).unwrap();
    let second = DiskStore::open(&path);
    assert!(
        matches!(second, Err(stepup_engine::StoreError::Unavailable(ref m)) if m.contains("cannot open")),
        "{second:?}"
    );
}

const CHILD_ENV: &str = "STEPUP_CRASH_CHILD_DB";

/// Not a test on its own: the child process of the crash test writes records until killed.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = DiskStore::open(&PathBuf::from(path)).unwrap_or_else(|e| panic!("{e}"));
    let mut out = std::io::stdout().lock();
    for i in 0..1_000_000u64 {
        let s = SessionState {
            seq: i,
            ..SessionState::default()
        };
        // Names in the order of their commits (a full history forgets the first by name: the
        // oldest here), so that commits made after the one the parent waits for, before it
        // kills the child, never forget that one.
        let u = HistoryUpdate {
            device: Some(format!("device-{i:07}")),
            ..HistoryUpdate::default()
        };
        store
            .commit("acme", "writer", &format!("s{i}"), Some(&s), Some(&u))
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = writeln!(out, "committed {i}");
        let _ = out.flush();
    }
}

#[test]
fn a_writer_killed_mid_stream_loses_no_committed_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(n) = line
            .strip_prefix("committed ")
            .and_then(|n| n.parse::<u64>().ok())
        {
            last = Some(n);
            if n >= 150 {
                break;
            }
        }
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let last = last.unwrap_or_else(|| panic!("the child committed nothing"));
    let store = DiskStore::open(&db).unwrap_or_else(|e| panic!("reopen after SIGKILL: {e}"));
    let (h, _) = store
        .load("acme", "writer", "s0")
        .unwrap_or_else(|e| panic!("{e}"));
    // The history holds every device committed, up to as many as it remembers (beyond, it
    // forgets one for each new one): the last committed is there. Each session is intact.
    assert_eq!(
        h.devices.len(),
        usize::try_from(last + 1)
            .unwrap_or(usize::MAX)
            .min(stepup_engine::state::MAX_DEVICES)
    );
    assert!(
        h.devices.contains(&format!("device-{last:07}")),
        "committed record {last} lost"
    );
    // Each session is intact, or forgotten as a whole (a user keeps the latest
    // `MAX_SESSIONS_PER_USER`), and the last committed is kept.
    let mut kept = 0;
    for i in 0..=last {
        let (_, s) = store
            .load("acme", "writer", &format!("s{i}"))
            .unwrap_or_else(|e| panic!("{e}"));
        // (Session 0's own `seq` is 0 as a forgotten session's: intact, it is at version 1.)
        if s.seq == i && (i > 0 || s.version == 1) {
            kept += 1;
        } else {
            // Forgotten: new again.
            assert_eq!(s.seq, 0, "session {i} neither intact nor forgotten");
            assert!(i < last, "session {last} lost");
        }
    }
    assert!(
        (1..=stepup_engine::store::MAX_SESSIONS_PER_USER).contains(&kept),
        "{kept} sessions kept"
    );
    // (A new session is committed at the version it loads at: above the forgotten ones'.)
    let (_, after) = store
        .load("acme", "writer", "after")
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .commit("acme", "writer", "after", Some(&after), None)
        .unwrap_or_else(|e| panic!("usable after crash: {e}"));
}

#[test]
fn a_redis_slower_than_its_deadline_fails_closed() {
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .with_deadline(Duration::from_millis(150));
    let d = engine().process(&store, &sign_in("s", "laptop", 10), false);
    assert_eq!(d.deny, Some(DenyReason::StoreUnavailable), "refused");
    assert!(
        d.errors
            .iter()
            .any(|m| m.contains("timed out after 150 ms")),
        "{:?}",
        d.errors
    );
}

/// A reset reads and writes the session's key only: a damaged history does not stop it (a
/// review: reset through a whole load and commit refused on a history the disk store's reset
/// never reads), and it keeps the session's spent authentications.
#[test]
fn a_redis_reset_reads_only_the_session() {
    let (_server, store, mut c) = redis_with_connection();
    let (_, mut s) = store
        .load("acme", "alice", "s")
        .unwrap_or_else(|e| panic!("{e}"));
    s.use_auth(Timestamp(700), Timestamp(700));
    store
        .commit("acme", "alice", "s", Some(&s), None)
        .unwrap_or_else(|e| panic!("{e}"));
    // The history damaged: a last sign-in that is not one, devices of the wrong type.
    redis::cmd("SET")
        .arg("{stepup:acme:alice}:last")
        .arg("not json")
        .query::<()>(&mut c)
        .unwrap_or_else(|e| panic!("{e}"));
    redis::cmd("SET")
        .arg("{stepup:acme:alice}:devices")
        .arg("not a set")
        .query::<()>(&mut c)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.reset_session("acme", "alice", "s"), Ok(()));
    let (v, json): (String, String) = redis::cmd("HMGET")
        .arg(SESSION_KEY)
        .arg("v")
        .arg("json")
        .query(&mut c)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v, "2");
    let fresh: SessionState = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert!(fresh.used(Timestamp(700)) && !fresh.established, "{json}");
}

/// The disk store's list of a user's sessions (what its forgotten sessions leave) unreadable:
/// a session it does not have cannot be told from a forgotten one, so loading it refuses and a
/// sign-in is denied `store_unavailable` (fail closed), and nothing is committed; a session it
/// has still loads.
#[test]
fn a_disk_stores_damaged_session_list_fails_closed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("list.redb");
    {
        let store = DiskStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let (_, s) = store
            .load("acme", "alice", "kept")
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .commit("acme", "alice", "kept", Some(&s), None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    {
        let db = redb::Database::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let list: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("user_sessions");
        let txn = db.begin_write().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut t = txn.open_table(list).unwrap_or_else(|e| panic!("{e}"));
            t.insert(r#"["acme","alice"]"#, b"{not json".as_slice())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        txn.commit().unwrap_or_else(|e| panic!("{e}"));
    }
    let store = DiskStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        store.load("acme", "alice", "new"),
        Err(stepup_engine::StoreError::Corrupt(_))
    ));
    let d = engine().process(&store, &sign_in("new", "laptop", 10), false);
    assert_eq!(d.deny, Some(DenyReason::StoreUnavailable), "{d:?}");
    let (_, kept) = store
        .load("acme", "alice", "kept")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.version, 1);
    assert!(
        store
            .commit("acme", "alice", "kept", Some(&kept), None)
            .is_err()
    );
}
