//! Step 1, route: the request's (tenant, application) scope, and what happens to the event —
//! evaluated against the scope's policies, completing a challenge, or refused before any policy
//! is read (an unknown scope, operation or resource; a session whose sign-in was never allowed).

use stepup_core::Factor;

use super::audit::{refuse, refuse_unestablished};
use crate::compile::CompiledScope;
use crate::decision::Decision;
use crate::engine::CompiledSet;
use crate::request::{Event, Request};
use crate::risk::ThreatFeed;
use crate::state::State;
use crate::tree::Ids;

/// Where an event goes.
pub(crate) enum Route<'s> {
    /// Evaluated against the scope's policies.
    Evaluate {
        scope: &'s CompiledScope,
        feed: &'s ThreatFeed,
        ids: Ids,
    },
    /// A `step_up` event: completes the session's latest open challenge.
    Complete {
        scope: &'s CompiledScope,
        feed: &'s ThreatFeed,
        factor: Factor,
        success: bool,
    },
    /// Refused before evaluation (SPEC §10: what cannot be evaluated is denied).
    Refuse {
        /// The scope and its feed, when the refusal is not that there is none.
        scope: Option<(&'s CompiledScope, &'s ThreatFeed)>,
        decision: Box<Decision>,
    },
}

/// Routes `req`.
pub(crate) fn route<'s>(set: &'s CompiledSet, req: &Request, state: &State) -> Route<'s> {
    let (scope, feed) = match set.scope(&req.tenant, &req.application) {
        Ok(s) => s,
        Err(e) => {
            return Route::Refuse {
                scope: None,
                decision: Box::new(refuse(req, set.hash(), e)),
            };
        }
    };
    let t = &scope.tenant;
    let refused = |decision| Route::Refuse {
        scope: Some((scope, feed)),
        decision: Box::new(decision),
    };
    let ids = match &req.event {
        Event::StepUp { factor, success } => {
            return Route::Complete {
                scope,
                feed,
                factor: *factor,
                success: *success,
            };
        }
        Event::Operation { name, .. } => {
            let op = scope.op_ids.id(name.as_str());
            if op.is_none() && !t.operations.is_empty() {
                let e = format!("operation `{name}` is not in tenant `{}`'s catalog", t.name);
                return refused(refuse(req, set.hash(), e));
            }
            if op.is_none()
                && let Some(known) = scope.op_readings.lookalike(name)
            {
                return refused(refuse(
                    req,
                    set.hash(),
                    lookalike("operation", name, known, t),
                ));
            }
            Ids { op, res: None }
        }
        Event::Access { resource, .. } => {
            let res = scope.res_ids.id(resource.as_str());
            if res.is_none() && !t.resources.is_empty() {
                let e = format!(
                    "resource class `{resource}` is not declared by tenant `{}`",
                    t.name
                );
                return refused(refuse(req, set.hash(), e));
            }
            if res.is_none()
                && let Some(known) = scope.res_readings.lookalike(resource)
            {
                return refused(refuse(
                    req,
                    set.hash(),
                    lookalike("resource class", resource, known, t),
                ));
            }
            Ids { op: None, res }
        }
        Event::SignIn { .. } => Ids {
            op: None,
            res: None,
        },
    };
    if !state.session.established && !matches!(req.event, Event::SignIn { .. }) {
        return refused(refuse_unestablished(req, set.hash()));
    }
    Route::Evaluate { scope, feed, ids }
}

/// Why a name the policies do not spell, but that may be one they guard, is refused.
fn lookalike(
    what: &str,
    name: &str,
    why: crate::names::Lookalike<'_>,
    t: &stepup_dsl::model::Tenant,
) -> String {
    let name = name.escape_debug();
    let t = &t.name;
    match why {
        crate::names::Lookalike::ReadsLike(known) => format!(
            "{what} `{name}` is not one tenant `{t}`'s policies name, but reads like `{known}`, \
             which they do: refused, not read as an unguarded {what} (send the name as the \
             policies spell it, or declare the tenant's catalog)"
        ),
        crate::names::Lookalike::NotAscii(known) => format!(
            "{what} `{name}` holds a character outside printable ASCII and is not one tenant \
             `{t}`'s policies name (they name `{known}`…): it may be one of theirs drawn with \
             other characters, so it is refused, not read as an unguarded {what} (send the name \
             as the policies spell it, or declare the tenant's catalog)"
        ),
    }
}
