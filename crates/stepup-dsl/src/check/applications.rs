//! Pass 3: application blocks — their tenant, `cache off`, overrides of the tenant's policies
//! (or of the built-in `admin_default`) and their own policies — and the lints of the policies
//! in force for each application.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::lint::{self, Located};
use super::policies::check_policy;
use super::{AppAt, Ctx, PolicyAt, mean};
use crate::ast::Member;
use crate::diag::{Diagnostic, Span};
use crate::model::{ADMIN_DEFAULT_POLICY, Application, MAX_SCOPE_POLICIES, Tenant};

/// Checks every application block against its tenant.
pub(super) fn pass(
    tenants: &BTreeMap<String, Tenant>,
    apps: &[AppAt<'_>],
    located: &BTreeMap<String, Vec<Located>>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<(String, String), Application> {
    let mut applications: BTreeMap<(String, String), Application> = BTreeMap::new();
    let tenant_names: Vec<&str> = tenants.keys().map(String::as_str).collect();
    // The policies the set's scopes hold in all (see `MAX_SCOPE_POLICIES`): the tenants' first.
    let mut scope_policies: usize = tenants
        .values()
        .map(|t| t.policies.len().saturating_add(1))
        .fold(0, usize::saturating_add);
    let mut over = false;
    for app in apps {
        let mut cx = Ctx {
            file: app.file,
            diags: &mut *diags,
        };
        let b = app.block;
        let Some(tenant) = tenants.get(&b.tenant.text) else {
            cx.err(
                "E011",
                b.tenant.span,
                format!(
                    "application `{}` belongs to tenant `{}`, which is not defined",
                    b.name.text, b.tenant.text
                ),
                "unknown tenant",
                mean(&b.tenant.text, &tenant_names)
                    .or_else(|| Some("define it with `tenant NAME { ... }`".into())),
            );
            continue;
        };
        let key = (b.tenant.text.clone(), b.name.text.clone());
        if applications.contains_key(&key) {
            cx.err(
                "E016",
                b.name.span,
                format!(
                    "application `{}` of `{}` is defined twice",
                    b.name.text, b.tenant.text
                ),
                "second definition",
                Some("merge the two blocks".into()),
            );
            continue;
        }
        let mut out = Application {
            name: b.name.text.clone(),
            tenant: b.tenant.text.clone(),
            cache_off: false,
            policies: Vec::new(),
        };
        let mut names: BTreeMap<String, ()> = BTreeMap::new();
        let tenant_policy_names: Vec<&str> =
            tenant.policies.iter().map(|p| p.name.as_str()).collect();
        let mut app_located: Vec<Located> = Vec::new();
        let mut bare = 0usize;
        for m in &b.members {
            match m {
                Member::CacheOff(_) => out.cache_off = true,
                Member::Policy(p) => {
                    let name = match &p.name {
                        Some(n) => n.text.clone(),
                        // A bare rule adds a policy: its name is never one of the tenant's (a
                        // tenant's bare rules from a file named like the application are
                        // `<app>#<n>` too), so it can never replace one.
                        None => loop {
                            bare += 1;
                            let name = format!("{}#{bare}", b.name.text);
                            if !tenant_policy_names.contains(&name.as_str())
                                && !names.contains_key(&name)
                            {
                                break name;
                            }
                        },
                    };
                    if names.insert(name.clone(), ()).is_some() {
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        cx.err(
                            "E008",
                            span,
                            format!(
                                "policy `{name}` is defined twice in application `{}`",
                                b.name.text
                            ),
                            "second definition",
                            None,
                        );
                        continue;
                    }
                    let is_admin_default = name == ADMIN_DEFAULT_POLICY;
                    if is_admin_default && !p.is_override {
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        cx.err(
                            "E030",
                            span,
                            "`admin_default` is the built-in policy for `admin` operations",
                            "reserved name",
                            Some(
                                "write `override policy admin_default` in an application to replace it"
                                    .into(),
                            ),
                        );
                        continue;
                    }
                    // The tenant's policy of that name: its own, or the built-in admin default.
                    let builtin = if is_admin_default {
                        tenant.builtin_admin_policy().map(Arc::new)
                    } else {
                        None
                    };
                    let base = tenant
                        .policies
                        .iter()
                        .find(|q| q.name == name)
                        .or(builtin.as_ref());
                    if p.is_override && base.is_none() {
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        let help = if is_admin_default {
                            Some(format!(
                                "the built-in `admin_default` applies only to a tenant with `admin` operations and without `admin default off`; declare one in tenant `{}`",
                                tenant.name
                            ))
                        } else {
                            mean(&name, &tenant_policy_names)
                                .or_else(|| Some("remove `override` to add a new policy".into()))
                        };
                        // A lint (SPEC §9), not an error: the policy is added to the
                        // application, beside the tenant's (it replaces nothing, so what it
                        // meant to replace still applies).
                        cx.warn(
                            "S013",
                            span,
                            format!(
                                "`override` of policy `{name}`, which tenant `{}` does not have; it is added as a new policy",
                                tenant.name
                            ),
                            "nothing to override",
                            help,
                        );
                    } else if !p.is_override
                        && base.is_none()
                        && let Some(hint) = mean(&name, &tenant_policy_names)
                    {
                        // A policy of the application replaces the tenant's of its name (SPEC
                        // §3): one whose name nearly is a tenant policy's most likely meant to
                        // replace it, and replaces nothing.
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        cx.warn(
                            "S013",
                            span,
                            format!(
                                "policy `{name}` replaces no policy of tenant `{}`; it is added as a new policy",
                                tenant.name
                            ),
                            "replaces nothing",
                            Some(format!(
                                "{hint} (a policy of an application replaces the tenant's of the same name)"
                            )),
                        );
                    }
                    let at = PolicyAt {
                        file: app.file,
                        lines: app.lines,
                        policy: p,
                        name,
                    };
                    if let Some(checked) = check_policy(&mut cx, tenant, &at) {
                        if let Some(base) = base {
                            lint::weaker_override(&mut cx, tenant, p, base, &checked);
                        }
                        let checked = Arc::new(checked);
                        let span = p.name.as_ref().map_or(p.span, |n| n.span);
                        let mut l = Located::new(&checked, tenant, app.file, span, true);
                        // An override that changes nothing the lint looks at repeats the
                        // tenant's pairs, which are reported on the tenant.
                        l.like_tenant = located
                            .get(&b.tenant.text)
                            .and_then(|v| v.iter().find(|x| x.name == l.name))
                            .is_some_and(|x| x.same_shape(&l));
                        app_located.push(l);
                        out.policies.push(checked);
                    }
                }
                other => {
                    let span = member_span(other);
                    cx.err(
                        "E001",
                        span,
                        "applications hold policies and `cache off` only",
                        "not allowed here",
                        Some(format!("declare this in `tenant {}`", tenant.name)),
                    );
                }
            }
        }
        if out.cache_off || !out.policies.is_empty() {
            scope_policies = scope_policies
                .saturating_add(tenant.policies.len())
                .saturating_add(1)
                .saturating_add(out.policies.len());
        }
        if scope_policies > MAX_SCOPE_POLICIES {
            // Said once, at the application that crosses the bound; the rest are not linted
            // (the set does not load).
            if !over {
                over = true;
                cx.err(
                    "E042",
                    b.name.span,
                    format!(
                        "with application `{}`, the set's scopes hold more than {MAX_SCOPE_POLICIES} policies in all",
                        b.name.text
                    ),
                    "too many policies in all",
                    Some(format!(
                        "each application that changes its tenant's policies (its own policies, `cache off`) holds the tenant's {} again with its own, and is compiled apart: put what applications share in the tenant, or split the tenant",
                        tenant.policies.len()
                    )),
                );
            }
            applications.insert(key, out);
            continue;
        }
        // The policies in force for the application: the tenant's, replaced by name, and its own
        // (the tenant's as they are, not copied, when the application has none).
        let tenant_scope = located.get(&b.tenant.text).map_or(&[][..], Vec::as_slice);
        if app_located.is_empty() {
            lint::disjoint_factors(diags, tenant_scope, true);
        } else {
            let mut scope: Vec<Located> = tenant_scope.to_vec();
            for l in app_located {
                match scope.iter_mut().find(|x| x.name == l.name) {
                    Some(slot) => *slot = l,
                    None => scope.push(l),
                }
            }
            lint::disjoint_factors(diags, &scope, true);
        }
        applications.insert(key, out);
    }
    applications
}

fn member_span(m: &Member) -> Span {
    match m {
        Member::Duration(d) => d.span,
        Member::Operation { span, .. }
        | Member::AdminDefault(_, span)
        | Member::Risk(_, span)
        | Member::CacheOff(span) => *span,
        Member::Resource(n) => n.span,
        Member::Attribute { name, .. } => name.span,
        Member::FactorStrength { factor, .. } => factor.span,
        Member::Policy(p) => p.span,
    }
}
