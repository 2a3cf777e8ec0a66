//! S005 `weaker-override`: an application override is weaker than the tenant policy it replaces.

use super::super::Ctx;
use crate::ast;
use crate::model::Policy;

/// Compares an override with the policy it replaces.
pub(in crate::check) fn weaker_override(
    cx: &mut Ctx<'_>,
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
