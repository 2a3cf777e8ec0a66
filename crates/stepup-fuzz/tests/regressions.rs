//! Inputs the fuzzers found (or the issue named), kept as ordinary tests. A case whose fix
//! belongs to another crate and has not landed yet is `#[ignore]`d with the reason; FUZZING.md
//! lists it as open.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::time::Duration;

use stepup_fuzz::{run_timed, target};

/// Issue 17: one 60 KB line with 2,580 unknown factors took 6.4 s to check in a debug build
/// (every diagnostic re-scanned its line, nothing capped them). Through the whole
/// `policy_text` body (check, rendered diagnostics, format round trip) it must stay well
/// under the smoke's budget.
#[test]
fn a_sixty_kilobyte_line_of_unknown_factors_is_not_slow() {
    let factors: Vec<String> = (0..2_580).map(|i| format!("totp_{i:017}")).collect();
    let text = format!(
        "when new_device require aal2 factor {}\n",
        factors.join("|")
    );
    assert!(text.len() > 59_000 && !text.trim_end().contains('\n'));
    let loaded = stepup_dsl::load_sources(&[stepup_dsl::Source::text("long.policy", &text)]);
    assert_eq!(
        loaded.error_count(),
        2_580,
        "every unknown factor is counted"
    );
    assert!(
        loaded.diagnostics.len() <= stepup_dsl::diag::MAX_DIAGNOSTICS_PER_FILE + 1,
        "diagnostics are capped per file"
    );
    // A hang guard, not a speed test (the campaign flags slow inputs).
    let t = target("policy_text").unwrap();
    let took =
        run_timed(t, text.as_bytes(), Duration::from_secs(120)).unwrap_or_else(|f| panic!("{f}"));
    eprintln!("60 KB line: {} ms", took.as_millis());
}

/// The same shape spread over many rules on one line (each rule one error): the whole body
/// (parsed five times, checked twice, rendered, formatted) stays linear — twice the rules take
/// at most three times as long.
#[test]
#[ignore = "timing-based (tests never assert timings in CI): run with --ignored on a quiet machine"]
fn a_line_of_rules_with_unknown_factors_is_checked_in_linear_time() {
    let t = target("policy_text").unwrap();
    let time = |n: usize| {
        let text = format!(
            "{}\n",
            vec!["when new_device require aal2 factor totpx"; n].join(" ")
        );
        run_timed(t, text.as_bytes(), Duration::from_secs(60)).unwrap_or_else(|f| panic!("{f}"))
    };
    let _warm = time(100);
    let (small, large) = (time(645), time(1_290));
    eprintln!("645 rules: {small:?}; 1,290 rules: {large:?}");
    assert!(
        large < small * 3 + Duration::from_millis(200),
        "quadratic? 645 rules {small:?}, 1,290 rules {large:?}"
    );
}

/// Found by the smoke on its first run (seed `invalid_e018_number_too_large.policy`): a number
/// too large for a double is formatted as `inf`, which reads back as a name — `stepup fmt`
/// rewrites the file into a different one (E018 becomes E007) and exits 0.
#[test]
fn a_number_too_large_survives_the_formatter() {
    let text = format!(
        "tenant t {{\n  attribute amount: number\n  policy p \"Confirm this payment.\" {{ when amount > 1{} require aal2 }}\n}}\n",
        "0".repeat(400)
    );
    let before = stepup_dsl::parse_text("n.policy", &text).unwrap();
    let formatted = stepup_dsl::format_text("n.policy", &text).unwrap();
    let after = stepup_dsl::parse_text("n.policy", &formatted)
        .unwrap_or_else(|d| panic!("{formatted}\n{d:?}"));
    assert_eq!(before, after, "{formatted}");
}

/// Found by `scenario_ron` (crash-2fb39aa7, 233,392 runs into the first campaign): a relative
/// time whose unit is a multi-byte character (`at: "+ώ"`) split the string inside it and
/// panicked `stepup replay`. Now a located error (fixed in stepup-replay's `resolve_time`).
#[test]
fn a_relative_time_ending_in_a_multibyte_character_is_an_error() {
    assert!(stepup_replay::scenario::resolve_time("+ώ", Some(stepup_core::Timestamp(0))).is_err());
    assert!(stepup_replay::scenario::resolve_time("+5ώ", Some(stepup_core::Timestamp(0))).is_err());
    let text = r#"Scenario(name: "x", tenant: "acme", user: (id: "alice", enrolled: [totp]),
        events: [SignIn(at: "2026-11-27T09:00:00Z", factors: [password]), Operation(at: "+ώ", name: "payout")])"#;
    let t = target("scenario_ron").unwrap();
    run_timed(t, text.as_bytes(), Duration::from_secs(60)).unwrap_or_else(|f| panic!("{f}"));
}

/// Found by `policy_text` (crash-6692bd63, 304,429 runs into the first campaign): the `inf`
/// formatter bug also where another error (an unknown attribute type) hides E018.
#[test]
fn a_number_too_large_survives_the_formatter_beside_another_error() {
    let text = format!(
        "tenant t {{\n  attribute amount: number2  policy p \"Confirm this payment.\" {{ when amount > 9{} require aal2 }}\n}}\n",
        "9".repeat(400)
    );
    let before = stepup_dsl::parse_text("n.policy", &text).unwrap();
    let formatted = stepup_dsl::format_text("n.policy", &text).unwrap();
    let after = stepup_dsl::parse_text("n.policy", &formatted)
        .unwrap_or_else(|d| panic!("{formatted}\n{d:?}"));
    assert_eq!(before, after, "{formatted}");
}

/// Found by `policy_text` (crash-034203c5, second campaign): a duration too large for its
/// integer formats as `0s` — `stepup fmt` turns `new_country(3…0d)` into `new_country(0s)`.
#[test]
fn an_overflowing_duration_survives_the_formatter() {
    let text = format!("when new_country(3{}0d) require aal2\n", "6".repeat(100));
    let before = stepup_dsl::parse_text("d.policy", &text).unwrap();
    let formatted = stepup_dsl::format_text("d.policy", &text).unwrap();
    let after = stepup_dsl::parse_text("d.policy", &formatted)
        .unwrap_or_else(|d| panic!("{formatted}\n{d:?}"));
    assert_eq!(before, after, "{formatted}");
}
