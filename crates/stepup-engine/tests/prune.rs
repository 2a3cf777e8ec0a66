//! The attribute indexes inside an operation's bucket (`compile/prune.rs`) only skip policies
//! that a false attribute test makes false: on random sets of many policies guarding one
//! operation, with requests whose attributes sit on, between and beyond the policies' constants,
//! or are missing, mistyped or not finite, the compiled decision equals the reference
//! interpreter's (which evaluates every policy as written, with no index).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use proptest::prelude::*;
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::state::{AuthEvent, SessionState};
use stepup_engine::{CompiledSet, Event, Request, State, UserHistory, Value};

const NOW: i64 = 1_800_000_000;
const CONSTANTS: [&str; 8] = ["0", "-0", "100", "150", "150.5", "1500", "2500", "-20"];

fn attr_leaf() -> impl Strategy<Value = String> {
    let num = |name: &'static str| {
        (
            prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]),
            prop::sample::select(CONSTANTS.to_vec()),
        )
            .prop_map(move |(op, c)| format!("{name} {op} {c}"))
    };
    prop_oneof![
        3 => num("amount"),
        2 => num("age"),
        2 => prop::collection::btree_set(prop::sample::select(vec!["gold", "free", "pro", "x"]), 1..4)
            .prop_map(|s| format!(
                "plan in [{}]",
                s.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
            )),
        1 => Just("plan == \"gold\"".to_string()),
        1 => Just("vip".to_string()),
        1 => Just("vip == false".to_string()),
    ]
}

/// A policy's condition: mostly a conjunction of attribute tests on `pay`, sometimes with a
/// signal, a risk test, a script or a disjunction beside them, sometimes with no operation test.
fn cond() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(attr_leaf(), 1..5),
        prop::sample::select(vec![
            "",
            "",
            "",
            " and new_device",
            " and risk >= 30",
            " and script \"ctx.amount > 120\"",
            " and (vip or amount > 1000)",
            " and not (plan == \"pro\")",
        ]),
        prop::sample::select(vec![
            "operation == pay and ",
            "operation == pay and ",
            "operation in [pay, view] and ",
            "",
        ]),
    )
        .prop_map(|(leaves, extra, op)| format!("{op}{}{extra}", leaves.join(" and ")))
}

fn policy_set() -> impl Strategy<Value = String> {
    prop::collection::vec(cond(), 8..40).prop_map(|conds| {
        let mut s = String::from(
            "tenant t {\n operation pay sensitive operation view sensitive\n attribute amount: number attribute age: number attribute plan: string attribute vip: bool\n",
        );
        for (i, c) in conds.iter().enumerate() {
            let require = ["require aal2 factor any for 15m", "require aal3 factor webauthn|totp for 5m"][i % 2];
            s.push_str(&format!(" policy p{i} \"Message {i}.\" {{ when {c} {require} }}\n"));
        }
        s.push_str("}\n");
        s
    })
}

fn number() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => prop::sample::select(vec![-20.0, -21.0, 0.0, -0.0, 1e-300, 50.0, 99.5, 100.0, 100.5, 150.0, 150.25, 150.5, 151.0, 1500.0, 2500.0, 1e9])
            .prop_map(|x| Some(Value::Number(x))),
        1 => Just(None),
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
            .prop_map(|x| Some(Value::Number(x))),
        1 => Just(Some(Value::Str("100".into()))),
        1 => Just(Some(Value::Bool(true))),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop::sample::select(vec!["pay", "pay", "pay", "view"]),
        number(),
        number(),
        prop_oneof![
            4 => prop::sample::select(vec!["gold", "free", "pro", "x", "other", ""])
                .prop_map(|s| Some(Value::Str(s.into()))),
            1 => Just(None),
            1 => Just(Some(Value::Number(1.0))),
        ],
        prop_oneof![
            3 => any::<bool>().prop_map(|b| Some(Value::Bool(b))),
            1 => Just(None),
            1 => Just(Some(Value::Str("true".into()))),
        ],
    )
        .prop_map(|(op, amount, age, plan, vip)| {
            let attrs = [
                ("amount", amount),
                ("age", age),
                ("plan", plan),
                ("vip", vip),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect();
            Event::Operation {
                name: op.into(),
                attrs,
                context: None,
            }
        })
}

fn compile(text: &str) -> CompiledSet {
    let src = stepup_dsl::Source {
        name: "gen.policy".into(),
        bytes: text.as_bytes().to_vec(),
        base_dir: std::env::temp_dir(),
    };
    let loaded = stepup_dsl::load_sources(&[src]);
    let Some(model) = loaded.set else {
        panic!(
            "generated set does not check:\n{text}\n{}",
            stepup_dsl::diag::render_all(&loaded.diagnostics, false)
        );
    };
    CompiledSet::compile(model).unwrap()
}

fn state(aal2: bool) -> State {
    let mut h = UserHistory::default();
    h.devices.insert("d1".into());
    State {
        history: Ok(h),
        session: SessionState {
            established: true,
            events: vec![AuthEvent {
                at: Timestamp(NOW - 60),
                factors: if aal2 {
                    [Factor::Password, Factor::Totp].into_iter().collect()
                } else {
                    FactorSet::one(Factor::Password)
                },
                cap: None,
                unnamed: false,
            }],
            ..SessionState::default()
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn attribute_indexes_skip_only_policies_that_are_false(
        text in policy_set(),
        cases in prop::collection::vec((event(), any::<bool>()), 12),
    ) {
        let set = compile(&text);
        for (event, aal2) in cases {
            let req = Request {
                tenant: "t".into(),
                application: "".into(),
                user: "u".into(),
                enrolled: [Factor::Password, Factor::Totp, Factor::Webauthn].into_iter().collect(),
                session: "s".into(),
                event,
                now: Timestamp(NOW),
            };
            let state = state(aal2);
            let compiled = set.decide(&req, &state, false);
            let reference = set.decide_reference(&req, &state);
            prop_assert_eq!(&compiled, &reference, "request {:?}\nrules:\n{}", req, text);
        }
    }
}

/// An operation `pay` with `attrs`, for user `u` of tenant `t`.
fn pay(attrs: Vec<(String, Value)>) -> Request {
    Request {
        tenant: "t".into(),
        application: "".into(),
        user: "u".into(),
        enrolled: [Factor::Password, Factor::Totp].into_iter().collect(),
        session: "s".into(),
        event: Event::Operation {
            name: "pay".into(),
            attrs,
            context: None,
        },
        now: Timestamp(NOW),
    }
}

/// 40 policies on `pay`, each an amount range of 100: `p00` is [0, 100), `p39` [3900, 4000).
fn ranges_text() -> String {
    let mut text =
        String::from("tenant t {\n operation pay sensitive\n attribute amount: number\n");
    for i in 0..40 {
        let lo = i * 100;
        text.push_str(&format!(
            " policy p{i:02} \"Confirm.\" {{ when operation == pay and amount >= {lo} and amount < {} require aal2 }}\n",
            lo + 100
        ));
    }
    text.push_str("}\n");
    text
}

/// A known case, decided by hand: 40 policies on `pay`, each an amount range; a request inside
/// exactly one range fires exactly that one, and a request without the amount fires all of them
/// (unknown fires: SPEC §10).
#[test]
fn a_range_index_fires_exactly_the_ranges_that_hold_and_all_when_the_value_is_missing() {
    let set = compile(&ranges_text());
    let decide = |attrs: Vec<(String, Value)>| set.decide(&pay(attrs), &state(false), false);
    assert_eq!(
        *decide(vec![("amount".into(), Value::Number(1250.0))]).fired,
        ["p12"]
    );
    assert_eq!(
        *decide(vec![("amount".into(), Value::Number(1300.0))]).fired,
        ["p13"]
    );
    assert!(
        decide(vec![("amount".into(), Value::Number(4000.0))])
            .fired
            .is_empty()
    );
    assert_eq!(
        decide(vec![]).fired.len(),
        40,
        "a missing amount fires every range"
    );
    assert_eq!(
        decide(vec![("amount".into(), Value::Str("1250".into()))])
            .fired
            .len(),
        40,
        "a mistyped amount fires every range"
    );
    assert_eq!(
        decide(vec![("amount".into(), Value::Number(f64::NAN))])
            .fired
            .len(),
        40,
        "a NaN amount fires every range"
    );
}

/// A repeated attribute has no one value on every path (the index's table and the
/// evaluator): it prunes nothing and every range fires, whichever value comes first (an
/// integrator's review: the first was read, and a handler reading the last paid another
/// amount).
#[test]
fn a_repeated_attribute_is_unknown_to_the_index_too() {
    let set = compile(&ranges_text());
    let req = pay;
    for twice in [
        vec![
            ("amount".into(), Value::Str("1250".into())),
            ("amount".into(), Value::Number(1250.0)),
        ],
        vec![
            ("amount".into(), Value::Number(1250.0)),
            ("amount".into(), Value::Str("x".into())),
        ],
        vec![
            ("amount".into(), Value::Number(1250.0)),
            ("amount".into(), Value::Number(1250.0)),
        ],
    ] {
        let r = req(twice);
        let d = set.decide(&r, &state(false), false);
        assert_eq!(d.fired.len(), 40, "{:?}", d.fired);
        assert_eq!(d, set.decide_reference(&r, &state(false)));
    }
}

/// The indexes are built on a bucket's first decision: threads racing to that first decision
/// on a fresh set all decide as the reference interpreter does.
#[test]
fn threads_racing_to_build_an_index_all_decide_as_the_reference() {
    for _ in 0..20 {
        let set = std::sync::Arc::new(compile(&ranges_text()));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let set = std::sync::Arc::clone(&set);
                std::thread::spawn(move || {
                    let amounts = [1250.0, 5.0, 3999.0, 4000.0, f64::NAN];
                    for (k, a) in amounts.iter().cycle().skip(t).take(10).enumerate() {
                        let attrs = if k % 4 == 3 {
                            vec![]
                        } else {
                            vec![("amount".to_string(), Value::Number(*a))]
                        };
                        let req = pay(attrs);
                        let d = set.decide(&req, &state(false), false);
                        assert_eq!(d, set.decide_reference(&req, &state(false)), "{req:?}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
