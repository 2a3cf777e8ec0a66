//! From fired policies to a decision (SPEC §4, rules 3–9): satisfaction by the session, the
//! most-restrictive merge, eligibility, challenges, audit records and the effects to commit.
//! Also the completion of challenges by `step_up` events.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use stepup_core::{Aal, Factor, FactorSet, Requirement, Validity};
use stepup_dsl::model::{Policy, Tenant};

use crate::decision::{
    AuditRecord, Decision, DecisionKind, DenyReason, ReportOnly, Trace, WouldBe, audit_names,
    factors_label,
};
use crate::facts::Facts;
use crate::request::{Event, Request};
use crate::state::{
    AuthEvent, Binding, Challenge, ChallengeState, Grant, HistoryUpdate, LastSignIn, SessionState,
    State,
};

/// How long a challenge stays open.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// What the decision needs to know about the policies in force.
pub struct Scope<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// Policies in evaluation order.
    pub policies: &'a [Arc<Policy>],
    /// The request attributes each policy reads (same order).
    pub reads: &'a [Box<[Box<str>]>],
    /// Hash of the policy set.
    pub hash: &'a Arc<str>,
}

/// The values of the attributes `names` on this request (what a grant is bound to).
#[must_use]
pub fn binding(req: &Request, names: &[Box<str>]) -> Binding {
    let mut b: Binding = names
        .iter()
        .map(|n| (n.to_string(), req.event.attr(n).cloned()))
        .collect();
    b.sort_by(|x, y| x.0.cmp(&y.0));
    b.dedup_by(|x, y| x.0 == y.0);
    b
}

/// Whether `g` is an `every time` grant for `p` on this very request: same application, same
/// operation, the same values of every attribute `p` reads, unexpired.
fn grant_fits(g: &Grant, p: &Policy, reads: &[Box<str>], req: &Request, key: &str) -> bool {
    g.application == req.application
        && g.event_key == key
        && req.now < g.expires_at
        && g.policies.contains(&p.name)
        && reads.iter().all(|n| {
            g.binding
                .iter()
                .any(|(k, v)| k.as_str() == &**n && v.as_ref() == req.event.attr(n))
        })
}

/// Whether the session satisfies `p` for this event, and why (for explanations). `reads`: the
/// attributes `p` reads. A sign-in's own factors are an authentication event of that sign-in.
pub fn satisfied(
    p: &Policy,
    reads: &[Box<str>],
    tenant: &Tenant,
    req: &Request,
    session: &SessionState,
) -> (bool, &'static str) {
    let r = p.requirement;
    match r.validity {
        Validity::EveryTime => {
            let key = req.event.key();
            let ok = session
                .grants
                .iter()
                .any(|g| grant_fits(g, p, reads, req, &key));
            (
                ok,
                if ok {
                    "the step-up its challenge caused allows this one retry"
                } else {
                    "`every time`: needs a step-up for this very operation"
                },
            )
        }
        Validity::For(max_age) => {
            let mut proved = false;
            let own = match &req.event {
                Event::SignIn { factors, .. } => Some(AuthEvent {
                    at: req.now,
                    factors: *factors,
                    cap: None,
                }),
                _ => None,
            };
            for e in session.events.iter().chain(own.as_ref()) {
                if !e.proves(r.aal, r.factors, &tenant.strengths) {
                    continue;
                }
                proved = true;
                let age = req.now.since(e.at);
                if age >= 0 && (age as u64) < max_age {
                    return (true, "an authentication event proves it within max_age");
                }
            }
            (
                false,
                if proved {
                    "the proof is older than max_age"
                } else {
                    "no authentication event proves this AAL with an allowed factor"
                },
            )
        }
    }
}

fn audit(name: &'static str, req: &Request, hash: &Arc<str>) -> AuditRecord {
    AuditRecord {
        name,
        at: req.now,
        tenant: req.tenant.clone(),
        application: req.application.clone(),
        user: req.user.clone(),
        session: req.session.clone(),
        event: req.event.key(),
        challenge_id: None,
        policies: Vec::new(),
        required_aal: None,
        factor: None,
        risk: None,
        message: None,
        errors: Vec::new(),
        policy_set: Arc::clone(hash),
        would_be: None,
    }
}

/// What an allowed event teaches the history and the session.
fn allowed_effects(req: &Request) -> (Option<HistoryUpdate>, Option<AuthEvent>) {
    match &req.event {
        Event::SignIn { context, factors } => (
            Some(HistoryUpdate {
                device: context.device.clone(),
                country: context.country.clone().map(|c| (c, req.now)),
                // Only a located sign-in moves the impossible-travel reference.
                last_sign_in: context.location.map(|location| LastSignIn {
                    at: req.now,
                    country: context.country.clone(),
                    location: Some(location),
                }),
                access: None,
            }),
            Some(AuthEvent {
                at: req.now,
                factors: *factors,
                cap: None,
            }),
        ),
        Event::Access { resource, .. } => (
            Some(HistoryUpdate {
                access: Some((resource.clone(), req.now)),
                ..HistoryUpdate::default()
            }),
            None,
        ),
        Event::Operation { .. } | Event::StepUp { .. } => (None, None),
    }
}

fn elevation_secs(t: &Tenant) -> u64 {
    match t.default_validity {
        Validity::For(s) => s,
        Validity::EveryTime => 0,
    }
}

fn sorted_names<'p>(it: impl Iterator<Item = &'p Policy>) -> Vec<String> {
    let mut v: Vec<String> = it.map(|p| p.name.clone()).collect();
    v.sort();
    v
}

/// Builds the decision for an event whose fired policies are `fired` (indices into
/// `scope.policies`, in order).
pub fn finish(
    scope: &Scope<'_>,
    req: &Request,
    state: &State,
    facts: &Facts<'_>,
    fired: &[usize],
    errors: Vec<String>,
    explain: bool,
) -> Decision {
    let mut d = Decision::new(DecisionKind::Allow, Arc::clone(scope.hash));
    let session = &state.session;
    let t = scope.tenant;
    if explain || !fired.is_empty() {
        d.session_aal = session.aal(req.now, elevation_secs(t), &t.strengths);
    }
    // Script failures are reported in the explanation only: whether a script runs at all
    // depends on evaluation order, and decisions must not.
    let fired_p: Vec<&Policy> = fired
        .iter()
        .filter_map(|i| scope.policies.get(*i).map(|p| &**p))
        .collect();
    if fired_p.is_empty() {
        let (h, ev) = allowed_effects(req);
        if h.is_some() || ev.is_some() {
            let mut s = session.clone();
            s.events.extend(ev);
            s.established |= ev.is_some();
            s.trim();
            d.effects.session = ev.map(|_| s);
            d.effects.history = h;
        }
        if explain {
            d.risk = Some(facts.signals.breakdown());
        }
        d.errors = errors;
        return d;
    }
    d.risk = Some(facts.signals.breakdown());
    d.fired = sorted_names(fired_p.iter().copied());
    let (mut sat, mut unsat) = (Vec::new(), Vec::new());
    for i in fired {
        let (Some(p), Some(reads)) = (scope.policies.get(*i), scope.reads.get(*i)) else {
            continue;
        };
        if satisfied(p, reads, t, req, session).0 {
            sat.push((&**p, &**reads));
        } else {
            unsat.push(&**p);
        }
    }
    let sat_p: Vec<&Policy> = sat.iter().map(|(p, _)| *p).collect();
    d.satisfied = sorted_names(sat_p.iter().copied());
    if unsat.is_empty() {
        let mut rec = audit(audit_names::SKIPPED, req, scope.hash);
        rec.policies = d.fired.clone();
        rec.risk = d.risk.clone();
        rec.errors = errors.clone();
        rec.required_aal = sat_p.iter().map(|p| p.requirement.aal).max();
        d.audit.push(rec);
        let (h, ev) = allowed_effects(req);
        let key = req.event.key();
        let uses_grant = sat_p
            .iter()
            .any(|p| p.requirement.validity == Validity::EveryTime);
        if ev.is_some() || uses_grant {
            let mut s = session.clone();
            s.events.extend(ev);
            s.established |= ev.is_some();
            if uses_grant {
                // One retry: the grants this request fits are used up.
                s.grants.retain(|g| {
                    !sat.iter().any(|(p, reads)| {
                        p.requirement.validity == Validity::EveryTime
                            && grant_fits(g, p, reads, req, &key)
                    })
                });
            }
            s.trim();
            d.effects.session = Some(s);
        }
        d.effects.history = h;
        d.errors = errors;
        return d;
    }
    // Most restrictive wins.
    let mut aal = Aal::Aal1;
    let mut factors = FactorSet::ANY;
    let mut validity = Validity::For(u64::MAX);
    for p in &unsat {
        aal = aal.max(p.requirement.aal);
        factors = factors.intersect(p.requirement.factors);
        validity = validity.min(p.requirement.validity);
    }
    // The effective allowed factors: those allowed by every policy that can reach the AAL. None:
    // the merged requirement is unsatisfiable for everyone (a conflict, not an enrolment gap).
    let factors = factors.intersect(t.strengths.reaching(aal));
    let conflict = factors.is_empty();
    let req_m = Requirement {
        aal,
        factors,
        validity,
    };
    d.required = Some(req_m);
    let leader = unsat.iter().find(|p| p.requirement.aal == aal).copied();
    let unsat_names = sorted_names(unsat.iter().copied());
    let eligible = factors
        .intersect(req.enrolled)
        .intersect(t.strengths.reaching(aal));
    d.eligible = eligible;
    if conflict || eligible.is_empty() {
        d.kind = DecisionKind::Deny;
        d.deny = Some(if conflict {
            DenyReason::Conflict
        } else {
            DenyReason::StrongerFactorRequired
        });
        let msg = deny_message(conflict, &unsat_names, aal, factors);
        d.message = Some(msg.clone());
        let mut rec = audit(audit_names::DENIED, req, scope.hash);
        rec.policies = unsat_names;
        rec.required_aal = Some(aal);
        rec.risk = d.risk.clone();
        rec.message = Some(msg);
        rec.errors = errors.clone();
        d.audit.push(rec);
        d.errors = errors;
        return d;
    }
    d.kind = DecisionKind::StepUp;
    let message = leader
        .map_or(stepup_dsl::model::DEFAULT_MESSAGE, |p| {
            p.message_or_default()
        })
        .to_string();
    let mut s = session.clone();
    s.seq += 1;
    let id = challenge_id(scope.hash, req, s.seq);
    // A new challenge supersedes open ones, but never the session's pending sign-in.
    for c in &mut s.challenges {
        if c.state == ChallengeState::Open && !c.sign_in {
            c.state = ChallengeState::Closed;
        }
    }
    // What completing it teaches: what allowing the event would have (a sign-in's device,
    // country and place and its own authentication event; an access's first access).
    let (pending_history, pending_auth) = allowed_effects(req);
    let every_time: Vec<&Policy> = unsat
        .iter()
        .copied()
        .filter(|p| p.requirement.validity == Validity::EveryTime)
        .collect();
    let bound: Vec<Box<str>> = fired
        .iter()
        .filter_map(|i| Some((scope.policies.get(*i)?, scope.reads.get(*i)?)))
        .filter(|(p, _)| every_time.iter().any(|q| q.name == p.name))
        .flat_map(|(_, r)| r.iter().cloned())
        .collect();
    s.challenges.push(Challenge {
        id: id.clone(),
        application: req.application.clone(),
        sign_in: matches!(req.event, Event::SignIn { .. }),
        binding: binding(req, &bound),
        requirement: req_m,
        eligible,
        policies: unsat_names.clone(),
        every_time: sorted_names(every_time.iter().copied()),
        message: message.clone(),
        issued_at: req.now,
        expires_at: req.now.plus(CHALLENGE_TTL_SECS),
        event_key: req.event.key(),
        state: ChallengeState::Open,
        pending_history,
        pending_auth,
    });
    s.trim();
    d.effects.session = Some(s);
    d.message = Some(message.clone());
    d.challenge_id = Some(id.clone());
    let mut rec = audit(audit_names::INITIATED, req, scope.hash);
    rec.challenge_id = Some(id);
    rec.policies = unsat_names;
    rec.required_aal = Some(aal);
    rec.risk = d.risk.clone();
    rec.message = Some(message);
    rec.errors = errors.clone();
    d.audit.push(rec);
    d.errors = errors;
    d
}

/// The message of a deny: a conflict names the policies, a missing factor names the factors.
fn deny_message(conflict: bool, policies: &[String], aal: Aal, factors: FactorSet) -> String {
    if conflict {
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

/// What every report-only policy of the scope would have done (SPEC §12), each on its own as if
/// it alone were enforced, with an `auth.step_up_report_only` audit record for each would-be
/// prompt or refusal. `report_only`: the scope's report-only policies (indices, sorted by name);
/// `fired`: those that fired; `notes`: why some fired although unknown (fail closed). `facts`:
/// `None` when the event was not evaluated against policies (every result is `not_fired`).
#[expect(
    clippy::too_many_arguments,
    reason = "the same inputs as `finish`, plus the report-only indices"
)]
pub fn report_only(
    scope: &Scope<'_>,
    req: &Request,
    state: &State,
    facts: Option<&Facts<'_>>,
    report_only: &[u32],
    fired: &[usize],
    notes: &[(usize, String)],
    d: &mut Decision,
) {
    let t = scope.tenant;
    for &i in report_only {
        let i = i as usize;
        let (Some(p), Some(reads)) = (scope.policies.get(i), scope.reads.get(i)) else {
            continue;
        };
        let mut r = ReportOnly {
            policy: p.name.clone(),
            would_be: WouldBe::NotFired,
            required: None,
            eligible: FactorSet::EMPTY,
            deny: None,
            note: notes.iter().find(|(j, _)| *j == i).map(|(_, n)| n.clone()),
        };
        if !fired.contains(&i) {
            d.report_only.push(r);
            continue;
        }
        if satisfied(p, reads, t, req, &state.session).0 {
            r.would_be = WouldBe::Satisfied;
            d.report_only.push(r);
            continue;
        }
        let aal = p.requirement.aal;
        let factors = p.requirement.factors.intersect(t.strengths.reaching(aal));
        let eligible = factors.intersect(req.enrolled);
        r.required = Some(Requirement {
            factors,
            ..p.requirement
        });
        let message = if factors.is_empty() || eligible.is_empty() {
            r.would_be = WouldBe::Deny;
            r.deny = Some(if factors.is_empty() {
                DenyReason::Conflict
            } else {
                DenyReason::StrongerFactorRequired
            });
            deny_message(
                factors.is_empty(),
                std::slice::from_ref(&p.name),
                aal,
                factors,
            )
        } else {
            r.would_be = WouldBe::StepUp;
            r.eligible = eligible;
            p.message_or_default().to_string()
        };
        let mut rec = audit(audit_names::REPORT_ONLY, req, scope.hash);
        rec.policies = vec![p.name.clone()];
        rec.required_aal = Some(aal);
        rec.risk = facts.map(|f| f.signals.breakdown());
        rec.message = Some(message);
        rec.errors.extend(r.note.clone());
        rec.would_be = Some(r.would_be);
        d.audit.push(rec);
        d.report_only.push(r);
    }
}

fn challenge_id(hash: &str, req: &Request, seq: u64) -> String {
    let mut h = Sha256::new();
    for part in [hash, &req.tenant, &req.application, &req.user, &req.session] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(seq.to_le_bytes());
    h.update(req.now.0.to_le_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("ch_{hex}")
}

/// Completes the latest open challenge with `factor` (SPEC §4 rule 7).
#[must_use]
pub fn complete(
    tenant: &Tenant,
    hash: &Arc<str>,
    req: &Request,
    state: &State,
    factor: Factor,
    success: bool,
) -> Decision {
    let session = &state.session;
    let mut d = Decision::new(DecisionKind::Failed, Arc::clone(hash));
    d.session_aal = session.aal(req.now, elevation_secs(tenant), &tenant.strengths);
    let latest = session
        .challenges
        .iter()
        .rposition(|c| c.state == ChallengeState::Open);
    let mut rec = audit(audit_names::FAILED, req, hash);
    rec.factor = Some(factor);
    let Some(i) = latest else {
        let msg = "There is no open challenge to complete.".to_string();
        d.message = Some(msg.clone());
        rec.message = Some(msg);
        d.audit.push(rec);
        return d;
    };
    let Some(c) = session.challenges.get(i) else {
        return d;
    };
    d.challenge_id = Some(c.id.clone());
    d.required = Some(c.requirement);
    d.eligible = c.eligible;
    d.fired = c.policies.clone();
    rec.challenge_id = Some(c.id.clone());
    rec.policies = c.policies.clone();
    rec.required_aal = Some(c.requirement.aal);
    let failure = if req.now >= c.expires_at {
        Some("The challenge expired; try the action again.")
    } else if !success {
        Some("The factor could not be verified.")
    } else if !req.enrolled.contains(factor) {
        Some("That factor is not enrolled.")
    } else if !c.eligible.contains(factor) {
        Some("That factor cannot satisfy this challenge.")
    } else {
        None
    };
    let mut s = session.clone();
    if let Some(slot) = s.challenges.get_mut(i) {
        slot.state = if failure.is_some() {
            ChallengeState::Closed
        } else {
            ChallengeState::Completed
        };
    }
    if let Some(msg) = failure {
        d.message = Some(msg.to_string());
        rec.message = Some(msg.to_string());
        d.audit.push(rec);
        d.effects.session = Some(s);
        return d;
    }
    d.kind = DecisionKind::Completed;
    s.events.extend(c.pending_auth);
    s.established |= c.sign_in;
    s.events.push(AuthEvent {
        at: req.now,
        factors: FactorSet::one(factor),
        cap: None,
    });
    if !c.every_time.is_empty() {
        s.grants.retain(|g| g.expires_at > req.now);
        s.grants.push(Grant {
            challenge_id: c.id.clone(),
            application: c.application.clone(),
            binding: c.binding.clone(),
            event_key: c.event_key.clone(),
            policies: c.every_time.clone(),
            expires_at: req.now.plus(CHALLENGE_TTL_SECS),
        });
    }
    s.trim();
    d.effects.session = Some(s);
    d.effects.history = c.pending_history.clone();
    d.message = Some(c.message.clone());
    rec.name = audit_names::COMPLETED;
    rec.message = Some(c.message.clone());
    d.audit.push(rec);
    d
}

/// A deny for a request the engine cannot evaluate (unknown tenant, application or operation).
#[must_use]
pub fn refuse(req: &Request, hash: &Arc<str>, error: String) -> Decision {
    refuse_for(
        req,
        hash,
        DenyReason::CannotEvaluate,
        "This action cannot be checked right now, so it is refused.",
        error,
    )
}

/// A deny for an event of a session whose sign-in was never allowed (SPEC §10).
#[must_use]
pub fn refuse_unestablished(req: &Request, hash: &Arc<str>) -> Decision {
    refuse_for(
        req,
        hash,
        DenyReason::SessionNotEstablished,
        "Finish signing in first.",
        "the session's sign-in was not allowed (its step-up is not completed)".to_string(),
    )
}

/// A deny for a decision that cannot be loaded or committed (history store unavailable).
#[must_use]
pub fn refuse_for_store(req: &Request, hash: &Arc<str>, error: String) -> Decision {
    refuse_for(
        req,
        hash,
        DenyReason::StoreUnavailable,
        "This action cannot be checked right now, so it is refused.",
        error,
    )
}

fn refuse_for(
    req: &Request,
    hash: &Arc<str>,
    reason: DenyReason,
    msg: &str,
    error: String,
) -> Decision {
    let mut d = Decision::new(DecisionKind::Deny, Arc::clone(hash));
    d.deny = Some(reason);
    let msg = msg.to_string();
    d.message = Some(msg.clone());
    d.errors = vec![error.clone()];
    let mut rec = audit(audit_names::DENIED, req, hash);
    rec.message = Some(msg);
    rec.errors = vec![error];
    d.audit.push(rec);
    d
}

/// Attaches an explanation's merge line.
pub fn merge_note(trace: &mut Trace, d: &Decision) {
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
            r.factors,
            r.validity
        )
    });
    trace.notes.extend(d.errors.iter().cloned());
}
