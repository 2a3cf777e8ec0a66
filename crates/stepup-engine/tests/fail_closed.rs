//! SPEC §10, one regression test per finding of the round-1 review (issue 11): what the engine
//! does not know never allows. Each test names what it proves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use stepup_core::{Aal, Factor, FactorSet, Timestamp};
use stepup_dsl::model::SignalKind;
use stepup_engine::Tri;
use stepup_engine::decision::{DenyReason, audit_names as au};
use stepup_engine::state::{HistoryUpdate, LastSignIn, SessionState};
use stepup_engine::{
    CompiledSet, Context, Decision, DecisionKind, Engine, Event, Location, MemoryStore, Request,
    Store, StoreError, UserHistory, Value,
};

const T0: i64 = 1_795_770_000;
const PARIS: Location = Location {
    lat: 48.85,
    lon: 2.35,
};
const SYDNEY: Location = Location {
    lat: -33.87,
    lon: 151.21,
};

fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn paris() -> Context {
    Context {
        device: Some("laptop-1".into()),
        ip: Some("198.51.100.7".into()),
        country: Some("FR".into()),
        location: Some(PARIS),
        platform_risk: None,
    }
}

/// Another login's context: the user's place, a device the history has never seen.
fn attacker() -> Context {
    Context {
        device: Some("attacker-laptop".into()),
        ..paris()
    }
}

/// A user's story against one engine and one store.
struct Sim<'s> {
    engine: Engine,
    store: &'s dyn Store,
    app: String,
    enrolled: FactorSet,
    session: String,
}

fn known_alice(store: &dyn Store) {
    let mut h = UserHistory::default();
    h.devices.insert("laptop-1".into());
    h.countries.insert("FR".into(), Timestamp(T0 - 86_400));
    h.last_sign_in = Some(LastSignIn {
        at: Timestamp(T0 - 86_400),
        country: Some("FR".into()),
        location: Some(PARIS),
    });
    store.put_history("acme", "alice", &h).unwrap();
}

impl<'s> Sim<'s> {
    fn rules(store: &'s dyn Store, app: &str, enrolled: &[Factor]) -> Self {
        known_alice(store);
        Sim {
            engine: Engine::load(&[rules()]).unwrap(),
            store,
            app: app.into(),
            enrolled: enrolled.iter().copied().collect(),
            session: "s1".into(),
        }
    }
    fn text(store: &'s dyn Store, text: &str, app: &str, enrolled: &[Factor]) -> Self {
        known_alice(store);
        Sim {
            engine: Engine::new(CompiledSet::from_text("t.policy", text).unwrap()),
            store,
            app: app.into(),
            enrolled: enrolled.iter().copied().collect(),
            session: "s1".into(),
        }
    }
    fn req(&self, secs: i64, event: Event) -> Request {
        Request {
            tenant: "acme".into(),
            application: self.app.as_str().into(),
            user: "alice".into(),
            enrolled: self.enrolled,
            session: self.session.as_str().into(),
            event,
            now: Timestamp(T0 + secs),
        }
    }
    fn at(&self, secs: i64, event: Event) -> Decision {
        self.engine
            .process(self.store, &self.req(secs, event), true)
    }
    fn sign_in_with(&self, secs: i64, context: Context, f: &[Factor]) -> Decision {
        self.at(
            secs,
            Event::SignIn {
                context,
                factors: f.iter().copied().collect(),
            },
        )
    }
    fn sign_in(&self, secs: i64, context: Context) -> Decision {
        self.sign_in_with(secs, context, &[Factor::Password])
    }
    fn op(&self, secs: i64, name: &str, attrs: Vec<(&str, Value)>) -> Decision {
        self.at(
            secs,
            Event::Operation {
                name: name.into(),
                attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                context: None,
            },
        )
    }
    fn step_up(&self, secs: i64, factor: Factor) -> Decision {
        self.at(
            secs,
            Event::StepUp {
                factor,
                success: true,
            },
        )
    }
}

fn names(d: &Decision) -> Vec<&'static str> {
    d.audit.iter().map(|a| a.name).collect()
}

fn kind(d: &Decision) -> DecisionKind {
    d.kind
}

/// Asserts that one of `d`'s errors (why it failed closed) says `what`.
#[track_caller]
fn says(d: &Decision, what: &str) {
    assert!(d.errors.iter().any(|e| e.contains(what)), "{:?}", d.errors);
}

const SCRIPTED: &str = r#"tenant acme {
  operation payout sensitive
  operation view_profile routine
  attribute amount: number
  attribute account_age_days: number
  policy scripted "Confirm this unusual transfer." {
    when operation == payout and script "ctx.amount > 10000 && ctx.account_age_days < 7"
    require aal2
  }
  policy risky "Confirm it's you." { when script "ctx.risk >= 70" require aal2 }
}"#;

#[test]
fn finding_1_a_script_reading_an_absent_unknown_or_mistyped_field_fires_its_policy() {
    let store = MemoryStore::new();
    let s = Sim::text(&store, SCRIPTED, "", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let young = ("account_age_days", Value::Number(3.0));
    // Known, typed values: the script decides.
    let d = s.op(
        10,
        "payout",
        vec![("amount", Value::Number(500.0)), young.clone()],
    );
    assert_eq!(kind(&d), DecisionKind::Allow);
    let d = s.op(
        20,
        "payout",
        vec![("amount", Value::Number(20_000.0)), young.clone()],
    );
    assert_eq!(kind(&d), DecisionKind::StepUp);
    // Absent: the script does not run, its policy fires, and the audit record says why.
    let s = Sim {
        session: "s2".into(),
        ..s
    };
    assert_eq!(kind(&s.sign_in(100, paris())), DecisionKind::Allow);
    let d = s.op(110, "payout", vec![young.clone()]);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(
        d.audit[0].errors,
        vec![
            "policy `scripted` fires because its condition cannot be decided (fail closed): \
             script \"ctx.amount > 10000 && ctx.account_age_days < 7\" not run: `amount` is \
             absent from the operation"
                .to_string()
        ]
    );
    // Mistyped: a string where a number is declared.
    let s = Sim {
        session: "s3".into(),
        ..s
    };
    assert_eq!(kind(&s.sign_in(200, paris())), DecisionKind::Allow);
    let d = s.op(
        210,
        "payout",
        vec![("amount", Value::Str("20000".into())), young],
    );
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert!(
        d.errors[0].ends_with("`amount` is not a number"),
        "{:?}",
        d.errors
    );
}

/// A script that uses a field as another type than it has (a flag or a string compared with a
/// number, a number with a string) gives no answer: its policy fires, and says why. rhai alone
/// would compare two types as unequal and unordered, so each of these was `false`: the policy
/// never fired, whatever the request said (a review's finding, round 5).
#[test]
fn a_script_using_a_field_as_another_type_fires_its_policy() {
    let text = r#"tenant acme {
  operation payout sensitive
  attribute amount: number
  attribute note: string
  policy flag_as_number "Confirm this payout." {
    when operation == payout and script "ctx.signals.new_device > 0" require aal2
  }
  policy string_as_number "Confirm this payout." {
    when operation == payout and script "ctx.note > 1000" require aal2
  }
  policy number_as_string "Confirm this payout." {
    when operation == payout and script "ctx.amount == \"5000\" || ctx.amount in [\"7\"]" require aal2
  }
  policy typed "Confirm this payout." {
    when operation == payout and script "ctx.amount > 1000000 && ctx.note == \"x\"" require aal2
  }
}"#;
    let store = MemoryStore::new();
    let s = Sim::text(&store, text, "", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let d = s.op(
        10,
        "payout",
        vec![
            ("amount", Value::Number(5000.0)),
            ("note", Value::Str("5000".into())),
        ],
    );
    assert_eq!(kind(&d), DecisionKind::StepUp, "{d:?}");
    assert_eq!(
        *d.fired,
        ["flag_as_number", "number_as_string", "string_as_number"],
        "the typed script decides (false); the others cannot"
    );
    for (policy, types) in [
        ("flag_as_number", "a bool with a number (`>`)"),
        ("string_as_number", "a string with a number (`>`)"),
        ("number_as_string", "a number with a string (`==`)"),
    ] {
        assert!(
            d.errors
                .iter()
                .any(|e| e.starts_with(&format!("policy `{policy}` fires"))
                    && e.contains(&format!("cannot compare {types}"))),
            "{policy}: {:?}",
            d.errors
        );
    }
}

#[test]
fn finding_1_a_script_reading_an_unknown_risk_score_fires_its_policy() {
    let store = MemoryStore::new();
    let s = Sim::text(&store, SCRIPTED, "", &[Factor::Password, Factor::Totp]);
    let garbled = Context {
        ip: Some("not-an-ip".into()),
        ..paris()
    };
    // An unreadable IP is unknown, also with no feed configured (SPEC §10): the score is
    // 0..80, `ctx.risk` unknown → fires. With a readable one it is known (0): allow.
    let d = s.sign_in(0, garbled);
    assert_eq!(kind(&d), DecisionKind::StepUp, "{d:?}");
    assert_eq!(*d.fired, ["risky"]);
    let s = Sim {
        session: "s2".into(),
        ..s
    };
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let s = Sim {
        session: "s3".into(),
        ..s
    };
    let unknown_device = Context {
        device: None,
        country: Some("BE".into()),
        ..paris()
    };
    // device unknown (0..30) + new country (40): 40..70, `ctx.risk` unknown → fires.
    let d = s.sign_in(10, unknown_device);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(*d.fired, ["risky"]);
}

#[test]
fn finding_2_an_operation_without_its_declared_attribute_steps_up() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let d = s.op(60, "payout", vec![]);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(*d.fired, ["payouts"]);
    assert_eq!(names(&d), vec![au::INITIATED]);
    let d = s.op(70, "payout", vec![("amount", Value::Str("5000".into()))]);
    assert_eq!(kind(&d), DecisionKind::StepUp, "a mistyped amount too");
    let d = s.op(80, "payout", vec![("amount", Value::Number(10.0))]);
    assert_eq!(
        kind(&d),
        DecisionKind::Allow,
        "a known small payout proceeds"
    );
}

/// A context field, how to remove it, and the policy that must then fire.
type Strip = (&'static str, fn(&mut Context), &'static str);

#[test]
fn finding_3_a_sign_in_missing_any_context_field_is_not_allowed_silently() {
    let cases: [Strip; 4] = [
        ("device", |c| c.device = None, "new_device_sign_in"),
        ("country", |c| c.country = None, "new_country_sign_in"),
        ("location", |c| c.location = None, "risky_sign_in"),
        ("ip", |c| c.ip = None, "risky_sign_in"),
    ];
    for (what, strip, policy) in cases {
        let store = MemoryStore::new();
        let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
        let mut ctx = paris();
        strip(&mut ctx);
        let d = s.sign_in(0, ctx);
        assert_eq!(
            kind(&d),
            DecisionKind::StepUp,
            "a sign-in without its {what}"
        );
        assert!(
            d.fired.iter().any(|p| p == policy),
            "without its {what}: {:?}",
            d.fired
        );
    }
    // With everything known the same sign-in is allowed.
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
}

#[test]
fn finding_4_a_sign_in_without_a_location_keeps_the_impossible_travel_reference() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    // No location (a sign-in of its own session): unknown travel, stepped up and completed; it
    // teaches no place.
    let s = Sim {
        session: "s1b".into(),
        ..s
    };
    let nowhere = Context {
        location: None,
        ..paris()
    };
    assert_eq!(kind(&s.sign_in(60, nowhere)), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(70, Factor::Totp)), DecisionKind::Completed);
    let (h, _) = store.load("acme", "alice", "s1b").unwrap();
    assert_eq!(h.last_sign_in.unwrap().location, Some(PARIS));
    // Sydney five minutes after Paris: impossible.
    let s = Sim {
        session: "s2".into(),
        ..s
    };
    let sydney = Context {
        location: Some(SYDNEY),
        ..paris()
    };
    let d = s.sign_in(300, sydney);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(*d.fired, ["risky_sign_in"]);
}

#[test]
fn finding_5_an_every_time_grant_pays_out_only_the_request_that_earned_it() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "finance", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let pay = |secs, amount: f64| s.op(secs, "payout", vec![("amount", Value::Number(amount))]);
    assert_eq!(kind(&pay(10, 1_500.0)), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Totp)), DecisionKind::Completed);
    let d = pay(30, 1_000_000.0);
    assert_eq!(kind(&d), DecisionKind::StepUp, "not the grant's payout");
    let d = pay(40, 1_500.0);
    assert_eq!(kind(&d), DecisionKind::Allow, "the retry it was earned for");
    assert_eq!(names(&d), vec![au::SKIPPED]);
    assert_eq!(kind(&pay(50, 1_500.0)), DecisionKind::StepUp, "once");
}

#[test]
fn finding_5_an_every_time_grant_is_not_shared_across_applications() {
    let text = r#"tenant acme {
      operation payout sensitive
      attribute amount: number
      policy payouts "Confirm this payout." {
        when operation == payout require aal2 every time
      }
    }
    application a of acme { }
    application b of acme { }"#;
    let store = MemoryStore::new();
    let a = Sim::text(&store, text, "a", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&a.sign_in(0, paris())), DecisionKind::Allow);
    let pay = vec![("amount", Value::Number(10.0))];
    assert_eq!(kind(&a.op(10, "payout", pay.clone())), DecisionKind::StepUp);
    assert_eq!(kind(&a.step_up(20, Factor::Totp)), DecisionKind::Completed);
    let b = Sim {
        app: "b".into(),
        ..a
    };
    assert_eq!(kind(&b.op(30, "payout", pay.clone())), DecisionKind::StepUp);
    let a = Sim {
        app: "a".into(),
        ..b
    };
    assert_eq!(kind(&a.op(40, "payout", pay)), DecisionKind::Allow);
}

#[test]
fn finding_5_an_every_time_grant_earned_without_the_value_it_binds_allows_nothing() {
    // A payout without its amount fires `big_payouts` (unknown, fail closed). Completing that
    // step-up cannot say which payout it was for, so its grant pays out no retry: not one
    // without the amount, not one with a mistyped amount (found by the property test).
    let text = r#"tenant acme {
      operation payout sensitive
      attribute amount: number
      policy big_payouts "Confirm this payout." {
        when operation == payout and amount > 1000 require aal2 every time
      }
    }"#;
    let store = MemoryStore::new();
    let s = Sim::text(&store, text, "", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(10, "payout", vec![])), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Totp)), DecisionKind::Completed);
    assert_eq!(kind(&s.op(30, "payout", vec![])), DecisionKind::StepUp);
    let mistyped = vec![("amount", Value::Str("5000".into()))];
    assert_eq!(
        kind(&s.op(40, "payout", mistyped.clone())),
        DecisionKind::StepUp
    );
    assert_eq!(kind(&s.step_up(50, Factor::Totp)), DecisionKind::Completed);
    assert_eq!(kind(&s.op(60, "payout", mistyped)), DecisionKind::StepUp);
    // With its amount, the same policy's grant pays the retry it was earned for, once.
    let pay = vec![("amount", Value::Number(5_000.0))];
    assert_eq!(kind(&s.op(70, "payout", pay.clone())), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(80, Factor::Totp)), DecisionKind::Completed);
    assert_eq!(kind(&s.op(90, "payout", pay.clone())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(100, "payout", pay)), DecisionKind::StepUp);
}

#[test]
fn finding_6_a_session_whose_sign_in_was_never_allowed_is_refused() {
    let store = MemoryStore::new();
    let s = Sim::rules(
        &store,
        "dashboard",
        &[Factor::Password, Factor::Totp, Factor::Sms],
    );
    let listed = Context {
        ip: Some("203.0.113.7".into()),
        ..paris()
    };
    let d = s.sign_in(0, listed);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(d.required.unwrap().aal, Aal::Aal3);
    for op in ["view_profile", "change_email"] {
        let d = s.op(10, op, vec![]);
        assert_eq!(kind(&d), DecisionKind::Deny, "{op}");
        assert_eq!(d.deny, Some(DenyReason::SessionNotEstablished), "{op}");
        assert_eq!(names(&d), vec![au::DENIED]);
    }
    // SMS cannot answer the aal3 sign-in challenge, which stays pending...
    assert_eq!(kind(&s.step_up(20, Factor::Sms)), DecisionKind::Failed);
    assert_eq!(kind(&s.op(30, "view_profile", vec![])), DecisionKind::Deny);
}

#[test]
fn finding_6_a_pending_sign_in_challenge_survives_and_its_completion_establishes_the_session() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let listed = Context {
        ip: Some("203.0.113.7".into()),
        ..paris()
    };
    let d = s.sign_in(0, listed);
    let sign_in_challenge = d.challenge_id.clone().unwrap();
    assert_eq!(kind(&s.op(10, "change_email", vec![])), DecisionKind::Deny);
    let d = s.step_up(20, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Completed);
    assert_eq!(d.challenge_id.as_deref(), Some(&*sign_in_challenge));
    assert_eq!(kind(&s.op(30, "view_profile", vec![])), DecisionKind::Allow);
    // The totp proof of the sign-in's step-up satisfies aal2 for 15 minutes.
    assert_eq!(kind(&s.op(40, "change_email", vec![])), DecisionKind::Allow);
}

/// A sign-in on a session that is already established (an embedder that gives every login of
/// a user one session id) is another login's: its challenge is not the session's pending
/// sign-in, and no `step_up` of the session completes it. Else the user's answer to their own
/// challenge, or a retried answer, completed an attacker's sign-in (password only, from a new
/// device) and taught the history the attacker's device (SPEC §4 rule 9: an abandoned step-up
/// teaches nothing). The HTTP layer skips such a challenge the same way.
#[test]
fn another_logins_sign_in_challenge_is_never_completed_in_an_established_session() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let attacker = attacker();
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    // The user's own step-up, then the attacker's sign-in on the same session.
    assert_eq!(
        kind(&s.op(10, "change_email", vec![])),
        DecisionKind::StepUp
    );
    let d = s.sign_in(20, attacker.clone());
    assert_eq!(kind(&d), DecisionKind::StepUp);
    let attackers = d.challenge_id.clone().unwrap();
    // The user's answer (and its retry) completes no sign-in and teaches nothing.
    for at in [30, 31] {
        let d = s.step_up(at, Factor::Totp);
        assert_ne!(d.challenge_id.as_ref(), Some(&attackers), "at {at}");
        assert!(
            d.effects.history.is_none(),
            "at {at}: {:?}",
            d.effects.history
        );
    }
    // The user's next step-up completes their own challenge.
    assert_eq!(
        kind(&s.op(40, "change_email", vec![])),
        DecisionKind::StepUp
    );
    let d = s.step_up(50, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Completed);
    assert_ne!(d.challenge_id.as_ref(), Some(&attackers));
    assert!(d.effects.history.is_none(), "{:?}", d.effects.history);
    // The attacker's device is still new: a sign-in from it in a session of its own is asked.
    let fresh = Sim {
        session: "s2".into(),
        ..Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp])
    };
    assert_eq!(kind(&fresh.sign_in(60, attacker)), DecisionKind::StepUp);
}

/// Two sign-ins waiting in one session that is not yet established (a user's and an
/// attacker's, on a session id an embedder shares between logins): an answer cannot say whose
/// sign-in it completes, so it completes neither, and the history learns neither device. A
/// sign-in alone waiting (the other expired) is completed as before.
#[test]
fn two_waiting_sign_ins_in_one_session_complete_neither() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let phone = Context {
        device: Some("new-phone".into()),
        ..paris()
    };
    let attacker = attacker();
    assert_eq!(kind(&s.sign_in(0, phone.clone())), DecisionKind::StepUp);
    assert_eq!(kind(&s.sign_in(10, attacker.clone())), DecisionKind::StepUp);
    let d = s.step_up(20, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Failed);
    assert!(d.effects.history.is_none(), "{:?}", d.effects.history);
    assert_eq!(names(&d), vec![au::FAILED]);
    // Nothing was established, and neither device was learned.
    assert_eq!(kind(&s.op(30, "view_profile", vec![])), DecisionKind::Deny);
    let (h, _) = store.load("acme", "alice", "s1").unwrap();
    assert!(!h.devices.contains("attacker-laptop") && !h.devices.contains("new-phone"));
    // The user signs in again, alone: the answer completes that sign-in.
    assert_eq!(kind(&s.sign_in(40, phone.clone())), DecisionKind::StepUp);
    let d = s.step_up(50, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Completed);
    let (h, _) = store.load("acme", "alice", "s1").unwrap();
    assert!(h.devices.contains("new-phone") && !h.devices.contains("attacker-laptop"));
    // A waiting sign-in whose challenge expired still counts (an answer a little late is no
    // less the user's): neither completes, and the login that signs in again alone does.
    let s = Sim {
        session: "s2".into(),
        ..s
    };
    assert_eq!(
        kind(&s.sign_in(1_000, attacker.clone())),
        DecisionKind::StepUp
    );
    let later = Context {
        device: Some("tablet".into()),
        ..paris()
    };
    assert_eq!(kind(&s.sign_in(1_290, later.clone())), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(1_300, Factor::Totp)), DecisionKind::Failed);
    assert_eq!(kind(&s.sign_in(1_320, later)), DecisionKind::StepUp);
    assert_eq!(
        kind(&s.step_up(1_330, Factor::Totp)),
        DecisionKind::Completed
    );
    // Another login's sign-ins, many, from one place: the user's waiting sign-in is not pushed
    // out of the session's bounded list by them, and the answer completes neither.
    let s = Sim {
        session: "s3".into(),
        ..s
    };
    let phone = Context {
        device: Some("phone-3".into()),
        ..paris()
    };
    assert_eq!(kind(&s.sign_in(2_000, phone.clone())), DecisionKind::StepUp);
    for i in 0..10 {
        assert_eq!(
            kind(&s.sign_in(2_010 + i, attacker.clone())),
            DecisionKind::StepUp
        );
    }
    let d = s.step_up(2_030, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Failed);
    assert!(d.effects.history.is_none(), "{:?}", d.effects.history);
    // Another login that sends the user's device id from elsewhere does not replace the
    // user's waiting sign-in: two are waiting, and the answer completes neither.
    let s = Sim {
        session: "s4".into(),
        ..s
    };
    let spoofed = Context {
        country: Some("BR".into()),
        location: Some(stepup_engine::Location {
            lat: -23.55,
            lon: -46.63,
        }),
        ..phone.clone()
    };
    assert_eq!(kind(&s.sign_in(3_000, phone)), DecisionKind::StepUp);
    assert_eq!(kind(&s.sign_in(3_010, spoofed)), DecisionKind::StepUp);
    let d = s.step_up(3_020, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Failed);
    assert!(d.effects.history.is_none(), "{:?}", d.effects.history);
    let (h, _) = store.load("acme", "alice", "s4").unwrap();
    assert!(!h.countries.contains_key("BR"), "{:?}", h.countries);
}

#[test]
fn finding_7_a_first_access_is_learned_when_its_step_up_completes() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let access = |secs| {
        s.at(
            secs,
            Event::Access {
                resource: "payments".into(),
                context: None,
            },
        )
    };
    assert_eq!(kind(&access(10)), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Totp)), DecisionKind::Completed);
    // The next day, long after the elevation lapsed: no longer a first access.
    let d = access(86_400);
    assert_eq!(kind(&d), DecisionKind::Allow);
    assert!(d.fired.is_empty(), "{:?}", d.fired);
}

/// One policy whose own requirement no factor can reach (`aal3 factor sms`) loads — `check`
/// warns of it (S012, SPEC §9 lists it among the lints) — and when it fires the action is
/// refused as a `conflict` (SPEC §10: no factor of the intersection reaches the AAL), whatever
/// the user enrolled; where it does not fire, nothing changes. (It was an error that kept the
/// rules from loading.)
#[test]
fn one_policy_no_factor_can_reach_loads_and_is_refused_as_a_conflict() {
    let text = r#"tenant acme {
      operation wire sensitive
      operation view routine
      policy unreachable "Confirm this wire." {
        when operation == wire require aal3 factor sms
      }
    }"#;
    let loaded = stepup_dsl::load_sources(&[stepup_dsl::Source::text("u.policy", text)]);
    assert_eq!(
        loaded
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect::<Vec<_>>(),
        ["S012"]
    );
    for enrolled in [
        vec![Factor::Password, Factor::Sms],
        vec![
            Factor::Password,
            Factor::Sms,
            Factor::Totp,
            Factor::Webauthn,
        ],
    ] {
        let store = MemoryStore::new();
        let s = Sim::text(&store, text, "", &enrolled);
        assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
        let d = s.op(10, "wire", vec![]);
        assert_eq!(
            (kind(&d), d.deny),
            (DecisionKind::Deny, Some(DenyReason::Conflict)),
            "{enrolled:?}"
        );
        assert_eq!(*d.fired, ["unreachable".to_string()]);
        let answer = stepup_engine::contract::http_answer(&d).unwrap();
        assert_eq!(answer.status, 403);
        assert_eq!(answer.body["error"], "policy_conflict");
        assert_eq!(kind(&s.op(20, "view", vec![])), DecisionKind::Allow);
    }
}

#[test]
fn finding_8_a_requirement_no_factor_can_reach_is_a_conflict_not_an_enrolment_gap() {
    let text = r#"tenant acme {
      operation wire sensitive
      operation payout sensitive
      policy weak_factors "Confirm with a code." {
        when operation == wire require aal2 factor sms|email_otp for 5m
      }
      policy strong "Confirm with a strong factor." {
        when operation == wire require aal3 for 5m
      }
      policy keys "Confirm with your key." {
        when operation == payout require aal3 factor webauthn|totp for 5m
      }
    }"#;
    let store = MemoryStore::new();
    let s = Sim::text(&store, text, "", &[Factor::Password, Factor::Sms]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let d = s.op(10, "wire", vec![]);
    assert_eq!(kind(&d), DecisionKind::Deny);
    assert_eq!(d.deny, Some(DenyReason::Conflict));
    let answer = stepup_engine::contract::http_answer(&d).unwrap();
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body["error"], "policy_conflict");
    assert_eq!(
        answer.body["policies"],
        serde_json::json!(["strong", "weak_factors"])
    );
    // An enrolment gap: webauthn or totp would do, the user has neither.
    let d = s.op(20, "payout", vec![]);
    assert_eq!(d.deny, Some(DenyReason::StrongerFactorRequired));
    assert_eq!(
        d.message.as_deref(),
        Some("This operation requires a stronger factor. Set up WebAuthn or TOTP to proceed.")
    );
    let answer = stepup_engine::contract::http_answer(&d).unwrap();
    assert_eq!(answer.body["error"], "stronger_factor_required");
}

#[test]
fn finding_10_the_sign_in_factors_satisfy_the_sign_in_policies() {
    let store = MemoryStore::new();
    let s = Sim::rules(
        &store,
        "dashboard",
        &[Factor::Password, Factor::Webauthn, Factor::Totp],
    );
    let new_laptop = Context {
        device: Some("laptop-2".into()),
        ..paris()
    };
    let d = s.sign_in_with(0, new_laptop.clone(), &[Factor::Password, Factor::Webauthn]);
    assert_eq!(kind(&d), DecisionKind::Allow);
    assert_eq!(*d.satisfied, ["new_device_sign_in"]);
    assert_eq!(names(&d), vec![au::SKIPPED]);
    // With a password alone the same sign-in steps up.
    let s = Sim {
        session: "s2".into(),
        ..s
    };
    let d = s.sign_in(
        10,
        Context {
            device: Some("laptop-3".into()),
            ..paris()
        },
    );
    assert_eq!(kind(&d), DecisionKind::StepUp);
}

/// A store whose commits fail while `broken` is set.
struct FlakyStore {
    inner: MemoryStore,
    broken: AtomicBool,
}

impl Store for FlakyStore {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        self.inner.load(tenant, user, session)
    }
    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk on fire".into()));
        }
        self.inner.commit(tenant, user, session, state, update)
    }
    fn put_history(&self, tenant: &str, user: &str, h: &UserHistory) -> Result<(), StoreError> {
        self.inner.put_history(tenant, user, h)
    }
    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
        self.inner.reset_session(tenant, user, session)
    }
}

#[test]
fn an_allow_that_spends_a_grant_is_not_an_allow_when_its_commit_fails() {
    let store = FlakyStore {
        inner: MemoryStore::new(),
        broken: AtomicBool::new(false),
    };
    let s = Sim::rules(&store, "finance", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let pay = |secs| s.op(secs, "payout", vec![("amount", Value::Number(1_500.0))]);
    assert_eq!(kind(&pay(10)), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Totp)), DecisionKind::Completed);
    store.broken.store(true, Ordering::SeqCst);
    let d = pay(30);
    assert_eq!(kind(&d), DecisionKind::Deny);
    assert_eq!(d.deny, Some(DenyReason::StoreUnavailable));
    // The grant was not spent: once the store is back, the retry goes through, once.
    store.broken.store(false, Ordering::SeqCst);
    assert_eq!(kind(&pay(40)), DecisionKind::Allow);
    assert_eq!(kind(&pay(50)), DecisionKind::StepUp);
}

#[test]
fn a_sign_in_whose_commit_fails_does_not_establish_a_session() {
    let store = FlakyStore {
        inner: MemoryStore::new(),
        broken: AtomicBool::new(true),
    };
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let d = s.sign_in(0, paris());
    assert_eq!(kind(&d), DecisionKind::Deny);
    assert_eq!(d.deny, Some(DenyReason::StoreUnavailable));
    store.broken.store(false, Ordering::SeqCst);
    let d = s.op(10, "view_profile", vec![]);
    assert_eq!(d.deny, Some(DenyReason::SessionNotEstablished));
}

/// A store that cannot be read at all.
struct DownStore;

impl Store for DownStore {
    fn load(&self, _: &str, _: &str, _: &str) -> Result<(UserHistory, SessionState), StoreError> {
        Err(StoreError::Timeout(50))
    }
    fn commit(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Option<&SessionState>,
        _: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Timeout(50))
    }
    fn put_history(&self, _: &str, _: &str, _: &UserHistory) -> Result<(), StoreError> {
        Ok(())
    }
    fn reset_session(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Timeout(50))
    }
}

#[test]
fn an_unreadable_store_refuses_every_event() {
    let s = Sim::rules(&DownStore, "dashboard", &[Factor::Password, Factor::Totp]);
    for d in [
        s.sign_in(0, paris()),
        s.op(10, "view_profile", vec![]),
        s.step_up(20, Factor::Totp),
    ] {
        assert!(!d.succeeded(), "{:?}", d.kind);
        assert_eq!(d.deny, Some(DenyReason::StoreUnavailable));
    }
}

/// A set of several files, decided for one sign-in in the tenant `default`.
fn bare_rules_set(files: &[(&str, &str)]) -> CompiledSet {
    let sources: Vec<stepup_dsl::Source> = files
        .iter()
        .map(|(name, text)| stepup_dsl::Source::text(name, text))
        .collect();
    let loaded = stepup_dsl::load_sources(&sources);
    CompiledSet::from_loaded(loaded).unwrap()
}

fn risky_sign_in(set: &CompiledSet, app: &str) -> Decision {
    let req = Request {
        tenant: "default".into(),
        application: app.into(),
        user: "alice".into(),
        enrolled: [Factor::Password, Factor::Totp].into_iter().collect(),
        session: "s".into(),
        event: Event::SignIn {
            context: Context {
                platform_risk: Some(90),
                ..paris()
            },
            factors: FactorSet::one(Factor::Password),
        },
        now: Timestamp(T0),
    };
    let state = stepup_engine::State {
        history: Ok(UserHistory::default()),
        session: SessionState::default(),
    };
    set.decide(&req, &state, false)
}

#[test]
fn an_applications_bare_rule_adds_a_policy_and_never_replaces_the_tenants() {
    // Found by review: the tenant's bare rule in `finance.policy` and application `finance`'s
    // bare rule were both named `finance#1`, so the application's replaced the tenant's and
    // the risky sign-in was allowed in the application.
    let set = bare_rules_set(&[
        (
            "finance.policy",
            "when risk >= 70 or new_device require aal3 factor webauthn|totp for 5m\n",
        ),
        (
            "apps.policy",
            "application finance of default {\n  when threat_intel require aal2 for 5m\n}\n",
        ),
    ]);
    for app in ["", "finance"] {
        let d = risky_sign_in(&set, app);
        assert_eq!(d.kind, DecisionKind::StepUp, "application {app:?}: {d:?}");
        assert!(d.fired.contains(&"finance#1".to_string()), "{:?}", d.fired);
    }
    let resolved = set.model.resolve("default", "finance").unwrap();
    let names: Vec<&str> = resolved.policies.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"finance#1") && names.contains(&"finance#2"),
        "both policies, under two names: {names:?}"
    );
}

#[test]
fn bare_rules_of_two_files_with_one_stem_keep_two_names() {
    let set = bare_rules_set(&[
        ("a/risk.policy", "when risk >= 70 require aal2 for 5m\n"),
        (
            "b/risk.policy",
            "when new_device require aal3 factor webauthn|totp for 5m\n",
        ),
    ]);
    let resolved = set.model.resolve("default", "").unwrap();
    let mut names: Vec<&str> = resolved
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| n.starts_with("risk#"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["risk#1", "risk#2"]);
    let d = risky_sign_in(&set, "");
    assert_eq!(d.kind, DecisionKind::StepUp);
    assert_eq!(*d.fired, ["risk#1", "risk#2"]);
}

/// A session whose challenge counter is at its end (a store written by hand, or tampered with)
/// still steps up, its counter starting again, rather than panicking the process.
#[test]
fn a_session_whose_challenge_counter_is_at_its_end_still_steps_up() {
    let set = CompiledSet::from_text(
        "t.policy",
        "operation pay sensitive\npolicy p { when operation == pay require aal2 }\n",
    )
    .unwrap();
    let mut state = stepup_engine::State::established();
    state.session.seq = u64::MAX;
    let req = Request {
        tenant: "default".into(),
        application: "".into(),
        user: "alice".into(),
        enrolled: [Factor::Password, Factor::Totp].into_iter().collect(),
        session: "s".into(),
        event: Event::Operation {
            name: "pay".into(),
            attrs: vec![],
            context: None,
        },
        now: Timestamp(T0),
    };
    let d = set.decide(&req, &state, false);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert!(d.challenge_id.is_some());
    assert_eq!(d.effects.session.as_ref().map(|s| s.seq), Some(0));
}

/// A review's finding: a location was any two numbers. A latitude of 408.85 read as 48.85 (Paris,
/// so no impossible travel from Paris), and a `NaN` was saved as the impossible-travel
/// reference, which a store writing JSON saves as `null` and then cannot read (every later
/// decision of the user refused). A location that is not a point on Earth is no location: the
/// signal is unknown (its policy fires), and the history never learns it.
#[test]
fn a_location_not_on_earth_is_no_location() {
    let not_on_earth = [
        (f64::NAN, 2.35),
        (48.85, f64::NAN),
        (48.85, f64::INFINITY),
        (f64::NEG_INFINITY, 2.35),
        (408.85, 2.35),
        (48.85, 362.35),
        (-90.01, 0.0),
        (0.0, 180.01),
    ];
    for (lat, lon) in not_on_earth {
        let store = MemoryStore::new();
        let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
        let there = Context {
            location: Some(Location { lat, lon }),
            ..paris()
        };
        let d = s.sign_in(60, there);
        assert_eq!(kind(&d), DecisionKind::StepUp, "{lat} {lon}: {d:?}");
        assert_eq!(*d.fired, ["risky_sign_in"], "{lat} {lon}");
        assert_eq!(kind(&s.step_up(70, Factor::Totp)), DecisionKind::Completed);
        // The completed sign-in taught its device and country, not its place.
        let (h, _) = store.load("acme", "alice", "s1").unwrap();
        assert_eq!(
            h.last_sign_in.clone().unwrap().location,
            Some(PARIS),
            "{lat} {lon}"
        );
        // An update carrying such a place (a challenge stored by an earlier build) moves nothing.
        let mut learned = h.clone();
        HistoryUpdate {
            last_sign_in: Some(LastSignIn {
                at: Timestamp(T0 + 100),
                country: Some("FR".into()),
                location: Some(Location { lat, lon }),
            }),
            ..HistoryUpdate::default()
        }
        .apply(&mut learned);
        assert_eq!(learned, h, "{lat} {lon}");
    }
    // The edges are on Earth: a sign-in near Paris is no travel at all.
    for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0)] {
        assert!(Location { lat, lon }.is_valid());
    }
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let near = Context {
        location: Some(Location {
            lat: 48.86,
            lon: 2.35,
        }),
        ..paris()
    };
    assert_eq!(kind(&s.sign_in(60, near)), DecisionKind::Allow);
    // A reference that is not on Earth (a store written by hand) makes travel unknown too.
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let (mut h, _) = store.load("acme", "alice", "none").unwrap();
    if let Some(last) = &mut h.last_sign_in {
        last.location = Some(Location {
            lat: 408.85,
            lon: 2.35,
        });
    }
    store.put_history("acme", "alice", &h).unwrap();
    let d = s.sign_in(60, paris());
    assert_eq!(kind(&d), DecisionKind::StepUp, "{d:?}");
}

/// Found by the review of round 19: a sign-in on a session that is already established (an
/// embedder that gives a user's logins one session id) rode on the proofs of the session's
/// first login. A password-only sign-in from an attacker's laptop, after the user's own totp
/// step-up, was allowed — and taught the history the attacker's device. A sign-in is proved by
/// its own factors alone (SPEC §10).
#[test]
fn a_sign_in_is_proved_by_its_own_factors_not_by_the_sessions_earlier_proofs() {
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let attacker = attacker();
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(
        kind(&s.op(10, "change_email", vec![])),
        DecisionKind::StepUp
    );
    assert_eq!(kind(&s.step_up(20, Factor::Totp)), DecisionKind::Completed);
    // The session proves aal2 with totp for 15 minutes: an operation rides on it...
    assert_eq!(kind(&s.op(30, "change_email", vec![])), DecisionKind::Allow);
    // ...another sign-in does not.
    let d = s.sign_in(40, attacker.clone());
    assert_eq!(kind(&d), DecisionKind::StepUp, "{:?}", d.satisfied);
    assert!(d.satisfied.is_empty(), "{:?}", d.satisfied);
    let (h, _) = store.load("acme", "alice", "s1").unwrap();
    assert!(!h.devices.contains("attacker-laptop"), "{:?}", h.devices);
    // A sign-in with a factor of its own that proves the policy is allowed, as before.
    let d = s.sign_in_with(50, attacker, &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&d), DecisionKind::Allow);
}

/// Found by the review of round 19: the completion of a sign-in's `every time` challenge left
/// a grant keyed `sign_in`, and another login's password-only sign-in on the same session
/// spent it. A sign-in's challenge leaves no grant (its completion is the sign-in's answer), and
/// no grant allows a sign-in.
#[test]
fn an_every_time_sign_in_challenge_leaves_no_grant_for_another_sign_in() {
    let text = r#"tenant acme {
      policy new_dev "New device." { when new_device require aal2 factor any every time }
    }"#;
    let store = MemoryStore::new();
    let s = Sim::text(&store, text, "", &[Factor::Password, Factor::Totp]);
    let phone = Context {
        device: Some("phone-1".into()),
        ..paris()
    };
    assert_eq!(kind(&s.sign_in(0, phone)), DecisionKind::StepUp);
    let d = s.step_up(10, Factor::Totp);
    assert_eq!(kind(&d), DecisionKind::Completed);
    let session = d.effects.session.as_ref().unwrap();
    assert!(session.established);
    assert!(session.grants.is_empty(), "{:?}", session.grants);
    let attacker = attacker();
    assert_eq!(kind(&s.sign_in(20, attacker)), DecisionKind::StepUp);
    // A grant planted in the session (a store written by hand) allows no sign-in either.
    let (_, mut planted) = store.load("acme", "alice", "s1").unwrap();
    planted.grants.push(stepup_engine::state::Grant {
        challenge_id: "ch_1".into(),
        application: "".into(),
        event_key: "sign_in".into(),
        binding: Vec::new(),
        proof: Some(stepup_engine::state::AuthEvent {
            at: Timestamp(T0 + 10),
            factors: FactorSet::ANY,
            cap: None,
            unnamed: false,
        }),
        policies: vec!["new_dev".into()],
        expires_at: Timestamp(T0 + 3_600),
        login: None,
    });
    let req = s.req(
        30,
        Event::SignIn {
            context: Context {
                device: Some("laptop-9".into()),
                ..paris()
            },
            factors: FactorSet::one(Factor::Password),
        },
    );
    let state = stepup_engine::State {
        history: Ok(store.load("acme", "alice", "s1").unwrap().0),
        session: planted,
    };
    assert_eq!(
        s.engine.current().decide(&req, &state, false).kind,
        DecisionKind::StepUp
    );
}

/// Found by the review of round 19: an `every time` grant matched its policy by name only, so
/// one earned under a policy a reload then made stricter (aal2 any → aal3 webauthn|totp)
/// still paid out, audited under the new set's hash. A grant keeps the authentication that
/// earned it, and satisfies the policy only if that proves the requirement as the rules in force
/// read it (SPEC §4 rule 8); a reload that leaves the policy alone leaves the grant good.
#[test]
fn an_every_time_grant_allows_nothing_after_a_reload_that_made_its_policy_stricter() {
    let v1 = r#"tenant acme {
      operation pay sensitive
      policy pay "Confirm." { when operation == pay require aal2 factor any every time }
    }"#;
    let v2 = r#"tenant acme {
      operation pay sensitive
      policy pay "Confirm with a key." { when operation == pay require aal3 factor webauthn|totp every time }
    }"#;
    let enrolled = [Factor::Password, Factor::Sms, Factor::Totp];
    // Without a reload the grant pays out its one retry.
    let store = MemoryStore::new();
    let s = Sim::text(&store, v1, "", &enrolled);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(10, "pay", vec![])), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Sms)), DecisionKind::Completed);
    // The same grant without its proof (a session stored before grants kept one) allows nothing.
    let (history, mut session) = store.load("acme", "alice", "s1").unwrap();
    assert_eq!(session.grants.len(), 1);
    session.grants[0].proof = None;
    let state = stepup_engine::State {
        history: Ok(history),
        session,
    };
    let retry = s.req(
        30,
        Event::Operation {
            name: "pay".into(),
            attrs: vec![],
            context: None,
        },
    );
    assert_eq!(
        s.engine.current().decide(&retry, &state, false).kind,
        DecisionKind::StepUp
    );
    assert_eq!(kind(&s.op(30, "pay", vec![])), DecisionKind::Allow);
    // A reload that changes other rules (another tenant, a feed) leaves the grant good.
    let store = MemoryStore::new();
    let s = Sim::text(&store, v1, "", &enrolled);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(10, "pay", vec![])), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Sms)), DecisionKind::Completed);
    let other = format!("{v1}\ntenant other {{ policy p {{ when new_device require aal2 }} }}");
    let reloaded = CompiledSet::from_text("t.policy", &other).unwrap();
    assert_ne!(reloaded.hash(), s.engine.current().hash());
    s.engine.swap(reloaded);
    assert_eq!(kind(&s.op(30, "pay", vec![])), DecisionKind::Allow);
    // Completed before the reload, retried after it: asked again, for v2's requirement.
    let store = MemoryStore::new();
    let s = Sim::text(&store, v1, "", &enrolled);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(10, "pay", vec![])), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(20, Factor::Sms)), DecisionKind::Completed);
    s.engine
        .swap(CompiledSet::from_text("t.policy", v2).unwrap());
    let d = s.op(30, "pay", vec![]);
    assert_eq!(kind(&d), DecisionKind::StepUp, "{:?}", d.satisfied);
    assert_eq!(d.required.unwrap().aal, Aal::Aal3);
    // Completed with a factor stronger than the challenge asked (a security key for aal2):
    // the grant proves what the challenge asked, no more (through the HTTP layer a token's
    // `acr` may have capped it there), so v2's aal3 asks again.
    let store = MemoryStore::new();
    let s = Sim::text(&store, v1, "", &[Factor::Password, Factor::Webauthn]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(10, "pay", vec![])), DecisionKind::StepUp);
    assert_eq!(
        kind(&s.step_up(20, Factor::Webauthn)),
        DecisionKind::Completed
    );
    s.engine
        .swap(CompiledSet::from_text("t.policy", v2).unwrap());
    assert_eq!(kind(&s.op(30, "pay", vec![])), DecisionKind::StepUp);
    // Issued before the reload, completed after it: the sms completes the challenge (a real
    // proof), and its grant allows nothing under v2.
    let store = MemoryStore::new();
    let s = Sim::text(&store, v1, "", &enrolled);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(kind(&s.op(10, "pay", vec![])), DecisionKind::StepUp);
    s.engine
        .swap(CompiledSet::from_text("t.policy", v2).unwrap());
    assert_eq!(kind(&s.step_up(20, Factor::Sms)), DecisionKind::Completed);
    assert_eq!(kind(&s.op(30, "pay", vec![])), DecisionKind::StepUp);
}

/// Found by the review of round 19: a history time in the future (a store written by hand or
/// imported, an instance whose clock runs ahead) counted as seen recently, so `new_country`
/// and `first_access` were false and their policies did not fire. A time later than the
/// clocks' skew allows is not evidence: what reads it is unknown (and fires), and the next
/// allowed event's own time replaces it. Within the skew it counts as now.
#[test]
fn a_history_time_in_the_future_is_not_evidence() {
    use stepup_engine::risk::HISTORY_CLOCK_SKEW_SECS;
    let country_seen = |ahead: i64| {
        let store = MemoryStore::new();
        let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
        let (mut h, _) = store.load("acme", "alice", "s1").unwrap();
        h.countries.insert("FR".into(), Timestamp(T0 + ahead));
        store.put_history("acme", "alice", &h).unwrap();
        (s.sign_in(0, paris()), store)
    };
    let (d, _) = country_seen(10 * 86_400);
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(*d.fired, ["new_country_sign_in"]);
    says(&d, "`new_country` is unknown: the history dates");
    let (d, _) = country_seen(-40 * 86_400);
    assert_eq!(kind(&d), DecisionKind::StepUp, "40 days ago is not recent");
    let (d, store) = country_seen(HISTORY_CLOCK_SKEW_SECS);
    assert_eq!(kind(&d), DecisionKind::Allow, "within the skew: seen now");
    // An allowed sign-in replaces a time too far ahead with its own.
    let (mut h, _) = store.load("acme", "alice", "s1").unwrap();
    h.countries.insert("FR".into(), Timestamp(T0 + 86_400));
    store.put_history("acme", "alice", &h).unwrap();
    let s = Sim {
        session: "s2".into(),
        engine: Engine::load(&[rules()]).unwrap(),
        store: &store,
        app: "dashboard".into(),
        enrolled: [Factor::Password, Factor::Totp].into_iter().collect(),
    };
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::StepUp);
    assert_eq!(kind(&s.step_up(10, Factor::Totp)), DecisionKind::Completed);
    let (h, _) = store.load("acme", "alice", "s2").unwrap();
    assert_eq!(
        h.countries.get("FR"),
        Some(&Timestamp(T0)),
        "{:?}",
        h.countries
    );
    // `first_access(payments)` with an access dated in the future: unknown, it fires.
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let (mut h, _) = store.load("acme", "alice", "s1").unwrap();
    h.accesses
        .insert("payments".into(), Timestamp(T0 + 10 * 86_400));
    store.put_history("acme", "alice", &h).unwrap();
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    let d = s.at(
        10,
        Event::Access {
            resource: "payments".into(),
            context: None,
        },
    );
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(*d.fired, ["first_payments"]);
    says(&d, "`first_access(payments)` is unknown: the history dates");
    // The last sign-in dated a day ahead, in Sydney: `impossible_travel` from it is unknown
    // (not "no time has passed", which the policy reads as travel either way: here it says why),
    // and the allowed sign-in's own place and time replace it.
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    let (mut h, _) = store.load("acme", "alice", "s1").unwrap();
    h.last_sign_in = Some(LastSignIn {
        at: Timestamp(T0 + 86_400),
        country: Some("AU".into()),
        location: Some(SYDNEY),
    });
    store.put_history("acme", "alice", &h).unwrap();
    let d = s.sign_in(0, paris());
    assert_eq!(kind(&d), DecisionKind::StepUp);
    assert_eq!(*d.fired, ["risky_sign_in"]);
    says(&d, "`impossible_travel` is unknown: the history dates");
    assert_eq!(kind(&s.step_up(10, Factor::Totp)), DecisionKind::Completed);
    let (h, _) = store.load("acme", "alice", "s1").unwrap();
    assert_eq!(h.last_sign_in.map(|l| l.at), Some(Timestamp(T0)));
}

/// A tenant without a catalog: `operation == payout` guards the name as the policies spell it.
const CATALOGLESS: &str = r"tenant acme {
  policy payouts { when operation == payout require aal2 }
  policy reports { when resource == reports require aal2 }
}";

#[test]
fn a_name_spelt_like_a_guarded_one_is_refused_not_read_as_an_unguarded_one() {
    let store = MemoryStore::new();
    let s = Sim::text(&store, CATALOGLESS, "", &[Factor::Password, Factor::Totp]);
    let d = s.sign_in(0, paris());
    assert_eq!(
        kind(&d),
        DecisionKind::Allow,
        "{:?} {:?}",
        d.errors,
        d.message
    );
    assert_eq!(kind(&s.op(10, "payout", vec![])), DecisionKind::StepUp);
    for (i, spelt) in [
        "Payout",
        "PAYOUT",
        "pay_out",
        "pay-out",
        " payout",
        "pay\u{200b}out",
        "pay\u{202e}out",
        "p\u{0430}yout",                                          // a Cyrillic `а`
        "\u{ff50}ayout",                                          // a fullwidth `p`
        "pay\u{3164}out", // a Hangul filler (a letter, drawn as nothing)
        "pay\u{f3}ut",    // a precomposed `ó`
        "payo\u{301}ut",  // a combining accent
        "PA\u{3a5}OUT",   // a Greek capital upsilon
        "\u{1d429}\u{1d41a}\u{1d432}\u{1d428}\u{1d42e}\u{1d42d}", // mathematical bold
        "PAY0UT",
    ]
    .into_iter()
    .enumerate()
    {
        let d = s.op(20 + i64::try_from(i).unwrap(), spelt, vec![]);
        assert_eq!(
            (kind(&d), d.deny),
            (DecisionKind::Deny, Some(DenyReason::CannotEvaluate)),
            "{spelt:?}"
        );
        assert!(
            d.errors[0].contains("reads like `payout`")
                || d.errors[0].contains("outside printable ASCII"),
            "{:?}",
            d.errors
        );
    }
    let d = s.at(
        40,
        Event::Access {
            resource: "Reports".into(),
            context: None,
        },
    );
    assert_eq!(d.deny, Some(DenyReason::CannotEvaluate), "{:?}", d.errors);
    assert_eq!(
        kind(&s.op(50, "view_profile", vec![])),
        DecisionKind::Allow,
        "a name that reads like none the policies guard is an unguarded operation"
    );
    // No name at all, or one too long to be anybody's: refused, its error bounded.
    let long = "x".repeat(100_000);
    for (i, no_name) in ["", "   ", "-", "/", long.as_str()].into_iter().enumerate() {
        let d = s.op(60 + i64::try_from(i).unwrap(), no_name, vec![]);
        assert_eq!(d.deny, Some(DenyReason::CannotEvaluate), "{:?}", d.errors);
        assert!(d.errors[0].contains("is no name"), "{:?}", d.errors);
        assert!(d.errors[0].len() < 400, "{}", d.errors[0].len());
        assert!(d.audit[0].event.len() < 400, "{}", d.audit[0].event.len());
    }
}

#[test]
fn a_name_a_script_guards_is_refused_when_spelt_otherwise() {
    let store = MemoryStore::new();
    let text = r#"tenant acme {
  policy scripted { when script "ctx.operation == \"change_email\"" require aal2 }
}"#;
    let s = Sim::text(&store, text, "", &[Factor::Password, Factor::Totp]);
    assert_eq!(kind(&s.sign_in(0, paris())), DecisionKind::Allow);
    assert_eq!(
        kind(&s.op(10, "change_email", vec![])),
        DecisionKind::StepUp
    );
    for spelt in ["Change_Email", "change_emaiI", "change-email"] {
        let d = s.op(20, spelt, vec![]);
        assert_eq!(
            d.deny,
            Some(DenyReason::CannotEvaluate),
            "{spelt}: {:?}",
            d.errors
        );
        assert!(
            d.errors[0].contains("reads like `change_email`"),
            "{:?}",
            d.errors
        );
    }
    assert_eq!(kind(&s.op(30, "view_profile", vec![])), DecisionKind::Allow);
}

/// Found by a SPEC scenario author: an empty (or blank) device fingerprint or country was read
/// as one: `new_device` true (not unknown), and one strong sign-in taught the history `""`,
/// known on every later sign-in that sent it (allowed). An empty one names none (SPEC §10).
#[test]
fn an_empty_device_or_country_is_none_and_is_never_learned() {
    let signal = |d: &Decision, k: SignalKind| {
        d.risk
            .as_ref()
            .and_then(|r| r.signals.iter().find(|s| s.signal == k))
            .map(|s| s.value)
    };
    for (blank, signal_kind, policy) in [
        ("", SignalKind::NewDevice, "new_device_sign_in"),
        ("  ", SignalKind::NewDevice, "new_device_sign_in"),
        ("", SignalKind::NewCountry, "new_country_sign_in"),
        (" \t", SignalKind::NewCountry, "new_country_sign_in"),
    ] {
        let store = MemoryStore::new();
        let mut s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Sms]);
        let ctx = || {
            let mut c = paris();
            match signal_kind {
                SignalKind::NewDevice => c.device = Some(blank.into()),
                _ => c.country = Some(blank.into()),
            }
            c
        };
        // A strong sign-in: the sms proves what the policy asks, so it is allowed.
        let d = s.sign_in_with(0, ctx(), &[Factor::Password, Factor::Sms]);
        assert_eq!(
            signal(&d, signal_kind),
            Some(Tri::Unknown),
            "{blank:?}: {d:?}"
        );
        assert_eq!(*d.fired, [policy], "{blank:?}");
        assert_eq!(kind(&d), DecisionKind::Allow, "{blank:?}");
        // It taught nothing blank: a later password sign-in sending it is questioned again.
        s.session = "s2".into();
        let d = s.sign_in(60, ctx());
        assert_eq!(
            signal(&d, signal_kind),
            Some(Tri::Unknown),
            "{blank:?}: {d:?}"
        );
        assert_eq!(kind(&d), DecisionKind::StepUp, "{blank:?}");
        let (h, _) = store.load("acme", "alice", "s2").unwrap();
        assert!(
            !h.devices.iter().any(|x| x.trim().is_empty())
                && !h.countries.keys().any(|x| x.trim().is_empty()),
            "{blank:?}: {h:?}"
        );
    }
    // Spaces around a name are not part of it (as the HTTP layer reads a header): ` laptop-1 `
    // and ` FR ` are the known device and country.
    let store = MemoryStore::new();
    let s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Sms]);
    let padded = Context {
        device: Some(" laptop-1 ".into()),
        country: Some(" FR ".into()),
        ..paris()
    };
    let d = s.sign_in(0, padded);
    assert_eq!(kind(&d), DecisionKind::Allow, "{d:?}");
    for k in [SignalKind::NewDevice, SignalKind::NewCountry] {
        assert_eq!(signal(&d, k), Some(Tri::False), "{k:?}");
    }
}

/// A country code is ISO 3166, whatever its capitals (an outside check: `fr` was a new country
/// where the history knew `FR`, and a country learned as `de` was new as `DE`): found in any
/// capitals, learned in capitals. A device fingerprint stays exact (it is opaque).
#[test]
fn a_country_code_is_one_country_in_any_capitals() {
    let signal = |d: &Decision, k: SignalKind| {
        d.risk
            .as_ref()
            .and_then(|r| r.signals.iter().find(|s| s.signal == k))
            .map(|s| s.value)
    };
    let store = MemoryStore::new();
    let mut s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Sms]);
    let from = |country: &str| Context {
        country: Some(country.into()),
        ..paris()
    };
    let d = s.sign_in(0, from("fr"));
    assert_eq!(
        signal(&d, SignalKind::NewCountry),
        Some(Tri::False),
        "{d:?}"
    );
    assert_eq!(kind(&d), DecisionKind::Allow, "{d:?}");
    // A new country, learned by a strong sign-in, in capitals.
    s.session = "s2".into();
    let d = s.sign_in_with(60, from("be"), &[Factor::Password, Factor::Sms]);
    assert_eq!(signal(&d, SignalKind::NewCountry), Some(Tri::True), "{d:?}");
    assert_eq!(kind(&d), DecisionKind::Allow, "{d:?}");
    let (h, _) = store.load("acme", "alice", "s2").unwrap();
    assert!(h.countries.contains_key("BE"), "{h:?}");
    s.session = "s3".into();
    for code in ["BE", "Be", "be"] {
        let d = s.sign_in(120, from(code));
        assert_eq!(
            signal(&d, SignalKind::NewCountry),
            Some(Tri::False),
            "{code}: {d:?}"
        );
    }
    // The fingerprint is exact.
    let d = s.sign_in(
        180,
        Context {
            device: Some("LAPTOP-1".into()),
            ..paris()
        },
    );
    assert_eq!(signal(&d, SignalKind::NewDevice), Some(Tri::True), "{d:?}");
}

/// A request names its user and its session: a blank one is refused (`cannot_evaluate`), since
/// every caller that leaves it blank would share one history and one session (an integrator's
/// review: a second login with an empty session rode the first's elevation).
#[test]
fn a_request_without_a_user_or_a_session_is_refused() {
    let store = MemoryStore::new();
    let mut s = Sim::rules(&store, "dashboard", &[Factor::Password, Factor::Totp]);
    for blank in ["", "  ", "\u{3000}"] {
        s.session = blank.into();
        let d = s.sign_in(0, paris());
        assert_eq!(d.deny, Some(DenyReason::CannotEvaluate), "{blank:?}: {d:?}");
        assert!(d.errors[0].contains("names no session"), "{:?}", d.errors);
        s.session = "s1".into();
        let mut r = s.req(
            0,
            Event::SignIn {
                context: paris(),
                factors: FactorSet::one(Factor::Password),
            },
        );
        r.user = blank.into();
        let d = s.engine.process(&store, &r, false);
        assert_eq!(d.deny, Some(DenyReason::CannotEvaluate), "{blank:?}: {d:?}");
        assert!(d.errors[0].contains("names no user"), "{:?}", d.errors);
    }
}
