//! How one request is decided: one pipeline, one module per step.
//!
//! ```text
//! route ──▶ refuse                                    (route.rs)
//!       ──▶ complete the latest open challenge        (challenge.rs)
//!       ──▶ fire ──▶ merge ──▶ allow | deny | challenge ──▶ audit
//!          (fire.rs) (merge.rs)                (challenge.rs) (audit.rs)
//!           └──▶ report-only results                  (report_only.rs)
//! ```
//!
//! Deciding is pure: the decision carries its effects, which [`crate::Engine::process`]
//! commits. What is recorded beyond the decision is chosen by [`Record`]; an explanation is the
//! record of the walk that decided, not a second evaluation.

mod audit;
mod challenge;
mod fire;
mod merge;
mod report_only;
mod route;

use std::sync::Arc;

use stepup_core::{Aal, FactorSet, Validity};
use stepup_dsl::model::Tenant;

use audit::refuse_for_store;
pub use challenge::CHALLENGE_TTL_SECS;
pub(crate) use challenge::IdSeed;
pub(crate) use fire::{TraceProgram, Walk};
pub(crate) use route::MAX_NAME_BYTES;

use crate::compile::CompiledScope;
use crate::decision::{Decision, DecisionKind, DenyReason, Trace, audit_names, factors_label};
use crate::engine::CompiledSet;
use crate::facts::Facts;
use crate::request::{Event, Location, Request};
use crate::risk::{Signals, ThreatFeed};
use crate::state::{AuthEvent, HistoryUpdate, LastSignIn, State, UserHistory};
use crate::tree::Ids;
use merge::{Merge, grant_fits};
use route::Route;

/// What a decision records beyond the decision itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Record {
    /// The decision and its effects, without audit records or the risk breakdown: the same
    /// decision otherwise (kind, requirement, factors, policies, message, challenge id,
    /// effects, report-only results, fail-closed notes), for callers that keep neither, such as
    /// a backtest deciding logged events again. Never commit a verdict's effects: a challenge
    /// issued, a grant spent or a session established must have its audit record (SPEC §4), so
    /// [`crate::Engine::process`] and the HTTP layer never decide a verdict.
    /// Building and freeing the records is about a tenth of a step-up's instructions. (The
    /// differential test holds it to the audited decision without those two fields.)
    Verdict,
    /// The decision, its audit records and effects (what services need).
    #[default]
    Decision,
    /// Also the explanation: every policy with every predicate's value, whether the session
    /// satisfied it and why, and how the requirement was merged.
    Explanation,
}

/// Decides `req` on `state` with `set`.
pub(crate) fn decide(
    set: &CompiledSet,
    req: &Request,
    state: &State,
    record: Record,
    walk: Walk,
) -> Decision {
    let explain = record == Record::Explanation;
    let walk = if explain && walk == Walk::Compiled {
        Walk::Traced
    } else {
        walk
    };
    // The refusals and completions build their one record before the verdict is known (it is
    // dropped); their report-only results and the evaluation build none. (Each branch returns
    // its decision in place.)
    match route::route(set, req, state) {
        Route::Refuse {
            scope,
            mut decision,
        } => {
            if let Some((scope, feed)) = scope {
                // What the session proves before the event, refused or not (SPEC §7).
                decision.session_aal = state.session.aal(&scope.tenant.strengths);
                record_risk(&mut decision, scope, feed, req, state, record);
                not_evaluated(&mut decision, scope, req, state, record);
            }
            unaudited(&mut decision, record);
            *decision
        }
        Route::Complete {
            scope,
            feed,
            factor,
            success,
        } => {
            let mut d = challenge::complete(&scope.tenant, set.hash(), req, state, factor, success);
            record_risk(&mut d, scope, feed, req, state, record);
            not_evaluated(&mut d, scope, req, state, record);
            if explain {
                let mut tr = Trace::default();
                tr.notes.push(match d.kind {
                    DecisionKind::Completed => format!("challenge completed with {factor}"),
                    _ => format!(
                        "challenge not completed: {}",
                        d.message.clone().unwrap_or_default()
                    ),
                });
                merge_note(&mut tr, &d);
                d.trace = Some(Box::new(tr));
            }
            unaudited(&mut d, record);
            d
        }
        Route::Evaluate { scope, feed, ids } => {
            evaluate(set, scope, feed, ids, req, state, record, walk)
        }
    }
}

/// The refusal of `req` because the history store failed (SPEC §10), its record carrying the
/// event's risk where its tenant is known (`history`: what the store gave before it failed; an
/// unknown tenant has no risk configuration, and its refusal no risk).
pub(crate) fn refused_for_store(
    set: &CompiledSet,
    req: &Request,
    history: Option<&UserHistory>,
    error: String,
) -> Decision {
    let mut d = refuse_for_store(req, set.hash(), error);
    if let Ok((scope, feed)) = set.scope(&req.tenant, &req.application) {
        with_risk(&mut d, scope, feed, req, history);
    }
    d
}

/// The risk score and signals of an event that was not evaluated against policies (a
/// completion, a refusal), in the decision and each of its records (SPEC §4: a record carries
/// them). A verdict keeps none.
fn record_risk(
    d: &mut Decision,
    scope: &CompiledScope,
    feed: &ThreatFeed,
    req: &Request,
    state: &State,
    record: Record,
) {
    if record != Record::Verdict {
        with_risk(d, scope, feed, req, state.history.as_ref().ok());
    }
}

/// Puts the event's risk in `d` (unless it has one) and in each of its records without one.
fn with_risk(
    d: &mut Decision,
    scope: &CompiledScope,
    feed: &ThreatFeed,
    req: &Request,
    history: Option<&UserHistory>,
) {
    let t = &scope.tenant;
    let signals = Signals::new(req.event.context(), history, &t.risk, feed, req.now);
    let risk = *d.risk.get_or_insert_with(|| signals.breakdown());
    for r in &mut d.audit {
        r.risk.get_or_insert(risk);
    }
}

/// A verdict's decision: without audit records and risk breakdown.
fn unaudited(d: &mut Decision, record: Record) {
    if record == Record::Verdict {
        d.audit = Vec::new();
        d.risk = None;
    }
}

/// The report-only results of an event that was not evaluated against policies: none fired.
fn not_evaluated(
    d: &mut Decision,
    scope: &CompiledScope,
    req: &Request,
    state: &State,
    record: Record,
) {
    if !scope.report_only.is_empty() {
        let audited = record != Record::Verdict;
        report_only::report(d, scope, req, state, None, &[], &[], audited);
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the route's findings and the request, passed down the pipeline"
)]
fn evaluate(
    set: &CompiledSet,
    scope: &CompiledScope,
    feed: &ThreatFeed,
    ids: Ids,
    req: &Request,
    state: &State,
    record: Record,
    walk: Walk,
) -> Decision {
    let explain = record == Record::Explanation;
    let audited = record != Record::Verdict;
    let t = &scope.tenant;
    let history = state.history.as_ref().ok();
    let facts = Facts::new(
        req,
        t,
        Signals::new(req.event.context(), history, &t.risk, feed, req.now),
        history,
    );
    // Step 2: fire.
    let mut fired = fire::Fired::new();
    fire::fire(walk, scope, &facts, ids, &mut fired);
    if fired.enforced.as_slice().is_empty()
        && fired.notes.is_empty()
        && state.history.is_ok()
        && scope.report_only.is_empty()
        && !explain
        && matches!(req.event, Event::Operation { .. })
    {
        // No policy fired and nothing failed: the operation is allowed, with nothing to judge,
        // record or commit (an operation teaches the history nothing). The steps below would
        // give this same decision; built here, it is written in the caller's place instead of
        // being moved there (its 592 bytes were the largest copy of the most common decision).
        // (A note comes only with a policy that fired; it is checked all the same.) The
        // differential test holds it: an explanation, which never takes this path, decides
        // the same.
        return Decision::new(DecisionKind::Allow, set.hash());
    }
    let mut d = Decision::new(DecisionKind::Allow, set.hash());
    if let Err(e) = &state.history {
        d.errors.push(format!(
            "{e}: the signals that need it are unknown (fail closed)"
        ));
    }
    d.errors.extend(fired.notes.iter().cloned());
    // Step 3: merge.
    let mut judged = merge::JudgedList::new();
    let merge = Merge::judge(
        &mut judged,
        scope,
        req,
        &state.session,
        fired.enforced.as_slice(),
    );
    if explain || !merge.judged.is_empty() {
        d.session_aal = state.session.aal(&t.strengths);
        if audited {
            d.risk = Some(facts.signals.breakdown());
        }
    }
    d.fired = merge.fired_names();
    d.satisfied = merge.satisfied_names();
    // The event's key, shared with the compiled scope when it knows the event.
    let key = || scope.event_key(&req.event, ids);
    if merge.unsatisfied().next().is_none() {
        allow(&mut d, t, req, state, &merge, audited, key);
    } else {
        let m = merge.most_restrictive(t, req.enrolled);
        d.required = Some(m.requirement);
        d.eligible = m.eligible;
        if m.conflict || m.eligible.is_empty() {
            // Step 5 for a refusal: nobody (conflict) or not this user can step up.
            let policies = merge.unsatisfied_names(&d.fired);
            let aal = m.requirement.aal;
            d.kind = DecisionKind::Deny;
            d.deny = Some(if m.conflict {
                DenyReason::Conflict
            } else {
                DenyReason::StrongerFactorRequired
            });
            d.message =
                Some(deny_message(m.conflict, &policies, aal, m.requirement.factors).into());
            if audited {
                audit::push_keyed(&mut d, audit_names::DENIED, req, key(), policies, Some(aal));
            }
        } else {
            // Step 4.
            challenge::issue(
                &mut d,
                set.id_seed(),
                req,
                state,
                &merge,
                &m,
                audited,
                key(),
            );
        }
    }
    if !scope.report_only.is_empty() {
        report_only::report(
            &mut d,
            scope,
            req,
            state,
            Some(&facts),
            &fired.report_only,
            &fired.report_only_notes,
            audited,
        );
    }
    if explain {
        let mut tr = Trace {
            policies: fired.trace.unwrap_or_default(),
            ..Trace::default()
        };
        for j in merge.judged {
            if let Some(p) = tr.policies.get_mut(j.index) {
                p.satisfied = Some(j.satisfied);
                p.why = Some(j.why.to_string());
            }
        }
        // Report-only policies are judged alone (their results say how); the trace says too.
        for &i in &fired.report_only {
            if let (Some(tp), Some(p), Some(reads)) = (
                tr.policies.get_mut(i),
                scope.policies.get(i),
                scope.reads.get(i),
            ) {
                let (ok, why) = merge::satisfied(p, reads, t, req, &state.session);
                tp.satisfied = Some(ok);
                tp.why = Some(why.to_string());
            }
        }
        merge_note(&mut tr, &d);
        d.trace = Some(Box::new(tr));
    }
    d
}

/// Makes `d` an allow: nothing fired, or the session satisfies everything that did. An allow
/// teaches the history and the session what the event proved, and spends the `every time`
/// grants it used.
fn allow(
    d: &mut Decision,
    tenant: &Tenant,
    req: &Request,
    state: &State,
    merge: &Merge<'_, '_>,
    audited: bool,
    event_key: impl Fn() -> Arc<str>,
) {
    // The session learns a sign-in's authentication here, the history what the event taught at
    // the end (an operation teaches it nothing: its large, empty effects are not moved around).
    let auth = allowed_auth(req);
    let used: Vec<_> = merge
        .satisfied()
        .filter(|j| j.policy.requirement.validity == Validity::EveryTime)
        .collect();
    if audited && !merge.judged.is_empty() {
        let aal = merge
            .satisfied()
            .map(|j| j.policy.requirement.aal)
            .max()
            .unwrap_or(Aal::Aal1);
        audit::push_keyed(
            d,
            audit_names::SKIPPED,
            req,
            event_key(),
            d.fired.clone(),
            Some(aal),
        );
    }
    if auth.is_some() || !used.is_empty() {
        let mut s = state.session.clone();
        s.events.extend(auth);
        s.established |= auth.is_some();
        // One retry: the grants this request fits are used up. (No key when none is: an
        // empty `Arc<str>` counts on a static every thread shares.)
        if !used.is_empty() {
            let key = event_key();
            s.grants.retain(|g| {
                !used
                    .iter()
                    .any(|j| grant_fits(g, j.policy, j.reads, tenant, req, &key))
            });
        }
        s.trim();
        d.effects.session = Some(s);
    }
    if !matches!(req.event, Event::Operation { .. }) {
        d.effects.history = allowed_history(req).map(Box::new);
    }
}

/// What an allowed event teaches the history and the session.
pub(crate) fn allowed_effects(req: &Request) -> (Option<HistoryUpdate>, Option<AuthEvent>) {
    (allowed_history(req), allowed_auth(req))
}

/// The authentication an allowed sign-in proves.
fn allowed_auth(req: &Request) -> Option<AuthEvent> {
    match &req.event {
        Event::SignIn { factors, .. } => Some(AuthEvent {
            at: req.now,
            factors: *factors,
            cap: None,
            unnamed: false,
        }),
        _ => None,
    }
}

/// What an allowed event teaches the history.
fn allowed_history(req: &Request) -> Option<HistoryUpdate> {
    match &req.event {
        Event::SignIn { context, .. } => Some(HistoryUpdate {
            device: context.device_id().map(str::to_string),
            // Learned in capitals, as ISO 3166 writes country codes.
            country: context
                .country_code()
                .map(|c| (c.to_ascii_uppercase(), req.now)),
            // Only a located sign-in moves the impossible-travel reference (a place not on
            // Earth is no location).
            last_sign_in: Location::valid(context.location).map(|location| LastSignIn {
                at: req.now,
                country: context.country_code().map(str::to_ascii_uppercase),
                location: Some(location),
            }),
            access: None,
        }),
        Event::Access { resource, .. } => Some(HistoryUpdate {
            access: Some((resource.clone(), req.now)),
            ..HistoryUpdate::default()
        }),
        Event::Operation { .. } | Event::StepUp { .. } => None,
    }
}

/// The message of a deny: a conflict names the policies, a missing factor names the factors.
fn deny_message(conflict: bool, policies: &[String], aal: Aal, factors: FactorSet) -> String {
    if let (true, [one]) = (conflict, policies) {
        format!("Policy {one} cannot be satisfied: it allows no factor that reaches {aal}.")
    } else if conflict {
        format!(
            "These policies cannot be satisfied together: {} allow no factor that reaches {aal}.",
            policies.join(", ")
        )
    } else {
        format!(
            "This operation requires a stronger factor. Set up {} to proceed.",
            factors_label(factors)
        )
    }
}

/// The explanation's merge line and notes.
fn merge_note(trace: &mut Trace, d: &Decision) {
    trace.merge = d.required.map(|r| {
        format!(
            "most restrictive of [{}]: {} factor {} {}",
            if d.kind == DecisionKind::Completed {
                d.fired.join(", ")
            } else {
                d.fired
                    .iter()
                    .filter(|n| !d.satisfied.contains(n))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            r.aal,
            // No factor in common (a conflict) is said, not left blank.
            if r.factors.is_empty() {
                "none in common".to_string()
            } else {
                r.factors.to_string()
            },
            r.validity
        )
    });
    trace.notes.extend(d.errors.iter().cloned());
}

#[cfg(test)]
mod tests {
    use stepup_core::{Aal, Factor, FactorSet};

    /// A conflict of one policy names it alone (an outside check read "These policies cannot
    /// be satisfied together: p allow ..."); of several, all of them.
    #[test]
    fn a_conflict_names_its_policies_in_a_sentence_that_fits() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(
            super::deny_message(true, &names(&["p"]), Aal::Aal3, FactorSet::EMPTY),
            "Policy p cannot be satisfied: it allows no factor that reaches aal3."
        );
        assert_eq!(
            super::deny_message(true, &names(&["a", "b"]), Aal::Aal2, FactorSet::EMPTY),
            "These policies cannot be satisfied together: a, b allow no factor that reaches aal2."
        );
        assert_eq!(
            super::deny_message(
                false,
                &names(&["a"]),
                Aal::Aal3,
                FactorSet::one(Factor::Webauthn)
            ),
            "This operation requires a stronger factor. Set up WebAuthn to proceed."
        );
    }
}
