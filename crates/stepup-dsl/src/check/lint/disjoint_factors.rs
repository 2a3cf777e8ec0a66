//! S007 `disjoint-factors`: two enforced policies can fire on the same event but no factor
//! satisfies both.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::diag::{Diagnostic, SourceFile, Span};
use crate::model::{Cond, Policy, Tenant};

/// A checked policy with where its name is written, for lints across policies.
#[derive(Clone)]
pub(in crate::check) struct Located {
    pub(in crate::check) name: String,
    file: Arc<SourceFile>,
    span: Span,
    from_app: bool,
    /// An application's policy the lint sees exactly as the tenant's policy it replaces.
    pub(in crate::check) like_tenant: bool,
    /// Report-only: never merged with the others, so it conflicts with none.
    report_only: bool,
    /// The factors that can satisfy it (allowed and strong enough).
    factors: stepup_core::FactorSet,
    /// Operations it is restricted to, if a top-level conjunct says so.
    ops: Option<BTreeSet<String>>,
    /// Resource classes it is restricted to (accesses only), if a top-level conjunct says so.
    res: Option<BTreeSet<String>>,
}

impl Located {
    pub(in crate::check) fn new(
        p: &Policy,
        t: &Tenant,
        file: &Arc<SourceFile>,
        span: Span,
        from_app: bool,
    ) -> Self {
        let (mut ops, mut res): (Option<BTreeSet<String>>, Option<BTreeSet<String>>) = (None, None);
        let conjuncts: &[Cond] = match &*p.condition {
            Cond::And(v) => v,
            other => std::slice::from_ref(other),
        };
        let narrow = |slot: &mut Option<BTreeSet<String>>, s: BTreeSet<String>| {
            *slot = Some(match slot.take() {
                Some(prev) => prev.intersection(&s).cloned().collect(),
                None => s,
            });
        };
        for c in conjuncts {
            match c {
                Cond::OperationIn(s) => narrow(&mut ops, s.clone()),
                // The built-in `admin_default`: the tenant's operations of the class.
                Cond::OperationClassIs(class) => narrow(
                    &mut ops,
                    t.operations
                        .iter()
                        .filter(|(_, c)| *c == class)
                        .map(|(name, _)| name.clone())
                        .collect(),
                ),
                Cond::ResourceIn(s) => narrow(&mut res, s.clone()),
                Cond::FirstAccess(r, _) => narrow(&mut res, BTreeSet::from([r.clone()])),
                _ => {}
            }
        }
        Located {
            name: p.name.clone(),
            file: Arc::clone(file),
            span,
            from_app,
            like_tenant: false,
            report_only: p.report_only,
            factors: p
                .requirement
                .factors
                .intersect(t.strengths.reaching(p.requirement.aal)),
            ops,
            res,
        }
    }

    /// Whether the lint sees both alike: same factors and same guards.
    pub(in crate::check) fn same_shape(&self, o: &Located) -> bool {
        self.factors == o.factors
            && self.ops == o.ops
            && self.res == o.res
            && self.report_only == o.report_only
    }

    /// Whether some event can make both fire (conservative: `true` unless their guards exclude it).
    fn may_meet(&self, o: &Located) -> bool {
        match (&self.ops, &self.res, &o.ops, &o.res) {
            (Some(a), _, Some(b), _) => !a.is_disjoint(b),
            (_, Some(a), _, Some(b)) => !a.is_disjoint(b),
            (Some(_), _, _, Some(_)) | (_, Some(_), Some(_), _) => false,
            _ => true,
        }
    }
}

/// The most S007 pairs listed for one scope: the pairs grow with the square of the policies
/// (20,000 policies alternating two factors made 10^8 warnings, and the check ran out of
/// memory), and past the hundred a file shows, one more says nothing new.
pub(in crate::check) const MAX_DISJOINT_PAIRS: usize = 1_000;

/// S007: two policies that can fire on the same event but share no factor that satisfies both —
/// their merge allows nothing, so the user is refused. `in_app`: the scope is an application's
/// (the tenant's policies, replaced by name, and the application's own).
pub(in crate::check) fn disjoint_factors(
    diags: &mut Vec<Diagnostic>,
    scope: &[Located],
    in_app: bool,
) {
    disjoint_groups(diags, scope, in_app);
    let tenants = |x: &Located| !x.from_app || x.like_tenant;
    // The distinct factor sets of the scope (a handful): a policy whose factors meet every one
    // of them has no pair to report, so only the others are compared with every later policy
    // (a tenant whose policies all allow `any` factor costs one pass, not one per pair).
    let mut sets: Vec<stepup_core::FactorSet> = Vec::new();
    for x in scope {
        if !sets.contains(&x.factors) {
            sets.push(x.factors);
        }
    }
    // Who can meet whom: the policies guarded by each operation and each resource class, and
    // the unguarded ones (which meet every policy). A policy is compared only with those it can
    // meet by these (`may_meet` still decides), so policies each guarding operations of their
    // own cost one pass, not one comparison per pair (10,000 such policies alternating two
    // disjoint factor sets took seconds).
    let mut by_op: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_res: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut unguarded: Vec<usize> = Vec::new();
    for (j, b) in scope.iter().enumerate() {
        for o in b.ops.iter().flatten() {
            by_op.entry(o.as_str()).or_default().push(j);
        }
        for r in b.res.iter().flatten() {
            by_res.entry(r.as_str()).or_default().push(j);
        }
        if b.ops.is_none() && b.res.is_none() {
            unguarded.push(j);
        }
    }
    let mut pairs = 0usize;
    let mut met: Vec<usize> = Vec::new();
    for (i, a) in scope.iter().enumerate() {
        // A policy no factor can satisfy on its own is S012's to report (with it, any pair
        // allows nothing, which says nothing new).
        if a.factors.is_empty() || sets.iter().all(|s| !a.factors.intersect(*s).is_empty()) {
            continue;
        }
        met.clear();
        if a.ops.is_none() && a.res.is_none() {
            met.extend(i + 1..scope.len());
        } else {
            let guarded = a
                .ops
                .iter()
                .flatten()
                .filter_map(|o| by_op.get(o.as_str()))
                .chain(
                    a.res
                        .iter()
                        .flatten()
                        .filter_map(|r| by_res.get(r.as_str())),
                );
            for list in guarded.chain(std::iter::once(&unguarded)) {
                met.extend(list.iter().copied().filter(|j| *j > i));
            }
            met.sort_unstable();
            met.dedup();
        }
        for b in met
            .iter()
            .filter_map(|j| scope.get(*j))
            .filter(|b| !b.factors.is_empty())
        {
            if pairs == MAX_DISJOINT_PAIRS {
                diags.push(
                    Diagnostic::warning(
                        "S007",
                        &b.file,
                        b.span,
                        format!("more policies can fire together with no factor that satisfies both: the first {MAX_DISJOINT_PAIRS} pairs are listed, and the search stopped there"),
                    )
                    .label("and more")
                    .help("give the policies that can fire together a factor in common (the pairs listed show which)".to_string()),
                );
                return;
            }
            // Tenant pairs are reported once, on the tenant, not again for each application
            // (also an application that changes nothing, or overrides without changing factors).
            let reported_elsewhere = in_app && tenants(a) && tenants(b);
            let enforced = !a.report_only && !b.report_only;
            if enforced
                && a.factors.intersect(b.factors).is_empty()
                && !reported_elsewhere
                && a.may_meet(b)
            {
                pairs += 1;
                diags.push(
                    Diagnostic::warning("S007", &b.file, b.span, format!("policies `{}` and `{}` can fire together but no factor satisfies both", a.name, b.name))
                        .label("disjoint factors")
                        .help(format!("`{}` allows {} and `{}` allows {}: when both fire, the merged requirement allows no factor and the action is refused", a.name, a.factors, b.name, b.factors)),
                );
            }
        }
    }
}

/// S007 for three or more policies: policies that can fire on one event, each two sharing a
/// factor, but no factor shared by all (`sms|totp`, `totp|webauthn`, `sms|webauthn`): the merge
/// allows nothing, and the user is refused, where no pair says so. The events are grouped by
/// the operations and resource classes the scope's guards name (and every other event); each
/// group's enforced policies are intersected once.
pub(in crate::check) fn disjoint_groups(
    diags: &mut Vec<Diagnostic>,
    scope: &[Located],
    in_app: bool,
) {
    let tenants = |x: &Located| !x.from_app || x.like_tenant;
    // An application that changes nothing the lint looks at has the tenant's groups, reported
    // on the tenant.
    if in_app && scope.iter().all(tenants) {
        return;
    }
    // A policy no factor can satisfy on its own is S012's to report: with it, any group
    // allows nothing, which says nothing new.
    let enforced: Vec<&Located> = scope
        .iter()
        .filter(|x| !x.report_only && !x.factors.is_empty())
        .collect();
    // Each policy is listed under the operations or resource classes its guard names, or
    // under every event when it has none: one pass, not one per group.
    let mut any: Vec<usize> = Vec::new();
    let mut by_op: BTreeMap<&String, Vec<usize>> = BTreeMap::new();
    let mut by_res: BTreeMap<&String, Vec<usize>> = BTreeMap::new();
    for (i, x) in enforced.iter().enumerate() {
        match (&x.ops, &x.res) {
            (None, None) => any.push(i),
            (Some(ops), None) => ops.iter().for_each(|o| by_op.entry(o).or_default().push(i)),
            (None, Some(res)) => res
                .iter()
                .for_each(|r| by_res.entry(r).or_default().push(i)),
            (Some(_), Some(_)) => {}
        }
    }
    let factors = |i: &usize| enforced.get(*i).map(|x| x.factors);
    let any_meet = any.iter().filter_map(factors).reduce(|a, b| a.intersect(b));
    // (what the group's events are, its own policies): each group also has the `any` ones.
    let none: Vec<usize> = Vec::new();
    let groups = by_op
        .iter()
        .map(|(op, v)| (format!("operation `{op}`"), v))
        .chain(by_res.iter().map(|(r, v)| (format!("access to `{r}`"), v)))
        .chain(std::iter::once(("any event".to_string(), &none)));
    let mut seen: BTreeSet<Vec<usize>> = BTreeSet::new();
    for (event, own) in groups {
        if own.len() + any.len() < 3 {
            continue;
        }
        // The common factors, found before anything is built: most groups have some.
        let meet = own
            .iter()
            .filter_map(factors)
            .chain(any_meet)
            .reduce(|a, b| a.intersect(b));
        if meet.is_none_or(|m| !m.is_empty()) {
            continue;
        }
        let mut group: Vec<usize> = own.iter().chain(&any).copied().collect();
        group.sort_unstable();
        if !seen.insert(group.clone()) {
            continue;
        }
        let list: Vec<&Located> = group
            .iter()
            .filter_map(|&i| enforced.get(i).copied())
            .collect();
        let pair_disjoint = list.iter().enumerate().any(|(i, a)| {
            list.iter()
                .skip(i + 1)
                .any(|b| a.factors.intersect(b.factors).is_empty())
        });
        if pair_disjoint || (in_app && list.iter().all(|x| tenants(x))) {
            continue;
        }
        let Some(last) = list.last() else { continue };
        let mut names: Vec<String> = list
            .iter()
            .take(6)
            .map(|x| format!("`{}`", x.name))
            .collect();
        if list.len() > 6 {
            names.push(format!("{} more", list.len() - 6));
        }
        diags.push(
            Diagnostic::warning(
                "S007",
                &last.file,
                last.span,
                format!(
                    "policies {} can fire together ({event}) but no factor satisfies them all",
                    names.join(", ")
                ),
            )
            .label("disjoint factors")
            .help(format!(
                "each two of them share a factor, but all of them share none: when they fire together the merged requirement allows no factor and the action is refused ({})",
                list.iter()
                    .map(|x| format!("`{}` allows {}", x.name, x.factors))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;

    /// The pairs S007 reports, found by comparing every policy with every later one (the lint
    /// before it compared only policies whose guards can meet).
    fn every_pair(scope: &[Located], in_app: bool) -> Vec<String> {
        let tenants = |x: &Located| !x.from_app || x.like_tenant;
        let mut out = Vec::new();
        for (i, a) in scope.iter().enumerate() {
            for b in scope.iter().skip(i + 1) {
                if out.len() == MAX_DISJOINT_PAIRS {
                    return out;
                }
                if !a.factors.is_empty()
                    && !b.factors.is_empty()
                    && !a.report_only
                    && !b.report_only
                    && a.factors.intersect(b.factors).is_empty()
                    && !(in_app && tenants(a) && tenants(b))
                    && a.may_meet(b)
                {
                    out.push(format!(
                        "policies `{}` and `{}` can fire together but no factor satisfies both",
                        a.name, b.name
                    ));
                }
            }
        }
        out
    }

    /// Comparing only the policies whose guards can meet reports every pair, in the order,
    /// that comparing all of them does: scopes drawn with guards on a few operations and
    /// resource classes (or none), a few factor sets, application and report-only policies.
    #[test]
    fn the_indexed_search_reports_the_pairs_of_the_whole_search() {
        let file = Arc::new(SourceFile {
            name: "t.policy".into(),
            text: String::new(),
        });
        let sets = [
            0b000_0011u8,
            0b000_1100,
            0b011_0000,
            0b000_0110,
            0b111_1111,
            0,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n).unwrap()
        };
        let mut checked = 0;
        for round in 0..400 {
            let len = 1 + next(30);
            let names = |next: &mut dyn FnMut(u64) -> usize, kind: &str| match next(3) {
                0 => None,
                _ => Some(
                    (0..1 + next(2))
                        .map(|_| format!("{kind}{}", next(4)))
                        .collect(),
                ),
            };
            let scope: Vec<Located> = (0..len)
                .map(|i| {
                    let ops = names(&mut next, "o");
                    let res = if next(3) == 0 {
                        names(&mut next, "r")
                    } else {
                        None
                    };
                    Located {
                        name: format!("p{i}"),
                        file: Arc::clone(&file),
                        span: Span::new(0, 0),
                        from_app: next(3) == 0,
                        like_tenant: next(4) == 0,
                        report_only: next(6) == 0,
                        factors: stepup_core::FactorSet::from_bits(sets[next(6)]),
                        ops,
                        res,
                    }
                })
                .collect();
            let in_app = round % 2 == 1;
            let mut diags = Vec::new();
            disjoint_factors(&mut diags, &scope, in_app);
            let pairs: Vec<String> = diags
                .iter()
                .filter(|d| d.message.starts_with("policies `") && d.message.contains(" and `"))
                .map(|d| d.message.clone())
                .collect();
            let want = every_pair(&scope, in_app);
            assert_eq!(pairs, want, "round {round}");
            checked += want.len();
        }
        assert!(checked > 100, "the drawn scopes report pairs: {checked}");
    }
}
