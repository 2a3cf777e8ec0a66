//! S005 `weaker-override`: an application override is weaker than the tenant policy it replaces.

use std::collections::BTreeSet;

use super::super::Ctx;
use crate::ast;
use crate::model::{Cond, Policy, Tenant};
use stepup_core::OperationClass;

/// The admin operations of `t` on which `c` fires whatever the rest of the request is
/// (`operation` of class `admin`, `operation in [...]`; `or` joins what its parts cover, `and`
/// keeps what all of them do; any other test may be false, and covers nothing).
fn admin_covered(t: &Tenant, c: &Cond) -> BTreeSet<String> {
    let admin = || {
        t.operations
            .iter()
            .filter(|(_, class)| **class == OperationClass::Admin)
            .map(|(name, _)| name.clone())
    };
    match c {
        Cond::OperationClassIs(OperationClass::Admin) => admin().collect(),
        Cond::OperationIn(named) => admin().filter(|o| named.contains(o)).collect(),
        Cond::Or(any) => any.iter().flat_map(|c| admin_covered(t, c)).collect(),
        Cond::And(all) => {
            let mut parts = all.iter().map(|c| admin_covered(t, c));
            let first = parts.next().unwrap_or_default();
            parts.fold(first, |acc, p| acc.intersection(&p).cloned().collect())
        }
        _ => BTreeSet::new(),
    }
}

/// The admin operations of `t` the built-in steps up and `c` may not: empty when `c` fires on
/// every one of them whatever else the request says.
fn admin_left_out(t: &Tenant, c: &Cond) -> BTreeSet<String> {
    let covered = admin_covered(t, c);
    t.operations
        .iter()
        .filter(|(name, class)| **class == OperationClass::Admin && !covered.contains(*name))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Whether `new` fires wherever `base` does: the same condition, or `base` as one of the
/// alternatives of an `or`.
fn widens(new: &Cond, base: &Cond) -> bool {
    new == base || matches!(new, Cond::Or(any) if any.iter().any(|c| c == base))
}

/// Compares an override with the policy it replaces.
pub(in crate::check) fn weaker_override(
    cx: &mut Ctx<'_>,
    t: &Tenant,
    p: &ast::Policy,
    base: &Policy,
    new: &Policy,
) {
    let (b, n) = (base.requirement, new.requirement);
    let mut why = Vec::new();
    if n.aal < b.aal {
        why.push(format!("a lower AAL ({} instead of {})", n.aal, b.aal));
    }
    // More factors: one the tenant's policy did not list that can satisfy the override (it
    // reaches the override's AAL under the tenant's table), no stronger than the weakest that
    // could satisfy the tenant's policy. A stronger one (`webauthn` for `sms`) tightens it; one
    // too weak for the override's AAL (`sms` beside `webauthn` at aal3) changes nothing; one
    // listed but too weak for the tenant's AAL never counted there (`webauthn|sms` at aal3 is
    // `webauthn` alone, so adding `totp` is more).
    let reach = |factors: stepup_core::FactorSet, aal| {
        factors
            .iter()
            .filter(move |f| t.strengths.strength(*f) >= aal)
    };
    let weakest = reach(b.factors, b.aal)
        .map(|f| t.strengths.strength(f))
        .min();
    let looser: Vec<_> = reach(n.factors, n.aal)
        .filter(|f| !b.factors.contains(*f))
        .filter(|f| weakest.is_none_or(|w| t.strengths.strength(*f) <= w))
        .collect();
    if !looser.is_empty() {
        why.push(format!(
            "more factors ({} instead of {})",
            n.factors, b.factors
        ));
    }
    if n.validity > b.validity {
        why.push(format!(
            "a longer duration ({} instead of {})",
            n.validity, b.validity
        ));
    }
    // A condition is not compared for strength (which events it fires on depends on the
    // catalog, the attributes and the signals): any other condition may fire on fewer events,
    // and says so (an override of `admin_default` on one admin operation leaves the others
    // unguarded in this application).
    if base.origin.line == 0 {
        let left = admin_left_out(t, &new.condition);
        if !left.is_empty() {
            why.push(format!(
                "a condition that may not fire on the admin operation{} {} (the built-in steps up every one)",
                if left.len() == 1 { "" } else { "s" },
                left.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
            ));
        }
    } else if !widens(&new.condition, &base.condition) {
        why.push(
            "another condition (check that it fires on every event the tenant's does)".to_string(),
        );
    }
    let mut help = if why.is_empty() {
        String::new()
    } else {
        format!("it has {}", why.join(", "))
    };
    if new.report_only && !base.report_only {
        help.push_str(if help.is_empty() {
            "it is"
        } else {
            ", and it is"
        });
        help.push_str(" `report_only`: this application never enforces it");
    }
    if !help.is_empty() {
        let span = p.name.as_ref().map_or(p.span, |x| x.span);
        cx.warn(
            "S005",
            span,
            if base.origin.line == 0 {
                format!(
                    "this override of `{}` is weaker than the built-in policy for `admin` operations",
                    base.name
                )
            } else {
                format!(
                    "this override of `{}` is weaker than the tenant's policy",
                    base.name
                )
            },
            "weaker override",
            Some(format!("{help}; overrides should tighten, not loosen")),
        );
    }
}
