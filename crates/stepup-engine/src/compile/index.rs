//! Pass 4: which policies can fire for which event. A conservative guard is computed per
//! policy (an operation test restricts it to those operations, a resource test to accesses of
//! those resources); an event then examines only its bucket. Below [`INDEX_THRESHOLD`] policies
//! the guard analysis is skipped: every bucket holds every policy.

use super::CExpr;

/// Policy count from which the guard analysis pays.
pub const INDEX_THRESHOLD: usize = 8;

/// The ids a guard admits (`Some`: sorted, without repeats).
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Nothing,
    Some(Vec<u32>),
    Everything,
}

impl Filter {
    /// The ids of one test, sorted.
    fn of(ids: &[u32]) -> Filter {
        let mut v = ids.to_vec();
        v.sort_unstable();
        v.dedup();
        Filter::Some(v)
    }
    fn and(self, o: Filter) -> Filter {
        match (self, o) {
            (Filter::Nothing, _) | (_, Filter::Nothing) => Filter::Nothing,
            (Filter::Everything, x) | (x, Filter::Everything) => x,
            (Filter::Some(a), Filter::Some(b)) => {
                // Both sorted: one merge, linear (a search per id was quadratic in a test of
                // tens of thousands of operations, found by a review: 33 s to compile).
                let mut v = Vec::with_capacity(a.len().min(b.len()));
                let (mut i, mut j) = (0, 0);
                while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
                    match x.cmp(&y) {
                        std::cmp::Ordering::Less => i += 1,
                        std::cmp::Ordering::Greater => j += 1,
                        std::cmp::Ordering::Equal => {
                            v.push(x);
                            i += 1;
                            j += 1;
                        }
                    }
                }
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
}

/// Where a policy may fire: on sign-ins or not, and on which operations and resources.
#[derive(Debug, Clone)]
pub struct Guard {
    sign_in: bool,
    ops: Filter,
    res: Filter,
}

impl Guard {
    /// Anywhere.
    #[must_use]
    pub fn all() -> Guard {
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

/// The guard of a condition: conservative (a policy may fire wherever it admits).
#[must_use]
pub fn guard(e: &CExpr) -> Guard {
    match e {
        CExpr::Op(ids) => Guard {
            sign_in: false,
            ops: Filter::of(ids),
            res: Filter::Nothing,
        },
        CExpr::Res(ids) => Guard {
            sign_in: false,
            ops: Filter::Nothing,
            res: Filter::of(ids),
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
#[derive(Debug, Default)]
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
    /// The attribute indexes of each operation's bucket (pass 5), built on the bucket's first
    /// decision: a set of many operations compiles without paying for the ones never asked.
    pub by_op_prune: Box<[PruneSlot]>,
    /// The same for `op_other`.
    pub op_other_prune: PruneSlot,
    /// The 64-bit words the attribute indexes of this scope may still take.
    pub prune_budget: std::sync::atomic::AtomicUsize,
}

impl Clone for Index {
    fn clone(&self) -> Self {
        Index {
            sign_in: self.sign_in.clone(),
            by_op: self.by_op.clone(),
            op_other: self.op_other.clone(),
            by_res: self.by_res.clone(),
            res_other: self.res_other.clone(),
            by_op_prune: self.by_op_prune.clone(),
            op_other_prune: self.op_other_prune.clone(),
            prune_budget: std::sync::atomic::AtomicUsize::new(
                self.prune_budget.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

/// A bucket's attribute indexes, once built (`None`: not worth building).
pub type PruneSlot = std::sync::OnceLock<Option<super::prune::Prune>>;

/// The attribute indexes of `bucket`, built on first use from the scope's final conditions.
#[must_use]
pub fn prune_of<'s>(
    slot: &'s PruneSlot,
    bucket: &[u32],
    exprs: &[std::sync::Arc<CExpr>],
    budget: &std::sync::atomic::AtomicUsize,
) -> Option<&'s super::prune::Prune> {
    slot.get_or_init(|| {
        if bucket.len() < super::prune::PRUNE_THRESHOLD {
            return None;
        }
        let conds: Vec<&CExpr> = bucket
            .iter()
            .filter_map(|&i| exprs.get(i as usize).map(|e| &**e))
            .collect();
        super::prune::build(&conds, budget)
    })
    .as_ref()
}

fn index_of(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Builds the index of a scope from its policies' guards, in policy order (below
/// [`INDEX_THRESHOLD`] policies, pass [`Guard::all`] for each).
#[must_use]
pub fn build(guards: &[&Guard], n_ops: usize, n_res: usize) -> Index {
    // Each policy into the buckets its guard admits, in policy order: one pass over the
    // policies, not one per operation.
    let mut by_op: Vec<Vec<u32>> = vec![Vec::new(); n_ops];
    let mut by_res: Vec<Vec<u32>> = vec![Vec::new(); n_res];
    let (mut sign_in, mut op_other, mut res_other) = (Vec::new(), Vec::new(), Vec::new());
    let fill = |f: &Filter, buckets: &mut [Vec<u32>], other: &mut Vec<u32>, i: u32| match f {
        Filter::Nothing => {}
        Filter::Some(ids) => {
            for &k in ids {
                if let Some(b) = buckets.get_mut(k as usize)
                    && b.last() != Some(&i)
                {
                    b.push(i);
                }
            }
        }
        Filter::Everything => {
            buckets.iter_mut().for_each(|b| b.push(i));
            other.push(i);
        }
    };
    for (i, g) in guards.iter().enumerate() {
        let i = index_of(i);
        if g.sign_in {
            sign_in.push(i);
        }
        fill(&g.ops, &mut by_op, &mut op_other, i);
        fill(&g.res, &mut by_res, &mut res_other, i);
    }
    let boxed = |v: Vec<Vec<u32>>| v.into_iter().map(Vec::into_boxed_slice).collect();
    Index {
        sign_in: sign_in.into_boxed_slice(),
        by_op: boxed(by_op),
        op_other: op_other.into_boxed_slice(),
        by_res: boxed(by_res),
        res_other: res_other.into_boxed_slice(),
        by_op_prune: (0..n_ops).map(|_| PruneSlot::new()).collect(),
        op_other_prune: PruneSlot::new(),
        prune_budget: super::prune::MAX_WORDS_PER_SCOPE.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn and_keeps_the_ids_both_admit_whatever_order_the_tests_name_them_in() {
        let naive = |a: &[u32], b: &[u32]| {
            let mut v: Vec<u32> = a.iter().copied().filter(|x| b.contains(x)).collect();
            v.sort_unstable();
            v.dedup();
            if v.is_empty() {
                Filter::Nothing
            } else {
                Filter::Some(v)
            }
        };
        let lists: [&[u32]; 6] = [
            &[5, 1, 3, 3],
            &[3, 5],
            &[9, 8, 7],
            &[1],
            &[2, 4, 6, 8, 10, 1, 3],
            &[],
        ];
        for a in lists {
            for b in lists {
                assert_eq!(
                    Filter::of(a).and(Filter::of(b)),
                    naive(a, b),
                    "{a:?} and {b:?}"
                );
            }
        }
        // An intersection of two tests of 100,000 operations each is one merge.
        let big: Vec<u32> = (0..100_000).rev().collect();
        assert_eq!(
            Filter::of(&big).and(Filter::of(&big)),
            Filter::Some((0..100_000).collect())
        );
    }
}
