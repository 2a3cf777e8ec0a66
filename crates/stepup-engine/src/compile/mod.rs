//! The compiler: a resolved policy set → a [`CompiledScope`] per (tenant, application).
//! Passes, one module each, chained in [`compile_tenant`]:
//! [`intern`] (names → small integers, typed leaves), [`simplify`] (flatten, fold constants),
//! [`order`] (cheap tests first), [`index`] (which policies can fire for which event) and
//! [`prune`] (attribute indexes inside an operation's bucket).

pub mod index;
pub mod intern;
pub mod order;
pub mod prune;
pub mod simplify;

use std::sync::Arc;

use stepup_dsl::ast::CmpOp;
use stepup_dsl::model::{Cond, Policy, Resolved, SignalKind, Tenant};
use stepup_dsl::script::{CtxField, Script};

use crate::request::Event;
use crate::tri::Tri;

/// A compiled condition: names interned, children ordered by cost.
#[derive(Debug, Clone)]
pub enum CExpr {
    /// All.
    And(Box<[CExpr]>),
    /// Any.
    Or(Box<[CExpr]>),
    /// Negation.
    Not(Box<CExpr>),
    /// The event's operation id is in the sorted set.
    Op(Box<[u32]>),
    /// The event's resource id is in the sorted set.
    Res(Box<[u32]>),
    /// `risk OP v`.
    Risk(CmpOp, f64),
    /// Number attribute.
    AttrNum(Attr, CmpOp, f64),
    /// String attribute in a set.
    AttrStr(Attr, std::collections::BTreeSet<String>),
    /// Bool attribute.
    AttrBool(Attr, bool),
    /// A signal.
    Signal(SignalKind, u32),
    /// First access.
    FirstAccess(Box<str>, Option<u32>),
    /// A script.
    Script(Arc<Script>),
    /// A constant.
    Const(Tri),
}

/// A request attribute: its name, and its slot in the per-request table when it has one.
#[derive(Debug, Clone)]
pub struct Attr {
    /// The name (one per tenant and attribute with a slot, shared by the leaves that read it).
    pub name: Arc<str>,
    /// Index in [`crate::tree::AttrTable`] (the first [`crate::tree::MAX_ATTR_SLOTS`] attributes).
    pub slot: Option<u8>,
}

/// One (tenant, application), compiled.
#[derive(Debug, Clone)]
pub struct CompiledScope {
    /// The tenant's configuration.
    pub tenant: Tenant,
    /// Policies in evaluation order.
    pub policies: Vec<Arc<Policy>>,
    /// Their compiled conditions (shared by the scopes of a tenant that hold the same policy).
    pub exprs: Vec<Arc<CExpr>>,
    /// The request attributes each policy reads (conditions and scripts), sorted: an `every
    /// time` grant is bound to their values.
    pub reads: Vec<Arc<[Box<str>]>>,
    /// Operation name → id.
    pub op_ids: crate::names::Places,
    /// Resource name → id.
    pub res_ids: crate::names::Places,
    /// The operation names the scope knows, by how they read (see [`crate::names::Readings`]);
    /// empty when the tenant declares a catalog of operations.
    pub op_readings: crate::names::Readings,
    /// The resource names the scope knows, by how they read; empty when the tenant declares
    /// its resource classes.
    pub res_readings: crate::names::Readings,
    /// Attribute name → slot.
    pub attr_slots: crate::names::Slots,
    /// Candidates per event.
    pub index: index::Index,
    /// The report-only policies (indices into `policies`), sorted by name: evaluated with the
    /// others, reported, never enforced.
    pub report_only: Box<[u32]>,
    /// What explanations walk, built on the first one.
    trace: std::sync::OnceLock<crate::decide::TraceProgram>,
    /// Per policy, what the step-ups it causes share instead of copying.
    pub(crate) texts: Vec<Arc<PolicyText>>,
    /// The event keys of the operations, resources and sign-ins the scope knows.
    pub(crate) keys: Arc<EventKeys>,
}

/// A policy's texts as a step-up holds them: built once, shared by every challenge and audit
/// record of it (a reference count, not an allocation per decision).
#[derive(Debug)]
pub(crate) struct PolicyText {
    /// Its message, or the default one.
    pub(crate) message: Arc<str>,
    /// Its name alone: the policy list of a step-up that it alone causes.
    pub(crate) alone: Arc<[String]>,
}

impl PolicyText {
    fn of(p: &Policy) -> Arc<PolicyText> {
        Arc::new(PolicyText {
            message: p.message_or_default().into(),
            alone: Arc::from([p.name.clone()]),
        })
    }
}

/// The event keys of a tenant's interned operations and resources, by id (each made by
/// [`Event::shared_key`], so it is the key itself), and of a sign-in.
#[derive(Debug)]
pub(crate) struct EventKeys {
    ops: Box<[Option<Arc<str>>]>,
    res: Box<[Option<Arc<str>>]>,
    sign_in: Arc<str>,
}

impl EventKeys {
    fn new(interner: &intern::Interner<'_>) -> EventKeys {
        let by_id = |map: &crate::names::NameMap<u32>, event: &dyn Fn(&str) -> Event| {
            // An id with no name (none is expected) has no key: the event's own is made.
            let mut keys: Vec<Option<Arc<str>>> = vec![None; map.len()];
            for (name, &id) in map.iter() {
                if let Some(slot) = keys.get_mut(id as usize) {
                    *slot = Some(event(name).shared_key());
                }
            }
            keys.into_boxed_slice()
        };
        EventKeys {
            ops: by_id(&interner.ops, &|name| Event::Operation {
                name: name.to_string(),
                attrs: Vec::new(),
                context: None,
            }),
            res: by_id(&interner.res, &|name| Event::Access {
                resource: name.to_string(),
                context: None,
            }),
            sign_in: Event::SignIn {
                context: crate::request::Context::default(),
                factors: stepup_core::FactorSet::EMPTY,
            }
            .shared_key(),
        }
    }
}

impl CompiledScope {
    /// The key of `event` (with the ids the route found for it): shared when the scope knows
    /// the operation or resource, made otherwise.
    pub(crate) fn event_key(&self, event: &Event, ids: crate::tree::Ids) -> Arc<str> {
        let known = match event {
            Event::Operation { .. } => ids.op.and_then(|k| self.keys.ops.get(k as usize)?.as_ref()),
            Event::Access { .. } => ids
                .res
                .and_then(|k| self.keys.res.get(k as usize)?.as_ref()),
            Event::SignIn { .. } => Some(&self.keys.sign_in),
            Event::StepUp { .. } => None,
        };
        known.map_or_else(|| event.shared_key(), Arc::clone)
    }

    /// The conditions as written, for the traced walk of explanations.
    pub(crate) fn trace_program(&self) -> &crate::decide::TraceProgram {
        self.trace
            .get_or_init(|| crate::decide::TraceProgram::build(self))
    }
}

/// The request attributes a condition reads, in DSL comparisons and in scripts.
#[must_use]
pub fn attributes_read(c: &Cond) -> Box<[Box<str>]> {
    let mut names = Vec::new();
    read_names(c, &mut names);
    names.into_iter().map(Box::from).collect()
}

/// The names a scope's policies spell for `field` (the operation or the resource), by how they
/// read: the names its conditions test, and the strings of its scripts that read the field.
fn readings(
    names: &crate::names::NameMap<u32>,
    policies: &[Arc<Policy>],
    field: &CtxField,
) -> crate::names::Readings {
    let mut strings: Vec<String> = Vec::new();
    for p in policies {
        p.condition.for_each_leaf(&mut |leaf| {
            if let Cond::Script(s) = leaf
                && s.reads().contains(field)
            {
                strings.extend(s.strings());
            }
        });
    }
    crate::names::Readings::new(
        names
            .iter()
            .map(|(n, _)| n)
            .chain(strings.iter().map(String::as_str)),
    )
}

/// The names [`attributes_read`] gives, borrowed, in `names` (cleared first).
fn read_names<'c>(c: &'c Cond, names: &mut Vec<&'c str>) {
    names.clear();
    c.for_each_leaf(&mut |leaf| match leaf {
        Cond::AttrNum(n, ..) | Cond::AttrStrIn(n, _) | Cond::AttrBool(n, _) => {
            names.push(n.as_str());
        }
        Cond::Script(s) => {
            for f in s.reads() {
                if let CtxField::Attr(n) = f {
                    names.push(n.as_str());
                }
            }
        }
        _ => {}
    });
    names.sort_unstable();
    names.dedup();
}

/// The lists of attributes the policies of one tenant read, each list made once: policies that
/// read the same attributes (most of a tenant's, about the same operations) share it.
#[derive(Default)]
struct ReadLists<'c> {
    lists: std::collections::HashMap<Vec<&'c str>, Arc<[Box<str>]>>,
    scratch: Vec<&'c str>,
}

impl<'c> ReadLists<'c> {
    /// [`attributes_read`] of `c`, shared.
    fn of(&mut self, c: &'c Cond) -> Arc<[Box<str>]> {
        read_names(c, &mut self.scratch);
        if let Some(list) = self.lists.get(self.scratch.as_slice()) {
            return Arc::clone(list);
        }
        let list: Arc<[Box<str>]> = self.scratch.iter().map(|n| Box::from(*n)).collect();
        self.lists.insert(self.scratch.clone(), Arc::clone(&list));
        list
    }
}

/// One policy lowered once for all the scopes of its tenant.
struct Lowered {
    /// Simplified and ordered, when a scope with the index off holds it.
    expr: Option<Arc<CExpr>>,
    /// The same without its top-level operation tests, when a scope with the index on holds it
    /// (a policy is in the buckets of those operations alone).
    without_op: Option<Arc<CExpr>>,
    /// Where it may fire (from the condition with its operation tests).
    guard: index::Guard,
    reads: Arc<[Box<str>]>,
    text: Arc<PolicyText>,
}

/// Compiles the scopes of one tenant (the tenant alone first, then each of its applications). A
/// policy held by several scopes (the tenant's policies are in every application's) is lowered
/// once: names are interned per tenant, so its compiled condition is the same in each. An
/// application that holds the tenant's policies unchanged is `None`: it decides with the
/// tenant's scope.
#[must_use]
pub fn compile_tenant(scopes: &[Resolved<'_>]) -> Vec<Option<CompiledScope>> {
    let Some(first) = scopes.first() else {
        return Vec::new();
    };
    let mut interner = intern::Interner::new(first.tenant);
    // By condition: a policy held by several scopes is one `Arc`, and an application with
    // `cache off` holds copies of its tenant's policies (`every time`) that share their
    // condition, name and message, so they are lowered once too (each was lowered again: a
    // review's 1,500 such applications over 300 policies took 20 s and 4 GB to load).
    let mut lowered: std::collections::HashMap<*const Cond, Lowered> =
        std::collections::HashMap::new();
    // Which forms of the conditions the scopes need (copied only when both are).
    let indexed = |r: &Resolved<'_>| r.policies.len() >= index::INDEX_THRESHOLD;
    let (with_op, without_op) = (
        scopes.iter().any(|r| !indexed(r)),
        scopes.iter().any(indexed),
    );
    let mut read_lists = ReadLists::default();
    for r in scopes {
        for p in &r.policies {
            lowered.entry(Arc::as_ptr(&p.condition)).or_insert_with(|| {
                let expr = order::order(simplify::simplify(interner.lower(&p.condition)));
                let guard = index::guard(&expr);
                let (expr, dropped) = match (with_op, without_op) {
                    (true, true) => (Some(expr.clone()), Some(index::drop_implied_op(expr))),
                    (false, true) => (None, Some(index::drop_implied_op(expr))),
                    _ => (Some(expr), None),
                };
                Lowered {
                    expr: expr.map(Arc::new),
                    without_op: dropped.map(Arc::new),
                    guard,
                    reads: read_lists.of(&p.condition),
                    text: PolicyText::of(p),
                }
            });
        }
    }
    let keys = Arc::new(EventKeys::new(&interner));
    scopes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (i == 0 || !same_policies(r, first)).then(|| scope_of(r, &interner, &lowered, &keys))
        })
        .collect()
}

/// Whether two resolved scopes of one tenant hold the same policies in the same order (the
/// same policy, or an equal one: the built-in admin policy is made anew for each scope).
fn same_policies(a: &Resolved<'_>, b: &Resolved<'_>) -> bool {
    std::ptr::eq(a.tenant, b.tenant)
        && a.policies.len() == b.policies.len()
        && a.policies
            .iter()
            .zip(&b.policies)
            .all(|(p, q)| Arc::ptr_eq(p, q) || p == q)
}

fn scope_of(
    r: &Resolved<'_>,
    interner: &intern::Interner<'_>,
    lowered: &std::collections::HashMap<*const Cond, Lowered>,
    keys: &Arc<EventKeys>,
) -> CompiledScope {
    let of = |p: &Arc<Policy>| lowered.get(&Arc::as_ptr(&p.condition));
    // Every policy of the scope was lowered; one that was not would fire on every event (fail
    // closed), never be skipped.
    let always = || Arc::new(CExpr::Const(Tri::True));
    let all = index::Guard::all();
    let index_on = r.policies.len() >= index::INDEX_THRESHOLD;
    let guards: Vec<&index::Guard> = r
        .policies
        .iter()
        .map(|p| match of(p) {
            Some(l) if index_on => &l.guard,
            _ => &all,
        })
        .collect();
    let index = index::build(&guards, interner.ops.len(), interner.res.len());
    // With the index on, a bucket only holds policies whose top-level operation test it already
    // passed: that test is dropped from the tree.
    let exprs: Vec<Arc<CExpr>> = r
        .policies
        .iter()
        .map(|p| {
            let form = of(p).and_then(|l| if index_on { &l.without_op } else { &l.expr }.as_ref());
            form.map_or_else(always, Arc::clone)
        })
        .collect();
    let reads = r
        .policies
        .iter()
        .map(|p| {
            of(p).map_or_else(
                || attributes_read(&p.condition).into(),
                |l| Arc::clone(&l.reads),
            )
        })
        .collect();
    let mut report_only: Vec<(&str, u32)> = r
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.report_only)
        .map(|(i, p)| (p.name.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    report_only.sort_unstable();
    let texts = r
        .policies
        .iter()
        .map(|p| {
            // Shared with the policy whose condition it shares only when it says the same (a
            // `cache off` copy does; a policy built otherwise by an embedder may not).
            of(p)
                .map(|l| &l.text)
                .filter(|t| {
                    t.alone.first() == Some(&p.name) && *t.message == *p.message_or_default()
                })
                .map_or_else(|| PolicyText::of(p), Arc::clone)
        })
        .collect();
    CompiledScope {
        tenant: r.tenant.clone(),
        policies: r.policies.clone(),
        exprs,
        reads,
        op_ids: crate::names::Places::numbered(&interner.ops),
        res_ids: crate::names::Places::numbered(&interner.res),
        // Read only where the tenant has no catalog (a catalog refuses every other name).
        op_readings: if r.tenant.operations.is_empty() {
            readings(&interner.ops, &r.policies, &CtxField::Operation)
        } else {
            crate::names::Readings::default()
        },
        res_readings: if r.tenant.resources.is_empty() {
            readings(&interner.res, &r.policies, &CtxField::Resource)
        } else {
            crate::names::Readings::default()
        },
        attr_slots: crate::names::Slots::new(&interner.attrs),
        index,
        report_only: report_only.into_iter().map(|(_, i)| i).collect(),
        trace: std::sync::OnceLock::new(),
        texts,
        keys: Arc::clone(keys),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;
    use crate::tree::Ids;

    /// An application that changes none of its tenant's policies decides with the tenant's
    /// scope, compiled once; one that overrides or adds a policy, or turns caching off, gets
    /// its own. Built-in admin policies (made anew per scope) count as unchanged.
    #[test]
    fn an_application_that_changes_nothing_shares_its_tenants_scope() {
        let mut text = String::from(
            "tenant t {\n  operation pay sensitive\n  operation wipe admin\n  attribute amount: number\n",
        );
        for i in 0..10 {
            text.push_str(&format!(
                "  policy p{i} {{ when operation == pay and amount > {i}00 require aal2 for 5m }}\n"
            ));
        }
        text.push_str(
            "}\napplication same of t {\n}\napplication over of t {\n  override policy p3 { when operation == pay require aal3 for 5m }\n}\napplication more of t {\n  when operation == wipe require aal3\n}\napplication nocache of t {\n  cache off\n}\n",
        );
        let set = crate::CompiledSet::from_text("t.policy", &text).unwrap();
        let scope = |app: &str| set.scope("t", app).unwrap().0 as *const CompiledScope;
        let (base, _) = set.scope("t", "").unwrap();
        assert!(
            base.policies
                .iter()
                .any(|p| p.name == stepup_dsl::model::ADMIN_DEFAULT_POLICY),
            "the tenant has a built-in admin policy"
        );
        assert_eq!(scope("same"), scope(""));
        for app in ["over", "more", "nocache"] {
            assert_ne!(scope(app), scope(""), "{app} has its own scope");
        }
        let (over, _) = set.scope("t", "over").unwrap();
        assert!(
            over.policies
                .iter()
                .any(|p| p.name == "p3" && p.requirement.aal == stepup_core::Aal::Aal3)
        );
        // `cache off` holds copies of the tenant's policies, `every time`, with their very
        // conditions: each is lowered once, shared with the tenant's scope (a review: lowered
        // again per application, 1,500 of them over 300 policies took 20 s and 4 GB to load).
        let (nocache, _) = set.scope("t", "nocache").unwrap();
        for (i, p) in nocache.policies.iter().enumerate() {
            assert_eq!(p.requirement.validity, stepup_core::Validity::EveryTime);
            if p.name == stepup_dsl::model::ADMIN_DEFAULT_POLICY {
                continue;
            }
            let j = base.policies.iter().position(|q| q.name == p.name).unwrap();
            assert!(Arc::ptr_eq(&p.condition, &base.policies[j].condition));
            assert!(Arc::ptr_eq(&nocache.exprs[i], &base.exprs[j]), "{}", p.name);
            assert!(Arc::ptr_eq(&nocache.texts[i], &base.texts[j]), "{}", p.name);
        }
    }

    #[test]
    fn a_shared_event_key_is_the_events_key() {
        let set = crate::CompiledSet::from_text(
            "t.policy",
            "tenant t {\n  operation pay sensitive\n  operation view routine\n  operation a_very_long_operation_name_that_does_not_fit_in_sixty_four_bytes_of_stack sensitive\n  resource reports\n  resource x\n  policy p { when operation == pay require aal2 for 5m }\n}\napplication a of t {\n  when resource == reports require aal2 for 5m\n}\n",
        )
        .unwrap();
        for app in ["", "a"] {
            let (scope, _) = set.scope("t", app).unwrap();
            let mut events: Vec<(Event, Ids)> = Vec::new();
            for op in [
                "pay",
                "view",
                "a_very_long_operation_name_that_does_not_fit_in_sixty_four_bytes_of_stack",
                "unknown",
            ] {
                let ids = Ids {
                    op: scope.op_ids.id(op),
                    res: None,
                };
                let event = Event::Operation {
                    name: op.into(),
                    attrs: Vec::new(),
                    context: None,
                };
                events.push((event, ids));
            }
            for res in ["reports", "x", "unknown"] {
                let ids = Ids {
                    op: None,
                    res: scope.res_ids.id(res),
                };
                events.push((
                    Event::Access {
                        resource: res.into(),
                        context: None,
                    },
                    ids,
                ));
            }
            events.push((
                Event::SignIn {
                    context: crate::request::Context::default(),
                    factors: stepup_core::FactorSet::EMPTY,
                },
                Ids {
                    op: None,
                    res: None,
                },
            ));
            events.push((
                Event::StepUp {
                    factor: stepup_core::Factor::Totp,
                    success: true,
                },
                Ids {
                    op: None,
                    res: None,
                },
            ));
            for (event, ids) in &events {
                assert_eq!(&*scope.event_key(event, *ids), event.key(), "{event:?}");
            }
            assert!(
                scope.op_ids.id("pay").is_some() && scope.res_ids.id("reports").is_some(),
                "the keys above were the shared ones"
            );
        }
    }

    /// Policies of a tenant that read the same attributes share one list of them; policies
    /// that read different ones never do (a grant bound to the wrong attributes would be
    /// spent, or kept, for the wrong requests). Leaves reading an attribute share its name.
    #[test]
    fn read_lists_are_shared_only_between_equal_reads() {
        let text = "tenant t {\n  operation pay sensitive\n  attribute amount: number\n  attribute country: string\n  policy a { when operation == pay and amount > 1 and country in [FR] require aal2 every time }\n  policy b { when country in [DE] and amount < 9 and operation == pay require aal2 every time }\n  policy c { when operation == pay and amount > 5 require aal2 every time }\n  policy d { when operation == pay and script \"ctx.amount > 3\" require aal2 every time }\n}\n";
        let set = crate::CompiledSet::from_text("t.policy", text).unwrap();
        let (scope, _) = set.scope("t", "").unwrap();
        let reads = |name: &str| {
            let i = scope.policies.iter().position(|p| p.name == name).unwrap();
            Arc::clone(&scope.reads[i])
        };
        let (a, b, c, d) = (reads("a"), reads("b"), reads("c"), reads("d"));
        assert_eq!(&*a, &["amount".into(), "country".into()] as &[Box<str>]);
        assert!(Arc::ptr_eq(&a, &b), "equal reads, one list");
        assert_eq!(&*c, &["amount".into()] as &[Box<str>]);
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(Arc::ptr_eq(&c, &d), "a script's reads count as the DSL's");
        for (i, p) in scope.policies.iter().enumerate() {
            assert_eq!(
                *scope.reads[i],
                *attributes_read(&p.condition),
                "{}: the shared list is the policy's own",
                p.name
            );
        }
    }

    /// Every attribute leaf of `e`.
    fn attrs_of<'e>(e: &'e CExpr, out: &mut Vec<&'e Attr>) {
        match e {
            CExpr::And(v) | CExpr::Or(v) => v.iter().for_each(|c| attrs_of(c, out)),
            CExpr::Not(c) => attrs_of(c, out),
            CExpr::AttrNum(a, ..) | CExpr::AttrStr(a, _) | CExpr::AttrBool(a, _) => out.push(a),
            _ => {}
        }
    }

    /// The leaves of a scope that read `name`.
    fn leaves<'s>(scope: &'s CompiledScope, name: &str) -> Vec<&'s Attr> {
        let mut all = Vec::new();
        scope.exprs.iter().for_each(|e| attrs_of(e, &mut all));
        all.retain(|a| &*a.name == name);
        all
    }

    /// An attribute past the slots is read by name, with a name of its own, and decides as an
    /// attribute with a slot does: over the bound steps up, absent or mistyped fails closed
    /// (steps up), under the bound allows, and a repeated attribute is unknown (steps up).
    /// The leaves that read an attribute with a slot share its name.
    #[test]
    fn an_attribute_past_the_slots_decides_as_one_with_a_slot() {
        use crate::request::{Event, Request, Value};
        use crate::state::State;
        // 32 policies on another operation take the slots first (slots go in the order leaves
        // are lowered); the target reads `a0` (a slot) or `a39` (none) on `pay`.
        let set_for = |target: &str| {
            let mut text = String::from(
                "tenant t {\n  operation pay sensitive\n  operation other sensitive\n",
            );
            for i in 0..40 {
                text.push_str(&format!("  attribute a{i}: number\n"));
            }
            for i in 0..32 {
                text.push_str(&format!(
                    "  policy f{i} {{ when operation == other and a{i} > 0 require aal2 }}\n"
                ));
            }
            text.push_str(&format!(
                "  policy target {{ when operation == pay and {target} > 100 and {target} < 1000 require aal2 }}\n}}\n"
            ));
            crate::CompiledSet::from_text("t.policy", &text).unwrap()
        };
        let (slotted, past) = (set_for("a0"), set_for("a39"));
        let (s_scope, _) = slotted.scope("t", "").unwrap();
        let (p_scope, _) = past.scope("t", "").unwrap();
        let s_leaves = leaves(s_scope, "a0");
        assert!(s_leaves.len() >= 3 && s_leaves.iter().all(|a| a.slot.is_some()));
        assert!(
            s_leaves
                .iter()
                .all(|a| Arc::ptr_eq(&a.name, &s_leaves[0].name)),
            "one name per slotted attribute"
        );
        let p_leaves = leaves(p_scope, "a39");
        assert_eq!(p_leaves.len(), 2);
        assert!(p_leaves.iter().all(|a| a.slot.is_none()), "past the slots");
        let request = |name: &str, values: &[Value]| Request {
            tenant: "t".into(),
            application: "".into(),
            user: "u".into(),
            enrolled: stepup_core::FactorSet::ANY,
            session: "s".into(),
            now: stepup_core::Timestamp(1_800_000_000),
            event: Event::Operation {
                name: "pay".into(),
                attrs: values.iter().map(|v| (name.into(), v.clone())).collect(),
                context: None,
            },
        };
        let state = State::established();
        let cases: [(&[Value], crate::DecisionKind); 6] = [
            (&[Value::Number(500.0)], crate::DecisionKind::StepUp),
            (&[], crate::DecisionKind::StepUp),
            (&[Value::Str("500".into())], crate::DecisionKind::StepUp),
            (&[Value::Number(f64::NAN)], crate::DecisionKind::StepUp),
            (&[Value::Number(5.0)], crate::DecisionKind::Allow),
            (
                &[Value::Number(500.0), Value::Number(5.0)],
                crate::DecisionKind::StepUp,
            ),
        ];
        for (values, want) in cases {
            let s = slotted.decide(&request("a0", values), &state, false);
            let p = past.decide(&request("a39", values), &state, false);
            assert_eq!((s.kind, p.kind), (want, want), "{values:?}");
        }
        // A repeated attribute has no one value on either path, whichever comes first: it is
        // unknown and fires (an integrator's review: the first counted, and a first value
        // under the bound allowed what a last one over it would step up).
        for twice in [
            [Value::Number(5.0), Value::Number(500.0)],
            [Value::Number(5.0), Value::Number(5.0)],
        ] {
            for (set, name) in [(&slotted, "a0"), (&past, "a39")] {
                let d = set.decide(&request(name, &twice), &state, false);
                assert_eq!(d.kind, crate::DecisionKind::StepUp, "{name} {twice:?}");
                assert!(
                    d.errors.iter().any(|e| e.contains("given twice")),
                    "{name}: {:?}",
                    d.errors
                );
            }
        }
        // Three times, too (the table's mark is not undone by a third).
        let thrice = [Value::Number(5.0), Value::Number(5.0), Value::Number(5.0)];
        assert_eq!(
            slotted.decide(&request("a0", &thrice), &state, false).kind,
            crate::DecisionKind::StepUp
        );
    }
}
