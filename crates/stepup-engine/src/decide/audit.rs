//! Step 5, audit: the one builder of the records a decision writes, and the refusals (decisions
//! made of a reason and a record, before any policy is evaluated).

use std::sync::Arc;

use stepup_core::Aal;

use crate::decision::{
    AuditRecord, Decision, DecisionKind, DenyReason, Names, SetHash, audit_names,
};
use crate::request::Request;

/// A record named `name` for `req`, decided by the set `hash`, with nothing else in it.
pub(crate) fn record(name: &'static str, req: &Request, hash: SetHash) -> AuditRecord {
    record_keyed(name, req, hash, req.event.shared_key())
}

/// [`record`], with the event's key already made (a step-up shares it with its challenge).
pub(crate) fn record_keyed(
    name: &'static str,
    req: &Request,
    hash: SetHash,
    event: Arc<str>,
) -> AuditRecord {
    AuditRecord {
        name,
        at: req.now,
        tenant: req.tenant.clone(),
        application: req.application.clone(),
        user: req.user.clone(),
        session: req.session.clone(),
        event,
        challenge_id: None,
        policies: Names::EMPTY,
        required_aal: None,
        factor: None,
        risk: None,
        message: None,
        errors: Vec::new(),
        policy_set: hash,
        would_be: None,
    }
}

/// Appends the record of a decision that evaluated policies: the `policies` it names, the
/// AAL they required, and the decision's risk, message, challenge and fail-closed notes.
pub(crate) fn push(
    d: &mut Decision,
    name: &'static str,
    req: &Request,
    policies: Names,
    required_aal: Option<Aal>,
) {
    push_keyed(d, name, req, req.event.shared_key(), policies, required_aal);
}

/// [`push`], with the event's key already made.
pub(crate) fn push_keyed(
    d: &mut Decision,
    name: &'static str,
    req: &Request,
    event: Arc<str>,
    policies: Names,
    required_aal: Option<Aal>,
) {
    let mut r = record_keyed(name, req, d.policy_set, event);
    r.policies = policies;
    r.required_aal = required_aal;
    r.risk.clone_from(&d.risk);
    r.message.clone_from(&d.message);
    r.challenge_id.clone_from(&d.challenge_id);
    r.errors.clone_from(&d.errors);
    // One record is the rule: a vector of exactly one keeps the allocation in the allocator's
    // small-size cache (the default first capacity of four records is over 1 KiB). The first
    // is allocated as one record, not grown from none.
    if d.audit.capacity() == 0 {
        d.audit = vec![r];
    } else {
        d.audit.reserve_exact(1);
        d.audit.push(r);
    }
}

/// A deny for a request the engine cannot evaluate (unknown tenant, application or operation).
#[must_use]
pub fn refuse(req: &Request, hash: SetHash, error: String) -> Decision {
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
pub fn refuse_unestablished(req: &Request, hash: SetHash) -> Decision {
    refuse_for(
        req,
        hash,
        DenyReason::SessionNotEstablished,
        "Finish signing in first.",
        "the session's sign-in was not allowed (its step-up is not completed)".to_string(),
    )
}

/// A deny for a decision whose state cannot be loaded or whose effects cannot be committed
/// (the history store is unavailable, SPEC §10).
#[must_use]
pub fn refuse_for_store(req: &Request, hash: SetHash, error: String) -> Decision {
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
    hash: SetHash,
    reason: DenyReason,
    msg: &str,
    error: String,
) -> Decision {
    let mut d = Decision::new(DecisionKind::Deny, hash);
    d.deny = Some(reason);
    d.message = Some(msg.into());
    d.errors = vec![error];
    push_keyed(
        &mut d,
        audit_names::DENIED,
        req,
        req.event.bounded_key(),
        Names::EMPTY,
        None,
    );
    d
}
