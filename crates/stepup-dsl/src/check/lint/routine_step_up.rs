//! S001 `routine-step-up`: a policy steps up on an operation the catalog declares `routine`.

use stepup_core::OperationClass;

use super::super::Ctx;
use crate::ast::{CmpOp, Expr, Lit};
use crate::diag::Span;
use crate::model::Tenant;

/// The operations a test leaves out, when it is one that fires on every operation but those
/// (`!=`, or `==` and `in` under a `not`; `positive`: not under a `not`), with where it names
/// the operation.
fn excluded(e: &Expr, positive: bool) -> Option<(Vec<&str>, Span)> {
    match e {
        Expr::Cmp(n, CmpOp::Ne, lit) if positive && n.text == "operation" => {
            Some((lit_text(lit).map(|(v, _)| v).into_iter().collect(), n.span))
        }
        Expr::Cmp(n, CmpOp::Eq, lit) if !positive && n.text == "operation" => {
            Some((lit_text(lit).map(|(v, _)| v).into_iter().collect(), n.span))
        }
        Expr::In(n, items, _) if !positive && n.text == "operation" => Some((
            items.iter().filter_map(lit_text).map(|(v, _)| v).collect(),
            n.span,
        )),
        Expr::Not(a) => excluded(a, !positive),
        _ => None,
    }
}

/// Flags each `routine` operation a condition steps up on (`positive`: not under a `not`):
/// those it names with `==` or `in`, and, where it leaves operations out (`!=`, or `==` and
/// `in` under a `not`), every routine operation it does not leave out — the exclusions of one
/// conjunction together (`operation != a and operation != b` leaves out both).
pub(in crate::check) fn routine_step_up(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr, positive: bool) {
    let flag = |cx: &mut Ctx<'_>, n: &str, span: Span, label: &str| {
        if t.operations.get(n) == Some(&OperationClass::Routine) {
            cx.warn("S001", span, format!("step-up on `{n}`, a routine operation"), label, Some("over-stepping trains users to dismiss prompts; reserve step-up for what matters, or declare the operation `sensitive`".into()));
        }
    };
    let all_but = |cx: &mut Ctx<'_>, names: &[&str], span: Span| {
        let label = format!(
            "every operation but {}",
            names
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for o in t.operations.keys() {
            if !names.contains(&o.as_str()) {
                flag(cx, o, span, &label);
            }
        }
    };
    match e {
        // A conjunction (an `and`, or an `or` under a `not`): its exclusions together.
        Expr::And(v) | Expr::Or(v) if matches!(e, Expr::And(_)) == positive => {
            let mut names: Vec<&str> = Vec::new();
            let mut at = None;
            for c in v {
                match excluded(c, positive) {
                    Some((n, span)) => {
                        names.extend(n);
                        at.get_or_insert(span);
                    }
                    None => routine_step_up(cx, t, c, positive),
                }
            }
            if let Some(span) = at {
                all_but(cx, &names, span);
            }
        }
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|c| routine_step_up(cx, t, c, positive)),
        Expr::Not(a) => routine_step_up(cx, t, a, !positive),
        _ => {
            if let Some((names, span)) = excluded(e, positive) {
                all_but(cx, &names, span);
            } else if positive {
                match e {
                    Expr::Cmp(n, CmpOp::Eq, lit) if n.text == "operation" => {
                        if let Some((v, span)) = lit_text(lit) {
                            flag(cx, v, span, "routine");
                        }
                    }
                    Expr::In(n, items, _) if n.text == "operation" => {
                        for (v, span) in items.iter().filter_map(lit_text) {
                            flag(cx, v, span, "routine");
                        }
                    }
                    _ => {}
                }
            } else if let Expr::Cmp(n, CmpOp::Ne, lit) = e
                && n.text == "operation"
                && let Some((v, span)) = lit_text(lit)
            {
                // `not (operation != a)`: on `a` alone.
                flag(cx, v, span, "routine");
            }
        }
    }
}

fn lit_text(l: &Lit) -> Option<(&str, Span)> {
    match l {
        Lit::Name(n) => Some((&n.text, n.span)),
        Lit::Str(s) => Some((&s.value, s.span)),
        Lit::Number(..) => None,
    }
}
