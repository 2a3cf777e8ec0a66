//! The conformance suite every store passes (memory, disk, Redis). Each check panics with a
//! message naming the property it broke; the stores' test files call [`run_all`].

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::state::{AuthEvent, HistoryUpdate, LastSignIn, SessionState, UserHistory};
use stepup_engine::{CompiledSet, DecisionKind, Engine, Event, Location, Request, Store};

#[expect(clippy::panic, reason = "a conformance failure is a test failure")]
fn check(ok: bool, what: &str) {
    if !ok {
        panic!("store conformance: {what}");
    }
}

fn must<T>(r: Result<T, stepup_engine::StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            check(false, &format!("{what}: {e}"));
            #[expect(clippy::unreachable, reason = "check(false) panics")]
            {
                unreachable!()
            }
        }
    }
}

/// Runs every check against `store`, using tenant names prefixed with `ns` (so one Redis can
/// host several runs).
pub fn run_all(store: &dyn Store, ns: &str) {
    empty_is_default(store, ns);
    commit_then_load(store, ns);
    updates_merge(store, ns);
    tenants_are_isolated(store, ns);
    sessions_are_separate(store, ns);
    hostile_names_do_not_collide(store, ns);
    a_stale_commit_conflicts(store, ns);
    a_reset_session_is_empty_and_moves_the_version_on(store, ns);
    a_reset_session_keeps_what_it_spent(store, ns);
    older_evidence_never_replaces_newer(store, ns);
    a_time_too_far_ahead_is_replaced(store, ns);
    histories_are_bounded_as_the_engine_bounds_them(store, ns);
    the_last_sign_in_is_kept_as_the_engine_keeps_it(store, ns);
}

/// The last sign-in (the impossible-travel reference) is replaced as `HistoryUpdate::apply`
/// replaces it: only by a sign-in with a place on Earth, never by an older one, except that a
/// reference without a place is replaced by any sign-in with one. (On Redis a sign-in without a
/// place replaced the reference, and the next sign-in's travel, with no reference, was false.)
fn the_last_sign_in_is_kept_as_the_engine_keeps_it(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-last");
    let at = |secs: i64, place: Option<(f64, f64)>| HistoryUpdate {
        last_sign_in: Some(LastSignIn {
            at: Timestamp(secs),
            country: Some("FR".into()),
            location: place.map(|(lat, lon)| Location { lat, lon }),
        }),
        ..HistoryUpdate::default()
    };
    let mut want = UserHistory {
        last_sign_in: Some(LastSignIn {
            at: Timestamp(500),
            country: None,
            location: None,
        }),
        ..UserHistory::default()
    };
    must(store.put_history(&t, "gus", &want), "put_history");
    let paris = Some((48.85, 2.35));
    for (i, u) in [
        at(100, paris),
        at(50, Some((-33.87, 151.21))),
        at(300, None),
        at(400, Some((408.85, 2.35))),
        at(200, paris),
        at(150, Some((-33.87, 151.21))),
    ]
    .iter()
    .enumerate()
    {
        must(
            store.commit(&t, "gus", "s", None, Some(u)),
            "commit of a sign-in",
        );
        u.apply(&mut want);
        let (h, _) = must(store.load(&t, "gus", "s"), "load of the last sign-in");
        check(
            h.last_sign_in == want.last_sign_in,
            &format!("after update {i}, the last sign-in is the engine's"),
        );
    }
    check(
        want.last_sign_in.as_ref().map(|l| l.at) == Some(Timestamp(200)),
        "the reference is the newest sign-in with a place",
    );
}

/// A history is bounded in every store as `HistoryUpdate::apply` bounds it (64 devices, 64
/// countries, 256 resource classes, names of at most 256 bytes): past each bound the store
/// forgets what `apply` forgets (the first device by name; the entry seen least recently, never
/// one seen after the new one), so that a client cannot grow a user's history (and every load of
/// it) without end, and every store reads back the same history. A commit whose history keys
/// are corrupt writes nothing (Redis does not undo a script's writes on an error).
fn histories_are_bounded_as_the_engine_bounds_them(store: &dyn Store, ns: &str) {
    use stepup_engine::state::{MAX_ACCESSES, MAX_COUNTRIES, MAX_DEVICES, MAX_LEARNED_BYTES};
    let t = format!("{ns}-bounds");
    let mut want = UserHistory::default();
    let long = "x".repeat(MAX_LEARNED_BYTES + 1);
    let mut updates = Vec::new();
    // Times that go back and forth, and names whose order is not their order of arrival.
    for i in 0..(MAX_ACCESSES + 8) {
        let at = Timestamp(1_000 + i64::try_from((i * 37) % 101).unwrap_or(0));
        let name = format!("{:03}-{}", (i * 53) % 300, i);
        updates.push(HistoryUpdate {
            device: (i < MAX_DEVICES + 8).then(|| format!("dev-{name}")),
            country: (i < MAX_COUNTRIES + 8).then(|| (format!("C{name}"), at)),
            last_sign_in: None,
            access: Some((format!("res-{name}"), at)),
        });
    }
    updates.push(HistoryUpdate {
        device: Some(long.clone()),
        country: Some((long.clone(), Timestamp(5_000))),
        last_sign_in: None,
        access: Some((long.clone(), Timestamp(5_000))),
    });
    // A name seen again, later and earlier.
    updates.push(HistoryUpdate {
        country: Some(("C003-1".into(), Timestamp(9_000))),
        ..HistoryUpdate::default()
    });
    for u in &updates {
        must(
            store.commit(&t, "fay", "s", None, Some(u)),
            "commit of a bounded history",
        );
        u.apply(&mut want);
    }
    let (h, _) = must(store.load(&t, "fay", "s"), "load of a bounded history");
    check(
        h.devices.len() == MAX_DEVICES
            && h.countries.len() == MAX_COUNTRIES
            && h.accesses.len() == MAX_ACCESSES,
        "a history keeps at most 64 devices, 64 countries and 256 resource classes",
    );
    check(
        !h.devices.contains(&long)
            && !h.countries.contains_key(&long)
            && !h.accesses.contains_key(&long),
        "a name longer than 256 bytes is never learned",
    );
    check(
        h == want,
        "the store forgets what the engine's own `apply` forgets",
    );
}

fn a_stale_commit_conflicts(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-cas");
    let (_, loaded) = must(store.load(&t, "erin", "s"), "load");
    check(loaded.version == 0, "a new session is at version 0");
    let mut a = loaded.clone();
    a.seq = 1;
    must(
        store.commit(&t, "erin", "s", Some(&a), None),
        "first commit",
    );
    let mut b = loaded;
    b.seq = 2;
    let stale = store.commit(&t, "erin", "s", Some(&b), Some(&sample_update(300)));
    check(
        matches!(
            stale,
            Err(stepup_engine::StoreError::Conflict { expected: 0 })
        ),
        "a commit on a session that changed since it was loaded is refused",
    );
    let (h, now) = must(store.load(&t, "erin", "s"), "load after conflict");
    check(
        now.seq == 1 && now.version == 1,
        "the first commit stands, at version 1",
    );
    check(
        h == UserHistory::default(),
        "a refused commit writes nothing, history included",
    );
    let mut c = now;
    c.seq = 3;
    must(
        store.commit(&t, "erin", "s", Some(&c), None),
        "commit on the fresh version",
    );
    let (_, after) = must(store.load(&t, "erin", "s"), "load");
    check(
        after.seq == 3 && after.version == 2,
        "versions move on by one",
    );
}

fn a_reset_session_is_empty_and_moves_the_version_on(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-reset");
    let (_, s) = must(store.load(&t, "fay", "s"), "load");
    let mut s1 = s.clone();
    s1.seq = 9;
    must(store.commit(&t, "fay", "s", Some(&s1), None), "commit");
    must(store.reset_session(&t, "fay", "s"), "reset");
    let (_, fresh) = must(store.load(&t, "fay", "s"), "load after reset");
    check(
        fresh.seq == 0 && fresh.events.is_empty(),
        "a reset session is empty",
    );
    check(fresh.version > 1, "a reset moves the version on");
    let mut stale = s1;
    stale.version = 1;
    check(
        store.commit(&t, "fay", "s", Some(&stale), None).is_err(),
        "a decision made before the reset cannot commit",
    );
}

fn older_evidence_never_replaces_newer(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-order");
    must(
        store.commit(&t, "gus", "s", None, Some(&sample_update(500))),
        "newer first",
    );
    must(
        store.commit(&t, "gus", "s", None, Some(&sample_update(400))),
        "older second",
    );
    let (h, _) = must(store.load(&t, "gus", "s"), "load");
    check(
        h.countries.get("FR") == Some(&Timestamp(500))
            && h.accesses.get("payments") == Some(&Timestamp(500))
            && h.last_sign_in.as_ref().map(|l| l.at) == Some(Timestamp(500)),
        "times only move forward, whatever order concurrent commits land in",
    );
}

/// A time dated later than the clocks' skew allows is no evidence (`risk::age`): the next
/// update's own time replaces it — countries, accesses and the last sign-in alike, on every
/// store (on Redis the merge is a script of its own). Within the skew, times only move forward.
fn a_time_too_far_ahead_is_replaced(store: &dyn Store, ns: &str) {
    let skew = stepup_engine::risk::HISTORY_CLOCK_SKEW_SECS;
    let t = format!("{ns}-ahead");
    must(
        store.commit(&t, "ida", "s", None, Some(&sample_update(100_000))),
        "a history dated ahead",
    );
    must(
        store.commit(
            &t,
            "ida",
            "s",
            None,
            Some(&sample_update(100_000 - skew - 1)),
        ),
        "an update now",
    );
    let (h, _) = must(store.load(&t, "ida", "s"), "load");
    let now = Timestamp(100_000 - skew - 1);
    check(
        h.countries.get("FR") == Some(&now)
            && h.accesses.get("payments") == Some(&now)
            && h.last_sign_in.as_ref().map(|l| l.at) == Some(now),
        "a time further ahead than the skew is replaced by the update's",
    );
    must(
        store.commit(&t, "ida", "s", None, Some(&sample_update(now.0 - skew))),
        "an update within the skew",
    );
    let (h, _) = must(store.load(&t, "ida", "s"), "load");
    check(
        h.countries.get("FR") == Some(&now)
            && h.accesses.get("payments") == Some(&now)
            && h.last_sign_in.as_ref().map(|l| l.at) == Some(now),
        "within the skew, an older time does not replace a newer one",
    );
}

/// The rules of the races: one `every time` operation.
fn race_rules(tenant: &str) -> String {
    format!(
        "tenant {tenant} {{\n  operation pay sensitive\n  attribute amount: number\n  \
         policy pay \"Confirm this payment.\" {{ when operation == pay require aal2 every time }}\n}}\n"
    )
}

fn race_req(tenant: &str, user: &str, session: &str, now: i64, event: Event) -> Request {
    Request {
        tenant: tenant.into(),
        application: "".into(),
        user: user.into(),
        enrolled: [Factor::Password, Factor::Totp].into_iter().collect(),
        session: session.into(),
        event,
        now: Timestamp(now),
    }
}

fn pay() -> Event {
    Event::Operation {
        name: "pay".into(),
        attrs: vec![("amount".into(), stepup_engine::Value::Number(10.0))],
        context: None,
    }
}

fn totp() -> Event {
    Event::StepUp {
        factor: Factor::Totp,
        success: true,
    }
}

fn sign_in(device: &str) -> Event {
    Event::SignIn {
        context: stepup_engine::Context {
            device: Some(device.into()),
            ..stepup_engine::Context::default()
        },
        factors: FactorSet::one(Factor::Password),
    }
}

/// Runs `threads` copies of `req` at the same moment; returns how many were allowed.
fn race(engine: &Engine, store: &dyn Store, threads: usize, req: &Request) -> usize {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    engine.process(store, req, false).succeeded()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap_or(false)))
            .sum()
    })
}

/// The engine of the races: one `every time` operation in tenant `{ns}_race`.
///
/// # Errors
/// When the rules do not compile (a bug of this suite).
pub fn race_engine(ns: &str) -> Result<Engine, String> {
    CompiledSet::from_text("race.policy", &race_rules(&race_tenant(ns)))
        .map(Engine::new)
        .map_err(|e| e.to_string())
}

fn race_tenant(ns: &str) -> String {
    format!("{ns}_race")
}

/// Signs users `u0..u{count}` in and leaves each with one open challenge (a payment).
pub fn prepare_races(engine: &Engine, store: &dyn Store, ns: &str, count: usize) {
    let tenant = race_tenant(ns);
    for r in 0..count {
        let user = format!("u{r}");
        let d = engine.process(
            store,
            &race_req(&tenant, &user, "s", 1_000, sign_in("d")),
            false,
        );
        check(d.succeeded(), "the race's sign-in is allowed");
        let d = engine.process(store, &race_req(&tenant, &user, "s", 1_001, pay()), false);
        check(d.kind == DecisionKind::StepUp, "the payment steps up");
    }
}

/// Which race: completing the open challenge, or spending the grant it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Race {
    /// `threads` step-ups answer one challenge.
    Complete,
    /// `threads` retries of the payment spend one `every time` grant.
    Spend,
}

/// Runs one kind of race for users `u0..u{count}`, `threads` requests at the same moment per
/// user; returns how many requests won, per user (exactly one must, across every thread and
/// process that races).
pub fn run_races(
    engine: &Engine,
    store: &dyn Store,
    ns: &str,
    count: usize,
    threads: usize,
    which: Race,
) -> Vec<usize> {
    let tenant = race_tenant(ns);
    (0..count)
        .map(|r| {
            let user = format!("u{r}");
            let (at, event) = match which {
                Race::Complete => (1_002, totp()),
                Race::Spend => (1_003, pay()),
            };
            race(
                engine,
                store,
                threads,
                &race_req(&tenant, &user, "s", at, event),
            )
        })
        .collect()
}

/// Single use under concurrency (SPEC §10): `threads` requests race, `races` times, to complete
/// one challenge and then to spend one `every time` grant; exactly one wins each race. Two
/// sign-ins of one user from two devices at the same moment both leave their device learned.
pub fn races(store: &dyn Store, ns: &str, races: usize, threads: usize) {
    let tenant = race_tenant(ns);
    let engine = match race_engine(ns) {
        Ok(e) => e,
        Err(e) => return check(false, &format!("race rules: {e}")),
    };
    prepare_races(&engine, store, ns, races);
    for which in [Race::Complete, Race::Spend] {
        for (r, won) in run_races(&engine, store, ns, races, threads, which)
            .into_iter()
            .enumerate()
        {
            check(won == 1, &format!("{which:?} race {r}: {won} winners"));
        }
    }
    // Two devices, two sessions, one moment: both learned.
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for (session, device) in [("a", "phone"), ("b", "laptop")] {
            let (engine, barrier, tenant) = (&engine, &barrier, &tenant);
            s.spawn(move || {
                barrier.wait();
                engine.process(
                    store,
                    &race_req(tenant, "two", session, 5_000, sign_in(device)),
                    false,
                )
            });
        }
    });
    let (h, _) = must(
        store.load(&tenant, "two", "a"),
        "load after concurrent sign-ins",
    );
    check(
        h.devices.contains("phone") && h.devices.contains("laptop"),
        "concurrent sign-ins from two devices leave both devices learned",
    );
}

fn empty_is_default(store: &dyn Store, ns: &str) {
    let (h, s) = must(
        store.load(&format!("{ns}-t"), "nobody", "s"),
        "load of an unknown user",
    );
    check(
        h == UserHistory::default() && s == SessionState::default(),
        "an unknown user has an empty history and session",
    );
}

fn sample_update(at: i64) -> HistoryUpdate {
    HistoryUpdate {
        device: Some("laptop-1".into()),
        country: Some(("FR".into(), Timestamp(at))),
        last_sign_in: Some(LastSignIn {
            at: Timestamp(at),
            country: Some("FR".into()),
            location: Some(Location {
                lat: 48.85,
                lon: 2.35,
            }),
        }),
        access: Some(("payments".into(), Timestamp(at))),
    }
}

fn commit_then_load(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-acme");
    let mut s = SessionState::default();
    s.events.push(AuthEvent {
        at: Timestamp(100),
        factors: FactorSet::one(Factor::Password),
        cap: Some(stepup_core::Aal::Aal2),
        unnamed: false,
    });
    must(
        store.commit(&t, "alice", "s1", Some(&s), Some(&sample_update(100))),
        "commit",
    );
    let (h, got) = must(store.load(&t, "alice", "s1"), "load after commit");
    check(
        got == SessionState { version: 1, ..s },
        "the session reads back as written, at the next version",
    );
    check(h.devices.contains("laptop-1"), "the device is remembered");
    check(
        h.countries.get("FR") == Some(&Timestamp(100)),
        "the country is remembered with its time",
    );
    check(
        h.accesses.get("payments") == Some(&Timestamp(100)),
        "the access is remembered",
    );
    check(
        h.last_sign_in.as_ref().map(|l| l.at) == Some(Timestamp(100)),
        "the last sign-in is remembered",
    );
}

fn updates_merge(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-merge");
    must(
        store.commit(&t, "bob", "s", None, Some(&sample_update(100))),
        "first commit",
    );
    let second = HistoryUpdate {
        device: Some("phone-2".into()),
        country: Some(("US".into(), Timestamp(200))),
        ..HistoryUpdate::default()
    };
    must(
        store.commit(&t, "bob", "s", None, Some(&second)),
        "second commit",
    );
    let (h, _) = must(store.load(&t, "bob", "s"), "load");
    check(h.devices.len() == 2, "devices accumulate");
    check(h.countries.len() == 2, "countries accumulate");
    check(
        h.last_sign_in.is_some(),
        "an update without a sign-in keeps the last one",
    );
    let mut seeded = UserHistory::default();
    seeded.devices.insert("only".into());
    must(store.put_history(&t, "bob", &seeded), "put_history");
    let (h, _) = must(store.load(&t, "bob", "s"), "load after put");
    check(h == seeded, "put_history replaces the history");
}

fn tenants_are_isolated(store: &dyn Store, ns: &str) {
    let (a, b) = (format!("{ns}-tenant-a"), format!("{ns}-tenant-b"));
    must(
        store.commit(
            &a,
            "carol",
            "s",
            Some(&SessionState {
                seq: 7,
                ..SessionState::default()
            }),
            Some(&sample_update(5)),
        ),
        "commit in tenant a",
    );
    let (h, s) = must(store.load(&b, "carol", "s"), "load in tenant b");
    check(
        h == UserHistory::default() && s == SessionState::default(),
        "tenant b sees nothing of tenant a",
    );
}

/// A user's sessions are bounded (the memory and disk stores; Redis expires them instead): a
/// new session beyond [`MAX_SESSIONS_PER_USER`] forgets the one written longest ago, which
/// loads as new again (not established: fail closed); a session written again is kept.
pub fn sessions_per_user_are_bounded(store: &dyn Store, ns: &str) {
    use stepup_engine::store::MAX_SESSIONS_PER_USER;
    let t = format!("{ns}-bounded");
    let established = SessionState {
        established: true,
        ..SessionState::default()
    };
    let write = |s: &str| {
        let (_, cur) = must(store.load(&t, "ula", s), "load");
        let next = SessionState {
            version: cur.version,
            ..established.clone()
        };
        must(store.commit(&t, "ula", s, Some(&next), None), "commit");
    };
    for i in 0..MAX_SESSIONS_PER_USER {
        write(&format!("s{i}"));
    }
    // `s0` written again: `s1` is now the one written longest ago.
    write("s0");
    write("new");
    let (_, s1) = must(store.load(&t, "ula", "s1"), "load s1");
    check(
        !s1.established && s1.version > 1,
        "the session written longest ago is forgotten for a new one beyond the bound",
    );
    for s in ["s0", "s2", "new"] {
        let (_, kept) = must(store.load(&t, "ula", s), "load kept");
        check(kept.established, "the sessions written since are kept");
    }
    // Another user's sessions are not counted with these.
    let (_, other) = must(store.load(&t, "vic", "s1"), "load other");
    check(other == SessionState::default(), "another user is apart");
}

/// What a forgotten session leaves (the memory and disk stores): a decision that loaded it
/// before it was forgotten conflicts, never commits over what was written since (a review:
/// forgotten, a session came back at version 0, and a stale commit at its old version passed
/// once it was written again as often); and an authentication it recorded as spent stays spent
/// (the HTTP layer keeps a login's spent authentications as a session: forgotten, one step-up
/// paid in two applications).
pub fn a_forgotten_session_leaves_what_single_use_needs(store: &dyn Store, ns: &str) {
    use stepup_core::Timestamp;
    use stepup_engine::store::MAX_SESSIONS_PER_USER;
    let t = format!("{ns}-forgotten");
    let (_, mut rec) = must(store.load(&t, "ada", "rec"), "load rec");
    rec.use_auth(Timestamp(100), Timestamp(100));
    must(
        store.commit(&t, "ada", "rec", Some(&rec), None),
        "commit rec",
    );
    // Decision A loads it, and waits.
    let (_, stale) = must(store.load(&t, "ada", "rec"), "load rec again");
    check(stale.used(Timestamp(100)), "the authentication is spent");
    for i in 0..MAX_SESSIONS_PER_USER {
        let (_, o) = must(store.load(&t, "ada", &format!("o{i}")), "load other");
        must(
            store.commit(&t, "ada", &format!("o{i}"), Some(&o), None),
            "commit other",
        );
    }
    let (_, back) = must(store.load(&t, "ada", "rec"), "load forgotten");
    check(
        !back.established && back.version > stale.version,
        "a forgotten session is new again, at a version above its last",
    );
    check(
        back.used(Timestamp(100)) && back.used(Timestamp(99)),
        "what a forgotten session recorded as spent stays spent",
    );
    check(
        !back.used(Timestamp(101)),
        "a later authentication is not spent",
    );
    // Decision B writes it again, as often as A's version: A's commit conflicts.
    for _ in 0..=stale.version {
        let (_, b) = must(store.load(&t, "ada", "rec"), "load for B");
        must(store.commit(&t, "ada", "rec", Some(&b), None), "commit B");
    }
    check(
        matches!(
            store.commit(&t, "ada", "rec", Some(&stale), None),
            Err(stepup_engine::StoreError::Conflict { .. })
        ),
        "a commit on a version loaded before the session was forgotten conflicts",
    );
    // A session never written before is absent the same way.
    let (_, fresh) = must(store.load(&t, "ada", "never"), "load never");
    check(
        fresh.used(Timestamp(100)),
        "spent for every session of the user",
    );
    must(
        store.commit(&t, "ada", "never", Some(&fresh), None),
        "an absent session commits at the version it loads at",
    );
    // Another user is apart.
    let (_, other) = must(store.load(&t, "bob", "rec"), "load other user");
    check(other == SessionState::default(), "another user is apart");
}

/// A reset session starts afresh (not established, no grant, no challenge), at a version above
/// its last, with the authentications it recorded as spent still spent (a review: a reset
/// forgot them, and one step-up could pay again).
fn a_reset_session_keeps_what_it_spent(store: &dyn Store, ns: &str) {
    use stepup_core::Timestamp;
    let t = format!("{ns}-reset-spent");
    let (_, mut own) = must(store.load(&t, "ada", "own"), "load own");
    own.use_auth(Timestamp(500), Timestamp(500));
    own.established = true;
    must(
        store.commit(&t, "ada", "own", Some(&own), None),
        "commit own",
    );
    let (_, before) = must(store.load(&t, "ada", "own"), "load own again");
    must(store.reset_session(&t, "ada", "own"), "reset own");
    let (_, reset) = must(store.load(&t, "ada", "own"), "load reset");
    check(
        reset.used(Timestamp(500)) && !reset.used(Timestamp(501)),
        "a reset session keeps what it recorded as spent",
    );
    check(
        reset.version > before.version && !reset.established,
        "a reset session is new, at a version above its last",
    );
    check(
        matches!(
            store.commit(&t, "ada", "own", Some(&before), None),
            Err(stepup_engine::StoreError::Conflict { .. })
        ),
        "a commit on a version loaded before the reset conflicts",
    );
}

fn sessions_are_separate(store: &dyn Store, ns: &str) {
    let t = format!("{ns}-sessions");
    must(
        store.commit(
            &t,
            "dan",
            "s1",
            Some(&SessionState {
                seq: 1,
                ..SessionState::default()
            }),
            None,
        ),
        "commit s1",
    );
    let (_, s2) = must(store.load(&t, "dan", "s2"), "load s2");
    check(s2 == SessionState::default(), "sessions do not share state");
}

fn hostile_names_do_not_collide(store: &dyn Store, ns: &str) {
    // "a:b" + "c" must not meet "a" + "b:c", whatever the key scheme.
    let (t1, t2) = (format!("{ns}-x:y"), format!("{ns}-x"));
    must(
        store.commit(&t1, "z", "s", None, Some(&sample_update(1))),
        "commit hostile",
    );
    let (h, _) = must(store.load(&t2, "y:z", "s"), "load hostile");
    check(
        h == UserHistory::default(),
        "names with separators cannot reach another tenant's keys",
    );
}
