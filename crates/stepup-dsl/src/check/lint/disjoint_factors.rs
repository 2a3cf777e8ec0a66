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
        let conjuncts: &[Cond] = match &p.condition {
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
    let mut pairs = 0usize;
    for (i, a) in scope.iter().enumerate() {
        // A policy no factor can satisfy on its own is S012's to report (with it, any pair
        // allows nothing, which says nothing new).
        if a.factors.is_empty() || sets.iter().all(|s| !a.factors.intersect(*s).is_empty()) {
            continue;
        }
        for b in scope.iter().skip(i + 1).filter(|b| !b.factors.is_empty()) {
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
