//! Differential test: the compiled tree and the reference interpreter give identical decisions
//! (kind, requirement, fired and satisfied policies, message, challenge, audit records, effects)
//! on random policy sets, states and events.

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
use stepup_engine::state::{AuthEvent, Grant, LastSignIn, SessionState};
use stepup_engine::{CompiledSet, Context, Event, Location, Request, State, UserHistory, Value};

const NOW: i64 = 1_800_000_000;

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..6u8).prop_map(|k| format!("operation == o{k}")),
        prop::collection::vec(0..6u8, 1..4).prop_map(|v| format!(
            "operation in [{}]",
            v.iter()
                .map(|k| format!("o{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (0..3u8).prop_map(|k| format!("resource == r{k}")),
        (0..101u32).prop_map(|n| format!("risk >= {n}")),
        (0..3000u32).prop_map(|n| format!("amount > {n}")),
        Just("plan == \"gold\"".to_string()),
        Just("vip".to_string()),
        Just("new_device".to_string()),
        (1..60u32).prop_map(|d| format!("new_country({d}d)")),
        Just("impossible_travel".to_string()),
        Just("threat_intel".to_string()),
        (0..3u8, prop::option::of(1..30u32)).prop_map(|(k, w)| match w {
            Some(d) => format!("first_access(r{k}, {d}d)"),
            None => format!("first_access(r{k})"),
        }),
        Just("script \"ctx.amount > 100\"".to_string()),
        Just("script \"ctx.nope.deeper > 1\"".to_string()),
    ]
}

fn cond() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" and "))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" or "))),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn require() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("require aal1"),
        Just("require aal2 factor any for 15m"),
        Just("require aal2 factor not sms for 5m"),
        Just("require aal2 factor sms|push for 1h"),
        Just("require aal3 factor webauthn|totp for 5m"),
        Just("require aal3 factor webauthn every time"),
        Just("require aal2 every time"),
        Just("require aal3 factor any for 90s"),
    ]
    .prop_map(str::to_string)
}

fn policy_set() -> impl Strategy<Value = String> {
    (prop::collection::vec((cond(), require()), 1..14), prop::option::of((0..14usize, cond(), require())), any::<bool>()).prop_map(|(ps, ov, cache_off)| {
        let mut s = String::from(
            "tenant t {\n operation o0 sensitive operation o1 routine operation o2 admin operation o3 admin operation o4 sensitive operation o5 sensitive\n resource r0 resource r1 resource r2\n attribute amount: number attribute plan: string attribute vip: bool\n risk { weight new_device 30 weight new_country 40 threat_feed \"feed.netset\" }\n",
        );
        for (i, (c, r)) in ps.iter().enumerate() {
            s.push_str(&format!(" policy p{i} \"Message {i}.\" {{ when {c} {r} }}\n"));
        }
        s.push_str("}\napplication a of t {\n");
        if cache_off {
            s.push_str(" cache off\n");
        }
        if let Some((i, c, r)) = ov {
            s.push_str(&format!(" policy p{i} \"Override.\" {{ when {c} {r} }}\n policy extra \"Extra.\" {{ when {c} {r} }}\n"));
        }
        s.push_str("}\n");
        s
    })
}

fn factor() -> impl Strategy<Value = Factor> {
    prop::sample::select(Factor::ALL.to_vec())
}

fn factor_set() -> impl Strategy<Value = FactorSet> {
    (0u8..128).prop_map(FactorSet::from_bits)
}

fn context() -> impl Strategy<Value = Context> {
    (
        prop::option::of(prop::sample::select(vec!["d1", "d2", "d3"])),
        prop::option::of(prop::sample::select(vec![
            "198.51.100.7",
            "203.0.113.9",
            "not-an-ip",
            "2001:db8:bad::1",
        ])),
        prop::option::of(prop::sample::select(vec!["FR", "US", "BE"])),
        prop::option::of(prop::sample::select(vec![
            (48.85, 2.35),
            (40.71, -74.0),
            (50.85, 4.35),
        ])),
        prop::option::of(0u32..120),
    )
        .prop_map(|(d, ip, c, l, r)| Context {
            device: d.map(str::to_string),
            ip: ip.map(str::to_string),
            country: c.map(str::to_string),
            location: l.map(|(lat, lon)| Location { lat, lon }),
            platform_risk: r,
        })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (context(), factor_set()).prop_map(|(context, factors)| Event::SignIn { context, factors }),
        (
            0..7u8,
            prop::option::of(0.0..3000.0f64),
            prop::option::of(prop::sample::select(vec!["gold", "free"])),
            prop::option::of(any::<bool>()),
            prop::option::of(context())
        )
            .prop_map(|(k, amount, plan, vip, context)| {
                let mut attrs = Vec::new();
                if let Some(a) = amount {
                    attrs.push(("amount".to_string(), Value::Number(a.floor())));
                }
                if let Some(p) = plan {
                    attrs.push(("plan".to_string(), Value::Str(p.to_string())));
                }
                if let Some(v) = vip {
                    attrs.push(("vip".to_string(), Value::Bool(v)));
                }
                Event::Operation {
                    name: format!("o{k}"),
                    attrs,
                    context,
                }
            }),
        (0..4u8, prop::option::of(context())).prop_map(|(k, context)| Event::Access {
            resource: format!("r{k}"),
            context
        }),
        (factor(), any::<bool>()).prop_map(|(factor, success)| Event::StepUp { factor, success }),
    ]
}

fn state() -> impl Strategy<Value = State> {
    (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(vec!["d1", "d2"]), 0..2),
        prop::collection::vec(
            (prop::sample::select(vec!["FR", "US"]), 0..(60 * 86_400i64)),
            0..2,
        ),
        prop::option::of((
            0..7200i64,
            prop::sample::select(vec![(48.85, 2.35), (40.71, -74.0)]),
        )),
        prop::collection::vec((0..3u8, 0..(40 * 86_400i64)), 0..2),
        prop::collection::vec((0..4000i64, factor_set()), 0..3),
        prop::option::of((0..7u8, 0..3u8)),
    )
        .prop_map(
            |(store_ok, devices, countries, last, accesses, events, grant)| {
                let history = UserHistory {
                    devices: devices.into_iter().map(str::to_string).collect(),
                    countries: countries
                        .into_iter()
                        .map(|(c, ago)| (c.to_string(), Timestamp(NOW - ago)))
                        .collect(),
                    last_sign_in: last.map(|(ago, (lat, lon))| LastSignIn {
                        at: Timestamp(NOW - ago),
                        country: None,
                        location: Some(Location { lat, lon }),
                    }),
                    accesses: accesses
                        .into_iter()
                        .map(|(k, ago)| (format!("r{k}"), Timestamp(NOW - ago)))
                        .collect(),
                };
                let mut session = SessionState {
                    events: events
                        .into_iter()
                        .map(|(ago, factors)| AuthEvent {
                            at: Timestamp(NOW - ago),
                            factors,
                            cap: None,
                        })
                        .collect(),
                    ..SessionState::default()
                };
                if let Some((op, p)) = grant {
                    session.grants.push(Grant {
                        challenge_id: "c".into(),
                        event_key: format!("operation:o{op}"),
                        policies: vec![format!("p{p}")],
                        expires_at: Timestamp(NOW + 100),
                    });
                }
                State {
                    history: if store_ok {
                        Ok(history)
                    } else {
                        Err("store down".into())
                    },
                    session,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn compiled_tree_equals_reference_interpreter(
        text in policy_set(),
        cases in prop::collection::vec((event(), state(), factor_set(), any::<bool>()), 6),
    ) {
        let dir = std::env::temp_dir().join(format!("stepup-diff-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("feed.netset"), "203.0.113.0/24\n2001:db8:bad::/48\n");
        let src = stepup_dsl::Source { name: "gen.policy".into(), bytes: text.clone().into_bytes(), base_dir: dir };
        let loaded = stepup_dsl::load_sources(&[src]);
        prop_assert!(loaded.set.is_some(), "generated set does not check:\n{text}\n{}", stepup_dsl::diag::render_all(&loaded.diagnostics, false));
        let Some(model) = loaded.set else { return Ok(()) };
        let set = CompiledSet::compile(model);
        prop_assert!(set.is_ok());
        let Ok(set) = set else { return Ok(()) };
        for (event, state, enrolled, in_app) in cases {
            let req = Request {
                tenant: "t".into(),
                application: if in_app { "a".into() } else { String::new() },
                user: "u".into(),
                enrolled,
                session: "s".into(),
                event,
                now: Timestamp(NOW),
            };
            let compiled = set.decide(&req, &state, false);
            let reference = set.decide_reference(&req, &state);
            prop_assert_eq!(&compiled, &reference, "request {:?}\nrules:\n{}", req, text);
        }
    }
}
