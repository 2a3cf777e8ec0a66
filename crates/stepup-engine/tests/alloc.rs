//! No heap allocation on the path that allows: counted with a counting global allocator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::alloc::System;
use std::sync::{Mutex, MutexGuard, PoisonError};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stepup_core::{Factor, Timestamp};
use stepup_engine::{CompiledSet, DecisionKind, Event, Request, State, Value};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The counter is the process's: the tests of this file count one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The lock of the counter, and `rules/` compiled.
fn counting() -> (MutexGuard<'static, ()>, CompiledSet) {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let set =
        CompiledSet::load(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules").into()]).unwrap();
    (one, set)
}

/// Operation `op` of alice's established session, with these attributes.
fn operation(op: &str, attrs: Vec<(String, Value)>) -> Request {
    Request {
        tenant: "acme".into(),
        application: "dashboard".into(),
        user: "alice".into(),
        enrolled: [Factor::Totp].into_iter().collect(),
        session: "s".into(),
        event: Event::Operation {
            name: op.into(),
            attrs,
            context: None,
        },
        now: Timestamp(1_800_000_000),
    }
}

#[test]
fn an_allowed_operation_allocates_nothing() {
    let (_one, set) = counting();
    let state = State::established();
    let reqs: Vec<Request> = ["view_profile", "update_preferences", "payout"]
        .iter()
        .map(|op| operation(op, vec![("amount".into(), Value::Number(10.0))]))
        .collect();
    for r in &reqs {
        assert_eq!(
            set.decide(r, &state, false).kind,
            DecisionKind::Allow,
            "warm-up"
        );
    }
    let region = Region::new(GLOBAL);
    let mut allowed = 0;
    for r in &reqs {
        let d = set.decide(r, &state, false);
        allowed += usize::from(d.kind == DecisionKind::Allow);
        drop(d);
    }
    let change = region.change();
    assert_eq!(allowed, reqs.len());
    assert_eq!(
        change.allocations + change.reallocations,
        0,
        "allocations on the allow path"
    );
}

/// A step-up allocates at most twice (issue 16 asks for four): the session's list of challenges
/// and the audit list. The challenge's id is held in place, the request's names, the policy
/// names and the risk breakdown are shared or copied, and up to four judged policies are listed
/// inline.
#[test]
fn a_step_up_allocates_at_most_twice() {
    let (_one, set) = counting();
    let state = State::established();
    let req = operation("change_email", vec![]);
    let warm = set.decide(&req, &state, false);
    assert_eq!(warm.kind, DecisionKind::StepUp, "warm-up: {warm:?}");
    let region = Region::new(GLOBAL);
    let d = set.decide(&req, &state, false);
    let change = region.change();
    assert_eq!(d.kind, DecisionKind::StepUp);
    assert_eq!(d.audit.len(), 1, "{d:?}");
    assert!(d.challenge_id.is_some() && d.effects.session.is_some());
    drop(d);
    assert!(
        change.allocations + change.reallocations <= 2,
        "allocations on the step-up path: {change:?}"
    );
}
