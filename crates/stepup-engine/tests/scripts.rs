//! Scripted predicates fail closed (SPEC §10) now that each field a script reads is bound to a
//! variable of its own: a field that is absent or mistyped stops the script from running, and
//! a script that errs, loops or answers something other than a boolean is unknown. Every case
//! fires its policy (step-up), never allows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::{
    CompiledSet, Decision, DecisionKind, Event, Request, State, Value, script_runs_on_this_thread,
};

const RULES: &str = r#"tenant acme {
  operation keyword sensitive
  operation forever sensitive
  operation number sensitive
  operation in_break sensitive
  operation assign sensitive
  operation both sensitive
  attribute amount: number
  attribute fn: number
  attribute let: string
  attribute vip: bool
  policy keyword "Confirm it's you." {
    when operation == keyword and script "ctx[\"fn\"] > 10 || ctx.attrs[\"let\"] == \"x\" || ctx.vip"
    require aal2
  }
  policy forever "Confirm it's you." {
    when operation == forever and script "loop { if ctx.amount < 0 { break true } }"
    require aal2
  }
  policy number "Confirm it's you." {
    when operation == number and script "ctx.amount"
    require aal2
  }
  policy in_break "Confirm it's you." {
    when operation == in_break and script "loop { break ctx.amount == 5 }"
    require aal2
  }
  policy assign "Confirm it's you." {
    when operation == assign and script "ctx.amount = 0; ctx.amount > 10"
    require aal2
  }
  policy both "Confirm it's you." {
    when operation == both and script "ctx.amount > 10 && ctx.attrs.amount < 100"
    require aal2
  }
}"#;

fn op(name: &str, attrs: &[(&str, Value)]) -> Request {
    Request {
        tenant: "acme".into(),
        application: "".into(),
        user: "alice".into(),
        enrolled: [Factor::Password, Factor::Totp]
            .into_iter()
            .collect::<FactorSet>(),
        session: "s1".into(),
        now: Timestamp(1_800_000_000),
        event: Event::Operation {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            context: None,
        },
    }
}

fn decide(req: &Request) -> (Decision, u64) {
    let set = CompiledSet::from_text("acme.policy", RULES).unwrap();
    let before = script_runs_on_this_thread();
    let d = set.decide(req, &State::established(), false);
    (d, script_runs_on_this_thread() - before)
}

fn num(x: f64) -> Value {
    Value::Number(x)
}

fn text(s: &str) -> Value {
    Value::Str(s.into())
}

#[test]
fn attributes_named_like_rhai_keywords_are_read() {
    let known = |f: f64, l: &str, vip: bool| {
        vec![("fn", num(f)), ("let", text(l)), ("vip", Value::Bool(vip))]
    };
    let (d, runs) = decide(&op("keyword", &known(5.0, "y", false)));
    assert_eq!((d.kind, runs), (DecisionKind::Allow, 1), "{:?}", d.errors);
    for attrs in [
        known(11.0, "y", false),
        known(5.0, "x", false),
        known(5.0, "y", true),
    ] {
        let (d, runs) = decide(&op("keyword", &attrs));
        assert_eq!((d.kind, runs), (DecisionKind::StepUp, 1), "{attrs:?}");
        assert!(d.errors.is_empty(), "{:?}", d.errors);
    }
}

#[test]
fn a_missing_or_mistyped_attribute_stops_the_script_and_fires_its_policy() {
    for (attrs, why) in [
        (
            vec![("let", text("y")), ("vip", Value::Bool(false))],
            "`fn` is absent from the operation",
        ),
        (
            vec![
                ("fn", text("5")),
                ("let", text("y")),
                ("vip", Value::Bool(false)),
            ],
            "`fn` is not a number",
        ),
        (
            vec![
                ("fn", num(5.0)),
                ("let", num(1.0)),
                ("vip", Value::Bool(false)),
            ],
            "`let` is not a string",
        ),
        (
            vec![("fn", num(5.0)), ("let", text("y")), ("vip", text("no"))],
            "`vip` is not a boolean",
        ),
        (
            vec![
                ("fn", num(f64::NAN)),
                ("let", text("y")),
                ("vip", Value::Bool(false)),
            ],
            "`fn` is not a number",
        ),
    ] {
        let (d, runs) = decide(&op("keyword", &attrs));
        assert_eq!((d.kind, runs), (DecisionKind::StepUp, 0), "{attrs:?}");
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
        assert!(
            d.errors[0].contains("not run: ") && d.errors[0].ends_with(why),
            "{:?}",
            d.errors
        );
    }
}

#[test]
fn a_script_that_loops_forever_fires_its_policy() {
    let (d, runs) = decide(&op("forever", &[("amount", num(5.0))]));
    assert_eq!((d.kind, runs), (DecisionKind::StepUp, 1));
    assert!(
        d.errors[0].ends_with("failed: script exceeded its budget of 10000 operations"),
        "{:?}",
        d.errors
    );
}

#[test]
fn a_script_returning_a_non_boolean_fires_its_policy() {
    let (d, runs) = decide(&op("number", &[("amount", num(5.0))]));
    assert_eq!((d.kind, runs), (DecisionKind::StepUp, 1));
    assert!(
        d.errors[0].ends_with("failed: script returned a f64, not a boolean"),
        "{:?}",
        d.errors
    );
}

#[test]
fn a_field_read_in_a_break_value_is_required_too() {
    // Before fields were bound, `ctx.amount` read only in a `break` was not seen as a read:
    // the script ran without it, `() == 5` was false, and the payout was allowed.
    let (d, runs) = decide(&op("in_break", &[]));
    assert_eq!((d.kind, runs), (DecisionKind::StepUp, 0), "{:?}", d.errors);
    assert!(
        d.errors[0].ends_with("not run: `amount` is absent from the operation"),
        "{:?}",
        d.errors
    );
    let (d, _) = decide(&op("in_break", &[("amount", num(4.0))]));
    assert_eq!(d.kind, DecisionKind::Allow);
    let (d, _) = decide(&op("in_break", &[("amount", num(5.0))]));
    assert_eq!(d.kind, DecisionKind::StepUp);
}

#[test]
fn a_script_cannot_change_a_field() {
    let (d, runs) = decide(&op("assign", &[("amount", num(50.0))]));
    assert_eq!((d.kind, runs), (DecisionKind::StepUp, 1));
    assert!(d.errors[0].contains("failed: "), "{:?}", d.errors);
}

#[test]
fn a_field_read_two_ways_is_one_value() {
    let (d, runs) = decide(&op("both", &[("amount", num(50.0))]));
    assert_eq!((d.kind, runs), (DecisionKind::StepUp, 1), "{:?}", d.errors);
    let (d, _) = decide(&op("both", &[("amount", num(500.0))]));
    assert_eq!(d.kind, DecisionKind::Allow);
    let (d, _) = decide(&op("both", &[("amount", num(5.5))]));
    assert_eq!(d.kind, DecisionKind::Allow);
}

/// A review's finding: whole numbers reached scripts as integers, so `ctx.amount / 100 > 50`
/// divided 5,099 as a whole number (50, no prompt) and 5,000.5 as a fraction (a prompt): the
/// larger payout passed. Every number is a float; a division by zero fails (the policy fires).
#[test]
fn a_number_divides_as_a_number_whole_or_not() {
    let set = CompiledSet::from_text(
        "t.policy",
        r#"tenant acme {
  operation payout sensitive
  attribute amount: number
  attribute limit: number
  policy big { when operation == payout and script "ctx.amount / 100 > 50" require aal2 }
  policy ratio { when operation == payout and script "ctx.amount / ctx.limit > 0.8" require aal2 }
}"#,
    )
    .unwrap();
    let decide = |amount: f64, limit: f64| {
        let req = Request {
            tenant: "acme".into(),
            application: "".into(),
            user: "alice".into(),
            enrolled: [Factor::Totp].into_iter().collect(),
            session: "s".into(),
            event: Event::Operation {
                name: "payout".into(),
                attrs: [("amount", amount), ("limit", limit)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::Number(v)))
                    .collect(),
                context: None,
            },
            now: Timestamp(1_795_770_000),
        };
        set.decide(&req, &State::established(), false)
    };
    assert_eq!(*decide(5099.0, 1e9).fired, ["big"]);
    assert_eq!(*decide(5000.5, 1e9).fired, ["big"]);
    assert!(decide(5000.0, 1e9).fired.is_empty());
    assert_eq!(*decide(900.0, 1000.0).fired, ["ratio"]);
    // A limit of zero: the ratio cannot be computed, so its policy fires (fail closed).
    for amount in [0.0, 900.0] {
        let d = decide(amount, 0.0);
        assert_eq!(*d.fired, ["ratio"], "{amount}");
        assert!(d.errors[0].contains("not finite"), "{:?}", d.errors);
    }
}
