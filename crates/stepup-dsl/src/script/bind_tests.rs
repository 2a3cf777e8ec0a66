//! Scripts with their fields bound to variables ([`super::bind`]) answer as the same scripts
//! did against a `ctx` map, and the new paths fail closed.

use rhai::{Array, Dynamic, Map, Scope};

use super::tests::{attr, run};
use super::{CTX_BUILTINS, CompileError, CtxField, ENGINE, NoAnswer, Script};
use crate::model::SignalKind;

/// The value of a field in these tests, by name.
fn value(f: &CtxField, big: bool) -> Dynamic {
    match f {
        CtxField::Risk => Dynamic::from(if big { 80_i64 } else { 10 }),
        CtxField::Signal(_) => Dynamic::from(big),
        CtxField::Operation => Dynamic::from("pay"),
        CtxField::Resource => Dynamic::from(""),
        CtxField::Event => Dynamic::from(if big { "operation" } else { "sign_in" }),
        CtxField::Enrolled => {
            let a: Array = vec![Dynamic::from("password"), Dynamic::from("totp")];
            Dynamic::from_array(a)
        }
        CtxField::Attr(a) => match a.as_str() {
            "name" | "a b" => Dynamic::from(if big { "alice" } else { "x" }),
            "vip" | "fn" => Dynamic::from(big),
            "ratio" => Dynamic::from(if big { 2.5_f64 } else { 0.5 }),
            _ => Dynamic::from(if big { 200_000_i64 } else { 5 }),
        },
    }
}

/// The script as it ran before its fields were bound: the unbound syntax tree against a
/// constant `ctx` map holding the fields (attributes both at the top and under `attrs`).
fn run_on_map(src: &str, fields: &[(CtxField, Dynamic)]) -> Result<bool, String> {
    let mut scope = Scope::new();
    scope.push("ctx", Map::new());
    let ast = ENGINE
        .compile_with_scope(&scope, src)
        .map_err(|e| e.to_string())?;
    let (mut m, mut signals, mut attrs) = (Map::new(), Map::new(), Map::new());
    for (f, v) in fields {
        let v = v.clone();
        match f {
            CtxField::Risk => m.insert("risk".into(), v),
            CtxField::Operation => m.insert("operation".into(), v),
            CtxField::Resource => m.insert("resource".into(), v),
            CtxField::Event => m.insert("event".into(), v),
            CtxField::Enrolled => m.insert("enrolled".into(), v),
            CtxField::Signal(k) => signals.insert(k.as_str().into(), v),
            CtxField::Attr(a) => {
                if !CTX_BUILTINS.contains(&a.as_str()) {
                    m.insert(a.as_str().into(), v.clone());
                }
                attrs.insert(a.as_str().into(), v)
            }
        };
    }
    m.insert("signals".into(), Dynamic::from_map(signals));
    m.insert("attrs".into(), Dynamic::from_map(attrs));
    let mut scope = Scope::new();
    scope.push_constant("ctx", m);
    ENGINE
        .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
        .map_err(|e| e.to_string())?
        .as_bool()
        .map_err(|t| format!("script returned a {t}, not a boolean"))
}

const SCRIPTS: &[&str] = &[
    "ctx.amount > 100000",
    "ctx[\"amount\"] >= 5 && ctx.attrs.amount < 10",
    "ctx.amount > 5 && ctx.amount < 300000 && ctx.amount != 7",
    "ctx.risk >= 70 || ctx.signals.new_device",
    "if ctx.signals.new_country { ctx.risk > 5 } else { ctx.risk > 50 }",
    "ctx.enrolled.len() > 1",
    "ctx.enrolled[0] == \"password\"",
    "ctx.enrolled[1].len() == 4",
    "\"totp\" in ctx.enrolled",
    "ctx.enrolled.contains(\"webauthn\")",
    "let n = 0; for f in ctx.enrolled { n += f.len() } n == 12",
    "ctx.name.len() > 2",
    "ctx.name?.len() > 2",
    "ctx.name == \"alice\" && ctx.attrs.name != \"bob\"",
    "ctx.name in [\"alice\", \"carol\"]",
    "`${ctx.amount}` == \"5\"",
    "#{a: ctx.amount, b: [ctx.risk]}.b[0] == ctx.risk",
    "[ctx.amount, ctx.risk][1] == ctx.risk",
    "(ctx.amount ?? 0) > 3",
    "let a = ctx.amount; let b = a * 2; b > ctx.limit",
    // (`switch` is refused: it matches values of another type silently.)
    "ctx.ratio > 1.0",
    "ctx.ratio * 2.0 > ctx.amount",
    "ctx.vip",
    "!ctx.attrs.vip",
    "ctx.attrs.risk > ctx.risk",
    "ctx.attrs[\"a b\"] == \"x\"",
    "ctx[\"a.b\"] == 5 && ctx.a == 5",
    "ctx[\"fn\"] || ctx.attrs[\"let\"] > 100",
    "ctx.operation == \"pay\" && ctx.resource == \"\" && ctx.event != \"access\"",
    "let y = { let x = ctx.amount; x }; y > 1",
    "let m = #{ amount: 1 }; m.amount < ctx.amount",
    "let m = [3, 4]; m[ctx.risk / 80] == 4",
    "ctx.amount = 5; true",
    "ctx.enrolled.push(\"x\"); true",
    "ctx.amount",
    "ctx.name + 1",
    "ctx.amount / 0 > 1",
    "while ctx.amount > 0 { return ctx.vip; } false",
];

#[test]
fn bound_scripts_answer_as_they_did_against_a_ctx_map() -> Result<(), String> {
    for src in SCRIPTS {
        let s = Script::compile(src).map_err(|e| format!("`{src}`: {e:?}"))?;
        for big in [false, true] {
            let fields: Vec<(CtxField, Dynamic)> = s
                .reads()
                .iter()
                .map(|f| (f.clone(), value(f, big)))
                .collect();
            let bound = run(&s, &fields);
            let mapped = run_on_map(src, &fields);
            match (&bound, &mapped) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "`{src}` (big: {big})"),
                // Both fail (the messages may differ: a variable's name is not `ctx.…`).
                _ => assert!(
                    matches!((&bound, &mapped), (Err(NoAnswer::Failed(_)), Err(_))),
                    "`{src}` (big: {big}): bound {bound:?}, on a map {mapped:?}"
                ),
            }
        }
    }
    Ok(())
}

#[test]
fn every_field_read_is_required_before_the_script_runs() -> Result<(), String> {
    for src in SCRIPTS {
        let s = Script::compile(src).map_err(|e| format!("`{src}`: {e:?}"))?;
        for missing in s.reads() {
            let fields: Vec<(CtxField, Dynamic)> = s
                .reads()
                .iter()
                .filter(|f| *f != missing)
                .map(|f| (f.clone(), value(f, true)))
                .collect();
            assert_eq!(
                run(&s, &fields),
                Err(NoAnswer::NotRun(format!("`{missing}` is absent"))),
                "`{src}`"
            );
        }
    }
    Ok(())
}

#[test]
fn a_field_read_only_in_a_break_value_is_a_field_the_script_reads() -> Result<(), CompileError> {
    // `AST::walk` does not visit a `break` value; the binding does, so the engine knows the
    // script reads `ctx.amount` and never runs it without one.
    let src = "loop { break ctx.amount == 5 }";
    // Against a `ctx` map without the field, it would read `()`: rhai's own `() == 5` is false;
    // the sandbox refuses to compare two types, so even that run gives no answer.
    assert!(
        run_on_map(src, &[])
            .is_err_and(|e| e.contains("cannot compare nothing (`()`) with a number")),
        "{:?}",
        run_on_map(src, &[])
    );
    let s = Script::compile(src)?;
    assert_eq!(s.reads(), [attr("amount")]);
    assert_eq!(
        run(&s, &[]),
        Err(NoAnswer::NotRun("`ctx.amount` is absent".to_string()))
    );
    assert_eq!(run(&s, &[(attr("amount"), Dynamic::from(5_i64))]), Ok(true));
    Ok(())
}

#[test]
fn builtins_attributes_and_signals_of_the_same_name_are_distinct() -> Result<(), CompileError> {
    let s = Script::compile(
        "ctx.risk == 1 && ctx.attrs.risk == 2 && ctx.signals.new_device && !ctx[\"signals.new_device\"]",
    )?;
    let fields = [
        (CtxField::Risk, Dynamic::from(1_i64)),
        (attr("risk"), Dynamic::from(2_i64)),
        (CtxField::Signal(SignalKind::NewDevice), Dynamic::from(true)),
        (attr("signals.new_device"), Dynamic::from(false)),
    ];
    assert_eq!(run(&s, &fields), Ok(true));
    Ok(())
}

#[test]
fn attributes_named_like_keywords_or_with_odd_characters_are_read_by_index()
-> Result<(), CompileError> {
    let s = Script::compile(
        "ctx[\"let\"] > 1 && ctx.attrs[\"fn\"] && ctx[\"a \\\" b\"] == \"q\" && ctx[\"é\"] == 1",
    )?;
    assert_eq!(
        s.reads(),
        [attr("a \" b"), attr("fn"), attr("let"), attr("é")]
    );
    let fields = [
        (attr("let"), Dynamic::from(2_i64)),
        (attr("fn"), Dynamic::from(true)),
        (attr("a \" b"), Dynamic::from("q")),
        (attr("é"), Dynamic::from(1_i64)),
    ];
    assert_eq!(run(&s, &fields), Ok(true));
    Ok(())
}

#[test]
fn fields_are_constants() -> Result<(), CompileError> {
    for src in [
        "ctx.amount = 5; true",
        "ctx.amount += 5; true",
        "ctx.enrolled[0] = \"x\"; true",
    ] {
        let s = Script::compile(src)?;
        let fields: Vec<(CtxField, Dynamic)> = s
            .reads()
            .iter()
            .map(|f| (f.clone(), value(f, true)))
            .collect();
        assert!(
            matches!(run(&s, &fields), Err(NoAnswer::Failed(_))),
            "`{src}`"
        );
    }
    Ok(())
}

#[test]
fn a_value_that_is_unit_is_never_seen_by_the_script() -> Result<(), CompileError> {
    let s = Script::compile("ctx.amount == ()")?;
    assert_eq!(
        run(&s, &[(attr("amount"), Dynamic::UNIT)]),
        Err(NoAnswer::Failed("`ctx.amount` has no value".to_string()))
    );
    Ok(())
}

#[test]
fn non_boolean_results_and_errors_give_no_answer() -> Result<(), CompileError> {
    let amount = [(attr("amount"), Dynamic::from(5_i64))];
    for (src, message) in [
        ("ctx.amount", "script returned a i64, not a boolean"),
        ("ctx.amount + 1", "script returned a i64, not a boolean"),
        (
            "loop { if ctx.amount < 0 { break true } }",
            "script exceeded its budget of 10000 operations",
        ),
    ] {
        let s = Script::compile(src)?;
        assert_eq!(
            run(&s, &amount),
            Err(NoAnswer::Failed(message.to_string())),
            "`{src}`"
        );
    }
    let s = Script::compile("ctx.amount / 0 > 1")?;
    assert!(matches!(run(&s, &amount), Err(NoAnswer::Failed(_))));
    Ok(())
}

#[test]
fn ctx_as_a_whole_inside_a_chain_does_not_compile() {
    // `m[ctx].amount` is `m` indexed by `ctx`, then `.amount`: not a read of `ctx.amount`.
    for (src, column, message) in [
        (
            "let m = #{}; m[ctx].amount > 1",
            16,
            "scripts read `ctx` fields by name, e.g. `ctx.amount`; `ctx` is used here as a whole",
        ),
        (
            "let m = #{}; m.x[ctx].amount > 1",
            18,
            "scripts read `ctx` fields by name, e.g. `ctx.amount`; `ctx` is used here as a whole",
        ),
        (
            "let m = [1]; m[ctx][0] > 1",
            16,
            "scripts read `ctx` fields by name, e.g. `ctx.amount`; a computed index such as \
             `ctx[name]` is not allowed; write the field's name, e.g. `ctx[\"amount\"]`",
        ),
    ] {
        let e = Script::compile(src).map(|s| s.reads().to_vec());
        assert!(e.is_err(), "`{src}` compiled, reading {e:?}");
        if let Err(e) = e {
            assert_eq!(e.message, message, "`{src}`");
            assert_eq!((e.line, e.column), (Some(1), Some(column)), "`{src}`");
        }
    }
}

#[test]
fn ctx_cannot_be_a_loop_variable() {
    for src in [
        "for ctx in [1] { return true } false",
        "for (x, ctx) in [1] { return true } false",
    ] {
        let e = Script::compile(src).map(|s| s.reads().to_vec());
        assert_eq!(
            e.map_err(|e| e.message),
            Err("`ctx` cannot be declared again: it holds the request".to_string()),
            "`{src}`"
        );
    }
}

#[test]
fn a_script_run_from_inside_a_field_value_has_a_scope_of_its_own() -> Result<(), CompileError> {
    let outer = Script::compile("ctx.amount > 1")?;
    let inner = Script::compile("ctx.amount < 1")?;
    let r = outer.eval_with(|_| {
        let nested = run(&inner, &[(attr("amount"), Dynamic::from(0_i64))]);
        assert_eq!(nested, Ok(true));
        Ok::<_, String>(Dynamic::from(2_i64))
    });
    assert_eq!(r, Ok(true));
    Ok(())
}
