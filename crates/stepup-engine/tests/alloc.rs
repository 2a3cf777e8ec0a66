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

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stepup_core::{Factor, Timestamp};
use stepup_engine::{CompiledSet, DecisionKind, Event, Request, State, Value};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn an_allowed_operation_allocates_nothing() {
    let set =
        CompiledSet::load(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules").into()]).unwrap();
    let state = State::established();
    let reqs: Vec<Request> = ["view_profile", "update_preferences", "payout"]
        .iter()
        .map(|op| Request {
            tenant: "acme".into(),
            application: "dashboard".into(),
            user: "alice".into(),
            enrolled: [Factor::Totp].into_iter().collect(),
            session: "s".into(),
            event: Event::Operation {
                name: (*op).into(),
                attrs: vec![("amount".into(), Value::Number(10.0))],
                context: None,
            },
            now: Timestamp(1_800_000_000),
        })
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
