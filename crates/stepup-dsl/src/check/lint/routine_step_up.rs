//! S001 `routine-step-up`: a policy steps up on an operation the catalog declares `routine`.

use stepup_core::OperationClass;

use super::super::Ctx;
use crate::ast::{CmpOp, Expr, Lit};
use crate::diag::Span;
use crate::model::Tenant;

/// Flags each `routine` operation a condition steps up on (`positive`: not under a `not`):
/// those it names with `==` or `in`, and, where it names operations to leave out (`!=`, or
/// `==` and `in` under a `not`), every routine operation it does not name.
pub(in crate::check) fn routine_step_up(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr, positive: bool) {
    let flag = |cx: &mut Ctx<'_>, n: &str, span: Span, label: String| {
        if t.operations.get(n) == Some(&OperationClass::Routine) {
            cx.warn("S001", span, format!("step-up on `{n}`, a routine operation"), &label, Some("over-stepping trains users to dismiss prompts; reserve step-up for what matters, or declare the operation `sensitive`".into()));
        }
    };
    // The operations a test names; `only`: it fires on those (else on every other).
    let (named, only, at): (Vec<(&str, Span)>, bool, Span) = match e {
        Expr::And(v) | Expr::Or(v) => {
            v.iter().for_each(|e| routine_step_up(cx, t, e, positive));
            return;
        }
        Expr::Not(a) => {
            routine_step_up(cx, t, a, !positive);
            return;
        }
        Expr::Cmp(n, op @ (CmpOp::Eq | CmpOp::Ne), lit) if n.text == "operation" => {
            let Some(named) = lit_text(lit) else { return };
            (vec![named], (*op == CmpOp::Eq) == positive, n.span)
        }
        Expr::In(n, items, _) if n.text == "operation" => {
            let named = items.iter().filter_map(lit_text).collect();
            (named, positive, n.span)
        }
        _ => return,
    };
    if only {
        for (v, span) in named {
            flag(cx, v, span, "routine".into());
        }
    } else {
        let but = named
            .iter()
            .map(|(v, _)| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for o in t.operations.keys() {
            if !named.iter().any(|(v, _)| v == o) {
                flag(cx, o, at, format!("every operation but {but}"));
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
