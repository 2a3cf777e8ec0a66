//! The reference interpreter: evaluates every policy of the resolved set over the model,
//! directly and obviously, evaluating every predicate (no short-circuit, no index). It is the
//! oracle the compiled tree is property-tested against, and it produces explanations.

use stepup_dsl::model::{Cond, Policy, SignalKind};

use crate::decision::{PolicyTrace, PredicateTrace};
use crate::facts::Facts;
use crate::tri::Tri;

/// Evaluates a condition, recording each leaf's value when `trace` is given.
pub fn eval(c: &Cond, f: &Facts<'_>, trace: &mut Option<&mut Vec<PredicateTrace>>) -> Tri {
    match c {
        Cond::And(v) => {
            let vals: Vec<Tri> = v.iter().map(|c| eval(c, f, trace)).collect();
            if vals.contains(&Tri::False) {
                Tri::False
            } else if vals.contains(&Tri::Unknown) {
                Tri::Unknown
            } else {
                Tri::True
            }
        }
        Cond::Or(v) => {
            let vals: Vec<Tri> = v.iter().map(|c| eval(c, f, trace)).collect();
            if vals.contains(&Tri::True) {
                Tri::True
            } else if vals.contains(&Tri::Unknown) {
                Tri::Unknown
            } else {
                Tri::False
            }
        }
        Cond::Not(c) => eval(c, f, trace).not(),
        leaf => {
            let v = leaf_value(leaf, f);
            if let Some(t) = trace.as_deref_mut() {
                let note = if v == Tri::Unknown {
                    let mut why = Vec::new();
                    unknown_reasons(leaf, f, &mut why);
                    why.pop()
                } else {
                    None
                };
                t.push(PredicateTrace {
                    predicate: describe(leaf),
                    value: v,
                    note,
                });
            }
            v
        }
    }
}

fn leaf_value(leaf: &Cond, f: &Facts<'_>) -> Tri {
    match leaf {
        Cond::OperationIn(s) => Tri::from(f.operation().is_some_and(|o| s.contains(o))),
        Cond::OperationClassIs(k) => Tri::from(f.operation_class() == Some(*k)),
        Cond::ResourceIn(s) => Tri::from(f.resource().is_some_and(|r| s.contains(r))),
        Cond::Risk(op, v) => f.risk(*op, *v),
        Cond::AttrNum(n, op, v) => f.attr_num(n, *op, *v),
        Cond::AttrStrIn(n, s) => f.attr_str(n, s),
        Cond::AttrBool(n, b) => f.attr_bool(n, *b),
        Cond::Signal(k, d) => f.signal(*k, *d),
        Cond::FirstAccess(r, w) => f.first_access(r, *w),
        Cond::Script(s) => f.script(s),
        Cond::And(_) | Cond::Or(_) | Cond::Not(_) => Tri::Unknown,
    }
}

/// Why a condition that evaluated to unknown is unknown (see [`crate::tree::unknown_reasons`]).
pub fn unknown_reasons(c: &Cond, f: &Facts<'_>, out: &mut Vec<String>) {
    match c {
        Cond::And(v) | Cond::Or(v) => {
            for c in v {
                if eval(c, f, &mut None) == Tri::Unknown {
                    unknown_reasons(c, f, out);
                }
            }
        }
        Cond::Not(c) => unknown_reasons(c, f, out),
        Cond::Risk(..) => out.push(f.risk_reason()),
        Cond::AttrNum(n, ..) | Cond::AttrStrIn(n, _) | Cond::AttrBool(n, _) => {
            out.push(f.attr_reason(n));
        }
        Cond::Signal(k, _) => out.push(f.signals.unknown_reason(*k)),
        Cond::FirstAccess(r, _) => out.push(f.first_access_reason(r)),
        Cond::Script(s) => out.push(f.script_reason(s)),
        Cond::OperationIn(_) | Cond::OperationClassIs(_) | Cond::ResourceIn(_) => {}
    }
}

/// A leaf as written in the policy language.
#[must_use]
pub fn describe(c: &Cond) -> String {
    let list =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    match c {
        Cond::OperationIn(s) if s.len() == 1 => format!("operation == {}", list(s)),
        Cond::OperationIn(s) => format!("operation in [{}]", list(s)),
        Cond::OperationClassIs(k) => format!("operation is {}", k.as_str()),
        Cond::ResourceIn(s) if s.len() == 1 => format!("resource == {}", list(s)),
        Cond::ResourceIn(s) => format!("resource in [{}]", list(s)),
        Cond::Risk(op, v) => format!("risk {} {v}", op.as_str()),
        Cond::AttrNum(n, op, v) => format!("{n} {} {v}", op.as_str()),
        Cond::AttrStrIn(n, s) => format!("{n} in [{}]", list(s)),
        Cond::AttrBool(n, b) => format!("{n} == {b}"),
        Cond::Signal(SignalKind::NewCountry, d) => format!("new_country({d}d)"),
        Cond::Signal(k, _) => k.as_str().to_string(),
        Cond::FirstAccess(r, None) => format!("first_access({r})"),
        Cond::FirstAccess(r, Some(d)) => format!("first_access({r}, {d}d)"),
        Cond::Script(s) => format!("script {}", stepup_dsl::fmt::quote(&s.source)),
        Cond::And(_) | Cond::Or(_) | Cond::Not(_) => "(condition)".to_string(),
    }
}

/// The fired policies (indices), evaluating every policy in order.
pub fn fired(policies: &[std::sync::Arc<Policy>], f: &Facts<'_>, is_step_up: bool) -> Vec<usize> {
    if is_step_up {
        return Vec::new();
    }
    policies
        .iter()
        .enumerate()
        .filter(|(_, p)| eval(&p.condition, f, &mut None).fires())
        .map(|(i, _)| i)
        .collect()
}

/// Traces every policy.
pub fn trace(
    policies: &[std::sync::Arc<Policy>],
    f: &Facts<'_>,
    is_step_up: bool,
) -> Vec<PolicyTrace> {
    policies
        .iter()
        .map(|p| {
            let mut preds = Vec::new();
            let v = if is_step_up {
                Tri::False
            } else {
                eval(&p.condition, f, &mut Some(&mut preds))
            };
            PolicyTrace {
                name: p.name.clone(),
                origin: format!("{}:{}", p.origin.file, p.origin.line),
                condition: v,
                fired: v.fires(),
                predicates: preds,
                requirement: format!(
                    "{} factor {} {}",
                    p.requirement.aal, p.requirement.factors, p.requirement.validity
                ),
                satisfied: None,
                why: None,
                report_only: p.report_only,
            }
        })
        .collect()
}
