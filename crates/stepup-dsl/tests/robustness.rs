//! Hostile input never panics or overflows the stack: each gets a clear error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use stepup_dsl::{Source, load_sources};

/// The diagnostic codes of each text, loaded on a thread with `stack` bytes of stack (a bound
/// on nesting must hold on small stacks too).
fn codes_on_stack<const N: usize>(stack: usize, texts: [String; N]) -> [Vec<&'static str>; N] {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || texts.map(|t| codes(t.into_bytes())))
        .unwrap()
        .join()
        .unwrap()
}

fn codes(bytes: Vec<u8>) -> Vec<&'static str> {
    let src = Source {
        name: "x.policy".into(),
        bytes,
        base_dir: ".".into(),
    };
    load_sources(&[src])
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn ten_thousand_nested_parentheses() {
    let text = format!(
        "when {}new_device{} require aal2",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(codes(text.into_bytes()), vec!["E019"]);
}

/// The nesting bound is the parser's own pre-scan, not pest's stack guard: on a thread with a
/// small stack, 100,000 open parentheses (closed or not, with comments and strings holding more
/// of them) are refused before any recursion.
#[test]
fn a_hundred_thousand_nested_parentheses_on_a_small_stack() {
    let texts = [
        format!(
            "when {}new_device{} require aal2",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!("when {}new_device require aal2", "(".repeat(100_000)),
        format!(
            "# ((((\npolicy p \"(((\" {{ when {}x require aal2 }}",
            "( ".repeat(100_000)
        ),
    ];
    let got = codes_on_stack(256 * 1024, texts);
    assert_eq!(got, [vec!["E019"], vec!["E019"], vec!["E019"]]);
}

/// Parentheses in strings and comments do not count toward the nesting bound.
#[test]
fn parentheses_in_strings_and_comments_are_not_nesting() {
    let text = format!(
        "# {}\npolicy p \"{}\" {{ when (new_device) require aal2 }}",
        "(".repeat(100),
        "(".repeat(100)
    );
    assert_eq!(codes(text.into_bytes()), Vec::<&str>::new());
}

#[test]
fn sixty_nested_parentheses_still_parse() {
    let text = format!(
        "when {}new_device{} require aal2",
        "(".repeat(60),
        ")".repeat(60)
    );
    assert_eq!(codes(text.into_bytes()), Vec::<&str>::new());
}

/// pest's own stack probe is compiled out (see the root `Cargo.toml`): the deepest nesting the
/// pre-scan lets through still parses, lowers, checks and hashes on a thread with half the
/// usual 2 MiB stack, even unoptimized (a level of the lowering takes about 8 KB then).
#[test]
fn the_deepest_nesting_allowed_on_a_small_stack() {
    let depth = stepup_dsl::syntax::MAX_NESTING;
    let texts = [
        format!(
            "when {}new_device{} require aal2",
            "(".repeat(depth),
            ")".repeat(depth)
        ),
        format!(
            // A `not` at every level: as deep as parentheses and `not`s may go together.
            "when {}new_device and amount > 3{} require aal2",
            "(not ".repeat(depth),
            ")".repeat(depth)
        ),
        // The heaviest shape a differential review found (a comment inside every level, in a
        // tenant): it loads to a set, so the checker and the hash walk the depth too.
        format!(
            "tenant t {{\n  policy p \"You're on a new device — confirm it's you.\" {{ when {}new_device{} require aal2 }}\n}}\n",
            "( # comment\n not ".repeat(depth),
            ")".repeat(depth)
        ),
    ];
    let got = codes_on_stack(1024 * 1024, texts);
    assert_eq!(got, [vec![], vec!["E005"], vec![]]);
}

#[test]
fn a_ten_megabyte_file() {
    let line = "when new_device require aal2\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    assert_eq!(codes(text.into_bytes()), vec!["E020"]);
}

/// A review's finding: applications that each change a large tenant's policies are each
/// compiled with all of them (2,000 one-line applications over 2,000 policies took a minute and
/// 1.4 GB to load). A set whose scopes hold more than `MAX_SCOPE_POLICIES` in all is refused,
/// once, at the application that crosses the bound; one just under it loads.
#[test]
fn a_million_policies_in_all_across_applications_is_refused() {
    use stepup_dsl::model::MAX_SCOPE_POLICIES;
    let tenant_policies = 999;
    let text = |apps: usize| {
        let mut t = String::from("tenant t {\n  attribute amount: number\n");
        for i in 0..tenant_policies {
            t.push_str(&format!(
                "  policy p{i} \"Confirm this payment.\" {{ when amount > {i} require aal2 }}\n"
            ));
        }
        t.push_str("}\n");
        for a in 0..apps {
            t.push_str(&format!("application a{a} of t {{ cache off }}\n"));
        }
        t
    };
    let errors = |apps| {
        let mut c = codes(text(apps).into_bytes());
        c.retain(|c| c.starts_with('E'));
        c
    };
    // The tenant's 1,000 (its admin default counted), then 1,000 per application.
    let fits = MAX_SCOPE_POLICIES / (tenant_policies + 1) - 1;
    assert_eq!(errors(fits), Vec::<&str>::new());
    assert_eq!(errors(fits + 1), vec!["E042"]);
    assert_eq!(errors(fits + 50), vec!["E042"]);
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        codes(b"when new_device require aal2 # \xff\xfe".to_vec()),
        vec!["E021"]
    );
}

#[test]
fn an_empty_file() {
    assert_eq!(codes(Vec::new()), vec!["E023"]);
    assert_eq!(codes(b"  \n\n # nothing\n".to_vec()), vec!["E023"]);
}

#[test]
fn a_nul_byte() {
    assert_eq!(
        codes(b"when new_device\0 require aal2".to_vec()),
        vec!["E024"]
    );
}

#[test]
fn a_long_chain_of_operators_parses_without_recursion_trouble() {
    let text = format!(
        "when {} require aal2",
        vec!["new_device"; 5_000].join(" or ")
    );
    assert_eq!(codes(text.into_bytes()), Vec::<&str>::new());
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2_000 {
        let len = (state % 200) as usize;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let alphabet = b"when require aal2 factor totp|sms not and or ( ) [ ] { } \" # \n 30d 5m risk >= 70 policy tenant x";
            v.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = codes(v);
    }
}

#[test]
fn thousands_of_errors_on_one_long_line_are_capped_with_a_count_by_code() {
    // 2,580 unknown factors on one 25 KB line (a mutated file found by fuzzing): the first 100
    // are shown, then one note counts the rest by code, and the totals still count them all.
    let rules: Vec<String> = (0..86)
        .map(|j| {
            let factors: Vec<String> = (j * 30..(j + 1) * 30).map(|i| format!("badf{i}")).collect();
            format!("when new_device require aal2 factor {}", factors.join("|"))
        })
        .collect();
    let text = rules.join(" ");
    assert!(!text.contains('\n'));
    let loaded = load_sources(&[Source::text("big.policy", &text)]);
    let max = stepup_dsl::diag::MAX_DIAGNOSTICS_PER_FILE;
    assert_eq!(loaded.diagnostics.len(), max + 1);
    assert!(
        loaded.diagnostics[..max]
            .iter()
            .all(|d| d.code == "E002" && d.is_error())
    );
    assert_eq!(loaded.diagnostics[0].snippet(), "badf0");
    assert_eq!(loaded.diagnostics[max - 1].snippet(), "badf99");
    let note = &loaded.diagnostics[max];
    assert_eq!(note.severity, stepup_dsl::Severity::Note);
    assert_eq!(note.code, stepup_dsl::diag::TRUNCATED);
    assert_eq!(note.message, "2480 more diagnostics in this file not shown");
    assert_eq!(
        note.help.as_deref(),
        Some("only the first 100 are shown; not shown: E002 × 2480")
    );
    assert_eq!(loaded.error_count(), 2580);
    assert_eq!(loaded.warning_count(), 0);
    assert!(loaded.set.is_none());
    let rendered = stepup_dsl::diag::render_all(&loaded.diagnostics, false);
    assert!(rendered.ends_with(
        "note[N001]: 2480 more diagnostics in this file not shown\n --> big.policy\n  = help: only the first 100 are shown; not shown: E002 × 2480\n\n"
    ));
    // Each diagnostic shows a window of the long line around its span, not the whole line.
    assert!(rendered.lines().all(|l| l.chars().count() < 200));
}

#[test]
fn the_cap_keeps_errors_before_warnings() {
    // 150 policies without a message (S002 warnings), then one unknown factor: the error is
    // shown, and the note counts the warnings left out.
    let mut text: String = (0..150)
        .map(|i| format!("policy p{i} {{ when new_device require aal2 }}\n"))
        .collect();
    text.push_str("when new_device require aal2 factor totpp\n");
    let loaded = load_sources(&[Source::text("many.policy", &text)]);
    assert_eq!(loaded.diagnostics.len(), 101);
    assert_eq!(
        loaded
            .diagnostics
            .iter()
            .map(|d| d.code)
            .filter(|c| *c == "E002")
            .count(),
        1
    );
    assert_eq!(
        loaded.diagnostics[100].help.as_deref(),
        Some("only the first 100 are shown; not shown: S002 × 51")
    );
    assert_eq!((loaded.error_count(), loaded.warning_count()), (1, 150));
}

/// A review's finding: lint S007 built a warning for every pair of policies that can fire
/// together without a common factor before the hundred per file were kept, so 20,000 policies
/// alternating two factors ran out of memory (a service reloading them would have crashed).
/// The pairs listed stop at a bound, with a warning that says so.
#[test]
fn disjoint_factor_pairs_are_bounded() {
    let text: String = (0..3_000)
        .map(|i| {
            let factor = if i % 2 == 0 { "totp" } else { "webauthn" };
            format!("policy p{i} {{ when new_device require aal3 factor {factor} }}\n")
        })
        .collect();
    let loaded = stepup_dsl::load_sources(&[stepup_dsl::Source::text("many.policy", &text)]);
    let s007: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == "S007")
        .collect();
    assert!(!s007.is_empty() && s007.len() <= 100, "{}", s007.len());
    // The note on what is not shown counts them by code: the first 1,000 pairs and the
    // warning that the search stopped are all there are.
    let note = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == "N001")
        .and_then(|d| d.help.clone())
        .unwrap_or_default();
    let hidden: usize = note
        .split("S007 × ")
        .nth(1)
        .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert_eq!(s007.len() + hidden, 1_001, "{note}");
}
