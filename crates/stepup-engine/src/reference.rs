//! The reference interpreter: the test and benchmark oracle. It evaluates every policy of the
//! resolved set over the model, directly and obviously, every predicate (no short-circuit, no
//! index, no interning). It never serves a decision: [`crate::CompiledSet::decide_reference`]
//! runs the decision pipeline with it in place of the tree walk, so that the tests can compare.

use stepup_dsl::model::Cond;

use crate::facts::Facts;
use crate::tri::Tri;

/// Evaluates a condition.
pub(crate) fn eval(c: &Cond, f: &Facts<'_>) -> Tri {
    match c {
        Cond::And(v) => {
            let vals: Vec<Tri> = v.iter().map(|c| eval(c, f)).collect();
            if vals.contains(&Tri::False) {
                Tri::False
            } else if vals.contains(&Tri::Unknown) {
                Tri::Unknown
            } else {
                Tri::True
            }
        }
        Cond::Or(v) => {
            let vals: Vec<Tri> = v.iter().map(|c| eval(c, f)).collect();
            if vals.contains(&Tri::True) {
                Tri::True
            } else if vals.contains(&Tri::Unknown) {
                Tri::Unknown
            } else {
                Tri::False
            }
        }
        Cond::Not(c) => eval(c, f).not(),
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
    }
}

/// Why a condition that evaluated to unknown is unknown (see [`crate::tree::unknown_reasons`]).
pub(crate) fn unknown_reasons(c: &Cond, f: &Facts<'_>, out: &mut Vec<String>) {
    match c {
        Cond::And(v) | Cond::Or(v) => {
            for c in v {
                if eval(c, f) == Tri::Unknown {
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
