//! Pass 3: cheap tests first. Kleene logic makes `and`/`or` order-independent, so children are
//! sorted by estimated cost: interned ids, then attributes, then signals and history, then scripts.

use super::CExpr;

/// Estimated cost of evaluating a condition.
#[must_use]
pub fn cost(e: &CExpr) -> u32 {
    match e {
        CExpr::Const(_) => 0,
        CExpr::Op(_) | CExpr::Res(_) => 1,
        CExpr::AttrNum(..) | CExpr::AttrStr(..) | CExpr::AttrBool(..) => 2,
        CExpr::FirstAccess(..) => 4,
        CExpr::Signal(..) => 8,
        CExpr::Risk(..) => 20,
        CExpr::Script(_) => 1_000,
        CExpr::Not(c) => cost(c),
        CExpr::And(v) | CExpr::Or(v) => v.iter().map(cost).fold(0u32, u32::saturating_add),
    }
}

/// Orders children cheapest first, recursively.
#[must_use]
pub fn order(e: CExpr) -> CExpr {
    match e {
        CExpr::And(v) => CExpr::And(sorted(v)),
        CExpr::Or(v) => CExpr::Or(sorted(v)),
        CExpr::Not(c) => CExpr::Not(Box::new(order(*c))),
        other => other,
    }
}

fn sorted(v: Box<[CExpr]>) -> Box<[CExpr]> {
    let mut v: Vec<CExpr> = v.into_vec().into_iter().map(order).collect();
    v.sort_by_key(cost);
    v.into_boxed_slice()
}
