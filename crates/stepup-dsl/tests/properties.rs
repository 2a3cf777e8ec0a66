//! Two paths to one answer: `parse(format(x)) == x` and `format(format(x)) == format(x)`, over
//! generated policy files with random layout, parentheses and comments.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use proptest::prelude::*;
use stepup_dsl::{format_text, parse_text};

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["pay", "view", "export", "amount", "plan", "x_1"])
        .prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("new_device".to_string()),
        Just("impossible_travel".to_string()),
        (1u32..400).prop_map(|d| format!("new_country({d}d)")),
        name().prop_map(|r| format!("first_access({r})")),
        (
            prop::sample::select(vec![">=", "<=", "==", "!=", ">", "<"]),
            0u32..120
        )
            .prop_map(|(o, n)| format!("risk {o} {n}")),
        (name(), prop::sample::select(vec!["==", ">"]), -5i64..5000)
            .prop_map(|(a, o, n)| format!("{a} {o} {n}")),
        (name(), -50i64..50).prop_map(|(a, n)| format!("{a} > {n}.5")),
        prop::collection::vec(name(), 1..4)
            .prop_map(|v| format!("operation in [{}]", v.join(", "))),
        "[a-z \"#{}]{0,12}".prop_map(|s| format!("script {}", stepup_dsl::fmt::quote(&s))),
        (name(), "[a-zA-Z #]{0,8}")
            .prop_map(|(a, s)| format!("{a} == {}", stepup_dsl::fmt::quote(&s))),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn require() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["aal1", "aal2", "aal3"]),
        prop::sample::select(vec![
            "",
            " factor any",
            " factor totp|webauthn",
            " factor not sms",
            " factor sms|push",
        ]),
        prop::sample::select(vec![
            "",
            " for 30s",
            " for 5m",
            " for 90s",
            " for 2h",
            " every time",
            " for 1d",
        ]),
    )
        .prop_map(|(a, f, v)| format!("require {a}{f}{v}"))
}

fn ws() -> impl Strategy<Value = String> {
    prop::sample::select(vec![" ", "  ", "\n", "\n\n  ", " # note\n", "\t"])
        .prop_map(str::to_string)
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop::option::of(name()),
        prop::option::of("[A-Za-z ,.'#]{0,30}"),
        expr(),
        require(),
        ws(),
        ws(),
        any::<bool>(),
    )
        .prop_map(|(n, msg, e, r, w1, w2, report_only)| match n {
            None => format!("when{w1}{e}{w2}{r}"),
            Some(n) => {
                let m = msg
                    .map(|m| format!(" {}", stepup_dsl::fmt::quote(&m)))
                    .unwrap_or_default();
                let ro = if report_only { "report_only" } else { "" };
                format!("{ro}{w1}policy {n}{m} {{{w1}when {e}{w2}{r} }}")
            }
        })
}

fn file() -> impl Strategy<Value = String> {
    (prop::collection::vec((policy(), ws()), 1..5), prop::collection::vec((name(), policy()), 0..3)).prop_map(|(top, blocks)| {
        let mut s = String::from("# generated\n");
        for (p, w) in top {
            s.push_str(&p);
            s.push_str(&w);
            s.push('\n');
        }
        for (t, p) in blocks {
            s.push_str(&format!("tenant {t} {{ duration 5m operation {t} sensitive\n  {p}\n}}\napplication app of {t} {{ cache off {p} }}\n"));
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn format_preserves_meaning_and_is_idempotent(text in file()) {
        let parsed = parse_text("g.policy", &text);
        prop_assert!(parsed.is_ok(), "generator produced an invalid file:\n{text}\n{:?}", parsed.err());
        let Ok(x) = parsed else { return Ok(()) };
        let once = format_text("g.policy", &text);
        prop_assert!(once.is_ok());
        let Ok(once) = once else { return Ok(()) };
        let reparsed = parse_text("g.policy", &once);
        prop_assert!(reparsed.is_ok(), "formatted output does not parse:\n{once}");
        prop_assert_eq!(reparsed.ok(), Some(x), "meaning changed:\n{}\n---\n{}", text, once);
        let twice = format_text("g.policy", &once).unwrap_or_default();
        prop_assert_eq!(twice, once);
    }
}

/// Found by a differential review: a run of more than 16 `not`s written through parentheses
/// (valid: each group holds one) was formatted as one run of `not`s, which the parser refuses
/// (E019) — `stepup fmt` wrote a file that no longer loads, and the set hash was taken over
/// canonical text that does not parse. The formatter now keeps a pair of parentheses every 16.
#[test]
fn a_long_run_of_not_through_parentheses_formats_to_a_file_that_loads_as_the_same_set() {
    for n in [1, 15, 16, 17, 31, 32, 33, 40] {
        let cond = format!("{}new_device{}", "not (".repeat(n), ")".repeat(n));
        let text = format!("tenant t {{\n  policy p {{ when {cond} require aal2 }}\n}}\n");
        let x = parse_text("n.policy", &text).unwrap_or_else(|e| panic!("{n}: {e:?}"));
        let once = format_text("n.policy", &text).unwrap_or_else(|e| panic!("{n}: {e:?}"));
        let reparsed = parse_text("n.policy", &once)
            .unwrap_or_else(|e| panic!("{n}: formatted output does not parse:\n{once}\n{e:?}"));
        assert_eq!(reparsed, x, "{n}: meaning changed:\n{once}");
        assert_eq!(
            format_text("n.policy", &once).unwrap(),
            once,
            "{n}: not idempotent"
        );
        let hash = |t: &str| {
            stepup_dsl::load_sources(&[stepup_dsl::Source::text("n.policy", t)])
                .set
                .map(|s| s.hash.clone())
        };
        assert!(hash(&text).is_some(), "{n}: the source loads");
        assert_eq!(hash(&text), hash(&once), "{n}: the set hash changed");
    }
}

/// Found by review: a run of `not`s before a plain operand was not counted toward the depth
/// bound (`MAX_CONDITION_DEPTH`, parentheses and `not`s together), and the formatter, which
/// writes a long chain of `not`s as full runs of 16 before a parenthesis, moved such a run before
/// one: `stepup fmt` turned a file that loads into one refused with E019. Every operand now
/// counts its `not`s; near the bound, with runs at every place, a file loads exactly when its
/// formatted text loads, to the same set.
#[test]
fn near_the_depth_bound_a_file_loads_exactly_when_its_formatted_text_loads() {
    let max = stepup_dsl::syntax::MAX_CONDITION_DEPTH;
    let nest = |levels: usize, per_level: usize, leaf_nots: usize, inner: usize| {
        let mut cond = format!("{}amount > 5", "not ".repeat(leaf_nots));
        cond = format!("{}({cond})", "not ".repeat(inner));
        for _ in 0..levels {
            cond = format!("risk >= 10 or {}({cond})", "not ".repeat(per_level));
        }
        format!(
            "tenant acme {{\n  attribute amount: number\n  policy p \"Confirm it's you.\" {{ when {cond} require aal2 }}\n}}\n"
        )
    };
    let load = |t: &str| {
        stepup_dsl::load_sources(&[stepup_dsl::Source::text("d.policy", t)])
            .set
            .map(|s| s.hash.clone())
    };
    let mut loaded = 0;
    let mut refused = 0;
    for levels in [max / 17 - 1, max / 17] {
        for leaf_nots in [0, 1, 15, 16] {
            for inner in [1, 2, 16] {
                let text = nest(levels, 16, leaf_nots, inner);
                // A text too deep to parse has no formatted text: it is refused either way.
                let Ok(formatted) = format_text("d.policy", &text) else {
                    assert_eq!(load(&text), None);
                    refused += 1;
                    continue;
                };
                assert_eq!(
                    load(&text),
                    load(&formatted),
                    "{levels} {leaf_nots} {inner}\n{formatted}"
                );
                match load(&text) {
                    Some(_) => loaded += 1,
                    None => refused += 1,
                }
            }
        }
    }
    assert!(
        loaded > 0 && refused > 0,
        "both sides of the bound: {loaded} loaded, {refused} refused"
    );
    // The review's case: seven levels of 16, then `not (` and 16 more before the operand. It
    // loaded (its last 16 `not`s were not counted: 121 levels) and its formatted text, which
    // writes those 16 before the last parenthesis, did not. Counted, it is 137 levels deep:
    // refused, as its formatted text is.
    let text = nest(7, 16, 16, 1);
    assert_eq!(load(&text), None);
    let shallower = nest(6, 16, 16, 1);
    assert!(load(&shallower).is_some());
    assert_eq!(
        load(&shallower),
        load(&format_text("d.policy", &shallower).unwrap())
    );
}

/// A comment written after a unit that shares its line with another trails the one it follows
/// (a review: after a policy's `}` on the line an attribute began, it moved onto the attribute).
#[test]
fn a_trailing_comment_stays_with_the_unit_it_follows() {
    let text = "tenant t { operation payout sensitive\n  attribute amount: number policy p \"Confirm this payout.\" { when operation == payout and amount > 1000 require aal2 } # after p\n  operation view routine # after view\n}\n";
    let out = format_text("c.policy", text).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(out.contains("  attribute amount: number\n"), "{out}");
    assert!(out.contains("  }  # after p\n"), "{out}");
    assert!(
        out.contains("  operation view routine  # after view\n"),
        "{out}"
    );
    assert_eq!(format_text("c.policy", &out).unwrap_or_default(), out);
    // A comment after a block's `{` stays on its header line (the re-review: it moved off it,
    // so a formatted file failed `fmt --check`).
    let headers = "tenant acme {  # header\n  operation view routine\n}\napplication a of acme {  # app\n  cache off\n}\n";
    assert_eq!(
        format_text("h.policy", headers).unwrap_or_default(),
        headers
    );
    // A comment after a block's closing `}` trails the block, not its last member.
    let closing = "tenant t { operation view routine }  # end of t\ntenant u {}  # c\n";
    let out = format_text("e.policy", closing).unwrap_or_default();
    assert!(
        out.contains("  operation view routine\n}  # end of t\n"),
        "{out}"
    );
    assert!(out.contains("tenant u {\n}  # c\n"), "{out}");
}
