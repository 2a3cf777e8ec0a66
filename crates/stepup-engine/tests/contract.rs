//! The step-up contract of SPEC §6: HTTP answers and token claims.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use stepup_core::{Aal, Factor, FactorSet, Requirement, StrengthTable, Timestamp, Validity};
use stepup_engine::contract::{Claims, Shortfall, check_claims, http_answer, session_from_claims};
use stepup_engine::{CompiledSet, DecisionKind, Event, Request, State};

const RULES: &str = r#"tenant acme {
  operation change_email sensitive
  operation payout sensitive
  attribute amount: number
  policy email "Confirm your identity before changing your email." { when operation == change_email require aal2 for 15m }
  policy payouts "Confirm this payout with your security key or app." { when operation == payout and amount > 1000 require aal3 factor webauthn|totp for 5m }
}
application finance of acme {
  override policy email "Confirm your identity before changing your email." { when operation == change_email require aal2 every time }
}"#;

fn req(app: &str, op: &str, enrolled: &[Factor]) -> Request {
    Request {
        tenant: "acme".into(),
        application: app.into(),
        user: "alice".into(),
        enrolled: enrolled.iter().copied().collect(),
        session: "s".into(),
        event: Event::Operation {
            name: op.into(),
            attrs: vec![("amount".into(), stepup_engine::Value::Number(5000.0))],
            context: None,
        },
        now: Timestamp(1_800_000_000),
    }
}

#[test]
fn a_step_up_is_a_401_with_the_envelope_and_an_rfc_9470_header() {
    let set = CompiledSet::from_text("r.policy", RULES).unwrap();
    let d = set.decide(
        &req(
            "",
            "change_email",
            &[Factor::Sms, Factor::Totp, Factor::Webauthn],
        ),
        &State::established(),
        false,
    );
    let a = http_answer(&d).unwrap();
    assert_eq!(a.status, 401);
    assert_eq!(a.body["error"], "step_up_required");
    assert_eq!(a.body["required_acr"], "aal2");
    assert_eq!(
        a.body["allowed_factors"],
        serde_json::json!(["sms", "totp", "webauthn"])
    );
    assert_eq!(a.body["max_age"], 900);
    assert!(a.body["challenge_id"].as_str().unwrap().starts_with("ch_"));
    assert_eq!(
        a.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", error_description=\"Confirm your identity before changing your email.\", acr_values=\"aal2\", max_age=900"
        )
    );
}

#[test]
fn every_time_requirements_carry_max_age_zero() {
    let set = CompiledSet::from_text("r.policy", RULES).unwrap();
    let d = set.decide(
        &req("finance", "change_email", &[Factor::Totp]),
        &State::established(),
        false,
    );
    let a = http_answer(&d).unwrap();
    assert_eq!(a.body["max_age"], 0);
    assert!(a.www_authenticate.unwrap().ends_with("max_age=0"));
}

#[test]
fn no_strong_enough_factor_is_a_403() {
    let set = CompiledSet::from_text("r.policy", RULES).unwrap();
    let d = set.decide(
        &req("", "payout", &[Factor::Sms]),
        &State::established(),
        false,
    );
    assert_eq!(d.kind, DecisionKind::Deny);
    let a = http_answer(&d).unwrap();
    assert_eq!(a.status, 403);
    assert_eq!(a.body["error"], "stronger_factor_required");
    assert_eq!(
        a.body["allowed_factors"],
        serde_json::json!(["totp", "webauthn"])
    );
    assert_eq!(a.www_authenticate, None);
}

#[test]
fn an_allow_has_no_http_answer() {
    let set = CompiledSet::from_text("r.policy", RULES).unwrap();
    let state = State {
        session: session_from_claims(&Claims {
            acr: Some("aal2".into()),
            auth_time: Some(1_800_000_000 - 10),
            amr: vec!["otp".into()],
        }),
        ..State::established()
    };
    let d = set.decide(&req("", "change_email", &[Factor::Totp]), &state, false);
    assert_eq!(d.kind, DecisionKind::Allow);
    assert!(http_answer(&d).is_none());
}

#[test]
fn claims_are_checked_for_acr_auth_time_and_amr() {
    let t = StrengthTable::default();
    let now = Timestamp(10_000);
    let r = aal3_key_or_app_for_5m();
    let ok = Claims {
        acr: Some("aal3".into()),
        auth_time: Some(9_800),
        amr: vec!["hwk".into()],
    };
    assert_eq!(check_claims(&ok, &r, &t, now), Ok(()));
    assert_eq!(
        check_claims(
            &Claims {
                acr: Some("aal2".into()),
                ..ok.clone()
            },
            &r,
            &t,
            now
        ),
        Err(Shortfall::Acr)
    );
    assert_eq!(
        check_claims(
            &Claims {
                acr: None,
                ..ok.clone()
            },
            &r,
            &t,
            now
        ),
        Err(Shortfall::Acr)
    );
    assert_eq!(
        check_claims(
            &Claims {
                auth_time: Some(9_700),
                ..ok.clone()
            },
            &r,
            &t,
            now
        ),
        Err(Shortfall::MaxAge),
        "exactly max_age old"
    );
    assert_eq!(
        check_claims(
            &Claims {
                amr: vec!["sms".into()],
                ..ok.clone()
            },
            &r,
            &t,
            now
        ),
        Err(Shortfall::Factor)
    );
    let every = Requirement {
        validity: Validity::EveryTime,
        ..r
    };
    assert_eq!(check_claims(&ok, &every, &t, now), Err(Shortfall::MaxAge));
}

#[test]
fn the_engine_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<stepup_engine::Engine>();
    assert_send_sync::<CompiledSet>();
}

#[test]
fn the_rfc_9470_header_stays_visible_ascii_whatever_the_message() {
    let rules = "operation pay sensitive\npolicy p \"You’re paying from a new place — let’s verify “it’s you”…\" { when operation == pay require aal2 }";
    let set = CompiledSet::from_text("m.policy", rules).unwrap();
    let mut r = req("", "pay", &[Factor::Totp]);
    r.tenant = "default".into();
    let a = http_answer(&set.decide(&r, &State::established(), false)).unwrap();
    let h = a.www_authenticate.unwrap();
    assert!(h.chars().all(|c| (' '..='~').contains(&c)), "{h}");
    assert!(
        h.contains(
            "error_description=\"You're paying from a new place - let's verify 'it's you'.\""
        ),
        "{h}"
    );
    assert_eq!(
        a.body["message"], "You’re paying from a new place — let’s verify “it’s you”…",
        "the body keeps the message as written"
    );
}

#[test]
fn anything_but_allow_or_completed_is_refused_over_http() {
    let set = CompiledSet::from_text("r.policy", RULES).unwrap();
    let d = set.decide(
        &req("", "no_such_operation", &[Factor::Totp]),
        &State::established(),
        false,
    );
    assert_eq!(
        (d.kind, d.deny),
        (
            DecisionKind::Deny,
            Some(stepup_engine::decision::DenyReason::CannotEvaluate)
        )
    );
    let a = http_answer(&d).unwrap();
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (403, Some("access_denied"))
    );
    // A step-up that lost its requirement must not pass, nor prompt for nothing.
    let mut broken = stepup_engine::Decision::new(DecisionKind::StepUp, "h".into());
    broken.required = None;
    assert_eq!(http_answer(&broken).map(|a| a.status), Some(403));
    // A store unavailable refuses for now: 503 (an integrator's review: it read 403).
    let down = set.refuse_for_store(
        &req("", "change_email", &[Factor::Totp]),
        None,
        "down".into(),
    );
    let a = http_answer(&down).unwrap();
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
}

/// Only an allow lets the action proceed: a completed step-up authorises no operation by
/// itself (an integrator's review: a completion sent with a payout read as allowed).
#[test]
fn a_completed_step_up_is_not_an_allow() {
    let completed = stepup_engine::Decision::new(DecisionKind::Completed, "h".into());
    assert!(!completed.allowed());
    assert!(completed.succeeded());
    let allow = stepup_engine::Decision::new(DecisionKind::Allow, "h".into());
    assert!(allow.allowed() && allow.succeeded());
}

/// Claims are read with the service's mapping when it checks with one: a value the mapping
/// takes away proves nothing, and a value it adds proves what it maps to (found by the review
/// of round 13: the check read the default mapping whatever the service configured).
#[test]
fn claims_checked_with_a_mapping_prove_what_the_mapping_says() {
    use stepup_engine::contract::{ClaimMapping, check_claims_mapped};
    let t = StrengthTable::default();
    let now = Timestamp(10_000);
    let r = aal3_key_or_app_for_5m();
    let key = Claims {
        acr: Some("aal3".into()),
        auth_time: Some(9_800),
        amr: vec!["hwk".into()],
    };
    let no_keys = ClaimMapping::default().map_amr("hwk", &[]);
    assert_eq!(check_claims(&key, &r, &t, now), Ok(()));
    assert_eq!(
        check_claims_mapped(&key, &r, &no_keys, &t, now),
        Err(Shortfall::Factor)
    );
    let custom = Claims {
        acr: Some("urn:example:high".into()),
        ..key
    };
    let mapped = ClaimMapping::default().map_acr("urn:example:high", Aal::Aal3);
    assert_eq!(check_claims(&custom, &r, &t, now), Err(Shortfall::Acr));
    assert_eq!(check_claims_mapped(&custom, &r, &mapped, &t, now), Ok(()));
}

/// aal3 with webauthn or totp, for five minutes.
fn aal3_key_or_app_for_5m() -> Requirement {
    Requirement {
        aal: Aal::Aal3,
        factors: [Factor::Webauthn, Factor::Totp]
            .into_iter()
            .collect::<FactorSet>(),
        validity: Validity::For(300),
    }
}
