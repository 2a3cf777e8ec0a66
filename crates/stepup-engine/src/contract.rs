//! The step-up contract with services (SPEC §6): decisions as HTTP answers (401
//! `step_up_required` with the RFC 9470 `WWW-Authenticate` header, 403
//! `stronger_factor_required`), and access-token claims (`acr`, `auth_time`, `amr`) as a session.

use serde_json::json;
use stepup_core::{Aal, Factor, FactorSet, Requirement, StrengthTable, Timestamp, Validity};

use crate::decision::{Decision, DecisionKind, DenyReason};
use crate::state::{AuthEvent, SessionState};

/// An HTTP answer for a decision that does not let the request through.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    /// 401 or 403.
    pub status: u16,
    /// The JSON body.
    pub body: serde_json::Value,
    /// The `WWW-Authenticate` header (401 only).
    pub www_authenticate: Option<String>,
}

/// A header-safe `error_description`: HTTP header values are visible ASCII, and a quoted-string
/// cannot hold `"` or `\`. Typographic punctuation becomes its ASCII twin; anything else that
/// does not fit becomes `?` (the JSON body keeps the message as written).
fn header_text(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\u{2014}' | '\u{2013}' => Some('-'),
            '\u{2018}' | '\u{2019}' | '"' | '\u{201c}' | '\u{201d}' => Some('\''),
            '\u{2026}' => Some('.'),
            '\\' => None,
            c if c.is_ascii_control() => Some(' '),
            c if c.is_ascii() => Some(c),
            _ => Some('?'),
        })
        .collect()
}

fn denied(msg: String) -> HttpAnswer {
    HttpAnswer {
        status: 403,
        body: json!({"error": "access_denied", "message": msg}),
        www_authenticate: None,
    }
}

/// The HTTP answer for a decision, `None` only when the request may proceed.
#[must_use]
pub fn http_answer(d: &Decision) -> Option<HttpAnswer> {
    let msg = d.message.clone().unwrap_or_default();
    match (d.kind, d.required) {
        (DecisionKind::Allow | DecisionKind::Completed, _) => None,
        (DecisionKind::StepUp, Some(r)) => {
            let max_age = r.validity.max_age_secs();
            let header = format!(
                "Bearer error=\"insufficient_user_authentication\", error_description=\"{}\", acr_values=\"{}\", max_age={max_age}",
                header_text(&msg),
                r.aal.as_str()
            );
            let body = json!({
                "error": "step_up_required",
                "required_acr": r.aal.as_str(),
                "allowed_factors": d.eligible.names(),
                "max_age": max_age,
                "challenge_id": d.challenge_id,
                "message": msg,
            });
            Some(HttpAnswer {
                status: 401,
                body,
                www_authenticate: Some(header),
            })
        }
        (DecisionKind::Deny, Some(r)) if d.deny == Some(DenyReason::StrongerFactorRequired) => {
            Some(HttpAnswer {
                status: 403,
                body: json!({
                    "error": "stronger_factor_required",
                    "required_acr": r.aal.as_str(),
                    "allowed_factors": r.factors.names(),
                    "message": msg,
                }),
                www_authenticate: None,
            })
        }
        (DecisionKind::Deny, _) if d.deny == Some(DenyReason::Conflict) => {
            let policies: Vec<&String> = d
                .fired
                .iter()
                .filter(|p| !d.satisfied.contains(p))
                .collect();
            Some(HttpAnswer {
                status: 403,
                body: json!({
                    "error": "policy_conflict",
                    "policies": policies,
                    "message": msg,
                }),
                www_authenticate: None,
            })
        }
        (DecisionKind::Deny, _) if d.deny == Some(DenyReason::SessionNotEstablished) => {
            Some(HttpAnswer {
                status: 403,
                body: json!({"error": "session_not_established", "message": msg}),
                www_authenticate: None,
            })
        }
        // Everything else refuses, including a step-up that lost its requirement: never a pass.
        (DecisionKind::StepUp | DecisionKind::Deny | DecisionKind::Failed, _) => Some(denied(msg)),
    }
}

/// The claims of an access token that matter to step-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `acr`: `aal1|aal2|aal3`.
    pub acr: Option<String>,
    /// `auth_time`: when the user last authenticated (seconds since the epoch).
    pub auth_time: Option<i64>,
    /// `amr`: the methods used (our factor names, or RFC 8176 values).
    pub amr: Vec<String>,
}

/// Reads an `amr` value: our factor names, and the RFC 8176 values that map to one.
#[must_use]
pub fn amr_factor(v: &str) -> Option<Factor> {
    match v {
        "pwd" => Some(Factor::Password),
        "otp" => Some(Factor::Totp),
        "tel" => Some(Factor::Voice),
        "hwk" | "swk" | "fido" => Some(Factor::Webauthn),
        other => other.parse().ok(),
    }
}

/// Why a token falls short of a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// `acr` lower than required (or missing).
    Acr,
    /// Authenticated longer ago than `max_age` (or `auth_time` missing).
    MaxAge,
    /// No `amr` method is an allowed factor strong enough.
    Factor,
}

/// Checks a token's claims against a requirement at `now`.
///
/// # Errors
/// The first shortfall found.
pub fn check_claims(
    c: &Claims,
    r: &Requirement,
    strengths: &StrengthTable,
    now: Timestamp,
) -> Result<(), Shortfall> {
    let acr = c
        .acr
        .as_deref()
        .and_then(|a| a.parse::<Aal>().ok())
        .ok_or(Shortfall::Acr)?;
    if acr < r.aal {
        return Err(Shortfall::Acr);
    }
    let at = c.auth_time.ok_or(Shortfall::MaxAge)?;
    let age = now.since(Timestamp(at));
    match r.validity {
        Validity::EveryTime => return Err(Shortfall::MaxAge),
        Validity::For(max) if age < 0 || age as u64 >= max => return Err(Shortfall::MaxAge),
        Validity::For(_) => {}
    }
    let factors: FactorSet = c.amr.iter().filter_map(|m| amr_factor(m)).collect();
    if (AuthEvent {
        at: Timestamp(at),
        factors,
        cap: None,
    })
    .proves(r.aal, r.factors, strengths)
    {
        Ok(())
    } else {
        Err(Shortfall::Factor)
    }
}

/// A session built from token claims: one authentication event at `auth_time` with the `amr`
/// factors. Services check `acr` itself with [`check_claims`].
#[must_use]
pub fn session_from_claims(c: &Claims) -> SessionState {
    let mut s = SessionState::default();
    if let Some(at) = c.auth_time {
        // A token is issued for an established sign-in.
        s.established = true;
        let factors: FactorSet = c.amr.iter().filter_map(|m| amr_factor(m)).collect();
        // A token proves at most what its issuer asserts in `acr` (aal1 when absent).
        let cap = Some(
            c.acr
                .as_deref()
                .and_then(|a| a.parse::<Aal>().ok())
                .unwrap_or(Aal::Aal1),
        );
        s.events.push(AuthEvent {
            at: Timestamp(at),
            factors,
            cap,
        });
    }
    s
}
