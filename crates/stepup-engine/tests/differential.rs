//! Differential test: the compiled tree and the reference interpreter give identical decisions
//! (kind, requirement, fired and satisfied policies, message, challenge, audit records, effects,
//! report-only results) on random policy sets, states and events; a verdict is that decision
//! without its audit records and risk breakdown; and report-only policies never change a
//! decision.

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
use stepup_engine::{
    CompiledSet, Context, DecisionKind, Event, Location, Record, Request, State, UserHistory, Value,
};

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
        Just("script \"ctx.amount / 0 > 1\"".to_string()),
        Just("script \"ctx.vip\"".to_string()),
        Just("script \"ctx.risk > 50 || ctx.signals.new_device\"".to_string()),
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
    policy_set_of(cond().boxed())
}

/// `report_only policy …` a quarter of the time.
fn report_only_prefix() -> impl Strategy<Value = &'static str> {
    prop::bool::weighted(0.25).prop_map(|ro| if ro { "report_only " } else { "" })
}

/// Shallow conditions: one leaf, or two or three leaves under one connective, so that a single
/// input often decides whether a policy fires.
fn shallow_cond() -> BoxedStrategy<String> {
    prop_oneof![
        3 => leaf(),
        1 => prop::collection::vec(leaf(), 2..4).prop_map(|v| format!("({})", v.join(" and "))),
        1 => prop::collection::vec(leaf(), 2..4).prop_map(|v| format!("({})", v.join(" or "))),
        1 => leaf().prop_map(|a| format!("not ({a})")),
    ]
    .boxed()
}

fn policy_set_of(cond: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    policy_set_with(cond, report_only_prefix().boxed())
}

/// Policy sets whose policies are report-only as `ro` says (also the application's override
/// and addition).
fn policy_set_with(
    cond: BoxedStrategy<String>,
    ro: BoxedStrategy<&'static str>,
) -> impl Strategy<Value = String> {
    (prop::collection::vec((cond.clone(), require(), ro.clone()), 1..14), prop::option::of((0..14usize, cond, require(), ro.clone(), ro)), any::<bool>()).prop_map(|(ps, ov, cache_off)| {
        let mut s = String::from(
            "tenant t {\n operation o0 sensitive operation o1 routine operation o2 admin operation o3 admin operation o4 sensitive operation o5 sensitive\n resource r0 resource r1 resource r2\n attribute amount: number attribute plan: string attribute vip: bool\n risk { weight new_device 30 weight new_country 40 threat_feed \"feed.netset\" }\n",
        );
        for (i, (c, r, ro)) in ps.iter().enumerate() {
            s.push_str(&format!(" {ro}policy p{i} \"Message {i}.\" {{ when {c} {r} }}\n"));
        }
        s.push_str("}\napplication a of t {\n");
        if cache_off {
            s.push_str(" cache off\n");
        }
        if let Some((i, c, r, ro1, ro2)) = ov {
            s.push_str(&format!(" {ro1}policy p{i} \"Override.\" {{ when {c} {r} }}\n {ro2}policy extra \"Extra.\" {{ when {c} {r} }}\n"));
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
        (
            context(),
            prop_oneof![Just(FactorSet::one(Factor::Password)), factor_set()]
        )
            .prop_map(|(context, factors)| Event::SignIn { context, factors }),
        (
            0..7u8,
            prop::option::of(prop::sample::select(vec![50.0, 150.0, 1500.0, 2500.0f64])),
            prop::option::of(prop::sample::select(vec!["gold", "free"])),
            prop::option::of(any::<bool>()),
            prop::option::of(context())
        )
            .prop_map(|(k, amount, plan, vip, context)| {
                let mut attrs = Vec::new();
                if let Some(a) = amount {
                    attrs.push(("amount".to_string(), Value::Number(a)));
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
        prop::option::of((
            0..7u8,
            0..3u8,
            any::<bool>(),
            prop::option::of(prop::sample::select(vec![50u32, 150, 1500, 2500])),
        )),
        prop::sample::select(vec![true, true, true, false]),
    )
        .prop_map(
            |(store_ok, devices, countries, last, accesses, events, grant, established)| {
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
                    established,
                    events: events
                        .into_iter()
                        .map(|(ago, factors)| AuthEvent {
                            at: Timestamp(NOW - ago),
                            factors,
                            cap: None,
                            unnamed: false,
                        })
                        .collect(),
                    ..SessionState::default()
                };
                if let Some((op, p, in_app, amount)) = grant {
                    session.grants.push(Grant {
                        challenge_id: "c".into(),
                        application: if in_app { "a".into() } else { "".into() },
                        binding: vec![(
                            "amount".into(),
                            amount.map(|a| Value::Number(f64::from(a))),
                        )],
                        event_key: format!("operation:o{op}").into(),
                        policies: vec![format!("p{p}")],
                        // Earned by a strong enough authentication (the binding decides).
                        proof: Some(AuthEvent {
                            at: Timestamp(NOW - 10),
                            factors: FactorSet::ANY,
                            cap: None,
                            unnamed: false,
                        }),
                        expires_at: Timestamp(NOW + 100),
                        login: None,
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

/// The generated sets' directory, with their threat feed, written once (tests run in parallel:
/// rewriting it while another test reads it would show them an empty feed).
fn feed_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stepup-diff-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            dir.join("feed.netset"),
            "203.0.113.0/24\n2001:db8:bad::/48\n",
        );
        dir
    })
    .clone()
}

fn compile(text: &str) -> Result<CompiledSet, String> {
    let src = stepup_dsl::Source {
        name: "gen.policy".into(),
        bytes: text.as_bytes().to_vec(),
        base_dir: feed_dir(),
    };
    let loaded = stepup_dsl::load_sources(&[src]);
    let Some(model) = loaded.set else {
        return Err(format!(
            "generated set does not check:\n{text}\n{}",
            stepup_dsl::diag::render_all(&loaded.diagnostics, false)
        ));
    };
    CompiledSet::compile(model).map_err(|e| e.to_string())
}

/// One way of removing or corrupting an input (SPEC §10). Not included, because they are not
/// "what the engine does not know" but other known values: a platform risk score taken away
/// (the platform said nothing), and history the store has lost (a forgotten device or place is
/// indistinguishable from one never seen, and a policy may read `not new_device`).
#[derive(Debug, Clone)]
enum Corruption {
    DropAttr(usize),
    MistypeAttr(usize),
    /// 0 device, 1 IP, 2 country, 3 location taken away; 4 device, 5 country made blank.
    DropContextField(u8),
    GarbleIp,
    StoreDown,
    FailScripts,
    DropEnrolled(Factor),
    DropSignInFactor(Factor),
    DropSessionEvent(usize),
    DropGrants,
    /// Every time in the history moved ten days ahead (a store written by hand, or by an
    /// instance whose clock runs ahead).
    FutureHistory,
    /// The operation's or resource's name spelt otherwise (a careless integrator, a hostile
    /// client): in capitals, with a separator, an invisible character, a digit for a letter, a
    /// Cyrillic look-alike.
    RespellName(u8),
}

/// The generated sets' catalogs: taken out for the variant without one.
const CATALOG: &str = " operation o0 sensitive operation o1 routine operation o2 admin operation o3 admin operation o4 sensitive operation o5 sensitive\n resource r0 resource r1 resource r2\n";

/// `name` spelt otherwise, as `k` says.
fn respelt(name: &str, k: u8) -> String {
    match k % 5 {
        0 => name.to_uppercase(),
        1 => name.replacen('o', "o-", 1).replacen('r', "r_", 1),
        2 => {
            let mut cs = name.chars();
            let first = cs.next().map(String::from).unwrap_or_default();
            format!("{first}\u{200b}{}", cs.as_str())
        }
        3 => name.replacen('o', "0", 1).replacen('r', "R", 1),
        _ => name.replacen('o', "\u{43e}", 1).replacen('r', "\u{433}", 1),
    }
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (0..3usize).prop_map(Corruption::DropAttr),
        (0..3usize).prop_map(Corruption::MistypeAttr),
        (0..6u8).prop_map(Corruption::DropContextField),
        Just(Corruption::GarbleIp),
        Just(Corruption::StoreDown),
        Just(Corruption::FailScripts),
        factor().prop_map(Corruption::DropEnrolled),
        factor().prop_map(Corruption::DropSignInFactor),
        (0..3usize).prop_map(Corruption::DropSessionEvent),
        Just(Corruption::DropGrants),
        Just(Corruption::FutureHistory),
        (0..5u8).prop_map(Corruption::RespellName),
    ]
}

fn context_mut(e: &mut Event) -> Option<&mut Context> {
    match e {
        Event::SignIn { context, .. } => Some(context),
        Event::Operation { context, .. } | Event::Access { context, .. } => context.as_mut(),
        Event::StepUp { .. } => None,
    }
}

/// Applies a corruption; the text changes only for `FailScripts` (every script divides by 0).
fn corrupt(c: &Corruption, text: &str, req: &mut Request, state: &mut State) -> String {
    match c {
        Corruption::DropAttr(i) => {
            if let Event::Operation { attrs, .. } = &mut req.event
                && *i < attrs.len()
            {
                attrs.remove(*i);
            }
        }
        Corruption::MistypeAttr(i) => {
            if let Event::Operation { attrs, .. } = &mut req.event
                && let Some((name, v)) = attrs.get_mut(*i)
            {
                // A type the attribute is not declared with (`amount: number`, `plan: string`,
                // `vip: bool`), whatever the value is now: mistyped twice is still mistyped.
                // (Flipping the value's own type made a number a string and then the string a
                // number again, a valid value that rightly changed the decision.)
                *v = match name.as_str() {
                    "plan" => Value::Number(1.0),
                    _ => Value::Str("1".into()),
                };
            }
        }
        Corruption::DropContextField(k) => {
            if let Some(ctx) = context_mut(&mut req.event) {
                match k {
                    0 => ctx.device = None,
                    1 => ctx.ip = None,
                    2 => ctx.country = None,
                    // Blank is none too: an empty fingerprint, a country of spaces.
                    4 => ctx.device = Some(String::new()),
                    5 => ctx.country = Some(" ".into()),
                    _ => ctx.location = None,
                }
            }
        }
        Corruption::GarbleIp => {
            if let Some(ctx) = context_mut(&mut req.event) {
                ctx.ip = Some("999.1.2.3".into());
            }
        }
        Corruption::StoreDown => state.history = Err("store down".into()),
        Corruption::FailScripts => {
            let mut out = String::new();
            let mut rest = text;
            while let Some(i) = rest.find("script \"") {
                let (head, tail) = rest.split_at(i + "script \"".len());
                out.push_str(head);
                out.push_str("ctx.amount / 0 > 1 && ");
                rest = tail;
            }
            out.push_str(rest);
            return out;
        }
        Corruption::DropEnrolled(f) => {
            req.enrolled = req.enrolled.intersect(FactorSet::one(*f).complement())
        }
        Corruption::DropSignInFactor(f) => {
            if let Event::SignIn { factors, .. } = &mut req.event {
                *factors = factors.intersect(FactorSet::one(*f).complement());
            }
        }
        Corruption::DropSessionEvent(i) => {
            if *i < state.session.events.len() {
                state.session.events.remove(*i);
            }
        }
        Corruption::DropGrants => state.session.grants.clear(),
        Corruption::RespellName(k) => match &mut req.event {
            Event::Operation { name, .. } => *name = respelt(name, *k),
            Event::Access { resource, .. } => *resource = respelt(resource, *k),
            Event::SignIn { .. } | Event::StepUp { .. } => {}
        },
        Corruption::FutureHistory => {
            if let Ok(h) = &mut state.history {
                let ahead = |t: &mut Timestamp| *t = Timestamp(NOW + 10 * 86_400);
                h.countries.values_mut().for_each(ahead);
                h.accesses.values_mut().for_each(ahead);
                if let Some(l) = &mut h.last_sign_in {
                    ahead(&mut l.at);
                }
            }
        }
    }
    text.to_string()
}

/// Every single corruption, and the random combination given.
fn every_corruption(combo: &[Corruption]) -> Vec<Vec<Corruption>> {
    let mut all: Vec<Vec<Corruption>> = Vec::new();
    for i in 0..3 {
        all.push(vec![Corruption::DropAttr(i)]);
        all.push(vec![Corruption::MistypeAttr(i)]);
        all.push(vec![Corruption::DropSessionEvent(i)]);
    }
    for k in 0..6 {
        all.push(vec![Corruption::DropContextField(k)]);
    }
    for k in 0..5 {
        all.push(vec![Corruption::RespellName(k)]);
    }
    for f in Factor::ALL {
        all.push(vec![Corruption::DropEnrolled(f)]);
        all.push(vec![Corruption::DropSignInFactor(f)]);
    }
    for c in [
        Corruption::GarbleIp,
        Corruption::StoreDown,
        Corruption::FailScripts,
        Corruption::DropGrants,
        Corruption::FutureHistory,
    ] {
        all.push(vec![c]);
    }
    all.push(combo.to_vec());
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The project's most important property (SPEC §10): removing or corrupting any input never
    /// turns a `step_up` or a `deny` into an allow. Every refusal is tried with every single
    /// corruption and a random combination of them. A third of the sets have no catalog (an
    /// operation no policy names is then evaluated, not refused).
    #[test]
    fn corrupting_or_removing_an_input_never_turns_a_refusal_into_an_allow(
        text in (
            prop_oneof![policy_set().boxed(), policy_set_of(shallow_cond()).boxed()],
            prop::bool::weighted(0.33),
        )
            .prop_map(|(text, no_catalog)| {
                if no_catalog { text.replacen(CATALOG, "", 1) } else { text }
            }),
        cases in prop::collection::vec(
            (event(), state(), factor_set(), any::<bool>(), prop::collection::vec(corruption(), 2..4), any::<bool>()),
            8,
        ),
    ) {
        let set = compile(&text);
        prop_assert!(set.is_ok(), "{}", set.err().unwrap_or_default());
        let Ok(set) = set else { return Ok(()) };
        let mut failing_scripts: Option<CompiledSet> = None;
        for (event, mut state, enrolled, in_app, combo, fresh) in cases {
            if fresh {
                // A session that proves nothing yet: more policies stay unsatisfied.
                state.session.events.clear();
                state.session.established = true;
            }
            let req = Request {
                tenant: "t".into(),
                application: if in_app { "a".into() } else { "".into() },
                user: "u".into(),
                enrolled,
                session: "s".into(),
                event,
                now: Timestamp(NOW),
            };
            let before = set.decide(&req, &state, false);
            if !matches!(before.kind, DecisionKind::StepUp | DecisionKind::Deny) {
                continue;
            }
            for corruptions in every_corruption(&combo) {
                let (mut req2, mut state2, mut text2) = (req.clone(), state.clone(), text.clone());
                for c in &corruptions {
                    text2 = corrupt(c, &text2, &mut req2, &mut state2);
                }
                let decider = if text2 == text {
                    &set
                } else {
                    if failing_scripts.is_none() {
                        let s2 = compile(&text2);
                        prop_assert!(s2.is_ok(), "{}", s2.err().unwrap_or_default());
                        failing_scripts = s2.ok();
                    }
                    let Some(s2) = &failing_scripts else { return Ok(()) };
                    s2
                };
                // Audited or as a bare verdict (which builds no record), never an allow.
                for record in [Record::Decision, Record::Verdict] {
                    let after = decider.decide_with(&req2, &state2, record);
                    prop_assert!(
                        !after.succeeded(),
                        "{:?} turned {:?} into {:?} ({:?})\nbefore: {:?}\nafter: {:?}\nrules:\n{}",
                        corruptions, before.kind, after.kind, record, req, req2, text2
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn compiled_tree_equals_reference_interpreter(
        text in policy_set(),
        cases in prop::collection::vec((event(), state(), factor_set(), any::<bool>()), 6),
    ) {
        let set = compile(&text);
        prop_assert!(set.is_ok(), "{}", set.err().unwrap_or_default());
        let Ok(set) = set else { return Ok(()) };
        for (event, state, enrolled, in_app) in cases {
            let req = Request {
                tenant: "t".into(),
                application: if in_app { "a".into() } else { "".into() },
                user: "u".into(),
                enrolled,
                session: "s".into(),
                event,
                now: Timestamp(NOW),
            };
            let compiled = set.decide(&req, &state, false);
            let reference = set.decide_reference(&req, &state);
            prop_assert_eq!(&compiled, &reference, "request {:?}\nrules:\n{}", req, text);
            // The traced walk (explanations) decides the same: the explanation is the record
            // of a walk that decides, and it must be this decision's.
            let traced = set.decide(&req, &state, true).without_explanation(&compiled);
            prop_assert_eq!(&traced, &compiled, "explained: request {:?}\nrules:\n{}", req, text);
            // A verdict is the same decision without its audit records and risk breakdown:
            // nothing else may differ, above all not whether it allows.
            let verdict = set.decide_with(&req, &state, Record::Verdict);
            let mut audited = compiled;
            audited.audit = Vec::new();
            audited.risk = None;
            prop_assert_eq!(&verdict, &audited, "verdict: request {:?}\nrules:\n{}", req, text);
        }
    }
}

/// A decision without what its policy set's version and its report-only policies put in it:
/// the hash (in challenge ids, grants and audit records), the report-only results and records.
fn enforced_part(d: &stepup_engine::Decision) -> stepup_engine::Decision {
    let mut d = d.clone();
    let ids: Vec<stepup_engine::ChallengeId> = d.challenge_id.iter().cloned().collect();
    let blank = |id: &mut stepup_engine::ChallengeId| {
        if ids.contains(id) {
            *id = "challenge".into();
        }
    };
    d.policy_set = "".into();
    d.report_only.clear();
    d.audit
        .retain(|r| r.name != stepup_engine::decision::audit_names::REPORT_ONLY);
    for r in &mut d.audit {
        r.policy_set = "".into();
        if let Some(id) = &mut r.challenge_id {
            blank(id);
        }
    }
    if let Some(id) = &mut d.challenge_id {
        blank(id);
    }
    if let Some(s) = &mut d.effects.session {
        for c in &mut s.challenges {
            blank(&mut c.id);
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// SPEC §12: report-only policies are evaluated, never enforced. Adding any number of them
    /// (to the tenant and to the application, also replacing an enforced policy's name in the
    /// application is not done here: that is an override, a change of the rules) leaves every
    /// decision as it was: kind, requirement, eligible factors, fired and satisfied policies,
    /// message, deny reason, risk, errors, audit records and effects.
    #[test]
    fn adding_report_only_policies_never_changes_a_decision(
        base in policy_set_with(cond().boxed(), Just("").boxed()),
        extra in prop::collection::vec((cond(), require(), any::<bool>()), 1..6),
        cases in prop::collection::vec((event(), state(), factor_set(), any::<bool>(), any::<bool>()), 8),
    ) {
        let mut with = base.clone();
        for (k, (c, r, in_app)) in extra.iter().enumerate() {
            let policy = format!(" report_only policy ro{k} \"Would confirm {k}.\" {{ when {c} {r} }}\n");
            // The tenant block ends where the application block starts; the application's at the end.
            let at = if *in_app { with.rfind('}') } else { with.find("}\napplication") };
            if let Some(at) = at {
                with.insert_str(at, &policy);
            }
        }
        let (a, b) = (compile(&base), compile(&with));
        prop_assert!(a.is_ok() && b.is_ok(), "{:?} {:?}\n{with}", a.err(), b.err());
        let (Ok(a), Ok(b)) = (a, b) else { return Ok(()) };
        for (event, mut state, enrolled, in_app, fresh) in cases {
            if fresh {
                state.session.events.clear();
                state.session.established = true;
            }
            let req = Request {
                tenant: "t".into(),
                application: if in_app { "a".into() } else { "".into() },
                user: "u".into(),
                enrolled,
                session: "s".into(),
                event,
                now: Timestamp(NOW),
            };
            let (da, db) = (a.decide(&req, &state, false), b.decide(&req, &state, false));
            prop_assert_eq!(enforced_part(&da), enforced_part(&db), "request {:?}\nrules:\n{}", req, with);
            // Every report-only policy in force is reported, once.
            let in_force = extra.iter().filter(|(_, _, app)| *app == in_app || !*app).count();
            if !matches!(da.deny, Some(stepup_engine::decision::DenyReason::CannotEvaluate)) {
                prop_assert_eq!(db.report_only.len(), in_force, "{:?}", db.report_only);
            }
            let records = db.audit.iter().filter(|r| r.name == stepup_engine::decision::audit_names::REPORT_ONLY).count();
            let prompts = db.report_only.iter().filter(|r| matches!(r.would_be, stepup_engine::WouldBe::StepUp | stepup_engine::WouldBe::Deny)).count();
            prop_assert_eq!(records, prompts);
        }
    }
}
