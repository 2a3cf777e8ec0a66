//! S001 `routine-step-up`: a policy steps up on an operation the catalog declares `routine`.

use stepup_core::OperationClass;

use super::super::Ctx;
use crate::ast::{CmpOp, Expr, Lit};
use crate::diag::Span;
use crate::model::Tenant;

/// Flags each `routine` operation a condition steps up on (`positive`: not under a `not`).
pub(in crate::check) fn routine_step_up(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr, positive: bool) {
    let flag = |cx: &mut Ctx<'_>, n: &str, span: Span| {
        if positive && t.operations.get(n) == Some(&OperationClass::Routine) {
            cx.warn("S001", span, format!("step-up on `{n}`, a routine operation"), "routine", Some("over-stepping trains users to dismiss prompts; reserve step-up for what matters, or declare the operation `sensitive`".into()));
        }
    };
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| routine_step_up(cx, t, e, positive)),
        Expr::Not(a) => routine_step_up(cx, t, a, !positive),
        Expr::Cmp(n, CmpOp::Eq, lit) if n.text == "operation" => {
            if let Some((v, span)) = lit_text(lit) {
                flag(cx, v, span);
            }
        }
        Expr::In(n, items, _) if n.text == "operation" => {
            for i in items {
                if let Lit::Name(v) = i {
                    flag(cx, &v.text, v.span);
                } else if let Lit::Str(s) = i {
                    flag(cx, &s.value, s.span);
                }
            }
        }
        _ => {}
    }
}

fn lit_text(l: &Lit) -> Option<(&str, Span)> {
    match l {
        Lit::Name(n) => Some((&n.text, n.span)),
        Lit::Str(s) => Some((&s.value, s.span)),
        Lit::Number(..) => None,
    }
}
