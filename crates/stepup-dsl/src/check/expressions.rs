//! Conditions: names resolved (operations, resources, attributes, signals), types checked,
//! scripts compiled in the sandbox; used by the policy and application passes.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::lint;
use super::{BUILTINS, Ctx, MAX_WINDOW_DAYS, mean};
use crate::ast::{self, Arg, CmpOp, Expr, Lit};
use crate::diag::{SourceFile, Span};
use crate::model::{AttrType, Cond, DEFAULT_COUNTRY_WINDOW_DAYS, FIRST_ACCESS, SignalKind, Tenant};
use crate::script::{CtxField, Script};

fn lit_text(l: &Lit) -> Option<(&str, Span)> {
    match l {
        Lit::Name(n) => Some((&n.text, n.span)),
        Lit::Str(s) => Some((&s.value, s.span)),
        Lit::Number(..) => None,
    }
}

fn describe_lit(l: &Lit) -> &'static str {
    match l {
        Lit::Name(_) => "a name",
        Lit::Str(_) => "a string",
        Lit::Number(..) => "a number",
    }
}

/// Checks a condition against the tenant's catalogs: `None` when it has an error (reported).
pub(super) fn check_expr(cx: &mut Ctx<'_>, t: &Tenant, e: &Expr) -> Option<Cond> {
    match e {
        Expr::And(v) => check_all(cx, t, v).map(Cond::And),
        Expr::Or(v) => check_all(cx, t, v).map(Cond::Or),
        Expr::Not(a) => Some(Cond::Not(Box::new(check_expr(cx, t, a)?))),
        Expr::Cmp(n, op, lit) => check_cmp(cx, t, n, *op, lit),
        Expr::In(n, items, span) => {
            if items.is_empty() {
                cx.err(
                    "E027",
                    *span,
                    "an empty list never matches",
                    "empty list",
                    Some("list at least one value".into()),
                );
                return None;
            }
            let mut acc: Vec<Cond> = Vec::new();
            let mut ok = true;
            if n.text == "operation"
                || n.text == "resource"
                || t.attributes.get(&n.text) == Some(&AttrType::String)
            {
                let mut set = BTreeSet::new();
                for i in items {
                    match single_name(cx, t, n, i) {
                        Some(v) => {
                            set.insert(v);
                        }
                        None => ok = false,
                    }
                }
                return ok.then(|| match n.text.as_str() {
                    "operation" => Cond::OperationIn(set),
                    "resource" => Cond::ResourceIn(set),
                    _ => Cond::AttrStrIn(n.text.clone(), set),
                });
            }
            for i in items {
                match check_cmp(cx, t, n, CmpOp::Eq, i) {
                    Some(c) => acc.push(c),
                    None => ok = false,
                }
            }
            ok.then_some(Cond::Or(acc))
        }
        Expr::Call(n, args, span) => check_call(cx, t, n, args, *span),
        Expr::Flag(n) => match (n.text.as_str(), SignalKind::parse(&n.text)) {
            (_, Some(k)) if k.takes_window() => {
                cx.err("E028", n.span, format!("`{}` needs a window", k.as_str()), "no window", Some(format!("write `{}({DEFAULT_COUNTRY_WINDOW_DAYS}d)`: no sign-in from the country in the last 30 days", k.as_str())));
                None
            }
            (_, Some(k)) => Some(Cond::Signal(k, 0)),
            (FIRST_ACCESS, None) => {
                cx.err(
                    "E028",
                    n.span,
                    "`first_access` needs a resource class",
                    "no resource",
                    Some("write e.g. `first_access(payments)`".into()),
                );
                None
            }
            (other, None) => match t.attributes.get(other) {
                Some(AttrType::Bool) => Some(Cond::AttrBool(other.to_string(), true)),
                Some(ty) => {
                    cx.err(
                        "E034",
                        n.span,
                        format!(
                            "`{other}` is a {} attribute, not a condition",
                            type_name(*ty)
                        ),
                        "not a boolean",
                        Some(format!("compare it, e.g. `{other} == ...`")),
                    );
                    None
                }
                None => {
                    let mut cands = SignalKind::condition_names();
                    cands.extend(t.attributes.keys().map(String::as_str));
                    cx.err(
                        "E006",
                        n.span,
                        format!("unknown signal `{other}`"),
                        "not a signal or attribute",
                        mean(other, &cands).or_else(|| Some(SignalKind::condition_help())),
                    );
                    None
                }
            },
        },
        Expr::Script(s) => match Script::compile(&s.value) {
            Ok(sc) => {
                let mut ok = true;
                for site in sc.read_sites() {
                    let CtxField::Attr(name) = &site.field else {
                        continue;
                    };
                    if t.attributes.contains_key(name) {
                        continue;
                    }
                    ok = false;
                    let mut cands: Vec<&str> = t.attributes.keys().map(String::as_str).collect();
                    cands.extend(["risk", "operation", "resource", "event", "enrolled"]);
                    cx.err(
                        "E029",
                        script_span(cx.file, s, site.line, site.column, site.width),
                        format!(
                            "script reads `{}`, which is not a declared attribute",
                            site.field
                        ),
                        "not declared",
                        mean(name, &cands).or_else(|| {
                            Some(format!(
                                "declare it in tenant `{}`: `attribute {name}: number`",
                                t.name
                            ))
                        }),
                    );
                }
                if ok {
                    lint::mistyped_script(cx, t, s, &sc);
                }
                ok.then(|| Cond::Script(Arc::new(sc)))
            }
            Err(e) => {
                let span = script_span(cx.file, s, e.line, e.column, e.width);
                cx.err(
                    "E014",
                    span,
                    format!("script error: {}", e.message.to_lowercase()),
                    "in this script",
                    Some(
                        "scripts are rhai expressions over `ctx`, e.g. `ctx.amount > 10000`".into(),
                    ),
                );
                None
            }
        },
    }
}

/// Checks every operand (each reports its own errors): all of them, or `None` when one failed.
fn check_all(cx: &mut Ctx<'_>, t: &Tenant, v: &[Expr]) -> Option<Vec<Cond>> {
    let mut out = Vec::with_capacity(v.len());
    let mut ok = true;
    for e in v {
        match check_expr(cx, t, e) {
            Some(c) if ok => out.push(c),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The span of `width` characters at (`line`, `column`) of a script (1-based, within its value),
/// mapped through the string's escapes; the whole string when the position is unknown.
pub(super) fn script_span(
    file: &SourceFile,
    s: &ast::Str,
    line: Option<usize>,
    column: Option<usize>,
    width: usize,
) -> Span {
    let (Some(line), Some(column)) = (line, column) else {
        return s.span;
    };
    // The file offset of each character of the value (an escape is one character), and the end.
    let inner_start = s.span.start + 1;
    let inner_end = s.span.end.saturating_sub(1).max(inner_start);
    let raw = file.text.get(inner_start..inner_end).unwrap_or("");
    let mut offsets = Vec::with_capacity(raw.len() + 1);
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        offsets.push(inner_start + i);
        if c == '\\' {
            chars.next();
        }
    }
    offsets.push(inner_end);
    let (mut l, mut c) = (1, 1);
    let mut start = None;
    for (k, ch) in s.value.chars().enumerate() {
        if (l, c) == (line, column) {
            start = Some(k);
            break;
        }
        if ch == '\n' {
            (l, c) = (l + 1, 1);
        } else {
            c += 1;
        }
    }
    let Some(k) = start else {
        return s.span;
    };
    match (
        offsets.get(k),
        offsets.get(k + width.max(1)).or(offsets.last()),
    ) {
        (Some(&a), Some(&b)) if a < b => Span::new(a, b),
        _ => s.span,
    }
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::Number => "number",
        AttrType::String => "string",
        AttrType::Bool => "bool",
    }
}

fn single_name(cx: &mut Ctx<'_>, t: &Tenant, n: &ast::Name, lit: &Lit) -> Option<String> {
    let Some((v, span)) = lit_text(lit) else {
        cx.err(
            "E007",
            lit.span(),
            format!("`{}` is compared with a number", n.text),
            "a number",
            Some(format!("`{}` takes a name", n.text)),
        );
        return None;
    };
    match n.text.as_str() {
        "operation" if !t.operations.is_empty() && !t.operations.contains_key(v) => {
            let names: Vec<&str> = t.operations.keys().map(String::as_str).collect();
            cx.err(
                "E003",
                span,
                format!("unknown operation `{v}`"),
                "not in the catalog",
                mean(v, &names).or_else(|| {
                    Some(format!(
                        "declare it in tenant `{}`: `operation {v} sensitive`",
                        t.name
                    ))
                }),
            );
            None
        }
        "resource" if !t.resources.is_empty() && !t.resources.contains(v) => {
            let names: Vec<&str> = t.resources.iter().map(String::as_str).collect();
            cx.err(
                "E004",
                span,
                format!("unknown resource class `{v}`"),
                "not declared",
                mean(v, &names)
                    .or_else(|| Some(format!("declare it in tenant `{}`: `resource {v}`", t.name))),
            );
            None
        }
        _ => Some(v.to_string()),
    }
}

fn check_cmp(cx: &mut Ctx<'_>, t: &Tenant, n: &ast::Name, op: CmpOp, lit: &Lit) -> Option<Cond> {
    match n.text.as_str() {
        "operation" | "resource" => {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                cx.err(
                    "E033",
                    n.span,
                    format!("`{}` can only be compared with `==` or `!=`", n.text),
                    "not ordered",
                    Some(format!("use `{} in [a, b]` for several values", n.text)),
                );
                return None;
            }
            let v = single_name(cx, t, n, lit)?;
            let operation = n.text == "operation";
            let of = |set| {
                if operation {
                    Cond::OperationIn(set)
                } else {
                    Cond::ResourceIn(set)
                }
            };
            if op == CmpOp::Eq {
                return Some(of(BTreeSet::from([v])));
            }
            // `!=`. An operation or resource predicate is false on a sign-in (SPEC §5), and on
            // the other kind of event: `operation != view` is "an operation of the catalog other
            // than `view`" (an event outside the catalog is refused before any policy), not
            // "not `operation == view`", true on every sign-in.
            let catalog: Vec<&String> = if operation {
                t.operations.keys().collect()
            } else {
                t.resources.iter().collect()
            };
            Some(if catalog.is_empty() {
                // Without a catalog any name is accepted, so the others cannot be listed: `not`
                // (true on sign-ins too: it over-prompts rather than miss an operation).
                Cond::Not(Box::new(of(BTreeSet::from([v]))))
            } else {
                of(catalog.into_iter().filter(|k| **k != v).cloned().collect())
            })
        }
        "risk" => match lit {
            Lit::Number(v, span) if v.is_finite() => {
                lint::risk_threshold(cx, op, *v, *span);
                Some(Cond::Risk(op, *v))
            }
            // Too large to hold (400 digits): it would compare as infinite, where the lint
            // would say `risk < inf` is never true.
            Lit::Number(_, span) => {
                cx.err("E018", *span, "this number is too large", "too large", None);
                None
            }
            other => {
                cx.err(
                    "E007",
                    other.span(),
                    format!(
                        "`risk` is a number, but it is compared with {}",
                        describe_lit(other)
                    ),
                    "not a number",
                    Some("write e.g. `risk >= 70`".into()),
                );
                None
            }
        },
        // One of `SignalKind::condition_names()`, without building the list for every comparison.
        name if SignalKind::parse(name).is_some() || name == FIRST_ACCESS => {
            cx.err(
                "E035",
                n.span,
                format!("`{name}` is a signal, not a value to compare"),
                "a signal",
                Some(format!(
                    "use it on its own: `when {name} ...` or `when not {name} ...`"
                )),
            );
            None
        }
        name => match t.attributes.get(name) {
            None => {
                let mut cands: Vec<&str> = BUILTINS.to_vec();
                cands.extend(t.attributes.keys().map(String::as_str));
                cx.err(
                    "E005",
                    n.span,
                    format!("unknown attribute `{name}`"),
                    "not declared",
                    mean(name, &cands).or_else(|| {
                        Some(format!(
                            "declare it in tenant `{}`: `attribute {name}: number`",
                            t.name
                        ))
                    }),
                );
                None
            }
            Some(AttrType::Number) => match lit {
                Lit::Number(v, _) if v.is_finite() => Some(Cond::AttrNum(name.to_string(), op, *v)),
                Lit::Number(_, span) => {
                    cx.err("E018", *span, "this number is too large", "too large", None);
                    None
                }
                other => {
                    cx.err(
                        "E007",
                        other.span(),
                        format!(
                            "`{name}` is a number, but it is compared with {}",
                            describe_lit(other)
                        ),
                        "type mismatch",
                        Some(format!("write e.g. `{name} > 1000`")),
                    );
                    None
                }
            },
            Some(AttrType::String) => {
                if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    cx.err(
                        "E033",
                        n.span,
                        format!("`{name}` is a string and can only be compared with `==` or `!=`"),
                        "not ordered",
                        None,
                    );
                    return None;
                }
                let Some((v, _)) = lit_text(lit) else {
                    cx.err(
                        "E007",
                        lit.span(),
                        format!("`{name}` is a string, but it is compared with a number"),
                        "type mismatch",
                        Some(format!("write e.g. `{name} == \"value\"`")),
                    );
                    return None;
                };
                let c = Cond::AttrStrIn(name.to_string(), BTreeSet::from([v.to_string()]));
                Some(if op == CmpOp::Ne {
                    Cond::Not(Box::new(c))
                } else {
                    c
                })
            }
            Some(AttrType::Bool) => {
                let b = match lit {
                    Lit::Name(v) if v.text == "true" => Some(true),
                    Lit::Name(v) if v.text == "false" => Some(false),
                    _ => None,
                };
                match (b, op) {
                    (Some(b), CmpOp::Eq) => Some(Cond::AttrBool(name.to_string(), b)),
                    (Some(b), CmpOp::Ne) => Some(Cond::AttrBool(name.to_string(), !b)),
                    _ => {
                        cx.err(
                            "E007",
                            lit.span(),
                            format!("`{name}` is a bool: compare it with `== true` or `== false`"),
                            "type mismatch",
                            None,
                        );
                        None
                    }
                }
            }
        },
    }
}

fn window_days(cx: &mut Ctx<'_>, a: &Arg) -> Option<u32> {
    match a {
        Arg::Duration(d) => match d.secs {
            Some(s) if s > 0 && s % 86_400 == 0 && s / 86_400 <= MAX_WINDOW_DAYS => {
                u32::try_from(s / 86_400).ok()
            }
            Some(0) => {
                cx.err(
                    "E012",
                    d.span,
                    "a window of zero days never matches",
                    "zero",
                    Some("write e.g. `30d`".into()),
                );
                None
            }
            Some(s) if s % 86_400 != 0 => {
                cx.err(
                    "E037",
                    d.span,
                    "signal windows are whole days",
                    "not whole days",
                    Some("write e.g. `30d`".into()),
                );
                None
            }
            _ => {
                cx.err(
                    "E013",
                    d.span,
                    "this window is absurdly long",
                    "longer than 10 years",
                    Some("write e.g. `30d`".into()),
                );
                None
            }
        },
        Arg::Name(n) => {
            cx.err(
                "E028",
                n.span,
                "expected a window in days here",
                "not a duration",
                Some("write e.g. `30d`".into()),
            );
            None
        }
    }
}

fn check_call(
    cx: &mut Ctx<'_>,
    t: &Tenant,
    n: &ast::Name,
    args: &[Arg],
    span: Span,
) -> Option<Cond> {
    match (n.text.as_str(), args) {
        (FIRST_ACCESS, [Arg::Name(r)] | [Arg::Name(r), _]) => {
            if !t.resources.is_empty() && !t.resources.contains(&r.text) {
                let names: Vec<&str> = t.resources.iter().map(String::as_str).collect();
                cx.err(
                    "E004",
                    r.span,
                    format!("unknown resource class `{}`", r.text),
                    "not declared",
                    mean(&r.text, &names).or_else(|| {
                        Some(format!(
                            "declare it in tenant `{}`: `resource {}`",
                            t.name, r.text
                        ))
                    }),
                );
                return None;
            }
            let window = match args.get(1) {
                Some(a) => Some(window_days(cx, a)?),
                None => None,
            };
            Some(Cond::FirstAccess(r.text.clone(), window))
        }
        (FIRST_ACCESS, _) => {
            cx.err(
                "E028",
                span,
                "`first_access` takes a resource class and an optional window",
                "wrong arguments",
                Some("write e.g. `first_access(payments)` or `first_access(payments, 30d)`".into()),
            );
            None
        }
        (name, _) => match (SignalKind::parse(name), args) {
            (Some(k), [a]) if k.takes_window() => Some(Cond::Signal(k, window_days(cx, a)?)),
            (Some(k), _) if k.takes_window() => {
                cx.err(
                    "E028",
                    span,
                    format!("`{name}` takes one window"),
                    "wrong arguments",
                    Some(format!("write e.g. `{name}(30d)`")),
                );
                None
            }
            (Some(_), _) => {
                cx.err(
                    "E028",
                    span,
                    format!("`{name}` takes no arguments"),
                    "no arguments expected",
                    Some(format!("write `{name}`")),
                );
                None
            }
            (None, _) => {
                cx.err(
                    "E006",
                    n.span,
                    format!("unknown signal `{name}`"),
                    "not a signal",
                    mean(name, &SignalKind::condition_names())
                        .or_else(|| Some(SignalKind::condition_help())),
                );
                None
            }
        },
    }
}
