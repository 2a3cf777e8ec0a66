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

/// `operation == op`.
fn guard(op: &str) -> Expr {
    let name = |text: &str| Name {
        text: text.into(),
        span: Span::new(0, 0),
    };
    Expr::Cmp(name("operation"), CmpOp::Eq, Lit::Name(name(op)))
}

/// `operation == op and e`, flat.
fn guarded(op: &str, e: &Expr) -> Expr {
    match e {
        Expr::And(v) => Expr::And(
            std::iter::once(guard(op))
                .chain(v.iter().cloned())
                .collect(),
        ),
        _ => Expr::And(vec![guard(op), e.clone()]),
    }
}

/// The help's example: the condition with an operation guard on what reads the attributes,
/// so that it means on that operation what the policy meant and elsewhere what it did: each
/// alternative of a top-level `or` that reads one is guarded on its own (`amount > 1000 or
/// new_device` keeps its device step-up), any other condition whole (under a `not`, the read
/// alone, guarded, turned a large payout's test into a small one's).
fn guarded_example(file: &SourceFile, t: &Tenant, op: &str, e: &Expr, c: &Cond) -> String {
    let text = match (e, c) {
        // Each guarded alternative in parentheses, which `and` binding tighter makes optional
        // but a reader does not.
        (Expr::Or(es), Cond::Or(cs)) if es.len() == cs.len() => es
            .iter()
            .zip(cs)
            .map(|(e, c)| {
                let mut reads = Vec::new();
                unguarded_reads(file, t, e, c, false, &mut reads);
                if reads.is_empty() {
                    crate::fmt::expr(e)
                } else {
                    format!("({})", crate::fmt::expr(&guarded(op, e)))
                }
            })
            .collect::<Vec<_>>()
            .join(" or "),
        _ => crate::fmt::expr(&guarded(op, e)),
    };
    if text.chars().count() <= MAX_EXAMPLE {
        format!("`when {text}`")
    } else {
        format!("`operation == {op} and ...` around what reads it")
    }
}

/// The operation the example guards with: the first the condition names that is not routine,
/// else the catalog's first sensitive, admin, or any operation (an example: the help says to
/// name the operation that carries the attribute).
fn example_operation<'t>(t: &'t Tenant, e: &Expr) -> &'t str {
    fn named<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
        match e {
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|c| named(c, out)),
            Expr::Not(a) => named(a, out),
            Expr::Cmp(n, CmpOp::Eq, Lit::Name(v)) if n.text == "operation" => out.push(&v.text),
            Expr::In(n, items, _) if n.text == "operation" => {
                out.extend(items.iter().filter_map(|l| match l {
                    Lit::Name(v) => Some(v.text.as_str()),
                    _ => None,
                }));
            }
            _ => {}
        }
    }
    let mut names = Vec::new();
    named(e, &mut names);
    let by_class = |class: OperationClass| t.operations.iter().find(|(_, c)| **c == class);
    names
        .iter()
        .find_map(|n| {
            t.operations
                .get_key_value(*n)
                .filter(|(_, c)| **c != OperationClass::Routine)
        })
        .or_else(|| by_class(OperationClass::Sensitive))
        .or_else(|| by_class(OperationClass::Admin))
        .or_else(|| t.operations.iter().next())
        .map_or("payout", |(n, _)| n.as_str())
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
    if found.is_empty() {
        return;
    }
    let op = example_operation(t, e);
    let example = guarded_example(cx.file, t, op, e, c);
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
            Some(format!(
                "guard it with the operation that carries `{}`, e.g. {example}",
                u.attr
            )),
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
