//! S001 `routine-step-up`: a policy steps up on an operation the catalog declares `routine`.

use stepup_core::OperationClass;

use super::super::Ctx;
use crate::ast::{CmpOp, Expr, Lit};
use crate::diag::Span;
use crate::model::Tenant;

/// Whether a condition holds for operation `op`, what it does not say of the operation left
/// open: `Some(true)` or `Some(false)` when the operation alone decides, `None` when the rest
/// of the request may.
fn holds_for(e: &Expr, op: &str) -> Option<bool> {
    match e {
        Expr::And(v) => combine(v, op, false),
        Expr::Or(v) => combine(v, op, true),
        Expr::Not(a) => holds_for(a, op).map(|v| !v),
        Expr::Cmp(n, CmpOp::Eq, lit) if n.text == "operation" => {
            lit_text(lit).map(|(v, _)| v == op)
        }
        Expr::Cmp(n, CmpOp::Ne, lit) if n.text == "operation" => {
            lit_text(lit).map(|(v, _)| v != op)
        }
        Expr::In(n, items, _) if n.text == "operation" => {
            Some(items.iter().filter_map(lit_text).any(|(v, _)| v == op))
        }
        _ => None,
    }
}

/// An `and` (`decisive` false) or an `or` (`decisive` true) for operation `op`: one part with
/// the decisive value decides; else it is open if a part is.
fn combine(v: &[Expr], op: &str, decisive: bool) -> Option<bool> {
    let mut open = false;
    for c in v {
        match holds_for(c, op) {
            Some(b) if b == decisive => return Some(decisive),
            None => open = true,
            Some(_) => {}
        }
    }
    (!open).then_some(!decisive)
}

/// An operation test: where its `operation` is, and each operation it names with where.
type OpTest<'e> = (Span, Vec<(&'e str, Span)>);

/// The operation tests of a condition.
fn operation_tests<'e>(e: &'e Expr, out: &mut Vec<OpTest<'e>>) {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|c| operation_tests(c, out)),
        Expr::Not(a) => operation_tests(a, out),
        Expr::Cmp(n, CmpOp::Eq | CmpOp::Ne, lit) if n.text == "operation" => {
            out.push((n.span, lit_text(lit).into_iter().collect()));
        }
        Expr::In(n, items, _) if n.text == "operation" => {
            out.push((n.span, items.iter().filter_map(lit_text).collect()));
        }
        _ => {}
    }
}

/// Flags each `routine` operation a condition that tests the operation steps up on: read with
/// that operation it is true whatever the rest of the request is, or it may be true and its
/// operation tests single the operation out (`operation == y and risk > 50`, `not (operation
/// == y and risk > 50)`); `operation != a and operation != b`, nested as it may be, steps up on
/// neither. Where the condition names the operation it points there; else at its first
/// operation test.
pub(in crate::check) fn routine_step_up(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr) {
    let mut tests = Vec::new();
    operation_tests(e, &mut tests);
    let Some((first, _)) = tests.first() else {
        return;
    };
    let first = *first;
    // An operation no test names: what the condition does with the operation left aside.
    let elsewhere = holds_for(e, "\u{0}");
    for (o, class) in &t.operations {
        let here = holds_for(e, o);
        // It steps up on `o` whatever else the request says, or its tests of the operation
        // treat `o` otherwise than an operation they do not name (`operation == x or
        // new_device` treats a routine `y` as any other: it is a signal's step-up there).
        if *class != OperationClass::Routine
            || here == Some(false)
            || (here != Some(true) && here == elsewhere)
        {
            continue;
        }
        let named = tests
            .iter()
            .flat_map(|(_, names)| names.iter())
            .find(|(v, _)| v == o);
        let (span, label) = match named {
            Some((_, span)) => (*span, "routine".to_string()),
            None => {
                let mut others: Vec<&str> = tests
                    .iter()
                    .flat_map(|(_, names)| names.iter().map(|(v, _)| *v))
                    .filter(|v| v != o)
                    .collect();
                others.sort_unstable();
                others.dedup();
                let label = if others.is_empty() {
                    "every operation".to_string()
                } else {
                    format!(
                        "every operation but {}",
                        others
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                (first, label)
            }
        };
        cx.warn("S001", span, format!("step-up on `{o}`, a routine operation"), &label, Some("over-stepping trains users to dismiss prompts; reserve step-up for what matters, or declare the operation `sensitive`".into()));
    }
}

fn lit_text(l: &Lit) -> Option<(&str, Span)> {
    match l {
        Lit::Name(n) => Some((&n.text, n.span)),
        Lit::Str(s) => Some((&s.value, s.span)),
        Lit::Number(..) => None,
    }
}
