//! One test per rule of the source document (`shared/seed/adaptive-step-up.txt`), against the
//! repository's own `rules/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::path::PathBuf;

use stepup_core::{Aal, Factor, FactorSet, Timestamp};
use stepup_engine::decision::audit_names as au;
use stepup_engine::{
    CompiledSet, Context, Decision, DecisionKind, Engine, Event, Location, MemoryStore, Request,
    Store, UserHistory, Value,
};

const T0: i64 = 1_795_770_000; // 2026-11-27T09:00:00Z (about)

struct Sim {
    engine: Engine,
    store: MemoryStore,
    app: String,
    user: String,
    enrolled: FactorSet,
}

fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn factors(f: &[Factor]) -> FactorSet {
    f.iter().copied().collect()
}

fn paris() -> Context {
    Context {
        device: Some("laptop-1".into()),
        ip: Some("198.51.100.7".into()),
        country: Some("FR".into()),
        location: Some(Location {
            lat: 48.85,
            lon: 2.35,
        }),
        platform_risk: None,
    }
}

impl Sim {
    fn new(app: &str, enrolled: &[Factor]) -> Sim {
        let engine = Engine::load(&[rules()]).unwrap_or_else(|e| panic!("rules load: {e}"));
        let store = MemoryStore::new();
        let mut h = UserHistory::default();
        h.devices.insert("laptop-1".into());
        h.countries.insert("FR".into(), Timestamp(T0 - 86_400));
        h.last_sign_in = Some(stepup_engine::state::LastSignIn {
            at: Timestamp(T0 - 86_400),
            country: Some("FR".into()),
            location: Some(Location {
                lat: 48.85,
                lon: 2.35,
            }),
        });
        store
            .put_history("acme", "alice", &h)
            .unwrap_or_else(|e| panic!("{e}"));
        Sim {
            engine,
            store,
            app: app.into(),
            user: "alice".into(),
            enrolled: factors(enrolled),
        }
    }
    fn at(&self, secs: i64, event: Event) -> Decision {
        let req = Request {
            tenant: "acme".into(),
            application: self.app.as_str().into(),
            user: self.user.as_str().into(),
            enrolled: self.enrolled,
            session: "s1".into(),
            event,
            now: Timestamp(T0 + secs),
        };
        self.engine.process(&self.store, &req, false)
    }
    fn sign_in(&self, secs: i64, ctx: Context) -> Decision {
        self.at(
            secs,
            Event::SignIn {
                context: ctx,
                factors: factors(&[Factor::Password]),
            },
        )
    }
    fn op(&self, secs: i64, name: &str) -> Decision {
        self.at(
            secs,
            Event::Operation {
                name: name.into(),
                attrs: vec![],
                context: None,
            },
        )
    }
    fn payout(&self, secs: i64, amount: f64) -> Decision {
        self.at(
            secs,
            Event::Operation {
                name: "payout".into(),
                attrs: vec![("amount".into(), Value::Number(amount))],
                context: None,
            },
        )
    }
    fn step_up(&self, secs: i64, f: Factor) -> Decision {
        self.at(
            secs,
            Event::StepUp {
                factor: f,
                success: true,
            },
        )
    }
}

fn names(d: &Decision) -> Vec<&'static str> {
    d.audit.iter().map(|a| a.name).collect()
}

#[test]
fn a_sensitive_operation_steps_up_to_aal2_and_then_proceeds() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp, Factor::Sms]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    let d = s.op(300, "change_email");
    assert_eq!(d.kind, DecisionKind::StepUp);
    assert_eq!(d.required.map(|r| r.aal), Some(Aal::Aal2));
    assert_eq!(*d.fired, ["sensitive_ops"]);
    assert_eq!(d.eligible.names(), vec!["sms", "totp"]);
    assert_eq!(
        d.message.as_deref(),
        Some("Confirm your identity before changing your account details.")
    );
    assert_eq!(names(&d), vec![au::INITIATED]);
    let c = s.step_up(320, Factor::Totp);
    assert_eq!(
        (c.kind, names(&c)),
        (DecisionKind::Completed, vec![au::COMPLETED])
    );
    let retry = s.op(321, "change_email");
    assert_eq!(
        (retry.kind, names(&retry)),
        (DecisionKind::Allow, vec![au::SKIPPED])
    );
    assert_eq!(*retry.satisfied, ["sensitive_ops"]);
}

#[test]
fn routine_operations_never_prompt_and_leave_no_audit() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    s.sign_in(0, paris());
    let d = s.op(10, "view_profile");
    assert_eq!((d.kind, d.audit.len()), (DecisionKind::Allow, 0));
}

#[test]
fn admin_operations_step_up_to_aal2_by_default() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Sms]);
    s.sign_in(0, paris());
    let d = s.op(10, "export_users");
    assert_eq!(d.kind, DecisionKind::StepUp);
    assert_eq!(*d.fired, ["admin_default"]);
    assert_eq!(d.required.map(|r| r.aal), Some(Aal::Aal2));
}

#[test]
fn first_access_to_payments_steps_up_once_and_reopening_within_the_duration_does_not() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    s.sign_in(0, paris());
    let open = |t| {
        s.at(
            t,
            Event::Access {
                resource: "payments".into(),
                context: None,
            },
        )
    };
    let d = open(60);
    assert_eq!(
        (d.kind, d.fired.to_vec()),
        (DecisionKind::StepUp, vec!["first_payments".to_string()])
    );
    assert_eq!(s.step_up(70, Factor::Totp).kind, DecisionKind::Completed);
    assert_eq!(open(75).kind, DecisionKind::Allow);
    let later = open(600);
    assert_eq!(
        (later.kind, later.fired.len()),
        (DecisionKind::Allow, 0),
        "no longer a first access"
    );
}

#[test]
fn an_elevation_of_15_minutes_expires_at_the_second() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    s.sign_in(0, paris());
    s.op(100, "change_email");
    s.step_up(110, Factor::Totp);
    assert_eq!(s.op(110 + 899, "change_phone").kind, DecisionKind::Allow);
    assert_eq!(s.op(110 + 900, "change_phone").kind, DecisionKind::StepUp);
}

#[test]
fn an_aal3_payout_elevation_of_5_minutes_expires_at_the_second() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Webauthn]);
    s.sign_in(0, paris());
    let d = s.payout(100, 5000.0);
    assert_eq!(
        d.required
            .map(|r| (r.aal, r.factors.names(), r.validity.max_age_secs())),
        Some((Aal::Aal3, vec!["totp", "webauthn"], 300))
    );
    s.step_up(110, Factor::Webauthn);
    assert_eq!(s.payout(110 + 299, 5000.0).kind, DecisionKind::Allow);
    assert_eq!(s.payout(110 + 300, 5000.0).kind, DecisionKind::StepUp);
    assert_eq!(
        s.payout(500, 999.0).kind,
        DecisionKind::Allow,
        "below the threshold"
    );
}

#[test]
fn an_sms_only_user_gets_aal2_but_is_refused_aal3_with_the_enrol_message() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Sms]);
    s.sign_in(0, paris());
    let d = s.op(10, "change_email");
    assert_eq!(
        (d.kind, d.eligible.names()),
        (DecisionKind::StepUp, vec!["sms"])
    );
    let p = s.payout(20, 5000.0);
    assert_eq!(p.kind, DecisionKind::Deny);
    assert_eq!(
        p.message.as_deref(),
        Some("This operation requires a stronger factor. Set up WebAuthn or TOTP to proceed.")
    );
    assert_eq!(names(&p), vec![au::DENIED]);
}

#[test]
fn stacked_policies_merge_to_the_most_restrictive() {
    // A payout from a new device: new_device (aal2, any, 15m) and payouts (aal3, webauthn|totp, 5m).
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    let d = s.at(
        10,
        Event::Operation {
            name: "payout".into(),
            attrs: vec![("amount".into(), Value::Number(2000.0))],
            context: Some(Context {
                device: Some("phone-9".into()),
                ..paris()
            }),
        },
    );
    assert_eq!(*d.fired, ["new_device_sign_in", "payouts"]);
    let r = d.required.unwrap_or_else(|| panic!("no requirement"));
    assert_eq!(
        (r.aal, r.factors.names(), r.validity.max_age_secs()),
        (Aal::Aal3, vec!["totp", "webauthn"], 300)
    );
}

#[test]
fn each_risk_trigger_fires_on_sign_in() {
    let cases: Vec<(&str, Context, &str)> = vec![
        (
            "new device",
            Context {
                device: Some("tablet-7".into()),
                ..paris()
            },
            "new_device_sign_in",
        ),
        (
            "new country",
            Context {
                country: Some("BE".into()),
                location: Some(Location {
                    lat: 50.85,
                    lon: 4.35,
                }),
                ..paris()
            },
            "new_country_sign_in",
        ),
        (
            "impossible travel",
            Context {
                country: Some("FR".into()),
                location: Some(Location {
                    lat: 40.71,
                    lon: -74.0,
                }),
                ..paris()
            },
            "risky_sign_in",
        ),
        (
            "threat intel",
            Context {
                ip: Some("203.0.113.9".into()),
                ..paris()
            },
            "risky_sign_in",
        ),
        (
            "platform risk",
            Context {
                platform_risk: Some(85),
                ..paris()
            },
            "risky_sign_in",
        ),
    ];
    for (what, ctx, policy) in cases {
        let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
        assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
        let d = s.sign_in(300, ctx);
        assert_eq!(d.kind, DecisionKind::StepUp, "{what}");
        assert!(d.fired.iter().any(|p| p == policy), "{what}: {:?}", d.fired);
    }
}

/// A failed attempt (a code mistyped, a factor not enrolled or not eligible) leaves the
/// challenge open for another, up to three failures; the third closes it, and only a new
/// request issues a new one. An expired challenge cannot be retried. A failure gains the
/// session nothing: after two failures, the operation is still stepped up until the third
/// attempt succeeds. (A failure closed the challenge at once: a user who mistyped a code could
/// not type it again — a conformance review's finding; SPEC §4 rule 7 asks only that the
/// session gain nothing.)
#[test]
fn a_failed_attempt_can_be_retried_up_to_three_failures() {
    let fail = |s: &Sim, at, factor, success| s.at(at, Event::StepUp { factor, success });
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp, Factor::Sms]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    let asked = s.op(10, "change_email");
    assert_eq!(asked.kind, DecisionKind::StepUp);
    let first = fail(&s, 20, Factor::Totp, false);
    assert_eq!(
        (
            first.kind,
            first.challenge_id.as_deref(),
            first.message.as_deref()
        ),
        (
            DecisionKind::Failed,
            asked.challenge_id.as_deref(),
            Some("The factor could not be verified. 2 attempts left.")
        )
    );
    // Nothing gained: the operation is still stepped up (a new challenge supersedes it).
    let s2 = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(s2.sign_in(0, paris()).kind, DecisionKind::Allow);
    assert_eq!(s2.op(10, "change_email").kind, DecisionKind::StepUp);
    assert_eq!(
        fail(&s2, 20, Factor::Totp, false).kind,
        DecisionKind::Failed
    );
    assert_eq!(s2.op(30, "change_email").kind, DecisionKind::StepUp);
    // The retry completes the same challenge.
    let done = s.step_up(30, Factor::Totp);
    assert_eq!(
        (done.kind, done.challenge_id.as_deref()),
        (DecisionKind::Completed, asked.challenge_id.as_deref())
    );
    assert_eq!(s.op(40, "change_email").kind, DecisionKind::Allow);

    // Three failures of any kind close it.
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    assert_eq!(s.op(10, "change_email").kind, DecisionKind::StepUp);
    assert_eq!(
        fail(&s, 20, Factor::Webauthn, true).message.as_deref(),
        Some("That factor is not enrolled. 2 attempts left.")
    );
    assert_eq!(
        fail(&s, 30, Factor::Totp, false).message.as_deref(),
        Some("The factor could not be verified. One attempt left.")
    );
    assert_eq!(
        fail(&s, 40, Factor::Totp, false).message.as_deref(),
        Some("The factor could not be verified.")
    );
    let late = s.step_up(50, Factor::Totp);
    assert_eq!(
        (late.kind, late.message.as_deref()),
        (
            DecisionKind::Failed,
            Some("There is no open challenge to complete.")
        )
    );

    // An expired challenge is closed by the attempt that finds it expired.
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    assert_eq!(s.op(10, "change_email").kind, DecisionKind::StepUp);
    assert_eq!(
        s.step_up(10 + 300, Factor::Totp).message.as_deref(),
        Some("The challenge expired; try the action again.")
    );
    assert_eq!(
        s.step_up(10 + 301, Factor::Totp).message.as_deref(),
        Some("There is no open challenge to complete.")
    );
}

#[test]
fn a_failed_step_up_teaches_nothing_and_the_device_stays_new() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    let ctx = Context {
        device: Some("tablet-7".into()),
        ..paris()
    };
    assert_eq!(s.sign_in(0, ctx.clone()).kind, DecisionKind::StepUp);
    let f = s.at(
        10,
        Event::StepUp {
            factor: Factor::Totp,
            success: false,
        },
    );
    assert_eq!(
        (f.kind, names(&f)),
        (DecisionKind::Failed, vec![au::FAILED])
    );
    let again = s.sign_in(20, ctx.clone());
    assert!(
        again.fired.contains(&"new_device_sign_in".to_string()),
        "still new"
    );
    assert_eq!(s.step_up(30, Factor::Totp).kind, DecisionKind::Completed);
    assert!(
        !s.sign_in(40, ctx)
            .fired
            .contains(&"new_device_sign_in".to_string()),
        "learned after success"
    );
}

#[test]
fn an_expired_or_used_challenge_cannot_complete() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    s.sign_in(0, paris());
    s.op(100, "change_email");
    let late = s.step_up(100 + 300, Factor::Totp);
    assert_eq!(late.kind, DecisionKind::Failed);
    s.op(500, "change_email");
    assert_eq!(s.step_up(510, Factor::Totp).kind, DecisionKind::Completed);
    assert_eq!(
        s.step_up(511, Factor::Totp).kind,
        DecisionKind::Failed,
        "single use"
    );
}

#[test]
fn a_non_eligible_or_non_enrolled_factor_fails() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp, Factor::Sms]);
    s.sign_in(0, paris());
    s.payout(10, 5000.0);
    assert_eq!(
        s.step_up(20, Factor::Sms).kind,
        DecisionKind::Failed,
        "sms cannot prove aal3"
    );
    s.payout(30, 5000.0);
    assert_eq!(
        s.step_up(40, Factor::Webauthn).kind,
        DecisionKind::Failed,
        "not enrolled"
    );
}

#[test]
fn the_finance_every_time_override_prompts_on_every_sensitive_operation() {
    let s = Sim::new("finance", &[Factor::Password, Factor::Totp]);
    s.sign_in(0, paris());
    let d = s.op(10, "change_email");
    assert_eq!(
        (d.kind, d.required.map(|r| r.validity.max_age_secs())),
        (DecisionKind::StepUp, Some(0))
    );
    s.step_up(20, Factor::Totp);
    assert_eq!(
        s.op(21, "change_email").kind,
        DecisionKind::Allow,
        "the retry"
    );
    assert_eq!(
        s.op(22, "change_email").kind,
        DecisionKind::StepUp,
        "every time"
    );
    // The dashboard application caches for 15 minutes.
    let dash = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    dash.sign_in(0, paris());
    dash.op(10, "change_email");
    dash.step_up(20, Factor::Totp);
    assert_eq!(dash.op(21, "change_email").kind, DecisionKind::Allow);
    assert_eq!(dash.op(22, "change_email").kind, DecisionKind::Allow);
}

#[test]
fn every_audit_record_carries_the_policy_set_hash() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    s.sign_in(0, paris());
    let d = s.op(10, "change_email");
    let hash = s.engine.current().hash().to_string();
    assert_eq!(hash.len(), 32);
    assert!(
        d.audit
            .iter()
            .all(|a| *a.policy_set == *hash && &*a.tenant == "acme" && &*a.user == "alice")
    );
}

/// An application the rules do not define is refused (fail closed): a misspelt name in an
/// embedding service must not decide its requests by the tenant's policies alone, leaving the
/// application's own out. (`replay` decides a scenario's such application with the tenant's
/// policies, saying so, and the example service does not start with one.)
#[test]
fn an_application_the_rules_do_not_define_fails_closed() {
    let s = Sim::new("nope", &[Factor::Password, Factor::Totp]);
    let d = s.sign_in(0, paris());
    assert_eq!(d.kind, DecisionKind::Deny);
    assert!(d.errors[0].contains("application `nope`"), "{:?}", d.errors);
    let d = s.op(10, "view_profile");
    assert_eq!(d.kind, DecisionKind::Deny);
}

#[test]
fn an_operation_the_catalog_does_not_declare_fails_closed() {
    let s = Sim::new("dashboard", &[Factor::Password]);
    let d = s.op(0, "chnage_email");
    assert_eq!(d.kind, DecisionKind::Deny);
    // In an established session the refusal still says what the session proves before the
    // event (SPEC §7's `session_aal`; a review found it empty on refusals).
    let s = Sim::new("dashboard", &[Factor::Password]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    let d = s.op(10, "chnage_email");
    assert_eq!(d.kind, DecisionKind::Deny);
    assert_eq!(d.session_aal, Some(Aal::Aal1), "{d:?}");
}

#[test]
fn a_script_stuck_in_a_loop_is_stopped_and_fails_closed() {
    let set = CompiledSet::from_text("s.policy", "operation pay sensitive\npolicy p \"Confirm this payment.\" { when operation == pay and script \"loop {} false\" require aal2 }")
        .unwrap_or_else(|e| panic!("{e}"));
    let req = Request {
        tenant: "default".into(),
        application: "".into(),
        user: "u".into(),
        enrolled: factors(&[Factor::Totp]),
        session: "s".into(),
        now: Timestamp(T0),
        event: Event::Operation {
            name: "pay".into(),
            attrs: vec![],
            context: None,
        },
    };
    let d = set.decide(&req, &stepup_engine::State::established(), true);
    assert_eq!(d.kind, DecisionKind::StepUp);
    let tr = d.trace.unwrap_or_default();
    assert!(
        tr.notes.iter().any(|n| n.contains("budget")),
        "{:?}",
        tr.notes
    );
}

/// SPEC §5: an operation or access that carries its own context — any of device, IP, country,
/// location or a platform score — has signals as a sign-in has, and an input missing from it is
/// unknown (SPEC §10). A review proposed that a platform score alone be no context (a routine
/// read with a score of 10 is stepped up); a second review showed that then a client who leaves
/// out a device header, where a service sends it with a score, escapes the prompt: less input
/// must never mean fewer prompts. An event that carries no context at all has none.
#[test]
fn an_operation_that_carries_a_context_has_its_signals_and_a_missing_input_is_unknown() {
    let op_with = |s: &Sim, secs: i64, context: Option<Context>| {
        s.at(
            secs,
            Event::Operation {
                name: "view_profile".into(),
                attrs: vec![],
                context,
            },
        )
    };
    let none = Context {
        device: None,
        ip: None,
        country: None,
        location: None,
        platform_risk: None,
    };
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    assert_eq!(s.sign_in(0, paris()).kind, DecisionKind::Allow);
    let score_only = Context {
        platform_risk: Some(10),
        ..none.clone()
    };
    let with_device = Context {
        device: Some("laptop-1".into()),
        ..score_only.clone()
    };
    // With the device and a score, and with the score alone: the missing inputs are unknown,
    // and the policies that read them fire; taking the device away prompts no less.
    for ctx in [with_device, score_only] {
        let d = op_with(&s, 60, Some(ctx.clone()));
        assert_eq!(d.kind, DecisionKind::StepUp, "{ctx:?}: {d:?}");
        assert!(
            d.fired.contains(&"risky_sign_in".to_string()),
            "{:?}",
            d.fired
        );
        let risk = d.risk.unwrap();
        assert_eq!((risk.range.min, risk.score), (10, None), "{ctx:?}");
    }
    // The whole context of the known place: nothing fires; no context at all: no signals.
    assert_eq!(op_with(&s, 70, Some(paris())).kind, DecisionKind::Allow);
    assert_eq!(op_with(&s, 80, None).kind, DecisionKind::Allow);
    // The known place with an address that cannot be read: the threat signal is unknown.
    let d = op_with(
        &s,
        90,
        Some(Context {
            ip: Some("999.1.2.3".into()),
            ..paris()
        }),
    );
    assert_eq!(d.kind, DecisionKind::StepUp, "{d:?}");
    assert_eq!(&*d.fired, ["risky_sign_in"]);
}

/// SPEC §4: every audit record carries the risk score and signals (a review found none on the
/// records of a completion, a failure and a refusal, which are decided before any policy is
/// evaluated), and its time reads as the rest of the product writes times (RFC 3339).
#[test]
fn every_audit_record_carries_the_risk_and_a_readable_time() {
    let s = Sim::new("dashboard", &[Factor::Password, Factor::Totp]);
    let mut records = Vec::new();
    // A refusal before the session is established: an operation first.
    records.extend(s.op(0, "change_email").audit);
    records.extend(s.sign_in(10, paris()).audit);
    let d = s.op(300, "change_email");
    assert_eq!(d.kind, DecisionKind::StepUp);
    records.extend(d.audit);
    // A failure, then the completion.
    let d = s.at(
        310,
        Event::StepUp {
            factor: Factor::Totp,
            success: false,
        },
    );
    assert_eq!(d.kind, DecisionKind::Failed, "{d:?}");
    assert!(d.risk.is_some());
    records.extend(d.audit);
    let d = s.step_up(320, Factor::Totp);
    assert_eq!(d.kind, DecisionKind::Completed, "{d:?}");
    records.extend(d.audit);
    assert_eq!(
        names(&Decision {
            audit: records.clone(),
            ..Decision::new(DecisionKind::Allow, Default::default())
        }),
        [au::DENIED, au::INITIATED, au::FAILED, au::COMPLETED]
    );
    // The store's refusal too (a review of the change found it without): the event's risk,
    // every signal that reads the history unknown when the store gave none (the threat feed
    // needs no history).
    let req = Request {
        tenant: "acme".into(),
        application: "dashboard".into(),
        user: "alice".into(),
        enrolled: factors(&[Factor::Password]),
        session: "s1".into(),
        event: Event::SignIn {
            context: paris(),
            factors: factors(&[Factor::Password]),
        },
        now: Timestamp(T0),
    };
    let refused = s
        .engine
        .current()
        .refuse_for_store(&req, None, "down".into());
    assert_eq!(
        refused.deny,
        Some(stepup_engine::DenyReason::StoreUnavailable)
    );
    let risk = refused.audit[0].risk.unwrap();
    let values: Vec<_> = risk.signals.iter().map(|v| v.value).collect();
    use stepup_engine::Tri::{False, Unknown};
    assert_eq!(values, [Unknown, Unknown, Unknown, False], "{risk:?}");
    records.extend(refused.audit);
    for r in &records {
        let risk = r.risk.unwrap_or_else(|| panic!("no risk on {}", r.name));
        assert_eq!(risk.signals.len(), 4);
        let json = serde_json::to_value(r).unwrap();
        assert!(json["risk"]["signals"].is_array(), "{json}");
        let at = json["at"].as_str().unwrap_or_else(|| panic!("{json}"));
        assert_eq!(Timestamp::parse_rfc3339(at), Ok(r.at), "{json}");
    }
}
