//! Replay: the SPEC example loads as written, golden outputs, and precise errors for bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::path::{Path, PathBuf};

use stepup_engine::{Engine, MemoryStore};
use stepup_replay::{FileReport, load, output, replay};

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
fn a_step_up_with_no_open_challenge_is_reported() {
    let e = error_of("        StepUp(at: \"2026-11-27T09:00:00Z\", factor: totp),\n");
    assert!(e.starts_with("bad.ron:7:1: error in `events[0]`"), "{e}");
    assert!(e.contains("no open challenge"), "{e}");
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
