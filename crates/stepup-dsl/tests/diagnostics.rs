//! Diagnostics asserted by structure: message, label, help and the underlined text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use stepup_dsl::{Diagnostic, Source, load_sources};

fn diags(text: &str) -> Vec<Diagnostic> {
    load_sources(&[Source::text("t.policy", text)]).diagnostics
}

#[track_caller]
fn expect_one(text: &str, code: &str, message: &str, underlined: &str, help: Option<&str>) {
    let d = diags(text);
    assert_eq!(d.len(), 1, "{d:#?}");
    let Some(d) = d.first() else { return };
    assert_eq!(d.code, code);
    assert_eq!(d.message, message);
    assert_eq!(d.snippet(), underlined);
    assert_eq!(d.help.as_deref(), help);
}

#[test]
fn the_design_card_line_is_a_complete_policy_file() {
    let loaded = load_sources(&[Source::text(
        "card.policy",
        "when risk >= 70 or new_country(30d) require aal3 factor webauthn|totp for 5m",
    )]);
    assert!(loaded.diagnostics.is_empty());
    let set = loaded.set.unwrap_or_default();
    let p = &set.tenants["default"].policies[0];
    assert_eq!(p.name, "card#1");
    assert_eq!(p.requirement.validity, stepup_core::Validity::For(300));
    assert_eq!(p.requirement.factors.names(), vec!["totp", "webauthn"]);
}

#[test]
fn unknown_factor_points_at_it_and_suggests_the_closest() {
    expect_one(
        "when risk >= 70 require aal3 factor totpp for 5m",
        "E002",
        "unknown factor `totpp`",
        "totpp",
        Some("did you mean `totp`?"),
    );
    let d = diags("when risk >= 70 require aal3 factor totpp for 5m");
    assert_eq!(d[0].location(), (1, 37));
    let rendered = d[0].render(false);
    assert!(
        rendered
            .lines()
            .any(|l| l.trim_end().ends_with("^^^^^ not a factor")),
        "{rendered}"
    );
}

#[test]
fn syntax_errors_name_what_was_expected_in_words() {
    let d = diags("when new_device require");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message, "unexpected end of file");
    assert_eq!(
        d[0].label,
        "expected an assurance level (`aal1`, `aal2` or `aal3`)"
    );
    let d = diags("when new_device require aal2 factor");
    assert_eq!(
        d[0].label,
        "expected `any`, `not` or a factor such as `totp`"
    );
}

#[test]
fn errors_of_every_file_are_reported_in_one_run() {
    let loaded = load_sources(&[
        Source::text("a.policy", "when new_devise require aal2"),
        Source::text("b.policy", "when new_device require aal4"),
        Source::text("c.policy", "when new_device require"),
    ]);
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["E006", "E015", "E001"]);
    assert!(loaded.set.is_none());
}

#[test]
fn unreachable_requirement_explains_the_strength_table() {
    expect_one(
        "when new_device require aal3 factor sms",
        "E009",
        "no allowed factor can reach aal3",
        "require aal3 factor sms",
        Some("`sms` proves at most aal2; allow `totp` or `webauthn`, or lower the AAL"),
    );
}

#[test]
fn a_tenant_strength_override_changes_what_is_reachable() {
    let d = diags("factor totp strength aal2\nwhen new_device require aal3 factor totp");
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["E009"]);
}

#[test]
fn the_policy_set_hash_ignores_layout_comments_and_checkout_location() {
    let hash = |name: &str, text: &str| {
        load_sources(&[Source::text(name, text)])
            .set
            .map(|s| s.hash)
            .unwrap_or_default()
    };
    let a = hash(
        "/home/a/repo/rules/x.policy",
        "when new_device require aal2",
    );
    assert_eq!(
        a,
        hash(
            "/tmp/ci/rules/x.policy",
            "# a comment\nwhen   new_device\n  require aal2\n"
        )
    );
    assert_ne!(
        a,
        hash("/tmp/ci/rules/x.policy", "when new_device require aal3")
    );
}
