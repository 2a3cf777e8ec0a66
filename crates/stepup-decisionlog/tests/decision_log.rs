//! Decision logs end to end: written by replay, valid against the JSON Schema in docs/, read
//! back line by line, backtested to exactly the recorded decisions with the same rules, and to
//! the expected changes with changed rules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use stepup_decisionlog::backtest::{Backtest, BacktestReport, LOGGED_CELLS, LOGGED_NAMES};
use stepup_decisionlog::record::{LogEvent, LogValue};
use stepup_decisionlog::{LoggedDecision, Pseudonymizer, Record, Rotation, Writer};
use stepup_engine::{CompiledSet, Engine, MemoryStore, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Replays every scenario of `scenarios` against `rules`, logging each decision to `log`.
fn write_log(rules: &Path, scenarios: &Path, log: &Path, pseudo: Option<Pseudonymizer>) -> usize {
    let engine = Engine::load(&[rules.to_path_buf()]).unwrap();
    let set = engine.current();
    let store = MemoryStore::new();
    let mut w = Writer::open(log, Rotation::never(), pseudo).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    let mut n = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let l = stepup_replay::load(&name, &text, &set).unwrap();
        let mut write = |req: &stepup_engine::Request,
                         state: Option<&stepup_engine::State>,
                         d: &stepup_engine::Decision| {
            w.write(req, state, d).unwrap();
            n += 1;
        };
        stepup_replay::replay_observed(&l, &engine, &store, Some(&mut write)).unwrap();
    }
    w.flush().unwrap();
    n
}

fn examples_log(dir: &Path) -> PathBuf {
    let log = dir.join("examples.jsonl");
    write_log(
        &root().join("rules"),
        &root().join("examples/scenarios"),
        &log,
        None,
    );
    log
}

/// The first step-up a log records.
fn a_step_up(log: &Path) -> Record {
    records(log)
        .into_iter()
        .find(|(_, r)| r.decision.kind == stepup_engine::DecisionKind::StepUp)
        .unwrap()
        .1
}

fn records(log: &Path) -> Vec<(u64, Record)> {
    let f = std::fs::File::open(log).unwrap();
    stepup_decisionlog::Lines::new(BufReader::new(f))
        .map(|r| r.unwrap())
        .collect()
}

/// A directory `name` under `dir` holding `files` (file name, text): a test's rules or
/// scenarios.
fn written(dir: &Path, name: &str, files: &[(String, String)]) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    for (file, text) in files {
        std::fs::write(out.join(file), text).unwrap();
    }
    out
}

fn backtest(rules: &Path, baseline: Option<&Path>, log: &Path) -> BacktestReport {
    let load = |p: &Path| Arc::new(CompiledSet::load(&[p.to_path_buf()]).unwrap());
    let mut bt = Backtest::new(load(rules), baseline.map(load));
    let f = std::fs::File::open(log).unwrap();
    for item in stepup_decisionlog::Lines::new(BufReader::new(f)) {
        match item {
            Ok((line, rec)) => bt.add("log.jsonl", line, &rec),
            Err(e) => bt.unreadable("log.jsonl", &e),
        }
    }
    bt.finish()
}

// ───────────── a small JSON Schema validator: the subset docs/decision-log.schema.json uses ─────────────

fn resolve<'s>(schema: &'s Json, root: &'s Json) -> &'s Json {
    match schema.get("$ref").and_then(Json::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/$defs/")
                .expect("local $defs references only");
            resolve(&root["$defs"][name], root)
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Json) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        other => panic!("type `{other}` not supported by this validator"),
    }
}

/// Every way `v` fails `schema` (empty: valid), with JSON paths.
fn validate(v: &Json, schema: &Json, root: &Json, path: &str, out: &mut Vec<String>) {
    let s = resolve(schema, root);
    let known = [
        "$schema",
        "$id",
        "title",
        "description",
        "$defs",
        "$ref",
        "type",
        "const",
        "enum",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "oneOf",
        "minimum",
    ];
    for k in s.as_object().expect("a schema is an object").keys() {
        assert!(
            known.contains(&k.as_str()),
            "keyword `{k}` not supported by this validator"
        );
    }
    if let Some(t) = s.get("type").and_then(Json::as_str)
        && !type_ok(t, v)
    {
        out.push(format!("{path}: not a {t}: {v}"));
        return;
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        out.push(format!("{path}: not {c}: {v}"));
    }
    if let Some(e) = s.get("enum").and_then(Json::as_array)
        && !e.contains(v)
    {
        out.push(format!("{path}: not one of {e:?}: {v}"));
    }
    if let Some(m) = s.get("minimum").and_then(Json::as_f64)
        && v.as_f64().is_some_and(|x| x < m)
    {
        out.push(format!("{path}: below {m}"));
    }
    if let Some(obj) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                out.push(format!("{path}: `{r}` is missing"));
            }
        }
        let props = s.get("properties").and_then(Json::as_object);
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(x, ps, root, &format!("{path}.{k}"), out),
                None => {
                    if let Some(extra) = s.get("additionalProperties") {
                        validate(x, extra, root, &format!("{path}.{k}"), out);
                    }
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(x, items, root, &format!("{path}[{i}]"), out);
        }
    }
    if let Some(alts) = s.get("oneOf").and_then(Json::as_array) {
        let passing = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                validate(v, a, root, path, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            out.push(format!(
                "{path}: matches {passing} of the oneOf alternatives: {v}"
            ));
        }
    }
}

fn schema() -> Json {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/decision-log.schema.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn every_line_replay_writes_is_valid_against_the_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let ro = dir.path().join("report_only.jsonl");
    write_log(
        &root().join("examples/report-only/rules"),
        &root().join("examples/report-only/scenarios"),
        &ro,
        Some(Pseudonymizer::new(b"0123456789abcdef0123").unwrap()),
    );
    let schema = schema();
    let mut kinds = std::collections::BTreeSet::new();
    let mut n = 0;
    for path in [&log, &ro] {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: Json = serde_json::from_str(line).unwrap();
            let mut errors = Vec::new();
            validate(&v, &schema, &schema, "$", &mut errors);
            assert!(errors.is_empty(), "{errors:#?}\n{line}");
            kinds.insert((
                v["event"]["type"].to_string(),
                v["decision"]["kind"].to_string(),
            ));
            n += 1;
        }
    }
    assert!(n > 90, "{n} lines");
    // Every event type and decision kind was checked against the schema.
    for k in ["sign_in", "operation", "access", "step_up"] {
        assert!(
            kinds.iter().any(|(e, _)| *e == format!("\"{k}\"")),
            "{k}: {kinds:?}"
        );
    }
    for k in ["allow", "step_up", "deny", "completed", "failed"] {
        assert!(
            kinds.iter().any(|(_, d)| *d == format!("\"{k}\"")),
            "{k}: {kinds:?}"
        );
    }
    // The validator does reject what the schema does not allow.
    let line: Json = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for (mutate, expected) in [
        (
            Box::new(|v: &mut Json| {
                v.as_object_mut().unwrap().remove("now");
            }) as Box<dyn Fn(&mut Json)>,
            "$: `now` is missing",
        ),
        (
            Box::new(|v: &mut Json| v["enrolled"] = serde_json::json!(["totpp"])),
            "$.enrolled[0]: not one of",
        ),
        (
            Box::new(|v: &mut Json| v["v"] = serde_json::json!(2)),
            "$.v: not 1",
        ),
        (
            Box::new(|v: &mut Json| v["event"]["type"] = serde_json::json!("login")),
            "$.event: matches 0 of the oneOf",
        ),
    ] {
        let mut bad = line.clone();
        mutate(&mut bad);
        let mut errors = Vec::new();
        validate(&bad, &schema, &schema, "$", &mut errors);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected}: {errors:?}"
        );
    }
}

#[test]
fn a_log_written_by_replay_backtests_to_exactly_the_recorded_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let set = CompiledSet::load(&[root().join("rules")]).unwrap();
    let recs = records(&log);
    assert!(recs.len() > 90);
    for (line, rec) in &recs {
        assert_eq!(rec.policy_set, set.hash().to_string());
        let state = rec.state().expect("the memory store never fails");
        let again = LoggedDecision::of(&set.decide(&rec.request(), &state, false));
        assert_eq!(again, rec.decision, "line {line}: {}", rec.event_key());
    }
    let r = backtest(&root().join("rules"), None, &log);
    assert_eq!(
        (r.decisions, r.changed, r.unreadable),
        (recs.len() as u64, 0, 0)
    );
    assert_eq!(r.old, r.new);
    assert!(r.new.prompts > 0 && r.new.denials > 0);
    // Against itself as a baseline too.
    let r = backtest(&root().join("rules"), Some(&root().join("rules")), &log);
    assert_eq!(r.changed, 0);
}

#[test]
fn a_pseudonymised_log_hides_ids_and_still_backtests_to_the_same_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let plain = examples_log(dir.path());
    let hashed = dir.path().join("hashed.jsonl");
    let key = b"a secret key of the operator, 32b";
    write_log(
        &root().join("rules"),
        &root().join("examples/scenarios"),
        &hashed,
        Some(Pseudonymizer::new(key).unwrap()),
    );
    let text = std::fs::read_to_string(&hashed).unwrap();
    for id in ["alice", "laptop-1", "phone-2", "01_sensitive_operation"] {
        assert!(!text.contains(id), "`{id}` is in the pseudonymised log");
    }
    let (a, b) = (records(&plain), records(&hashed));
    assert_eq!(a.len(), b.len());
    let p = Pseudonymizer::new(key).unwrap();
    let mut challenges = 0;
    for ((_, x), (_, y)) in a.iter().zip(&b) {
        assert!(y.pseudonymised);
        assert_eq!(
            y.user,
            p.pseudonym(stepup_decisionlog::pseudo::Kind::User, &x.user)
        );
        assert!(y.user.starts_with("u_") && y.user.len() == 34, "{}", y.user);
        // A challenge id hashes the user and session with no secret: it is a pseudonym too,
        // the same one wherever the id appears.
        let challenge = |c: &str| p.pseudonym(stepup_decisionlog::pseudo::Kind::Challenge, c);
        assert_eq!(
            y.decision.challenge_id,
            x.decision.challenge_id.as_deref().map(challenge)
        );
        if let (Some(xs), Some(ys)) = (&x.state, &y.state) {
            let ids = |s: &stepup_engine::SessionState| {
                let c = s.challenges.iter().map(|c| c.id.to_string());
                c.chain(s.grants.iter().map(|g| g.challenge_id.to_string()))
                    .collect::<Vec<_>>()
            };
            let expected: Vec<String> = ids(&xs.session).iter().map(|c| challenge(c)).collect();
            assert_eq!(ids(&ys.session), expected);
        }
        if let Some(id) = &x.decision.challenge_id {
            assert!(
                !text.contains(id.as_str()),
                "`{id}` is in the pseudonymised log"
            );
            challenges += 1;
        }
        let strip = |d: &LoggedDecision| LoggedDecision {
            challenge_id: None,
            ..d.clone()
        };
        assert_eq!(strip(&x.decision), strip(&y.decision));
    }
    assert!(challenges > 0, "the examples issue challenges");
    let r = backtest(&root().join("rules"), None, &hashed);
    assert_eq!((r.changed, r.unreadable), (0, 0));
    assert!(Pseudonymizer::new(b"short").is_err());
}

/// A re-review's finding: pseudonymising turned a blank device into a named one (`d_…`), and
/// the history a log keeps read the blank one a store of an older version had learned, so a
/// backtest of a pseudonymised log changed a step-up into an allow. A blank device stays blank
/// in the log, and the engine reads it as none either way.
#[test]
fn a_blank_device_stays_none_in_a_pseudonymised_log() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = r#"Scenario(
    name: "a blank device",
    tenant: "acme",
    application: "dashboard",
    user: (id: "alice", enrolled: [password, totp],
           history: (devices: ["", " laptop-1 "], countries: {"FR": "2026-11-20T08:00:00Z"})),
    events: [
        SignIn(at: "2026-11-27T09:00:00Z", device: "", ip: "198.51.100.7", country: " FR ",
               location: (lat: 48.85, lon: 2.35), factors: [password],
               expect: (decision: step_up, fired: ["new_device_sign_in"],
                        signals: {"new_device": "unknown", "new_country": "false"})),
    ],
)
"#;
    let scenarios = written(
        dir.path(),
        "scenarios",
        &[("blank.ron".into(), scenario.into())],
    );
    let key = b"a secret key of the operator, 32b";
    for pseudo in [None, Some(Pseudonymizer::new(key).unwrap())] {
        let log = dir.path().join("blank.jsonl");
        let _ = std::fs::remove_file(&log);
        write_log(&root().join("rules"), &scenarios, &log, pseudo);
        let recs = records(&log);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].1.decision.kind, stepup_engine::DecisionKind::StepUp);
        // Logged as it was said: blank, not a pseudonym that names a device; and the history
        // kept for it holds no blank device.
        let LogEvent::SignIn { context, .. } = &recs[0].1.event else {
            panic!("a sign-in")
        };
        assert_eq!(context.device.as_deref(), Some(""));
        let state = recs[0].1.state().unwrap();
        let history = state.history.unwrap();
        assert!(
            !history.devices.iter().any(|d| d.trim().is_empty()),
            "{history:?}"
        );
        let r = backtest(&root().join("rules"), None, &log);
        assert_eq!((r.decisions, r.changed, r.unreadable), (1, 0, 0));
    }
}

/// A SPEC §12 QA read: a policy's prompts per active user per day were over the whole log's
/// user-days, so another tenant's traffic lowered them. They are over its tenant's.
#[test]
fn a_policys_prompts_per_day_are_over_its_tenants_active_users() {
    let dir = tempfile::tempdir().unwrap();
    let rules = written(
        dir.path(),
        "rules",
        &[(
            "t.policy".into(),
            "tenant t {\n  operation pay sensitive\n  policy pay \"Confirm this payment.\" { when operation == pay require aal2 factor totp for 5m }\n}\ntenant t2 {\n  operation view routine\n}\n".into(),
        )],
    );
    let sign_in = r#"SignIn(at: "2026-11-27T09:00:00Z", device: "d", ip: "198.51.100.7", country: "FR", location: (lat: 48.85, lon: 2.35), factors: [password])"#;
    let story = |tenant: &str, user: &str, enrolled: &str, op: &str| {
        (
            format!("{tenant}_{user}.ron"),
            format!(
                "Scenario(name: \"{tenant} {user}\", tenant: \"{tenant}\", user: (id: \"{user}\", enrolled: [{enrolled}]), events: [{sign_in}, Operation(at: \"+1m\", name: \"{op}\")])\n"
            ),
        )
    };
    let scenarios = written(
        dir.path(),
        "scenarios",
        &[
            story("t", "a", "password, totp", "pay"),
            story("t2", "b", "password", "view"),
            story("t2", "c", "password", "view"),
            story("t2", "d", "password", "view"),
        ],
    );
    let log = dir.path().join("two.jsonl");
    write_log(&rules, &scenarios, &log, None);
    let r = backtest(&rules, None, &log);
    assert_eq!((r.active_users, r.active_user_days), (4, 4));
    assert_eq!(r.new.prompts, 1);
    assert!(
        (r.new.prompts_per_active_user_day - 0.25).abs() < 1e-9,
        "overall: {r:?}"
    );
    let pay = r.policies.iter().find(|p| p.policy == "pay").unwrap();
    assert_eq!((pay.tenant.as_str(), pay.prompts), ("t", 1));
    assert!(
        (pay.prompts_per_active_user_day - 1.0).abs() < 1e-9,
        "t has one active user-day: {pay:?}"
    );
}

/// A copy of `rules/` with `from` replaced by `to` in `file`.
fn changed_rules(dir: &Path, file: &str, from: &str, to: &str) -> PathBuf {
    let out = dir.join(format!("rules-{}", to.len()));
    std::fs::create_dir_all(out.join("feeds")).unwrap();
    for f in ["acme.policy", "finance.policy", "feeds/blocklist.netset"] {
        let text = std::fs::read_to_string(root().join("rules").join(f)).unwrap();
        let text = if f == file {
            assert!(text.contains(from), "{from}");
            text.replace(from, to)
        } else {
            text
        };
        std::fs::write(out.join(f), text).unwrap();
    }
    out
}

fn amount(rec: &Record) -> Option<f64> {
    match &rec.event {
        LogEvent::Operation { name, attrs, .. } if name == "payout" => {
            match attrs.get("amount").map(LogValue::value) {
                Some(Value::Number(x)) => Some(x),
                _ => None,
            }
        }
        _ => None,
    }
}

#[test]
fn a_changed_threshold_shows_the_expected_changed_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let recs = records(&log);
    let deciding = |r: &Record| r.decision.deciding().any(|p| p == "payouts");

    // Raised to 2000 in the tenant: the payouts of 1500 that `payouts` prompted for (or refused)
    // change, except in `finance`, whose own `payouts` still says 1000.
    let raised = changed_rules(
        dir.path(),
        "acme.policy",
        "operation == payout and amount > 1000",
        "operation == payout and amount > 2000",
    );
    let expected: Vec<u64> = recs
        .iter()
        .filter(|(_, r)| {
            deciding(r)
                && r.application != "finance"
                && amount(r).is_some_and(|a| a > 1000.0 && a <= 2000.0)
        })
        .map(|(l, _)| *l)
        .collect();
    assert!(!expected.is_empty());
    let r = backtest(&raised, None, &log);
    assert_eq!(r.changed, expected.len() as u64, "{:#?}", r.changes);
    for g in &r.changes {
        assert!(g.policies.contains(&"payouts".to_string()), "{g:?}");
        assert!(
            g.from.starts_with("step_up") || g.from.starts_with("deny"),
            "{g:?}"
        );
        for e in &g.examples {
            assert!(expected.contains(&e.line), "{e:?}");
            assert_eq!(e.event, "operation:payout");
        }
    }
    assert!(r.new.prompts < r.old.prompts);
    let payouts = r.policies.iter().find(|p| p.policy == "payouts").unwrap();
    assert!(payouts.prompts < r.old.prompts);
    // The same change, seen from the raised rules as a baseline: every change is reversed.
    let back = backtest(&root().join("rules"), Some(&raised), &log);
    assert_eq!(back.changed, r.changed);
    for (a, b) in r.changes.iter().zip(&back.changes) {
        assert_eq!((&a.from, &a.to, a.count), (&b.to, &b.from, b.count));
    }

    // Lowered to 500: the payout of exactly 1000 now prompts.
    let lowered = changed_rules(
        dir.path(),
        "acme.policy",
        "operation == payout and amount > 1000",
        "operation == payout and amount > 500",
    );
    let r = backtest(&lowered, None, &log);
    let thousand: Vec<u64> = recs
        .iter()
        .filter(|(_, r)| {
            amount(r) == Some(1000.0) && r.decision.kind == stepup_engine::DecisionKind::Allow
        })
        .map(|(l, _)| *l)
        .collect();
    assert_eq!(r.changed, thousand.len() as u64, "{:#?}", r.changes);
    assert_eq!(r.changes[0].from, "allow");
    assert_eq!(r.changes[0].to, "step_up aal3");
    assert_eq!(r.changes[0].policies, vec!["payouts".to_string()]);
}

#[test]
fn unreadable_lines_are_counted_with_their_numbers_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len() as u64;
    lines.insert(2, "{not json".into());
    lines.insert(5, String::new());
    lines.insert(7, lines[0].replace("\"v\":1", "\"v\":9"));
    lines.push(lines[1][..40].to_string());
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let r = backtest(&root().join("rules"), None, &bad);
    assert_eq!(r.decisions, n);
    assert_eq!(r.unreadable, 3);
    let at: Vec<(u64, &str)> = r
        .unreadable_lines
        .iter()
        .map(|b| (b.line, b.error.split(' ').next().unwrap_or("")))
        .collect();
    assert_eq!(
        at,
        vec![(3, "key"), (8, "format"), (n + 4, "EOF")],
        "{:#?}",
        r.unreadable_lines
    );
    assert_eq!(
        r.unreadable_lines[1].error,
        "format version 9 (this stepup reads version 1)"
    );
}

#[test]
fn the_writer_rotates_by_size_without_splitting_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let all = records(&examples_log(dir.path()));
    let path = dir.path().join("rot/decisions.jsonl");
    let max = 8_000;
    let mut w = Writer::open(
        &path,
        Rotation {
            max_bytes: Some(max),
            keep: 3,
        },
        None,
    )
    .unwrap();
    for (_, r) in &all {
        w.write_record(r).unwrap();
    }
    drop(w);
    let rotated = |n: usize| stepup_decisionlog::writer::rotated(&path, n);
    assert!(rotated(3).exists() && !rotated(4).exists());
    let mut kept = 0;
    for p in [rotated(3), rotated(2), rotated(1), path.clone()] {
        let size = std::fs::metadata(&p).unwrap().len();
        assert!(size <= max, "{} has {size} bytes", p.display());
        let recs = records(&p);
        assert!(!recs.is_empty());
        kept += recs.len();
    }
    // The newest lines are kept, whole and in order.
    let newest = records(&path);
    assert_eq!(newest.last().unwrap().1, all.last().unwrap().1);
    assert!(kept < all.len());
}

#[test]
fn backtesting_the_report_only_example_measures_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ro.jsonl");
    write_log(
        &root().join("examples/report-only/rules"),
        &root().join("examples/report-only/scenarios"),
        &log,
        None,
    );
    let r = backtest(&root().join("examples/report-only/rules"), None, &log);
    assert_eq!(r.changed, 0);
    let row = |name: &str| {
        r.policies
            .iter()
            .find(|p| p.policy == name)
            .unwrap()
            .clone()
    };
    let over_200 = row("checkout_over_200");
    assert!(over_200.report_only);
    assert_eq!(
        (
            over_200.events,
            over_200.fired,
            over_200.prompts,
            over_200.denials,
            over_200.users_affected
        ),
        (5, 3, 2, 0, 1)
    );
    let keys = row("new_device_keys");
    assert_eq!((keys.prompts, keys.denials, keys.users_affected), (1, 1, 2));
    let big = row("big_checkout");
    assert!(!big.report_only);
    assert_eq!((big.fired, big.prompts), (2, 1));
    assert_eq!(r.old.prompts, 1, "report-only policies never prompt");
    // Enforcing the lower threshold: the 500 checkout now prompts.
    let enforced = dir.path().join("enforced");
    std::fs::create_dir_all(&enforced).unwrap();
    let text =
        std::fs::read_to_string(root().join("examples/report-only/rules/shop.policy")).unwrap();
    std::fs::write(
        enforced.join("shop.policy"),
        text.replace(
            "report_only policy checkout_over_200",
            "policy checkout_over_200",
        ),
    )
    .unwrap();
    let r = backtest(&enforced, None, &log);
    assert_eq!(r.changed, 1, "{:#?}", r.changes);
    assert_eq!(
        (r.changes[0].from.as_str(), r.changes[0].to.as_str()),
        ("allow", "step_up aal2")
    );
    assert_eq!(r.changes[0].policies, vec!["checkout_over_200".to_string()]);
}

/// A change that keeps the kind and the AAL but not the rest of the requirement (here the
/// validity of `sensitive_ops`) says what changed: the group's outcomes are the whole
/// requirements, not two identical `step_up aal2` (a review's finding).
#[test]
fn a_changed_validity_names_both_requirements() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let shorter = changed_rules(
        dir.path(),
        "acme.policy",
        "modify_mfa]\n    require aal2 factor any for 15m",
        "modify_mfa]\n    require aal2 factor any for 5m",
    );
    let r = backtest(&shorter, None, &log);
    let groups: Vec<_> = r
        .changes
        .iter()
        .filter(|g| g.policies == ["sensitive_ops"])
        .collect();
    assert!(!groups.is_empty(), "{:#?}", r.changes);
    for g in groups {
        assert_ne!(g.from, g.to, "{g:?}");
        if g.from.starts_with("step_up") && g.to.starts_with("step_up") {
            // The requirement as merged: the factors that reach aal2, then the validity.
            let (from, to) = (
                g.from.strip_suffix(" for 15m").unwrap(),
                g.to.strip_suffix(" for 5m").unwrap(),
            );
            assert_eq!(from, to);
            assert!(from.starts_with("step_up aal2 factor "), "{from}");
        }
    }
}

/// `rec` as a log line, with its JSON changed by `edit`.
fn edited(rec: &Record, edit: impl FnOnce(&mut Json)) -> String {
    let mut v = serde_json::to_value(rec).unwrap();
    edit(&mut v);
    serde_json::to_string(&v).unwrap()
}

/// A review's finding: a line whose state was `null`, or whose deny reason was forged to
/// `store_unavailable`, was kept as recorded on both sides whatever its decision, so a candidate
/// that would allow what the log stepped up reported no change. Only a refusal for
/// `store_unavailable` may come without its state; any other such line is unreadable (the
/// backtest then exits 1), and no candidate policy is counted for a refusal it keeps.
#[test]
fn only_a_store_failures_refusal_is_kept_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    // The candidate would not prompt for a payout of 1500.
    let weak = changed_rules(
        dir.path(),
        "acme.policy",
        "operation == payout and amount > 1000",
        "operation == payout and amount > 1000000",
    );
    let (_, prompted) = records(&log)
        .into_iter()
        .find(|(_, r)| {
            r.decision.kind == stepup_engine::DecisionKind::StepUp
                && r.application != "finance"
                && r.decision.deciding().any(|p| p == "payouts")
                && amount(r).is_some_and(|a| a > 1000.0 && a <= 1_000_000.0)
        })
        .unwrap();
    let one = |name: &str, line: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, line + "\n").unwrap();
        path
    };
    let honest = backtest(
        &weak,
        None,
        &one("honest.jsonl", prompted.to_line().unwrap()),
    );
    assert_eq!((honest.decisions, honest.changed), (1, 1));

    let forged = [
        edited(&prompted, |v| v["state"] = Json::Null),
        edited(&prompted, |v| {
            v["decision"]["deny_reason"] = "store_unavailable".into();
        }),
        edited(&prompted, |v| {
            v["state"] = Json::Null;
            v["decision"]["deny_reason"] = "store_unavailable".into();
        }),
    ];
    for (i, line) in forged.into_iter().enumerate() {
        let r = backtest(&weak, None, &one(&format!("forged{i}.jsonl"), line.clone()));
        assert_eq!(
            (r.decisions, r.not_redecided, r.unreadable, r.changed),
            (0, 0, 1, 0),
            "{line}"
        );
        let error = &r.unreadable_lines[0].error;
        assert!(
            error.contains("store_unavailable") && r.unreadable_lines[0].line == 1,
            "{error}"
        );
        assert!(stepup_decisionlog::reader::parse_line(line.as_bytes()).is_err());
        // Fed to a backtest directly (not through the reader), the same.
        let rec: Record = serde_json::from_str(&line).unwrap();
        let mut bt = Backtest::new(
            Arc::new(CompiledSet::load(std::slice::from_ref(&weak)).unwrap()),
            None,
        );
        bt.add("direct.jsonl", 7, &rec);
        let r = bt.finish();
        assert_eq!((r.decisions, r.unreadable), (0, 1));
        assert_eq!(r.unreadable_lines[0].line, 7);
    }

    // A true store failure (no state, a refusal for `store_unavailable`) is kept, and is no
    // candidate policy's doing even if it names fired policies.
    let store_failure = edited(&prompted, |v| {
        v["state"] = Json::Null;
        v["decision"]["kind"] = "deny".into();
        v["decision"]["deny_reason"] = "store_unavailable".into();
    });
    let r = backtest(&weak, None, &one("store.jsonl", store_failure));
    assert_eq!(
        (r.decisions, r.not_redecided, r.unreadable, r.changed),
        (1, 1, 0, 0)
    );
    assert_eq!((r.old.denials, r.new.denials), (1, 1));
    assert!(
        r.policies.iter().all(|p| p.fired == 0 && p.events == 0),
        "{:?}",
        r.policies
    );
    let text = stepup_decisionlog::backtest::render(&r);
    assert!(
        text.contains("1 refusal(s) made by a store failure, kept as recorded"),
        "{text}"
    );
}

/// The writer refuses a line that would not be read back: a decision given without the state
/// it was decided on (only a store failure's refusal is made without one).
#[test]
fn the_writer_refuses_a_decision_without_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let (_, rec) = records(&log).into_iter().next().unwrap();
    let set = CompiledSet::load(&[root().join("rules")]).unwrap();
    let req = rec.request();
    let d = set.decide(&req, &rec.state().unwrap(), false);
    let mut w = Writer::open(&dir.path().join("w.jsonl"), Rotation::never(), None).unwrap();
    let e = w.write(&req, None, &d).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("no state is logged"), "{e}");
    let refused = set.refuse_for_store(&req, None, "down".to_string());
    w.write(&req, None, &refused).unwrap();
    w.write(&req, rec.state().as_ref(), &d).unwrap();
    w.flush().unwrap();
    assert_eq!(records(&dir.path().join("w.jsonl")).len(), 2);
}

/// A line whose time or policy-set hash is out of range is unreadable, never a panic or a
/// report of garbled dates; a log naming more policy sets than are listed counts the rest
/// together.
#[test]
fn out_of_range_lines_are_unreadable_and_policy_sets_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let recs = records(&log);
    let rec = &recs[0].1;
    let mut lines = Vec::new();
    for now in [i64::MIN, -1, i64::MAX, 253_402_300_800] {
        lines.push(edited(rec, |v| v["now"] = now.into()));
    }
    lines.push(edited(rec, |v| v["policy_set"] = "f".repeat(65).into()));
    for i in 0..stepup_decisionlog::backtest::POLICY_SETS_LISTED + 5 {
        lines.push(edited(rec, |v| v["policy_set"] = format!("set{i}").into()));
    }
    let path = dir.path().join("range.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let r = backtest(&root().join("rules"), None, &path);
    assert_eq!(r.unreadable, 5, "{:?}", r.unreadable_lines);
    assert!(r.unreadable_lines[0].error.contains("`now`"));
    assert!(r.unreadable_lines[4].error.contains("`policy_set`"));
    let listed = stepup_decisionlog::backtest::POLICY_SETS_LISTED;
    assert_eq!(r.logged_policy_sets.len(), listed + 1);
    assert_eq!(
        r.logged_policy_sets[stepup_decisionlog::backtest::OTHER_POLICY_SETS],
        5
    );
    let text = stepup_decisionlog::backtest::render(&r);
    assert!(
        text.contains("warning: the log was decided by more than 64 policy sets"),
        "{text}"
    );
    // The text names the most used sets, the rest counted.
    assert!(
        text.contains("logged by policy set (other) (5), set0 (1), set1 (1), set10 (1), set11 (1), and 60 more\n"),
        "{text}"
    );
}

/// A review's finding: users were told apart by their id alone and a policy's row by its name
/// alone, so `shop/alice` and `bank/alice` were one user and an enforced policy's prompts in
/// one tenant were summed with a report-only namesake's in another under "(report-only)".
#[test]
fn tenants_are_never_merged_in_a_backtest() {
    let dir = tempfile::tempdir().unwrap();
    let shop_rules = root().join("examples/report-only/rules");
    let log = dir.path().join("shop.jsonl");
    write_log(
        &shop_rules,
        &root().join("examples/report-only/scenarios"),
        &log,
        None,
    );
    // `bank`: the same rules, with the candidate threshold enforced.
    let two = dir.path().join("two");
    std::fs::create_dir_all(&two).unwrap();
    let shop = std::fs::read_to_string(shop_rules.join("shop.policy")).unwrap();
    std::fs::write(two.join("shop.policy"), &shop).unwrap();
    let bank = shop.replace("tenant shop", "tenant bank").replace(
        "report_only policy checkout_over_200",
        "policy checkout_over_200",
    );
    std::fs::write(two.join("bank.policy"), bank).unwrap();
    // The same traffic, logged once for each tenant.
    let shop_lines: Vec<String> = records(&log)
        .iter()
        .map(|(_, r)| r.to_line().unwrap())
        .collect();
    let bank_lines: Vec<String> = records(&log)
        .iter()
        .map(|(_, r)| edited(r, |v| v["tenant"] = "bank".into()))
        .collect();
    let both = dir.path().join("both.jsonl");
    std::fs::write(&both, [shop_lines, bank_lines].concat().join("\n") + "\n").unwrap();
    let alone = backtest(&two, Some(&two), &log);
    let r = backtest(&two, Some(&two), &both);
    assert!(r.many_tenants && !alone.many_tenants);
    assert_eq!(r.active_users, 2 * alone.active_users);
    assert_eq!(r.active_user_days, 2 * alone.active_user_days);
    let row = |tenant: &str, report_only: bool| {
        r.policies
            .iter()
            .find(|p| {
                p.tenant == tenant
                    && p.policy == "checkout_over_200"
                    && p.report_only == report_only
            })
            .unwrap_or_else(|| panic!("{tenant} {report_only}: {:#?}", r.policies))
    };
    let would_be = row("shop", true);
    let enforced = row("bank", false);
    assert_eq!((would_be.prompts, would_be.users_affected), (2, 1));
    assert_eq!(
        enforced.prompts, 2,
        "the bank enforces what the shop only reports"
    );
    assert_eq!(
        r.policies
            .iter()
            .filter(|p| p.policy == "checkout_over_200")
            .count(),
        2
    );
    // The bank prompts where the shop only reports: more prompts than twice the shop's.
    assert!(
        r.new.prompts > 2 * alone.new.prompts,
        "{:?} {:?}",
        r.new,
        alone.new
    );
    let day = &r.daily_new["2026-11-27"];
    assert_eq!(day["bank/checkout_over_200"], 2);
    assert_eq!(day["shop/checkout_over_200"], 2);
    let text = stepup_decisionlog::backtest::render(&r);
    assert!(
        text.contains("shop/checkout_over_200 (report-only)"),
        "{text}"
    );
    assert!(text.contains("\n  bank/checkout_over_200 "), "{text}");
}

/// A completion the rules made but the store could not save is logged `failed`, its errors
/// ending with "; nothing was saved"; compared with the recorded decisions, the candidate's
/// completion of it is no change (it was reported as one: a false change a review listed). A
/// genuine failure the candidate would complete still is one.
#[test]
fn a_completion_the_store_could_not_save_is_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let (_, completed) = records(&log)
        .into_iter()
        .find(|(_, r)| r.decision.kind == stepup_engine::DecisionKind::Completed)
        .unwrap();
    let one = |name: &str, line: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, line + "\n").unwrap();
        path
    };
    let rules = root().join("rules");
    let unsaved = edited(&completed, |v| {
        v["decision"]["kind"] = "failed".into();
        v["decision"]["message"] = "The step-up could not be recorded; try again.".into();
        v["decision"]["errors"] =
            serde_json::json!(["the store is unavailable; nothing was saved"]);
    });
    let r = backtest(&rules, None, &one("unsaved.jsonl", unsaved));
    assert_eq!((r.decisions, r.changed), (1, 0), "{:#?}", r.changes);
    let failed = edited(&completed, |v| {
        v["decision"]["kind"] = "failed".into();
        v["decision"]["message"] = "The factor could not be verified.".into();
    });
    let r = backtest(&rules, None, &one("failed.jsonl", failed));
    assert_eq!((r.decisions, r.changed), (1, 1));
}

/// A number JSON cannot write (an infinity, NaN) given for an attribute is logged as that
/// number and backtests to the live decision: a review found it logged as the text `"inf"`,
/// which a test of a string attribute read as a string (the live decision had read a mistyped
/// value as unknown, and fired), so unchanged rules showed a prompt that disappeared.
#[test]
fn a_non_finite_number_backtests_to_the_live_decision() {
    let dir = tempfile::tempdir().unwrap();
    let rules = written(
        dir.path(),
        "rules",
        &[(
            "r.policy".into(),
            "tenant t {\n  operation pay sensitive\n  attribute plan: string\n  attribute amount: number\n  policy gold_pay \"Confirm this payment.\" {\n    when operation == pay and plan == \"gold\"\n    require aal2\n  }\n  policy big \"Confirm this payment.\" {\n    when operation == pay and amount < 100\n    require aal2\n  }\n}\napplication a of t { }\n".into(),
        )],
    );
    let stories: Vec<(String, String)> = [
        ("inf", "5"),
        ("-inf", "5"),
        ("NaN", "5"),
        ("\"x\"", "inf"),
        ("\"x\"", "NaN"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (plan, amount))| {
        (
            format!("s{i}.ron"),
            format!(
                "Scenario(name: \"nf{i}\", tenant: \"t\", application: \"a\", user: (id: \"u{i}\", enrolled: [totp]), events: [\n SignIn(at: \"2026-11-27T09:00:00Z\", device: \"d\", ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35), factors: [password]),\n Operation(at: \"2026-11-27T09:10:00Z\", name: \"pay\", attrs: {{\"plan\": {plan}, \"amount\": {amount}}}),\n])"
            ),
        )
    })
    .collect();
    let scenarios = written(dir.path(), "scenarios", &stories);
    let log = dir.path().join("nf.jsonl");
    assert_eq!(write_log(&rules, &scenarios, &log, None), 10);
    let recs = records(&log);
    let steps = recs
        .iter()
        .filter(|(_, r)| r.decision.kind == stepup_engine::DecisionKind::StepUp)
        .count();
    // Each operation reads a mistyped or non-finite value as unknown: each steps up.
    assert_eq!(steps, 5, "{recs:#?}");
    let r = backtest(&rules, None, &log);
    assert_eq!((r.decisions, r.changed, r.unreadable), (10, 0, 0));
    // Written as numbers JSON can carry, and read back as the same numbers.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(r#""plan":{"non_finite":"inf"}"#), "{text}");
    assert!(text.contains(r#""plan":{"non_finite":"-inf"}"#), "{text}");
    assert!(text.contains(r#""amount":{"non_finite":"nan"}"#), "{text}");
    let schema = schema();
    for line in text.lines() {
        let mut errors = Vec::new();
        validate(
            &serde_json::from_str(line).unwrap(),
            &schema,
            &schema,
            "$",
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:#?}\n{line}");
    }
    // A marker that names no number, or is not alone, is an unreadable line, not a value read
    // as some other one.
    let inf = text
        .lines()
        .find(|l| l.contains(r#"{"non_finite":"inf"}"#))
        .unwrap();
    for bad in [
        r#"{"non_finite":"infinity"}"#,
        r#"{"non_finite":1}"#,
        r#"{"non_finite":null}"#,
        r#"{}"#,
    ] {
        let path = dir.path().join("bad.jsonl");
        std::fs::write(
            &path,
            format!("{}\n", inf.replace(r#"{"non_finite":"inf"}"#, bad)),
        )
        .unwrap();
        let r = backtest(&rules, None, &path);
        assert_eq!((r.decisions, r.unreadable), (0, 1), "{bad}");
    }
}

/// What a logged line names is counted only where the rules compared give it: a review's line
/// (a tenant of 100,000 bytes, 8,000 policies in its `fired` list) took 800 MB, copying the
/// tenant once per name. Its prompts now count under one `(other)` row, a change it makes is
/// one group, and its example quotes the log in bounded texts and lists.
#[test]
fn names_a_log_line_gives_are_counted_only_where_the_rules_have_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let prompted = a_step_up(&log);
    let big_tenant = "T".repeat(100_000);
    let names: Vec<String> = (0..8000).map(|i| format!("p{i}")).collect();
    let mut text = String::new();
    for line in [
        // An unknown tenant naming 8,000 policies.
        edited(&prompted, |v| {
            v["tenant"] = big_tenant.clone().into();
            v["decision"]["fired"] = names.clone().into();
        }),
        // A known tenant naming 8,000 policies it does not have, and one it has.
        edited(&prompted, |v| {
            let mut fired = names.clone();
            fired.extend(prompted.decision.fired.iter().cloned());
            v["decision"]["fired"] = fired.into();
        }),
    ] {
        text.push_str(&line);
        text.push('\n');
    }
    let path = dir.path().join("bomb.jsonl");
    std::fs::write(&path, text).unwrap();
    let r = backtest(&root().join("rules"), None, &path);
    assert_eq!(
        (r.decisions, r.unreadable),
        (2, 0),
        "{:?}",
        r.unreadable_lines
    );
    // Against the recorded decisions the log's own names count too, the first
    // `LOGGED_NAMES` of them; the rest, and every name of the unknown tenant of 100 KB, under
    // `(other)`.
    let rows: std::collections::BTreeSet<&String> =
        r.daily_old.values().flat_map(|m| m.keys()).collect();
    assert!(rows.len() <= LOGGED_NAMES + 4, "{}", rows.len());
    assert!(rows.iter().all(|k| k.len() < 100), "{rows:?}");
    assert!(rows.iter().any(|k| k.as_str() == "acme/p0"), "{rows:?}");
    assert!(
        rows.iter().any(|k| k.as_str() == "acme/(other)"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|k| k.as_str() == "(other)/(other)"),
        "{rows:?}"
    );
    for g in &r.changes {
        assert!(g.tenant.len() < 100 && g.policies.len() <= 17, "{g:?}");
        for e in &g.examples {
            assert!(e.scope.chars().count() <= 257, "{}", e.scope.len());
            assert!(e.old_policies.len() <= 16);
        }
    }
}

/// Against the recorded decisions, a policy the candidate removed or renamed keeps its recorded
/// prompts under its own name (a review: they were counted under `(other)`, and several removed
/// policies merged into one row), beside the candidate's.
#[test]
fn a_removed_policys_recorded_prompts_keep_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace("\"payouts\"", "\"payouts_2025\"");
    let old_log = dir.path().join("old.jsonl");
    std::fs::write(&old_log, text).unwrap();
    let r = backtest(&root().join("rules"), None, &old_log);
    let rows = |d: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>| {
        d.values()
            .flat_map(|m| m.keys().cloned())
            .collect::<std::collections::BTreeSet<String>>()
    };
    let (old, new) = (rows(&r.daily_old), rows(&r.daily_new));
    assert!(old.contains("payouts_2025"), "{old:?}");
    assert!(!old.contains("(other)"), "{old:?}");
    assert!(
        new.contains("payouts") && !new.contains("payouts_2025"),
        "{new:?}"
    );
    // Against a baseline, only the sets' names count: the log's are not the old decisions'.
    let r = backtest(&root().join("rules"), Some(&root().join("rules")), &old_log);
    assert!(!rows(&r.daily_old).contains("payouts_2025"));
}

/// A tenant the candidate does not have is grouped under its own name from its first line on,
/// whether or not that line names a policy (a review: an allow before any step-up grouped the
/// same change under `(other)`, and under the tenant's name after).
#[test]
fn a_removed_tenants_changes_are_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let recs = records(&log);
    let find = |kind: stepup_engine::DecisionKind| {
        recs.iter()
            .find(|(_, r)| {
                r.decision.kind == kind
                    && (kind != stepup_engine::DecisionKind::Allow || r.decision.fired.is_empty())
            })
            .unwrap()
            .1
            .clone()
    };
    let (allow, prompted) = (
        find(stepup_engine::DecisionKind::Allow),
        find(stepup_engine::DecisionKind::StepUp),
    );
    let mut text = String::new();
    for r in [&allow, &prompted, &allow] {
        text.push_str(&edited(r, |v| v["tenant"] = "retired".into()));
        text.push('\n');
    }
    let path = dir.path().join("t.jsonl");
    std::fs::write(&path, text).unwrap();
    let r = backtest(&root().join("rules"), None, &path);
    assert_eq!(r.changed, 3);
    assert_eq!(r.changes.len(), 2, "{:?}", r.changes);
    assert!(
        r.changes.iter().all(|g| g.tenant == "retired"),
        "{:?}",
        r.changes
    );
    assert_eq!(r.changes.iter().map(|g| g.count).max(), Some(2));
}

/// A group of changes names at most 16 policies, and `(other)` once, last (a review: `(other)`
/// came first and again last).
#[test]
fn a_group_names_other_once_and_last() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let prompted = a_step_up(&log);
    let fill: Vec<String> = (0..LOGGED_NAMES).map(|i| format!("gone{i:04}")).collect();
    let mut late: Vec<String> = (0..17).map(|i| format!("gone{i:04}")).collect();
    late.push("late_name".into());
    let mut text = String::new();
    for names in [&fill, &late] {
        text.push_str(&edited(&prompted, |v| {
            v["tenant"] = "retired".into();
            v["decision"]["fired"] = names.clone().into();
            v["decision"]["satisfied"] = Json::Array(vec![]);
        }));
        text.push('\n');
    }
    let path = dir.path().join("g.jsonl");
    std::fs::write(&path, text).unwrap();
    let r = backtest(&root().join("rules"), None, &path);
    assert!(!r.changes.is_empty());
    for g in &r.changes {
        let others = g
            .policies
            .iter()
            .filter(|p| p.as_str() == "(other)")
            .count();
        assert!(others <= 1, "{:?}", g.policies);
        if others == 1 {
            assert_eq!(g.policies.last().map(String::as_str), Some("(other)"));
        }
        assert!(g.policies.len() <= 17, "{:?}", g.policies);
    }
}

/// The log's own names are counted per day at most `LOGGED_CELLS` times in all; beyond, under
/// `(other)` (a review: lines of a day each naming 1,000 policies grew the per-day counts by
/// days × names copies of the tenant and the name).
#[test]
fn the_logs_own_names_per_day_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let prompted = a_step_up(&log);
    let names: Vec<String> = (0..LOGGED_NAMES).map(|i| format!("p{i}")).collect();
    let days = LOGGED_CELLS / LOGGED_NAMES + 2;
    let path = dir.path().join("days.jsonl");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for d in 0..days {
            let line = edited(&prompted, |v| {
                v["tenant"] = "retired".into();
                v["now"] = (1_000_000_000i64 + d as i64 * 86_400).into();
                v["decision"]["fired"] = names.clone().into();
                v["decision"]["satisfied"] = Json::Array(vec![]);
            });
            writeln!(f, "{line}").unwrap();
        }
    }
    let r = backtest(&root().join("rules"), None, &path);
    assert_eq!(r.decisions as usize, days);
    let cells: usize = r.daily_old.values().map(|m| m.len()).sum();
    assert!(cells <= LOGGED_CELLS + days, "{cells}");
    // Every prompt is counted, under its name or `(other)` (a review: two rows reading
    // `(other)` in a log of one tenant overwrote each other, and prompts were lost).
    for (day, m) in &r.daily_old {
        assert_eq!(m.values().sum::<u64>(), LOGGED_NAMES as u64, "{day}");
    }
    let last = r.daily_old.values().last().unwrap();
    assert!(last.keys().any(|k| k == "(other)"), "{last:?}");
    // With another tenant in the log, the folded prompts stay the tenant's own (a review:
    // they went to `(other)/(other)`, merging tenants).
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&edited(&prompted, |v| {
        v["tenant"] = "elsewhere".into();
        v["now"] = 1_000_000_000i64.into();
    }));
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    let r = backtest(&root().join("rules"), None, &path);
    let last = r.daily_old.values().last().unwrap();
    assert!(last.contains_key("retired/(other)"), "{last:?}");
    assert!(!last.contains_key("(other)/(other)"), "{last:?}");
    assert_eq!(last.values().sum::<u64>(), LOGGED_NAMES as u64);
}

/// Tenants the sets do not have are kept apart within a budget of their own, not the policy
/// names' (a review: 600 retired tenants, each with one removed policy, named 500 of them).
#[test]
fn retired_tenants_have_a_budget_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = examples_log(dir.path());
    let prompted = a_step_up(&log);
    let mut text = String::new();
    for i in 0..600 {
        text.push_str(&edited(&prompted, |v| {
            v["tenant"] = format!("t{i:03}").into();
            v["decision"]["fired"] = vec!["gone"].into();
            v["decision"]["satisfied"] = Json::Array(vec![]);
        }));
        text.push('\n');
    }
    let path = dir.path().join("tenants.jsonl");
    std::fs::write(&path, text).unwrap();
    let r = backtest(&root().join("rules"), None, &path);
    let rows: std::collections::BTreeSet<&String> =
        r.daily_old.values().flat_map(|m| m.keys()).collect();
    assert_eq!(rows.len(), 600, "{rows:?}");
    assert!(rows.iter().all(|k| k.ends_with("/gone")), "{rows:?}");
    assert!(r.changes.iter().all(|g| g.tenant != "(other)"));
}

/// An attribute given twice has no one value (the engine reads it as unknown): the log leaves
/// it out, so that the decision made again reads it unknown as well, and decides the same. (Its
/// first value logged made the logged request another one: a payout of the first amount.)
#[test]
fn an_attribute_given_twice_is_logged_as_absent_and_decides_again_the_same() {
    use stepup_engine::{CompiledSet, Event, Request, State, Value};
    let set = CompiledSet::from_text(
        "t.policy",
        "tenant t {\n  operation pay sensitive\n  attribute amount: number\n  policy big \"Confirm this payout.\" { when operation == pay and amount > 1000 require aal2 }\n}\n",
    )
    .unwrap();
    let req = Request {
        tenant: "t".into(),
        application: "".into(),
        user: "u".into(),
        enrolled: stepup_core::FactorSet::ANY,
        session: "s".into(),
        now: stepup_core::Timestamp(1_800_000_000),
        event: Event::Operation {
            name: "pay".into(),
            attrs: vec![
                ("amount".into(), Value::Number(10.0)),
                ("amount".into(), Value::Number(1e6)),
            ],
            context: None,
        },
    };
    let state = State::established();
    let d = set.decide(&req, &state, false);
    assert_eq!(
        d.kind,
        stepup_engine::DecisionKind::StepUp,
        "{:?}",
        d.errors
    );
    let r = Record::new(&req, Some(&state), &d, None);
    let LogEvent::Operation { attrs, .. } = &r.event else {
        panic!("an operation")
    };
    assert!(attrs.is_empty(), "{attrs:?}");
    let again = set.decide(&r.request(), &r.state().unwrap(), false);
    assert_eq!(again.kind, d.kind);
    assert_eq!(again.fired, d.fired);
}
