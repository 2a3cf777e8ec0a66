//! The `stepup` binary end to end: exit codes and what users read.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stepup(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepup"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    (dir, p.display().to_string())
}

#[test]
fn check_passes_on_the_rules_directory_with_warnings_denied() {
    let (code, out, _) = stepup(&["check", "--deny-warnings", "rules/"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no problems"), "{out}");
}

#[test]
fn the_design_card_line_alone_in_a_file_checks() {
    let (_d, p) = temp_file(
        "card.policy",
        "when risk >= 70 or new_country(30d) require aal3 factor webauthn|totp for 5m\n",
    );
    let (code, out, _) = stepup(&["check", &p]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_typo_in_a_factor_fails_with_line_column_underline_and_hint() {
    let (_d, p) = temp_file(
        "typo.policy",
        "when risk >= 70 or new_country(30d) require aal3 factor totpp for 5m\n",
    );
    let (code, out, _) = stepup(&["check", &p]);
    assert_eq!(code, 1);
    assert!(out.contains(&format!("{p}:1:57")), "{out}");
    assert!(
        out.contains("1 | when risk >= 70 or new_country(30d) require aal3 factor totpp for 5m"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.ends_with("^^^^^ not a factor") && l.find('^') == Some(4 + 56)),
        "{out}"
    );
    assert!(out.contains("did you mean `totp`?"), "{out}");
}

#[test]
fn check_json_output_and_usage_errors() {
    let (_d, p) = temp_file("typo.policy", "when new_device require aal4\n");
    let (code, out, _) = stepup(&["check", "--format", "json", &p]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v["diagnostics"][0]["code"], "E015");
    assert_eq!(v["diagnostics"][0]["text"], "aal4");
    let (code, _, err) = stepup(&["check", "/nonexistent/rules"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn fmt_check_lists_files_that_would_change_and_fmt_fixes_them() {
    let (_d, p) = temp_file("messy.policy", "when   new_device require aal2 # note\n");
    let (code, out, _) = stepup(&["fmt", "--check", &p]);
    assert_eq!(
        (code, out.trim()),
        (1, format!("would reformat {p}").as_str())
    );
    assert_eq!(stepup(&["fmt", &p]).0, 0);
    assert_eq!(
        std::fs::read_to_string(&p).unwrap_or_default(),
        "when new_device require aal2  # note\n"
    );
    assert_eq!(stepup(&["fmt", "--check", &p]).0, 0);
    assert_eq!(
        stepup(&["fmt", "--check", "rules/"]).0,
        0,
        "the repository's rules are formatted"
    );
}

#[test]
fn explain_documents_every_code() {
    let (code, out, _) = stepup(&["explain", "S001"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("What it does") && out.contains("Why it matters") && out.contains("Example"),
        "{out}"
    );
    let (code, out, _) = stepup(&["explain"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), stepup_dsl::codes::all().count());
    // Every error code is explained too, one meaning each.
    let (code, out, _) = stepup(&["explain", "E007"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "E007 type-mismatch\n\nWhat it means\n  a comparison's value has the wrong type"
        ) && out.contains("Why it matters")
            && out.contains("Example\n  when risk >= high require aal2"),
        "{out}"
    );
    let (code, _, err) = stepup(&["explain", "E999"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown code `E999`"), "{err}");
}

#[test]
fn replay_expect_passes_on_every_example() {
    let (code, out, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--expect",
        "examples/scenarios/",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 with mismatched expectations"), "{out}");
}

#[test]
fn a_wrong_expectation_fails_with_a_readable_diff() {
    let text =
        std::fs::read_to_string(root().join("examples/scenarios/09_sms_only_refused_aal3.ron"))
            .unwrap_or_default()
            .replace("decision: deny", "decision: allow");
    let (_d, p) = temp_file("wrong.ron", &text);
    let (code, out, _) = stepup(&["replay", "--store", "memory", "--expect", &p]);
    assert_eq!(code, 1);
    assert!(
        out.contains("✗ mismatch decision: expected allow, got deny"),
        "{out}"
    );
}

#[test]
fn a_bad_scenario_is_reported_and_the_others_still_replay() {
    let (d, p) = temp_file(
        "bad.ron",
        "Scenario(name: \"x\", tenant: \"acme\", user: (id: \"a\", enrolled: [totpp]), events: [])\n",
    );
    let good = root()
        .join("examples/scenarios/16_routine_never_prompts.ron")
        .display()
        .to_string();
    let (code, out, err) = stepup(&["replay", "--store", "memory", &p, &good]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{p}:1:")) && err.contains("unknown factor `totpp`"),
        "{err}"
    );
    assert!(out.contains("a routine day"), "{out}");
    assert!(out.contains("replayed 1 of 2"), "{out}");
    drop(d);
}

/// The JSON line of the step-up (the second event) of example 01, replayed with `extra` flags.
fn example_01_step_up(extra: &[&str]) -> serde_json::Value {
    let file = "examples/scenarios/01_sensitive_operation.ron";
    let args = [
        &["replay", "--store", "memory", "--format", "json"],
        extra,
        &[file],
    ]
    .concat();
    let (code, out, err) = stepup(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(out.lines().nth(1).unwrap_or("")).unwrap_or_default()
}

#[test]
fn replay_json_has_the_spec_fields() {
    let first = example_01_step_up(&[]);
    for f in [
        "index",
        "at",
        "event",
        "decision",
        "required_aal",
        "allowed_factors",
        "eligible_factors",
        "max_age_s",
        "policies",
        "session_aal",
        "risk",
        "audit",
        "message",
    ] {
        assert!(first.get(f).is_some(), "missing {f}: {first}");
    }
    assert_eq!(first["decision"], "step_up");
    assert_eq!(first["max_age_s"], 900);
    assert!(first.get("explanation").is_none(), "{first}");
}

/// `--explain` with `--format json` shows why, as the table does (a conformance read found it
/// did nothing there): each policy, fired or not, with its predicates' values, and the merge.
#[test]
fn replay_json_explains_with_explain() {
    let step_up = example_01_step_up(&["--explain"]);
    let why = &step_up["explanation"];
    let fired: Vec<&serde_json::Value> = why["policies"]
        .as_array()
        .map(|p| p.iter().filter(|p| p["fired"] == true).collect())
        .unwrap_or_default();
    assert_eq!(fired.len(), 1, "{why}");
    assert_eq!(fired[0]["name"], "sensitive_ops");
    assert_eq!(fired[0]["predicates"][0]["value"], "true", "{why}");
    assert!(
        why["merge"]
            .as_str()
            .is_some_and(|m| m.starts_with("most restrictive of [sensitive_ops]")),
        "{why}"
    );
}

#[test]
fn replay_on_the_embedded_disk_store() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("h.redb").display().to_string();
    let (code, out, err) = stepup(&[
        "replay",
        "--db",
        &db,
        "--expect",
        "--stats",
        "examples/scenarios/",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("prompts per user per day"), "{out}");
}

/// A review's finding: every replay without `--db` opened `.stepup/replay.redb` in the directory
/// it ran in, so replays started together there (a test harness's) failed but one ("Database
/// already open"), and none ran where the directory could not be written. Each now keeps its
/// own file in a temporary directory, removed when it ends.
#[test]
fn replays_run_at_once_in_one_directory_each_keep_their_own_store() {
    let cwd = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The file every replay used to open, held by another program for the whole test.
    let held = stepup_store::DiskStore::open(&cwd.path().join(".stepup/replay.redb"))
        .unwrap_or_else(|e| panic!("{e}"));
    let rules = root().join("rules").display().to_string();
    let scenarios = root().join("examples/scenarios").display().to_string();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_stepup"))
                .args(["replay", "--rules", &rules, "--expect", &scenarios])
                .current_dir(cwd.path())
                .env("TMPDIR", tmp.path())
                .env("NO_COLOR", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(held);
    // Each replay's own file is gone with it.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A file named with `--db` that another program holds is an error that says so.
    let held =
        stepup_store::DiskStore::open(&cwd.path().join("h.redb")).unwrap_or_else(|e| panic!("{e}"));
    let db = cwd.path().join("h.redb").display().to_string();
    let (code, _, err) = stepup(&["replay", "--db", &db, "examples/scenarios/"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("in use by another replay"), "{err}");
    drop(held);
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn replay_json_prints_full_audit_records_with_audit_full() {
    let file = "examples/scenarios/01_sensitive_operation.ron";
    let args = ["replay", "--store", "memory", "--format", "json"];
    let (code, out, err) = stepup(&[&args[..], &["--audit", "full", file]].concat());
    assert_eq!(code, 0, "{err}");
    let full = json_lines(&out);
    let (code, out, err) = stepup(&[&args[..], &[file]].concat());
    assert_eq!(code, 0, "{err}");
    let names = json_lines(&out);
    assert_eq!(full.len(), 5);
    assert_eq!(names.len(), 5);
    for (f, n) in full.iter().zip(&names) {
        assert_eq!(n.get("audit_records"), None, "{n}");
        let mut without = f.clone();
        without.as_object_mut().unwrap().remove("audit_records");
        assert_eq!(&without, n, "the other fields are unchanged");
        let record_names: Vec<serde_json::Value> = f["audit_records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].clone())
            .collect();
        assert_eq!(serde_json::Value::Array(record_names), f["audit"]);
    }
    let completed = &full[2]["audit_records"][0];
    assert_eq!(
        [
            &completed["name"],
            &completed["at"],
            &completed["tenant"],
            &completed["application"],
            &completed["user"],
            &completed["event"],
            &completed["challenge_id"],
            &completed["policies"],
            &completed["required_aal"],
            &completed["factor"],
        ],
        [
            &serde_json::json!("auth.step_up_completed"),
            &serde_json::json!("2026-11-27T09:05:20Z"),
            &serde_json::json!("acme"),
            &serde_json::json!("dashboard"),
            &serde_json::json!("alice"),
            &serde_json::json!("step_up"),
            &full[1]["challenge_id"],
            &serde_json::json!(["sensitive_ops"]),
            &serde_json::json!("aal2"),
            &serde_json::json!("totp"),
        ]
    );
    assert!(full[1]["challenge_id"].is_string());
    assert!(
        completed["policy_set"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );
}

#[test]
fn replay_audit_flag_is_documented_and_checked() {
    let (code, out, _) = stepup(&["replay", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--audit <DETAIL>"), "{out}");
    assert!(out.contains("`full` adds `audit_records`"), "{out}");
    let (code, _, err) = stepup(&[
        "replay",
        "--audit",
        "everything",
        "examples/scenarios/01_sensitive_operation.ron",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("[possible values: names, full]"), "{err}");
    let (code, _, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--audit",
        "full",
        "examples/scenarios/01_sensitive_operation.ron",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.trim(),
        "warning: `--audit full` applies to `--format json`; the table shows no records"
    );
}

#[test]
fn replay_records_a_step_up_without_challenge_as_failed() {
    let (_d, p) = temp_file(
        "no_challenge.ron",
        "Scenario(name: \"x\", tenant: \"acme\", application: \"dashboard\",\n  user: (id: \"alice\", enrolled: [totp], history: (devices: [\"laptop-1\"], countries: {\"FR\": \"2026-11-20T08:00:00Z\"})),\n  events: [\n    SignIn(at: \"2026-11-27T09:00:00Z\", device: \"laptop-1\", ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35)),\n    StepUp(at: \"+1m\", factor: totp, expect: (decision: failed, audit: [\"auth.step_up_failed\"], challenge: none, deny_reason: \"none\")),\n  ])\n",
    );
    let (code, out, err) = stepup(&["replay", "--store", "memory", "--expect", &p]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(out.contains("expectations: all met"), "{out}");
    let (code, out, err) = stepup(&["replay", "--store", "memory", "--format", "json", &p]);
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    assert_eq!(
        lines
            .iter()
            .map(|l| (
                l["decision"].clone(),
                l["audit"].clone(),
                l["deny_reason"].clone()
            ))
            .collect::<Vec<_>>(),
        vec![
            (
                serde_json::json!("allow"),
                serde_json::json!([]),
                serde_json::Value::Null
            ),
            (
                serde_json::json!("failed"),
                serde_json::json!(["auth.step_up_failed"]),
                serde_json::Value::Null
            ),
        ]
    );
}

#[test]
fn check_lists_the_report_only_policies_so_none_is_forgotten() {
    let (code, out, _) = stepup(&["check", "examples/report-only/rules"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "checked 1 file: no problems\n2 report-only policies (evaluated and reported, never enforced):\n  shop: checkout_over_200 (examples/report-only/rules/shop.policy:18)\n  shop: new_device_keys (examples/report-only/rules/shop.policy:24)\n"
    );
    let (_, json, _) = stepup(&["check", "--format", "json", "examples/report-only/rules"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["report_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["checkout_over_200", "new_device_keys"]);
    // A formatted file keeps them report-only.
    let text =
        std::fs::read_to_string(root().join("examples/report-only/rules/shop.policy")).unwrap();
    let (_d, p) = temp_file(
        "shop.policy",
        &text.replace("report_only policy", "report_only   policy"),
    );
    let (code, _, _) = stepup(&["fmt", &p]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
}

#[test]
fn replay_expect_passes_on_the_report_only_example() {
    let (code, out, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--expect",
        "--rules",
        "examples/report-only/rules",
        "examples/report-only/scenarios",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "report-only new_device_keys: would step up to aal3 factor totp|webauthn for 5m"
        ),
        "{out}"
    );
}

#[test]
fn replay_writes_a_decision_log_that_backtests_to_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let log_s = log.display().to_string();
    let (code, _, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        "rules",
        "--decision-log",
        &log_s,
        "examples/scenarios",
    ]);
    assert_eq!(code, 0, "{err}");
    let n = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        err.contains(&format!("wrote {n} decision(s) to {log_s}")),
        "{err}"
    );
    let (code, out, err) = stepup(&["backtest", "--rules", "rules", &log_s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("changed decisions: 0 of {n} (0.0%)")),
        "{out}"
    );
    assert!(out.contains("against the recorded decisions"), "{out}");
    let (code, json, _) = stepup(&[
        "backtest",
        "--format",
        "json",
        "--rules",
        "rules",
        "--baseline",
        "rules",
        &log_s,
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["decisions"], serde_json::json!(n));
    assert_eq!(v["changed"], serde_json::json!(0));
    assert_eq!(v["compared_with"], serde_json::json!("baseline"));
    assert!(
        v["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["policy"] == "payouts")
    );
}

#[test]
fn backtest_reports_unreadable_lines_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let log_s = log.display().to_string();
    let (code, _, _) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        "rules",
        "--decision-log",
        &log_s,
        "examples/scenarios/01_sensitive_operation.ron",
    ]);
    assert_eq!(code, 0);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("not a decision\n");
    std::fs::write(&log, &text).unwrap();
    let n = text.lines().count();
    let (code, out, _) = stepup(&["backtest", "--rules", "rules", &log_s]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "unreadable lines: 1\n  {log_s}:{n}: expected ident"
        )),
        "{out}"
    );
    let (code, _, err) = stepup(&["backtest", "--rules", "rules", "missing.jsonl"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open `missing.jsonl`"), "{err}");
    // A directory is an I/O error too (it read as one unreadable line, exit 1).
    let (code, _, err) = stepup(&["backtest", "--rules", "rules", "examples"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot open `examples`: it is a directory"),
        "{err}"
    );
    let (code, _, err) = stepup(&["backtest", "--rules", "nowhere", &log_s]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot load the candidate rules in `nowhere`"),
        "{err}"
    );
}

#[test]
fn replay_pseudonymises_the_decision_log_with_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("d.jsonl").display().to_string();
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let key = key.display().to_string();
    let (code, _, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        "rules",
        "--decision-log",
        &log,
        "--pseudonymize-key-file",
        &key,
        "examples/scenarios/05_new_device.ron",
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("alice") && !text.contains("phone-2"),
        "{text}"
    );
    assert!(text.contains("\"pseudonymised\":true"));
    std::fs::write(dir.path().join("short"), "short").unwrap();
    let short = dir.path().join("short").display().to_string();
    let (code, _, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        "rules",
        "--decision-log",
        &log,
        "--pseudonymize-key-file",
        &short,
        "examples/scenarios/05_new_device.ron",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("use at least 16 random bytes"), "{err}");
}

/// A GeoLite2-City-shaped database: 192.0.2.0/24 in Paris, 198.51.100.0/24 in New York.
fn city_db(path: &Path) {
    std::fs::write(path, stepup_geoip::test_db::paris_new_york().unwrap()).unwrap();
}

#[test]
fn replay_geolocates_events_that_give_only_an_ip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.mmdb");
    city_db(&db);
    // Paris, then New York five minutes later, then an address the database does not hold:
    // the scenario says only the IP.
    let scenario = dir.path().join("travel.ron");
    std::fs::write(
        &scenario,
        r#"Scenario(
    name: "sign-ins that give only an IP",
    tenant: "acme",
    application: "dashboard",
    user: (id: "alice", enrolled: [password, totp],
           history: (devices: ["laptop-1"], countries: {"FR": "2026-11-20T08:00:00Z", "US": "2026-11-21T08:00:00Z"},
                     last_sign_in: (at: "2026-11-26T18:00:00Z", country: "FR",
                                    location: (lat: 48.85, lon: 2.35)))),
    events: [
        SignIn(at: "2026-11-27T09:00:00Z", device: "laptop-1", ip: "192.0.2.7", factors: [password, totp],
               expect: (decision: allow, signals: {"new_country": "false", "impossible_travel": "false"})),
        SignIn(at: "+5m", device: "laptop-1", ip: "198.51.100.9", factors: [password],
               expect: (decision: step_up, required_aal: aal3,
                        signals: {"new_country": "false", "impossible_travel": "true"})),
        SignIn(at: "+1h", device: "laptop-1", ip: "203.0.113.5", factors: [password],
               expect: (decision: step_up,
                        signals: {"new_country": "unknown", "impossible_travel": "unknown"})),
    ],
)
"#,
    )
    .unwrap();
    let s = scenario.display().to_string();
    let d = db.display().to_string();
    let (code, out, err) = stepup(&["replay", "--store", "memory", "--expect", "--geoip", &d, &s]);
    assert_eq!(code, 0, "{out}{err}");
    // Without the database the same scenario has no place at all: every expectation that
    // needed one is unmet.
    let (code, out, _) = stepup(&["replay", "--store", "memory", "--expect", &s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("impossible_travel"), "{out}");

    // A file that is not a MaxMind database is a usage error, named.
    let bad = dir.path().join("bad.mmdb");
    std::fs::write(&bad, "not a database").unwrap();
    let b = bad.display().to_string();
    let (code, _, err) = stepup(&["replay", "--store", "memory", "--geoip", &b, &s]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--geoip") && err.contains("not a MaxMind database"),
        "{err}"
    );
}

/// A review's findings: `replay --expect DIR` read one level of the directory only (a failing
/// scenario in a subdirectory was never run, and the replay said all passed), and a file that
/// checks nothing — no events, or events whose `expect` names nothing — counted as a pass
/// silently. Subdirectories are searched (a link loop ends), and a file that tests nothing is
/// named in a warning and counted apart: it has no mismatch, so it does not fail the run (SPEC
/// §7: `--expect` exits 1 on a mismatch, and its scenario, written without expectations, is
/// accepted as written).
#[test]
fn replay_expect_searches_subdirectories_and_names_a_file_that_checks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("sc");
    std::fs::create_dir_all(sc.join("sub")).unwrap();
    let good =
        std::fs::read_to_string(root().join("examples/scenarios/01_sensitive_operation.ron"))
            .unwrap();
    std::fs::write(sc.join("good.ron"), &good).unwrap();
    // Expects an allow where the rules step up.
    std::fs::write(
        sc.join("sub").join("fails.ron"),
        good.replace(
            "expect: (decision: step_up, required_aal: aal2",
            "expect: (decision: allow, required_aal: aal2",
        ),
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("..", sc.join("sub").join("up")).unwrap();
    let sc = sc.display().to_string();
    let (code, out, err) = stepup(&["replay", "--store", "memory", "--expect", &sc]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("fails.ron") && out.contains("1 event(s) differ"),
        "{out}"
    );
    assert_eq!(out.matches("good.ron").count(), 1, "read once: {out}");

    for (name, text) in [
        (
            "empty.ron",
            "Scenario(name: \"zero\", tenant: \"acme\", application: \"dashboard\", user: (id: \"a\", enrolled: [totp]), events: [])",
        ),
        (
            "unit.ron",
            "Scenario(name: \"unit\", tenant: \"acme\", application: \"dashboard\", user: (id: \"a\", enrolled: [totp]), events: [Operation(at: \"2026-11-27T09:00:00Z\", name: \"change_email\", expect: ())])",
        ),
    ] {
        let (_d, p) = temp_file(name, text);
        let (code, out, err) = stepup(&["replay", "--store", "memory", "--expect", &p]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains("expectations: none checked"), "{name}: {out}");
        assert!(
            out.contains("0 with mismatched expectations; 1 checking nothing"),
            "{name}: {out}"
        );
        assert!(
            err.contains(&format!("warning: `{p}` tests nothing")),
            "{name}: {err}"
        );
        // Without `--expect` it is a replay, not a test: nothing is said.
        let (code, _, err) = stepup(&["replay", "--store", "memory", &p]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(!err.contains("tests nothing"), "{name}: {err}");
    }
    // With a failing file beside it, the run still fails on the mismatch.
    let (_d, p) = temp_file(
        "unit.ron",
        "Scenario(name: \"unit\", tenant: \"acme\", application: \"dashboard\", user: (id: \"a\", enrolled: [totp]), events: [])",
    );
    let (code, out, _) = stepup(&["replay", "--store", "memory", "--expect", &p, &sc]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("1 with mismatched expectations; 1 checking nothing"),
        "{out}"
    );
}

/// SPEC §7's scenario, exactly as written (it has no expectations), replays under `--expect`
/// with no mismatch: exit 0, and a warning that it checks nothing.
#[test]
fn the_spec_scenario_as_written_replays_under_expect() {
    let spec = r#"Scenario(
    name: "stale sign-in changes email, then pays out",
    tenant: "acme",
    application: "dashboard",
    user: (id: "alice", enrolled: [totp, sms],
           history: (devices: ["laptop-1"], countries: {"FR": "2026-11-20T08:00:00Z"})),
    events: [
        SignIn(at: "2026-11-27T09:00:00Z", device: "laptop-1", ip: "198.51.100.7", country: "FR",
               location: (lat: 48.85, lon: 2.35), factors: [password]),
        Operation(at: "2026-11-27T09:05:00Z", name: "change_email"),
        StepUp(at: "2026-11-27T09:05:20Z", factor: totp, success: true),
        Operation(at: "2026-11-27T09:05:21Z", name: "change_email"),
        Operation(at: "2026-11-27T09:30:00Z", name: "payout", attrs: {"amount": 5000}),
    ],
)
"#;
    let (_d, p) = temp_file("spec.ron", spec);
    let (code, out, err) = stepup(&["replay", "--rules", "rules", "--expect", &p]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("tests nothing"), "{err}");
    let (code, out, err) = stepup(&["replay", "--rules", "rules", "--format", "json", &p]);
    assert_eq!(code, 0, "{out}{err}");
    let decisions: Vec<_> = json_lines(&out)
        .iter()
        .map(|e| e["decision"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        decisions,
        ["allow", "step_up", "completed", "allow", "step_up"],
        "{out}"
    );
}

/// A review's finding: `stepup fmt` wrote a file in place, so a write that failed (a full
/// disk, a quota; here a file-size limit of 2 KiB) left it cut short, and a file cut between
/// two policies still checks. The file is replaced whole or not at all, and nothing is left
/// beside it.
#[cfg(unix)]
#[test]
fn a_failed_fmt_write_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.policy");
    // Unformatted (extra spaces), and larger than the limit once formatted.
    let text: String = (0..60)
        .map(|i| format!("policy  p{i}   \"Confirm it's you, please, this is policy number {i}.\" {{ when  new_device   require aal2 }}\n"))
        .collect();
    std::fs::write(&file, &text).unwrap();
    let script = "trap '' XFSZ; ulimit -S -f 2; exec \"$0\" fmt \"$1\"";
    let out = Command::new("bash")
        .args(["-c", script, env!("CARGO_BIN_EXE_stepup")])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "the file is untouched"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    // Without the limit it is formatted, through a symbolic link to its target.
    let link = dir.path().join("link.policy");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let (code, out, err) = stepup(&["fmt", &link.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let formatted = std::fs::read_to_string(&file).unwrap();
    assert_ne!(formatted, text);
    assert!(formatted.starts_with("policy p0 \""), "{formatted}");

    // A review of the change: the rename parted a file from its other names (hard links) and
    // gave it the formatter's owner. Both names are formatted, and the owner is kept.
    use std::os::unix::fs::MetadataExt as _;
    let other = dir.path().join("other.policy");
    std::fs::write(&other, &text).unwrap();
    let hard = dir.path().join("hard.policy");
    std::fs::hard_link(&other, &hard).unwrap();
    // Owned by another user when the test may give it one (as root).
    let owner = std::os::unix::fs::chown(&other, Some(65_534), Some(65_534)).is_ok();
    let (code, out, err) = stepup(&["fmt", &other.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(&hard).unwrap(), formatted);
    let meta = std::fs::metadata(&other).unwrap();
    assert_eq!(meta.nlink(), 2);
    if owner {
        assert_eq!((meta.uid(), meta.gid()), (65_534, 65_534));
    }
    // One name, another owner: replaced through a new file, the owner kept.
    let lone = dir.path().join("lone.policy");
    std::fs::write(&lone, &text).unwrap();
    let owner = std::os::unix::fs::chown(&lone, Some(65_534), Some(65_534)).is_ok();
    let (code, out, err) = stepup(&["fmt", &lone.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(&lone).unwrap(), formatted);
    if owner {
        let meta = std::fs::metadata(&lone).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65_534, 65_534));
    }
}

/// A review's finding: in a directory, only files named exactly `*.policy` were read, so a
/// `Payouts.POLICY` (saved on another system) was skipped without a word and its policies
/// guarded nothing. The extension is compared without case.
#[test]
fn a_policy_file_with_an_upper_case_extension_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.policy"),
        "when new_device require aal2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("B.POLICY"),
        "when new_device require aal2 for 3d\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a policy\n").unwrap();
    let (code, out, err) = stepup(&["check", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("checked 2 files"), "{out}");
}

/// A review found `payouts.polcy` (a typo) skipped without a word: its policies guarded
/// nothing and `check` said "no problems". A file whose extension nearly is `.policy` is named
/// in a warning (S011); other files (`notes.txt`, `README.md`, `x.bak`) are left alone. A
/// scenario nearly named `.ron` is named by `replay`, and nothing but it is read there.
#[test]
fn a_file_nearly_named_policy_or_ron_is_named_not_skipped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("sub")).unwrap();
    std::fs::write(rules.join("a.policy"), "when new_device require aal2\n").unwrap();
    let near = [
        "sub/payouts.polcy",
        "b.policies",
        "c.Polciy",
        "d.policy~",
        "e.pol",
        "f.policy.txt",
        "g.policy.",
        ".policy",
    ];
    for name in near {
        std::fs::write(rules.join(name), "when risk >= 10 require aal3\n").unwrap();
    }
    for name in ["notes.txt", "README.md", "x.bak", "y.rs"] {
        std::fs::write(rules.join(name), "not a policy\n").unwrap();
    }
    let (code, out, err) = stepup(&["check", &rules.display().to_string()]);
    assert_eq!(code, 0, "warnings only: {out}{err}");
    assert!(out.contains("checked 1 file: 8 warnings"), "{out}");
    for name in near {
        assert!(
            out.contains(&format!("{name}\n")) && out.contains("warning[S011]"),
            "{name}: {out}"
        );
    }
    for name in ["notes.txt", "README.md", "x.bak", "y.rs"] {
        assert!(!out.contains(name), "{name}: {out}");
    }
    let (code, out, _) = stepup(&["check", "--deny-warnings", &rules.display().to_string()]);
    assert_eq!(code, 1, "{out}");

    // Nothing read at all: the error says so, after what was skipped.
    let only = dir.path().join("only");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::write(only.join("payouts.polcy"), "when new_device require aal2\n").unwrap();
    let (code, out, err) = stepup(&["check", &only.display().to_string()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("payouts.polcy") && err.contains("no `.policy` files"),
        "{err}"
    );

    let sc = dir.path().join("sc");
    std::fs::create_dir_all(&sc).unwrap();
    let good =
        std::fs::read_to_string(root().join("examples/scenarios/01_sensitive_operation.ron"))
            .unwrap();
    std::fs::write(sc.join("good.ron"), &good).unwrap();
    std::fs::write(sc.join("typo.rno"), &good).unwrap();
    std::fs::write(sc.join("notes.md"), "notes\n").unwrap();
    let (code, out, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--expect",
        &sc.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("typo.rno` is not replayed") && !err.contains("notes.md"),
        "{err}"
    );
    assert!(out.contains("replayed 1 of 1"), "{out}");
    // A rules file nearly named `.policy` is named by replay too (a review found it silent).
    let (code, out, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        &rules.display().to_string(),
        &sc.join("good.ron").display().to_string(),
    ]);
    assert!(
        err.contains("payouts.polcy` is not read: its name does not end in `.policy`"),
        "{code} {out}{err}"
    );
}

/// A retired code (E009, E010: errors that became the lints S012, S013) is explained by its
/// successor, saying so, rather than "unknown".
#[test]
fn explain_of_a_retired_code_names_its_successor() {
    for (old, new) in [("E009", "S012"), ("e010", "S013")] {
        let (code, out, err) = stepup(&["explain", old]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.starts_with(&format!(
                "{} is no longer used: it became the lint {new}",
                old.to_uppercase()
            )) && out.contains(&format!("\n{new} ")),
            "{out}"
        );
    }
    let (code, _, err) = stepup(&["explain", "E099"]);
    assert_eq!(code, 2, "{err}");
}

/// Found by the docs review of round 19: `replay`, `backtest` and `fmt --check` pointed at a
/// directory of no rules (arguments swapped, a wrong path) said nothing of it — a backtest
/// reported every decision changed and exited 0, `fmt --check` passed. Each is a usage error
/// now (exit 2), as `check`'s is.
#[test]
fn every_command_refuses_rules_that_are_no_rules() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let empty = empty.display().to_string();
    let scenario = root()
        .join("examples/scenarios/01_sensitive_operation.ron")
        .display()
        .to_string();
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, "").unwrap();
    let log = log.display().to_string();
    for args in [
        vec!["replay", "--rules", &empty, &scenario],
        vec!["backtest", "--rules", &empty, &log],
        vec!["fmt", "--check", &empty],
        vec!["check", &empty],
    ] {
        let (code, out, err) = stepup(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("no `.policy` files"), "{args:?}: {err}");
    }
}

/// Files that never end (a link to `/dev/zero`: a pipe or a device has no length to check) are
/// read no further than their limits: a scenario, a policy file and a key file each end in an
/// error, not in memory growing without bound (a review: 9–15 GB in 30 s).
#[cfg(unix)]
#[test]
fn files_that_never_end_are_read_no_further_than_their_limits() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.ron")).unwrap();
    // A scenario or a policy file that is a device is not read at all: an I/O error, exit 2.
    let (code, _, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        "rules",
        &p("zero.ron"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/t.policy"),
        "when new_device require aal2\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("rules/z.policy")).unwrap();
    let (code, out, err) = stepup(&["check", &p("rules")]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("z.policy`: not a regular file"), "{out}{err}");
    // A key file may be a pipe (a key handed over by process substitution): read to its limit.
    let (code, _, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        "rules",
        "--decision-log",
        &p("log.jsonl"),
        "--pseudonymize-key-file",
        "/dev/zero",
        "examples/scenarios/01_sensitive_operation.ron",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("too large"), "{err}");
    // A device or a pipe given by name is refused at once, saying what it is (walking it as a
    // directory said "Not a directory"); a pipe nothing writes to is not waited on, and `fmt`
    // leaves it a pipe (it would have written a regular file in its place).
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.policy")).unwrap();
    let fifo = dir.path().join("fifo.policy");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    for (args, file) in [
        (&["check"][..], "zero.policy"),
        (&["check"][..], "fifo.policy"),
        (&["fmt"][..], "fifo.policy"),
        (&["fmt", "--check"][..], "fifo.policy"),
    ] {
        let path = p(file);
        let mut full = args.to_vec();
        full.push(&path);
        let (code, out, err) = stepup(&full);
        assert_eq!(code, 2, "{full:?}: {out}{err}");
        assert!(err.contains("not a regular file"), "{full:?}: {out}{err}");
    }
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::symlink_metadata(&fifo).map(|m| m.file_type().is_fifo());
    assert!(kind.is_ok_and(|fifo| fifo), "fmt replaced the pipe");
}

/// `stepup args`, killed and failed when it has not ended within ten seconds: what is tested
/// is that it does not wait on a pipe.
#[cfg(unix)]
fn stepup_within(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stepup"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} did not end within 10 s: it waited on a pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A pipe found by walking a directory (a rules or a scenario directory, or a link in one to
/// a pipe elsewhere) is refused as one given by name is: `check`, `fmt` and `replay` end at
/// once with an I/O error naming it (they waited forever for a writer), and `fmt` leaves it
/// a pipe (it replaced it, even outside the directory, with a regular file): a review.
#[cfg(unix)]
#[test]
fn a_pipe_inside_a_walked_directory_is_refused_not_waited_on_or_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = |name: &str| dir.path().join(name).display().to_string();
    let mkfifo = |path: &str| {
        let made = Command::new("mkfifo").arg(path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {path}");
    };
    let still_a_pipe = |path: &str| {
        let kind = std::fs::symlink_metadata(path).map(|m| m.file_type().is_fifo());
        assert!(kind.is_ok_and(|fifo| fifo), "{path} is no longer a pipe");
    };
    for d in ["rules", "linked", "scenarios"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    for d in ["rules", "linked"] {
        std::fs::write(
            dir.path().join(d).join("a.policy"),
            "when new_device require aal2\n",
        )
        .unwrap();
    }
    mkfifo(&p("rules/zz.policy"));
    mkfifo(&p("outside.fifo"));
    std::os::unix::fs::symlink(p("outside.fifo"), dir.path().join("linked/zz.policy")).unwrap();
    // `stepup args… rules` ends at once, refusing `zz.policy` for what it is.
    let refused = |args: &[&str], rules: &str| {
        let path = p(rules);
        let mut full = args.to_vec();
        full.push(&path);
        let (code, out, err) = stepup_within(&full);
        assert_eq!(code, 2, "{full:?}: {out}{err}");
        assert!(
            err.contains("zz.policy`: not a regular file"),
            "{full:?}: {out}{err}"
        );
    };
    for rules in ["rules", "linked"] {
        for args in [&["check"][..], &["fmt"][..], &["fmt", "--check"][..]] {
            refused(args, rules);
        }
    }
    still_a_pipe(&p("rules/zz.policy"));
    still_a_pipe(&p("outside.fifo"));
    // A socket cannot be opened at all ("No such device or address"): it is named for what
    // it is, as a pipe is (a review).
    std::fs::remove_file(dir.path().join("rules/zz.policy")).unwrap();
    let socket = std::os::unix::net::UnixListener::bind(dir.path().join("rules/zz.policy"));
    assert!(socket.is_ok(), "{socket:?}");
    for args in [&["check"][..], &["fmt"][..]] {
        refused(args, "rules");
    }
    drop(socket);
    std::fs::remove_file(dir.path().join("rules/zz.policy")).unwrap();
    // A scenario that is a pipe, given by name or found in a directory.
    std::fs::copy(
        root().join("examples/scenarios/01_sensitive_operation.ron"),
        dir.path().join("scenarios/01.ron"),
    )
    .unwrap();
    mkfifo(&p("scenarios/zz.ron"));
    mkfifo(&p("s.fifo"));
    for scenario in [p("s.fifo"), p("scenarios")] {
        let (code, out, err) =
            stepup_within(&["replay", "--store", "memory", "--rules", "rules", &scenario]);
        assert_eq!(code, 2, "{scenario}: {out}{err}");
        assert!(err.contains("not a regular file"), "{scenario}: {out}{err}");
    }
}

/// A byte order mark at the start of a policy file, a threat feed or a scenario (Windows
/// Notepad saves one) is no part of the text: the feed's first range is read, not skipped as
/// malformed with its addresses let through (a review: a sign-in from it was allowed where
/// the policy steps up), and the policy file and the scenario parse (E001 at 1:1; RON's
/// "Expected opening `(`").
#[test]
fn a_byte_order_mark_is_read_as_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::create_dir_all(dir.path().join("rules/feeds")).unwrap();
    let bom = "\u{feff}";
    std::fs::write(
        dir.path().join("rules/t.policy"),
        format!(
            "{bom}tenant f {{\n  risk {{ weight threat_intel 80 threat_feed \"feeds/f.netset\" }}\n  \
             policy ti \"Your network is on a blocklist; confirm it's you.\" {{\n    \
             when threat_intel\n    require aal2 factor any for 15m\n  }}\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules/feeds/f.netset"),
        format!("{bom}203.0.113.0/24\n{bom}# a second file joined\n192.0.2.66\n"),
    )
    .unwrap();
    let (code, out, err) = stepup(&["check", &p("rules")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!format!("{out}{err}").contains("skipped"), "{out}{err}");
    // `fmt` reads the file as `check` does, and writes it without the mark (it was an E001).
    let (code, out, err) = stepup(&["fmt", "--check", &p("rules")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("would reformat"), "{out}{err}");
    let (code, out, err) = stepup(&["fmt", &p("rules")]);
    assert_eq!(code, 0, "{out}{err}");
    let written = std::fs::read_to_string(dir.path().join("rules/t.policy")).unwrap();
    assert!(written.starts_with("tenant f {"), "{written:?}");
    let (code, out, err) = stepup(&["fmt", "--check", &p("rules")]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = stepup(&["check", &p("rules")]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(
        dir.path().join("s.ron"),
        format!(
            "{bom}Scenario(name: \"bom\", tenant: \"f\", application: \"app\",\n  \
             users: [(id: \"a\", enrolled: [password, sms]), (id: \"b\", enrolled: [password, sms])],\n  \
             events: [\n    \
             SignIn(at: \"2026-11-27T09:00:00Z\", user: \"a\", ip: \"203.0.113.9\", expect: (decision: step_up)),\n    \
             SignIn(at: \"2026-11-27T09:00:00Z\", user: \"b\", ip: \"192.0.2.66\", expect: (decision: step_up)),\n  \
             ])\n"
        ),
    )
    .unwrap();
    let (code, out, err) = stepup(&[
        "replay",
        "--store",
        "memory",
        "--rules",
        &p("rules"),
        "--expect",
        &p("s.ron"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("all met (2 checked)"), "{out}{err}");
}

/// A scenario that cannot be read is an I/O error, exit 2, as `check` exits for one (it exited
/// 1, as for a scenario that does not parse), also beside scenarios that replay.
#[test]
fn a_scenario_that_cannot_be_read_is_an_io_error() {
    // Reading `/proc/self/mem` from its start fails (EIO) on Linux.
    if !std::path::Path::new("/proc/self/mem").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mem = dir.path().join("mem.ron");
    std::os::unix::fs::symlink("/proc/self/mem", &mem).unwrap();
    let mem = mem.display().to_string();
    for files in [
        vec![mem.as_str()],
        vec![
            "examples/scenarios/01_sensitive_operation.ron",
            mem.as_str(),
        ],
    ] {
        let mut args = vec![
            "replay", "--store", "memory", "--rules", "rules", "--expect",
        ];
        args.extend(files);
        let (code, out, err) = stepup(&args);
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains("mem.ron") && out.contains("1 could not be replayed"),
            "{out}{err}"
        );
    }
}
