//! S015 `names-read-alike`: a tenant without a catalog whose policies spell one operation (or
//! resource class) two ways.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::Parsed;
use crate::ast::{Expr, Item, Lit, Member};
use crate::diag::{Diagnostic, SourceFile, Span};
use crate::model::Tenant;
use crate::vocab::reading;

/// A name a condition spells, where.
struct Spelt<'a> {
    tenant: &'a str,
    /// `operation` or `resource`.
    kind: &'static str,
    name: &'a str,
    file: &'a Arc<SourceFile>,
    span: Span,
}

/// S015: in a tenant without a catalog of operations (resource classes), the policies name one
/// that reads like another they name (`DeleteAccount`, `delete_account`). A request carries one
/// spelling, so it never fires the policies that use the other. Flagged at the first place of
/// each spelling after the first.
pub(in crate::check) fn names_read_alike(
    files: &[Parsed],
    tenants: &BTreeMap<String, Tenant>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut spelt = Vec::new();
    for parsed in files {
        for item in &parsed.ast.items {
            let (tenant, members): (&str, &[Member]) = match item {
                Item::Tenant(t) => (&t.name.text, &t.members),
                Item::Application(a) => (&a.tenant.text, &a.members),
                Item::Member(m) => ("default", std::slice::from_ref(m)),
            };
            for m in members {
                if let Member::Policy(p) = m {
                    names(&p.when, &mut |kind, name, span| {
                        spelt.push(Spelt {
                            tenant,
                            kind,
                            name,
                            file: &parsed.file,
                            span,
                        });
                    });
                }
            }
        }
    }
    // Per tenant, kind and reading: the spellings, each with its first place, in order.
    let mut groups: BTreeMap<(&str, &str, String), Vec<&Spelt<'_>>> = BTreeMap::new();
    for s in &spelt {
        let catalog = tenants.get(s.tenant).is_some_and(|t| match s.kind {
            "operation" => !t.operations.is_empty(),
            _ => !t.resources.is_empty(),
        });
        let read: String = reading(s.name).collect();
        if catalog || read.is_empty() {
            continue;
        }
        let group = groups.entry((s.tenant, s.kind, read)).or_default();
        if !group.iter().any(|g| g.name == s.name) {
            group.push(s);
        }
    }
    for ((tenant, kind, _), group) in groups {
        let Some((first, others)) = group.split_first() else {
            continue;
        };
        for s in others {
            diags.push(
                Diagnostic::warning(
                    "S015",
                    s.file,
                    s.span,
                    format!(
                        "{kind} `{}` reads like `{}`, which the policies of tenant `{tenant}` also name",
                        s.name, first.name
                    ),
                )
                .label(format!("another spelling of `{}`", first.name))
                .maybe_help(Some(format!(
                    "a request spelt one way never fires the policies that spell it the other way: spell it `{}` everywhere (or declare the tenant's catalog, which refuses undeclared names)",
                    first.name
                ))),
            );
        }
    }
}

/// Calls `f` with each operation or resource name `e` compares with, and where.
fn names<'e>(e: &'e Expr, f: &mut impl FnMut(&'static str, &'e str, Span)) {
    let kind = |n: &str| match n {
        "operation" => Some("operation"),
        "resource" => Some("resource"),
        _ => None,
    };
    let lit = |l: &'e Lit| match l {
        Lit::Name(n) => Some((n.text.as_str(), n.span)),
        Lit::Str(s) => Some((s.value.as_str(), s.span)),
        Lit::Number(..) => None,
    };
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| names(e, f)),
        Expr::Not(e) => names(e, f),
        Expr::Cmp(n, _, l) => {
            if let (Some(k), Some((name, span))) = (kind(&n.text), lit(l)) {
                f(k, name, span);
            }
        }
        Expr::In(n, items, _) => {
            if let Some(k) = kind(&n.text) {
                for (name, span) in items.iter().filter_map(lit) {
                    f(k, name, span);
                }
            }
        }
        Expr::Call(n, args, _) if n.text == "first_access" => {
            for a in args {
                if let crate::ast::Arg::Name(r) = a {
                    f("resource", &r.text, r.span);
                }
            }
        }
        Expr::Call(..) | Expr::Flag(_) | Expr::Script(_) => {}
    }
}
