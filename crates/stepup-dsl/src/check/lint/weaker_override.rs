//! S005 `weaker-override`: an application override is weaker than the tenant policy it replaces.

use std::collections::BTreeSet;

use super::super::Ctx;
use crate::ast;
use crate::model::{Cond, Policy, Tenant};
use stepup_core::OperationClass;

/// The admin operations of `t` a condition never fires on, or `None` when it fires on all of
/// them as the built-in does (`operation` of class `admin`, or an `operation in [...]` naming
/// every one): `Some` of an empty set when it names them all but asks more (`and new_device`).
fn admin_left_out(t: &Tenant, c: &Cond) -> Option<BTreeSet<String>> {
    let admin: BTreeSet<String> = t
        .operations
        .iter()
        .filter(|(_, class)| **class == OperationClass::Admin)
        .map(|(name, _)| name.clone())
        .collect();
    match c {
        Cond::OperationClassIs(OperationClass::Admin) => None,
        Cond::OperationIn(named) => {
            let left: BTreeSet<String> = admin.difference(named).cloned().collect();
            (!left.is_empty()).then_some(left)
        }
        Cond::And(all) => {
            let mut left = BTreeSet::new();
            for c in all {
                if let Cond::OperationIn(named) = c {
                    left.extend(admin.difference(named).cloned());
                }
            }
            Some(left)
        }
        _ => Some(BTreeSet::new()),
    }
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
    if !n.factors.is_subset(b.factors) {
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
        match admin_left_out(t, &new.condition) {
            None => {}
            Some(left) if left.is_empty() => why.push(
                "a condition that asks more than an `admin` operation (it does not step up every one)"
                    .to_string(),
            ),
            Some(left) => why.push(format!(
                "a condition that leaves out the admin operation{} {} (not stepped up in this application)",
                if left.len() == 1 { "" } else { "s" },
                left.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
            )),
        }
    } else if new.condition != base.condition {
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
