//! Every diagnostic code has one meaning and is documented (`stepup explain CODE`): the codes
//! the source emits and the catalog agree, and each error's example produces its own code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::collections::BTreeSet;
use std::path::Path;

use stepup_dsl::codes::{self, ERRORS, LAST_ERROR, NOTES};
use stepup_dsl::lints::LINTS;
use stepup_dsl::{Source, load_sources};

/// Every string literal of the form `"E012"`, `"S003"` or `"N001"` in the crate's source.
fn codes_in_source() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            // The catalogs themselves are what the source is checked against.
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.extension().is_none_or(|e| e != "rs") || name == "codes.rs" || name == "lints.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let b = text.as_bytes();
            for i in 0..b.len().saturating_sub(5) {
                let w = &b[i..i + 6];
                if w[0] == b'"'
                    && matches!(w[1], b'E' | b'S' | b'N')
                    && w[2..5].iter().all(u8::is_ascii_digit)
                    && w[5] == b'"'
                {
                    out.insert(String::from_utf8(w[1..5].to_vec()).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn every_code_emitted_is_documented_and_every_documented_code_is_emitted() {
    let emitted = codes_in_source();
    let documented: BTreeSet<String> = codes::all().map(|d| d.code.to_string()).collect();
    assert!(
        emitted.len() > 40,
        "the scan found too few codes: {emitted:?}"
    );
    let undocumented: Vec<_> = emitted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "emitted but not documented: {undocumented:?}"
    );
    let unused: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        unused.is_empty(),
        "documented but never emitted: {unused:?}"
    );
}

#[test]
fn codes_are_unique_ordered_and_fully_documented() {
    let all: Vec<_> = codes::all().collect();
    let unique: BTreeSet<_> = all.iter().map(|d| d.code).collect();
    assert_eq!(unique.len(), all.len(), "a code is documented twice");
    let names: BTreeSet<_> = all.iter().map(|d| d.name).collect();
    assert_eq!(names.len(), all.len(), "a name is used twice");
    for (list, prefix) in [(ERRORS, 'E'), (LINTS, 'S'), (NOTES, 'N')] {
        assert!(
            list.windows(2).all(|w| w[0].code < w[1].code),
            "{prefix} codes out of order"
        );
        for d in list {
            assert!(
                d.code.starts_with(prefix),
                "{} is in the wrong list",
                d.code
            );
            assert!(!d.what.is_empty() && !d.why.is_empty() && !d.example.is_empty());
            assert!(
                d.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()),
                "{}: names are kebab-case",
                d.name
            );
            assert_eq!(codes::find(d.code).map(|x| x.code), Some(d.code));
            assert_eq!(
                codes::find(&d.code.to_lowercase()).map(|x| x.code),
                Some(d.code)
            );
            assert_eq!(codes::find(d.name).map(|x| x.code), Some(d.code));
        }
    }
    assert_eq!(ERRORS.last().map(|d| d.code), Some(LAST_ERROR));
}

#[test]
fn each_error_example_produces_its_own_code() {
    // Examples in parentheses describe a file no text can show; E018 and E019 need inputs too
    // long to show, E032 a feed file: those are covered by `tests/invalid/`.
    let described = ["E018", "E019", "E032"];
    let mut wrong = Vec::new();
    for d in ERRORS {
        if d.example.starts_with('(') || described.contains(&d.code) {
            continue;
        }
        let loaded = load_sources(&[Source::text("example.policy", d.example)]);
        let got: Vec<&str> = loaded.diagnostics.iter().map(|x| x.code).collect();
        if !got.contains(&d.code) {
            wrong.push(format!(
                "{}'s example gives {got:?}:\n{}",
                d.code, d.example
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_error_has_an_invalid_input_with_a_reviewed_snapshot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let inputs: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .get(..4)
                .map(str::to_uppercase)
        })
        .collect();
    // E000 is a bug in stepup, E020 needs an 8 MiB file and E042 a million policies in all
    // (tests/robustness.rs), S011 a file that is not a `.policy` (tests/skipped/, its snapshot
    // in tests/snapshots.rs).
    let missing: Vec<_> = ERRORS
        .iter()
        .chain(LINTS)
        .filter(|d| !["E000", "E020", "E042", "S011"].contains(&d.code) && !inputs.contains(d.code))
        .map(|d| format!("tests/invalid/{}_*.policy", d.code.to_lowercase()))
        .collect();
    assert!(missing.is_empty(), "no input: {missing:?}");
}

/// A retired code is never documented again as itself, and its successor exists.
#[test]
fn retired_codes_point_to_documented_successors() {
    for (old, new) in stepup_dsl::codes::RETIRED {
        assert!(stepup_dsl::codes::find(old).is_none(), "{old} is retired");
        assert!(
            stepup_dsl::codes::find(new).is_some(),
            "{new} is documented"
        );
        assert_eq!(stepup_dsl::codes::successor(old), Some(*new));
    }
}
