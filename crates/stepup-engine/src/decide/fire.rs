//! Step 2, fire: which policies fire, three-valued (unknown fires, SPEC §10), and why a policy
//! that fired because it is unknown could not be decided.
//!
//! Two walks decide. [`Walk::Compiled`] walks the optimised tree of the event's candidates only,
//! cheapest tests first, short-circuiting: nothing on it allocates. [`Walk::Traced`] is what an
//! explanation records: every policy of the scope, leaf for leaf as written, with every leaf's
//! value; the decision is made from that same walk, so the explanation is the record of what
//! decided. Both read one [`Facts`], so a script runs at most once per decision. The two walks
//! (and the reference interpreter, the test oracle) are property-tested to agree.

use stepup_dsl::model::{Cond, Policy, SignalKind};

use crate::compile::{CExpr, CompiledScope};
use crate::decision::{PolicyTrace, PredicateTrace};
use crate::facts::Facts;
use crate::request::Event;
use crate::tree::{AttrTable, FiredBuf, Ids, candidates, eval, eval_rest, unknown_reasons};
use crate::tri::Tri;

/// Which walk decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// The optimised tree over the event's candidates.
    Compiled,
    /// Every policy as written, recording every leaf (explanations).
    Traced,
    /// The reference interpreter (the oracle of the tests; never used to serve decisions).
    Reference,
}

/// What firing found.
pub(crate) struct Fired {
    /// Enforced policies that fired (indices into the scope's policies, in order).
    pub enforced: FiredBuf,
    /// Report-only policies that fired (a vector: most scopes have none, and it stays empty).
    pub report_only: Vec<usize>,
    /// Why enforced policies fired although their condition could not be decided.
    pub notes: Vec<String>,
    /// The same for report-only policies (they go to the report-only results, not the decision).
    pub report_only_notes: Vec<(usize, String)>,
    /// Every policy with every leaf's value, on a traced walk.
    pub trace: Option<Vec<PolicyTrace>>,
}

impl Fired {
    /// Nothing fired yet.
    pub(crate) fn new() -> Self {
        Fired {
            enforced: FiredBuf::new(),
            report_only: Vec::new(),
            notes: Vec::new(),
            report_only_notes: Vec::new(),
            trace: None,
        }
    }

    /// Records policy `i`'s value, and why it is unknown when it is.
    #[inline(always)]
    fn record(&mut self, p: &Policy, i: usize, v: Tri, why: impl FnOnce() -> Vec<String>) {
        if v == Tri::Unknown {
            self.note_unknown(p, i, why());
        }
        if v.fires() {
            if p.report_only {
                self.report_only.push(i);
            } else {
                self.enforced.push(i);
            }
        }
    }

    /// Notes why policy `i` fired although its condition could not be decided.
    #[cold]
    #[inline(never)]
    fn note_unknown(&mut self, p: &Policy, i: usize, why: Vec<String>) {
        let note = fail_closed_note(&p.name, why);
        if p.report_only {
            self.report_only_notes.push((i, note));
        } else {
            self.notes.push(note);
        }
    }
}

/// Fires the scope's policies for the event with `walk`, into `out` (a new [`Fired`]: filled in
/// place, as returning it would copy its inline buffer).
pub(crate) fn fire(
    walk: Walk,
    scope: &CompiledScope,
    facts: &Facts<'_>,
    ids: Ids,
    out: &mut Fired,
) {
    let event = &facts.req.event;
    match walk {
        Walk::Compiled => {
            let mut attrs = AttrTable::empty();
            attrs.fill(&scope.attr_slots, event);
            let (bucket, prune) = candidates(scope, event, ids);
            // With attribute indexes, only policies with no false attribute test are evaluated
            // (the others are false whatever the rest of their condition says).
            match prune {
                // A survivor's tests in the indexes that found the request's value are true:
                // only the rest of its condition is evaluated.
                Some(prune) => {
                    let mut survivors = prune.survivors(&attrs, bucket.len());
                    let known = survivors.known();
                    for k in &mut survivors {
                        if let Some(&i) = bucket.get(k) {
                            let decided = prune.decided(k, known);
                            judge(out, scope, facts, ids, &attrs, i as usize, decided);
                        }
                    }
                }
                None => {
                    for &i in bucket {
                        judge(out, scope, facts, ids, &attrs, i as usize, 0);
                    }
                }
            }
        }
        Walk::Traced => {
            let program = scope.trace_program();
            let ids = program.ids(event);
            let mut attrs = AttrTable::empty();
            attrs.fill(&program.attr_slots, event);
            let mut trace = Vec::with_capacity(scope.policies.len());
            for (i, p) in scope.policies.iter().enumerate() {
                let (Some(e), Some(labels)) = (program.exprs.get(i), program.labels.get(i)) else {
                    continue;
                };
                let mut predicates = Vec::new();
                let v = walk_traced(e, facts, ids, &attrs, &mut labels.iter(), &mut predicates);
                out.record(p, i, v, || reasons(e, facts, ids, &attrs));
                trace.push(policy_trace(p, v, predicates));
            }
            out.trace = Some(trace);
        }
        Walk::Reference => {
            for (i, p) in scope.policies.iter().enumerate() {
                let v = crate::reference::eval(&p.condition, facts);
                out.record(p, i, v, || {
                    let mut why = Vec::new();
                    crate::reference::unknown_reasons(&p.condition, facts, &mut why);
                    why
                });
            }
        }
    }
}

/// Evaluates candidate `i` on the compiled tree, but for the top-level conjuncts `decided`
/// already found true, and records its value.
#[inline(always)]
fn judge<'r>(
    out: &mut Fired,
    scope: &CompiledScope,
    facts: &Facts<'r>,
    ids: Ids,
    attrs: &AttrTable<'r>,
    i: usize,
    decided: u64,
) {
    if let (Some(e), Some(p)) = (scope.exprs.get(i), scope.policies.get(i)) {
        let v = if decided == 0 {
            eval(e, facts, ids, attrs)
        } else {
            eval_rest(e, decided, facts, ids, attrs)
        };
        out.record(p, i, v, || reasons(e, facts, ids, attrs));
    }
}

fn reasons<'r>(e: &CExpr, f: &Facts<'r>, ids: Ids, attrs: &AttrTable<'r>) -> Vec<String> {
    let mut why = Vec::new();
    unknown_reasons(e, f, ids, attrs, &mut why);
    why
}

/// The note of a policy that fired because its condition could not be decided.
fn fail_closed_note(policy: &str, mut why: Vec<String>) -> String {
    why.sort();
    why.dedup();
    format!(
        "policy `{policy}` fires because its condition cannot be decided (fail closed): {}",
        why.join("; ")
    )
}

/// Walks a condition as written, every leaf evaluated (no short-circuit) and recorded with its
/// label. Leaves are evaluated by the compiled evaluator, so the two walks cannot differ on one.
fn walk_traced<'r>(
    e: &CExpr,
    f: &Facts<'r>,
    ids: Ids,
    attrs: &AttrTable<'r>,
    labels: &mut std::slice::Iter<'_, Box<str>>,
    out: &mut Vec<PredicateTrace>,
) -> Tri {
    match e {
        CExpr::And(v) => v.iter().fold(Tri::True, |acc, c| {
            acc.and(walk_traced(c, f, ids, attrs, labels, out))
        }),
        CExpr::Or(v) => v.iter().fold(Tri::False, |acc, c| {
            acc.or(walk_traced(c, f, ids, attrs, labels, out))
        }),
        CExpr::Not(c) => walk_traced(c, f, ids, attrs, labels, out).not(),
        leaf => {
            let value = eval(leaf, f, ids, attrs);
            let note = if value == Tri::Unknown {
                reasons(leaf, f, ids, attrs).pop()
            } else {
                None
            };
            out.push(PredicateTrace {
                predicate: labels.next().map(|l| l.to_string()).unwrap_or_default(),
                value,
                note,
            });
            value
        }
    }
}

fn policy_trace(p: &Policy, v: Tri, predicates: Vec<PredicateTrace>) -> PolicyTrace {
    PolicyTrace {
        name: p.name.clone(),
        origin: format!("{}:{}", p.origin.file, p.origin.line),
        condition: v,
        fired: v.fires(),
        predicates,
        requirement: format!(
            "{} factor {} {}",
            p.requirement.aal, p.requirement.factors, p.requirement.validity
        ),
        satisfied: None,
        why: None,
        report_only: p.report_only,
    }
}

/// What the traced walk walks: each policy's condition lowered leaf for leaf (not simplified,
/// not reordered, no test dropped for the index), with the leaves' labels in the same order,
/// and the names it interned. Built on the first explanation a scope gives.
#[derive(Debug, Clone)]
pub(crate) struct TraceProgram {
    exprs: Vec<CExpr>,
    labels: Vec<Box<[Box<str>]>>,
    op_ids: crate::names::Places,
    res_ids: crate::names::Places,
    attr_slots: crate::names::Slots,
}

impl TraceProgram {
    pub(crate) fn build(scope: &CompiledScope) -> TraceProgram {
        let mut interner = crate::compile::intern::Interner::new(&scope.tenant);
        let exprs = scope
            .policies
            .iter()
            .map(|p| interner.lower(&p.condition))
            .collect();
        let labels = scope
            .policies
            .iter()
            .map(|p| {
                let mut v = Vec::new();
                p.condition
                    .for_each_leaf(&mut |l| v.push(describe(l).into()));
                v.into_boxed_slice()
            })
            .collect();
        TraceProgram {
            exprs,
            labels,
            op_ids: crate::names::Places::numbered(&interner.ops),
            res_ids: crate::names::Places::numbered(&interner.res),
            attr_slots: crate::names::Slots::new(&interner.attrs),
        }
    }

    fn ids(&self, event: &Event) -> Ids {
        Ids {
            op: match event {
                Event::Operation { name, .. } => self.op_ids.id(name.as_str()),
                _ => None,
            },
            res: match event {
                Event::Access { resource, .. } => self.res_ids.id(resource.as_str()),
                _ => None,
            },
        }
    }
}

/// A leaf as written in the policy language.
#[must_use]
pub(crate) fn describe(c: &Cond) -> String {
    let list =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    match c {
        Cond::OperationIn(s) if s.len() == 1 => format!("operation == {}", list(s)),
        Cond::OperationIn(s) => format!("operation in [{}]", list(s)),
        Cond::OperationClassIs(k) => format!("operation is {}", k.as_str()),
        Cond::ResourceIn(s) if s.len() == 1 => format!("resource == {}", list(s)),
        Cond::ResourceIn(s) => format!("resource in [{}]", list(s)),
        Cond::Risk(op, v) => format!("risk {} {v}", op.as_str()),
        Cond::AttrNum(n, op, v) => format!("{n} {} {v}", op.as_str()),
        Cond::AttrStrIn(n, s) => format!("{n} in [{}]", list(s)),
        Cond::AttrBool(n, b) => format!("{n} == {b}"),
        Cond::Signal(SignalKind::NewCountry, d) => format!("new_country({d}d)"),
        Cond::Signal(k, _) => k.as_str().to_string(),
        Cond::FirstAccess(r, None) => format!("first_access({r})"),
        Cond::FirstAccess(r, Some(d)) => format!("first_access({r}, {d}d)"),
        Cond::Script(s) => format!("script {}", stepup_dsl::fmt::quote(&s.source)),
        Cond::And(_) | Cond::Or(_) | Cond::Not(_) => "(condition)".to_string(),
    }
}
