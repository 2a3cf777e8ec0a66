//! Replay: the SPEC example loads as written, golden outputs, and precise errors for bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use stepup_core::{Aal, Factor};
use stepup_engine::{CompiledSet, Context, DecisionKind, Engine, Location, MemoryStore, Tri};
use stepup_replay::output::AuditDetail;
use stepup_replay::run::Mismatch;
use stepup_replay::{EventResult, FileReport, load, output, replay, replay_with};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn engine() -> Engine {
    Engine::load(&[root().join("rules")]).unwrap_or_else(|e| panic!("{e}"))
}

fn run_text(name: &str, text: &str) -> Result<FileReport, String> {
    let e = engine();
    let set = e.current();
    let l = load(name, text, &set).map_err(|e| e.to_string())?;
    replay(&l, &e, &MemoryStore::new()).map_err(|e| e.to_string())
}

fn run_example(file: &str) -> FileReport {
    let text = std::fs::read_to_string(root().join("examples/scenarios").join(file))
        .unwrap_or_else(|e| panic!("{e}"));
    run_text(&format!("examples/scenarios/{file}"), &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_spec_example_loads_exactly_as_written() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec_example.ron"),
    )
    .unwrap_or_default();
    let r = run_text("spec_example.ron", &text).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = r.events.iter().map(|e| e.decision.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["allow", "step_up", "completed", "allow", "step_up"]
    );
}

fn json_lines(r: &FileReport) -> String {
    r.events
        .iter()
        .map(|e| format!("{:#}\n", output::event_json(r, e)))
        .collect()
}

#[test]
fn golden_json_of_three_scenarios() {
    for f in [
        "01_sensitive_operation.ron",
        "07_impossible_travel.ron",
        "09_sms_only_refused_aal3.ron",
    ] {
        let r = run_example(f);
        insta::assert_snapshot!(f, json_lines(&r));
    }
}

#[test]
fn golden_table_of_one_scenario() {
    let r = run_example("10_finance_every_time.ron");
    insta::assert_snapshot!(output::table(&r, false, false, true));
}

#[test]
fn every_example_meets_its_expectations() {
    let dir = root().join("examples/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let p = entry.map(|e| e.path()).unwrap_or_default();
        let name = p
            .file_name()
            .and_then(|x| x.to_str())
            .unwrap_or("")
            .to_string();
        let r = run_example(&name);
        assert!(
            r.events.iter().all(|e| e.expect.is_some()),
            "{name}: every event carries an expectation"
        );
        for e in &r.events {
            assert!(
                e.mismatches.is_empty(),
                "{name} event {}: {:?}",
                e.index,
                e.mismatches
            );
        }
        n += 1;
    }
    assert!(n >= 15, "at least 15 example scenarios, found {n}");
}

const HEAD: &str = "Scenario(\n    name: \"bad\",\n    tenant: \"acme\",\n    application: \"dashboard\",\n    user: (id: \"alice\", enrolled: [totp]),\n    events: [\n";

fn error_of(events: &str) -> String {
    run_text("bad.ron", &format!("{HEAD}{events}    ],\n)\n"))
        .err()
        .unwrap_or_else(|| panic!("no error for {events}"))
}

#[test]
fn an_unknown_factor_is_located() {
    let e = error_of("        StepUp(at: \"2026-11-27T09:00:00Z\", factor: totpp),\n");
    assert!(e.starts_with("bad.ron:7:"), "{e}");
    assert!(e.contains("totpp"), "{e}");
}

#[test]
fn an_unknown_event_kind_is_located() {
    let e = error_of("        LogIn(at: \"2026-11-27T09:00:00Z\"),\n");
    assert!(e.starts_with("bad.ron:7:"), "{e}");
    assert!(e.contains("LogIn"), "{e}");
}

#[test]
fn a_malformed_time_is_located() {
    let e = error_of("        Operation(at: \"2026-11-27 09:00\", name: \"view_profile\"),\n");
    assert_eq!(e.split(": error").next(), Some("bad.ron:7:24"), "{e}");
    assert!(
        e.contains("`events[0].at`") && e.contains("RFC 3339"),
        "{e}"
    );
}

#[test]
fn events_out_of_order_are_located() {
    let e = error_of(
        "        Operation(at: \"2026-11-27T09:00:00Z\", name: \"view_profile\"),\n        Operation(at: \"2026-11-27T08:00:00Z\", name: \"view_profile\"),\n",
    );
    assert!(
        e.starts_with("bad.ron:8:24: error in `events[1].at`: events are out of order"),
        "{e}"
    );
}

#[test]
fn a_tenant_the_rules_do_not_define_is_located() {
    let text = HEAD.replace("\"acme\"", "\"acne\"") + "    ],\n)\n";
    let e = run_text("bad.ron", &text).err().unwrap_or_default();
    assert!(
        e.starts_with("bad.ron:3:13: error in `tenant`: tenant `acne` is not defined"),
        "{e}"
    );
}

#[test]
fn an_unknown_field_is_located() {
    let e = error_of("        SignIn(at: \"2026-11-27T09:00:00Z\", devic: \"x\"),\n");
    assert!(e.starts_with("bad.ron:7:") && e.contains("devic"), "{e}");
}

/// A scenario of alice (enrolled password, totp and sms; laptop-1 known, FR seen) in `app`.
fn story(app: &str, events: &str) -> String {
    format!(
        "Scenario(\n    name: \"story\",\n    tenant: \"acme\",\n    application: \"{app}\",\n    user: (id: \"alice\", enrolled: [password, totp, sms],\n           history: (devices: [\"laptop-1\"], countries: {{\"FR\": \"2026-11-20T08:00:00Z\"}})),\n    events: [\n{events}    ],\n)\n"
    )
}

const PARIS_SIGN_IN: &str = "        SignIn(at: \"2026-11-27T09:00:00Z\", device: \"laptop-1\", ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35)),\n";

fn run_story(app: &str, events: &str) -> FileReport {
    run_text("story.ron", &story(app, events)).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(r: &FileReport) -> Vec<DecisionKind> {
    r.events.iter().map(|e| e.decision.kind).collect()
}

fn audit_names(e: &EventResult) -> Vec<&'static str> {
    e.decision.audit.iter().map(|a| a.name).collect()
}

fn signals(e: &EventResult) -> BTreeMap<&'static str, Tri> {
    e.decision
        .risk
        .as_ref()
        .unwrap_or_else(|| panic!("event {} has no risk breakdown", e.index))
        .signals
        .iter()
        .map(|s| (s.signal.as_str(), s.value))
        .collect()
}

fn signal_map(new_device: Tri) -> BTreeMap<&'static str, Tri> {
    BTreeMap::from([
        ("new_device", new_device),
        ("new_country", Tri::False),
        ("impossible_travel", Tri::False),
        ("threat_intel", Tri::False),
    ])
}

#[test]
fn a_step_up_with_no_open_challenge_is_recorded_as_failed_not_refused() {
    let events = format!(
        "{PARIS_SIGN_IN}        StepUp(at: \"+1m\", factor: totp, expect: (decision: failed, audit: [\"auth.step_up_failed\"], challenge: none)),\n        Operation(at: \"+1m\", name: \"view_profile\"),\n"
    );
    let text = story("dashboard", &events);
    let e = engine();
    let set = e.current();
    let l = load("story.ron", &text, &set).unwrap_or_else(|e| panic!("{e}"));
    for r in [
        replay(&l, &e, &MemoryStore::new()).unwrap_or_else(|e| panic!("{e}")),
        replay_with(&l, &e, &MemoryStore::new(), true).unwrap_or_else(|e| panic!("{e}")),
    ] {
        assert_eq!(
            kinds(&r),
            vec![
                DecisionKind::Allow,
                DecisionKind::Failed,
                DecisionKind::Allow
            ]
        );
        let failed = &r.events[1];
        assert_eq!(audit_names(failed), vec!["auth.step_up_failed"]);
        assert_eq!(failed.decision.challenge_id, None);
        assert_eq!(failed.decision.audit[0].factor, Some(Factor::Totp));
        assert_eq!(&*failed.decision.audit[0].event, "step_up");
        assert_eq!(failed.mismatches, vec![]);
        let v = output::event_json(&r, failed);
        assert_eq!(
            (&v["decision"], &v["audit"], &v["deny_reason"]),
            (
                &json!("failed"),
                &json!(["auth.step_up_failed"]),
                &json!(null)
            )
        );
    }
}

#[test]
fn an_operation_or_access_with_its_own_context_reaches_the_engine() {
    let ctx = "ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35)";
    let events = format!(
        "{PARIS_SIGN_IN}        Operation(at: \"+1m\", name: \"view_profile\"),\n        Operation(at: \"+1m\", name: \"view_profile\", device: \"laptop-1\", {ctx}),\n        Operation(at: \"+1m\", name: \"view_profile\", device: \"phone-9\", {ctx}),\n        Access(at: \"+1m\", resource: \"settings\", device: \"laptop-1\", {ctx}, risk: 85),\n"
    );
    let text = story("dashboard", &events);
    let e = engine();
    let set = e.current();
    let l = load("story.ron", &text, &set).unwrap_or_else(|e| panic!("{e}"));
    let contexts: Vec<Option<Context>> = l
        .scenario
        .events
        .iter()
        .map(stepup_replay::scenario::EventSpec::own_context)
        .collect();
    let at = |device: &str, risk: Option<u32>| Context {
        device: Some(device.to_string()),
        ip: Some("198.51.100.7".into()),
        country: Some("FR".into()),
        location: Some(Location {
            lat: 48.85,
            lon: 2.35,
        }),
        platform_risk: risk,
    };
    assert_eq!(
        contexts,
        vec![
            None,
            None,
            Some(at("laptop-1", None)),
            Some(at("phone-9", None)),
            Some(at("laptop-1", Some(85)))
        ]
    );
    let r = replay(&l, &e, &MemoryStore::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        kinds(&r),
        vec![
            DecisionKind::Allow,
            DecisionKind::Allow,
            DecisionKind::Allow,
            DecisionKind::StepUp,
            DecisionKind::StepUp
        ]
    );
    // No context: no signal is computed. A known device: none present. A new one: new_device.
    assert_eq!(signals(&r.events[1]), signal_map(Tri::False));
    assert_eq!(signals(&r.events[2]), signal_map(Tri::False));
    assert_eq!(signals(&r.events[3]), signal_map(Tri::True));
    let risk = |i: usize| {
        let k = r.events[i].decision.risk.as_ref().unwrap();
        (k.score, k.platform)
    };
    assert_eq!(
        [risk(1), risk(2), risk(3), risk(4)],
        [
            (Some(0), None),
            (Some(0), None),
            (Some(30), None),
            (Some(85), Some(85))
        ]
    );
    assert_eq!(*r.events[3].decision.fired, ["new_device_sign_in"]);
    assert_eq!(*r.events[4].decision.fired, ["risky_sign_in"]);
    assert_eq!(
        r.events[4].decision.required.map(|q| q.aal),
        Some(Aal::Aal3)
    );
}

#[test]
fn each_event_may_name_its_application() {
    let events = format!(
        "{PARIS_SIGN_IN}        Operation(at: \"+1m\", name: \"change_email\", application: \"finance\"),\n        Operation(at: \"+1m\", name: \"change_email\"),\n"
    );
    let r = run_story("dashboard", &events);
    let apps: Vec<&str> = r.events.iter().map(|e| e.application.as_str()).collect();
    assert_eq!(apps, vec!["dashboard", "finance", "dashboard"]);
    let msgs: Vec<Option<&str>> = r
        .events
        .iter()
        .map(|e| e.decision.message.as_deref())
        .collect();
    assert_eq!(
        msgs,
        vec![
            None,
            Some("Confirm your identity before changing your account details in Finance."),
            Some("Confirm your identity before changing your account details."),
        ]
    );
    assert_eq!(
        r.events[1].decision.audit[0].application.as_ref(),
        "finance"
    );
    assert_eq!(
        r.events[2].decision.audit[0].application.as_ref(),
        "dashboard"
    );
    let v: Vec<serde_json::Value> = r.events.iter().map(|e| output::event_json(&r, e)).collect();
    assert_eq!(
        v.iter()
            .map(|x| x["application"].clone())
            .collect::<Vec<_>>(),
        vec![json!("dashboard"), json!("finance"), json!("dashboard")]
    );
    let table = output::table(&r, false, false, false);
    let events: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("  ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
        .map(|l| l.split("  ").filter(|c| !c.is_empty()).nth(3).unwrap_or(""))
        .collect();
    assert_eq!(
        events,
        vec![
            "sign_in",
            "operation:change_email (finance)",
            "operation:change_email"
        ],
        "{table}"
    );
}

#[test]
fn an_every_time_grant_does_not_cross_applications() {
    let rules = "tenant acme {\n  operation change_email sensitive\n  policy email \"Confirm your identity before changing your email.\" {\n    when operation == change_email\n    require aal2 factor any every time\n  }\n}\napplication dashboard of acme {\n}\napplication finance of acme {\n}\n";
    let e =
        Engine::new(CompiledSet::from_text("t.policy", rules).unwrap_or_else(|e| panic!("{e}")));
    let set = e.current();
    let events = "        SignIn(at: \"2026-11-27T09:00:00Z\", device: \"laptop-1\", ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35)),\n        Operation(at: \"+1m\", name: \"change_email\", application: \"finance\"),\n        StepUp(at: \"+10s\", factor: totp, application: \"finance\"),\n        Operation(at: \"+5s\", name: \"change_email\"),\n        Operation(at: \"+5s\", name: \"change_email\", application: \"finance\"),\n";
    let l = load("x.ron", &story("dashboard", events), &set).unwrap_or_else(|e| panic!("{e}"));
    let r = replay(&l, &e, &MemoryStore::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        kinds(&r),
        vec![
            DecisionKind::Allow,
            DecisionKind::StepUp,
            DecisionKind::Completed,
            DecisionKind::StepUp,
            DecisionKind::Allow
        ]
    );
    assert_eq!(audit_names(&r.events[4]), vec!["auth.step_up_skipped"]);
}

/// An application the rules do not define is replayed with its tenant's own policies (SPEC
/// §4.1), and named in a warning located on its event (a misspelt name would be decided so
/// too). A scenario whose application has no block — SPEC §7's `dashboard` beside §3's
/// `finance` — is replayed, not refused.
#[test]
fn an_application_the_rules_do_not_define_is_replayed_with_the_tenants_policies_and_named() {
    let events = format!(
        "{PARIS_SIGN_IN}        Operation(at: \"+1m\", name: \"change_email\", application: \"finanse\"),\n        Operation(at: \"+1m\", name: \"change_email\"),\n"
    );
    let e = engine();
    let set = e.current();
    for app in ["nope", ""] {
        let l = load("bad.ron", &story(app, &events), &set).unwrap_or_else(|e| panic!("{e}"));
        let warnings: Vec<String> = l.warnings.iter().map(|w| w.as_warning()).collect();
        let mut expected = vec![
            "bad.ron:9:65: warning in `events[1].application`: application `finanse` of tenant `acme` is not defined by the rules (they define `dashboard`, `finance`): the tenant's own policies decide its events".to_string(),
        ];
        if app == "nope" {
            expected.insert(0, "bad.ron:4:18: warning in `application`: application `nope` of tenant `acme` is not defined by the rules (they define `dashboard`, `finance`): the tenant's own policies decide its events".to_string());
        }
        assert_eq!(warnings, expected);
        let r = replay(&l, &e, &MemoryStore::new()).unwrap_or_else(|e| panic!("{e}"));
        // The tenant's `sensitive_ops` steps change_email up, in the undefined application
        // and in the scenario's (the tenant's, or the undefined `nope`).
        assert_eq!(
            kinds(&r),
            vec![
                DecisionKind::Allow,
                DecisionKind::StepUp,
                DecisionKind::StepUp
            ],
            "{app}"
        );
        assert_eq!(*r.events[1].decision.fired, ["sensitive_ops".to_string()]);
    }
}

#[test]
fn json_can_carry_the_full_audit_records() {
    let r = run_example("01_sensitive_operation.ron");
    for e in &r.events {
        let names = output::event_json(&r, e);
        let full = output::event_json_with(&r, e, AuditDetail::Full);
        assert_eq!(names.get("audit_records"), None);
        let mut without = full.clone();
        without.as_object_mut().unwrap().remove("audit_records");
        assert_eq!(without, names, "the other fields are unchanged");
        assert_eq!(
            full["audit_records"],
            serde_json::to_value(&e.decision.audit).unwrap()
        );
        let recorded: Vec<&serde_json::Value> = full["audit_records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["name"])
            .collect();
        let named: Vec<&serde_json::Value> = full["audit"].as_array().unwrap().iter().collect();
        assert_eq!(recorded, named);
    }
    let step_up = output::event_json_with(&r, &r.events[1], AuditDetail::Full);
    let rec = &step_up["audit_records"][0];
    assert_eq!(
        [
            &rec["name"],
            &rec["at"],
            &rec["tenant"],
            &rec["application"],
            &rec["user"],
            &rec["event"],
            &rec["policies"],
            &rec["required_aal"],
            &rec["message"],
            &rec["challenge_id"],
            &rec["policy_set"],
        ],
        [
            &json!("auth.step_up_initiated"),
            &json!(r.events[1].at.to_rfc3339()),
            &json!("acme"),
            &json!("dashboard"),
            &json!("alice"),
            &json!("operation:change_email"),
            &json!(["sensitive_ops"]),
            &json!("aal2"),
            &json!("Confirm your identity before changing your account details."),
            &step_up["challenge_id"],
            &json!(&*r.events[1].decision.policy_set),
        ]
    );
    assert!(step_up["challenge_id"].is_string());
}

fn mismatches_of(events: &str) -> Vec<Vec<Mismatch>> {
    run_story("dashboard", events)
        .events
        .into_iter()
        .map(|e| e.mismatches)
        .collect()
}

fn mismatch(field: &'static str, expected: &str, actual: &str) -> Mismatch {
    Mismatch {
        field,
        expected: expected.into(),
        actual: actual.into(),
    }
}

#[test]
fn deny_reason_expectations_match_and_mismatch() {
    let payout = |reason: &str| {
        format!(
            "        Operation(at: \"+1m\", name: \"payout\", attrs: {{\"amount\": 2500}}, expect: (decision: deny, deny_reason: \"{reason}\")),\n"
        )
    };
    // dave has only password and sms: a payout over 1000 needs totp or webauthn.
    let dave = |events: &str| {
        story("dashboard", events).replace(
            "\"alice\", enrolled: [password, totp, sms]",
            "\"dave\", enrolled: [password, sms]",
        )
    };
    let run =
        |events: String| run_text("dave.ron", &dave(&events)).unwrap_or_else(|e| panic!("{e}"));
    let sign_in = PARIS_SIGN_IN.replace(
        "lon: 2.35))",
        "lon: 2.35), expect: (decision: allow, deny_reason: \"none\"))",
    );
    let ok = run(format!("{sign_in}{}", payout("stronger_factor_required")));
    assert_eq!(
        ok.events
            .iter()
            .map(|e| e.mismatches.clone())
            .collect::<Vec<_>>(),
        vec![vec![], vec![]]
    );
    assert_eq!(
        ok.events
            .iter()
            .map(|e| output::event_json(&ok, e)["deny_reason"].clone())
            .collect::<Vec<_>>(),
        vec![json!(null), json!("stronger_factor_required")]
    );
    let wrong = run(format!(
        "{}{}",
        sign_in.replace("\"none\"", "\"conflict\""),
        payout("conflict")
    ));
    assert_eq!(
        wrong
            .events
            .iter()
            .map(|e| e.mismatches.clone())
            .collect::<Vec<_>>(),
        vec![
            vec![mismatch("deny_reason", "conflict", "none")],
            vec![mismatch(
                "deny_reason",
                "conflict",
                "stronger_factor_required"
            )],
        ]
    );
    let json = output::event_json(&wrong, &wrong.events[1]);
    assert_eq!(
        json["mismatches"],
        json!([{"field": "deny_reason", "expected": "conflict", "actual": "stronger_factor_required"}])
    );
}

#[test]
fn challenge_and_signal_expectations_match_and_mismatch() {
    let events = format!(
        "{PARIS_SIGN_IN}        Operation(at: \"+1m\", name: \"change_email\", expect: (challenge: issued_by(1))),\n        StepUp(at: \"+10s\", factor: totp, expect: (challenge: issued_by(1))),\n        StepUp(at: \"+10s\", factor: totp, expect: (challenge: none)),\n        SignIn(at: \"+1m\", device: \"phone-9\", ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35), expect: (challenge: issued_by(4), signals: {{\"new_device\": \"true\", \"threat_intel\": \"false\"}})),\n"
    );
    assert_eq!(mismatches_of(&events), vec![vec![]; 5]);
    let wrong = events
        .replace("(challenge: issued_by(1))),\n        StepUp(at: \"+10s\", factor: totp, expect: (challenge: none))", "(challenge: issued_by(0))),\n        StepUp(at: \"+10s\", factor: totp, expect: (challenge: issued_by(1)))")
        .replace("\"new_device\": \"true\"", "\"new_device\": \"false\", \"new_devise\": \"false\"");
    assert_eq!(
        mismatches_of(&wrong),
        vec![
            vec![],
            vec![],
            vec![mismatch("challenge", "issued_by(0)", "issued_by(1)")],
            vec![mismatch("challenge", "issued_by(1)", "none")],
            vec![mismatch(
                "signals",
                "{new_device: false, new_devise: false, threat_intel: false}",
                "{new_device: true, new_devise: absent, threat_intel: false}"
            )],
        ]
    );
}

#[test]
fn expectations_that_cannot_hold_are_located() {
    let e = error_of(
        "        Operation(at: \"2026-11-27T09:00:00Z\", name: \"view_profile\", expect: (challenge: issued_by(1))),\n",
    );
    assert_eq!(
        e,
        "bad.ron:7:89: error in `events[0].expect.challenge`: `issued_by(1)` names a later event; a challenge is issued by an earlier event or by this one (0)"
    );
    let e = error_of(
        "        Operation(at: \"2026-11-27T09:00:00Z\", name: \"view_profile\", expect: (signals: {\"new_device\": \"maybe\"})),\n",
    );
    assert_eq!(
        e,
        "bad.ron:7:102: error in `events[0].expect.signals`: `new_device: \"maybe\"`: a signal is \"true\", \"false\" or \"unknown\""
    );
    // The second event's bad value, on its own line: not the first event's field of that name
    // (a review found the error pointing at the line before).
    let e = error_of(concat!(
        "        Operation(at: \"2026-11-27T09:00:00Z\", name: \"view_profile\",\n",
        "            expect: (signals: {\"new_device\": \"true\"})),\n",
        "        Operation(at: \"+1m\", name: \"view_profile\",\n",
        "            expect: (signals: {\"new_device\": \"maybe\"})),\n",
    ));
    assert!(
        e.starts_with("bad.ron:10:46: error in `events[1].expect.signals`"),
        "{e}"
    );
    let e = error_of(
        "        Operation(at: \"2026-11-27T09:00:00Z\", name: \"view_profile\", expect: (challenge: issued(1))),\n",
    );
    assert!(
        e.starts_with("bad.ron:7:") && e.contains("unknown challenge expectation `issued`"),
        "{e}"
    );
}

fn report_only_example() -> (FileReport, String) {
    let rules = root().join("examples/report-only/rules");
    let e = Engine::load(&[rules]).unwrap_or_else(|e| panic!("{e}"));
    let set = e.current();
    let path = root().join("examples/report-only/scenarios/report_only.ron");
    let text = std::fs::read_to_string(&path).unwrap();
    let l = load("report_only.ron", &text, &set).unwrap_or_else(|e| panic!("{e}"));
    (replay(&l, &e, &MemoryStore::new()).unwrap(), text)
}

#[test]
fn report_only_results_are_right_on_the_example_and_never_enforced() {
    let (r, _) = report_only_example();
    assert!(
        r.events.iter().all(|e| e.mismatches.is_empty()),
        "{:#?}",
        r.events.iter().map(|e| &e.mismatches).collect::<Vec<_>>()
    );
    // What each candidate would have done, event by event.
    let words: Vec<Vec<String>> = r
        .events
        .iter()
        .map(|e| {
            e.decision
                .report_only
                .iter()
                .map(|x| format!("{} {}", x.policy, stepup_replay::run::report_only_word(x)))
                .collect()
        })
        .collect();
    assert_eq!(
        words,
        vec![
            vec![
                "checkout_over_200 not_fired",
                "new_device_keys step_up aal3"
            ],
            vec![
                "checkout_over_200 step_up aal2",
                "new_device_keys not_fired"
            ],
            vec![
                "checkout_over_200 step_up aal2",
                "new_device_keys not_fired"
            ],
            vec!["checkout_over_200 not_fired", "new_device_keys not_fired"],
            vec!["checkout_over_200 satisfied", "new_device_keys not_fired"],
            vec![
                "checkout_over_200 not_fired",
                "new_device_keys deny stronger_factor_required"
            ],
        ]
    );
    // The decisions are the enforced policy's alone.
    assert_eq!(
        kinds(&r),
        vec![
            DecisionKind::Allow,
            DecisionKind::Allow,
            DecisionKind::StepUp,
            DecisionKind::Completed,
            DecisionKind::Allow,
            DecisionKind::Allow,
        ]
    );
    assert!(r.events.iter().all(|e| {
        !e.decision
            .fired
            .iter()
            .any(|p| p == "checkout_over_200" || p == "new_device_keys")
    }));
    // JSON shows them; the audit stream has a record for each would-be prompt or refusal.
    let json = output::event_json_with(&r, &r.events[0], AuditDetail::Full);
    assert_eq!(
        json["report_only"],
        json!([
            {"policy": "checkout_over_200", "would_be": "not_fired", "required_aal": null, "allowed_factors": [], "eligible_factors": [], "max_age_s": null, "deny_reason": null, "note": null},
            {"policy": "new_device_keys", "would_be": "step_up", "required_aal": "aal3", "allowed_factors": ["totp", "webauthn"], "eligible_factors": ["totp"], "max_age_s": 300, "deny_reason": null, "note": null},
        ])
    );
    let rec = &json["audit_records"][0];
    assert_eq!(rec["name"], json!("auth.step_up_report_only"));
    assert_eq!(rec["policies"], json!(["new_device_keys"]));
    assert_eq!(rec["required_aal"], json!("aal3"));
    assert_eq!(rec["would_be"], json!("step_up"));
    assert_eq!(rec["challenge_id"], json!(null));
    let bob = output::event_json_with(&r, &r.events[5], AuditDetail::Full);
    assert_eq!(bob["audit_records"][0]["would_be"], json!("deny"));
}

#[test]
fn report_only_expectations_mismatch_and_bad_ones_are_located() {
    let (_, text) = report_only_example();
    let rules = root().join("examples/report-only/rules");
    let e = Engine::load(&[rules]).unwrap();
    let set = e.current();
    let wrong = text
        .replacen(
            "\"new_device_keys\": \"step_up aal3\"",
            "\"new_device_keys\": \"step_up aal2\"",
            1,
        )
        .replacen(
            "\"checkout_over_200\": \"step_up aal2\", \"new_device_keys\": \"not_fired\"",
            "\"checkout_over_200\": \"satisfied\", \"nope\": \"not_fired\"",
            1,
        );
    let l = load("wrong.ron", &wrong, &set).unwrap();
    let r = replay(&l, &e, &MemoryStore::new()).unwrap();
    assert_eq!(
        r.events[0].mismatches,
        vec![mismatch(
            "report_only",
            "{checkout_over_200: not_fired, new_device_keys: step_up aal2}",
            "{checkout_over_200: not_fired, new_device_keys: step_up aal3}"
        )]
    );
    assert_eq!(
        r.events[1].mismatches,
        vec![mismatch(
            "report_only",
            "{checkout_over_200: satisfied, nope: not_fired}",
            "{checkout_over_200: step_up, nope: absent}"
        )]
    );
    let bad = text.replacen("\"step_up aal3\"", "\"prompt\"", 1);
    let err = load("bad.ron", &bad, &set).unwrap_err().to_string();
    assert!(
        err.contains("error in `events[0].expect.report_only`: `new_device_keys: \"prompt\"`"),
        "{err}"
    );
}

/// A review's findings: a history's `last_sign_in.at` that is not a time became 1970 (so an
/// impossible journey from it looked possible and its expectation passed), and a user defined
/// twice took its factors from one definition and its history from the other. Both are errors
/// of the file, located.
#[test]
fn a_bad_last_sign_in_time_and_a_user_defined_twice_are_errors() {
    let scenario = |history: &str, more_users: &str| {
        format!(
            "Scenario(name: \"x\", tenant: \"acme\", application: \"dashboard\",\n  user: (id: \"alice\", enrolled: [totp], history: ({history})),{more_users}\n  events: [SignIn(at: \"2026-11-27T09:00:00Z\", device: \"laptop-1\", country: \"US\", location: (lat: 40.7, lon: -74.0))])\n"
        )
    };
    let last = |at: &str| {
        format!(
            "devices: [\"laptop-1\"], last_sign_in: (at: \"{at}\", country: \"FR\", location: (lat: 48.85, lon: 2.35))"
        )
    };
    let e = run_text("t.ron", &scenario(&last("yesterday-ish"), "")).unwrap_err();
    assert!(
        e.contains("history.last_sign_in.at") && e.contains(":2:"),
        "{e}"
    );
    // A real time: the journey from Paris is impossible, and the sign-in is stepped up.
    let r = run_text("t.ron", &scenario(&last("2026-11-27T08:30:00Z"), "")).unwrap();
    assert_eq!(r.events[0].decision.kind, DecisionKind::StepUp);
    let twice = "\n  users: [(id: \"alice\", enrolled: [sms])],";
    let e = run_text("t.ron", &scenario("devices: [\"laptop-1\"]", twice)).unwrap_err();
    assert!(e.contains("user `alice` is defined twice"), "{e}");
}

/// A review's finding: a key named twice in a scenario's map kept the last value silently, so
/// `signals: {"new_device": "false", "new_device": "unknown"}` dropped an expectation and
/// `attrs: {"amount": 5000, "amount": 1}` paid out 1. It is an error of the file.
#[test]
fn a_key_named_twice_in_a_map_is_an_error() {
    for events in [
        "        Operation(at: \"2026-11-27T09:00:00Z\", name: \"payout\", attrs: {\"amount\": 5000, \"amount\": 1}),\n",
        "        SignIn(at: \"2026-11-27T09:00:00Z\", device: \"d\", expect: (signals: {\"new_device\": \"false\", \"new_device\": \"unknown\"})),\n",
        "        SignIn(at: \"2026-11-27T09:00:00Z\", device: \"d\", expect: (report_only: {\"p\": \"not_fired\", \"p\": \"deny\"})),\n",
    ] {
        let e = error_of(events);
        assert!(e.contains("named twice"), "{e}");
        assert!(e.starts_with("bad.ron:7:"), "{e}");
    }
    let e = run_text(
        "bad.ron",
        "Scenario(name: \"x\", tenant: \"acme\", application: \"dashboard\", user: (id: \"a\", enrolled: [totp], history: (countries: {\"FR\": \"2026-11-20T08:00:00Z\", \"FR\": \"2026-11-27T08:00:00Z\"})), events: [])",
    )
    .unwrap_err();
    assert!(e.contains("named twice"), "{e}");
}

/// The fields the JSON output names (SPEC §7) can be expected under those names too:
/// `policies`, `eligible_factors`, `allowed_factors`, `max_age_s`, `session_aal` and the risk
/// score (a conformance read found them refused as unknown fields).
#[test]
fn expectations_take_the_json_outputs_names() {
    let email = |expect: &str| {
        format!(
            "{PARIS_SIGN_IN}        Operation(at: \"+5m\", name: \"change_email\", expect: ({expect})),\n"
        )
    };
    let met = mismatches_of(&email(
        "decision: step_up, policies: [\"sensitive_ops\"], eligible_factors: [sms, totp], \
         allowed_factors: [email_otp, sms, voice, push, totp, webauthn], max_age_s: 900, session_aal: aal1",
    ));
    assert_eq!(met, vec![vec![], vec![]]);
    let missed = mismatches_of(&email(
        "policies: [\"payouts\"], allowed_factors: [totp], max_age_s: 300, session_aal: aal3, \
         risk: unknown",
    ));
    assert_eq!(
        missed,
        vec![
            vec![],
            vec![
                mismatch(
                    "allowed_factors",
                    "totp",
                    "email_otp|sms|voice|push|totp|webauthn"
                ),
                mismatch("max_age_s", "300", "900"),
                mismatch("session_aal", "aal3", "aal1"),
                mismatch("risk_score", "unknown", "0"),
                mismatch("fired", "[payouts]", "[sensitive_ops]"),
            ]
        ]
    );
    // A written `None` expects none; it is not "not checked" (a re-review: it passed vacuously).
    let none = mismatches_of(&email(
        "required_aal: None, max_age_s: None, session_aal: None, risk: None",
    ));
    assert_eq!(
        none,
        vec![
            vec![],
            vec![
                mismatch("required_aal", "none", "aal2"),
                mismatch("max_age_s", "none", "900"),
                mismatch("session_aal", "none", "aal1"),
                mismatch("risk_score", "none", "0"),
            ]
        ]
    );
}
