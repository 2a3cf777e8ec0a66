//! Pass 4: which policies can fire for which event. A conservative guard is computed per
//! policy (an operation test restricts it to those operations, a resource test to accesses of
//! those resources); an event then examines only its bucket. Below [`INDEX_THRESHOLD`] policies
//! the guard analysis is skipped: every bucket holds every policy.

use super::CExpr;

/// Policy count from which the guard analysis pays.
pub const INDEX_THRESHOLD: usize = 8;

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Nothing,
    Some(Vec<u32>),
    Everything,
}

impl Filter {
    fn and(self, o: Filter) -> Filter {
        match (self, o) {
            (Filter::Nothing, _) | (_, Filter::Nothing) => Filter::Nothing,
            (Filter::Everything, x) | (x, Filter::Everything) => x,
            (Filter::Some(a), Filter::Some(b)) => {
                let v: Vec<u32> = a.into_iter().filter(|x| b.contains(x)).collect();
                if v.is_empty() {
                    Filter::Nothing
                } else {
                    Filter::Some(v)
                }
            }
        }
    }
    fn or(self, o: Filter) -> Filter {
        match (self, o) {
            (Filter::Everything, _) | (_, Filter::Everything) => Filter::Everything,
            (Filter::Nothing, x) | (x, Filter::Nothing) => x,
            (Filter::Some(mut a), Filter::Some(b)) => {
                a.extend(b);
                a.sort_unstable();
                a.dedup();
                Filter::Some(a)
            }
        }
    }
    fn admits(&self, id: u32) -> bool {
        match self {
            Filter::Nothing => false,
            Filter::Some(v) => v.contains(&id),
            Filter::Everything => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Guard {
    sign_in: bool,
    ops: Filter,
    res: Filter,
}

impl Guard {
    fn all() -> Guard {
        Guard {
            sign_in: true,
            ops: Filter::Everything,
            res: Filter::Everything,
        }
    }
    fn and(self, o: Guard) -> Guard {
        Guard {
            sign_in: self.sign_in && o.sign_in,
            ops: self.ops.and(o.ops),
            res: self.res.and(o.res),
        }
    }
    fn or(self, o: Guard) -> Guard {
        Guard {
            sign_in: self.sign_in || o.sign_in,
            ops: self.ops.or(o.ops),
            res: self.res.or(o.res),
        }
    }
}

fn guard(e: &CExpr) -> Guard {
    match e {
        CExpr::Op(ids) => Guard {
            sign_in: false,
            ops: Filter::Some(ids.to_vec()),
            res: Filter::Nothing,
        },
        CExpr::Res(ids) => Guard {
            sign_in: false,
            ops: Filter::Nothing,
            res: Filter::Some(ids.to_vec()),
        },
        CExpr::Const(crate::tri::Tri::False) => Guard {
            sign_in: false,
            ops: Filter::Nothing,
            res: Filter::Nothing,
        },
        CExpr::And(v) => v.iter().map(guard).fold(Guard::all(), Guard::and),
        CExpr::Or(v) => v.iter().map(guard).fold(
            Guard {
                sign_in: false,
                ops: Filter::Nothing,
                res: Filter::Nothing,
            },
            Guard::or,
        ),
        // A negation, a signal, an attribute or a script may be true on any event.
        _ => Guard::all(),
    }
}

/// Drops the top-level operation tests of a condition: a policy with one is only ever in the
/// buckets of operations that pass it.
#[must_use]
pub fn drop_implied_op(e: CExpr) -> CExpr {
    match e {
        CExpr::Op(_) => CExpr::Const(crate::tri::Tri::True),
        CExpr::And(v) => {
            let kept: Vec<CExpr> = v
                .into_vec()
                .into_iter()
                .filter(|c| !matches!(c, CExpr::Op(_)))
                .collect();
            match kept.len() {
                0 => CExpr::Const(crate::tri::Tri::True),
                _ => CExpr::And(kept.into_boxed_slice()),
            }
        }
        other => other,
    }
}

/// Candidate policies per event, each list in policy order.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Policies that may fire on a sign-in.
    pub sign_in: Box<[u32]>,
    /// Per operation id.
    pub by_op: Vec<Box<[u32]>>,
    /// For operations that are not interned.
    pub op_other: Box<[u32]>,
    /// Per resource id.
    pub by_res: Vec<Box<[u32]>>,
    /// For resources that are not interned.
    pub res_other: Box<[u32]>,
    /// The attribute indexes of each operation's bucket (pass 5), when built.
    pub by_op_prune: Vec<Option<super::prune::Prune>>,
    /// The same for `op_other`.
    pub op_other_prune: Option<super::prune::Prune>,
}

impl Index {
    /// Builds the attribute indexes of the operation buckets over the final conditions.
    pub fn build_prunes(&mut self, exprs: &[CExpr]) {
        let prune = |bucket: &[u32]| {
            let conds: Vec<&CExpr> = bucket
                .iter()
                .filter_map(|&i| exprs.get(i as usize))
                .collect();
            super::prune::build(&conds)
        };
        self.by_op_prune = self.by_op.iter().map(|b| prune(b)).collect();
        self.op_other_prune = prune(&self.op_other);
    }
}

fn index_of(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Builds the index of a scope's conditions.
#[must_use]
pub fn build(exprs: &[CExpr], n_ops: usize, n_res: usize) -> Index {
    let guards: Vec<Guard> = if exprs.len() < INDEX_THRESHOLD {
        exprs.iter().map(|_| Guard::all()).collect()
    } else {
        exprs.iter().map(guard).collect()
    };
    let pick = |f: &dyn Fn(&Guard) -> bool| -> Box<[u32]> {
        guards
            .iter()
            .enumerate()
            .filter(|(_, g)| f(g))
            .map(|(i, _)| index_of(i))
            .collect()
    };
    Index {
        sign_in: pick(&|g| g.sign_in),
        by_op: (0..n_ops)
            .map(|k| pick(&|g| g.ops.admits(index_of(k))))
            .collect(),
        op_other: pick(&|g| g.ops == Filter::Everything),
        by_res: (0..n_res)
            .map(|k| pick(&|g| g.res.admits(index_of(k))))
            .collect(),
        res_other: pick(&|g| g.res == Filter::Everything),
        by_op_prune: Vec::new(),
        op_other_prune: None,
    }
}
