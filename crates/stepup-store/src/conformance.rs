//! The conformance suite every store passes (memory, disk, Redis). Each check panics with a
//! message naming the property it broke; the stores' test files call [`run_all`].

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::state::{AuthEvent, HistoryUpdate, LastSignIn, SessionState, UserHistory};
use stepup_engine::{Location, Store};

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
    });
    must(
        store.commit(&t, "alice", "s1", Some(&s), Some(&sample_update(100))),
        "commit",
    );
    let (h, got) = must(store.load(&t, "alice", "s1"), "load after commit");
    check(got == s, "the session reads back as written");
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
