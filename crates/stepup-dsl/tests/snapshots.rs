//! Snapshot tests: every invalid input's rendered diagnostics, every valid file's checked model.
//! CI runs with `INSTA_UPDATE=no`, so a changed diagnostic fails until its snapshot is reviewed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::fmt::Write as _;
use std::path::Path;

use stepup_dsl::{Source, load_sources};

fn source(path: &Path) -> Source {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    Source {
        name,
        bytes: std::fs::read(path).unwrap_or_default(),
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    }
}

#[test]
fn invalid_inputs_render_precise_diagnostics() {
    insta::glob!("invalid/*.policy", |path| {
        let loaded = load_sources(&[source(path)]);
        assert!(
            !loaded.diagnostics.is_empty(),
            "{} produced no diagnostic",
            path.display()
        );
        let code = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .get(..4)
            .unwrap_or("")
            .to_uppercase();
        assert!(
            loaded.diagnostics.iter().any(|d| d.code == code),
            "{} should produce {code}, got {:?}",
            path.display(),
            loaded
                .diagnostics
                .iter()
                .map(|d| d.code)
                .collect::<Vec<_>>()
        );
        insta::assert_snapshot!(stepup_dsl::diag::render_all(&loaded.diagnostics, false));
    });
}

fn summary(set: &stepup_dsl::PolicySet) -> String {
    let mut out = String::new();
    for (scope_t, scope_a) in set.scopes() {
        let Ok(r) = set.resolve(&scope_t, &scope_a) else {
            continue;
        };
        let _ = writeln!(out, "scope {scope_t}/{scope_a}");
        for p in &r.policies {
            let _ = writeln!(
                out,
                "  {}{} [{}:{}] require {} factor {} {}\n    message: {:?}\n    when: {:?}",
                p.name,
                if p.report_only { " (report-only)" } else { "" },
                Path::new(&p.origin.file)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(""),
                p.origin.line,
                p.requirement.aal,
                p.requirement.factors,
                p.requirement.validity,
                p.message,
                p.condition
            );
        }
    }
    out
}

#[test]
fn valid_inputs_check_clean_and_lower_to_the_expected_model() {
    insta::glob!("valid/*.policy", |path| {
        let loaded = load_sources(&[source(path)]);
        assert_eq!(
            loaded.error_count(),
            0,
            "{}",
            stepup_dsl::diag::render_all(&loaded.diagnostics, false)
        );
        let set = loaded.set.as_ref().map(summary).unwrap_or_default();
        insta::assert_snapshot!(set);
    });
}

#[test]
fn the_rules_directory_checks_clean_with_no_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let loaded = stepup_dsl::load_paths(&[root]).unwrap_or_default();
    assert_eq!(
        loaded.diagnostics.len(),
        0,
        "{}",
        stepup_dsl::diag::render_all(&loaded.diagnostics, false)
    );
    let set = loaded.set.as_ref().map(summary).unwrap_or_default();
    insta::assert_snapshot!(set);
}

/// A file nearly named `.policy` is not read, and the warning (S011) says so where the file is
/// (it has no text to show).
#[test]
fn a_file_nearly_named_policy_is_named() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/skipped");
    let loaded = stepup_dsl::load_paths(std::slice::from_ref(&root)).unwrap_or_default();
    assert_eq!(loaded.files.len(), 1, "only ok.policy is read");
    assert_eq!(loaded.set.map(|s| s.hash.is_empty()), Some(false));
    let shown = stepup_dsl::diag::render_all(&loaded.diagnostics, false)
        .replace(&root.display().to_string(), "tests/skipped");
    insta::assert_snapshot!(shown);
}
