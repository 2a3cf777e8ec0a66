//! Pass 2: each tenant's policies — names, requirements (AAL, factors, validity) and
//! conditions — and the lints of one policy and of the tenant's policies together.

use std::collections::BTreeMap;
use std::sync::Arc;

use stepup_core::{Aal, Factor, FactorSet, Requirement, Validity};

use super::expressions::check_expr;
use super::lint::{self, Located};
use super::{Ctx, MAX_VALIDITY_SECS, PolicyAt, mean};
use crate::ast::{self, Factors, ValidityAst};
use crate::diag::{Diagnostic, Span};
use crate::model::{ADMIN_DEFAULT_POLICY, Origin, Policy, Tenant};

/// Checks every tenant's policies, stores them in their tenant, and returns them located for
/// the lints across policies (the application pass needs the tenant's). Tenants are checked
/// apart (on several threads for large sets); their diagnostics come in tenant order, as
/// one after the other would give them.
pub(super) fn pass(
    tenants: &mut BTreeMap<String, Tenant>,
    policies: &BTreeMap<String, Vec<PolicyAt<'_>>>,
    diags: &mut Vec<Diagnostic>,
    parallel_from: usize,
) -> BTreeMap<String, Vec<Located>> {
    let work: Vec<(&String, &Tenant, &[PolicyAt<'_>])> = policies
        .iter()
        .filter_map(|(tname, list)| Some((tname, tenants.get(tname)?, list.as_slice())))
        .collect();
    let one = |(tname, tenant, list): &(&String, &Tenant, &[PolicyAt<'_>])| {
        check_tenant(tname, tenant, list)
    };
    let total: usize = work.iter().map(|(_, _, list)| list.len()).sum();
    let checked = stepup_core::threads::map_contained(&work, total >= parallel_from, one);
    let mut located: BTreeMap<String, Vec<Located>> = BTreeMap::new();
    let mut stored = Vec::new();
    for ((tname, _, list), result) in work.iter().zip(checked) {
        match result {
            Some(TenantChecked {
                policies,
                located: l,
                diags: d,
            }) => {
                diags.extend(d);
                if !l.is_empty() {
                    located.insert((*tname).clone(), l);
                }
                stored.push(((*tname).clone(), policies));
            }
            // A check that failed (a bug): the tenant's policies are not checked, an error.
            None => {
                if let Some(at) = list.first() {
                    diags.push(crate::syntax::invariant(
                        at.file,
                        at.policy.span,
                        "the policies of this tenant",
                    ));
                }
            }
        }
    }
    for (tname, checked) in stored {
        if let Some(t) = tenants.get_mut(&tname) {
            t.policies = checked;
        }
    }
    located
}

/// One tenant's checked policies, located, and the diagnostics they gave.
struct TenantChecked {
    policies: Vec<Arc<Policy>>,
    located: Vec<Located>,
    diags: Vec<Diagnostic>,
}

/// Checks one tenant's policies, in order, and the lints across them.
fn check_tenant(tname: &str, tenant: &Tenant, list: &[PolicyAt<'_>]) -> TenantChecked {
    #[cfg(test)]
    crate::fault("check_tenant", tname);
    let mut diags = Vec::new();
    let mut located = Vec::new();
    let mut checked = Vec::new();
    let mut names: BTreeMap<&str, Span> = BTreeMap::new();
    for at in list {
        let mut cx = Ctx {
            file: at.file,
            diags: &mut diags,
        };
        if at.policy.is_override {
            cx.err(
                "E001",
                at.policy.span,
                "`override` belongs in an application block",
                "not in a tenant",
                None,
            );
        }
        if let Some(n) = &at.policy.name
            && n.text == ADMIN_DEFAULT_POLICY
            && !at.policy.is_override
        {
            cx.err(
                "E030",
                n.span,
                "`admin_default` is the built-in policy for `admin` operations",
                "reserved name",
                Some(format!(
                    "configure it in tenant `{tname}` with `admin default require ...` or `admin default off`, or name this policy otherwise"
                )),
            );
        }
        if let Some(n) = &at.policy.name
            && names.insert(&n.text, n.span).is_some()
        {
            cx.err(
                "E008",
                n.span,
                format!("policy `{}` is defined twice in tenant `{tname}`", n.text),
                "second definition",
                Some("give each policy its own name".into()),
            );
        }
        if let Some(p) = check_policy(&mut cx, tenant, at) {
            let p = Arc::new(p);
            let span = at.policy.name.as_ref().map_or(at.policy.span, |n| n.span);
            located.push(Located::new(&p, tenant, at.file, span, false));
            checked.push(p);
        }
    }
    // The built-in `admin_default` is in force beside the written policies: a policy on an
    // admin operation whose factors it shares none with is refused at run time, so the lint
    // sees it too (first: a pair is reported on its later policy, which is written).
    if let (Some(builtin), Some(first)) = (tenant.builtin_admin_policy(), list.first()) {
        let span = first
            .policy
            .name
            .as_ref()
            .map_or(first.policy.span, |n| n.span);
        located.insert(0, Located::new(&builtin, tenant, first.file, span, false));
    }
    lint::disjoint_factors(&mut diags, &located, false);
    TenantChecked {
        policies: checked,
        located,
        diags,
    }
}

pub(super) fn check_validity_secs(cx: &mut Ctx<'_>, d: &ast::Dur) -> Option<u64> {
    match d.secs {
        Some(0) => {
            cx.err(
                "E012",
                d.span,
                "a duration of zero never satisfies anything",
                "zero",
                Some(
                    "write `every time` for no caching, or a positive duration such as `5m`".into(),
                ),
            );
            None
        }
        Some(s) if s <= MAX_VALIDITY_SECS => Some(s),
        _ => {
            cx.err(
                "E013",
                d.span,
                "this duration is absurdly long for an elevation",
                "longer than 90 days",
                Some("elevations typically last 5 to 15 minutes".into()),
            );
            None
        }
    }
}

pub(super) fn parse_factor(cx: &mut Ctx<'_>, n: &ast::Name) -> Option<Factor> {
    if let Ok(f) = n.text.parse::<Factor>() {
        return Some(f);
    }
    cx.err(
        "E002",
        n.span,
        format!("unknown factor `{}`", n.text),
        "not a factor",
        mean(&n.text, &Factor::names()).or_else(|| {
            Some(format!(
                "factors are {}",
                Factor::names()
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }),
    );
    None
}

pub(super) fn parse_aal(cx: &mut Ctx<'_>, n: &ast::Name) -> Option<Aal> {
    if let Ok(a) = n.text.parse::<Aal>() {
        return Some(a);
    }
    cx.err(
        "E015",
        n.span,
        format!("unknown assurance level `{}`", n.text),
        "not an AAL",
        // `aal4`, `aal0`: a level beyond the scale, not a typo of the nearest name (`aal1`);
        // `aall2`, `AAL2`: a typo.
        if n.text
            .strip_prefix("aal")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        {
            Some("assurance levels are `aal1`, `aal2` and `aal3` (`aal3` is the highest)".into())
        } else if let lower @ ("aal1" | "aal2" | "aal3") = n.text.to_ascii_lowercase().as_str() {
            Some(format!("write it in lower case: `{lower}`"))
        } else {
            mean(&n.text.to_ascii_lowercase(), &["aal1", "aal2", "aal3"])
                .or_else(|| Some("assurance levels are `aal1`, `aal2` and `aal3`".into()))
        },
    );
    None
}

pub(super) fn check_require(cx: &mut Ctx<'_>, t: &Tenant, r: &ast::Require) -> Option<Requirement> {
    let aal = parse_aal(cx, &r.aal);
    let factors = match &r.factors {
        Factors::Unspecified | Factors::Any(_) => Some(FactorSet::ANY),
        Factors::Not(n) => parse_factor(cx, n).map(|f| FactorSet::one(f).complement()),
        Factors::List(list) => {
            let mut set = FactorSet::EMPTY;
            let mut ok = true;
            for n in list {
                match parse_factor(cx, n) {
                    Some(f) => set.insert(f),
                    None => ok = false,
                }
            }
            ok.then_some(set)
        }
    };
    let validity = match &r.validity {
        None => Some(t.default_validity),
        Some(ValidityAst::EveryTime(_)) => Some(Validity::EveryTime),
        Some(ValidityAst::For(d)) => check_validity_secs(cx, d).map(Validity::For),
    };
    let (aal, factors, validity) = (aal?, factors?, validity?);
    if factors.intersect(t.strengths.reaching(aal)).is_empty() {
        let strongest: Vec<String> = factors
            .iter()
            .map(|f| format!("`{f}` proves at most {}", t.strengths.strength(f)))
            .collect();
        let reach = t
            .strengths
            .reaching(aal)
            .names()
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        // A lint (SPEC §9), not an error: the policy loads, and when it fires the decision is
        // a `deny` for `conflict` (SPEC §10), which is what such a requirement means.
        let fix = if reach.is_empty() {
            format!("no factor reaches {aal} with this tenant's strengths: lower the AAL")
        } else {
            format!("allow {reach}, or lower the AAL")
        };
        cx.warn(
            "S012",
            r.span,
            format!("no allowed factor can reach {aal}"),
            "unreachable requirement",
            Some(format!(
                "{}; when the policy fires the action is refused (`conflict`); {fix}",
                strongest.join(", ")
            )),
        );
    }
    Some(Requirement {
        aal,
        factors,
        validity,
    })
}

/// Checks one policy: its condition, its requirement, and the lints of one policy.
pub(super) fn check_policy(cx: &mut Ctx<'_>, t: &Tenant, at: &PolicyAt<'_>) -> Option<Policy> {
    let p = at.policy;
    let cond = check_expr(cx, t, &p.when);
    let req = check_require(cx, t, &p.require);
    let (cond, req) = (cond?, req?);
    lint::message(cx, p, &at.name);
    lint::long_aal3_elevation(cx, &p.require, &req);
    lint::routine_step_up(cx, t, &p.when);
    lint::unguarded_attribute(cx, t, &at.name, &p.when, &cond);
    let line = at.lines.line(p.span.start);
    Some(Policy {
        name: at.name.clone(),
        message: p.message.as_ref().map(|m| m.value.clone()),
        condition: Arc::new(cond),
        requirement: req,
        origin: Origin {
            file: at.file.name.clone(),
            line,
        },
        report_only: p.report_only,
    })
}
