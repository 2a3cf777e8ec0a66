//! Step 1, route: the request's (tenant, application) scope, and what happens to the event —
//! evaluated against the scope's policies, completing a challenge, or refused before any policy
//! is read (an unknown scope, operation or resource; a session whose sign-in was never allowed).

use stepup_core::Factor;

use super::audit::{refuse, refuse_unestablished};
use crate::compile::CompiledScope;
use crate::decision::Decision;
use crate::engine::CompiledSet;
use crate::names::shown;
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

/// The refusal of a request with a blank user or session (off the path of every decision:
/// built inline, it cost the allow path a tenth of its instructions).
#[cold]
#[inline(never)]
fn unnamed<'s>(set: &'s CompiledSet, req: &Request) -> Route<'s> {
    let what = if blank(&req.user) { "user" } else { "session" };
    Route::Refuse {
        scope: None,
        decision: Box::new(refuse(
            req,
            set.hash(),
            format!("the request names no {what}: each user and each login needs an id of its own"),
        )),
    }
}

/// Whether a name is empty or only spaces (read from its first byte when that is printable
/// ASCII: on the path of every decision).
#[inline]
fn blank(name: &str) -> bool {
    match name.as_bytes().first() {
        Some(b) if b.is_ascii_graphic() => false,
        _ => name.trim().is_empty(),
    }
}

/// Routes `req`.
pub(crate) fn route<'s>(set: &'s CompiledSet, req: &Request, state: &State) -> Route<'s> {
    // A request names its user and its session: a blank one is every caller's that leaves it
    // blank, so their histories and sessions would be one (an integrator's review: a second
    // login with a blank session rode the first's elevation, and a blank user's sign-in from
    // another user's device was known).
    if blank(&req.user) || blank(&req.session) {
        return unnamed(set, req);
    }
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
            // The lookup on the path of every operation; the refusal off it.
            let op = scope.op_ids.id(name.as_str());
            if op.is_none()
                && let Some(e) = refusal(
                    "operation",
                    name,
                    &scope.op_readings,
                    (!t.operations.is_empty()).then_some(|n, t| {
                        format!("operation `{n}` is not in tenant `{t}`'s catalog")
                    }),
                    t,
                )
            {
                return refused(refuse(req, set.hash(), e));
            }
            Ids { op, res: None }
        }
        Event::Access { resource, .. } => {
            let res = scope.res_ids.id(resource.as_str());
            if res.is_none()
                && let Some(e) = refusal(
                    "resource class",
                    resource,
                    &scope.res_readings,
                    (!t.resources.is_empty()).then_some(|n, t| {
                        format!("resource class `{n}` is not declared by tenant `{t}`")
                    }),
                    t,
                )
            {
                return refused(refuse(req, set.hash(), e));
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

/// Why `name`, an operation or resource class (`what`) the scope has no id for, is refused,
/// if it is: with a catalog of them (`catalog`: what to say of a name outside it, given the
/// name shown and the tenant), always; without one, when it is no name or may be a guarded one
/// spelt otherwise ([`unknown`]). Otherwise it is a name no policy guards, and is evaluated.
fn refusal(
    what: &str,
    name: &str,
    readings: &crate::names::Readings,
    catalog: Option<Outside>,
    t: &stepup_dsl::model::Tenant,
) -> Option<String> {
    match catalog {
        Some(outside) => Some(outside(&shown(name), &t.name)),
        None => unknown(what, name, readings, t),
    }
}

/// What a refusal says of a name outside the tenant's catalog (the name shown, the tenant).
type Outside = fn(&str, &str) -> String;

/// The longest operation or resource name a request may carry (a catalog's or a policy's name
/// is an identifier: no tenant spells a longer one by accident).
pub const MAX_NAME_BYTES: usize = 256;

/// Why `name`, an operation or resource class the scope does not know in a tenant without a
/// catalog of them, is refused, if it is: when it is no name (no letter or digit, or longer than [`MAX_NAME_BYTES`]) or may be one the
/// policies guard, spelt otherwise ([`crate::names::Readings`]), unless a script's string
/// spells it exactly. Otherwise it is a name no policy guards, and it is evaluated.
fn unknown(
    what: &str,
    name: &str,
    readings: &crate::names::Readings,
    t: &stepup_dsl::model::Tenant,
) -> Option<String> {
    let shown = shown(name);
    if readings.spells(name) {
        // A script's string, spelt as it is (the conditions' names have ids).
        return None;
    }
    if name.len() > MAX_NAME_BYTES || !name.chars().any(char::is_alphanumeric) {
        return Some(format!(
            "{what} `{shown}` is no name (no letter or digit, or over {MAX_NAME_BYTES} bytes): \
             refused, not read as an unguarded {what}"
        ));
    }
    readings
        .lookalike(name)
        .map(|why| lookalike(what, &shown, why, t))
}

/// Why a name the policies do not spell, but that may be one they guard, is refused.
fn lookalike(
    what: &str,
    name: &str,
    why: crate::names::Lookalike<'_>,
    t: &stepup_dsl::model::Tenant,
) -> String {
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
