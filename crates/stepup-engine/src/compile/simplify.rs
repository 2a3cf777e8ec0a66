//! Pass 2: flatten nested `and`/`or`, drop double negations, fold constants (an empty operation
//! set is never true).

use super::CExpr;
use crate::tri::Tri;

/// Simplifies a condition without changing its three-valued meaning.
#[must_use]
pub fn simplify(e: CExpr) -> CExpr {
    match e {
        CExpr::And(v) => {
            let mut out = Vec::with_capacity(v.len());
            for c in v.into_vec().into_iter().map(simplify) {
                match c {
                    CExpr::Const(Tri::True) => {}
                    CExpr::Const(Tri::False) => return CExpr::Const(Tri::False),
                    CExpr::And(inner) => out.extend(inner.into_vec()),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => CExpr::Const(Tri::True),
                1 => out.pop().unwrap_or(CExpr::Const(Tri::True)),
                _ => CExpr::And(out.into_boxed_slice()),
            }
        }
        CExpr::Or(v) => {
            let mut out = Vec::with_capacity(v.len());
            for c in v.into_vec().into_iter().map(simplify) {
                match c {
                    CExpr::Const(Tri::False) => {}
                    CExpr::Const(Tri::True) => return CExpr::Const(Tri::True),
                    CExpr::Or(inner) => out.extend(inner.into_vec()),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => CExpr::Const(Tri::False),
                1 => out.pop().unwrap_or(CExpr::Const(Tri::False)),
                _ => CExpr::Or(out.into_boxed_slice()),
            }
        }
        CExpr::Not(c) => match simplify(*c) {
            CExpr::Not(inner) => *inner,
            CExpr::Const(t) => CExpr::Const(t.not()),
            other => CExpr::Not(Box::new(other)),
        },
        CExpr::Op(s) if s.is_empty() => CExpr::Const(Tri::False),
        CExpr::Res(s) if s.is_empty() => CExpr::Const(Tri::False),
        other => other,
    }
}
