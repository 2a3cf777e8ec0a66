//! Reload under load (issue 17): 1,000 policy-set swaps, valid and broken alternating, while 4
//! threads decide. A broken set is refused and the last good one keeps serving (as the HTTP
//! layer's watcher does); every decision carries the hash of exactly one set and is the
//! decision that set makes (no torn read: a decision never mixes two sets); no panic; no
//! stall (every thread keeps deciding through the swaps, and no decision waits on a swap).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::state::AuthEvent;
use stepup_engine::{CompiledSet, DecisionKind, Engine, Event, Request, State, Value};

const SWAPS: usize = 1_000;
const THREADS: usize = 4;

/// Version `k` of the rules: each version has its own payout threshold, factors, validity and
/// messages, so a decision made with parts of two versions would not equal either's.
fn valid(k: usize) -> String {
    let factors = ["any", "totp|webauthn", "not sms", "sms|totp"][k % 4];
    let aal = if k.is_multiple_of(3) { "aal3" } else { "aal2" };
    format!(
        "tenant t {{\n  operation pay sensitive\n  operation view routine\n  attribute amount: number\n  policy pay \"Confirm payout version {k}.\" {{\n    when operation == pay and amount > {threshold}\n    require {aal} factor {factors} for {mins}m\n  }}\n  policy big \"Confirm a big payout, version {k}.\" {{\n    when operation == pay and amount > {big}\n    require aal3 factor webauthn|totp every time\n  }}\n}}\n",
        threshold = (k * 7) % 3_000,
        big = 3_000 + (k * 13) % 2_000,
        mins = 1 + k % 30,
    )
}

/// A broken version: a syntax error, an unknown factor, or a type error, in turn.
fn broken(k: usize) -> String {
    match k % 3 {
        0 => valid(k).replace("require", "requir"),
        1 => valid(k).replace("factor webauthn|totp every", "factor webauthnn|totp every"),
        _ => valid(k).replace("amount > ", "amount > \"x\" and amount > "),
    }
}

fn request(i: u64) -> (Request, State) {
    let amount = (i * 37) % 6_000;
    let req = Request {
        tenant: "t".into(),
        application: "".into(),
        user: "u".into(),
        enrolled: [Factor::Password, Factor::Sms, Factor::Totp]
            .into_iter()
            .collect::<FactorSet>(),
        session: format!("s{}", i % 8).into(),
        event: Event::Operation {
            name: if i.is_multiple_of(5) { "view" } else { "pay" }.into(),
            attrs: vec![("amount".into(), Value::Number(amount as f64))],
            context: None,
        },
        now: Timestamp(1_800_000_000),
    };
    let mut state = State::default();
    state.session.established = true;
    if i.is_multiple_of(2) {
        // A session that proved aal2 with SMS two minutes ago: some versions are satisfied.
        state.session.events.push(AuthEvent {
            at: Timestamp(1_800_000_000 - 120),
            factors: FactorSet::one(Factor::Sms),
            cap: None,
            unnamed: false,
        });
    }
    (req, state)
}

#[test]
fn a_thousand_swaps_while_four_threads_decide() {
    // Every valid version, compiled twice: one to swap in, one to check decisions against.
    let versions = SWAPS / 2 + 1;
    let mut reference: HashMap<String, CompiledSet> = HashMap::new();
    let mut to_swap = Vec::new();
    for k in 0..versions {
        let set = CompiledSet::from_text("t.policy", &valid(k)).unwrap_or_else(|e| panic!("{e}"));
        to_swap.push(CompiledSet::from_text("t.policy", &valid(k)).unwrap());
        assert!(
            reference.insert(set.hash().to_string(), set).is_none(),
            "version {k} has its own hash"
        );
    }
    let mut to_swap = to_swap.into_iter();
    let engine = Engine::new(to_swap.next().unwrap());
    let done = AtomicBool::new(false);
    let decisions = AtomicU64::new(0);
    let mut refused = 0usize;
    let mut live_hashes = vec![engine.current().hash().to_string()];

    let per_thread = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let (engine, reference, done, decisions) = (&engine, &reference, &done, &decisions);
                s.spawn(move || {
                    let mut i = t;
                    let mut n = 0u64;
                    let mut seen: HashMap<String, u64> = HashMap::new();
                    let mut slowest = Duration::ZERO;
                    let mut kinds = [0u64; 3];
                    while !done.load(Ordering::SeqCst) {
                        let (req, state) = request(i);
                        let start = Instant::now();
                        let d = engine.decide(&req, &state);
                        slowest = slowest.max(start.elapsed());
                        let Some(set) = reference.get(&*d.policy_set) else {
                            panic!(
                                "decision {i} names no set that was swapped in: {}",
                                d.policy_set
                            );
                        };
                        let again = set.decide(&req, &state, false);
                        assert_eq!(
                            d, again,
                            "decision {i} is not its set's decision (torn read)"
                        );
                        for r in &d.audit {
                            assert_eq!(
                                r.policy_set, d.policy_set,
                                "an audit record from another set"
                            );
                        }
                        match d.kind {
                            DecisionKind::Allow => kinds[0] += 1,
                            DecisionKind::StepUp => kinds[1] += 1,
                            _ => kinds[2] += 1,
                        }
                        *seen.entry(d.policy_set.to_string()).or_default() += 1;
                        n += 1;
                        i += THREADS as u64;
                        decisions.fetch_add(1, Ordering::Relaxed);
                    }
                    (n, seen.len(), slowest, kinds)
                })
            })
            .collect();

        // The reloads: valid and broken alternating, each after the deciders moved on.
        for swap in 0..SWAPS {
            let before = decisions.load(Ordering::Relaxed);
            let wait = Instant::now();
            while decisions.load(Ordering::Relaxed) < before + THREADS as u64 {
                assert!(
                    wait.elapsed() < Duration::from_secs(10),
                    "the deciders stalled at swap {swap}"
                );
                std::thread::yield_now();
            }
            if swap.is_multiple_of(2) {
                let err = CompiledSet::from_text("t.policy", &broken(swap / 2));
                assert!(err.is_err(), "broken version {} compiled", swap / 2);
                refused += 1;
                assert_eq!(
                    engine.current().hash().to_string(),
                    *live_hashes.last().unwrap(),
                    "a refused set changed the live one"
                );
            } else {
                let set = to_swap.next().unwrap();
                live_hashes.push(set.hash().to_string());
                engine.swap(set);
            }
        }
        done.store(true, Ordering::SeqCst);
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| panic!("a decider panicked")))
            .collect::<Vec<_>>()
    });

    assert_eq!(refused, SWAPS / 2);
    assert_eq!(live_hashes.len(), SWAPS / 2 + 1);
    let total: u64 = per_thread.iter().map(|(n, ..)| n).sum();
    eprintln!(
        "{SWAPS} swaps ({refused} refused), {total} decisions: {:?}",
        per_thread
    );
    for (t, (n, sets, slowest, kinds)) in per_thread.iter().enumerate() {
        assert!(*n >= SWAPS as u64 / 2, "thread {t} decided only {n} times");
        assert!(
            *sets > 10,
            "thread {t} saw only {sets} sets: the swaps were not visible"
        );
        assert!(
            *slowest < Duration::from_secs(2),
            "thread {t}: a decision took {slowest:?} (stalled behind a swap?)"
        );
        assert!(kinds[0] > 0 && kinds[1] > 0, "thread {t}: {kinds:?}");
    }
}
