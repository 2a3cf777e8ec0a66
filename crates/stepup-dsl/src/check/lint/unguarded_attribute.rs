//! S008 `unguarded-attribute`: a policy reads a request attribute without an `operation` guard.

use std::collections::BTreeSet;

use stepup_core::OperationClass;

use super::super::Ctx;
use super::super::expressions::script_span;
use crate::ast::{CmpOp, Expr, Lit, Name};
use crate::diag::{SourceFile, Span};
use crate::model::{Cond, Tenant};
use crate::script::CtxField;

/// An attribute read outside an operation guard: its name and where.
struct Unguarded {
    attr: String,
    span: Span,
}

/// The longest guarded condition the help writes out whole.
const MAX_EXAMPLE: usize = 120;

/// The help's example: the whole condition under an operation guard, so that it means on that
/// operation what the policy meant (an outside check: the read alone, guarded, dropped the
/// rest of the condition, and under a `not` turned a large payout's test into a small one's).
fn guarded_example(op: &str, e: &Expr) -> String {
    let guard = Expr::Cmp(
        Name {
            text: "operation".into(),
            span: Span::new(0, 0),
        },
        CmpOp::Eq,
        Lit::Name(Name {
            text: op.into(),
            span: Span::new(0, 0),
        }),
    );
    let parts = match e {
        Expr::And(v) => std::iter::once(guard).chain(v.iter().cloned()).collect(),
        _ => vec![guard, e.clone()],
    };
    let text = crate::fmt::expr(&Expr::And(parts));
    if text.chars().count() <= MAX_EXAMPLE {
        format!("`when {text}`")
    } else {
        format!("`when operation == {op} and (...)`, around the whole condition")
    }
}

/// S008: a condition reads a request attribute where the event need not be an operation. Only
/// operations carry attributes; on every sign-in and access the attribute is absent, hence
/// unknown, and unknown fires (SPEC §10).
pub(in crate::check) fn unguarded_attribute(
    cx: &mut Ctx<'_>,
    t: &Tenant,
    policy: &str,
    e: &Expr,
    c: &Cond,
) {
    let mut found = Vec::new();
    unguarded_reads(cx.file, t, e, c, false, &mut found);
    let op = t
        .operations
        .iter()
        .find(|(_, c)| **c == OperationClass::Sensitive)
        .or_else(|| {
            t.operations
                .iter()
                .find(|(_, c)| **c == OperationClass::Admin)
        })
        .or_else(|| t.operations.iter().next())
        .map_or("payout", |(n, _)| n.as_str());
    let example = guarded_example(op, e);
    let mut seen = BTreeSet::new();
    for u in found {
        if !seen.insert(u.attr.clone()) {
            continue;
        }
        cx.warn(
            "S008",
            u.span,
            format!(
                "policy `{policy}` reads `{}` without an `operation` guard: it can fire on every sign-in and access, where `{}` is absent",
                u.attr, u.attr
            ),
            "not guarded by an operation test",
            Some(format!("guard it: {example}")),
        );
    }
}

/// Collects the attribute reads of `e` (checked as `c`) that are not under an operation guard.
fn unguarded_reads(
    file: &SourceFile,
    t: &Tenant,
    e: &Expr,
    c: &Cond,
    guarded: bool,
    out: &mut Vec<Unguarded>,
) {
    match (e, c) {
        (Expr::And(es), Cond::And(cs)) if es.len() == cs.len() => {
            // A conjunct that is false on every other event guards its siblings.
            let g = guarded || cs.iter().any(Cond::only_on_operations);
            for (e, c) in es.iter().zip(cs) {
                unguarded_reads(file, t, e, c, g, out);
            }
        }
        (Expr::Or(es), Cond::Or(cs)) if es.len() == cs.len() => {
            for (e, c) in es.iter().zip(cs) {
                unguarded_reads(file, t, e, c, guarded, out);
            }
        }
        (Expr::Not(e), Cond::Not(c)) => unguarded_reads(file, t, e, c, guarded, out),
        _ if guarded => {}
        (Expr::Cmp(n, ..) | Expr::In(n, ..) | Expr::Flag(n), _)
            if t.attributes.contains_key(&n.text) =>
        {
            out.push(Unguarded {
                attr: n.text.clone(),
                span: n.span,
            });
        }
        (Expr::Script(s), Cond::Script(sc)) => {
            for site in sc.read_sites() {
                if let CtxField::Attr(a) = &site.field {
                    out.push(Unguarded {
                        attr: a.clone(),
                        span: script_span(file, s, site.line, site.column, site.width),
                    });
                }
            }
        }
        _ => {}
    }
}
